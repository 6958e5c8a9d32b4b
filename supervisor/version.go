package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// Asking the CLI for its version (`claude_bin --version`): the readiness
// check's proof that a command can start, and what /status reports. The
// probe is a child of vmd like any other, so the supervisor runs it: it
// alone may wait for children. It runs outside the command slot, beside a
// command if need be, and the sweep after a command spares it.

const (
	// versionTimeout bounds one probe; past it the CLI is killed. The real
	// CLI (node) answers in well under a second.
	versionTimeout = 5 * time.Second
	// versionRetry is how long a failed probe's answer stands before the
	// next caller tries again: a readiness check polled every second must
	// not start a CLI every second.
	versionRetry = 5 * time.Second
	// versionOutput is how much of the probe's stdout and stderr is kept.
	versionOutput = 4 << 10
	// versionPoll is how often a probe reaps by itself, for when Run is not
	// running (before the group starts, after it stops) to do it.
	versionPoll = 100 * time.Millisecond
)

// versionProbe is the state of CLIVersion.
type versionProbe struct {
	mu      sync.Mutex
	version string      // set once a probe has succeeded: kept for good
	last    *versionRun // the latest probe, running or failed

	// For tests; zero is the constant of the same name.
	timeout, retry time.Duration
}

// versionRun is one probe; its fields are set before done is closed.
type versionRun struct {
	done    chan struct{}
	ended   time.Time
	version string
	err     error
}

// stale reports whether a probe has ended long enough ago to try again.
func (r *versionRun) stale(retry time.Duration) bool {
	select {
	case <-r.done:
		return time.Since(r.ended) >= retry
	default:
		return false
	}
}

// CLIVersion returns the first line of what `claude_bin --version` prints,
// trimmed ("2.0.14 (Claude Code)"). A success is kept for the life of the
// supervisor; a failure is answered again, without a new run, for a few
// seconds. Concurrent callers share one run; ctx bounds only the caller's
// wait, not the run. After Stop, with no version known, it returns
// ErrDraining rather than start a process.
func (s *Supervisor) CLIVersion(ctx context.Context) (string, error) {
	p := &s.ver
	p.mu.Lock()
	if v := p.version; v != "" {
		p.mu.Unlock()
		return v, nil
	}
	retry := p.retry
	if retry == 0 {
		retry = versionRetry
	}
	run := p.last
	if run == nil || run.stale(retry) {
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			p.mu.Unlock()
			return "", ErrDraining
		}
		run = &versionRun{done: make(chan struct{})}
		p.last = run
		timeout := p.timeout
		if timeout == 0 {
			timeout = versionTimeout
		}
		go s.probeVersion(run, timeout)
	}
	p.mu.Unlock()
	select {
	case <-run.done:
		return run.version, run.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// KnownCLIVersion is the version CLIVersion found, or "" if none has been
// found yet. It never waits nor starts a process: for status pages.
func (s *Supervisor) KnownCLIVersion() string {
	s.ver.mu.Lock()
	defer s.ver.mu.Unlock()
	return s.ver.version
}

func (s *Supervisor) probeVersion(run *versionRun, timeout time.Duration) {
	v, err := s.runVersion(timeout)
	p := &s.ver
	p.mu.Lock()
	run.version, run.err, run.ended = v, err, time.Now()
	if err == nil {
		p.version = v
	}
	p.mu.Unlock()
	close(run.done)
	if err != nil {
		s.log.Warn("claude --version failed", "error", err)
	} else {
		s.log.Info("claude version", "version", v)
	}
}

// runVersion runs `claude_bin --version` and waits at most timeout for it.
func (s *Supervisor) runVersion(timeout time.Duration) (string, error) {
	bin, err := s.resolveBin()
	if err != nil {
		return "", err
	}
	pipes, err := newStdio()
	if err != nil {
		return "", fmt.Errorf("pipes: %w", err)
	}
	stdin, stdout, stderr := pipes[0], pipes[1], pipes[2]
	// The child gets SIGKILL (Pdeathsig) when the thread that forked it
	// ends, and Go ends threads of its own accord: this goroutine keeps its
	// thread until the child is reaped. If it never is (stuck in the
	// kernel), the thread ends with the goroutine, and the child with it.
	runtime.LockOSThread()
	pid, exitc, err := s.startUnslotted(bin, []string{bin, "--version"}, s.cfg.Env, stdin.theirs, stdout.theirs, stderr.theirs)
	pipes.closeTheirs()
	if err != nil {
		runtime.UnlockOSThread()
		pipes.close()
		return "", fmt.Errorf("starting %s --version: %w", bin, err)
	}
	stdin.ours.Close() // nothing to read: EOF at once

	var copying sync.WaitGroup
	out := tail{max: versionOutput}
	errTail := tail{max: versionOutput}
	copying.Go(func() { out.fill(stdout.ours) })
	copying.Go(func() { errTail.fill(stderr.ours) })

	ex, exited, why := s.waitUnslotted(pid, exitc, timeout)
	if exited {
		runtime.UnlockOSThread()
	}
	pipes.drain(&copying)

	switch {
	case why != "":
		return "", fmt.Errorf("%s --version %s", bin, why)
	case ex.status.Signaled():
		return "", fmt.Errorf("%s --version was killed by %s", bin, signalName(ex.status.Signal()))
	case ex.status.ExitStatus() != 0:
		msg := bytes.TrimSpace(errTail.bytes())
		if len(msg) == 0 {
			msg = bytes.TrimSpace(out.bytes())
		}
		return "", fmt.Errorf("%s --version exited with status %d: %s", bin, ex.status.ExitStatus(), msg)
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(out.bytes()), []byte("\n"))
	if v := string(bytes.TrimSpace(line)); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("%s --version printed nothing", bin)
}

// startUnslotted forks a child that is not the command, on the calling
// thread, and registers it under reapMu like start does: the reaper hands
// its exit status to the channel, and, while it is awaited, the sweep after
// a command leaves it alone.
func (s *Supervisor) startUnslotted(bin string, argv, env []string, stdin, stdout, stderr *os.File) (int, <-chan exit, error) {
	s.reapMu.Lock()
	defer s.reapMu.Unlock()
	pid, err := spawn(bin, argv, env, s.cfg.Dir, stdin, stdout, stderr)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan exit, 1)
	s.waiters[pid] = ch
	return pid, ch, nil
}

