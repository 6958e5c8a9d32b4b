// Package supervisor owns every process vmd starts, and nothing about what
// those processes are. It runs a Spec (path, arguments, environment,
// directory, stdin) in a process group of its own with a TMPDIR of its own,
// hands its stdout and stderr to the caller's readers, enforces its timeout
// with a process-group SIGKILL, kills whatever it leaves behind, and reaps
// every zombie that comes to vmd, as PID 1 or as a child subreaper.
//
// One process at a time holds the slot (Start); others, short and bounded,
// run beside it (Exec). Both take the same fork, wait and kill path.
//
// The supervisor makes every wait4 in the process: a program that runs one
// must not use os/exec (or anything else that waits for children) beside it,
// nor run two supervisors.
//
// Linux is the platform (proc_linux.go). On macOS (proc_darwin.go), for
// development, it runs processes without subreaping: see there for what
// that leaves out.
package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

var (
	// ErrBusy is returned by Start while another process holds the slot.
	ErrBusy = errors.New("a command is already in progress")
	// ErrDraining is returned by Start and Exec once Stop has been called.
	ErrDraining = errors.New("shutting down")
)

// Config is how the supervisor runs processes.
type Config struct {
	// TempRoot holds the per-process temporary directories; empty is the
	// system's.
	TempRoot string
}

// Supervisor runs processes: one at a time in its slot, short ones beside
// it. Run is its actor.
type Supervisor struct {
	cfg Config
	log hclog.Logger

	sigchld chan os.Signal
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu       sync.Mutex // guards cur, stopping, drainBy and the Add of others
	cur      *slot
	stopping bool
	drainBy  time.Time      // when the process in the slot is killed after Stop
	others   sync.WaitGroup // processes run by Exec

	tmp  *tempDirs
	fork forker

	reapMu  sync.Mutex // guards waiters and every fork, wait and kill: see reap.go
	waiters map[int]chan exit

	stats counters // for metrics: see stats.go
}

// slot is the process that holds it.
type slot struct {
	halt     *halt
	finished chan struct{} // closed once the slot is free again
	info     Info          // guarded by Supervisor.mu
}

// Info describes the process in the slot.
type Info struct {
	// Pid is its; 0 until it has started.
	Pid int
	// Started is when Start took the slot.
	Started time.Time
}

// halt decides, once, how a process ends: stopped early for a reason
// (Cancelled, TimedOut, Drained, Stalled), or Exited by itself. Whoever
// decides first wins, and the others learn they came too late: a Cancel
// racing the process's own exit says it stopped the process only if the
// process's Result says Cancelled too.
type halt struct {
	c      chan struct{} // closed once decided
	once   sync.Once
	reason Outcome
}

func newHalt() *halt { return &halt{c: make(chan struct{})} }

// do decides the outcome is why, unless it was decided already; it reports
// whether this call decided it.
func (h *halt) do(why Outcome) bool {
	decided := false
	h.once.Do(func() {
		h.reason, decided = why, true
		close(h.c)
	})
	return decided
}

type exit struct {
	status syscall.WaitStatus
	usage  *syscall.Rusage
}

// New makes a supervisor and, where the system has them, makes vmd a child
// subreaper, so that orphans of its processes come back to it.
func New(cfg Config, log hclog.Logger) (*Supervisor, error) {
	if os.Getpid() != 1 {
		if err := becomeSubreaper(); err != nil {
			return nil, fmt.Errorf("becoming a child subreaper: %w", err)
		}
	}
	s := &Supervisor{
		cfg: cfg, log: log,
		sigchld: make(chan os.Signal, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		waiters: map[int]chan exit{},
		tmp:     newTempDirs(cfg.TempRoot, log),
		fork:    startForker(),
	}
	// Listen before any child exists, so no exit goes unnoticed.
	signal.Notify(s.sigchld, syscall.SIGCHLD)
	return s, nil
}

// Run reaps children until Stop, then drains: the process in the slot may
// go on until the deadline given to Stop, after which it is killed. Run
// returns once the slot is empty and no process of Exec is left.
func (s *Supervisor) Run() error {
	// Deferred calls run last first: the janitor's bounded wait comes after
	// done is closed, so it does not hold back the API's shutdown.
	defer s.tmp.stop(tempStopWait)
	defer close(s.done)
	defer close(s.fork)
	defer signal.Stop(s.sigchld)
	s.reap()
	for {
		select {
		case <-s.sigchld:
			s.reap()
		case <-s.stop:
			s.drain()
			return nil
		}
	}
}

// drain reaps until the slot is free and every process of Exec is over
// (Stop halted those).
func (s *Supervisor) drain() {
	s.mu.Lock()
	c, by := s.cur, s.drainBy
	s.mu.Unlock()
	var finished <-chan struct{}
	var budget <-chan time.Time
	if c != nil {
		s.log.Info("draining", "until", by)
		t := time.NewTimer(time.Until(by))
		defer t.Stop()
		finished, budget = c.finished, t.C
	}
	others := make(chan struct{})
	go func() { s.others.Wait(); close(others) }()
	for finished != nil || others != nil {
		select {
		case <-s.sigchld:
			s.reap()
		case <-budget:
			c.halt.do(Drained)
		case <-finished:
			finished = nil
		case <-others:
			others = nil
		}
	}
}

// Stop makes Start and Exec refuse new processes and starts the drain: the
// process in the slot may go on until deadline.
func (s *Supervisor) Stop(deadline time.Time) {
	s.once.Do(func() {
		s.mu.Lock()
		s.stopping, s.drainBy = true, deadline
		s.mu.Unlock()
		close(s.stop)
	})
}

// Kill stops the process in the slot at once, as if the drain deadline had
// passed: for a second SIGTERM or SIGINT, when the operator will not wait.
func (s *Supervisor) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.halt.do(Drained)
	}
}

