package agent

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/supervisor"
)

// messageTail is how much of stderr (or stdout) a failure's message holds.
const messageTail = 4 << 10

// noSession is how the CLI says --resume named no session it has: in an
// error result ("No conversation found with session ID: <id>") and on
// stderr.
var noSession = []byte("No conversation found")

// TurnRequest is one message for a process.
type TurnRequest struct {
	// Prompt is the message.
	Prompt string
	// Timeout bounds the turn; zero is none.
	Timeout time.Duration
	// OnEvent, if set, hears the turn's progress. Calls come one at a
	// time, in order, all before Done is closed; they must not block.
	OnEvent func(Event)
	// Log is the turn's logger; nil is the process's.
	Log hclog.Logger
}

// Result is what a turn came to.
type Result struct {
	Outcome outcome.Outcome
	// Message says why, for a person, when the outcome is not Succeeded:
	// the CLI's own error, the end of its stderr, or why it could not
	// start.
	Message string
	// Pid is the CLI's process id; 0 if it never started.
	Pid int
	// Text is the answer: the CLI's result, or the assistant's text so far
	// when it ended without one, or else its output as it is (a CLI that
	// does not speak stream-json). At most Options.MaxOutput bytes.
	Text string
	// Truncated is set when the text went past Options.MaxOutput.
	Truncated bool
	// Report is the CLI's result line; nil if it wrote none.
	Report *Report
	// SessionID is the session the turn ran in, once known.
	SessionID string
	// Warnings are problems that did not stop the turn, such as an MCP
	// server that failed to start.
	Warnings []string
	// ExitCode is the CLI's exit status when the turn ended with its
	// process, or -1 when it has none (killed by a signal, never
	// started). A turn that ended at its result line, as a warm turn
	// always does, has the status the CLI gives such a result: 0 for a
	// success, 1 for an error; the process may live on.
	ExitCode int
	// Signal names the signal that ended the CLI ("SIGKILL"), or "".
	Signal string
	// Timeout is the one the turn ran under.
	Timeout time.Duration
	// Duration runs from the turn's start to its end.
	Duration time.Duration
	// Latency runs from the message written to the result line; zero
	// without one.
	Latency time.Duration
	// Images are the files the turn left in the images directory.
	Images []string
	// Warm is set when the turn went to a process already running (a warm
	// agent's next turn, or a spare's first).
	Warm bool
	// Unheard is set when a warm process ended before it said a word of
	// the turn: it died between turns, and never began this one (the CLI
	// begins every turn with its init line), so the message may be given
	// to another process without running anything twice.
	Unheard bool
}

// Turn is one message a process is serving.
type Turn struct {
	p       *Process
	log     hclog.Logger
	timeout time.Duration
	begun   time.Time
	warm    bool
	cap     *capture
	watch   *stallWatch
	done    chan struct{}
	res     *Result // set before done is closed

	mu      sync.Mutex // guards the fields below and tr
	tr      *transcript
	written time.Time       // when the message went out; zero before
	stop    outcome.Outcome // why the turn was stopped; "" while it was not
	ended   bool
	// interrupting: the stop asked the CLI to interrupt the turn, and
	// waits out the interrupt's grace before it kills.
	interrupting bool
	heard        bool          // the CLI said something of the turn
	started      bool          // EventStart told
	timers       []*time.Timer // the timeout and the interrupt's grace
}

// Turn gives the process its next message and returns the turn serving
// it. One turn at a time: call it only while Idle. A process that could
// not start, or has exited, answers with a turn that ends at once, saying
// why.
func (p *Process) Turn(req TurnRequest) *Turn {
	log := req.Log
	if log == nil {
		log = p.log
	}
	if pid := p.Pid(); pid != 0 && req.Log != nil {
		log = log.With("pid", pid)
	}
	now := time.Now()
	t := &Turn{p: p, log: log, timeout: req.Timeout, begun: now, done: make(chan struct{}),
		tr: newTranscript(p.a.opts.MaxOutput, log), cap: newCapture(p.a.img, req.OnEvent),
		watch: newStallWatch(p.a.opts.StallTimeout, now)}
	p.mu.Lock()
	if p.turn != nil {
		p.mu.Unlock()
		panic("agent: Turn while another turn runs")
	}
	t.warm = p.turns > 0 || p.ahead
	p.turns++
	p.turn = t
	closing := p.closing
	p.mu.Unlock()
	switch {
	case p.err != nil:
		go t.finish(nil)
		return t
	case closing: // exited, or about to: its watch may have come and gone
		go func() { <-p.done; t.exited(p.exit) }()
		return t
	}
	t.mu.Lock()
	if t.timeout > 0 {
		t.timers = append(t.timers, time.AfterFunc(t.timeout, func() {
			if t.Stop(outcome.Timeout) {
				t.log.Warn("timeout", "duration", t.timeout)
			}
		}))
	}
	t.mu.Unlock()
	go t.watch.guard(p.proc.IO, t.done, func() bool { return t.Stop(outcome.Stalled) }, log)
	go t.send(req.Prompt)
	return t
}

