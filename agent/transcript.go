package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
)

// The CLI, run with --output-format stream-json --verbose, writes one JSON
// object a line: a system/init event (session id, tools, MCP servers), the
// assistant's and the user's (tool results) messages as they happen, and a
// last result event. vmd reads what the caller needs and lets the rest go by.

const (
	// maxBadLinesLogged bounds the log lines about output that is not
	// stream-json; the rest are counted.
	maxBadLinesLogged = 5
	// maxWarnings bounds the warnings of one command.
	maxWarnings = 20
	// maxTools bounds the tool names of one message, and maxToolName each
	// name: they are told live, and the text limit does not cover them.
	maxTools    = 32
	maxToolName = 128
)

// Report is the CLI's result event: its own account of the run.
type Report struct {
	// SessionID continues the conversation with --resume.
	SessionID string
	// Text is the final answer, or the error when IsError.
	Text string
	// IsError is the CLI's verdict. Its subtype says "success" even on API
	// errors, and its exit code is 0 on some failures: only this counts.
	IsError bool
	// Subtype is "success" or an error kind such as "error_max_turns",
	// "error_max_budget_usd" (max_cost_usd stopped the run) or
	// "error_during_execution" (an interrupted turn).
	Subtype string
	// CostUSD is what the turn cost, when the CLI says: its
	// model_usage_since_last_result, or, from a CLI without it, the part
	// of total_cost_usd (the session's total so far) this process had not
	// reported before.
	CostUSD *float64
	// NumTurns counts the agent's turns.
	NumTurns int
	// Usage is the CLI's token counts, passed on as it writes them.
	Usage json.RawMessage
	// Tokens are the counts in Usage, read; zero when absent.
	Tokens Tokens
}

// Tokens are what a run used, by kind.
type Tokens struct {
	Input         int `json:"input_tokens"`
	Output        int `json:"output_tokens"`
	CacheCreation int `json:"cache_creation_input_tokens"`
	CacheRead     int `json:"cache_read_input_tokens"`
}

// line is the part of a stream-json line vmd reads.
type line struct {
	Type       string          `json:"type"`
	Subtype    string          `json:"subtype"`
	SessionID  string          `json:"session_id"`
	MCPServers []mcpServer     `json:"mcp_servers"`
	Message    json.RawMessage `json:"message"`
	// The result event's.
	Result       *string         `json:"result"`
	IsError      bool            `json:"is_error"`
	TotalCostUSD *float64        `json:"total_cost_usd"`
	NumTurns     int             `json:"num_turns"`
	Usage        json.RawMessage `json:"usage"`
	Errors       json.RawMessage `json:"errors"`
	// SinceLast is the turn's cost by model (costUSD), where the CLI says.
	SinceLast map[string]struct {
		CostUSD float64 `json:"costUSD"`
	} `json:"model_usage_since_last_result"`
}

// BudgetExhausted is the subtype of a result that --max-budget-usd ended.
const BudgetExhausted = "error_max_budget_usd"

type mcpServer struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

type assistantMessage struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
		Name string `json:"name"`
	} `json:"content"`
}

// transcript is what one turn's output says: the assistant's text so far
// (the partial answer of a turn stopped early), the session id, the
// warnings and the result. Output that is not stream-json (another CLI, a
// crash message) is kept as it is, up to max bytes: it is the answer when
// nothing else is. One goroutine at a time reads it (the turn's lock).
type transcript struct {
	max int // bytes of text, and of other output, kept
	log hclog.Logger

	sessionID    string
	warnings     []string
	text         []byte // the assistant's text, messages separated by a blank line
	sawAssistant bool
	textDropped  bool
	raw          []byte // output that is not stream-json
	rawDropped   int64
	badLines     int
	skipped      int  // JSON lines too long to read: the result may be one
	resultCut    bool // the result line was read with its long strings cut
	textCut      bool // so was an assistant line
	report       *Report
	total        *float64 // the result's total_cost_usd: the session's so far
}

func newTranscript(limit int, log hclog.Logger) *transcript {
	return &transcript{max: limit, log: log}
}

// parse reads one line that looks like JSON and returns it, and the event
// it makes, if any. A line that is not valid stream-json is logged and
// kept as other output, never fatal: ok is false. A nil line is one too
// long to read.
func (t *transcript) parse(b []byte, cut bool) (l line, ev *Event, ok bool) {
	if b == nil {
		t.skipped++
		return l, nil, false
	}
	if err := json.Unmarshal(b, &l); err != nil || l.Type == "" {
		t.badLines++
		if t.badLines <= maxBadLinesLogged {
			t.log.Warn("claude output line is not stream-json; kept as text", "line", string(b[:min(len(b), 200)]))
		}
		t.keepRaw(b)
		return l, nil, false
	}
	if l.SessionID != "" && t.sessionID == "" {
		t.sessionID = l.SessionID
	}
	t.resultCut = t.resultCut || cut && l.Type == "result"
	t.textCut = t.textCut || cut && l.Type == "assistant"
	switch l.Type {
	case "system":
		if l.Subtype == "init" {
			t.init(l)
		}
	case "assistant":
		ev = t.assistant(l)
	case "result":
		t.result(l)
	}
	return l, ev, true
}

