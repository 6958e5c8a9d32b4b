// Package outcome is the one vocabulary for how a command ends. The agent
// decides most outcomes (from the CLI's result line, its exit, or why it
// was stopped), the commands service adds the ones it decides itself
// (Interrupted, a queued command cancelled or drained), the store stores
// an outcome's name as the record's state, and the HTTP layer reads the
// answer the commands service made from it. Every layer uses these values;
// none keeps a list of its own.
package outcome

// Outcome is how a command ended. Its value is its name: what the store
// keeps, what logs say and, through State, what a record shows.
type Outcome string

// The outcomes. A record's state is the outcome's name but for the three
// kinds of failure, which a record shows as "failed" (see State).
const (
	// Succeeded: the CLI answered.
	Succeeded Outcome = "succeeded"
	// AgentError: the CLI ran and reported an error of its own (the API
	// refused the key, was overloaded, the turn or budget limit was hit).
	AgentError Outcome = "agent_error"
	// SessionNotFound: the session the request asked to continue does not
	// exist here.
	SessionNotFound Outcome = "session_not_found"
	// Timeout: the command's timeout expired; the answer is partial.
	Timeout Outcome = "timeout"
	// Cancelled: the command was stopped on request (DELETE, or its client
	// left and asked for that), or cancelled while queued; the answer is
	// partial.
	Cancelled Outcome = "cancelled"
	// Drained: vmd was stopping and the drain deadline passed (or the
	// command was still queued); the answer is partial.
	Drained Outcome = "drained"
	// Stalled: the CLI showed no sign of life for the stall timeout, no
	// tool call open, and was killed; the session can be resumed.
	Stalled Outcome = "stalled"
	// Failed: the CLI exited or died without a result (crashed).
	Failed Outcome = "failed"
	// StartFailed: the CLI could not be started.
	StartFailed Outcome = "start_failed"
	// Interrupted: vmd stopped without ending the command (killed,
	// restarted); found so at the next start.
	Interrupted Outcome = "interrupted"
)

// All lists every outcome, for tables and metrics that must cover each.
var All = []Outcome{Succeeded, AgentError, SessionNotFound, Timeout, Cancelled, Drained, Stalled, Failed,
	StartFailed, Interrupted}

// Known reports whether o is one of the outcomes.
func (o Outcome) Known() bool {
	for _, k := range All {
		if o == k {
			return true
		}
	}
	return false
}

// State is the record state an ended command shows: the outcome's name,
// but "failed" for every failure to run (Failed, StartFailed,
// SessionNotFound), as records have always said.
func (o Outcome) State() string {
	switch o {
	case StartFailed, SessionNotFound:
		return string(Failed)
	}
	return string(o)
}

// Partial reports whether a command that ended so was stopped before its
// CLI answered: its text is what the agent had said by then.
func (o Outcome) Partial() bool {
	switch o {
	case Timeout, Cancelled, Drained, Stalled, Interrupted:
		return true
	}
	return false
}
