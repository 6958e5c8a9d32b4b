package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/poll"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// server is a vmd the runner started through the harness: the real binary
// on loopback, its JSON log in a vmdtest.LogBuffer.
type server struct {
	*vmdtest.Process
	name   string
	images string // its IMAGES_DIR
	tmp    string // its TMPDIR
	// prompts is the fake CLI's log of the prompts it was given.
	prompts string
	env     []string // the environment it was started with
	client  *http.Client
}

// vmdSpec says how to start a vmd: its directories, its command timeout,
// extra environment, and a wrapper program (prlimit) if any.
type vmdSpec struct {
	name, fake, images, tmp string
	timeout                 time.Duration
	env                     []string
	wrap                    []string
}

// startVMD starts cfg's vmd as spec says, warm unless cfg says cold.
// Nothing of the runner's environment leaks in but PATH. The harness kills
// vmd when t ends, if it still runs.
func startVMD(t testing.TB, cfg Config, spec vmdSpec) *server {
	t.Helper()
	for _, d := range []string{spec.images, spec.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Not in spec.tmp, which may be the faults' 64 KiB disk.
	prompts := filepath.Join(t.TempDir(), "prompts.log")
	argv := append(append([]string(nil), spec.wrap...), cfg.VMD)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + spec.tmp, "TMPDIR=" + spec.tmp,
		"ANTHROPIC_API_KEY=test", "CLAUDE_BIN=" + spec.fake, "HOST=127.0.0.1", "PORT=0",
		"IMAGES_DIR=" + spec.images, "LOG_FORMAT=json", "LOG_LEVEL=debug",
		"STATE_DIR=" + filepath.Join(spec.tmp, "state"),
		"COMMAND_TIMEOUT_MS=" + strconv.FormatInt(spec.timeout.Milliseconds(), 10),
		"WARM=" + strconv.FormatBool(!cfg.Cold),
		// Warm, a conversation's agent is closed half a second after its
		// turn: the load's conversations are one command each, so that
		// exercises closing under load, and an idle vmd holds only its
		// spare, whose descriptors and goroutines the readings compare.
		"WARM_IDLE_MS=500",
		"FAKECLAUDE_PROMPT_LOG=" + prompts,
	}, spec.env...)
	dieWithRunner(cmd)
	p := vmdtest.StartProcess(t, cmd)
	return &server{Process: p, name: spec.name, images: spec.images, tmp: spec.tmp, prompts: prompts, env: cmd.Env,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}}
}

// answer is vmd's reply to POST /command, every field of the contract.
type answer struct {
	status  int
	header  http.Header
	latency time.Duration
	raw     []byte

	Text       string   `json:"text"`
	Images     []string `json:"images"`
	ExitCode   *int     `json:"exitCode"`
	DurationMs *int64   `json:"durationMs"`
	SessionID  *string  `json:"sessionId"`
	Truncated  bool     `json:"truncated"`
	Error      string   `json:"error"`
	Message    string   `json:"message"`
	Signal     string   `json:"signal"`
}

func (a *answer) String() string {
	return fmt.Sprintf("%d %s", a.status, clip(strings.TrimSpace(string(a.raw)), 300))
}

// decode reads an answer from a status and body.
func decode(status int, raw []byte) (*answer, error) {
	a := &answer{status: status, raw: raw}
	if err := json.Unmarshal(raw, a); err != nil {
		return a, fmt.Errorf("answer is not JSON: %w: %s", err, a)
	}
	return a, nil
}

// post sends one command with these headers and reads the whole answer.
// An error means no HTTP answer at all.
func (s *server) post(script string, header ...string) (*answer, error) {
	body, _ := json.Marshal(map[string]string{"text": script})
	return s.postBody(body, header...)
}