// init reads the system/init event: the MCP servers that failed are
// warnings.
func (t *transcript) init(l line) {
	for _, s := range l.MCPServers {
		w := fmt.Sprintf("MCP server %q failed to start; its tools are not available", s.Name)
		if (s.Status == "failed" || s.Status == "error") && !slices.Contains(t.warnings, w) && len(t.warnings) < maxWarnings {
			t.warnings = append(t.warnings, w)
			t.log.Warn("MCP server failed to start", "server", s.Name, "status", s.Status)
		}
	}
}

// assistant reads a message of the assistant: its text and tool calls,
// which it returns as an event, if it has either.
func (t *transcript) assistant(l line) *Event {
	var m assistantMessage
	if err := json.Unmarshal(l.Message, &m); err != nil {
		return nil
	}
	var text strings.Builder
	var tools []string
	for _, c := range m.Content {
		switch c.Type {
		case "text":
			text.WriteString(c.Text)
		case "tool_use":
			if len(tools) < maxTools {
				tools = append(tools, cutUTF8(c.Name, maxToolName))
			}
		}
	}
	// What is told live is what is kept: max bounds both.
	kept := ""
	if text.Len() > 0 {
		kept = t.keepText(text.String())
	}
	t.log.Debug("message", "text_bytes", len(kept), "tools", tools)
	if kept != "" || len(tools) > 0 {
		return &Event{Kind: EventMessage, Text: kept, Tools: tools}
	}
	return nil
}

// result reads the result event: the CLI's report.
func (t *transcript) result(l line) {
	r := &Report{SessionID: l.SessionID, IsError: l.IsError, Subtype: l.Subtype,
		CostUSD: l.TotalCostUSD, NumTurns: l.NumTurns, Usage: l.Usage}
	t.total = l.TotalCostUSD
	if l.SinceLast != nil {
		sum := 0.0
		for _, m := range l.SinceLast {
			sum += m.CostUSD
		}
		r.CostUSD = &sum
	}
	if r.SessionID == "" {
		r.SessionID = t.sessionID
	}
	_ = json.Unmarshal(l.Usage, &r.Tokens) // absent or odd: no tokens counted
	switch {
	case l.Result != nil:
		r.Text = *l.Result
	case len(l.Errors) > 0:
		// Error subtypes may carry a list of messages instead.
		var errs []string
		if json.Unmarshal(l.Errors, &errs) == nil {
			r.Text = strings.Join(errs, "\n")
		}
	}
	if r.IsError && r.Text == "" {
		r.Text = "claude reported an error: " + r.Subtype
	}
	t.report = r
}

// keepText adds a message's text to the text so far, up to max, and
// returns the part of s kept.
func (t *transcript) keepText(s string) string {
	if t.textDropped {
		return ""
	}
	sep := ""
	if t.sawAssistant {
		sep = "\n\n"
	}
	t.sawAssistant = true
	room := t.max - len(t.text) - len(sep)
	if room < len(s) {
		s = cutUTF8(s, max(room, 0))
		t.textDropped = true
	}
	if s != "" {
		t.text = append(append(t.text, sep...), s...)
	}
	return s
}

func (t *transcript) keepRaw(b []byte) {
	room := t.max - len(t.raw)
	if room >= len(b) {
		t.raw = append(t.raw, b...)
		return
	}
	t.raw = append(t.raw, b[:max(room, 0)]...)
	t.rawDropped += int64(len(b) - max(room, 0))
}

// answer is the text to answer with and whether it was cut: the result's
// when there is one (but for a turn stopped early, whose result says only
// that), else the assistant's so far, else the other output.
func (t *transcript) answer(stopped bool) (string, bool) {
	switch {
	case t.report != nil && !stopped:
		if len(t.report.Text) > t.max || t.resultCut {
			return cutUTF8(t.report.Text, t.max), true
		}
		return t.report.Text, false
	case t.sawAssistant:
		return string(t.text), t.textDropped || t.textCut || t.skipped > 0
	default:
		return string(t.raw), t.rawDropped > 0 || t.skipped > 0
	}
}

// cutUTF8 is s cut to at most n bytes, on a character boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// PartialText is the assistant's text in a turn's message events, joined
// and cut at max bytes as a turn's own answer is: for a turn whose process
// is gone, rebuilt from its stored events.
func PartialText(evs []Event, max int) (string, bool) {
	t := newTranscript(max, nil)
	for _, e := range evs {
		if e.Kind == EventMessage && e.Text != "" {
			t.keepText(e.Text)
		}
	}
	return t.answer(true)
}
