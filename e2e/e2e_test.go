//go:build real

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/fakeapi"
	"github.com/vmd-dev/vmd/internal/poll"
	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// vmdBin is vmd, built once for the run.
var vmdBin string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.VMD}, []*string{&vmdBin})
}

// The real stack: the programs npm ci installs at the repository root, and
// the Chromium the repository's .mcp.json points Playwright MCP at.
var (
	root      = must(filepath.Abs(".."))
	claudeBin = filepath.Join(root, "node_modules", ".bin", "claude")
	mcpBin    = filepath.Join(root, "node_modules", ".bin", "playwright-mcp")
)

const chromium = "/usr/bin/chromium"

// nobody is who vmd, and so the CLI, run as when the tests run as root:
// Claude Code refuses --dangerously-skip-permissions to root.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// needReal fails the test when part of the real stack is missing: the
// tests are selected explicitly (-tags real), so a missing tool is an error,
// never a silent skip.
func needReal(t testing.TB) {
	t.Helper()
	var missing []string
	for _, p := range []string{claudeBin, mcpBin, chromium} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (on PATH)")
	}
	if len(missing) == 0 {
		return
	}
	t.Fatal("real stack missing: " + strings.Join(missing, ", ") + "; run .ci/install-agent")
}

// stack is one test's world: a fake API, a directory owned by the user vmd
// runs as (HOME, WORK_DIR with the repository's .mcp.json, IMAGES_DIR,
// TMPDIR), and vmd's environment.
type stack struct {
	t      testing.TB
	api    *fakeapi.Server
	dir    string
	images string
	// mark is the value of VMD_E2E_MARK in vmd's environment, which the
	// CLI, Playwright MCP and Chromium inherit: it finds what they leave.
	mark string
	cred *syscall.Credential // nil when the tests do not run as root
	env  []string

	mu   sync.Mutex
	vmds []int // pids of the vmds running, which marked leaves out
}

var chmodBin sync.Once

