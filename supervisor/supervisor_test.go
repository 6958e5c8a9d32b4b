package supervisor_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/testfs"
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

// start runs a supervisor, reaping every child of the test process when
// reap is set, and stops it when the test ends. A test that reaps must not
// run in parallel with tests that start children of their own.
func start(t *testing.T, reap bool) *harness {
	t.Helper()
	h := &harness{log: &vmdtest.LogBuffer{}, tmp: t.TempDir()}
	log := hclog.New(&hclog.LoggerOptions{Output: h.log, Level: hclog.Debug})
	var err error
	h.sup, err = supervisor.New(supervisor.Config{TempRoot: h.tmp, Reap: reap}, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.sup.Run() }()
	t.Cleanup(func() {
		h.sup.Stop()
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

// task is a process to start and the script it is given on stdin.
type task struct {
	supervisor.Spec
	stdin string
}

// script is the fake, with a TMPDIR of its own, on a script.
func script(prompt string) task {
	return task{Spec: supervisor.Spec{Path: fake, Env: os.Environ(), TempDir: true}, stdin: prompt}
}

// begin starts tk, writes its script and closes its stdin.
func (h *harness) begin(t *testing.T, tk task) (*supervisor.Process, *output) {
	t.Helper()
	out := &output{}
	p, err := h.sup.Start(out.spec(tk.Spec))
	if err != nil {
		t.Fatalf("Start(%q) error = %v", tk.stdin, err)
	}
	go func() {
		// A process that exits without reading breaks the pipe: no error of
		// the test's.
		_, _ = io.WriteString(p.Stdin(), tk.stdin)
		p.Stdin().Close()
	}()
	return p, out
}

// run runs tk to its end and returns how it went and its output.
func (h *harness) run(t *testing.T, tk task) (supervisor.Exit, *output) {
	t.Helper()
	p, out := h.begin(t, tk)
	return vmdtest.Within(t, "the process to end", wait(p)), out
}

// wait is p.Wait on a channel, for vmdtest.Within.
func wait(p *supervisor.Process) <-chan supervisor.Exit {
	ch := make(chan supervisor.Exit, 1)
	go func() { ch <- p.Wait() }()
	return ch
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

// allGone fails the test for each pid still alive, zombie or not.
func allGone(t *testing.T, what string, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if st, ok := vmdtest.ReadStat(pid); ok {
			t.Errorf("%s %d survived: %+v (test pid %d)", what, pid, st, os.Getpid())
		}
	}
}

func TestExits(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	tests := []struct {
		name   string
		prompt string
		stdout string
		stderr string
		code   int
		signal syscall.Signal
	}{
		{"answer", "What is 2+2?", "echo: What is 2+2?\n", "", 0, 0},
		{"exit code", "say partial\nexit 3", "partial\n", "", 3, 0},
		{"stderr", "err boom\nexit 1", "", "boom\n", 1, 0},
		{"killed", "say before\ndie KILL", "before\n", "", -1, syscall.SIGKILL},
		{"terminated", "die TERM", "", "", -1, syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ex, out := h.run(t, script(tt.prompt))
			out.mu.Lock()
			stdout, stderr := out.stdout.String(), out.stderr.String()
			out.mu.Unlock()
			if stdout != tt.stdout || stderr != tt.stderr || ex.Code != tt.code || ex.Signal != tt.signal {
				t.Errorf("run(%q) = stdout %q, stderr %q, exit %d, signal %v; want %q, %q, %d, %v",
					tt.prompt, stdout, stderr, ex.Code, ex.Signal, tt.stdout, tt.stderr, tt.code, tt.signal)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	tk := script("args")
	tk.Args = []string{"-p", "--flag"}
	if _, out := h.run(t, tk); out.String() != "-p --flag\n" {
		t.Errorf("args = %q; want -p --flag", out)
	}
}

// Kill takes the whole group at once, the process ignoring SIGTERM and a
// child of it in its group included.
func TestKillKillsGroup(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	p, out := h.begin(t, script("ignore-term\nsay partial\nhold\nsleep 1h"))
	vmdtest.Eventually(t, "the holder started", func() bool { return len(pids(out.String(), "holder")) == 1 })
	p.Kill()
	p.Kill() // a second Kill is harmless
	if ex := vmdtest.Within(t, "the killed process to end", wait(p)); ex.Signal != syscall.SIGKILL {
		t.Errorf("exit = %+v; want killed by SIGKILL", ex)
	}
	if !strings.HasPrefix(out.String(), "partial\npid holder ") {
		t.Errorf("stdout = %q; want the output so far", out)
	}
	allGone(t, "holder", pids(out.String(), "holder"))
	p.Kill() // and so is one after the end
}

// A grandchild holding stdout open must not keep the caller waiting: the
// process is done when it exits.
func TestPipeHolderDoesNotHang(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	// One holder in the process's group, one in a session of its own.
	ex, out := h.run(t, script("hold\nescape-hold\nsay done"))
	if ex.Code != 0 || !strings.HasSuffix(out.String(), "done\n") {
		t.Fatalf("exit %d stdout %q; want 0 ending in done", ex.Code, out)
	}
	holders := append(pids(out.String(), "holder"), pids(out.String(), "escaped")...)
	if len(holders) != 2 {
		t.Fatalf("holders = %v from %q; want two", holders, out)
	}
	allGone(t, "pipe holder", holders)
	// The pipes closed because the holders died, not because vmd gave up
	// waiting on them.
	if strings.Contains(h.log.String(), "output pipes still open") {
		t.Errorf("vmd had to force the pipes closed:\n%s", h.log)
	}
}

// A process that started a session of its own is outside the group, as
// Chromium is; it must not outlive the process that started it.
func TestEscapedSessionIsKilled(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	ex, out := h.run(t, script("escape\nescape\nsay bye"))
	escaped := pids(out.String(), "escaped")
	if len(escaped) != 2 {
		t.Fatalf("escaped pids = %v from %q; want two", escaped, out)
	}
	allGone(t, "escaped process", escaped)
	if ex.Strays != 2 {
		t.Errorf("Strays = %d; want 2", ex.Strays)
	}
	if got := h.sup.StraysKilled(); got != 2 {
		t.Errorf("StraysKilled = %d; want 2", got)
	}
}

// Several processes live at once (warm agents): the sweep after one kills
// what that one left, never what another one, still running, left.
func TestSweepSparesOthers(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	first, firstOut := h.begin(t, script("escape\nsay first"))
	second, secondOut := h.begin(t, script("escape\nsay up\nsleep 1h"))
	vmdtest.Eventually(t, "the second's escaped process", func() bool { return len(pids(secondOut.String(), "escaped")) == 1 })
	if ex := vmdtest.Within(t, "the first to end", wait(first)); ex.Strays != 1 {
		t.Errorf("first's Strays = %d; want its own escaped process", ex.Strays)
	}
	allGone(t, "the first's escaped process", pids(firstOut.String(), "escaped"))
	kept := pids(secondOut.String(), "escaped")[0]
	if vmdtest.Gone(kept) {
		t.Fatal("the sweep after the first killed the second's escaped process")
	}
	if rss := second.RSS(); runtimeHasProc() && rss == 0 {
		t.Error("RSS of a live tree = 0")
	}
	second.Kill()
	if ex := vmdtest.Within(t, "the second to end", wait(second)); ex.Strays != 1 {
		t.Errorf("second's Strays = %d; want its escaped process", ex.Strays)
	}
	allGone(t, "the second's escaped process", []int{kept})
}

func runtimeHasProc() bool { _, err := os.Stat("/proc/self/status"); return err == nil }

// With Reap, the supervisor reaps every orphan that comes to the process;
// each process's exit status is still its own, never one taken by the
// reaper. Not parallel: it reaps every child of the test process.
func TestOrphansAreReaped(t *testing.T) {
	h := start(t, true)
	before := h.sup.ZombiesReaped()
	for range 5 {
		if ex, _ := h.run(t, script("orphans 4\nsleep 50ms\nexit 7")); ex.Code != 7 {
			t.Fatalf("exit code = %d; want 7", ex.Code)
		}
	}
	// The 4 parents a run at least (an orphan may not have been born when
	// its parent's group was killed); the last may still be dying.
	vmdtest.Eventually(t, "the orphans reaped", func() bool { return h.sup.ZombiesReaped()-before >= 20 })
	vmdtest.Eventually(t, "no child left, live or zombie", func() bool {
		live, zombies := vmdtest.Tree(os.Getpid())
		return live == 0 && zombies == 0
	})
}

// Processes of two supervisors and of os/exec share one test process, as
// parallel tests do: each gets its own exit status.
func TestSideBySide(t *testing.T) {
	t.Parallel()
	a, b := start(t, false), start(t, false)
	var wg sync.WaitGroup
	for i := range 10 {
		h := a
		if i%2 == 1 {
			h = b
		}
		wg.Go(func() {
			if ex, out := h.run(t, script("say "+strconv.Itoa(i)+"\nexit "+strconv.Itoa(i))); ex.Code != i || out.String() != strconv.Itoa(i)+"\n" {
				t.Errorf("run %d = exit %d, %q", i, ex.Code, out)
			}
		})
		wg.Go(func() {
			cmd := exec.Command("/bin/sh", "-c", "exit "+strconv.Itoa(i))
			var ee *exec.ExitError
			if err := cmd.Run(); i == 0 && err != nil || i > 0 && (!errors.As(err, &ee) || ee.ExitCode() != i) {
				t.Errorf("os/exec run %d = %v", i, err)
			}
		})
	}
	wg.Wait()
}

func TestStop(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	p, out := h.begin(t, script("ignore-term\nsay partial\nescape\nsleep 1h"))
	vmdtest.Eventually(t, "the escaped process", func() bool { return len(pids(out.String(), "escaped")) == 1 })
	h.sup.Stop()
	if _, err := h.sup.Start(script("say late").Spec); !errors.Is(err, supervisor.ErrStopped) {
		t.Errorf("Start after Stop error = %v; want ErrStopped", err)
	}
	if ex := vmdtest.Within(t, "the process killed by Stop", wait(p)); ex.Signal != syscall.SIGKILL {
		t.Errorf("exit after Stop = %+v; want SIGKILL", ex)
	}
	allGone(t, "escaped process", pids(out.String(), "escaped"))
	vmdtest.Within(t, "Done", h.sup.Done())
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	notExec := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noInterpreter := filepath.Join(t.TempDir(), "prog")
	if err := testfs.WriteExecutable(noInterpreter, []byte("#!/no/such/node\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := start(t, false)
	tests := []struct{ name, path, dir, want string }{
		{"missing", filepath.Join(t.TempDir(), "no-such-prog"), "", "no such file"},
		{"interpreter missing", noInterpreter, "", "is the interpreter on its #! line installed?"},
		{"not executable", notExec, "", "permission denied"},
		{"no such directory", fake, "/no/such/dir", `working directory "/no/such/dir"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := script("hello")
			tk.Path, tk.Dir = tt.path, tt.dir
			if _, err := h.sup.Start(tk.Spec); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start(%q) error = %v; want one mentioning %q", tt.path, err, tt.want)
			}
		})
	}
}

func TestTempDirAndEnvironment(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	tk := script("env GITHUB_TOKEN\ntmpdir\nenv VMD_PROCESS")
	tk.Env = append(os.Environ(), "GITHUB_TOKEN=gh-test", "TMPDIR=/should/be/replaced", "VMD_PROCESS=forged")
	_, out := h.run(t, tk)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || lines[0] != "GITHUB_TOKEN=gh-test" || filepath.Dir(lines[1]) != h.tmp ||
		!strings.HasPrefix(filepath.Base(lines[1]), "vmd-cmd-") || !regexp.MustCompile(`^VMD_PROCESS=\d+\.\d+\.\d+$`).MatchString(lines[2]) {
		t.Fatalf("output = %q; want GITHUB_TOKEN passed, a vmd-cmd-* TMPDIR in %s and a marker of vmd's", lines, h.tmp)
	}
	// Removed in the background, soon after the end.
	vmdtest.Eventually(t, "the temp dir removed", func() bool { _, err := os.Stat(lines[1]); return os.IsNotExist(err) })
}

// A process that exits without reading input larger than the pipe's buffer
// must not leave its writer blocked.
func TestUnreadStdin(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	p, err := h.sup.Start(supervisor.Spec{Path: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { _, err := p.Stdin().Write(bytes.Repeat([]byte("p"), 4<<20)); wrote <- err }()
	if err := vmdtest.Within(t, "the write to fail", wrote); err == nil {
		t.Error("writing 4 MiB to a process that never reads succeeded")
	}
	if ex := p.Wait(); ex.Code != 0 {
		t.Errorf("exit %d; want 0", ex.Code)
	}
}

func TestWorkDir(t *testing.T) {
	t.Parallel()
	h := start(t, false)
	dir := t.TempDir()
	tk := script("pwd")
	tk.Dir = dir
	if _, out := h.run(t, tk); strings.TrimSpace(out.String()) != dir {
		t.Errorf("working directory = %q; want %q", out, dir)
	}
}

// IO counts the process's reads and writes, pipes included.
func TestIO(t *testing.T) {
	t.Parallel()
	if !runtimeHasProc() {
		t.Skip("no /proc: IO is Linux only")
	}
	h := start(t, false)
	p, err := h.sup.Start(supervisor.Spec{Path: "/bin/cat"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := p.IO()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(p.Stdin(), strings.Repeat("x", 64<<10))
	vmdtest.Eventually(t, "cat's I/O to grow by what it echoed", func() bool {
		n, err := p.IO()
		return err == nil && n >= before+2*(64<<10)
	})
	p.Stdin().Close()
	p.Wait()
}
