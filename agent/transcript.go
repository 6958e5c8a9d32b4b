package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
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
	// Subtype is "success" or an error kind such as "error_max_turns".
	Subtype string
	// CostUSD is what the run cost, when the CLI says.
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

// EventKind tells events apart.
type EventKind int

// The events of a command, in the order they can come.
const (
	// EventStart: the CLI has started its session (or ended without
	// one). Exactly one per command that started.
	EventStart EventKind = iota
	// EventMessage: the assistant said something or called tools.
	EventMessage
	// EventImage: a new image is complete in the images directory.
	EventImage
)

// Event is progress of a running command, for a live view.
type Event struct {
	Kind EventKind
	// Pid and SessionID (when known) come with EventStart.
	Pid       int
	SessionID string
	// Text and Tools (names of the tools called) come with EventMessage.
	Text  string
	Tools []string
	// Image is the file name of an EventImage.
	Image string
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
}

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

// transcript reads the CLI's stdout as it comes: it keeps the assistant's
// text so far (the partial answer of a command stopped early), the session
// id, the warnings and the result, and tells the caller as things happen.
// Output that is not stream-json (another CLI, a crash message) is kept as
// it is, up to max bytes: it is the answer when nothing else is.
type transcript struct {
	max     int // bytes of text, and of other output, kept
	maxLine int // the longest JSON line read; longer ones are skipped
	log     hclog.Logger
	emit    func(Event) // nil: nobody is watching
	pid     int
	// onToolResult, if set, hears that a tool's result was read: the tool
	// is done and its files whole (see capture.announce).
	onToolResult func()
	// watch, if set, hears every sign of life and every tool call opened
	// and closed (see stall.go).
	watch *stallWatch
	// queue, if set, takes the events to tell in place of emit, so that
	// they are told in order with the images (see capture.announce).
	queue func(Event)

	sessionID    string
	started      bool // EventStart sent
	warnings     []string
	text         []byte // the assistant's text, messages separated by a blank line
	sawAssistant bool
	textDropped  bool
	raw          []byte // output that is not stream-json
	rawDropped   int64
	badLines     int
	skipped      int // JSON lines too long to read: the result may be one
	report       *Report

	mu      sync.Mutex // guards pending: the images watcher adds to it
	pending []string   // images seen, not yet announced

	emitMu sync.Mutex // one emit at a time: images are told from another goroutine
	sent   map[string]bool
}

func newTranscript(limit int, log hclog.Logger, emit func(Event)) *transcript {
	return &transcript{max: limit, maxLine: max(4*limit, 1<<20), log: log, emit: emit, sent: map[string]bool{}}
}

// fill reads r to its end, a line at a time. A line that starts with '{' is
// collected (up to maxLine) and parsed; any other output is kept as it
// streams, without waiting for its end of line.
func (t *transcript) fill(r io.Reader) {
	chunk := make([]byte, readChunk)
	var cur []byte // the JSON line being collected
	const (
		atStart = iota
		inJSON
		inRaw
		skipping // a JSON line too long to keep
	)
	state := atStart
	for {
		n, err := r.Read(chunk)
		b := chunk[:n]
		if n > 0 {
			t.watch.event(time.Now())
		}
		for len(b) > 0 {
			if state == atStart {
				state = inRaw
				if b[0] == '{' {
					state = inJSON
				}
			}
			end := bytes.IndexByte(b, '\n')
			part := b
			if end >= 0 {
				part = b[:end+1]
			}
			b = b[len(part):]
			switch state {
			case inRaw:
				t.keepRaw(part)
			case inJSON:
				if len(cur)+len(part) > t.maxLine {
					t.log.Warn("stream-json line too long; skipped", "limit", t.maxLine, "start", string(cur[:min(len(cur), 60)]))
					t.skipped++
					cur, state = cur[:0], skipping
				} else {
					cur = append(cur, part...)
				}
			}
			if end >= 0 {
				if state == inJSON {
					t.parse(cur)
				}
				cur, state = cur[:0], atStart
			}
		}
		if err != nil {
			if state == inJSON && len(cur) > 0 {
				t.parse(cur)
			}
			return
		}
	}
}