// Done is closed when Run has returned: no process runs and none will.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// Busy reports whether a process holds the slot.
func (s *Supervisor) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// Current describes the process in the slot, if there is one.
func (s *Supervisor) Current() (Info, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return Info{}, false
	}
	return s.cur.info, true
}

// Cancel stops the process in the slot the way a timeout does (its process
// group and everything left below vmd are killed) and returns once the slot
// is free, so that the next one can start at once. It reports true only if
// it stopped the process, whose Result then has the outcome Cancelled;
// false if the slot was empty or the process had already ended (or been
// stopped) otherwise.
func (s *Supervisor) Cancel() (Info, bool) {
	s.mu.Lock()
	c := s.cur
	var info Info
	stopped := false
	if c != nil {
		info = c.info
		stopped = c.halt.do(Cancelled)
	}
	s.mu.Unlock()
	if c == nil {
		return Info{}, false
	}
	<-c.finished
	return info, stopped
}

// Running is a process that Start has taken into the slot.
type Running struct {
	c    *slot
	done chan struct{}
	res  Result
}

// Start takes the slot and runs spec in the background, with a TMPDIR of
// its own; once it has exited, everything left below vmd is killed. It
// returns ErrBusy at once while another process holds the slot and
// ErrDraining after Stop. Run must be running: it delivers exit statuses.
func (s *Supervisor) Start(spec Spec) (*Running, error) {
	c, err := s.acquire()
	if err != nil {
		return nil, err
	}
	r := &Running{c: c, done: make(chan struct{})}
	onStart := spec.OnStart
	spec.OnStart = func(pid int) {
		s.mu.Lock()
		c.info.Pid = pid
		s.mu.Unlock()
		if onStart != nil {
			onStart(pid)
		}
	}
	go func() {
		defer close(r.done)
		defer s.release(c)
		r.res = s.execute(spec, c.halt, true)
	}()
	return r, nil
}

// Done is closed when the process is over and the slot free.
func (r *Running) Done() <-chan struct{} { return r.done }

// Wait waits for the process to end and returns how it went.
func (r *Running) Wait() Result {
	<-r.done
	return r.res
}

// Cancel stops this process, as Supervisor.Cancel does, if it still runs;
// it does not wait. It reports whether it stopped it: then, and only then,
// the Result says Cancelled.
func (r *Running) Cancel() bool { return r.c.halt.do(Cancelled) }

// Stall stops this process as Cancel does, for a watchdog of the caller's
// that found it making no progress; its Result says Stalled. It reports
// whether it stopped it.
func (r *Running) Stall() bool { return r.c.halt.do(Stalled) }

// Exec runs spec outside the slot, beside whatever holds it, and waits for
// it: for short, bounded processes (give spec a Timeout). Stop kills it
// (outcome Drained); after Stop it returns ErrDraining. Run must be
// running: it delivers exit statuses.
func (s *Supervisor) Exec(spec Spec) (Result, error) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return Result{}, ErrDraining
	}
	s.others.Add(1)
	s.mu.Unlock()
	defer s.others.Done()
	h := newHalt()
	go func() {
		select {
		case <-s.stop:
			h.do(Drained)
		case <-h.c:
		}
	}()
	defer h.do(Exited) // ends the goroutine above
	return s.execute(spec, h, false), nil
}

func (s *Supervisor) acquire() (*slot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, ErrDraining
	}
	if s.cur != nil {
		return nil, ErrBusy
	}
	s.cur = &slot{halt: newHalt(), finished: make(chan struct{}), info: Info{Started: time.Now()}}
	return s.cur, nil
}

func (s *Supervisor) release(c *slot) {
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
	close(c.finished)
}

// withoutTMPDIR is env without TMPDIR: each process gets its own.
func withoutTMPDIR(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "TMPDIR=") {
			out = append(out, kv)
		}
	}
	return out
}
