package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

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

// Spec is a process to run.
type Spec struct {
	// Path is the executable, an absolute path (a relative one would change
	// meaning in Dir).
	Path string
	// Args follow Path on the command line (argv[1:]).
	Args []string
	// Env is its environment. A process in the slot gets a TMPDIR of its
	// own in place of any given here.
	Env []string
	// Dir is its working directory; empty is vmd's own.
	Dir string
	// Stdin is written to its standard input, which is then closed.
	Stdin []byte
	// Hold holds Stdin back until each of its channels is closed: the
	// process starts at once but gets no input before. A process that ends
	// first never gets it.
	Hold []<-chan struct{}
	// Timeout bounds it; zero is none.
	Timeout time.Duration
	// Stdout and Stderr, if set, read its output to the end, each in a
	// goroutine of its own; unset, output is discarded. Once every process
	// is gone, reads are cut short within a moment.
	Stdout, Stderr func(io.Reader)
	// OnStart, if set, hears its pid as soon as it is started.
	OnStart func(pid int)
	// Log is its logger; nil is the supervisor's.
	Log hclog.Logger
	// Err, if set, is why the caller cannot name an executable (it is not
	// on PATH, say): nothing is started, and the process ends at once as
	// StartFailed with this error, having taken and given back the slot
	// like any start that fails.
	Err error
}

// Outcome says how a process ended.
type Outcome int

// The ways a process ends.
const (
	// Exited: it exited by itself, with any exit code or signal.
	Exited Outcome = iota
	// TimedOut: its timeout expired and it was killed.
	TimedOut
	// Drained: vmd was stopping and the drain deadline passed.
	Drained
	// StartFailed: it could not be started; Result.Err says why.
	StartFailed
	// Cancelled: Cancel stopped it.
	Cancelled
	// Stalled: the caller's watchdog found it making no progress and
	// stopped it (Running.Stall).
	Stalled
)

