package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vmd-dev/vmd/supervisor"
)

// Asking the CLI for its version (`claude_bin --version`): the readiness
// check's proof that a command can start, and what /status reports. The
// probe runs through the supervisor like any process, beside the agents.

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
)

// versionProbe is the state of CLIVersion.
type versionProbe struct {
	mu      sync.Mutex
	version string      // set once a probe has succeeded: kept for good
	last    *versionRun // the latest probe, running or failed
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

// Version returns the first line of what `claude_bin --version` prints,
// trimmed ("2.0.14 (Claude Code)"). A success is kept for the life of the
// supervisor; a failure is answered again, without a new run, for a few
// seconds. Concurrent callers share one run; ctx bounds only the caller's
// wait, not the run. Once vmd is stopping, with no version known, it
// returns ErrStopped rather than start a process.
func (a *Agent) Version(ctx context.Context) (string, error) {
	p := &a.ver
	p.mu.Lock()
	if v := p.version; v != "" {
		p.mu.Unlock()
		return v, nil
	}
	retry := a.opts.VersionRetry
	if retry == 0 {
		retry = versionRetry
	}
	run := p.last
	if run == nil || run.stale(retry) {
		run = &versionRun{done: make(chan struct{})}
		p.last = run
		timeout := a.opts.VersionTimeout
		if timeout == 0 {
			timeout = versionTimeout
		}
		go a.probeVersion(run, timeout)
	}
	p.mu.Unlock()
	select {
	case <-run.done:
		return run.version, run.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// KnownVersion is the version Version found, or "" if none has been
// found yet. It never waits nor starts a process: for status pages.
func (a *Agent) KnownVersion() string {
	a.ver.mu.Lock()
	defer a.ver.mu.Unlock()
	return a.ver.version
}

func (a *Agent) probeVersion(run *versionRun, timeout time.Duration) {
	v, err := a.runVersion(timeout)
	p := &a.ver
	p.mu.Lock()
	run.version, run.err, run.ended = v, err, time.Now()
	if err == nil {
		p.version = v
	}
	p.mu.Unlock()
	close(run.done)
	switch {
	case errors.Is(err, ErrStopped):
	case err != nil:
		a.log.Warn("claude --version failed", "error", err)
	default:
		a.log.Info("claude version", "version", v)
	}
}

// runVersion runs `claude_bin --version` and waits at most timeout for it.
func (a *Agent) runVersion(timeout time.Duration) (string, error) {
	bin, err := resolveBin(a.opts.Bin)
	if err != nil {
		return "", err
	}
	out, errTail := tail{max: versionOutput}, tail{max: versionOutput}
	p, err := a.sup.Start(supervisor.Spec{Path: bin, Args: []string{"--version"}, Env: a.opts.Env, Dir: a.opts.Dir,
		Stdout: out.fill, Stderr: errTail.fill})
	if errors.Is(err, supervisor.ErrStopped) {
		return "", ErrStopped
	}
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", bin, err)
	}
	p.Stdin().Close()
	t := time.NewTimer(timeout)
	defer t.Stop()
	timedOut, stopped := false, false
	select {
	case <-p.Done():
	case <-t.C:
		timedOut = true
		p.Kill()
	case <-a.sup.Stopping():
		stopped = true
		p.Kill()
	}
	ex := p.Wait()
	switch {
	case stopped:
		return "", fmt.Errorf("%s --version was stopped: vmd is shutting down", bin)
	case timedOut:
		return "", fmt.Errorf("%s --version did not answer within %s", bin, timeout)
	case ex.Signal != 0:
		return "", fmt.Errorf("%s --version was killed by %s", bin, ex.SignalName())
	case ex.Code != 0:
		msg := bytes.TrimSpace(errTail.bytes())
		if len(msg) == 0 {
			msg = bytes.TrimSpace(out.bytes())
		}
		return "", fmt.Errorf("%s --version exited with status %d: %s", bin, ex.Code, msg)
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(out.bytes()), []byte("\n"))
	if v := string(bytes.TrimSpace(line)); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("%s --version printed nothing", bin)
}
