package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/vmd-dev/vmd/outcome"
)

// A command's answer is a pure function of its record once it has ended
// (Answer): the HTTP status and the exact body the synchronous call
// answers, stored with the record, sent in its completion webhook, and
// given again to a retry of its idempotency key. The table below is the
// one place an outcome becomes a status, an error code and a metric label.

// StatusCancelled answers a command stopped by DELETE /command or by its
// client going away (nginx's "client closed request").
const StatusCancelled = 499

// answer is how one outcome of a command is answered: the status, the
// body's "error" code, the outcome label it is counted under, which members
// the body has, and its message.
type answer struct {
	status  int
	code    string // "" for a success
	metric  string // vmd_commands_total's outcome label; "" for one never counted
	members member
	message func(Record) string
}

// member is a set of the command body's members.
type member uint8

const (
	mText     member = 1 << iota // text, truncated
	mExitCode                    // exitCode, and signal when a signal ended the CLI
	mFigures                     // costUsd, numTurns, usage: what the CLI reported
	mOutput                      // images, durationMs, sessionId (the run's), warnings, warm
	mResumed                     // sessionId: the one asked for
)

// answers is the one table from a command's outcome to its answer.
var answers = map[outcome.Outcome]answer{
	outcome.Succeeded: {http.StatusOK, "", "ok", mText | mExitCode | mFigures | mOutput, nil},
	outcome.AgentError: {http.StatusBadGateway, "agent_error", "agent_error", mExitCode | mFigures | mOutput,
		func(r Record) string { return r.Result.Message }},
	outcome.SessionNotFound: {http.StatusNotFound, "session_not_found", "session_not_found", mResumed,
		func(r Record) string {
			return "No session " + r.Resume + " here: start a new conversation by leaving sessionId out"
		}},
	outcome.Timeout: {http.StatusRequestTimeout, "timeout", "timeout", mText | mOutput,
		func(r Record) string {
			return fmt.Sprintf("Command timed out after %dms", r.Result.Timeout.Milliseconds())
		}},
	outcome.Cancelled: {StatusCancelled, "cancelled", "cancelled", mText | mOutput,
		func(Record) string { return "The command was cancelled" }},
	outcome.Drained: {http.StatusServiceUnavailable, "shutting_down", "drained", mText | mOutput,
		func(Record) string {
			return "vmd is shutting down; the command was stopped before it finished"
		}},
	outcome.Stalled: {http.StatusGatewayTimeout, "agent_stalled", "stalled", mText | mOutput,
		func(Record) string {
			return "claude stopped making progress (no output, no tool call open, no I/O) and was killed; " +
				"resume its session to go on"
		}},
	outcome.Failed: {http.StatusInternalServerError, "execution_error", "error", mText | mExitCode | mOutput,
		func(r Record) string { return r.Result.Message }},
	outcome.StartFailed: {http.StatusInternalServerError, "execution_error", "start_failed", mText | mExitCode | mOutput,
		func(r Record) string { return r.Result.Message }},
	// Found running when vmd started: it was killed or its machine
	// restarted mid-command. 503, as for a drained command, since the
	// server, not the request, is why it has no end; its text is what the
	// agent had said by then, from the stored events.
	outcome.Interrupted: {http.StatusServiceUnavailable, "interrupted", "", mText,
		func(Record) string {
			return "vmd stopped before the command finished (killed or restarted); text is what the agent had said by then"
		}},
}

// Answer is an ended command's answer: the status and the exact body the
// synchronous call answers.
func Answer(rec Record) (int, []byte) {
	row, ok := answers[rec.Outcome]
	if !ok || rec.Result == nil {
		return http.StatusInternalServerError, []byte(`{"error":"internal_error","message":"the command has no result"}` + "\n")
	}
	b, err := Marshal(row.body(rec))
	if err != nil {
		return http.StatusInternalServerError, []byte(`{"error":"internal_error","message":"cannot encode the response"}` + "\n")
	}
	return row.status, b
}

// commandBody is every answer of a command that ran. A member left at its
// zero value (present is false) is left out; one present may still be
// null.
type commandBody struct {
	Error      string                   `json:"error,omitempty"`
	Message    string                   `json:"message,omitempty"`
	Text       *string                  `json:"text,omitempty"`
	Images     present[[]string]        `json:"images,omitzero"`
	ExitCode   present[*int]            `json:"exitCode,omitzero"`
	Signal     string                   `json:"signal,omitempty"`
	DurationMs present[int64]           `json:"durationMs,omitzero"`
	SessionID  present[*string]         `json:"sessionId,omitzero"`
	CostUSD    present[*float64]        `json:"costUsd,omitzero"`
	NumTurns   present[*int]            `json:"numTurns,omitzero"`
	Usage      present[json.RawMessage] `json:"usage,omitzero"`
	Warnings   present[[]string]        `json:"warnings,omitzero"`
	Warm       present[bool]            `json:"warm,omitzero"`
	Truncated  bool                     `json:"truncated,omitempty"`
}

// present is a member of a body that has it: its value, null if nil.
type present[T any] struct {
	v  T
	ok bool
}

func has[T any](v T) present[T] { return present[T]{v: v, ok: true} }

// IsZero reports whether the member is left out.
func (p present[T]) IsZero() bool { return !p.ok }

// MarshalJSON encodes the value.
func (p present[T]) MarshalJSON() ([]byte, error) { return marshalCompact(p.v) }

// body is the answer's body for a finished command.
func (a answer) body(rec Record) commandBody {
	res := rec.Result
	b := commandBody{Error: a.code}
	if a.message != nil {
		b.Message = a.message(rec)
	}
	if a.members&mText != 0 {
		b.Text, b.Truncated = &res.Text, res.Truncated
	}
	if a.members&mExitCode != 0 {
		var code *int
		if res.ExitCode >= 0 {
			code = &res.ExitCode
		}
		b.ExitCode, b.Signal = has(code), res.Signal
	}
	if a.members&mOutput != 0 {
		warnings := append([]string{}, res.Warnings...) // never null: an empty list when all went well
		if rec.unstored != "" {
			warnings = append(warnings, rec.unstored)
		}
		b.Images, b.DurationMs = has(imageURLs(res.Images)), has(res.Duration.Milliseconds())
		b.SessionID, b.Warnings, b.Warm = has(optional(res.SessionID)), has(warnings), has(res.Warm)
	}
	if a.members&mFigures != 0 {
		var cost *float64
		var turns *int
		var usage json.RawMessage
		if r := res.Report; r != nil {
			cost, usage = r.CostUSD, r.Usage
			if r.NumTurns > 0 {
				turns = &r.NumTurns
			}
		}
		b.CostUSD, b.NumTurns, b.Usage = has(cost), has(turns), has(usage)
	}
	if a.members&mResumed != 0 {
		b.SessionID = has(&rec.Resume)
	}
	return b
}

func imageURLs(names []string) []string {
	urls := make([]string, 0, len(names))
	for _, n := range names {
		urls = append(urls, ImageURL(n))
	}
	return urls
}

// ImageURL is where /images/ serves an image.
func ImageURL(name string) string { return "/images/" + url.PathEscape(name) }

// optional is s, or nil (JSON null) when empty.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Marshal encodes v as JSON the way vmd writes every body: < > & kept
// readable (answers are full of code), and a newline after.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

// marshalCompact is Marshal without the newline.
func marshalCompact(v any) ([]byte, error) {
	b, err := Marshal(v)
	return bytes.TrimRight(b, "\n"), err
}
