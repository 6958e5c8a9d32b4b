package agent

import (
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/supervisor"
)

// capture is what one command's output is read into: the transcript of
// stdout, the end of stderr, and the images the command makes.
type capture struct {
	tr     *transcript
	stderr tail
	rec    *images.Recording // nil without an images store; set once begun is closed
	begun  chan struct{}     // closed once the recording has begun

	// With a watcher, events go through the announcer, in order with the
	// images: the reader queues them and never waits for the images.
	mu        sync.Mutex
	queued    []queued
	wake      chan struct{} // a queued item is waiting
	stop      chan struct{} // closed when the command is over
	announced chan struct{} // closed once the announcer has stopped
}

// queued is an event to tell, or (toolDone) the sign that a tool's result
// was read: its images are told first.
type queued struct {
	ev       Event
	toolDone bool
}

func newCapture(limit int, log hclog.Logger, emit func(Event), img *images.Store) *capture {
	c := &capture{tr: newTranscript(limit, log, emit), stderr: tail{max: stderrTail}, begun: make(chan struct{})}
	if img == nil {
		close(c.begun)
		return c
	}
	// Begun while the CLI starts: it gets its prompt once begun is closed
	// (see Agent.Start), so any image it makes is the recording's.
	go func() {
		c.rec = img.Begin(c.tr.image)
		close(c.begun)
	}()
	if emit == nil {
		return c // nobody watches: the images are listed at the end
	}
	c.wake, c.stop, c.announced = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	c.tr.queue = func(ev Event) { c.push(queued{ev: ev}) }
	c.tr.onToolResult = func() { c.push(queued{toolDone: true}) }
	go c.announce()
	return c
}

func (c *capture) push(q queued) {
	c.mu.Lock()
	if n := len(c.queued); !q.toolDone || n == 0 || !c.queued[n-1].toolDone { // one sign stands for several
		c.queued = append(c.queued, q)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// announce tells the queued events in order and, at each tool result, the
// images the tool wrote, as soon as the images watcher has caught up with
// them. It runs off the stdout reader's path: a slow watcher must not hold
// the output back. After the watcher once fails to catch up in time it is
// not asked again: a stalled watcher must not cost a moment per tool
// result.
func (c *capture) announce() {
	defer close(c.announced)
	catchUp := true
	tell := func() {
		c.mu.Lock()
		items := c.queued
		c.queued = nil
		c.mu.Unlock()
		for _, q := range items {
			if !q.toolDone {
				c.tr.emitOne(q.ev)
				continue
			}
			<-c.begun // at once: a tool ran, so the prompt was let go
			if catchUp && !c.rec.CatchUp() {
				catchUp = false
			}
			c.tr.announceImages()
		}
	}
	for {
		tell()
		select {
		case <-c.stop:
			tell() // what came with the last wake
			return
		case <-c.wake:
		}
	}
}

// close ends the recording and the announcer, once every event is told; it
// returns the images the command left. The readers are done by then.
func (c *capture) close() []string {
	<-c.begun
	if c.rec == nil {
		return nil
	}
	if c.stop != nil {
		close(c.stop)
		<-c.announced
		c.tr.queue = nil // from here on, events are told at once
	}
	return c.rec.End()
}

// finish sums the command up once every process of it is gone.
func (c *capture) finish(res supervisor.Result, req Request, timeout time.Duration, log hclog.Logger) *Result {
	// Every process of the command is gone: no image can appear any more.
	imgs := c.close()
	tr := c.tr
	if res.Pid != 0 {
		tr.start() // for a CLI that never said it started
		tr.announceImages()
		for _, n := range imgs {
			tr.announce(n)
		}
	}
	r := &Result{Pid: res.Pid, Timeout: timeout, Duration: res.Duration, Images: imgs, Strays: res.Strays,
		Report: tr.report, SessionID: tr.sessionID, Warnings: tr.warnings, ExitCode: -1, Signal: res.SignalName()}
	if res.Signal == 0 && res.ExitCode >= 0 {
		r.ExitCode = res.ExitCode
	}
	r.Text, r.Truncated = tr.answer()
	if r.Report != nil && r.Report.SessionID != "" {
		r.SessionID = r.Report.SessionID
	}
	r.Outcome, r.Message = classify(res, req, tr, c.stderr.bytes())
	logged := log
	if res.Pid != 0 {
		logged = log.With("pid", res.Pid)
	}
	logged.Info("done", "outcome", r.Outcome.String(), "exit_code", res.ExitCode, "signal", r.Signal,
		"session_id", r.SessionID, "stderr_bytes", c.stderr.read, "strays", res.Strays, "duration", res.Duration)
	switch r.Outcome {
	case Crashed, StartFailed:
		logged.Error("command failed", "outcome", r.Outcome.String(), "exit_code", res.ExitCode,
			"stderr", string(tailOf(c.stderr.bytes())))
	case AgentError:
		logged.Warn("claude reported an error", "message", r.Message)
	}
	return r
}
