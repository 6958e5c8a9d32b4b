package supervisor_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/supervisor"
)

// fake is a program that acts out a script read from stdin, built once for
// the whole run (see testbin.Scripted).
var fake string

func TestMain(m *testing.M) {
	testbin.Main(m, []string{testbin.Scripted}, []*string{&fake})
}

type harness struct {
	sup *supervisor.Supervisor
	log *vmdtest.LogBuffer
	tmp string
}

// start runs a supervisor and stops it when the test ends, checking that
// nothing is left below the test's process.
func start(t *testing.T) *harness {
	t.Helper()
	h := &harness{log: &vmdtest.LogBuffer{}, tmp: t.TempDir()}
	log := hclog.New(&hclog.LoggerOptions{Output: h.log, Level: hclog.Debug})
	var err error
	h.sup, err = supervisor.New(supervisor.Config{TempRoot: h.tmp}, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.sup.Run() }()
	t.Cleanup(func() {
		h.sup.Stop(time.Now())
		if err := vmdtest.Within(t, "Run to return", done); err != nil {
			t.Errorf("Run: %v", err)
		}
		// Every process's TMPDIR, and the spare one, are gone.
		if left, _ := os.ReadDir(h.tmp); len(left) != 0 {
			t.Errorf("temp dirs left after Run returned: %v", left)
		}
		if t.Failed() {
			t.Logf("log:\n%s", h.log)
		}
	})
	return h
}

// output collects what a process writes.
type output struct {
	mu             sync.Mutex
	stdout, stderr bytes.Buffer
}

