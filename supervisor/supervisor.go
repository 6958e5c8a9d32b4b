// Package supervisor owns vmd's single command slot and every process vmd
// starts. It runs the Claude Code CLI for one prompt at a time, enforces the
// timeout with a process-group SIGKILL, kills whatever the command leaves
// behind, and reaps every zombie that comes to vmd, as PID 1 or as a child
// subreaper.
//
// The supervisor makes every wait4 in the process: a program that runs one
// must not use os/exec (or anything else that waits for children) beside it.
package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/vmd-dev/vmd/images"
)

// Bounds on the waits after a command, so that nothing can hang a request.
const (
	// killWait is how long a SIGKILLed CLI may take to die. Only a process
	// stuck in the kernel (D state) takes longer.
	killWait = 500 * time.Millisecond
	// sweepWait is how long the processes left behind may take to die.
	sweepWait = 500 * time.Millisecond
	// drainPipes is how long output may still flow once every process of
	// the command is dead; only a pipe passed outside vmd's tree lasts longer.
	//
	// A stop normally ends milliseconds after the 8 s drain budget. With
	// processes stuck in the kernel these waits add 1.25 s, the images
	// watcher's catch-up at most 0.5 s, and the last answer's write at most
	// 1 s: 10.75 s, just past Docker's 10 s window, only then.
	drainPipes = 250 * time.Millisecond
	// tempStopWait bounds the removal of temp dirs at exit.
	tempStopWait = 500 * time.Millisecond
	// stderrTail is how much of the end of stderr is kept.
	stderrTail = 64 << 10
)

var (
	// ErrBusy is returned by Exec while another command runs.
	ErrBusy = errors.New("a command is already in progress")
	// ErrDraining is returned by Exec once Stop has been called.
	ErrDraining = errors.New("shutting down")
)

// Config is what the supervisor needs to run a command.
type Config struct {
	// Bin is the CLI, a path or a name looked up on PATH at each command.
	Bin string
	// Args follow Bin on the command line.
	Args []string
	// Dir is the CLI's working directory; empty is vmd's own.
	Dir string
	// Env is the CLI's environment; TMPDIR is replaced by a fresh directory
	// for each command.
	Env []string
	// TempRoot holds the per-command temporary directories; empty is the
	// system's.
	TempRoot string
	// Timeout bounds one command.
	Timeout time.Duration
	// DrainTimeout is how long a running command may go on after Stop.
	DrainTimeout time.Duration
	// MaxOutput is how much stdout is kept.
	MaxOutput int
}

// Outcome says how a command ended.
type Outcome int