// send writes the message once the images recording has begun, so that
// any image the turn makes is the recording's; a turn stopped before that
// never gets its message.
func (t *Turn) send(prompt string) {
	<-t.cap.begun
	t.mu.Lock()
	if t.ended { // its process died before it could be written
		t.mu.Unlock()
		return
	}
	if t.stop == "" {
		t.written = time.Now()
		if t.p.warm {
			t.p.input(userLine(prompt), false)
		} else {
			t.p.input([]byte(prompt), true)
		}
	}
	stopped := t.stop != ""
	t.mu.Unlock()
	if !stopped {
		return
	}
	if t.p.warm {
		t.finish(nil) // the process never heard of it, and waits for the next
		return
	}
	t.p.proc.Kill() // a cold process has no other use
}

// Stop stops the turn for a reason (Cancelled, Timeout, Drained,
// Stalled), unless it has ended or been stopped already; it reports
// whether it stopped it, and then the turn's outcome is why, whatever
// comes after. It does not wait: see Done.
//
// A warm process is asked to interrupt a turn cancelled or timed out, so
// that the process and its session live on for the next message; if the
// turn has not ended within the interrupt grace, the process is killed.
// A drain or a stall kills at once: the drain has no time to spare, and a
// wedged CLI does not answer interrupts. A cold process is killed.
func (t *Turn) Stop(why outcome.Outcome) bool {
	t.mu.Lock()
	if t.ended || t.stop != "" {
		// A drain or a stall does not wait out an interrupt's grace.
		hurry := !t.ended && t.interrupting && (why == outcome.Drained || why == outcome.Stalled)
		t.mu.Unlock()
		if hurry {
			t.log.Info("killing a turn being interrupted", "reason", string(why))
			t.p.proc.Kill()
		}
		return false
	}
	t.stop = why
	written := !t.written.IsZero()
	interrupt := t.p.warm && written && (why == outcome.Cancelled || why == outcome.Timeout)
	t.interrupting = interrupt
	if interrupt {
		t.p.input(interruptLine(), false) // after the message: both are written in order
		grace := t.p.a.opts.InterruptGrace
		t.timers = append(t.timers, time.AfterFunc(grace, func() {
			t.log.Warn("turn did not end after its interrupt; killing claude", "grace", grace)
			t.p.proc.Kill()
		}))
	}
	t.mu.Unlock()
	t.log.Info("stopping turn", "reason", string(why), "interrupt", interrupt)
	switch {
	case !written: // send ends it
	case !interrupt:
		t.p.proc.Kill()
	}
	return true
}

// Done is closed when the turn has ended and its result is made.
func (t *Turn) Done() <-chan struct{} { return t.done }

// Result waits for the turn to end and returns what it came to.
func (t *Turn) Result() *Result {
	<-t.done
	return t.res
}

// Warm reports whether the turn went to a process already running.
func (t *Turn) Warm() bool { return t.warm }

// line takes a line of stdout that looks like JSON; cut says its long
// strings were cut (lines.go).
func (t *Turn) line(b []byte, cut bool) {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	l, ev, ok := t.tr.parse(b, cut)
	t.heard = true
	if ok {
		t.watch.line(l, time.Now())
		if !t.started && t.tr.sessionID != "" {
			t.tellStart(t.tr.sessionID)
		}
		if l.Type == "user" { // a tool's result: the tool is done, its images whole
			t.cap.toolDone()
		}
		if ev != nil {
			t.cap.send(*ev)
		}
	}
	t.mu.Unlock()
	if ok && l.Type == "result" {
		t.finish(nil)
	}
}

// raw takes stdout that is not stream-json.
func (t *Turn) raw(b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ended {
		t.tr.keepRaw(b)
	}
}

// tellStart tells EventStart, once a turn; the caller holds t.mu.
func (t *Turn) tellStart(session string) {
	t.started = true
	t.cap.send(Event{Kind: EventStart, Pid: t.p.Pid(), SessionID: session})
}

// exited ends the turn as its process has ended.
func (t *Turn) exited(ex supervisor.Exit) { t.finish(&ex) }

