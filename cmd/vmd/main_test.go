package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// vmdBin and fake are built once for the run: these tests start vmd as a
// real process and talk to it over loopback, as the relay and Docker do.
var vmdBin, fake string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.VMD, testbin.FakeClaude}, []*string{&vmdBin, &fake})
}

// baseEnv is what every vmd under test gets: a free port, the fake claude,
// JSON logs to find the port in, and no inherited settings.
func baseEnv(t *testing.T) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"ANTHROPIC_API_KEY=test-key",
		"PORT=0",
		"HOST=127.0.0.1",
		"CLAUDE_BIN=" + fake,
		"IMAGES_DIR=" + filepath.Join(t.TempDir(), "images"),
		"LOG_FORMAT=json",
		"LOG_LEVEL=debug",
		"TMPDIR=" + t.TempDir(),
	}
	return env
}

// vmdProc is a running vmd.
type vmdProc struct {
	*vmdtest.Process
	url string
	pid int // as seen from the test; inside a PID namespace vmd is 1
}

// startVMD runs argv (vmd, or a wrapper that runs it) and waits for the
// startup line.
func startVMD(t testing.TB, env []string, argv ...string) *vmdProc {
	t.Helper()
	if len(argv) == 0 {
		argv = []string{vmdBin}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	p := vmdtest.StartProcess(t, cmd)
	return &vmdProc{Process: p, url: p.URL, pid: p.Pid}
}

func (p *vmdProc) logged(message string) bool    { return p.Log.Logged(message) }
func (p *vmdProc) field(message, key string) any { return p.Log.Field(message, key) }
func (p *vmdProc) signal(sig os.Signal)          { _ = p.Cmd.Process.Signal(sig) }

type reply struct {
	status int
	body   map[string]any
	err    error
}

func post(url, text string) reply { return postBody(url, map[string]string{"text": text}) }

// postBody posts body, as JSON, to /command.
func postBody(url string, body map[string]string) reply {
	b, _ := json.Marshal(body)
	resp, err := http.Post(url+"/command", "application/json", strings.NewReader(string(b)))
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		r.err = fmt.Errorf("body %q: %w", raw, err)
	}
	return r
}

// inFlight posts a command in the background and returns once vmd has
// started it; its reply arrives on the channel.
func (p *vmdProc) inFlight(t *testing.T, text string) <-chan reply {
	t.Helper()
	got := make(chan reply, 1)
	go func() { got <- post(p.url, text) }()
	p.running(t)
	return got
}

// running waits for a command to run, and returns its CLI's pid (as vmd
// sees it: inside a PID namespace, the namespace's).
func (p *vmdProc) running(t *testing.T) int {
	t.Helper()
	pid := 0
	vmdtest.Eventually(t, "a command to run", func() bool {
		_, _, body := request(t, "GET", p.url+"/status", "")
		var st struct {
			Command *struct{ Pid int }
		}
		if json.Unmarshal([]byte(body), &st) == nil && st.Command != nil {
			pid = st.Command.Pid
		}
		return pid != 0
	})
	return pid
}

var waitFor = vmdtest.Eventually

func TestStartupErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.hcl")
	os.WriteFile(typo, []byte("port = 3001\nprot = 3002\n"), 0o644)
	badDuration := filepath.Join(dir, "duration.hcl")
	os.WriteFile(badDuration, []byte("\ncommand_timeout = \"five minutes\"\n"), 0o644)
	badType := filepath.Join(dir, "type.hcl")
	os.WriteFile(badType, []byte("port = \"http\"\n"), 0o644)

	tests := []struct {
		name  string
		env   []string // added to, or overriding, a working environment
		args  []string
		lines []string // the whole of stderr, one pattern a line
	}{
		{"no API key", []string{"ANTHROPIC_API_KEY="}, nil,
			[]string{`^vmd: ANTHROPIC_API_KEY is not set: .*$`}},
		{"timeout not a number", []string{"COMMAND_TIMEOUT_MS=abc"}, nil,
			[]string{`^vmd: COMMAND_TIMEOUT_MS="abc": not a whole number of milliseconds$`}},
		{"negative port", []string{"PORT=-1"}, nil,
			[]string{`^vmd: port: -1 is not a TCP port .*$`}},
		{"several at once", []string{"PORT=x", "LOG_LEVEL=loud", "ANTHROPIC_API_KEY="}, nil,
			[]string{`^vmd: PORT="x": not a whole number$`, `^vmd: ANTHROPIC_API_KEY is not set: .*$`, `^vmd: log_level: "loud" is not one of .*$`}},
		{"unknown attribute", nil, []string{"-config", typo},
			[]string{`^vmd: ` + regexp.QuoteMeta(typo) + `:2:1: Unsupported argument: An argument named "prot" is not expected here\.$`}},
		{"bad duration", []string{"VM_CONFIG=" + badDuration}, nil,
			[]string{`^vmd: ` + regexp.QuoteMeta(badDuration) + `:2:19: Invalid duration: command_timeout: "five minutes" is not a duration.*$`}},
		{"wrong type", nil, []string{"-config", badType},
			[]string{`^vmd: ` + regexp.QuoteMeta(badType) + `:1:9: Unsuitable value type: .*$`}},
		{"open without a token", []string{"HOST=0.0.0.0"}, nil,
			[]string{`^vmd: api_token: not set while host "0.0.0.0" reaches beyond loopback, .* set ALLOW_UNAUTHENTICATED=true if nothing but you can reach it$`}},
		{"missing config file", nil, []string{"-config", filepath.Join(dir, "nope.hcl")},
			[]string{`^vmd: config file: open .*nope.hcl: no such file or directory .*$`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(vmdBin, tt.args...)
			cmd.Env = append(baseEnv(t), tt.env...)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("vmd exit = %v; want 1\n%s", err, out)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			if len(lines) != len(tt.lines) {
				t.Fatalf("stderr = %q; want %d lines", out, len(tt.lines))
			}
			for i, re := range tt.lines {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("stderr line %d = %q; want it to match %s", i+1, lines[i], re)
				}
			}
		})
	}
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	first := startVMD(t, baseEnv(t))
	port := strings.TrimPrefix(first.url, "http://127.0.0.1:")
	cmd := exec.Command(vmdBin)
	cmd.Env = append(baseEnv(t), "PORT="+port)
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "address already in use") {
		t.Errorf("second vmd on port %s: exit %d, %q; want 1 and address already in use", port, cmd.ProcessState.ExitCode(), out)
	}
}

// Each stop signal ends an idle vmd cleanly. SIGHUP does only if the test
// itself was not started with SIGHUP ignored (nohup, a background job of
// some shells): vmd then keeps it ignored, as TestNohup checks, and stops
// on the SIGTERM that follows instead.
func TestServesAndStopsIdle(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			if sig == syscall.SIGHUP && signal.Ignored(syscall.SIGHUP) {
				hupIgnored(t, startVMD(t, baseEnv(t)))
				return
			}
			p := startVMD(t, baseEnv(t))
			resp, err := http.Get(p.url + "/health")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /health = %v, %v", resp, err)
			}
			resp.Body.Close()
			if r := post(p.url, "What is 2+2?"); r.status != 200 || r.body["text"] != "echo: What is 2+2?\n" {
				t.Fatalf("POST /command = %d %v %v", r.status, r.body, r.err)
			}
			p.signal(sig)
			if code := p.WaitExit(t); code != 0 {
				t.Errorf("exit code after %v = %d; want 0", sig, code)
			}
		})
	}
}

// hupIgnored checks that a vmd started with SIGHUP ignored ignores it: sent
// SIGHUP, then SIGTERM, it stops for the SIGTERM. Both are pending before it
// handles either, and signals are handled lowest number first, so a vmd
// that listened for SIGHUP would stop for it.
func hupIgnored(t *testing.T, p *vmdProc) {
	t.Helper()
	p.signal(syscall.SIGHUP)
	p.signal(syscall.SIGTERM)
	if code := p.WaitExit(t); code != 0 {
		t.Errorf("exit code = %d; want 0", code)
	}
	if reason := fmt.Sprint(p.field("stopped", "reason")); !strings.Contains(reason, syscall.SIGTERM.String()) {
		t.Errorf("stopped for %q; want SIGTERM, SIGHUP ignored", reason)
	}
}

