package agent

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmd-dev/vmd/supervisor"
)

// messageTail is how much of stderr (or stdout) a failure's message holds.
const messageTail = 4 << 10

// Outcome is what a command came to, in the agent's terms.
type Outcome int

// The outcomes of a command.
const (
	// OK: the CLI answered.
	OK Outcome = iota
	// AgentError: the CLI ran and reported an error of its own (the API
	// refused the key, was overloaded, the turn limit was hit, ...).
	AgentError
	// SessionNotFound: --resume named a session the CLI does not have.
	SessionNotFound
	// TimedOut: the command's timeout expired; the answer is partial.
	TimedOut
	// Cancelled: the command was cancelled; the answer is partial.
	Cancelled
	// Drained: vmd stopped before the command ended; the answer is partial.
	Drained
	// Crashed: the CLI exited non-zero or was killed, without a result.
	Crashed
	// StartFailed: the CLI could not be started.
	StartFailed
	// Stalled: the CLI showed no sign of life for the stall timeout, no
	// tool call open, and was killed; the answer is partial, the session
	// may be resumed.
	Stalled
)

var outcomeNames = [...]string{OK: "ok", AgentError: "agent_error", SessionNotFound: "session_not_found",
	TimedOut: "timeout", Cancelled: "cancelled", Drained: "drained", Crashed: "crashed", StartFailed: "start_failed",
	Stalled: "stalled"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Result is what a command produced.
type Result struct {
	Outcome Outcome
	// Message says why, for a person, when the outcome is not OK: the CLI's
	// own error, the end of its stderr, or why it could not start.
	Message string
	// Pid was the CLI's process id; 0 if it never started.
	Pid int
	// Text is the answer: the CLI's result, or the assistant's text so far
	// when it ended without one, or else its output as it is (a CLI that
	// does not speak stream-json). At most Options.MaxOutput bytes.
	Text string
	// Truncated is set when the text went past Options.MaxOutput.
	Truncated bool
	// Report is the CLI's result event; nil if it wrote none.
	Report *Report
	// SessionID is the session the command ran in, once the CLI named it.
	SessionID string
	// Warnings are problems that did not stop the command, such as an MCP
	// server that failed to start.
	Warnings []string
	// ExitCode is the CLI's exit status, or -1 when it has none (killed by
	// a signal, never started, or not seen to exit).
	ExitCode int
	// Signal names the signal that ended the CLI ("SIGKILL"), or "".
	Signal string
	// Timeout is the one the command ran under.
	Timeout time.Duration
	// Duration runs from the start to the end of the cleanup.
	Duration time.Duration
	// Images are the files the command left in the images directory.
	Images []string
	// Strays counts the processes still alive once the CLI was gone.
	Strays int
}

// noSession is how the CLI says --resume named no session it has: in an
// error result ("No conversation found with session ID: <id>") and on
// stderr.
var noSession = []byte("No conversation found")

// classify says what a command came to, and why when it failed.
func classify(res supervisor.Result, req Request, tr *transcript, stderr []byte) (Outcome, string) {
	switch res.Outcome {
	case supervisor.TimedOut:
		return TimedOut, ""
	case supervisor.Cancelled:
		return Cancelled, ""
	case supervisor.Drained:
		return Drained, ""
	case supervisor.Stalled:
		return Stalled, ""
	case supervisor.StartFailed:
		return StartFailed, res.Err.Error()
	}
	r := tr.report
	// Said in an error result, or, without any result, on stderr: a run
	// that succeeded is an answer whatever its stderr holds.
	if req.SessionID != "" && (r == nil && bytes.Contains(stderr, noSession) ||
		r != nil && r.IsError && strings.Contains(r.Text, string(noSession))) {
		return SessionNotFound, ""
	}
	// The CLI's verdict, whatever its exit code says. Without one (a CLI
	// that does not speak stream-json), exit 0 means its output is the
	// answer.
	if r != nil && r.IsError {
		return AgentError, r.Text
	}
	if r != nil || res.Signal == 0 && res.ExitCode == 0 {
		return OK, ""
	}
	// The CLI says why it failed on stderr, or on stdout outside stream-json.
	switch errEnd, outEnd := tailOf(stderr), tailOf(tr.raw); {
	case len(errEnd) > 0:
		return Crashed, string(errEnd)
	case len(outEnd) > 0:
		return Crashed, string(outEnd)
	case res.Signal != 0:
		return Crashed, "claude was killed by " + res.SignalName()
	}
	return Crashed, fmt.Sprintf("claude exited with status %d", res.ExitCode)
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
