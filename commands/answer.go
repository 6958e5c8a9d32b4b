package httpapi

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
)

// StatusCancelled answers a command stopped by DELETE /command or by its
// client going away (nginx's "client closed request").
const StatusCancelled = 499

// answer is how one outcome of a command is answered: the status, the
// body's "error" code, the outcome label it is counted under, which members
// the body has, and its message.
type answer struct {
	status  int
	code    string // "" for a success
	metric  string // vmd_commands_total's outcome label
	members member
	message func(commands.Record) string
}

// member is a set of the command body's members.
type member uint8

const (
	mText     member = 1 << iota // text, truncated
	mExitCode                    // exitCode, and signal when a signal ended the CLI
	mFigures                     // costUsd, numTurns, usage: what the CLI reported
	mOutput                      // images, durationMs, sessionId (the run's), warnings
	mResumed                     // sessionId: the one asked for
)

// answers is the one table from a command's outcome to its answer.
var answers = map[agent.Outcome]answer{
	agent.OK: {fasthttp.StatusOK, "", outcomeOK, mText | mExitCode | mFigures | mOutput, nil},
	agent.AgentError: {fasthttp.StatusBadGateway, "agent_error", outcomeAgentError, mExitCode | mFigures | mOutput,
		func(r commands.Record) string { return r.Result.Message }},
	agent.SessionNotFound: {fasthttp.StatusNotFound, "session_not_found", outcomeSessionNotFound, mResumed,
		func(r commands.Record) string {
			return "No session " + r.Resume + " here: start a new conversation by leaving sessionId out"
		}},
	agent.TimedOut: {fasthttp.StatusRequestTimeout, "timeout", outcomeTimeout, mText | mOutput,
		func(r commands.Record) string {
			return fmt.Sprintf("Command timed out after %dms", r.Result.Timeout.Milliseconds())
		}},
	agent.Cancelled: {StatusCancelled, "cancelled", outcomeCancelled, mText | mOutput,
		func(commands.Record) string { return "The command was cancelled" }},
	agent.Drained: {fasthttp.StatusServiceUnavailable, "shutting_down", outcomeDrained, mText | mOutput,
		func(commands.Record) string {
			return "vmd is shutting down; the command was stopped before it finished"
		}},
	agent.Stalled: {fasthttp.StatusGatewayTimeout, "agent_stalled", outcomeStalled, mText | mOutput,
		func(commands.Record) string {
			return "claude stopped making progress (no output, no tool call open, no I/O) and was killed; " +
				"resume its session to go on"
		}},
	agent.Crashed: {fasthttp.StatusInternalServerError, "execution_error", outcomeError, mText | mExitCode | mOutput,
		func(r commands.Record) string { return r.Result.Message }},
	agent.StartFailed: {fasthttp.StatusInternalServerError, "execution_error", outcomeStartFailed, mText | mExitCode | mOutput,
		func(r commands.Record) string { return r.Result.Message }},
}

// interrupted answers a command vmd found running when it started: it was
// killed or its machine restarted mid-command. 503, as for a drained
// command, since the server, not the request, is why it has no end; its
// text is what the agent had said by then, from the stored events.
var interrupted = answer{fasthttp.StatusServiceUnavailable, "interrupted", "", mText,
	func(commands.Record) string {
		return "vmd stopped before the command finished (killed or restarted); text is what the agent had said by then"
	}}

// Render is a command's answer once it has ended: the status and the
// exact body the synchronous call answers, which the commands service
// stores with the record (commands.Options.Render). A command that ran
// here is counted in the metrics.
func (a *API) Render(rec commands.Record) (int, []byte) {
	if rec.Result == nil {
		return fasthttp.StatusInternalServerError, []byte(`{"error":"internal_error","message":"the command has no result"}` + "\n")
	}
	row := interrupted
	if rec.State != commands.Interrupted {
		row = answers[rec.Result.Outcome]
		a.count(row, rec.Result)
	}
	b, err := marshal(row.body(rec))
	if err != nil {
		return fasthttp.StatusInternalServerError, []byte(`{"error":"internal_error","message":"cannot encode the response"}` + "\n")
	}
	return row.status, b
}

// count counts a command that ran.
func (a *API) count(row answer, res *agent.Result) {
	a.metrics.commandRan(row.metric, res.Duration)
	if r := res.Report; r != nil {
		a.metrics.observeReport(r)
	}
	if row.status >= fasthttp.StatusInternalServerError {
		a.log.Debug("command answered", "status", row.status, "error", row.code)
	}
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
func (a answer) body(rec commands.Record) commandBody {
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
		warnings := res.Warnings
		if warnings == nil {
			warnings = []string{} // never null: an empty list when all went well
		}
		b.Images, b.DurationMs = has(imageURLs(res.Images)), has(res.Duration.Milliseconds())
		b.SessionID, b.Warnings = has(optional(res.SessionID)), has(warnings)
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