// The ways a command ends.
const (
	// Exited: the CLI exited by itself, with any exit code or signal.
	Exited Outcome = iota
	// TimedOut: the timeout expired and the command was killed.
	TimedOut
	// Drained: vmd was stopping and the drain budget expired.
	Drained
	// StartFailed: the CLI could not be started; Result.Err says why.
	StartFailed
	// Cancelled: Cancel stopped the command.
	Cancelled
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
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Request is one command.
type Request struct {
	// Prompt goes to the CLI's stdin.
	Prompt string
	// SessionID, if set, continues that session (--resume).
	SessionID string
	// Timeout bounds the command; zero or more than Config.Timeout is
	// Config.Timeout.
	Timeout time.Duration
	// Log is the request's logger; nil is the supervisor's.
	Log hclog.Logger
	// OnEvent, if set, hears the command's progress. Calls come one at a
	// time, in order, all before Exec returns; they must not block for long.
	OnEvent func(Event)
}

// Result is what a command produced.
type Result struct {
	Outcome Outcome
	// Pid was the CLI's process id; 0 if it never started.
	Pid int
	// Text is the answer: the CLI's result, or the assistant's text so far
	// when it ended without one, or else its output as it is (a CLI that
	// does not speak stream-json). At most Config.MaxOutput bytes.
	Text string
	// Truncated is set when the text went past Config.MaxOutput.
	Truncated bool
	// Report is the CLI's result event; nil if it wrote none.
	Report *Report
	// SessionID is the session the command ran in, once the CLI named it.
	SessionID string
	// Warnings are problems that did not stop the command, such as an MCP
	// server that failed to start.
	Warnings []string
	// Output is what the CLI wrote to stdout that is not stream-json.
	Output []byte
	// Stderr is the end of the CLI's standard error.
	Stderr []byte
	// ExitCode is the CLI's exit status, or -1 when it has none (killed by a
	// signal, never started, or not seen to exit).
	ExitCode int
	// Signal is the signal that ended the CLI, or 0.
	Signal syscall.Signal
	// Timeout is the one the command ran under.
	Timeout time.Duration
	// Duration runs from the request to the end of the cleanup.
	Duration time.Duration
	// Images are the files the command left in the images directory.
	Images []string
	// Strays counts the processes still alive once the CLI was gone, killed
	// by the sweep.
	Strays int
	// Err is why the CLI could not start (StartFailed).
	Err error
}

// Supervisor runs commands one at a time. Run is its actor.
type Supervisor struct {
	cfg    Config
	log    hclog.Logger
	images *images.Store

	sigchld chan os.Signal
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu       sync.Mutex // guards cur and stopping
	cur      *command
	stopping bool

	tmp  *tempDirs
	fork forker

	reapMu  sync.Mutex // guards waiters and every fork, wait and kill: see proc_linux.go
	waiters map[int]chan exit

	stats counters     // for metrics: see stats.go
	ver   versionProbe // CLIVersion: see version.go
}

// command is the one in the slot.
type command struct {
	halted   chan struct{} // closed to stop the command early
	reason   Outcome       // why it was halted
	once     sync.Once
	finished chan struct{} // closed once the slot is free again
	info     Info          // guarded by Supervisor.mu
}

// Info describes the running command.
type Info struct {
	// Pid is the CLI's; 0 until it has started.
	Pid int
	// Started is when the command was accepted.
	Started time.Time
	// PromptLength is the prompt's size in bytes.
	PromptLength int
	// SessionID is the session resumed, or the one the CLI started once it
	// says so.
	SessionID string
}

func (c *command) halt(why Outcome) {
	c.once.Do(func() {
		c.reason = why
		close(c.halted)
	})
}

type exit struct {
	status syscall.WaitStatus
	usage  *syscall.Rusage
}

// New makes a supervisor and makes vmd a child subreaper, so that orphans of
// its commands come back to it. img may be nil: no images are recorded.
func New(cfg Config, log hclog.Logger, img *images.Store) (*Supervisor, error) {
	if os.Getpid() != 1 {
		if err := becomeSubreaper(); err != nil {
			return nil, fmt.Errorf("becoming a child subreaper: %w", err)
		}
	}
	env := make([]string, 0, len(cfg.Env)+1)
	for _, kv := range cfg.Env {
		if !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	cfg.Env = env
	s := &Supervisor{
		cfg: cfg, log: log, images: img,
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

// Run reaps children until Stop, then drains: the command in the slot may
// finish within the drain budget, after which it is killed. Run returns once
// the slot is empty.
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

func (s *Supervisor) drain() {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return
	}
	s.log.Info("draining", "budget", s.cfg.DrainTimeout)
	budget := time.NewTimer(s.cfg.DrainTimeout)
	defer budget.Stop()
	for {
		select {
		case <-s.sigchld:
			s.reap()
		case <-budget.C:
			c.halt(Drained)
		case <-c.finished:
			return
		}
	}
}

// Stop makes Exec refuse new commands and starts the drain.
func (s *Supervisor) Stop() {
	s.once.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		close(s.stop)
	})
}

// Kill stops the running command at once, as if its drain budget had run
// out: for a second SIGTERM or SIGINT, when the operator will not wait.
func (s *Supervisor) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.halt(Drained)
	}
}

// Done is closed when Run has returned: no command runs and none will.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// Busy reports whether a command is running.
func (s *Supervisor) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// Current describes the running command, if there is one.
func (s *Supervisor) Current() (Info, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return Info{}, false
	}
	return s.cur.info, true
}