func newStack(t testing.TB) *stack {
	t.Helper()
	needReal(t)
	api, err := fakeapi.New(fakeapi.WithLogf(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	s := &stack{t: t, api: api}
	if os.Geteuid() == 0 {
		s.cred = nobody
		// testbin builds into a directory only root may enter.
		chmodBin.Do(func() { os.Chmod(filepath.Dir(vmdBin), 0o755) })
	}
	// Not t.TempDir: its parent is 0700, closed to the user vmd runs as.
	s.dir, err = os.MkdirTemp("", "vmd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(s.dir) })
	s.mark = filepath.Base(s.dir)
	s.images = filepath.Join(s.dir, "images")
	work := filepath.Join(s.dir, "work")
	for _, d := range []string{s.dir, filepath.Join(s.dir, "home"), work, s.images, filepath.Join(s.dir, "tmp")} {
		if d != s.dir {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		s.chown(d)
	}
	mcp, err := os.ReadFile(filepath.Join(root, ".mcp.json"))
	if err != nil {
		t.Fatal(err)
	}
	s.write(filepath.Join(work, ".mcp.json"), mcp)
	// Chromium looks up accounts.google.com at start even with Playwright's
	// --disable-background-networking; here it resolves no name at all, so
	// nothing but loopback is ever asked. Playwright MCP merges this file
	// (PLAYWRIGHT_MCP_CONFIG) under the flags of .mcp.json.
	pwConfig := filepath.Join(s.dir, "playwright-mcp.json")
	s.write(pwConfig, []byte(`{"browser":{"launchOptions":{"args":["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]}}}`))

	s.env = []string{
		"PATH=" + filepath.Dir(claudeBin) + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + filepath.Join(s.dir, "home"),
		"TMPDIR=" + filepath.Join(s.dir, "tmp"),
		"HOST=127.0.0.1",
		"PORT=0",
		"LOG_FORMAT=json",
		"LOG_LEVEL=debug",
		"CLAUDE_BIN=" + claudeBin,
		"WORK_DIR=" + work,
		"IMAGES_DIR=" + s.images,
		"COMMAND_TIMEOUT_MS=120000",
		"ANTHROPIC_BASE_URL=" + api.URL(),
		"ANTHROPIC_API_KEY=test-key",
		// With a base URL not Anthropic's, the CLI would otherwise hide
		// the MCP tools behind a tool search tool.
		"ENABLE_TOOL_SEARCH=false",
		// One retry, not ten over three minutes.
		"CLAUDE_CODE_MAX_RETRIES=1",
		// No telemetry, error reports or update checks.
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"PLAYWRIGHT_MCP_CONFIG=" + pwConfig,
		"VMD_E2E_MARK=" + s.mark,
	}
	return s
}

func (s *stack) chown(path string) {
	if s.cred != nil {
		if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *stack) write(path string, b []byte) {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.chown(path)
}

// vmd is a running vmd.
type vmd struct {
	cmd    *exec.Cmd
	url    string
	client *http.Client
	proc   *vmdtest.Process
}

// start runs vmd with the stack's environment plus env (later entries
// win), as nobody when the tests run as root, unless asRoot. When t ends
// vmd is stopped with SIGTERM, and nothing the stack started may be left
// running.
func (s *stack) start(t testing.TB, asRoot bool, env ...string) *vmd {
	t.Helper()
	v := &vmd{
		cmd:    exec.Command(vmdBin),
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 3 * time.Minute},
	}
	v.cmd.Env = append(slices.Clone(s.env), env...)
	v.cmd.Dir = s.dir
	if s.cred != nil && !asRoot {
		v.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	v.proc = vmdtest.StartProcess(t, v.cmd)
	s.mu.Lock()
	s.vmds = append(s.vmds, v.pid())
	s.mu.Unlock()
	// Registered after StartProcess's own cleanup, which kills: cleanups
	// run last first, so this one, run first, stops vmd as a platform does
	// and checks what it leaves.
	t.Cleanup(func() {
		v.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-v.proc.Exited():
		case <-time.After(time.Minute):
			t.Errorf("vmd still running a minute after SIGTERM")
			v.cmd.Process.Kill()
			<-v.proc.Exited()
		}
		s.mu.Lock()
		s.vmds = slices.DeleteFunc(s.vmds, func(pid int) bool { return pid == v.pid() })
		s.mu.Unlock()
		if left := s.marked(); len(left) > 0 {
			t.Errorf("left running after vmd stopped (killed now):\n%s\nvmd log:\n%s", strings.Join(left, "\n"), v.logs())
			s.kill()
		}
	})

	v.url = v.proc.URL
	return v
}

func (v *vmd) logs() string { return v.proc.Log.String() }

func (v *vmd) pid() int { return v.cmd.Process.Pid }

// answer is vmd's answer to a command.
type answer struct {
	status     int
	body       string
	took       time.Duration
	Text       string   `json:"text"`
	Images     []string `json:"images"`
	ExitCode   *int     `json:"exitCode"`
	DurationMs int64    `json:"durationMs"`
	Error      string   `json:"error"`
	Message    string   `json:"message"`
	SessionID  string   `json:"sessionId"`
	CostUSD    *float64 `json:"costUsd"`
	Warnings   []string `json:"warnings"`
	Warm       *bool    `json:"warm"`
}

// command posts a command. It does not fail the test, so that it may run in
// a goroutine; an answer that did not come has status 0 and the error in
// Message.
func (v *vmd) command(text string) answer {
	return v.commandWith(map[string]string{"text": text})
}

// commandWith posts a command with more members (sessionId, timeoutMs).
func (v *vmd) commandWith(fields map[string]string) answer {
	body, _ := json.Marshal(fields)
	start := time.Now()
	resp, err := v.client.Post(v.url+"/command", "application/json", bytes.NewReader(body))
	if err != nil {
		return answer{Message: err.Error(), took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(b), took: time.Since(start)}
	if err == nil {
		err = json.Unmarshal(b, &a)
	}
	if err != nil {
		a.Message = fmt.Sprintf("reading the answer: %v", err)
	}
	return a
}

func (a answer) String() string {
	return fmt.Sprintf("%d after %v: %s", a.status, a.took.Round(time.Millisecond), a.body)
}

// marked lists the processes the stack's vmds started that are still
// running, as "PID COMMAND": those with the stack's mark in their
// environment, or working in its directory (Chromium's zygote writes its
// title over its environment, but keeps the directory), but the vmds.
func (s *stack) marked() []string { return s.list(true) }

// list lists the processes of the stack's, but vmd's own and, with
// skipRunning, those of a vmd still running.
func (s *stack) list(skipRunning bool) []string {
	s.mu.Lock()
	vmds := slices.Clone(s.vmds)
	s.mu.Unlock()
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || slices.Contains(vmds, pid) {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		cwd, _ := os.Readlink("/proc/" + e.Name() + "/cwd")
		if !bytes.Contains(env, []byte("VMD_E2E_MARK="+s.mark+"\x00")) && cwd != s.dir && !strings.HasPrefix(cwd, s.dir+"/") {
			continue
		}
		if skipRunning && slices.Contains(vmds, ownerOf(pid)) {
			continue // a process of a vmd still running (its agents)
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if len(cmdline) == 0 {
			continue // a zombie, or gone
		}
		cmd := strings.ReplaceAll(string(cmdline), "\x00", " ")
		found = append(found, fmt.Sprintf("%d %.120s", pid, cmd))
	}
	return found
}

// ownerOf is the pid of the vmd that started process pid (the first part
// of the marker vmd gives each process it starts, "<vmd's pid>.<n>.<m>",
// which everything it starts inherits), or 0.
func ownerOf(pid int) int {
	owner, _ := strconv.Atoi(strings.Split(vmdtest.Marker(pid), ".")[0])
	return owner
}

// strays are the processes of the stack's that no agent vmd v holds owns:
// what a command left behind. An agent's tree (the CLI, Playwright MCP,
// Chromium) carries the marker of the agent's process. The processes
// are read until none is left or the patience runs out: a spare vmd starts
// between a read of /status and one of /proc is owned by the next read,
// and a process vmd is sweeping is gone soon; what a command left behind
// for good stays. So this checks that vmd's sweep leaves nothing, not
// that nothing is left the instant an answer comes: an answer can come
// while the sweep still waits for what it killed to die.
func (s *stack) strays(t testing.TB, v *vmd) []string {
	t.Helper()
	var left []string
	poll.Until(func() bool {
		left = s.strayList(t, v)
		return len(left) == 0
	})
	return left
}

// strayList is one look at strays.
func (s *stack) strayList(t testing.TB, v *vmd) []string {
	t.Helper()
	kept := map[string]bool{}
	for _, a := range v.status(t).Agents {
		kept[vmdtest.Marker(a.Pid)] = true
	}
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == v.pid() {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if !bytes.Contains(env, []byte("VMD_E2E_MARK="+s.mark+"\x00")) || kept[vmdtest.Marker(pid)] {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if len(cmdline) == 0 {
			continue // a zombie, or gone
		}
		out = append(out, fmt.Sprintf("%d %.120s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return out
}

// status is vmd's GET /status, as far as the tests read it.
type status struct {
	Busy   bool
	Agents []struct {
		SessionID *string
		State     string
		Pid       int
		RSSBytes  int64
	}
}

func (v *vmd) status(t testing.TB) status {
	t.Helper()
	resp, err := v.client.Get(v.url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// kill kills what marked finds, so that a failed test leaves no browser
// on a shared machine.
func (s *stack) kill() {
	for _, p := range s.list(false) {
		pid, _ := strconv.Atoi(strings.Fields(p)[0])
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// checkRequests fails the test for a request to a route the fake API does
// not know (a new call of the CLI to support), and returns the Messages
// requests.
func checkRequests(t *testing.T, api *fakeapi.Server) []fakeapi.Request {
	t.Helper()
	var msgs []fakeapi.Request
	for _, r := range api.Requests() {
		if !r.Known {
			t.Errorf("the CLI called %s %s?%s, which the fake API does not know", r.Method, r.Path, r.Query)
		}
		if r.Messages != nil {
			msgs = append(msgs, r)
		}
	}
	if len(msgs) == 0 {
		t.Errorf("the fake API got no Messages request; got %d requests", len(api.Requests()))
	}
	return msgs
}

func TestAnswers(t *testing.T) {
	s := newStack(t)
	v := s.start(t, false)
	a := v.command("What is 2+2?")
	if a.status != http.StatusOK || strings.TrimSpace(a.Text) != "4" || a.ExitCode == nil || *a.ExitCode != 0 {
		t.Fatalf("What is 2+2? = %v; want 200 with text 4 and exitCode 0", a)
	}
	msgs := checkRequests(t, s.api)
	if len(msgs) == 0 {
		return
	}
	r := msgs[0]
	if r.Prompt != "What is 2+2?" {
		t.Errorf("the API was asked %q; want %q", r.Prompt, "What is 2+2?")
	}
	if got := r.Header.Get("X-Api-Key"); got != "test-key" {
		t.Errorf("x-api-key = %q; want test-key", got)
	}
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "claude-cli/") {
		t.Errorf("User-Agent = %q; want claude-cli/...", ua)
	}
	if !r.Messages.Stream {
		t.Errorf("the CLI asked for a non-streaming answer; want a stream")
	}
	// vmd's word on where screenshots must go reached the model.
	if hint := "Screenshots reach the user only from the directory " + s.images + "."; !bytes.Contains(r.Body, []byte(hint)) {
		t.Errorf("the request does not carry %q", hint)
	}
	// The repository's .mcp.json reached the CLI (vmd's --mcp-config), and
	// its tools are offered directly (ENABLE_TOOL_SEARCH=false).
	tools := r.Messages.ToolNames()
	for _, want := range []string{fakeapi.ToolNavigate, fakeapi.ToolScreenshot} {
		if !slices.Contains(tools, want) {
			t.Errorf("tools offered = %v; want %s among them", tools, want)
		}
	}
}

// A page for Chromium: red all over, so that a screenshot of it is known
// to be of it.
const page = `<!doctype html><title>vmd e2e page</title><style>html,body{margin:0;height:100%;background:#ff0000}</style><h1>vmd e2e</h1>`

func servePage(t testing.TB) (url string, userAgents func() []string) {
	var mu sync.Mutex
	var uas []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uas = append(uas, r.UserAgent())
		mu.Unlock()
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/", func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(uas)
	}
}

var screenshotName = regexp.MustCompile(`^/images/(page-[^/]+\.png)$`)

func TestScreenshot(t *testing.T) {
	s := newStack(t)
	url, userAgents := servePage(t)
	v := s.start(t, false)
	a := v.command("Take a screenshot of " + url)
	// The CLI's result, as stream-json carries it: no newline added.
	if a.status != http.StatusOK || a.Text != "Screenshot taken of "+url {
		t.Fatalf("screenshot command = %v; want 200 with text %q", a, "Screenshot taken of "+url)
	}
	if len(a.Images) != 1 || !screenshotName.MatchString(a.Images[0]) {
		t.Fatalf("images = %q; want one /images/page-*.png", a.Images)
	}
	name := screenshotName.FindStringSubmatch(a.Images[0])[1]
	if _, err := os.Lstat(filepath.Join(s.images, name)); err != nil {
		t.Errorf("the screenshot is not directly in the images directory: %v", err)
	}

	resp, err := v.client.Get(v.url + a.Images[0])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s = %d %s; want 200 image/png", a.Images[0], resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("GET %s starts % x; want the PNG signature", a.Images[0], b[:min(len(b), 8)])
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decoding the screenshot: %v", err)
	}
	// Playwright MCP's headless viewport, filled by the page's red.
	if got := img.Bounds().Size(); got.X != 1280 || got.Y != 720 {
		t.Errorf("screenshot is %v; want 1280x720", got)
	}
	if r, g, bl, _ := img.At(1000, 600).RGBA(); r>>8 < 240 || g>>8 > 15 || bl>>8 > 15 {
		t.Errorf("screenshot pixel (1000,600) = %d,%d,%d; want the page's red", r>>8, g>>8, bl>>8)
	}

	if !slices.ContainsFunc(userAgents(), func(ua string) bool { return strings.Contains(ua, "Chrome") }) {
		t.Errorf("the page was fetched by %q; want Chromium", userAgents())
	}
	msgs := checkRequests(t, s.api)
	if len(msgs) != 3 {
		t.Fatalf("the CLI made %d Messages requests; want 3 (prompt, navigate's result, screenshot's result)", len(msgs))
	}
	results := msgs[2].Messages.ToolResults()
	if len(results) != 2 {
		t.Fatalf("last request holds %d tool results; want 2", len(results))
	}
	if results[0].IsError || !strings.Contains(results[0].ResultText(), "vmd e2e page") {
		t.Errorf("navigate's result = %q (error %v); want the page's title in it", results[0].ResultText(), results[0].IsError)
	}
	if results[1].IsError || !strings.Contains(results[1].ResultText(), name) {
		t.Errorf("screenshot's result = %q (error %v); want the file name %s in it", results[1].ResultText(), results[1].IsError, name)
	}
}

// The CLI reports a failing API as an error result (is_error, though its
// subtype says "success") and exits 1: vmd answers 502 agent_error with
// the CLI's words, soon.
func TestAPIFailures(t *testing.T) {
	s := newStack(t)
	v := s.start(t, false)
	for _, tc := range []struct {
		prompt, want string
	}{
		{"Fail with 401", "Invalid API key"},
		{"Fail with 500", "API Error: 500"},
		{"Fail with 529", "API Error: 529 Overloaded"},
	} {
		t.Run(tc.prompt, func(t *testing.T) {
			s.api.Reset()
			a := v.command(tc.prompt)
			checkAPIFailure(t, a, tc.want)
			// CLAUDE_CODE_MAX_RETRIES=1: the first try and one retry.
			if n := len(checkRequests(t, s.api)); n != 2 {
				t.Errorf("the CLI tried %d times; want 2 (CLAUDE_CODE_MAX_RETRIES=1)", n)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		ln.Close()
		// A second vmd beside the first: its own state_dir, or it is
		// refused at start (one vmd a state_dir).
		v := s.start(t, false, "ANTHROPIC_BASE_URL="+closed, "STATE_DIR="+filepath.Join(s.dir, "home", ".vmd-unreachable"))
		a := v.command("What is 2+2?")
		checkAPIFailure(t, a, "ECONNREFUSED")
	})
}

func checkAPIFailure(t *testing.T, a answer, want string) {
	t.Helper()
	t.Logf("answer: %v", a)
	if a.status != http.StatusBadGateway || a.Error != "agent_error" || !strings.Contains(a.Message, want) ||
		a.ExitCode == nil || *a.ExitCode != 1 || a.SessionID == "" {
		t.Errorf("answer = %v; want 502 agent_error, exitCode 1, a session id, message containing %q", a, want)
	}
	if a.took > 30*time.Second {
		t.Errorf("the answer took %v; want under 30s", a.took)
	}
}

// A cold command (warm off: a process a message) that runs past its
// timeout while Chromium is up is answered 408, and the CLI, Playwright
// MCP and every Chromium process are gone.
func TestTimeoutMidToolCall(t *testing.T) {
	s := newStack(t)
	url, _ := servePage(t)
	// Long enough for the CLI to start Playwright MCP and for Chromium to
	// load the page (about 3s on the project's VM), so that the timeout
	// falls after, even with the rest of CI running beside it.
	const timeout = 20 * time.Second
	v := s.start(t, false, "COMMAND_TIMEOUT_MS="+strconv.Itoa(int(timeout.Milliseconds())), "WARM=false")
	answered := make(chan answer, 1)
	start := time.Now()
	go func() { answered <- v.command("Open " + url + " and stall") }()

	var a answer
	select {
	case <-s.api.Stalled():
		// The API holds its answer to navigate's result: Chromium is up.
		t.Logf("the API stalled after navigate; the command has run %v", time.Since(start).Round(time.Millisecond))
		left := s.list(false)
		if !slices.ContainsFunc(left, func(p string) bool { return strings.Contains(p, "chromium") }) {
			t.Errorf("no Chromium found while the command runs (the leftover check would see nothing):\n%s", strings.Join(left, "\n"))
		}
		a = <-answered
	case a = <-answered:
		t.Fatalf("answered %v before the API stalled after navigate; is %v too short here?", a, timeout)
	}
	if a.status != http.StatusRequestTimeout || a.Error != "timeout" {
		t.Fatalf("answer = %v; want 408 timeout", a)
	}
	if a.took < timeout || a.took > timeout+10*time.Second {
		t.Errorf("answered after %v; want just past the %v timeout", a.took, timeout)
	}
	msgs := checkRequests(t, s.api)
	if n := len(msgs); n != 2 || len(msgs[1].Messages.ToolResults()) != 1 || msgs[1].Messages.ToolResults()[0].IsError {
		t.Errorf("the CLI made %d Messages requests; want 2, the second with navigate's result, not an error", n)
	}
	// vmd answers once its sweep is done: nothing may be left by then. (Not
	// a few seconds later: Chromium would go of its own accord once
	// Playwright MCP is dead, and prove nothing about the sweep.)
	if left, kids := s.list(false), vmdtest.Descendants(v.pid()); len(left) > 0 || len(kids) > 0 {
		t.Errorf("when the 408 came: still running %q, below vmd %v", left, kids)
	}
}

// Claude Code refuses --dangerously-skip-permissions to root: vmd run as
// root answers every command 500 with the CLI's reason.
func TestAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not running as root")
	}
	s := newStack(t)
	v := s.start(t, true)
	a := v.command("What is 2+2?")
	t.Logf("answer: %v", a)
	if a.status != http.StatusInternalServerError || a.Error != "execution_error" ||
		!strings.Contains(a.Message, "--dangerously-skip-permissions cannot be used with root/sudo privileges") {
		t.Errorf("answer = %v; want 500 execution_error naming root", a)
	}
}

// A conversation through vmd: the answer names the session, the next
// message resumes it (the real CLI sends the conversation again, which the
// fake API's "What did I ask before?" answers from), a new one does not see
// it, and a session the CLI does not have is a 404.
func TestConversation(t *testing.T) {
	s := newStack(t)
	v := s.start(t, false)
	first := v.command("What is 2+2?")
	if first.status != http.StatusOK || strings.TrimSpace(first.Text) != "4" || first.SessionID == "" || first.CostUSD == nil {
		t.Fatalf("What is 2+2? = %v; want 200 with 4, a session id and a cost", first)
	}
	next := v.commandWith(map[string]string{"text": "What did I ask before?", "sessionId": first.SessionID})
	if next.status != http.StatusOK || strings.TrimSpace(next.Text) != "You asked: What is 2+2?" || next.SessionID != first.SessionID {
		t.Errorf("resumed = %v; want 200 recalling the first prompt in session %s", next, first.SessionID)
	}
	fresh := v.command("What did I ask before?")
	if fresh.status != http.StatusOK || strings.TrimSpace(fresh.Text) != "You asked nothing before." || fresh.SessionID == first.SessionID {
		t.Errorf("new conversation = %v; want 200, nothing recalled, a new session", fresh)
	}
	unknown := v.commandWith(map[string]string{"text": "hi", "sessionId": "0b6a2f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"})
	if unknown.status != http.StatusNotFound || unknown.Error != "session_not_found" {
		t.Errorf("unknown session = %v; want 404 session_not_found", unknown)
	}
}

// event is one Server-Sent Event.
type event struct{ name, status, data string }

// stream posts a command asking for events, and returns them as they come;
// the channel closes at the end of the stream.
func (v *vmd) stream(t *testing.T, text string) (<-chan event, *http.Response) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	req, _ := http.NewRequest("POST", v.url+"/command", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := v.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	evs := make(chan event, 100)
	go func() {
		defer close(evs)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 4<<20)
		var ev event
		for sc.Scan() {
			k, val, _ := strings.Cut(sc.Text(), ": ")
			switch k {
			case "event":
				ev.name = val
			case "status":
				ev.status = val
			case "data":
				ev.data = val
			case "":
				if ev.name != "" {
					evs <- ev
				}
				ev = event{}
			}
		}
	}()
	return evs, resp
}

// Live progress with the real stack: the session starts, the tools are
// named as Claude calls them, the screenshot is announced once taken, and
// the last event is the plain answer.
func TestStreamScreenshot(t *testing.T) {
	s := newStack(t)
	url, _ := servePage(t)
	v := s.start(t, false)
	evs, resp := v.stream(t, "Take a screenshot of "+url)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("stream answer = %d %s; want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var names, tools []string
	var image, last event
	for ev := range evs {
		names = append(names, ev.name)
		switch ev.name {
		case "message":
			var m struct{ Tools []string }
			json.Unmarshal([]byte(ev.data), &m)
			tools = append(tools, m.Tools...)
		case "image":
			image = ev
		}
		last = ev
	}
	t.Logf("events: %v", names)
	if len(names) == 0 || names[0] != "start" || last.name != "result" || last.status != "200" {
		t.Fatalf("events %v, last %v; want start first and a 200 result last", names, last)
	}
	if !slices.Equal(tools, []string{fakeapi.ToolNavigate, fakeapi.ToolScreenshot}) {
		t.Errorf("tools called = %v; want navigate then screenshot", tools)
	}
	var img struct{ Name, URL string }
	json.Unmarshal([]byte(image.data), &img)
	if !screenshotName.MatchString(img.URL) || slices.Index(names, "image") < slices.Index(names, "message") {
		t.Errorf("image event = %q; want /images/page-*.png after the tool calls", image.data)
	}
	var res answer
	json.Unmarshal([]byte(last.data), &res)
	if res.Text != "Screenshot taken of "+url || len(res.Images) != 1 || res.Images[0] != img.URL {
		t.Errorf("result = %s; want the answer with the image %s", last.data, img.URL)
	}
}

// DELETE /command in the middle of a tool call interrupts the turn: the
// stream ends with 499, and the conversation's agent lives on, Chromium
// and its page with it, for the next message, which it serves warm.
func TestCancelMidToolCall(t *testing.T) {
	s := newStack(t)
	url, _ := servePage(t)
	v := s.start(t, false)
	evs, _ := v.stream(t, "Open "+url+" and stall")
	select {
	case <-s.api.Stalled():
	case <-time.After(2 * time.Minute):
		t.Fatal("the API did not stall after navigate in 2 minutes")
	}
	req, _ := http.NewRequest("DELETE", v.url+"/command", nil)
	resp, err := v.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"cancelled":true`) {
		t.Errorf("DELETE /command = %d %s; want 200 cancelled", resp.StatusCode, body)
	}
	var last event
	for ev := range evs {
		last = ev
	}
	var res answer
	json.Unmarshal([]byte(last.data), &res)
	if last.name != "result" || last.status != "499" || res.Error != "cancelled" || res.SessionID == "" {
		t.Errorf("last event = %v; want a 499 cancelled result with the session", last)
	}
	if left := s.strays(t, v); len(left) > 0 {
		t.Errorf("after the cancel answered, and its sweep waited for: running, no agent's: %q", left)
	}
	if !slices.ContainsFunc(s.list(false), func(p string) bool { return strings.Contains(p, "chromium") }) {
		t.Errorf("Chromium is gone after an interrupt; want it kept with its agent")
	}
	s.api.Reset()
	page := v.commandWith(map[string]string{"text": "What page is open?", "sessionId": res.SessionID})
	if page.status != http.StatusOK || !strings.Contains(page.Text, url) || page.Warm == nil || !*page.Warm {
		t.Errorf("next message = %v; want 200, warm, on the page the interrupted turn opened (%s)", page, url)
	}
}