// waitUnslotted waits for a child started by startUnslotted, killing its
// group on timeout or Stop. It says why it was killed, if it was, and
// whether its exit was seen. It reaps by itself now and then, for when Run
// is not running.
func (s *Supervisor) waitUnslotted(pid int, exitc <-chan exit, timeout time.Duration) (ex exit, exited bool, why string) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	poll := time.NewTicker(versionPoll)
	defer poll.Stop()
	stop := s.stop
	var giveUp <-chan time.Time
	for {
		select {
		case ex = <-exitc:
			return ex, true, why
		case <-poll.C:
			s.reap()
			continue
		case <-timer.C:
			if why == "" {
				why = fmt.Sprintf("did not answer within %s", timeout)
			}
		case <-stop:
			if why == "" {
				why = "was stopped: vmd is shutting down"
			}
			stop = nil
		case <-giveUp:
			// Stuck in the kernel: the reaper collects it as an orphan if
			// it ever dies.
			s.reapMu.Lock()
			delete(s.waiters, pid)
			s.reapMu.Unlock()
			s.log.Error("claude --version survives SIGKILL", "pid", pid, "waited", killWait)
			return exit{}, false, why
		}
		if giveUp == nil {
			s.reapMu.Lock()
			if _, ok := s.waiters[pid]; ok { // not reaped: pid and group are still ours
				killTree(pid)
			}
			s.reapMu.Unlock()
			giveUp = time.After(killWait)
		}
	}
}

// unowned drops from pids the children someone waits for: the version
// probes, which run beside commands. The caller holds reapMu.
func (s *Supervisor) unowned(pids []int) []int {
	out := pids[:0]
	for _, pid := range pids {
		if _, owned := s.waiters[pid]; !owned {
			out = append(out, pid)
		}
	}
	return out
}