// Cancel stops the running command the way a timeout does (its process
// group and everything left below vmd are killed) and returns once the slot
// is free, so that the next command can start at once. Its Exec returns
// with the outcome Cancelled. Cancel reports false if nothing was running.
func (s *Supervisor) Cancel() (Info, bool) {
	s.mu.Lock()
	c := s.cur
	var info Info
	if c != nil {
		info = c.info
		c.halt(Cancelled)
	}
	s.mu.Unlock()
	if c == nil {
		return Info{}, false
	}
	<-c.finished
	return info, true
}

// Exec runs one command and returns what it produced. It returns ErrBusy at
// once while another command runs and ErrDraining after Stop. Run must be
// running: it delivers exit statuses.
func (s *Supervisor) Exec(req Request) (*Result, error) {
	r, err := s.Start(req)
	if err != nil {
		return nil, err
	}
	return r.Wait(), nil
}

// Running is a command that Start has taken into the slot.
type Running struct {
	c    *command
	done chan struct{}
	res  *Result
}

// Start takes the slot and runs the command in the background; it returns
// ErrBusy at once while another command runs and ErrDraining after Stop.
func (s *Supervisor) Start(req Request) (*Running, error) {
	c, err := s.acquire(req)
	if err != nil {
		return nil, err
	}
	r := &Running{c: c, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer s.release(c)
		r.res = s.execute(c, req)
	}()
	return r, nil
}

// Done is closed when the command is over and the slot free.
func (r *Running) Done() <-chan struct{} { return r.done }

// Wait waits for the command to end and returns what it produced.
func (r *Running) Wait() *Result {
	<-r.done
	return r.res
}

// Cancel stops this command, as Supervisor.Cancel does, if it still runs;
// it does not wait.
func (r *Running) Cancel() { r.c.halt(Cancelled) }

func (s *Supervisor) acquire(req Request) (*command, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, ErrDraining
	}
	if s.cur != nil {
		return nil, ErrBusy
	}
	s.cur = &command{halted: make(chan struct{}), finished: make(chan struct{}),
		info: Info{Started: time.Now(), PromptLength: len(req.Prompt), SessionID: req.SessionID}}
	return s.cur, nil
}

// setInfo updates the running command's description.
func (s *Supervisor) setInfo(c *command, update func(*Info)) {
	s.mu.Lock()
	update(&c.info)
	s.mu.Unlock()
}

func (s *Supervisor) release(c *command) {
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
	close(c.finished)
}

func (s *Supervisor) execute(c *command, req Request) *Result {
	start := time.Now()
	res := &Result{ExitCode: -1, Timeout: s.cfg.Timeout}
	if req.Timeout > 0 && req.Timeout < s.cfg.Timeout {
		res.Timeout = req.Timeout
	}
	log := req.Log
	if log == nil {
		log = s.log
	}
	tr := newTranscript(s.cfg.MaxOutput, log, req.OnEvent)
	tr.onInit = func(id string) {
		if id != "" {
			s.setInfo(c, func(i *Info) { i.SessionID = id })
		}
	}
	var rec *images.Recording
	if s.images != nil {
		rec = s.images.Begin(tr.image)
		tr.catchUp = rec.CatchUp
	}
	s.run(c, req, log, tr, start, res)
	// Every process of the command is gone: no image can appear any more.
	if rec != nil {
		res.Images = rec.End()
	}
	if res.Pid != 0 {
		tr.start() // for a CLI that never said it started
		tr.announceImages()
		for _, n := range res.Images {
			tr.announce(n)
		}
	}
	res.Text, res.Truncated = tr.answer()
	res.Report, res.SessionID, res.Warnings, res.Output = tr.report, tr.sessionID, tr.warnings, tr.raw
	if res.Report != nil && res.Report.SessionID != "" {
		res.SessionID = res.Report.SessionID
	}
	res.Duration = time.Since(start)
	return res
}

