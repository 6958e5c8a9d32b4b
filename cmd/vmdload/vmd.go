//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// vmdProc is a vmd the runner started: a real process on loopback, its
// JSON log captured line by line.
type vmdProc struct {
	name   string // "load" or "faults", for messages
	cmd    *exec.Cmd
	pid    int
	base   string // http://127.0.0.1:PORT
	client *http.Client

	mu    sync.Mutex
	lines []logLine
	exit  chan struct{} // closed once vmd has exited and its log is read
	err   error         // from Wait, once exit is closed
}

// logLine is one line of vmd's JSON log.
type logLine struct {
	raw     string
	level   string
	message string
}

// vmdEnv is the environment of a vmd under test: nothing inherited but
// PATH, so that no setting of the machine's leaks in.
func vmdEnv(claudeBin, imagesDir, tmpDir string, timeout time.Duration) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + tmpDir,
		"TMPDIR=" + tmpDir,
		"ANTHROPIC_API_KEY=test",
		"CLAUDE_BIN=" + claudeBin,
		"HOST=127.0.0.1",
		"PORT=0",
		"IMAGES_DIR=" + imagesDir,
		"LOG_FORMAT=json",
		"LOG_LEVEL=info",
		"COMMAND_TIMEOUT_MS=" + strconv.FormatInt(timeout.Milliseconds(), 10),
	}
}

// startVMD starts bin with env and waits for its startup line, which names
// the port. logTo, if not nil, gets a copy of every log line.
func startVMD(ctx context.Context, name, bin string, env []string, logTo io.Writer) (*vmdProc, error) {
	p := &vmdProc{name: name, exit: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = env
	// If the runner dies, vmd dies with it (and the CLI with vmd).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting vmd %s: %w", bin, err)
	}
	p.pid = p.cmd.Process.Pid
	port := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			l := parseLogLine(sc.Bytes())
			if logTo != nil {
				fmt.Fprintf(logTo, "%s %s\n", p.name, l.raw)
			}
			p.mu.Lock()
			p.lines = append(p.lines, l)
			p.mu.Unlock()
			if l.message == "startup" {
				var s struct{ Port int }
				if json.Unmarshal(sc.Bytes(), &s) == nil {
					select {
					case port <- s.Port:
					default:
					}
				}
			}
		}
		p.err = p.cmd.Wait()
		close(p.exit)
	}()
	select {
	case n := <-port:
		p.base = "http://127.0.0.1:" + strconv.Itoa(n)
	case <-p.exit:
		return nil, fmt.Errorf("vmd exited before its startup line (%v):\n%s", p.err, p.logText(0))
	case <-time.After(20 * time.Second):
		p.kill()
		return nil, fmt.Errorf("vmd logged no startup line in 20s:\n%s", p.logText(0))
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
	p.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
	return p, nil
}

func parseLogLine(b []byte) logLine {
	var l struct {
		Level   string `json:"@level"`
		Message string `json:"@message"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return logLine{raw: string(b), level: "unparsed"}
	}
	return logLine{raw: string(b), level: l.Level, message: l.Message}
}

// mark is a position in the log, to look for lines logged after it.
func (p *vmdProc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// since returns the lines logged from mark on.
func (p *vmdProc) since(mark int) []logLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]logLine(nil), p.lines[mark:]...)
}

func (p *vmdProc) logText(mark int) string {
	var b strings.Builder
	for _, l := range p.since(mark) {
		b.WriteString(l.raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// findLog returns the first line from mark on with this message whose text
// holds every one of subs; it waits up to within for it to be logged.
func (p *vmdProc) findLog(mark int, within time.Duration, message string, subs ...string) (string, bool) {
	deadline := time.Now().Add(within)
	for {
	lines:
		for _, l := range p.since(mark) {
			if l.message != message {
				continue
			}
			for _, s := range subs {
				if !strings.Contains(l.raw, s) {
					continue lines
				}
			}
			return l.raw, true
		}
		if time.Now().After(deadline) {
			return "", false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exited reports whether vmd has exited.
func (p *vmdProc) exited() bool {
	select {
	case <-p.exit:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to 10 s (Docker's window) for vmd to
// exit; it reports how vmd ended and how long that took.
func (p *vmdProc) stop() (code int, took time.Duration, err error) {
	p.client.CloseIdleConnections()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.exited() {
		return -1, 0, err
	}
	select {
	case <-p.exit:
	case <-time.After(10 * time.Second):
		p.kill()
		return -1, time.Since(start), errors.New("still running 10s after SIGTERM; killed")
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start), nil
}

// kill ends vmd at once; for cleanup after a failure.
func (p *vmdProc) kill() {
	if p.exited() {
		return
	}
	p.cmd.Process.Kill()
	select {
	case <-p.exit:
	case <-time.After(10 * time.Second):
	}
}

// answer is vmd's reply to POST /command, every field of the contract.
type answer struct {
	status  int
	latency time.Duration
	raw     []byte

	Text       string   `json:"text"`
	Images     []string `json:"images"`
	ExitCode   *int     `json:"exitCode"`
	DurationMs *int64   `json:"durationMs"`
	Truncated  bool     `json:"truncated"`
	Error      string   `json:"error"`
	Message    string   `json:"message"`
	Signal     string   `json:"signal"`
}

func (a *answer) String() string {
	raw := string(a.raw)
	if len(raw) > 300 {
		raw = raw[:300] + "..."
	}
	return fmt.Sprintf("%d %s", a.status, strings.TrimSpace(raw))
}

// post sends one command and reads the whole answer. An error means no
// HTTP answer at all: a refused or broken connection, or no answer within
// the client's deadline.
func (p *vmdProc) post(ctx context.Context, script string, deadline time.Duration) (*answer, error) {
	body, _ := json.Marshal(map[string]string{"text": script})
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/command", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := &answer{status: resp.StatusCode, latency: time.Since(start), raw: raw}
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(raw, a); err != nil {
		return a, fmt.Errorf("answer is not JSON: %w: %s", err, a)
	}
	return a, nil
}

// get fetches a path and returns its status and body.
func (p *vmdProc) get(ctx context.Context, path string) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// goroutines reads go_goroutines from vmd's /metrics. It returns -1 when
// vmd serves no /metrics (404) or the metric is not in it.
func (p *vmdProc) goroutines(ctx context.Context) (int, error) {
	status, _, body, err := p.get(ctx, "/metrics")
	if err != nil {
		return -1, err
	}
	if status == http.StatusNotFound {
		return -1, nil
	}
	if status != http.StatusOK {
		return -1, fmt.Errorf("GET /metrics: %d", status)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				return -1, fmt.Errorf("go_goroutines %q: %w", rest, err)
			}
			return int(f), nil
		}
	}
	return -1, nil
}

// usage reads what vmd holds now: memory, fds and threads from /proc,
// goroutines from /metrics if served. The runner's own idle connections are
// closed first, so that they are not counted as vmd's fds.
func (p *vmdProc) usage(ctx context.Context) (usage, error) {
	g, err := p.goroutines(ctx)
	if err != nil {
		return usage{}, err
	}
	p.client.CloseIdleConnections()
	u, err := readUsage(p.pid)
	u.Goroutines = g
	return u, err
}