// postBody is post with the body as is.
func (s *server) postBody(body []byte, header ...string) (*answer, error) {
	req, err := http.NewRequest(http.MethodPost, s.URL+"/command", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	a, err := decode(resp.StatusCode, raw)
	a.header, a.latency = resp.Header, time.Since(start)
	return a, err
}

// mustPost is post for a case: no answer, or one with another status,
// fails t.
func (s *server) mustPost(t testing.TB, script string, status int, header ...string) *answer {
	t.Helper()
	a, err := s.post(script, header...)
	if err != nil {
		t.Fatalf("POST %q: %v", script, err)
	}
	if a.status != status {
		t.Fatalf("POST %q = %s; want %d", script, a, status)
	}
	return a
}

// get fetches a path: status, headers and body.
func (s *server) get(path string) (int, http.Header, []byte, error) {
	return s.do(http.MethodGet, path)
}

func (s *server) do(method, path string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// cancel sends DELETE /command: the runner's way to end a command that
// waits for ever ("sleep 1h"), so that no case depends on how long
// anything takes.
func (s *server) cancel(t testing.TB) {
	t.Helper()
	if status, _, body, err := s.do(http.MethodDelete, "/command"); err != nil || status != 200 {
		t.Errorf("DELETE /command = %d %s, %v; want 200", status, body, err)
	}
}

// said waits until the running command's event stream has a message
// holding text: vmd has read that much of what the CLI wrote, and the
// command's answer carries it however the command ends. Unlike the CLI
// having written it, or a file the CLI made after it, this is what vmd
// holds now.
func (s *server) said(t testing.TB, text string) {
	t.Helper()
	status, _, body, err := s.get("/commands?limit=1")
	var list struct {
		Commands []struct{ ID, State string } `json:"commands"`
	}
	if err == nil {
		err = json.Unmarshal(body, &list)
	}
	if err != nil || status != 200 || len(list.Commands) != 1 || list.Commands[0].State != "running" {
		t.Fatalf("GET /commands?limit=1 = %d %s, %v; want the running command", status, clip(string(body), 300), err)
	}
	id := list.Commands[0].ID
	ctx, cancel := context.WithTimeout(t.Context(), poll.Patience)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/commands/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /commands/%s/events = %v, %v; want 200", id, resp, err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	event := ""
	for lines.Scan() {
		line := lines.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		switch {
		case !ok:
		case event == "result":
			t.Fatalf("command %s ended without a message holding %q: %s", id, text, clip(data, 300))
		case event == "message":
			var m struct{ Text string }
			if json.Unmarshal([]byte(data), &m) == nil && strings.Contains(m.Text, text) {
				return
			}
		}
	}
	t.Fatalf("events of command %s: no message holding %q (%v)", id, text, lines.Err())
}

// running reports the pid of the command /status says is running (0 until
// its CLI has said it started), -1 when vmd is idle: unlike a log line,
// which may reach the runner after the answer it precedes, /status is what
// vmd is doing now.
func (s *server) running(t testing.TB) int {
	t.Helper()
	status, _, body, err := s.get("/status")
	if err != nil || status != 200 {
		t.Fatalf("GET /status = %d %s, %v; want 200", status, body, err)
	}
	var st struct {
		Command *struct {
			Pid int `json:"pid"`
		} `json:"command"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("GET /status: %v in %s", err, body)
	}
	if st.Command == nil {
		return -1
	}
	return st.Command.Pid
}

// agentState is an agent as /status shows it.
type agentState struct {
	Pid   int    `json:"pid"`
	State string `json:"state"`
}

// agents reads the agents /status shows: warm CLIs held, the spare, and
// those closing.
func (s *server) agents() []agentState {
	status, _, body, err := s.get("/status")
	if err != nil || status != 200 {
		return nil
	}
	var st struct {
		Agents []agentState `json:"agents"`
	}
	_ = json.Unmarshal(body, &st)
	return st.Agents
}

// agentPids lists the pids of the agents /status shows, and whether one of
// them is closing.
func (s *server) agentPids() (pids []int, closing bool) {
	for _, a := range s.agents() {
		pids = append(pids, a.Pid)
		closing = closing || a.State == "closing"
	}
	return pids, closing
}

// owned reports whether pid belongs to an agent vmd lists: it carries the
// marker of an agent's tree, or of this vmd's while an agent is closing
// (one that exited, its environment gone, may not be done sweeping). A
// process a command started may live as long as its agent (warm), never
// past it.
func (s *server) owned(pid int) bool {
	m := vmdtest.Marker(pid)
	if m == "" {
		return false
	}
	agents, closing := s.agentPids()
	if closing && strings.HasPrefix(m, strconv.Itoa(s.Pid)+".") {
		return true
	}
	return slices.ContainsFunc(agents, func(a int) bool { return vmdtest.Marker(a) == m })
}

// stray reports whether pid, a process of the fake CLI's, runs owned by no
// agent, and goes on so: a process vmd is killing (its agent ended after
// the answer, or a cold process exits after its result line) loses its
// environment, and its marker, before its life. A process left behind for
// good stays a stray for the harness's whole patience.
func (s *server) stray(pid int, fake string) bool {
	return !poll.Until(func() bool { return !alive(pid, fake) || s.owned(pid) })
}

// leftover counts what is below vmd that no agent it lists owns, once
// that has stopped changing: what commands left behind, which must be
// nothing once one has its answer. A process vmd is still sweeping (see
// stray) is gone, or owned, soon after.
func (s *server) leftover() (live, zombies int, list string) {
	var left []vmdtest.Stat
	poll.Until(func() bool {
		agents, closing := s.agentPids()
		left = leftovers(s.Pid, agents, closing)
		return len(left) == 0
	})
	for _, st := range left {
		if st.State == 'Z' {
			zombies++
		} else {
			live++
		}
	}
	return live, zombies, describe(left)
}

// runs counts the turns the CLI was given prompt in: the fake CLI logs
// each prompt it is asked to act out (FAKECLAUDE_PROMPT_LOG), cold or warm.
func (s *server) runs(prompt string) int {
	b, _ := os.ReadFile(s.prompts)
	return bytes.Count(b, []byte(strconv.Quote(prompt)+"\n"))
}

// asked waits until the CLI has been given prompt n times.
func (s *server) asked(t testing.TB, prompt string, n int) {
	t.Helper()
	vmdtest.Eventually(t, "the CLI to be given "+strconv.Quote(prompt), func() bool { return s.runs(prompt) >= n })
}

// logged waits for a line with this message logged after mark (a count of
// lines) holding every one of subs, and returns it.
func (s *server) logged(t testing.TB, mark int, message string, subs ...string) string {
	t.Helper()
	var found string
	vmdtest.Eventually(t, fmt.Sprintf("a log line %q holding %q", message, subs), func() bool {
		found = s.findLog(mark, message, subs...)
		return found != ""
	})
	return found
}

func (s *server) findLog(mark int, message string, subs ...string) string {
	lines := strings.Split(s.Log.String(), "\n")
	for _, l := range lines[min(mark, len(lines)):] {
		if !strings.Contains(l, `"@message":"`+message+`"`) {
			continue
		}
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(l, sub)
		}
		if ok {
			return l
		}
	}
	return ""
}

// mark is a position in vmd's log.
func (s *server) mark() int { return strings.Count(s.Log.String(), "\n") }

// goroutines reads go_goroutines from /metrics, -1 if it is not served.
func (s *server) goroutines() int { return int(s.metric("go_goroutines")) }

// metric reads a series without labels from /metrics, -1 if it is not
// served.
func (s *server) metric(name string) float64 {
	status, _, body, err := s.get("/metrics")
	if err != nil || status != 200 {
		return -1
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// stop sends SIGTERM, as docker stop does: vmd must exit 0 within Docker's
// 10 s and leave no fake CLI running anywhere.
func (s *server) stop(t testing.TB, fake string) StopResult {
	s.client.CloseIdleConnections()
	start := time.Now()
	res := StopResult{VMD: s.name, ExitCode: -1}
	if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("%s vmd: SIGTERM: %v", s.name, err)
		return res
	}
	select {
	case <-s.Exited():
		res.ExitCode = s.Cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Errorf("%s vmd: still running 10s after SIGTERM", s.name)
	}
	res.Took = Duration(time.Since(start))
	if res.ExitCode != 0 {
		t.Errorf("%s vmd: exit status %d after SIGTERM; want 0", s.name, res.ExitCode)
	}
	// Another vmd of the run's may still run, with agents of its own: a
	// process is this one's if it carries its marker, or no marker at all.
	mine := func(pid int) bool {
		m := vmdtest.Marker(pid)
		return m == "" || strings.HasPrefix(m, strconv.Itoa(s.Pid)+".")
	}
	if left := slices.DeleteFunc(running(fake), func(pid int) bool { return !mine(pid) }); len(left) > 0 {
		t.Errorf("%s vmd: fake CLI processes %v still running after vmd exited", s.name, left)
	}
	return res
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n/2] + "..." + s[len(s)-n/4:]
	}
	return s
}