// parse handles one line that looks like JSON. One that is not valid JSON is
// logged and kept as other output, never fatal.
func (t *transcript) parse(b []byte) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil || l.Type == "" {
		t.badLines++
		if t.badLines <= maxBadLinesLogged {
			t.log.Warn("claude output line is not stream-json; kept as text", "line", string(b[:min(len(b), 200)]))
		}
		t.keepRaw(b)
		return
	}
	// Images are written by tools. A tool's result (a user event) means the
	// tool is done and its files whole: that is where they are announced,
	// once the watcher has caught up with what it wrote (off this path, see
	// capture.announce). Not at any line: lines written before the image
	// may be read after the watcher saw it.
	switch {
	case l.Type != "user" && l.Type != "result":
	case t.onToolResult != nil:
		t.onToolResult()
	default:
		t.announceImages()
	}
	if l.SessionID != "" && t.sessionID == "" {
		t.sessionID = l.SessionID
	}
	t.watch.line(l, time.Now())
	switch l.Type {
	case "system":
		if l.Subtype == "init" {
			t.init(l)
		}
	case "assistant":
		t.assistant(l)
	case "result":
		t.result(l)
	}
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
	t.start()
}

// assistant reads a message of the assistant: its text and tool calls.
func (t *transcript) assistant(l line) {
	var m assistantMessage
	if err := json.Unmarshal(l.Message, &m); err != nil {
		return
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
		t.send(Event{Kind: EventMessage, Text: kept, Tools: tools})
	}
}

// result reads the result event: the CLI's report.
func (t *transcript) result(l line) {
	r := &Report{SessionID: l.SessionID, IsError: l.IsError, Subtype: l.Subtype,
		CostUSD: l.TotalCostUSD, NumTurns: l.NumTurns, Usage: l.Usage}
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

// start sends EventStart once.
func (t *transcript) start() {
	if t.started {
		return
	}
	t.started = true
	t.send(Event{Kind: EventStart, Pid: t.pid, SessionID: t.sessionID})
}

// send tells the watcher of an event, one at a time.
func (t *transcript) send(ev Event) {
	if t.emit == nil {
		return
	}
	if t.queue != nil {
		t.queue(ev)
		return
	}
	t.emitMu.Lock()
	defer t.emitMu.Unlock()
	t.emit(ev)
}

// emitOne tells the watcher of an event, bypassing the queue.
func (t *transcript) emitOne(ev Event) {
	t.emitMu.Lock()
	defer t.emitMu.Unlock()
	t.emit(ev)
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

// image is called by the images watcher for each new image of the command.
func (t *transcript) image(name string) {
	t.mu.Lock()
	t.pending = append(t.pending, name)
	t.mu.Unlock()
}

func (t *transcript) announceImages() {
	t.mu.Lock()
	names := t.pending
	t.pending = nil
	t.mu.Unlock()
	for _, n := range names {
		t.announce(n)
	}
}

func (t *transcript) announce(name string) {
	t.emitMu.Lock()
	defer t.emitMu.Unlock()
	if t.sent[name] {
		return
	}
	t.sent[name] = true
	if t.emit != nil {
		t.emit(Event{Kind: EventImage, Image: name})
	}
}

// answer is the text to answer with and whether it was cut: the result's
// when there is one, else the assistant's so far, else the other output.
func (t *transcript) answer() (string, bool) {
	switch {
	case t.report != nil:
		if len(t.report.Text) > t.max {
			return cutUTF8(t.report.Text, t.max), true
		}
		return t.report.Text, false
	case t.sawAssistant:
		return string(t.text), t.textDropped || t.skipped > 0
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
