package supervisor

import (
	"bytes"
	"errors"
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

	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/internal/leftovers"
	"github.com/vmd-dev/vmd/internal/testbin"
)

// fake is the fake claude, built once for the whole run.
var fake string

func TestMain(m *testing.M) {
	testbin.Main(m, []string{testbin.FakeClaude}, []*string{&fake})
}

// logBuf is a log the test can read, safe for the supervisor's goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harness struct {
	sup    *Supervisor
	images *images.Store
	log    *logBuf
	tmp    string
}

// start runs a supervisor over the fake claude, with an images store, and
// stops both when the test ends.
func start(t *testing.T, tweak func(*Config)) *harness {
	t.Helper()
	h := &harness{log: &logBuf{}, tmp: t.TempDir()}
	log := hclog.New(&hclog.LoggerOptions{Output: h.log, Level: hclog.Debug})
	imgDir := filepath.Join(t.TempDir(), "images")
	img, err := images.Open(imgDir, time.Hour, log.Named("images"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Bin:          fake,
		Env:          append(os.Environ(), "IMAGES_DIR="+imgDir, "TMPDIR=/should/be/replaced"),
		TempRoot:     h.tmp,
		Timeout:      20 * time.Second,
		DrainTimeout: 5 * time.Second,
		MaxOutput:    1 << 20,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h.sup, err = New(cfg, log.Named("supervisor"), img)
	if err != nil {
		t.Fatal(err)
	}
	h.images = img
	supDone, imgDone := make(chan error, 1), make(chan error, 1)
	go func() { supDone <- h.sup.Run() }()
	go func() { imgDone <- img.Run() }()
	t.Cleanup(func() {
		h.sup.Stop()
		img.Stop()
		if err := <-supDone; err != nil {
			t.Errorf("supervisor Run: %v", err)
		}
		<-imgDone
		// Every command's TMPDIR, and the spare one, are gone.
		if left, _ := os.ReadDir(h.tmp); len(left) != 0 {
			t.Errorf("temp dirs left after Run returned: %v", left)
		}
		if t.Failed() {
			t.Logf("log:\n%s", h.log)
		}
	})
	return h
}

func (h *harness) exec(t *testing.T, prompt string) *Result {
	t.Helper()
	res, err := h.sup.Exec(Request{Prompt: prompt})
	if err != nil {
		t.Fatalf("Exec(%q) error = %v", prompt, err)
	}
	return res
}

// pids returns the pids the fake printed as "pid ROLE PID".
func pids(stdout []byte, role string) []int {
	var out []int
	for _, m := range regexp.MustCompile(`pid `+role+` (\d+)`).FindAllSubmatch(stdout, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		out = append(out, n)
	}
	return out
}

// gone reports whether no process has the pid any more, zombie or not.
func gone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// descendants counts this test process's children, zombies apart.
func descendants(t *testing.T) (live, zombies int) {
	t.Helper()
	for _, pid := range childrenByScan(os.Getpid()) {
		if _, state, ok := procStat(pid); ok {
			if state == 'Z' {
				zombies++
			} else {
				live++
			}
		}
	}
	return live, zombies
}

func TestExecResults(t *testing.T) {
	h := start(t, func(c *Config) { c.Args = []string{"-p", "--dangerously-skip-permissions"} })
	tests := []struct {
		name     string
		prompt   string
		stdout   string
		stderr   string
		exitCode int
		signal   syscall.Signal
	}{
		{"answer", "What is 2+2?", "echo: What is 2+2?\n", "", 0, 0},
		{"args without trailing dash", "args", "-p --dangerously-skip-permissions\n", "", 0, 0},
		{"exit code", "say partial\nexit 3", "partial\n", "", 3, 0},
		{"stderr", "err boom\nexit 1", "", "boom\n", 1, 0},
		{"killed", "say before\ndie KILL", "before\n", "", -1, syscall.SIGKILL},
		{"terminated", "die TERM", "", "", -1, syscall.SIGTERM},
		{"unicode", "say héllo ✓", "héllo ✓\n", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.exec(t, tt.prompt)
			if res.Outcome != Exited || res.Text != tt.stdout || string(res.Stderr) != tt.stderr ||
				res.ExitCode != tt.exitCode || res.Signal != tt.signal {
				t.Errorf("Exec(%q) = outcome %v, stdout %q, stderr %q, exit %d, signal %v; want exited, %q, %q, %d, %v",
					tt.prompt, res.Outcome, res.Text, res.Stderr, res.ExitCode, res.Signal,
					tt.stdout, tt.stderr, tt.exitCode, tt.signal)
			}
			if res.Pid <= 0 || res.Duration <= 0 {
				t.Errorf("Exec(%q): pid %d, duration %v; want both set", tt.prompt, res.Pid, res.Duration)
			}
		})
	}
}

func TestTimeoutKillsGroupAndKeepsPartialOutput(t *testing.T) {
	h := start(t, func(c *Config) { c.Timeout = 300 * time.Millisecond })
	res := h.exec(t, "ignore-term\nsay partial\nhold\nsleep 1h")
	if res.Outcome != TimedOut {
		t.Fatalf("outcome = %v; want timeout", res.Outcome)
	}
	if !strings.HasPrefix(res.Text, "partial\npid holder ") {
		t.Errorf("stdout = %q; want the partial output", res.Text)
	}
	holders := pids([]byte(res.Text), "holder")
	if len(holders) != 1 {
		t.Fatalf("holder pids = %v; want one", holders)
	}
	if !gone(holders[0]) {
		t.Errorf("holder %d survived the timeout", holders[0])
	}
	if !strings.Contains(h.log.String(), "timeout") {
		t.Errorf("log has no timeout line:\n%s", h.log)
	}
}

// A grandchild holding stdout open must not keep the answer back until the
// timeout: the command ends when the CLI exits.
func TestPipeHolderDoesNotHang(t *testing.T) {
	h := start(t, func(c *Config) { c.Timeout = time.Minute })
	// One holder in the CLI's group, one in a session of its own.
	res := h.exec(t, "hold\nescape-hold\nsay done")
	if res.Outcome != Exited || res.ExitCode != 0 {
		t.Fatalf("outcome %v exit %d; want exited 0", res.Outcome, res.ExitCode)
	}
	if !strings.HasSuffix(res.Text, "done\n") {
		t.Errorf("stdout = %q; want it to end with done", res.Text)
	}
	holders := append(pids([]byte(res.Text), "holder"), pids([]byte(res.Text), "escaped")...)
	if len(holders) != 2 {
		t.Fatalf("holders = %v from %q; want two", holders, res.Text)
	}
	for _, pid := range holders {
		if !gone(pid) {
			t.Errorf("pipe holder %d survived", pid)
		}
	}
	// The pipes closed because the holders died, not because vmd gave up
	// waiting on them.
	if strings.Contains(h.log.String(), "output pipes still open") {
		t.Errorf("vmd had to force the pipes closed:\n%s", h.log)
	}
}

// A process that started a session of its own is outside the CLI's group,
// as Chromium is; it must not outlive the command either.
func TestEscapedSessionIsKilled(t *testing.T) {
	h := start(t, nil)
	res := h.exec(t, "escape\nescape\nsay bye")
	escaped := pids([]byte(res.Text), "escaped")
	if len(escaped) != 2 {
		t.Fatalf("escaped pids = %v from %q; want two", escaped, res.Text)
	}
	for _, pid := range escaped {
		if !gone(pid) {
			t.Errorf("escaped process %d survived", pid)
		}
	}
	if res.Strays < 2 {
		t.Errorf("Strays = %d; want at least 2", res.Strays)
	}
	if live, zombies := descendants(t); live != 0 || zombies != 0 {
		t.Errorf("left %d live children and %d zombies; want none", live, zombies)
	}
}

func TestOrphansAreReaped(t *testing.T) {
	h := start(t, nil)
	for range 5 {
		res := h.exec(t, "orphans 4\nsleep 50ms\nexit 7")
		// The exit status is the CLI's own, never one taken by the reaper.
		if res.ExitCode != 7 {
			t.Fatalf("exit code = %d; want 7", res.ExitCode)
		}
	}
	if live, zombies := descendants(t); live != 0 || zombies != 0 {
		t.Errorf("left %d live children and %d zombies; want none", live, zombies)
	}
	if got := h.sup.Stats().ZombiesReaped; got < 20 {
		t.Errorf("ZombiesReaped = %d; want at least 20 (4 orphans and 4 parents a command)", got)
	}
}

func TestBusy(t *testing.T) {
	h := start(t, nil)
	first := make(chan *Result, 1)
	go func() {
		res, _ := h.sup.Exec(Request{Prompt: "sleep 300ms\nsay first"})
		first <- res
	}()
	waitFor(t, h.sup.Busy)
	if _, err := h.sup.Exec(Request{Prompt: "say second"}); !errors.Is(err, ErrBusy) {
		t.Errorf("second Exec error = %v; want ErrBusy", err)
	}
	if res := <-first; res == nil || res.Text != "first\n" {
		t.Errorf("first command = %+v; want its answer", res)
	}
	// The slot is free again.
	if res := h.exec(t, "say third"); res.Text != "third\n" {
		t.Errorf("third command stdout = %q", res.Text)
	}
}

func TestDrain(t *testing.T) {
	t.Run("finishes within budget", func(t *testing.T) {
		h := start(t, func(c *Config) { c.DrainTimeout = 10 * time.Second })
		got := make(chan *Result, 1)
		go func() { res, _ := h.sup.Exec(Request{Prompt: "sleep 200ms\nsay finished"}); got <- res }()
		waitFor(t, h.sup.Busy)
		h.sup.Stop()
		if _, err := h.sup.Exec(Request{Prompt: "say late"}); !errors.Is(err, ErrDraining) {
			t.Errorf("Exec while draining error = %v; want ErrDraining", err)
		}
		res := <-got
		if res.Outcome != Exited || res.Text != "finished\n" {
			t.Errorf("drained command = %v %q; want exited with its answer", res.Outcome, res.Text)
		}
		<-h.sup.Done()
	})
	t.Run("killed after budget", func(t *testing.T) {
		h := start(t, func(c *Config) { c.DrainTimeout = 200 * time.Millisecond })
		got := make(chan *Result, 1)
		go func() {
			res, _ := h.sup.Exec(Request{Prompt: "ignore-term\nsay partial\nescape\nsleep 1h"})
			got <- res
		}()
		waitFor(t, func() bool { return h.sup.Busy() && strings.Contains(h.log.String(), "spawn") })
		h.sup.Stop()
		res := <-got
		if res.Outcome != Drained || !strings.HasPrefix(res.Text, "partial\n") {
			t.Errorf("drained command = %v %q; want drained with the partial output", res.Outcome, res.Text)
		}
		for _, pid := range pids([]byte(res.Text), "escaped") {
			if !gone(pid) {
				t.Errorf("escaped process %d survived the drain", pid)
			}
		}
		<-h.sup.Done()
	})
	t.Run("idle stops at once", func(t *testing.T) {
		h := start(t, nil)
		h.sup.Stop()
		select {
		case <-h.sup.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("idle supervisor did not stop")
		}
	})
}

func TestStartFailures(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "claude")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noInterpreter := filepath.Join(t.TempDir(), "claude")
	if err := os.WriteFile(noInterpreter, []byte("#!/no/such/node\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, bin, want string }{
		{"missing", filepath.Join(t.TempDir(), "no-such-claude"), "no such file"},
		{"interpreter missing", noInterpreter, "is the interpreter on its #! line installed?"},
		{"not on PATH", "no-such-claude-anywhere", "not found in $PATH"},
		{"not executable", notExec, "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, func(c *Config) { c.Bin = tt.bin })
			res := h.exec(t, "hello")
			if res.Outcome != StartFailed || res.Err == nil || !strings.Contains(res.Err.Error(), tt.want) {
				t.Errorf("Exec with claude_bin %q = %v, %v; want start_failed mentioning %q", tt.bin, res.Outcome, res.Err, tt.want)
			}
			if h.sup.Busy() {
				t.Error("slot still taken after a failed start")
			}
		})
	}
}

