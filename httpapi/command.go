package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/supervisor"
)

// StatusCancelled answers a command stopped by DELETE /command or by its
// client going away (nginx's "client closed request").
const StatusCancelled = 499

// CommandRequest is a /command body.
type CommandRequest struct {
	// Text is the prompt.
	Text string
	// SessionID continues that session; empty starts a new one.
	SessionID string
	// Timeout is the caller's bound, already capped; zero is the default.
	Timeout time.Duration
}

// sessionIDPattern is the CLI's session id: a UUID.
var sessionIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

const (
	msgText      = "Request body must include a non-empty 'text' field"
	msgSessionID = "'sessionId' must be the session id (a UUID) of an earlier answer"
	msgTimeout   = "'timeoutMs' must be a positive whole number of milliseconds"
)

// ParseCommand reads a /command body: a JSON object whose "text" member is
// a string that is not blank, with an optional "sessionId" (a UUID) and an
// optional "timeoutMs" (a positive whole number; above maxTimeout it is
// maxTimeout). Other members are ignored. A bad body gets the reason.
func ParseCommand(body []byte, maxTimeout time.Duration) (CommandRequest, error) {
	var req CommandRequest
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return req, errors.New(msgText)
	}
	raw, ok := members["text"]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return req, errors.New(msgText)
	}
	if err := json.Unmarshal(raw, &req.Text); err != nil || strings.TrimSpace(req.Text) == "" {
		return req, errors.New(msgText)
	}
	if raw, ok := members["sessionId"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &req.SessionID) != nil || !sessionIDPattern.MatchString(req.SessionID) {
			return req, errors.New(msgSessionID)
		}
	}
	if raw, ok := members["timeoutMs"]; ok && string(raw) != "null" {
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') { // "5" is not a number
			return req, errors.New(msgTimeout)
		}
		var ms json.Number
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&ms) != nil {
			return req, errors.New(msgTimeout)
		}
		n, err := ms.Int64()
		if err != nil || n < 1 {
			return req, errors.New(msgTimeout)
		}
		req.Timeout = maxTimeout
		if n < maxTimeout.Milliseconds() {
			req.Timeout = time.Duration(n) * time.Millisecond
		}
	}
	return req, nil
}

// runFigures are what a run reports about itself, in the 200 and 502
// answers. What the CLI did not report is null.
type runFigures struct {
	SessionID *string         `json:"sessionId"`
	CostUSD   *float64        `json:"costUsd"`
	NumTurns  *int            `json:"numTurns"`
	Usage     json.RawMessage `json:"usage"`
	Warnings  []string        `json:"warnings"`
}

// figuresOf takes a run's figures from its result and the CLI's report.
func figuresOf(res *supervisor.Result) runFigures {
	f := runFigures{SessionID: optional(res.SessionID), Warnings: warningsOf(res)}
	if r := res.Report; r != nil {
		f.CostUSD, f.Usage = r.CostUSD, r.Usage
		if r.NumTurns > 0 {
			f.NumTurns = &r.NumTurns
		}
	}
	return f
}

// warningsOf is never null: an empty list when all went well.
func warningsOf(res *supervisor.Result) []string {
	if res.Warnings == nil {
		return []string{}
	}
	return res.Warnings
}

// commandBody is the 200 answer.
type commandBody struct {
	Text       string   `json:"text"`
	Images     []string `json:"images"`
	ExitCode   *int     `json:"exitCode"`
	DurationMs int64    `json:"durationMs"`
	runFigures
	Truncated bool `json:"truncated,omitempty"`
}

// agentErrorBody answers a run the CLI itself reports as failed (the API
// refused the key, was overloaded, the turn limit was hit, ...).
type agentErrorBody struct {
	Error      string   `json:"error"`
	Message    string   `json:"message"`
	Images     []string `json:"images"`
	ExitCode   *int     `json:"exitCode"`
	DurationMs int64    `json:"durationMs"`
	runFigures
}

// partialBody answers a command stopped early (timeout, cancel, drain) with
// what it had produced: the assistant's text so far.
type partialBody struct {
	Error      string   `json:"error"`
	Message    string   `json:"message"`
	Text       string   `json:"text"`
	Images     []string `json:"images"`
	DurationMs int64    `json:"durationMs"`
	SessionID  *string  `json:"sessionId"`
	Warnings   []string `json:"warnings"`
	Truncated  bool     `json:"truncated,omitempty"`
}

// failureBody answers a command that failed or could not start.
type failureBody struct {
	Error      string   `json:"error"`
	Message    string   `json:"message"`
	ExitCode   *int     `json:"exitCode"`
	Signal     string   `json:"signal,omitempty"`
	DurationMs int64    `json:"durationMs"`
	Text       string   `json:"text"`
	Images     []string `json:"images"`
	SessionID  *string  `json:"sessionId"`
	Warnings   []string `json:"warnings"`
	Truncated  bool     `json:"truncated,omitempty"`
}