// finish ends the turn, once: at its result line, at its process's end,
// or stopped before its message went out.
func (t *Turn) finish(ex *supervisor.Exit) {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	t.ended = true
	for _, tm := range t.timers {
		tm.Stop()
	}
	unheard := ex != nil && t.p.warm && !t.heard
	if !t.started && t.p.Pid() != 0 && !unheard {
		t.tellStart(t.tr.sessionID) // a CLI that never said its session
	}
	t.mu.Unlock()
	// The turn's tools are done: no image of its can appear any more.
	imgs := t.cap.close()
	res := t.result(ex, imgs)
	res.Unheard = unheard
	p := t.p
	p.mu.Lock()
	if p.turn == t {
		p.turn = nil
	}
	if p.session == "" {
		p.session = res.SessionID
	}
	p.mu.Unlock()
	t.res = res
	close(t.done)
}

// result sums the turn up; t is ended, so nothing else touches tr.
func (t *Turn) result(ex *supervisor.Exit, imgs []string) *Result {
	now := time.Now()
	tr := t.tr
	r := &Result{Pid: t.p.Pid(), Timeout: t.timeout, Duration: now.Sub(t.begun), Images: imgs, Report: tr.report,
		SessionID: tr.sessionID, Warnings: tr.warnings, ExitCode: -1, Warm: t.warm}
	if r.SessionID == "" {
		r.SessionID = t.p.Session()
	}
	if tr.report != nil {
		if tr.report.SessionID != "" {
			r.SessionID = tr.report.SessionID
		}
		t.p.spend(tr)
		if !t.written.IsZero() {
			r.Latency = now.Sub(t.written)
		}
	}
	switch {
	case ex != nil && ex.Signal != 0:
		r.Signal = ex.SignalName()
	case ex != nil:
		r.ExitCode = ex.Code
	case tr.report != nil && tr.report.IsError:
		r.ExitCode = 1
	case tr.report != nil:
		r.ExitCode = 0
	}
	r.Text, r.Truncated = tr.answer(t.stop != "")
	r.Outcome, r.Message = t.classify(ex)
	t.log.Info("turn done", "outcome", string(r.Outcome), "exit_code", r.ExitCode, "signal", r.Signal,
		"session_id", r.SessionID, "warm", r.Warm, "stderr_bytes", t.p.stderr.total(), "duration", r.Duration)
	switch r.Outcome {
	case outcome.Failed, outcome.StartFailed:
		t.log.Error("command failed", "outcome", string(r.Outcome), "exit_code", r.ExitCode,
			"stderr", string(tailOf(t.p.stderr.bytes())))
	case outcome.AgentError:
		t.log.Warn("claude reported an error", "message", r.Message)
	}
	return r
}

// classify says what the turn came to, and why when it failed.
func (t *Turn) classify(ex *supervisor.Exit) (outcome.Outcome, string) {
	if t.stop != "" {
		return t.stop, ""
	}
	if t.p.err != nil {
		return outcome.StartFailed, t.p.err.Error()
	}
	r := t.tr.report
	stderr := t.p.stderr.bytes()
	// Said in an error result, or, without any result, on stderr: a run
	// that succeeded is an answer whatever its stderr holds.
	if t.p.resume != "" && (r == nil && bytes.Contains(stderr, noSession) ||
		r != nil && r.IsError && strings.Contains(r.Text, string(noSession))) {
		return outcome.SessionNotFound, ""
	}
	// The CLI's verdict, whatever its exit code says. Without one (a CLI
	// that does not speak stream-json), exit 0 of a cold process means its
	// output is the answer.
	switch {
	case r != nil && r.IsError:
		return outcome.AgentError, r.Text
	case r != nil:
		return outcome.Succeeded, ""
	case ex != nil && !t.p.warm && ex.Signal == 0 && ex.Code == 0:
		return outcome.Succeeded, ""
	}
	// The CLI says why it failed on stderr, or on stdout outside stream-json.
	switch errEnd, outEnd := tailOf(stderr), tailOf(t.tr.raw); {
	case len(errEnd) > 0:
		return outcome.Failed, string(errEnd)
	case len(outEnd) > 0:
		return outcome.Failed, string(outEnd)
	case ex != nil && ex.Signal != 0:
		return outcome.Failed, "claude was killed by " + ex.SignalName()
	case ex != nil:
		return outcome.Failed, fmt.Sprintf("claude exited with status %d", ex.Code)
	}
	return outcome.Failed, "claude ended the turn without a result"
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