func TestCommandTempDir(t *testing.T) {
	h := start(t, nil)
	res := h.exec(t, "tmpdir")
	dir := strings.TrimSpace(res.Text)
	if filepath.Dir(dir) != h.tmp || !strings.HasPrefix(filepath.Base(dir), "vmd-cmd-") {
		t.Errorf("TMPDIR = %q; want a vmd-cmd-* directory in %q", dir, h.tmp)
	}
	// Removed in the background, soon after the answer.
	waitFor(t, func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) })
}

func TestOutputCap(t *testing.T) {
	h := start(t, func(c *Config) { c.MaxOutput = 1000 })
	res := h.exec(t, "bytes 300000")
	if len(res.Text) != 1000 || !res.Truncated {
		t.Errorf("stdout %d bytes, truncated %v; want 1000, true", len(res.Text), res.Truncated)
	}
	res = h.exec(t, "bytes 1000")
	if len(res.Text) != 1000 || res.Truncated {
		t.Errorf("stdout %d bytes, truncated %v; want 1000, false", len(res.Text), res.Truncated)
	}
}

// A CLI that exits without reading a prompt larger than the pipe's buffer
// must not leave vmd blocked writing it.
func TestUnreadPrompt(t *testing.T) {
	h := start(t, func(c *Config) { c.Bin = "true" })
	res := h.exec(t, strings.Repeat("p", 4<<20))
	if res.Outcome != Exited || res.ExitCode != 0 {
		t.Errorf("outcome %v exit %d; want exited 0", res.Outcome, res.ExitCode)
	}
}

