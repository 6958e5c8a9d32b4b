// Package supervisor owns the processes vmd starts, and knows nothing of
// what they are. It starts a Spec (path, arguments, environment, directory)
// in a process group of its own, optionally with a TMPDIR of its own, hands
// its stdout and stderr to the caller's readers and its stdin to the
// caller, kills its whole group on request, and once it has exited kills
// whatever it left behind (the sweep) and removes its TMPDIR. Nothing here
// decides when a process should end: that is the caller's.
//
// One reaper serves every supervisor of the process (reap.go): it waits
// for the processes the supervisors started, by pid, and hands each its
// exit status. A supervisor made with Config.Reap also has it reap every
// other child that comes to the process (orphans, as PID 1 or as a child
// subreaper): set it where the process is vmd alone, never where other
// code of the process waits for children of its own (os/exec in a test).
//
// Linux is the platform (proc_linux.go). On macOS (proc_darwin.go), for
// development, it runs processes without subreaping: see there for what
// that leaves out.
package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/vmd-dev/vmd/internal/leftovers"
	"github.com/vmd-dev/vmd/internal/metric"
)

// ErrStopped is returned by Start once Stop has been called.
var ErrStopped = errors.New("shutting down")

// Bounds on the waits after a process, so that nothing can hang its caller.
const (
	// killWait is how long a SIGKILLed process may take to die. Only a
	// process stuck in the kernel (D state) takes longer.
	killWait = 500 * time.Millisecond
	// sweepWait is how long the processes left behind may take to die.
	sweepWait = 500 * time.Millisecond
	// drainPipes is how long output may still flow once every process is
	// dead; only a pipe passed outside vmd's tree lasts longer.
	drainPipes = 250 * time.Millisecond
	// tempStopWait bounds the removal of temp dirs at exit.
	tempStopWait = 500 * time.Millisecond
)

// markerEnv names the variable every process gets, with a value of its
// own, and passes on to everything it starts: the sweep tells by it which
// orphans a process left (see sweep).
const markerEnv = "VMD_PROCESS"

// Config is how the supervisor runs processes.
type Config struct {
	// TempRoot holds the per-process temporary directories; empty is the
	// system's.
	TempRoot string
	// Reap has this supervisor reap, as long as it runs, every child of
	// the process that no supervisor waits for, and its sweeps kill every
	// orphan that is nobody's. For a process that is vmd alone.
	Reap bool
	// Metrics, if set, is where the supervisor counts what it reaps and
	// kills.
	Metrics *metric.Registry
}

// Supervisor starts processes and sees each to its end. Run is its actor.
type Supervisor struct {
	cfg  Config
	log  hclog.Logger
	tmp  *tempDirs
	id   string // what its processes' markers start with
	seq  atomic.Uint64
	stop chan struct{}
	once sync.Once
	done chan struct{}

	mu      sync.Mutex // guards procs and stopped
	procs   map[*Process]struct{}
	stopped bool

	strays  *vm.Counter // processes the sweeps killed
	orphans *vm.Counter // orphans reaped while it reaps every child
}

var supervisors atomic.Uint64 // numbers the supervisors of the process

// New makes a supervisor and, where the system has them, makes the process
// a child subreaper, so that orphans of its processes come back to it.
func New(cfg Config, log hclog.Logger) (*Supervisor, error) {
	if os.Getpid() != 1 {
		if err := becomeSubreaper(); err != nil {
			return nil, fmt.Errorf("becoming a child subreaper: %w", err)
		}
	}
	reg := cfg.Metrics
	if reg == nil {
		reg = metric.New() // counted all the same, shown nowhere
	}
	reg.Help(familyStrays, "Processes found still alive below vmd after the process that started them ended, and killed.")
	reg.Help(familyOrphans, "Orphaned processes (not the CLI itself) vmd reaped, as PID 1 or child subreaper.")
	return &Supervisor{
		cfg: cfg, log: log,
		tmp:     newTempDirs(cfg.TempRoot, log),
		id:      strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(supervisors.Add(1), 10),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		procs:   map[*Process]struct{}{},
		strays:  reg.Counter(familyStrays),
		orphans: reg.Counter(familyOrphans),
	}, nil
}