// The CLI gets vmd's environment without vmd's own settings (a PORT would
// send the agent's dev servers onto vmd's port), with IMAGES_DIR as resolved.
func TestChildEnvironment(t *testing.T) {
	t.Parallel()
	env := append(baseEnv(t), "GITHUB_TOKEN=gh-test", "COMMAND_TIMEOUT_MS=60000")
	p := startVMD(t, env)
	r := post(p.url, "env PORT\nenv COMMAND_TIMEOUT_MS\nenv GITHUB_TOKEN\nenv ANTHROPIC_API_KEY\nenv IMAGES_DIR")
	var imagesDir string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "IMAGES_DIR="); ok {
			imagesDir = v
		}
	}
	want := "PORT=\nCOMMAND_TIMEOUT_MS=\nGITHUB_TOKEN=gh-test\nANTHROPIC_API_KEY=test-key\nIMAGES_DIR=" + imagesDir + "\n"
	if r.status != 200 || r.body["text"] != want {
		t.Errorf("the CLI's environment = %d %q; want %q", r.status, r.body["text"], want)
	}
}

// An MCP config in the CLI's working directory is handed to it by absolute
// path; without one the CLI gets none.
func TestMCPConfigArgument(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	p := startVMD(t, append(baseEnv(t), "WORK_DIR="+work))
	if r := post(p.url, "args"); r.status != 200 || strings.Contains(r.body["text"].(string), "--mcp-config") ||
		strings.Contains(r.body["text"].(string), "--append-system-prompt") {
		t.Errorf("no .mcp.json: args = %d %q; want no --mcp-config, no screenshot hint", r.status, r.body["text"])
	}
	p.Cmd.Process.Kill()

	if err := os.WriteFile(filepath.Join(work, ".mcp.json"), []byte(`{"mcpServers":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p = startVMD(t, append(baseEnv(t), "WORK_DIR="+work))
	want := "--mcp-config " + filepath.Join(work, ".mcp.json") + " --append-system-prompt Screenshots reach the user only from the directory "
	if r := post(p.url, "args"); r.status != 200 || !strings.Contains(r.body["text"].(string), want) {
		t.Errorf("with .mcp.json: args = %d %q; want %q in them", r.status, r.body["text"], want)
	}
}

// With an MCP config, the CLI is told where screenshots must go, by
// absolute path, unless claude_args sets a system prompt of its own.
func TestScreenshotHint(t *testing.T) {
	t.Parallel()
	dir, work := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(work, ".mcp.json"), []byte(`{"mcpServers":{}}`), 0o644)
	p := startVMD(t, append(baseEnv(t), "IMAGES_DIR=images", "WORK_DIR="+work), "sh", "-c", "cd "+dir+" && exec "+vmdBin)
	want := "only from the directory " + filepath.Join(dir, "images") + "."
	if r := post(p.url, "args\nenv IMAGES_DIR"); r.status != 200 || !strings.Contains(r.body["text"].(string), want) ||
		!strings.HasSuffix(r.body["text"].(string), "IMAGES_DIR="+filepath.Join(dir, "images")+"\n") {
		t.Errorf("args = %d %q; want %q in them and IMAGES_DIR absolute", r.status, r.body["text"], want)
	}
	p.Cmd.Process.Kill()

	cfg := filepath.Join(dir, "vm.hcl")
	os.WriteFile(cfg, []byte(`claude_args = ["-p", "--append-system-prompt", "mine"]`+"\n"), 0o644)
	// Without stream-json the CLI answers cold, a process a message.
	p = startVMD(t, append(baseEnv(t), "VM_CONFIG="+cfg, "WORK_DIR="+work, "WARM=false"))
	if r := post(p.url, "args"); r.status != 200 || r.body["text"] != "-p --append-system-prompt mine --mcp-config "+filepath.Join(work, ".mcp.json")+"\n" {
		t.Errorf("args with a prompt of their own = %d %q; want them untouched", r.status, r.body["text"])
	}
}

// vmd asks the CLI its version at start: /status shows it without anyone
// having asked /ready.
func TestVersionAtStart(t *testing.T) {
	t.Parallel()
	p := startVMD(t, baseEnv(t))
	waitFor(t, "claude version logged", func() bool { return p.logged("claude version") })
	resp, err := http.Get(p.url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		ClaudeVersion *string `json:"claudeVersion"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	if st.ClaudeVersion == nil || *st.ClaudeVersion != "1.0.0-fake (Claude Code)" {
		t.Errorf("claudeVersion = %v; want the fake CLI's", st.ClaudeVersion)
	}
}

// Idle, vmd exits at once on a signal, even while a client holds a
// connection with half a request on it.
func TestIdleStopIgnoresHalfOpenConnections(t *testing.T) {
	t.Parallel()
	p := startVMD(t, append(baseEnv(t), "DRAIN_TIMEOUT_MS=600000"))
	c, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te"))
	p.signal(syscall.SIGTERM)
	// A drain with nothing running ends within its grace; the drain budget
	// (10 minutes here) spent waiting on the client would outlast the
	// harness's patience.
	if code := p.WaitExit(t); code != 0 {
		t.Errorf("exit code = %d; want 0", code)
	}
}

// Started under nohup, vmd keeps SIGHUP ignored.
func TestNohup(t *testing.T) {
	t.Parallel()
	nohup, err := exec.LookPath("nohup")
	if err != nil {
		t.Skip("no nohup")
	}
	hupIgnored(t, startVMD(t, baseEnv(t), nohup, vmdBin))
}

// The drain, as Docker and Fly.io drive it: a signal while a command runs.
func TestDrain(t *testing.T) {
	t.Parallel()
	t.Run("command finishes within budget", func(t *testing.T) {
		p := startVMD(t, append(baseEnv(t), "DRAIN_TIMEOUT_MS=8000"))
		got := p.inFlight(t, "sleep 2s\nsay finished") // long enough to be seen running on a loaded machine
		p.signal(syscall.SIGTERM)
		r := vmdtest.Within(t, "the in-flight answer", got)
		if r.status != 200 || r.body["text"] != "finished\n" {
			t.Errorf("in-flight command = %d %v %v; want 200 with its answer", r.status, r.body, r.err)
		}
		if code := p.WaitExit(t); code != 0 {
			t.Errorf("exit code = %d; want 0", code)
		}
	})
	t.Run("command killed after budget", func(t *testing.T) {
		p := startVMD(t, append(baseEnv(t), "DRAIN_TIMEOUT_MS=700"))
		got := p.inFlight(t, "ignore-term\nsay partial\nescape\nsleep 1h")
		waitFor(t, "the partial answer read", func() bool { return p.logged("message") })
		signalled := time.Now()
		p.signal(syscall.SIGTERM)

		// While draining, new commands are refused but vmd still answers.
		waitFor(t, "draining", func() bool { return p.logged("draining") })
		if r := post(p.url, "say late"); r.status != 503 || r.body["error"] != "shutting_down" {
			t.Errorf("new command while draining = %d %v %v; want 503 shutting_down", r.status, r.body, r.err)
		}
		r := vmdtest.Within(t, "the in-flight answer", got)
		if r.status != 503 || r.body["error"] != "shutting_down" || !strings.HasPrefix(fmt.Sprint(r.body["text"]), "partial\n") {
			t.Errorf("in-flight command = %d %v %v; want 503 shutting_down with the partial text", r.status, r.body, r.err)
		}
		code := p.WaitExit(t)
		if code != 0 {
			t.Errorf("exit code = %d; want 0", code)
		}
		t.Logf("signal to exit: %v", time.Since(signalled))
		escaped := regexp.MustCompile(`pid escaped (\d+)`).FindStringSubmatch(fmt.Sprint(r.body["text"]))
		if escaped == nil {
			t.Fatalf("no escaped pid in %v", r.body["text"])
		}
		pid, _ := strconv.Atoi(escaped[1])
		if syscall.Kill(pid, 0) != syscall.ESRCH {
			t.Errorf("escaped process %d outlived vmd", pid)
		}
	})
	// An event stream lives on a connection fasthttp has handed over: the
	// drain still waits for its last event.
	t.Run("event stream gets its result", func(t *testing.T) {
		p := startVMD(t, append(baseEnv(t), "DRAIN_TIMEOUT_MS=8000"))
		c, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		body := `{"text":"sleep 2s\nsay finished"}` // seen running on a loaded machine
		fmt.Fprintf(c, "POST /command HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		p.running(t)
		p.signal(syscall.SIGTERM)
		c.SetReadDeadline(time.Now().Add(time.Minute)) // against a hang only
		stream, _ := io.ReadAll(c)
		if !regexp.MustCompile(`event: result\nstatus: 200\ndata: \{"text":"finished\\n"`).Match(stream) {
			t.Errorf("stream = %q; want its 200 result", stream)
		}
		if code := p.WaitExit(t); code != 0 {
			t.Errorf("exit code = %d; want 0", code)
		}
	})
	t.Run("second signal stops at once", func(t *testing.T) {
		p := startVMD(t, append(baseEnv(t), "DRAIN_TIMEOUT_MS=600000"))
		got := p.inFlight(t, "ignore-term\nsleep 1h")
		p.signal(syscall.SIGINT)
		waitFor(t, "draining", func() bool { return p.logged("draining") })
		p.signal(syscall.SIGINT)
		if r := vmdtest.Within(t, "the in-flight answer", got); r.status != 503 {
			t.Errorf("in-flight command = %d %v %v; want 503", r.status, r.body, r.err)
		}
		if code := p.WaitExit(t); code != 0 {
			t.Errorf("exit code = %d; want 0", code)
		}
	})
}

// Even a vmd killed outright takes its command with it.
func TestCommandDiesWithVMD(t *testing.T) {
	t.Parallel()
	p := startVMD(t, baseEnv(t))
	p.inFlight(t, "ignore-term\nsleep 1h")
	pid := p.running(t)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // if the test fails
	p.Cmd.Process.Kill()
	waitFor(t, "the CLI to die", func() bool { st, ok := vmdtest.ReadStat(pid); return !ok || st.State == 'Z' })
}

// What a vmd that died left in the temp directories goes at the next start.
func TestLeftoversRemovedAtStart(t *testing.T) {
	t.Parallel()
	env := baseEnv(t)
	tmp := strings.TrimPrefix(env[len(env)-1], "TMPDIR=")
	stale := []string{
		filepath.Join(tmp, "vmd-cmd-123"),
		filepath.Join("/dev/shm", fmt.Sprintf("vmd-marks-test-%d", os.Getpid())),
	}
	old := time.Now().Add(-time.Hour)
	for _, d := range stale {
		if err := os.MkdirAll(filepath.Join(d, "chromium-profile"), 0o755); err != nil {
			t.Skip(err)
		}
		defer os.RemoveAll(d)
		os.Chtimes(d, old, old)
	}
	p := startVMD(t, env)
	// The sweep of command dirs runs beside serving, not before it.
	waitFor(t, "leftovers removed", func() bool {
		for _, d := range stale {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				return false
			}
		}
		return true
	})
	if r := post(p.url, "say ok"); r.status != 200 {
		t.Errorf("command after the sweep = %d %v %v", r.status, r.body, r.err)
	}
}

// As PID 1 of its own PID namespace, as under Docker, vmd must reap every
// orphan without ever taking the exit status of the command it waits for.
func TestPID1(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root for unshare --pid")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	p := startVMD(t, baseEnv(t), unshare, "--pid", "--fork", "--mount-proc", "--kill-child", vmdBin)
	// The test sees unshare; vmd is its only child.
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.pid, p.pid))
	if err != nil {
		t.Fatal(err)
	}
	vmdPid, err := strconv.Atoi(strings.TrimSpace(string(kids)))
	if err != nil {
		t.Fatalf("children of unshare = %q", kids)
	}
	if nspid := nsPid(t, vmdPid); nspid != "1" {
		t.Fatalf("vmd's pid in its namespace = %s; want 1", nspid)
	}

	for i := range 10 {
		r := post(p.url, "orphans 8\nescape\nsleep 30ms\nsay round "+strconv.Itoa(i)+"\nexit 5")
		if r.status != 500 || r.body["exitCode"] != 5.0 {
			t.Fatalf("round %d = %d %v %v; want 500 with exitCode 5 (the CLI's own status)", i, r.status, r.body, r.err)
		}
	}
	if r := post(p.url, "say ok"); r.status != 200 || r.body["exitCode"] != 0.0 {
		t.Fatalf("plain command = %d %v %v", r.status, r.body, r.err)
	}
	// The last orphans may still be sleeping; none may stay a zombie, and
	// nothing but the agents vmd holds warm (and its spare) is left.
	waitFor(t, "no children under vmd but its agents", func() bool {
		_, _, body := request(t, "GET", p.url+"/status", "")
		var st struct{ Agents []struct{ Pid int } }
		json.Unmarshal([]byte(body), &st)
		kids := vmdtest.Children(vmdPid)
		for _, k := range kids {
			if k.State == 'Z' {
				return false
			}
		}
		return len(kids) == len(st.Agents)
	})

	// unshare does not pass signals on: signal vmd itself, as Docker does.
	syscall.Kill(vmdPid, syscall.SIGTERM)
	if code := p.WaitExit(t); code != 0 {
		t.Errorf("exit code = %d; want 0", code)
	}
}

// nsPid is a process's pid inside its own PID namespace.
func nsPid(t *testing.T, pid int) string {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^NSpid:.*\s(\d+)$`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no NSpid in /proc/%d/status", pid)
	}
	return string(m[1])
}