// run starts the CLI and sees it through to the end, filling res; the
// transcript reads its output.
func (s *Supervisor) run(c *command, req Request, log hclog.Logger, tr *transcript, start time.Time, res *Result) {
	fail := func(err error) {
		res.Outcome, res.Err = StartFailed, err
		log.Error("spawn failed", "error", err)
	}
	bin, err := s.resolveBin()
	if err != nil {
		fail(err)
		return
	}
	// Its own TMPDIR: the CLI, Playwright and Chromium leave sockets,
	// profiles and downloads there, all the more when killed.
	tmpDir, err := s.tmp.take()
	if err != nil {
		fail(fmt.Errorf("command temp dir: %w", err))
		return
	}
	tmp := tmpDir.Path
	// Removed once every process of the command is dead (deferred calls
	// run after the sweep below).
	defer s.tmp.discard(tmpDir)
	pipes, err := newStdio()
	if err != nil {
		fail(fmt.Errorf("pipes: %w", err))
		return
	}
	stdin, stdout, stderr := pipes[0], pipes[1], pipes[2]
	argv := append([]string{bin}, s.cfg.Args...)
	if req.SessionID != "" {
		argv = append(argv, "--resume", req.SessionID)
	}
	env := append(s.cfg.Env[:len(s.cfg.Env):len(s.cfg.Env)], "TMPDIR="+tmp)
	pid, exitc, err := s.start(bin, argv, env, stdin.theirs, stdout.theirs, stderr.theirs)
	pipes.closeTheirs()
	if err != nil {
		pipes.close()
		if errors.Is(err, syscall.ENOENT) {
			if _, serr := os.Stat(s.cfg.Dir); s.cfg.Dir != "" && serr != nil {
				err = fmt.Errorf("work_dir %q: %w", s.cfg.Dir, serr)
			} else {
				// The file is there (LookPath found it): what is missing is
				// the interpreter its #! line names, node for the real CLI.
				err = fmt.Errorf("%w (the file exists: is the interpreter on its #! line installed?)", err)
			}
		}
		fail(fmt.Errorf("starting %s: %w", bin, err))
		return
	}
	res.Pid, tr.pid = pid, pid
	s.setInfo(c, func(i *Info) { i.Pid = pid })
	log = log.With("pid", pid)
	tr.log = log
	log.Info("spawn", "bin", bin, "resume", req.SessionID)

	var copying sync.WaitGroup
	errTail := tail{max: stderrTail}
	copying.Go(func() {
		// A CLI that exits without reading its stdin breaks the pipe: not
		// an error of ours.
		_, _ = stdin.ours.WriteString(req.Prompt)
		stdin.ours.Close()
	})
	copying.Go(func() { tr.fill(stdout.ours) })
	copying.Go(func() { errTail.fill(stderr.ours) })

	timer := time.NewTimer(res.Timeout)
	defer timer.Stop()
	var ex exit
	exited := false
	select {
	case ex = <-exitc:
		exited = true
	case <-timer.C:
		res.Outcome = TimedOut
		log.Warn("timeout", "duration", res.Timeout)
	case <-c.halted:
		res.Outcome = c.reason
		log.Warn("stopping command", "reason", c.reason)
	}
	if !exited {
		ex, exited = s.kill(pid, exitc)
	}

	// The CLI is gone. Nothing it started may live on: the reaper already
	// killed its process group; the sweep gets the rest (processes in
	// sessions of their own, like Chromium), which also closes any pipe a
	// grandchild was holding open.
	res.Strays = s.sweep(log)

	// Output still in the pipes is read to the end; a writer that escaped
	// vmd's tree cannot hold the answer back for long.
	stdin.ours.Close()
	if !pipes.drain(&copying) {
		log.Warn("output pipes still open after the command; closed them")
	}

	res.Stderr = errTail.bytes()
	if exited {
		switch {
		case ex.status.Exited():
			res.ExitCode = ex.status.ExitStatus()
		case ex.status.Signaled():
			res.Signal = ex.status.Signal()
		}
	}
	log.Info("done", "outcome", res.Outcome.String(), "exit_code", res.ExitCode, "signal", signalName(res.Signal),
		"session_id", tr.sessionID, "stderr_bytes", errTail.read,
		"strays", res.Strays, "cpu", cpuTime(ex.usage), "duration", time.Since(start))
}

// resolveBin finds the CLI, absolute: it starts in Dir, where a relative
// path would change meaning. A lookup on PATH at each use, which starts
// nothing.
func (s *Supervisor) resolveBin() (string, error) {
	bin, err := exec.LookPath(s.cfg.Bin)
	if err == nil {
		bin, err = filepath.Abs(bin)
	}
	if err != nil {
		return "", fmt.Errorf("claude_bin %q: %w", s.cfg.Bin, err)
	}
	return bin, nil
}