// The supervisor's metric families.
const (
	familyStrays  = "vmd_stray_processes_killed_total"
	familyOrphans = "vmd_zombies_reaped_total"
)

// Run waits for Stop, then kills every process still running and returns
// once each is done. With Config.Reap it reaps orphans meanwhile.
func (s *Supervisor) Run() error {
	defer close(s.done)
	defer s.tmp.stop(tempStopWait)
	if s.cfg.Reap {
		reaper.reapAll(s.orphans, true)
		defer reaper.reapAll(s.orphans, false)
	}
	<-s.stop
	s.mu.Lock()
	left := make([]*Process, 0, len(s.procs))
	for p := range s.procs {
		left = append(left, p)
	}
	s.mu.Unlock()
	for _, p := range left {
		p.Kill()
	}
	for _, p := range left {
		<-p.Done()
	}
	return nil
}

// Stop makes Start refuse new processes and Run kill those left. The
// callers stop their processes first, each its own way; this is the last
// word.
func (s *Supervisor) Stop() {
	s.once.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		close(s.stop)
	})
}

// Stopping is closed once Stop has been called.
func (s *Supervisor) Stopping() <-chan struct{} { return s.stop }

// Done is closed when Run has returned: no process runs and none will.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// StraysKilled counts the processes sweeps found alive after their
// process had exited, and killed.
func (s *Supervisor) StraysKilled() uint64 { return s.strays.Get() }

// ZombiesReaped counts the orphans (children no supervisor started) reaped
// while this supervisor reaps every child (Config.Reap).
func (s *Supervisor) ZombiesReaped() uint64 { return s.orphans.Get() }

// Spec is a process to start.
type Spec struct {
	// Path is the executable, an absolute path (a relative one would change
	// meaning in Dir).
	Path string
	// Args follow Path on the command line (argv[1:]).
	Args []string
	// Env is its environment.
	Env []string
	// Dir is its working directory; empty is vmd's own.
	Dir string
	// TempDir gives it a TMPDIR of its own, in place of any in Env,
	// removed once it is done: the CLI, Playwright and Chromium leave
	// sockets, profiles and downloads there, all the more when killed.
	TempDir bool
	// Stdout and Stderr, if set, read its output to the end, each in a
	// goroutine of its own; unset, output is discarded. Once every process
	// is gone, reads are cut short within a moment.
	Stdout, Stderr func(io.Reader)
	// Log is its logger; nil is the supervisor's.
	Log hclog.Logger
}

// Exit is how a process ended.
type Exit struct {
	// Code is its exit status, or -1 when it has none (killed by a signal,
	// or not seen to exit).
	Code int
	// Signal is the signal that ended it, or 0.
	Signal syscall.Signal
	// Strays counts the processes it left alive, which the sweep killed.
	Strays int
	// Duration runs from its start to the end of the cleanup.
	Duration time.Duration
}

// SignalName is the name of the signal that ended the process ("SIGKILL"),
// or "" if none did.
func (e Exit) SignalName() string {
	if e.Signal == 0 {
		return ""
	}
	return unix.SignalName(e.Signal)
}

// Process is a process Start started.
type Process struct {
	pid    int
	marker string
	stdin  *os.File
	log    hclog.Logger
	start  time.Time

	exitc  chan exitStatus // the reaper's delivery
	killed chan struct{}   // closed by the first Kill
	kill   sync.Once
	done   chan struct{}
	exit   Exit // set before done is closed
}

