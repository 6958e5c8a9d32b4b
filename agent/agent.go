// Package agent runs the Claude Code CLI (`claude -p`) for one prompt at a
// time through the supervisor: it builds the command line and environment,
// reads the CLI's stream-json output as it comes, tells the images store
// when to look for the command's images, and sums the run up as a Result
// with a domain Outcome. It also asks the CLI its version. Everything vmd
// knows about the CLI's words and flags lives here.
package agent

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/supervisor"
)

// stderrTail is how much of the end of stderr is kept.
const stderrTail = 64 << 10

var (
	// ErrBusy is returned by Start while another command runs.
	ErrBusy = supervisor.ErrBusy
	// ErrDraining is returned by Start, and by Version with no version
	// known, once vmd is stopping.
	ErrDraining = supervisor.ErrDraining
)

// Options are how the CLI is run.
type Options struct {
	// Bin is the CLI, a path or a name looked up on PATH at each command.
	Bin string
	// Args follow Bin on the command line (see Args).
	Args []string
	// Env is the CLI's environment (see Env).
	Env []string
	// Dir is the CLI's working directory; empty is vmd's own.
	Dir string
	// Timeout bounds one command.
	Timeout time.Duration
	// MaxOutput is how much of the answer, and of other output, is kept.
	MaxOutput int
	// StallTimeout is how long the CLI may show no sign of life, no tool
	// call open, before it is killed as stalled (see stall.go); zero or
	// less never.
	StallTimeout time.Duration
	// VersionTimeout bounds one version probe (5 s); VersionRetry is how
	// long a failed probe's answer stands (5 s). Zero is the default.
	VersionTimeout, VersionRetry time.Duration
}

// Agent runs the CLI through a supervisor.
type Agent struct {
	sup  *supervisor.Supervisor
	img  *images.Store
	log  hclog.Logger
	opts Options
	ver  versionProbe // see version.go
}

// New makes an agent. img may be nil: no images are recorded.
func New(sup *supervisor.Supervisor, img *images.Store, log hclog.Logger, opts Options) *Agent {
	return &Agent{sup: sup, img: img, log: log, opts: opts}
}

// Request is one prompt.
type Request struct {
	// Prompt goes to the CLI's stdin.
	Prompt string
	// SessionID, if set, continues that session (--resume).
	SessionID string
	// Timeout bounds the command; zero or more than Options.Timeout is
	// Options.Timeout.
	Timeout time.Duration
	// Log is the request's logger; nil is the agent's.
	Log hclog.Logger
	// OnEvent, if set, hears the command's progress. Calls come one at a
	// time, in order, all before Wait returns; they must not block for long.
	OnEvent func(Event)
	// Hold, if set, holds the prompt back until it is closed: the CLI
	// starts at once, but cannot act on a prompt it has not read.
	Hold <-chan struct{}
}

// Run is a command the agent has started.
type Run struct {
	sup  *supervisor.Running
	pid  atomic.Int64
	done chan struct{}
	res  *Result
}

// Start takes the supervisor's slot and runs the CLI on the prompt in the
// background. It returns ErrBusy at once while another command runs and
// ErrDraining once vmd is stopping.
func (a *Agent) Start(req Request) (*Run, error) {
	log := req.Log
	if log == nil {
		log = a.log
	}
	timeout := a.opts.Timeout
	if req.Timeout > 0 && req.Timeout < timeout {
		timeout = req.Timeout
	}
	c := newCapture(a.opts.MaxOutput, log, req.OnEvent, a.img)
	c.tr.watch = newStallWatch(a.opts.StallTimeout, time.Now())
	started := make(chan int, 1)
	r := &Run{done: make(chan struct{})}
	spec := supervisor.Spec{Args: a.argv(req.SessionID), Env: a.opts.Env, Dir: a.opts.Dir,
		Stdin: []byte(req.Prompt), Hold: holds(c.begun, req.Hold), Timeout: timeout, Log: log,
		Stdout: c.tr.fill, Stderr: c.stderr.fill,
		OnStart: func(pid int) { r.pid.Store(int64(pid)); c.tr.pid = pid; started <- pid }}
	// A CLI that cannot be found still takes the slot and fails its
	// start, as any failed start does, with this error.
	spec.Path, spec.Err = resolveBin(a.opts.Bin)
	sr, err := a.sup.Start(spec)
	if err != nil {
		c.close()
		return nil, err
	}
	r.sup = sr
	// Like the timeout, a stall stops the run through the supervisor's halt.
	go c.tr.watch.guard(started, sr.Done(), sr.Stall, log)
	go func() {
		defer close(r.done)
		r.res = c.finish(sr.Wait(), req, timeout, log)
	}()
	return r, nil
}

// holds are what the prompt waits for: the images recording to begin,
// then the caller's hold, if any.
func holds(begun, caller <-chan struct{}) []<-chan struct{} {
	if caller == nil {
		return []<-chan struct{}{begun}
	}
	return []<-chan struct{}{begun, caller}
}

// Done is closed when the command is over and the slot free.
func (r *Run) Done() <-chan struct{} { return r.done }

// Wait waits for the command to end and returns what it produced.
func (r *Run) Wait() *Result {
	<-r.done
	return r.res
}

// Cancel stops the command if it still runs; it does not wait. It reports
// whether it stopped it: then, and only then, the outcome is Cancelled.
func (r *Run) Cancel() bool { return r.sup.Cancel() }

// Pid is the CLI's process id, or 0 before it has started.
func (r *Run) Pid() int { return int(r.pid.Load()) }

// Cancel stops the running command, whoever started it, and returns once
// the slot is free; false if none was running or it ended otherwise first.
func (a *Agent) Cancel() bool {
	_, ok := a.sup.Cancel()
	return ok
}

// Kill stops the running command at once, as the drain deadline would.
func (a *Agent) Kill() { a.sup.Kill() }