// sessionNotFoundBody answers a sessionId the CLI does not know.
type sessionNotFoundBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	SessionID string `json:"sessionId"`
}

// noSession is how the CLI says --resume named no session it has: in an
// error result ("No conversation found with session ID: <id>") and on
// stderr.
var noSession = []byte("No conversation found")

// answer maps a command's result to the contract's status and body, and
// the outcome it is counted under.
func (a *API) answer(req CommandRequest, res *supervisor.Result) (int, any, string) {
	ms := res.Duration.Milliseconds()
	urls := imageURLs(res.Images)
	session, warnings := optional(res.SessionID), warningsOf(res)
	partial := func(status int, code, outcome, message string) (int, any, string) {
		return status, partialBody{Error: code, Message: message, Text: res.Text, Images: urls,
			DurationMs: ms, SessionID: session, Warnings: warnings, Truncated: res.Truncated}, outcome
	}
	switch res.Outcome {
	case supervisor.TimedOut:
		return partial(fasthttp.StatusRequestTimeout, "timeout", outcomeTimeout,
			fmt.Sprintf("Command timed out after %dms", res.Timeout.Milliseconds()))
	case supervisor.Cancelled:
		return partial(StatusCancelled, "cancelled", outcomeCancelled, "The command was cancelled")
	case supervisor.Drained:
		return partial(fasthttp.StatusServiceUnavailable, "shutting_down", outcomeDrained,
			"vmd is shutting down; the command was stopped before it finished")
	case supervisor.StartFailed:
		return fasthttp.StatusInternalServerError, failureBody{Error: "execution_error",
			Message: res.Err.Error(), DurationMs: ms, Images: urls, Warnings: warnings}, outcomeStartFailed
	}
	var exitCode *int
	if res.Signal == 0 && res.ExitCode >= 0 {
		exitCode = &res.ExitCode
	}
	// Said in an error result, or, without any result, on stderr: a run
	// that succeeded is an answer whatever its stderr holds.
	if req.SessionID != "" && (res.Report == nil && bytes.Contains(res.Stderr, noSession) ||
		res.Report != nil && res.Report.IsError && strings.Contains(res.Report.Text, string(noSession))) {
		return fasthttp.StatusNotFound, sessionNotFoundBody{Error: "session_not_found",
			Message:   "No session " + req.SessionID + " here: start a new conversation by leaving sessionId out",
			SessionID: req.SessionID}, outcomeSessionNotFound
	}
	// The CLI's verdict, whatever its exit code says. Without one (a CLI
	// that does not speak stream-json), exit 0 means its output is the
	// answer. A CLI killed after its result still answered: exitCode null.
	if r := res.Report; r != nil && r.IsError {
		return fasthttp.StatusBadGateway, agentErrorBody{Error: "agent_error", Message: r.Text, Images: urls,
			ExitCode: exitCode, DurationMs: ms, runFigures: figuresOf(res)}, outcomeAgentError
	}
	if res.Report != nil || res.ExitCode == 0 {
		return fasthttp.StatusOK, commandBody{Text: res.Text, Images: urls, ExitCode: exitCode, DurationMs: ms,
			runFigures: figuresOf(res), Truncated: res.Truncated}, outcomeOK
	}
	body := failureBody{Error: "execution_error", ExitCode: exitCode, DurationMs: ms, Text: res.Text,
		Images: urls, SessionID: session, Warnings: warnings, Truncated: res.Truncated}
	if res.Signal != 0 {
		body.Signal = res.SignalName()
	}
	// The CLI says why it failed on stderr, or on stdout outside stream-json.
	switch errEnd, outEnd := tailOf(res.Stderr), tailOf(res.Output); {
	case len(errEnd) > 0:
		body.Message = string(errEnd)
	case len(outEnd) > 0:
		body.Message = string(outEnd)
	case res.Signal != 0:
		body.Message = "claude was killed by " + body.Signal
	default:
		body.Message = fmt.Sprintf("claude exited with status %d", res.ExitCode)
	}
	return fasthttp.StatusInternalServerError, body, outcomeError
}

func imageURLs(names []string) []string {
	urls := make([]string, 0, len(names))
	for _, n := range names {
		urls = append(urls, imageURL(n))
	}
	return urls
}

func imageURL(name string) string { return "/images/" + url.PathEscape(name) }

// optional is s, or nil (JSON null) when empty.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// tailOf is the end of an output, trimmed, cut on a character boundary.
func tailOf(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > messageTail {
		b = b[len(b)-messageTail:]
		for len(b) > 0 && !utf8.RuneStart(b[0]) {
			b = b[1:]
		}
	}
	return b
}