func TestEnvironment(t *testing.T) {
	h := start(t, func(c *Config) { c.Env = append(c.Env, "GITHUB_TOKEN=gh-test") })
	res := h.exec(t, "env GITHUB_TOKEN\nenv TMPDIR")
	lines := strings.Split(strings.TrimSpace(res.Text), "\n")
	if len(lines) != 2 || lines[0] != "GITHUB_TOKEN=gh-test" || !strings.HasPrefix(lines[1], "TMPDIR="+h.tmp) {
		t.Errorf("child env = %q; want GITHUB_TOKEN passed and TMPDIR in %s", lines, h.tmp)
	}
}

func TestWorkDir(t *testing.T) {
	dir := t.TempDir()
	h := start(t, func(c *Config) { c.Dir = dir })
	if got := strings.TrimSpace(string(h.exec(t, "pwd").Text)); got != dir {
		t.Errorf("working directory = %q; want %q", got, dir)
	}
}

func TestImagesOfTheCommand(t *testing.T) {
	h := start(t, nil)
	if err := os.WriteFile(filepath.Join(h.images.Dir(), "old.png"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := h.exec(t, "image a.png\nimage b.jpeg\nimage notes.txt\nsay done")
	if got := strings.Join(res.Images, ","); got != "a.png,b.jpeg" {
		t.Errorf("Images = %q; want a.png,b.jpeg", got)
	}
	res = h.exec(t, "say none")
	if len(res.Images) != 0 {
		t.Errorf("Images of a command that made none = %q", res.Images)
	}
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Removing a used TMPDIR (a Chromium profile can take seconds) must not hold
// back reaping: the next command still ends as it should, at once.
func TestSlowTempRemovalDoesNotBlockReaping(t *testing.T) {
	release := make(chan struct{})
	h := start(t, func(c *Config) { c.Timeout = 5 * time.Second })
	remove := h.sup.tmp.remove
	blocked := make(chan struct{}, 1)
	// Set before the first discard; the channel send in discard orders it
	// before the janitor reads it.
	h.sup.tmp.remove = func(d *leftovers.Dir) {
		select {
		case blocked <- struct{}{}:
			<-release // the first removal hangs until the end of the test
		default:
		}
		remove(d)
	}
	defer close(release)
	h.exec(t, "say first")
	<-blocked
	res := h.exec(t, "say second\nexit 3")
	if res.Outcome != Exited || res.ExitCode != 3 || res.Text != "second\n" {
		t.Errorf("command while a removal hangs = %v exit %d %q; want exited 3 second", res.Outcome, res.ExitCode, res.Text)
	}
}