func (o *output) spec(s supervisor.Spec) supervisor.Spec {
	read := func(b *bytes.Buffer) func(io.Reader) {
		return func(r io.Reader) {
			chunk := make([]byte, 4096)
			for {
				n, err := r.Read(chunk)
				o.mu.Lock()
				b.Write(chunk[:n])
				o.mu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}
	s.Stdout, s.Stderr = read(&o.stdout), read(&o.stderr)
	return s
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stdout.String()
}

// script is the fake run on a script, with a minute's timeout.
func script(prompt string) supervisor.Spec {
	return supervisor.Spec{Path: fake, Env: os.Environ(), Stdin: []byte(prompt), Timeout: time.Minute}
}

// run runs spec in the slot and returns how it went and its output.
func (h *harness) run(t *testing.T, spec supervisor.Spec) (supervisor.Result, *output) {
	t.Helper()
	out := &output{}
	r, err := h.sup.Start(out.spec(spec))
	if err != nil {
		t.Fatalf("Start(%q) error = %v", spec.Stdin, err)
	}
	return r.Wait(), out
}

// pids returns the pids the fake printed as "pid ROLE PID".
func pids(stdout, role string) []int {
	var out []int
	for _, m := range regexp.MustCompile(`pid `+role+` (\d+)`).FindAllStringSubmatch(stdout, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

func noneLeft(t *testing.T) {
	t.Helper()
	if live, zombies := vmdtest.Tree(os.Getpid()); live != 0 || zombies != 0 {
		t.Errorf("left %d live children and %d zombies; want none", live, zombies)
	}
}

func TestResults(t *testing.T) {
	h := start(t)
	tests := []struct {
		name     string
		prompt   string
		stdout   string
		stderr   string
		exitCode int
		signal   syscall.Signal
	}{
		{"answer", "What is 2+2?", "echo: What is 2+2?\n", "", 0, 0},
		{"exit code", "say partial\nexit 3", "partial\n", "", 3, 0},
		{"stderr", "err boom\nexit 1", "", "boom\n", 1, 0},
		{"killed", "say before\ndie KILL", "before\n", "", -1, syscall.SIGKILL},
		{"terminated", "die TERM", "", "", -1, syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out := h.run(t, script(tt.prompt))
			if res.Outcome != supervisor.Exited || out.stdout.String() != tt.stdout || out.stderr.String() != tt.stderr ||
				res.ExitCode != tt.exitCode || res.Signal != tt.signal {
				t.Errorf("run(%q) = outcome %v, stdout %q, stderr %q, exit %d, signal %v; want exited, %q, %q, %d, %v",
					tt.prompt, res.Outcome, out.stdout.String(), out.stderr.String(), res.ExitCode, res.Signal,
					tt.stdout, tt.stderr, tt.exitCode, tt.signal)
			}
			if res.Pid <= 0 {
				t.Errorf("run(%q): pid %d; want it set", tt.prompt, res.Pid)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	h := start(t)
	spec := script("args")
	spec.Args = []string{"-p", "--flag"}
	if _, out := h.run(t, spec); out.String() != "-p --flag\n" {
		t.Errorf("args = %q; want -p --flag", out)
	}
}

func TestTimeoutKillsGroup(t *testing.T) {
	h := start(t)
	spec := script("ignore-term\nsay partial\nhold\nsleep 1h")
	spec.Timeout = 300 * time.Millisecond
	res, out := h.run(t, spec)
	if res.Outcome != supervisor.TimedOut {
		t.Fatalf("outcome = %v; want timeout", res.Outcome)
	}
	if !strings.HasPrefix(out.String(), "partial\npid holder ") {
		t.Errorf("stdout = %q; want the output so far", out)
	}
	holders := pids(out.String(), "holder")
	if len(holders) != 1 || !vmdtest.Gone(holders[0]) {
		t.Errorf("holders %v; want one, gone after the timeout", holders)
	}
}

// A grandchild holding stdout open must not keep the caller waiting until
// the timeout: the process ends when it exits.
func TestPipeHolderDoesNotHang(t *testing.T) {
	h := start(t)
	// One holder in the process's group, one in a session of its own.
	res, out := h.run(t, script("hold\nescape-hold\nsay done"))
	if res.Outcome != supervisor.Exited || res.ExitCode != 0 || !strings.HasSuffix(out.String(), "done\n") {
		t.Fatalf("outcome %v exit %d stdout %q; want exited 0 ending in done", res.Outcome, res.ExitCode, out)
	}
	holders := append(pids(out.String(), "holder"), pids(out.String(), "escaped")...)
	if len(holders) != 2 {
		t.Fatalf("holders = %v from %q; want two", holders, out)
	}
	for _, pid := range holders {
		if !vmdtest.Gone(pid) {
			t.Errorf("pipe holder %d survived", pid)
		}
	}
	// The pipes closed because the holders died, not because vmd gave up
	// waiting on them.
	if strings.Contains(h.log.String(), "output pipes still open") {
		t.Errorf("vmd had to force the pipes closed:\n%s", h.log)
	}
}

// A process that started a session of its own is outside the group, as
// Chromium is; it must not outlive the slot's process either.
func TestEscapedSessionIsKilled(t *testing.T) {
	h := start(t)
	res, out := h.run(t, script("escape\nescape\nsay bye"))
	escaped := pids(out.String(), "escaped")
	if len(escaped) != 2 {
		t.Fatalf("escaped pids = %v from %q; want two", escaped, out)
	}
	for _, pid := range escaped {
		if !vmdtest.Gone(pid) {
			t.Errorf("escaped process %d survived", pid)
		}
	}
	if res.Strays < 2 {
		t.Errorf("Strays = %d; want at least 2", res.Strays)
	}
	noneLeft(t)
}

func TestOrphansAreReaped(t *testing.T) {
	h := start(t)
	for range 5 {
		// The exit status is the process's own, never one taken by the reaper.
		if res, _ := h.run(t, script("orphans 4\nsleep 50ms\nexit 7")); res.ExitCode != 7 {
			t.Fatalf("exit code = %d; want 7", res.ExitCode)
		}
	}
	noneLeft(t)
	if got := h.sup.Stats().ZombiesReaped; got < 20 {
		t.Errorf("ZombiesReaped = %d; want at least 20 (4 orphans and 4 parents a run)", got)
	}
}

func TestBusy(t *testing.T) {
	h := start(t)
	first, err := h.sup.Start(script("sleep 1h"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.sup.Start(script("say second")); !errors.Is(err, supervisor.ErrBusy) {
		t.Errorf("second Start error = %v; want ErrBusy", err)
	}
	if _, ok := h.sup.Cancel(); !ok {
		t.Error("Cancel found nothing running")
	}
	if res := first.Wait(); res.Outcome != supervisor.Cancelled {
		t.Errorf("first = %v; want cancelled", res.Outcome)
	}
	// The slot is free again.
	if _, out := h.run(t, script("say third")); out.String() != "third\n" {
		t.Errorf("third stdout = %q", out)
	}
}

func TestDrain(t *testing.T) {
	t.Run("finishes before the deadline", func(t *testing.T) {
		h := start(t)
		r, err := h.sup.Start(script("sleep 200ms\nsay finished"))
		if err != nil {
			t.Fatal(err)
		}
		h.sup.Stop(time.Now().Add(time.Minute))
		if _, err := h.sup.Start(script("say late")); !errors.Is(err, supervisor.ErrDraining) {
			t.Errorf("Start while draining error = %v; want ErrDraining", err)
		}
		if _, err := h.sup.Exec(script("say late")); !errors.Is(err, supervisor.ErrDraining) {
			t.Errorf("Exec while draining error = %v; want ErrDraining", err)
		}
		if res := r.Wait(); res.Outcome != supervisor.Exited {
			t.Errorf("drained process = %v; want exited", res.Outcome)
		}
		vmdtest.Within(t, "Done", h.sup.Done())
	})
	t.Run("killed at the deadline", func(t *testing.T) {
		h := start(t)
		out := &output{}
		r, err := h.sup.Start(out.spec(script("ignore-term\nsay partial\nescape\nsleep 1h")))
		if err != nil {
			t.Fatal(err)
		}
		vmdtest.Eventually(t, "the escaped process", func() bool { return len(pids(out.String(), "escaped")) == 1 })
		h.sup.Stop(time.Now())
		if res := r.Wait(); res.Outcome != supervisor.Drained {
			t.Errorf("drained process = %v; want drained", res.Outcome)
		}
		for _, pid := range pids(out.String(), "escaped") {
			if !vmdtest.Gone(pid) {
				t.Errorf("escaped process %d survived the drain", pid)
			}
		}
		vmdtest.Within(t, "Done", h.sup.Done())
	})
	t.Run("idle stops at once", func(t *testing.T) {
		h := start(t)
		h.sup.Stop(time.Now().Add(time.Hour))
		vmdtest.Within(t, "Done", h.sup.Done())
	})
}

func TestStartFailures(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noInterpreter := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(noInterpreter, []byte("#!/no/such/node\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, dir, want string }{
		{"missing", filepath.Join(t.TempDir(), "no-such-prog"), "", "no such file"},
		{"interpreter missing", noInterpreter, "", "is the interpreter on its #! line installed?"},
		{"not executable", notExec, "", "permission denied"},
		{"no such directory", fake, "/no/such/dir", `working directory "/no/such/dir"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t)
			spec := script("hello")
			spec.Path, spec.Dir = tt.path, tt.dir
			res, _ := h.run(t, spec)
			if res.Outcome != supervisor.StartFailed || res.Err == nil || !strings.Contains(res.Err.Error(), tt.want) {
				t.Errorf("run %q = %v, %v; want start_failed mentioning %q", tt.path, res.Outcome, res.Err, tt.want)
			}
			if h.sup.Busy() {
				t.Error("slot still taken after a failed start")
			}
		})
	}
}

func TestTempDirAndEnvironment(t *testing.T) {
	h := start(t)
	spec := script("env GITHUB_TOKEN\ntmpdir")
	spec.Env = append(os.Environ(), "GITHUB_TOKEN=gh-test", "TMPDIR=/should/be/replaced")
	_, out := h.run(t, spec)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] != "GITHUB_TOKEN=gh-test" || filepath.Dir(lines[1]) != h.tmp ||
		!strings.HasPrefix(filepath.Base(lines[1]), "vmd-cmd-") {
		t.Fatalf("output = %q; want GITHUB_TOKEN passed and a vmd-cmd-* TMPDIR in %s", lines, h.tmp)
	}
	// Removed in the background, soon after the end.
	vmdtest.Eventually(t, "the temp dir removed", func() bool { _, err := os.Stat(lines[1]); return os.IsNotExist(err) })
}

// A process that exits without reading input larger than the pipe's buffer
// must not leave vmd blocked writing it.
func TestUnreadStdin(t *testing.T) {
	h := start(t)
	spec := script(strings.Repeat("p", 4<<20))
	spec.Path = "/bin/true"
	if res, _ := h.run(t, spec); res.Outcome != supervisor.Exited || res.ExitCode != 0 {
		t.Errorf("outcome %v exit %d; want exited 0", res.Outcome, res.ExitCode)
	}
}

func TestWorkDir(t *testing.T) {
	h := start(t)
	dir := t.TempDir()
	spec := script("pwd")
	spec.Dir = dir
	if _, out := h.run(t, spec); strings.TrimSpace(out.String()) != dir {
		t.Errorf("working directory = %q; want %q", out, dir)
	}
}

// Exec runs beside the slot, through the same path; the sweep after the
// slot's process spares it.
func TestExecBesideSlot(t *testing.T) {
	h := start(t)
	r, err := h.sup.Start(script("sleep 300ms\nescape\nsay slot"))
	if err != nil {
		t.Fatal(err)
	}
	out := &output{}
	beside := script("sleep 1s\nsay beside")
	res, err := h.sup.Exec(out.spec(beside))
	if err != nil || res.Outcome != supervisor.Exited || res.ExitCode != 0 || out.String() != "beside\n" {
		t.Errorf("Exec beside the slot = %+v, %v, %q; want exited 0 with its output", res, err, out)
	}
	if res := r.Wait(); res.Strays < 1 {
		t.Errorf("slot's Strays = %d; want the escaped one killed", res.Strays)
	}
	noneLeft(t)
}

func TestExecStoppedByStop(t *testing.T) {
	h := start(t)
	got := make(chan supervisor.Result, 1)
	go func() {
		res, _ := h.sup.Exec(script("ignore-term\nsleep 1h"))
		got <- res
	}()
	vmdtest.Eventually(t, "the process spawned", func() bool { return strings.Contains(h.log.String(), "spawn") })
	h.sup.Stop(time.Now().Add(time.Hour))
	if res := vmdtest.Within(t, "Exec to return", got); res.Outcome != supervisor.Drained {
		t.Errorf("Exec outcome after Stop = %v; want drained", res.Outcome)
	}
}

func TestStats(t *testing.T) {
	h := start(t)
	if st := h.sup.Stats(); st != (supervisor.Stats{}) {
		t.Errorf("Stats() at start = %+v; want zeros", st)
	}
	// The sleep lets the orphans' parents exit and the orphans start: the
	// exit kills the whole group.
	res, _ := h.run(t, script("orphans 3\nsleep 200ms\nescape\nescape\nsay ok"))
	if res.Strays < 2 {
		t.Fatalf("Strays = %d; want at least 2", res.Strays)
	}
	if st := h.sup.Stats(); st.StraysKilled != uint64(res.Strays) {
		t.Errorf("StraysKilled = %d; want %d, the run's Strays", st.StraysKilled, res.Strays)
	}
	// 3 orphans, their 3 parents and the 2 escaped: all came to vmd.
	vmdtest.Eventually(t, "8 zombies reaped", func() bool { return h.sup.Stats().ZombiesReaped >= 8 })
	r, err := h.sup.Start(script("sleep 1h"))
	if err != nil {
		t.Fatal(err)
	}
	if !h.sup.Stats().Busy {
		t.Error("Stats().Busy while running; want true")
	}
	r.Cancel()
	r.Wait()
	if h.sup.Stats().Busy {
		t.Error("Stats().Busy after the run; want false")
	}
}

// Cancel racing the process's own exit: it reports that it stopped the
// process exactly when the Result says Cancelled (issue 11 gap 8). Each
// round cancels a little later, sweeping the moment of the exit; the
// delays spread the race, they synchronise nothing.
func TestCancelRacingExit(t *testing.T) {
	h := start(t)
	var won, lost int
	for i := range 60 {
		started := make(chan struct{})
		spec := script("say done")
		spec.OnStart = func(int) { close(started) }
		r, err := h.sup.Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		<-started
		time.Sleep(time.Duration(i) * 500 * time.Microsecond)
		_, stopped := h.sup.Cancel()
		res := r.Wait()
		if stopped != (res.Outcome == supervisor.Cancelled) {
			t.Errorf("round %d: Cancel reported %v, the process's outcome is %v", i, stopped, res.Outcome)
		}
		if stopped {
			won++
		} else {
			lost++
		}
	}
	t.Logf("Cancel stopped the process in %d rounds, came too late in %d", won, lost)
}

// Hold holds the input back, not the process: cat starts at once, echoes
// its input only once Hold is closed, and a process that ends while its
// input is held (cancelled, or one that never reads) does not hang Wait.
func TestHold(t *testing.T) {
	h := start(t)
	t.Run("released", func(t *testing.T) {
		hold, started := make(chan struct{}), make(chan int, 1)
		spec := supervisor.Spec{Path: "/bin/cat", Stdin: []byte("hi"), Hold: []<-chan struct{}{hold}, Timeout: time.Minute,
			OnStart: func(pid int) { started <- pid }}
		out := &output{}
		r, err := h.sup.Start(out.spec(spec))
		if err != nil {
			t.Fatal(err)
		}
		vmdtest.Within(t, "cat to start with its input held", started)
		if got := out.String(); got != "" {
			t.Fatalf("cat echoed %q before its input was let go", got)
		}
		close(hold)
		if res := vmdtest.Within(t, "cat to end", wait(r)); res.ExitCode != 0 || out.String() != "hi" {
			t.Errorf("cat = exit %d, %q; want 0, %q", res.ExitCode, out.String(), "hi")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		started := make(chan int, 1)
		spec := supervisor.Spec{Path: "/bin/cat", Stdin: []byte("hi"), Hold: []<-chan struct{}{make(chan struct{})}, Timeout: time.Minute,
			OnStart: func(pid int) { started <- pid }}
		out := &output{}
		r, err := h.sup.Start(out.spec(spec))
		if err != nil {
			t.Fatal(err)
		}
		vmdtest.Within(t, "cat to start", started)
		r.Cancel()
		if res := vmdtest.Within(t, "a cancelled cat to end, its input still held", wait(r)); res.Outcome != supervisor.Cancelled || out.String() != "" {
			t.Errorf("cat = %v, %q; want cancelled with no output", res.Outcome, out.String())
		}
	})
	t.Run("never reads", func(t *testing.T) {
		r, err := h.sup.Start(supervisor.Spec{Path: "/bin/true", Stdin: []byte("hi"), Hold: []<-chan struct{}{make(chan struct{})}, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if res := vmdtest.Within(t, "true to end, its input still held", wait(r)); res.Outcome != supervisor.Exited || res.ExitCode != 0 {
			t.Errorf("true = %v exit %d; want exited 0", res.Outcome, res.ExitCode)
		}
	})
	noneLeft(t)
}

// wait is r.Wait on a channel, for vmdtest.Within.
func wait(r *supervisor.Running) <-chan supervisor.Result {
	ch := make(chan supervisor.Result, 1)
	go func() { ch <- r.Wait() }()
	return ch
}
