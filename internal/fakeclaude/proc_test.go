package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// asCLI in the environment makes the test binary the fake itself, so that
// the tests run it as a real process built as they are (-race included).
const asCLI = "FAKECLAUDE_TEST_AS_CLI"

// TestMain runs the tests, or, with asCLI set, the fake.
func TestMain(m *testing.M) {
	if os.Getenv(asCLI) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// streaming are the arguments of streaming-input mode.
var streaming = []string{"-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"}

// patience bounds each wait for the fake: far more than any step takes.
const patience = 10 * time.Second

// proc is the fake running as a process, its stdout read as events.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan map[string]any // closed at stdout's end
	exited chan struct{}
	stderr syncBuffer
}

// syncBuffer is a bytes.Buffer safe to read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the fake in dir (also its HOME) with args.
func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: exec.Command(self, args...), events: make(chan map[string]any, 100), exited: make(chan struct{})}
	p.cmd.Dir = dir
	// Built with -race, the fake would wait a second at each exit 0 for
	// the race detector's sake: atexit_sleep_ms.
	p.cmd.Env = append(os.Environ(), asCLI+"=1", "HOME="+dir, "IMAGES_DIR="+dir, "GORACE=atexit_sleep_ms=0")
	p.cmd.Stderr = &p.stderr
	p.stdin, _ = p.cmd.StdinPipe()
	stdout, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = map[string]any{"type": "not-json", "line": sc.Text()}
			}
			p.events <- ev
		}
		close(p.events)
		// Only now: Wait closes stdout.
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		for range p.events {
		}
		<-p.exited
	})
	return p
}

// send writes a line to stdin.
func (p *proc) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("writing %q: %v", line, err)
	}
}

// user writes a user line whose content is text.
func (p *proc) user(text string) {
	p.t.Helper()
	b, _ := json.Marshal(map[string]any{"type": "user", "message": map[string]any{"role": "user", "content": text}})
	p.send(string(b))
}

// interrupt writes an interrupt request.
func (p *proc) interrupt(id string) {
	p.send(`{"type":"control_request","request_id":"` + id + `","request":{"subtype":"interrupt"}}`)
}

// next returns the next event.
func (p *proc) next() map[string]any {
	p.t.Helper()
	select {
	case ev, ok := <-p.events:
		if !ok {
			p.t.Fatalf("stdout ended; stderr: %s", p.stderr.String())
		}
		return ev
	case <-time.After(patience):
		p.t.Fatal("no event in time")
	}
	return nil
}

// until returns the events up to and including the first of type typ.
func (p *proc) until(typ string) []map[string]any {
	p.t.Helper()
	var evs []map[string]any
	for {
		ev := p.next()
		evs = append(evs, ev)
		if ev["type"] == typ {
			return evs
		}
	}
}

// result returns the next result event.
func (p *proc) result() map[string]any {
	p.t.Helper()
	evs := p.until("result")
	return evs[len(evs)-1]
}

// wait waits for the process to exit, and checks that it wrote no more
// events; it returns the exit status.
func (p *proc) wait() int {
	p.t.Helper()
	for ev := range p.events {
		p.t.Errorf("unexpected event before the exit: %v", ev)
	}
	select {
	case <-p.exited:
	case <-time.After(patience):
		p.t.Fatal("still running")
	}
	return p.cmd.ProcessState.ExitCode()
}

// types returns the events' types, with subtypes: "system/init".
func types(evs []map[string]any) string {
	var ts []string
	for _, ev := range evs {
		t, _ := ev["type"].(string)
		if st, ok := ev["subtype"].(string); ok && t == "system" {
			t += "/" + st
		}
		ts = append(ts, t)
	}
	return strings.Join(ts, " ")
}

// eq fails the test unless got is want, named what.
func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v; want %v", what, got, want)
	}
}

// blocks returns the content blocks of an assistant or user event.
func blocks(ev map[string]any) []map[string]any {
	msg, _ := ev["message"].(map[string]any)
	content, _ := msg["content"].([]any)
	var bs []map[string]any
	for _, c := range content {
		if b, ok := c.(map[string]any); ok {
			bs = append(bs, b)
		}
	}
	return bs
}