func (o Outcome) String() string {
	switch o {
	case Exited:
		return "exited"
	case TimedOut:
		return "timeout"
	case Drained:
		return "drained"
	case StartFailed:
		return "start_failed"
	case Cancelled:
		return "cancelled"
	case Stalled:
		return "stalled"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Result is how a process went.
type Result struct {
	Outcome Outcome
	// Pid was its process id; 0 if it never started.
	Pid int
	// ExitCode is its exit status, or -1 when it has none (killed by a
	// signal, never started, or not seen to exit).
	ExitCode int
	// Signal is the signal that ended it, or 0.
	Signal syscall.Signal
	// Strays counts the processes still alive once it was gone, killed by
	// the sweep (processes in the slot only).
	Strays int
	// Duration runs from the start to the end of the cleanup.
	Duration time.Duration
	// Err is why it could not start (StartFailed).
	Err error
}

// SignalName is the name of the signal that ended the process ("SIGKILL"),
// or "" if none did.
func (r Result) SignalName() string {
	if r.Signal == 0 {
		return ""
	}
	return unix.SignalName(r.Signal)
}

// execute runs spec to its end: the one path every process takes. inSlot
// adds a TMPDIR of its own and the sweep of what it leaves behind.
func (s *Supervisor) execute(spec Spec, h *halt, inSlot bool) (res Result) {
	start := time.Now()
	res.ExitCode = -1
	log := spec.Log
	if log == nil {
		log = s.log
	}
	defer func() { res.Duration = time.Since(start) }()
	if spec.Err != nil {
		return failed(res, log, spec.Err)
	}
	env := spec.Env
	if inSlot {
		// Its own TMPDIR: the CLI, Playwright and Chromium leave sockets,
		// profiles and downloads there, all the more when killed.
		dir, err := s.tmp.take()
		if err != nil {
			return failed(res, log, fmt.Errorf("temp dir: %w", err))
		}
		// Removed once every process is dead (deferred calls run after
		// the sweep below).
		defer s.tmp.discard(dir)
		env = append(withoutTMPDIR(env), "TMPDIR="+dir.Path)
	}
	return s.spawnAndWait(spec, env, h, inSlot, res, log)
}

// spawnAndWait starts the process with its pipes and sees it to its end.
func (s *Supervisor) spawnAndWait(spec Spec, env []string, h *halt, inSlot bool, res Result, log hclog.Logger) Result {
	start := time.Now()
	pipes, err := newStdio()
	if err != nil {
		return failed(res, log, fmt.Errorf("pipes: %w", err))
	}
	pid, exitc, err := s.start(spec, env, pipes)
	pipes.closeTheirs()
	if err != nil {
		pipes.close()
		return failed(res, log, startError(spec, err))
	}
	res.Pid = pid
	log = log.With("pid", pid)
	if inSlot {
		log.Info("spawn", "path", spec.Path)
	} else {
		log.Debug("spawn beside the slot", "path", spec.Path)
	}
	if spec.OnStart != nil {
		spec.OnStart(pid)
	}
	gone := make(chan struct{})
	copying := pipes.copy(spec, gone)
	ex, exited := s.await(pid, exitc, spec.Timeout, h, &res, log)
	close(gone)
	if inSlot {
		// The process is gone. Nothing it started may live on: the reaper
		// already killed its process group; the sweep gets the rest
		// (processes in sessions of their own, like Chromium), which also
		// closes any pipe a grandchild was holding open.
		res.Strays = s.sweep(log)
	}
	// Output still in the pipes is read to the end; a writer that escaped
	// vmd's tree cannot hold the caller back for long.
	pipes[0].ours.Close()
	if !pipes.drain(copying) {
		log.Warn("output pipes still open after the process; closed them")
	}
	if exited {
		switch {
		case ex.status.Exited():
			res.ExitCode = ex.status.ExitStatus()
		case ex.status.Signaled():
			res.Signal = ex.status.Signal()
		}
	}
	log.Debug("process done", "outcome", res.Outcome.String(), "exit_code", res.ExitCode,
		"signal", res.SignalName(), "strays", res.Strays, "cpu", cpuTime(ex.usage), "duration", time.Since(start))
	return res
}

func failed(res Result, log hclog.Logger, err error) Result {
	res.Outcome, res.Err = StartFailed, err
	log.Error("spawn failed", "error", err)
	return res
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

// await waits for the process to exit, its timeout or a halt; it kills the
// process if it has not exited, and says whether its exit was seen.
func (s *Supervisor) await(pid int, exitc <-chan exit, timeout time.Duration, h *halt, res *Result, log hclog.Logger) (exit, bool) {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	// The halt decides the outcome once: an exit, the timeout or a stop,
	// whichever comes first. One that comes second, even a moment later,
	// changes nothing, and its caller hears so (halt.do).
	select {
	case ex := <-exitc:
		if h.do(Exited) {
			return ex, true
		}
		// Stopped just as it exited: the stop stands (its caller was told
		// it stopped the process), and there is nothing left to kill.
		res.Outcome = h.reason
		return ex, true
	case <-expired:
		if h.do(TimedOut) {
			res.Outcome = TimedOut
			log.Warn("timeout", "duration", timeout)
			return s.kill(pid, exitc, log)
		}
	case <-h.c:
	}
	res.Outcome = h.reason
	log.Warn("stopping process", "reason", h.reason.String())
	return s.kill(pid, exitc, log)
}

// copy writes stdin (once spec.Hold lets it, unless the process is gone
// first) and runs the readers of stdout and stderr, each in a goroutine of
// its own.
func (p stdio) copy(spec Spec, gone <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		defer p[0].ours.Close()
		for _, hold := range spec.Hold {
			select {
			case <-hold:
			case <-gone:
				return
			}
		}
		// A process that exits without reading its stdin breaks the pipe:
		// not an error of ours.
		_, _ = p[0].ours.Write(spec.Stdin)
	})
	for i, read := range []func(io.Reader){spec.Stdout, spec.Stderr} {
		if read == nil {
			read = func(r io.Reader) { _, _ = io.Copy(io.Discard, r) }
		}
		f := p[i+1].ours
		wg.Go(func() { read(f) })
	}
	return &wg
}

func cpuTime(ru *syscall.Rusage) time.Duration {
	if ru == nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