// Start starts spec in a process group of its own and sees it to its end
// in the background. It returns ErrStopped after Stop, or why the process
// could not start.
func (s *Supervisor) Start(spec Spec) (*Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, ErrStopped
	}
	log := spec.Log
	if log == nil {
		log = s.log
	}
	p := &Process{marker: s.id + "." + strconv.FormatUint(s.seq.Add(1), 10), log: log, start: time.Now(),
		exitc: make(chan exitStatus, 1), killed: make(chan struct{}), done: make(chan struct{})}
	env := append(without(spec.Env, "TMPDIR", markerEnv), markerEnv+"="+p.marker)
	var dir *leftovers.Dir
	if spec.TempDir {
		var err error
		if dir, err = s.tmp.take(); err != nil {
			return nil, fmt.Errorf("temp dir: %w", err)
		}
		env = append(env, "TMPDIR="+dir.Path)
	}
	pipes, err := newStdio()
	if err != nil {
		s.tmp.discardOrNil(dir)
		return nil, fmt.Errorf("pipes: %w", err)
	}
	p.pid, err = reaper.start(spec, env, pipes, p)
	pipes.closeTheirs()
	if err != nil {
		pipes.close()
		s.tmp.discardOrNil(dir)
		return nil, startError(spec, err)
	}
	p.stdin = pipes[0].ours
	p.log = log.With("pid", p.pid)
	p.log.Debug("spawn", "path", spec.Path)
	s.procs[p] = struct{}{}
	copying := pipes.copyOut(spec)
	go s.watch(p, pipes, copying, dir)
	return p, nil
}

// watch sees p to its end: its exit (or a kill it does not survive), the
// sweep of what it left, its output read, its TMPDIR handed back.
func (s *Supervisor) watch(p *Process, pipes stdio, copying *sync.WaitGroup, dir *leftovers.Dir) {
	ex, exited := p.await()
	strays := s.sweep(p)
	// Output still in the pipes is read to the end; a writer that escaped
	// vmd's tree cannot hold the caller back for long.
	p.stdin.Close()
	if !pipes.drain(copying) {
		p.log.Warn("output pipes still open after the process; closed them")
	}
	s.tmp.discardOrNil(dir) // every process of it is dead
	e := Exit{Code: -1, Strays: strays, Duration: time.Since(p.start)}
	if exited {
		switch {
		case ex.status.Exited():
			e.Code = ex.status.ExitStatus()
		case ex.status.Signaled():
			e.Signal = ex.status.Signal()
		}
	}
	p.exit = e
	p.log.Debug("process done", "exit_code", e.Code, "signal", e.SignalName(), "strays", strays,
		"cpu", cpuTime(ex.usage), "duration", e.Duration)
	s.mu.Lock()
	delete(s.procs, p)
	s.mu.Unlock()
	close(p.done)
}

// await waits for the process to exit. Once killed, it waits killWait at
// most: a process that survives SIGKILL is stuck in the kernel, and is
// left to the reaper, should it ever die.
func (p *Process) await() (exitStatus, bool) {
	select {
	case ex := <-p.exitc:
		return ex, true
	case <-p.killed:
	}
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case ex := <-p.exitc:
		return ex, true
	case <-t.C:
	}
	if !reaper.forget(p.pid) {
		return <-p.exitc, true // delivered just now
	}
	p.log.Error("process survives SIGKILL", "waited", killWait)
	return exitStatus{}, false
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.pid }

// Stdin is the process's standard input, the caller's to write and close.
func (p *Process) Stdin() io.WriteCloser { return p.stdin }

// Kill sends SIGKILL to the process's whole group at once, unless it has
// exited. Not SIGTERM first: a caller that kills has decided, and a
// process (or a browser below it) that ignores SIGTERM must not stretch
// that. Its orphans are killed by the sweep once it is gone.
func (p *Process) Kill() {
	p.kill.Do(func() {
		reaper.kill(p.pid)
		close(p.killed)
	})
}

// Done is closed once the process has exited, everything it left is
// dead, its output read and its TMPDIR handed back.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for Done and returns how the process ended.
func (p *Process) Wait() Exit {
	<-p.done
	return p.exit
}

// startError says why spec could not start.
func startError(spec Spec, err error) error {
	if errors.Is(err, syscall.ENOENT) {
		if _, serr := os.Stat(spec.Dir); spec.Dir != "" && serr != nil {
			return fmt.Errorf("working directory %q: %w", spec.Dir, serr)
		}
		// The file is there (the caller found it): what is missing is the
		// interpreter its #! line names.
		err = fmt.Errorf("%w (the file exists: is the interpreter on its #! line installed?)", err)
	}
	return fmt.Errorf("starting %s: %w", spec.Path, err)
}

// without is env without the variables named: each process gets its own.
func without(env []string, names ...string) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && name != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

func cpuTime(ru *syscall.Rusage) time.Duration {
	if ru == nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