// start forks the CLI. The pid is registered under reapMu, before the reaper
// can see the child exit.
func (s *Supervisor) start(bin string, argv, env []string, stdin, stdout, stderr *os.File) (int, <-chan exit, error) {
	s.reapMu.Lock()
	defer s.reapMu.Unlock()
	var pid int
	var err error
	s.fork.do(func() { pid, err = spawn(bin, argv, env, s.cfg.Dir, stdin, stdout, stderr) })
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan exit, 1)
	s.waiters[pid] = ch
	return pid, ch, nil
}

// kill ends the CLI early: SIGKILL to its whole process group, at once. Not
// SIGTERM first: the timeout is a promise to the caller, and a CLI (or a
// browser below it) that ignores SIGTERM must not stretch it.
func (s *Supervisor) kill(pid int, exitc <-chan exit) (exit, bool) {
	s.reapMu.Lock()
	if _, ok := s.waiters[pid]; ok { // not reaped: pid and group are still ours
		killTree(pid)
	}
	s.reapMu.Unlock()
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case ex := <-exitc:
		return ex, true
	case <-t.C:
	}
	// Stuck in the kernel. Stop waiting for it: the reaper will collect it
	// as an orphan if it ever dies.
	s.reapMu.Lock()
	delete(s.waiters, pid)
	s.reapMu.Unlock()
	s.log.Error("command survives SIGKILL", "pid", pid, "waited", killWait)
	return exit{}, false
}

// reap collects every child that has exited.
func (s *Supervisor) reap() {
	s.reapMu.Lock()
	defer s.reapMu.Unlock()
	s.reapLocked()
}

// reapLocked reaps every exited child and reports whether any child, live
// or zombie, is left.
func (s *Supervisor) reapLocked() bool {
	for {
		pid, children := peekExited()
		if pid == 0 {
			return children
		}
		ch, ours := s.waiters[pid]
		if ours {
			// The CLI exited. Kill what is left of its group now, while its
			// zombie still holds the group id; once it is reaped the id
			// could name someone else's group.
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		status, usage, ok := reapPid(pid)
		if !ok {
			return true
		}
		if ours {
			delete(s.waiters, pid)
			ch <- exit{status: status, usage: usage}
			continue
		}
		s.stats.reaped.Add(1)
		s.log.Debug("reaped orphan", "pid", pid)
	}
}

// sweep kills every process still below vmd and waits for them to die. It
// kills only direct children of vmd, which nobody else can reap, so no pid
// it signals can have been reused; their own children come to vmd as they
// die and are killed in the next round.
func (s *Supervisor) sweep(log hclog.Logger) int {
	killed := map[int]bool{}
	deadline := time.Now().Add(sweepWait)
	pause := 50 * time.Microsecond
	for {
		s.reapMu.Lock()
		if !s.reapLocked() {
			// No child at all: the common case, known without reading /proc.
			s.reapMu.Unlock()
			break
		}
		kids := children()
		if len(kids) == 0 {
			// waitid says there are children; the per-thread lists may
			// miss one mid-fork. Read every process's parent instead.
			kids = childrenByScan(os.Getpid())
		}
		kids = s.unowned(kids) // a version probe may run beside the command
		for _, pid := range kids {
			if _, state, ok := procStat(pid); ok && state != 'Z' {
				killTree(pid)
				killed[pid] = true
			}
		}
		s.reapMu.Unlock()
		if len(kids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			log.Error("processes survive SIGKILL", "pids", kids)
			break
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
	s.stats.strays.Add(uint64(len(killed)))
	if len(killed) > 0 {
		log.Warn("killed stray processes", "count", len(killed))
	}
	return len(killed)
}

func cpuTime(ru *syscall.Rusage) time.Duration {
	if ru == nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// SignalName is the name of the signal that ended the CLI ("SIGKILL"), or
// "" if none did.
func (r *Result) SignalName() string { return signalName(r.Signal) }

func signalName(sig syscall.Signal) string {
	if sig == 0 {
		return ""
	}
	return unix.SignalName(sig)
}
