package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// background posts a command from another goroutine and returns once the
// supervisor has it; the answer arrives on the channel.
func (s *server) background(t *testing.T, body string) <-chan response {
	t.Helper()
	got := make(chan response, 1)
	go func() {
		r, err := s.fetch("POST", "/command", body)
		if err != nil {
			r.body = err.Error()
		}
		got <- r
	}()
	s.waitRunning(t)
	return got
}

// waitRunning waits until the command's CLI has started and named its
// session.
func (s *server) waitRunning(t *testing.T) {
	t.Helper()
	vmdtest.Eventually(t, "the command to start its session", func() bool {
		rec, ok := s.Commands.Current()
		return ok && rec.Pid != 0 && rec.SessionID != ""
	})
}

func command(t *testing.T, fields map[string]any) string {
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A conversation: the answer names the session, the next message resumes
// it, and the CLI sees the earlier prompt.
func TestSessionResume(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	first := s.do(t, "POST", "/command", command(t, map[string]any{"text": "say noted"}))
	var a struct {
		SessionID string `json:"sessionId"`
	}
	json.Unmarshal([]byte(first.body), &a)
	if first.status != 200 || !httpapi.SessionIDPattern.MatchString(a.SessionID) {
		t.Fatalf("first message = %d %s; want 200 with a session id", first.status, first.body)
	}
	next := s.do(t, "POST", "/command", command(t, map[string]any{"text": "recall", "sessionId": a.SessionID}))
	fields := fieldsOf(t, next.body)
	if next.status != 200 || fields["text"] != "earlier: say noted\n" {
		t.Errorf("resumed message = %d %v; want 200 with the earlier prompt recalled", next.status, fields)
	}
	var b struct {
		SessionID string `json:"sessionId"`
	}
	json.Unmarshal([]byte(next.body), &b)
	if b.SessionID != a.SessionID {
		t.Errorf("resumed session id = %q; want %q", b.SessionID, a.SessionID)
	}
	// A resumed run that succeeds is an answer, whatever its stderr says.
	noisy := s.do(t, "POST", "/command", command(t, map[string]any{"text": "err No conversation found in cache, rebuilding\nsay two",
		"sessionId": a.SessionID}))
	if fields := fieldsOf(t, noisy.body); noisy.status != 200 || fields["text"] != "two\n" {
		t.Errorf("resumed run with noise on stderr = %d %v; want 200 with its answer", noisy.status, fields)
	}
	// A new conversation does not see the old one.
	fresh := s.do(t, "POST", "/command", command(t, map[string]any{"text": "recall\nsay alone"}))
	if fields := fieldsOf(t, fresh.body); fields["text"] != "alone\n" {
		t.Errorf("new conversation = %v; want nothing recalled", fields)
	}
}

func TestSessionErrors(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	unknown := "0b6a2f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"
	got := s.do(t, "POST", "/command", command(t, map[string]any{"text": "hi", "sessionId": unknown}))
	want := `{"error":"session_not_found","message":"No session ` + unknown +
		` here: start a new conversation by leaving sessionId out","sessionId":"` + unknown + `"}` + "\n"
	if got.status != 404 || got.body != want {
		t.Errorf("unknown session = %d %q; want 404 %q", got.status, got.body, want)
	}
	for _, id := range []any{"abc", "../../etc/passwd", "0b6a2f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5", "--help", 42, true,
		map[string]any{}, "0b6a2f4e3c1d4e5f8a9b0c1d2e3f4a5b", " 0b6a2f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"} {
		got := s.do(t, "POST", "/command", command(t, map[string]any{"text": "hi", "sessionId": id}))
		if got.status != 400 || !strings.Contains(got.body, `"error":"bad_request"`) || !strings.Contains(got.body, "sessionId") {
			t.Errorf("sessionId %#v = %d %q; want 400 naming sessionId", id, got.status, got.body)
		}
	}
	// null is no session.
	if got := s.do(t, "POST", "/command", `{"text":"say hi","sessionId":null}`); got.status != 200 {
		t.Errorf("sessionId null = %d %q; want 200", got.status, got.body)
	}
	if got := s.do(t, "GET", "/status", ""); !strings.Contains(got.body, `"session_not_found":1`) {
		t.Errorf("status after an unknown session = %s; want it counted", got.body)
	}
}

func TestTimeoutPerRequest(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{timeout: 2 * time.Second})
	got := s.do(t, "POST", "/command", command(t, map[string]any{"text": "say partial\nsleep 1h", "timeoutMs": 300}))
	if fields := fieldsOf(t, got.body); got.status != 408 || fields["message"] != "Command timed out after 300ms" || fields["text"] != "partial\n" {
		t.Errorf("timeoutMs 300 = %d %v; want 408 after 300ms with the partial text", got.status, fields)
	}
	// Above the configured timeout it is capped, however large (past int64
	// too: issue 11 gap 9).
	for _, v := range []string{`3600000`, `99999999999999999999`, `99999999999999999999999`} {
		got = s.do(t, "POST", "/command", `{"text":"sleep 1h","timeoutMs":`+v+`}`)
		if fields := fieldsOf(t, got.body); got.status != 408 || fields["message"] != "Command timed out after 2000ms" {
			t.Errorf("timeoutMs %s = %d %v; want 408 after the 2000ms maximum", v, got.status, fields)
		}
	}
	for _, v := range []string{`0`, `-5`, `1.5`, `"300"`, `true`, `[]`, `1e3`, `-99999999999999999999`, `1e30`} {
		got := s.do(t, "POST", "/command", `{"text":"say hi","timeoutMs":`+v+`}`)
		want := `{"error":"bad_request","message":"'timeoutMs' must be a positive whole number of milliseconds"}` + "\n"
		if got.status != 400 || got.body != want {
			t.Errorf("timeoutMs %s = %d %q; want 400 %q", v, got.status, got.body, want)
		}
	}
}

// DELETE /command kills the command and everything it started, answers once
// the slot is free, and the command's own request answers 499 with what it
// had so far. The stream shows when the command has said something.
func TestCancel(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{loopback: true})
	st := s.openStream(t, `{"text":"say partial\nescape\nsleep 1h"}`)
	escaped := st.escaped(t)
	info, _ := s.Commands.Current()
	got := s.do(t, "DELETE", "/command", "")
	var c struct {
		Cancelled bool    `json:"cancelled"`
		Pid       int     `json:"pid"`
		SessionID string  `json:"sessionId"`
		ElapsedMs float64 `json:"elapsedMs"`
	}
	if err := json.Unmarshal([]byte(got.body), &c); err != nil || got.status != 200 || !c.Cancelled ||
		c.Pid != info.Pid || c.SessionID != info.SessionID {
		t.Errorf("DELETE /command = %d %s; want 200 cancelled, pid %d, session %s", got.status, got.body, info.Pid, info.SessionID)
	}
	// The slot is free the moment DELETE answers, and the escaped process
	// is gone.
	if s.Commands.Busy() {
		t.Error("still busy after DELETE answered")
	}
	for _, pid := range escaped {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("escaped process %d survives the cancel", pid)
		}
	}
	evs := st.all(t)
	last := evs[len(evs)-1]
	fields := fieldsOf(t, last.data)
	if last.status != "499" || fields["error"] != "cancelled" || fields["message"] != "The command was cancelled" ||
		!strings.HasPrefix(fmt.Sprint(fields["text"]), "partial\n") || fields["sessionId"] != uuid {
		t.Errorf("cancelled command's result = %s %v; want 499 cancelled with the partial text and the session", last.status, fields)
	}
	if got := s.do(t, "DELETE", "/command", ""); got.status != 404 || got.body != `{"error":"not_running","message":"No command is running"}`+"\n" {
		t.Errorf("second DELETE = %d %q; want 404 not_running", got.status, got.body)
	}
	// A plain request answers 499 the same way.
	running := s.background(t, `{"text":"sleep 1h"}`)
	s.do(t, "DELETE", "/command", "")
	if r := <-running; r.status != commands.StatusCancelled || !strings.Contains(r.body, `"error":"cancelled"`) {
		t.Errorf("cancelled plain request = %d %s; want 499 cancelled", r.status, r.body)
	}
	if got := s.do(t, "POST", "/command", `{"text":"say next"}`); got.status != 200 {
		t.Errorf("command after a cancel = %d %q; want 200", got.status, got.body)
	}
}

func pidsIn(text, role string) []int {
	var pids []int
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, "pid "+role+" "); ok {
			if pid, err := strconv.Atoi(rest); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func TestStatus(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	var st struct {
		State    string `json:"state"`
		Busy     bool   `json:"busy"`
		Draining bool   `json:"draining"`
		Command  *struct {
			Pid          int     `json:"pid"`
			StartedAt    string  `json:"startedAt"`
			ElapsedMs    float64 `json:"elapsedMs"`
			PromptLength int     `json:"promptLength"`
			SessionID    string  `json:"sessionId"`
		} `json:"command"`
		Version  string           `json:"version"`
		UptimeMs float64          `json:"uptimeMs"`
		Commands map[string]int64 `json:"commands"`
	}
	get := func() {
		t.Helper()
		got := s.do(t, "GET", "/status", "")
		st.Command = nil
		if err := json.Unmarshal([]byte(got.body), &st); err != nil || got.status != 200 {
			t.Fatalf("GET /status = %d %q", got.status, got.body)
		}
	}
	get()
	if st.State != "idle" || st.Busy || st.Draining || st.Command != nil || st.Version != "test" || st.Commands["ok"] != 0 {
		t.Errorf("idle status = %+v", st)
	}
	s.do(t, "POST", "/command", `{"text":"say one"}`)
	s.do(t, "POST", "/command", `{"text":"exit 2"}`)
	prompt := "say working\nsleep 1h"
	running := s.background(t, command(t, map[string]any{"text": prompt}))
	info, _ := s.Commands.Current()
	if got := s.do(t, "POST", "/command", `{"text":"say second"}`); got.status != 409 {
		t.Errorf("second command = %d; want 409", got.status)
	}
	get()
	if st.State != "busy" || !st.Busy || st.Command == nil || st.Command.Pid != info.Pid ||
		st.Command.PromptLength != len(prompt) || st.Command.SessionID != info.SessionID || st.Command.StartedAt == "" {
		t.Errorf("busy status = %+v %+v; want the running command (pid %d, %d bytes, session %s)", st, st.Command, info.Pid, len(prompt), info.SessionID)
	}
	s.do(t, "DELETE", "/command", "")
	<-running
	get()
	want := map[string]int64{"ok": 1, "error": 1, "busy": 1, "cancelled": 1, "agent_error": 0, "timeout": 0,
		"drained": 0, "stalled": 0, "start_failed": 0, "session_not_found": 0, "bad_request": 0, "shutting_down": 0,
		"insufficient_storage": 0, "internal_error": 0, "idempotency_key_reused": 0, "queue_full": 0, "store_unavailable": 0,
		"spend_limit_reached": 0}
	if fmt.Sprint(st.Commands) != fmt.Sprint(want) || st.State != "idle" {
		t.Errorf("counts = %v; want %v", st.Commands, want)
	}
}

// sse is an event stream read off a raw connection.
type sse struct {
	c      net.Conn
	r      *bufio.Reader
	status int
	header map[string]string
}

type event struct {
	name, status, data string
	comment            bool
}

// openStream posts a command asking for an event stream.
func (s *server) openStream(t *testing.T, body string) *sse {
	t.Helper()
	c, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /command HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	st := &sse{c: c, r: bufio.NewReader(c), header: map[string]string{}}
	line, err := st.r.ReadString('\n')
	if err != nil {
		t.Fatalf("status line: %v", err)
	}
	st.status, _ = strconv.Atoi(strings.Fields(line)[1])
	for {
		line, err := st.r.ReadString('\n')
		if err != nil {
			t.Fatalf("headers: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return st
		}
		k, v, _ := strings.Cut(line, ": ")
		st.header[k] = v
	}
}

// next reads one event or comment; io.EOF at the end of the stream.
func (st *sse) next() (event, error) {
	var ev event
	_ = st.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		line, err := st.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return ev, nil
		case strings.HasPrefix(line, ": "):
			return event{comment: true, data: line[2:]}, st.consumeBlank()
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "event":
			ev.name = v
		case "status":
			ev.status = v
		case "data":
			ev.data = v
		}
	}
}

// escaped reads events until a message names the processes the command
// started in sessions of their own, and returns their pids: the command
// is then running, and has said so.
func (st *sse) escaped(t *testing.T) []int {
	t.Helper()
	for {
		ev, err := st.next()
		if err != nil {
			t.Fatalf("no message naming an escaped process before the end: %v", err)
		}
		if ev.name == "message" {
			var m struct{ Text string }
			json.Unmarshal([]byte(ev.data), &m)
			if pids := pidsIn(m.Text, "escaped"); len(pids) > 0 {
				return pids
			}
		}
	}
}

// body reads a plain answer's body.
func (st *sse) body(t *testing.T) []byte {
	n, err := strconv.Atoi(st.header["Content-Length"])
	if err != nil {
		t.Fatalf("no Content-Length in %v", st.header)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(st.r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (st *sse) consumeBlank() error {
	_, err := st.r.ReadString('\n')
	return err
}

// all reads events to the end of the stream, leaving out comments.
func (st *sse) all(t *testing.T) []event {
	t.Helper()
	var evs []event
	for {
		ev, err := st.next()
		if err == io.EOF {
			return evs
		}
		if err != nil {
			t.Fatalf("reading events: %v (so far %v)", err, evs)
		}
		if !ev.comment {
			evs = append(evs, ev)
		}
	}
}

func TestStream(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{loopback: true})
	st := s.openStream(t, `{"text":"say looking\nscreenshot page.png\ntool mcp__playwright__browser_close\nsay done"}`)
	if st.status != 200 || st.header["Content-Type"] != "text/event-stream; charset=utf-8" || st.header["Cache-Control"] != "no-cache" {
		t.Fatalf("stream answer = %d %v; want 200 text/event-stream", st.status, st.header)
	}
	evs := st.all(t)
	var names []string
	for _, ev := range evs {
		names = append(names, ev.name)
	}
	want := s.wantOrder("start message message image message message result")
	if s.eventOrder(names) != want {
		t.Fatalf("events = %v; want %s", evs, want)
	}
	var start struct {
		Pid       int    `json:"pid"`
		SessionID string `json:"sessionId"`
	}
	json.Unmarshal([]byte(evs[0].data), &start)
	if start.Pid == 0 || !httpapi.SessionIDPattern.MatchString(start.SessionID) {
		t.Errorf("start = %s; want the pid and session id", evs[0].data)
	}
	// The order is checked above; here what each event says, the image's
	// apart from the messages'.
	var messages, images []string
	for _, ev := range evs[1 : len(evs)-1] {
		if ev.name == "image" {
			images = append(images, ev.data)
		} else {
			messages = append(messages, ev.data)
		}
	}
	wantMessages := []string{`{"text":"looking\n","tools":[]}`, `{"text":"","tools":["mcp__playwright__browser_take_screenshot"]}`,
		`{"text":"","tools":["mcp__playwright__browser_close"]}`, `{"text":"done\n","tools":[]}`}
	if got, want := fmt.Sprint(messages), fmt.Sprint(wantMessages); got != want {
		t.Errorf("messages = %s; want %s", got, want)
	}
	if got, want := fmt.Sprint(images), fmt.Sprint([]string{`{"name":"page.png","url":"/images/page.png"}`}); got != want {
		t.Errorf("images = %s; want %s", got, want)
	}
	// The result is the plain answer's body, with its status.
	last := evs[len(evs)-1]
	fields := fieldsOf(t, last.data)
	wantBody := with(agentFields, map[string]any{"text": "looking\ndone\n", "images": []any{"/images/page.png"},
		"exitCode": 0.0, "numTurns": 4.0})
	if last.status != "200" || fmt.Sprint(fields) != fmt.Sprint(wantBody) {
		t.Errorf("result = status %s %v; want 200 %v", last.status, fields, wantBody)
	}
	if !strings.Contains(last.data, `"sessionId":"`+start.SessionID+`"`) {
		t.Errorf("result %s; want the session id of the start event", last.data)
	}
}

// Failures end the stream with the plain answer's status and body.
func TestStreamResults(t *testing.T) {
	t.Parallel()
	// The timeout is the request's: a short one for all would time out
	// the others too on a loaded machine.
	s := serve(t, setup{loopback: true})
	for _, tt := range []struct {
		prompt, status, errorCode string
	}{
		{"agent-error API Error: 529 overloaded", "502", "agent_error"},
		{"say partial\nsleep 1h", "408", "timeout"},
		{"die KILL", "500", "execution_error"},
	} {
		body := map[string]any{"text": tt.prompt}
		if tt.status == "408" {
			body["timeoutMs"] = 300
		}
		evs := s.openStream(t, command(t, body)).all(t)
		last := evs[len(evs)-1]
		fields := fieldsOf(t, last.data)
		if last.name != "result" || last.status != tt.status || fields["error"] != tt.errorCode {
			t.Errorf("%q: last event = %s status %s %v; want result %s %s", tt.prompt, last.name, last.status, fields, tt.status, tt.errorCode)
		}
		if evs[0].name != "start" {
			t.Errorf("%q: first event = %s; want start", tt.prompt, evs[0].name)
		}
	}
}

// Before any event, refusals are plain JSON answers.
func TestStreamRefusals(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{loopback: true})
	st := s.openStream(t, `{"text":""}`)
	body := st.body(t)
	if st.status != 400 || st.header["Content-Type"] != "application/json" || !strings.Contains(string(body), "bad_request") {
		t.Errorf("bad stream request = %d %v %q; want 400 JSON", st.status, st.header, body)
	}
	running := s.background(t, `{"text":"sleep 1h"}`)
	st = s.openStream(t, `{"text":"say second"}`)
	body = st.body(t)
	if st.status != 409 || st.header["Content-Type"] != "application/json" ||
		string(body) != `{"error":"busy","message":"A command is already in progress"}`+"\n" ||
		st.header["Content-Length"] != strconv.Itoa(len(body)) {
		t.Errorf("busy stream request = %d %v %q; want 409 JSON", st.status, st.header, body)
	}
	s.do(t, "DELETE", "/command", "")
	<-running
	// Counted with the status written on the connection, not fasthttp's.
	mfs := s.scrape(t)
	if got := value(mfs, "vmd_http_requests_total", "handler", "command", "code", "409"); got != 1 {
		t.Errorf("stream refusals counted 409: %v; want 1", got)
	}
	if got := value(mfs, "vmd_http_requests_total", "handler", "command", "code", "400"); got != 1 {
		t.Errorf("bad stream requests counted 400: %v; want 1", got)
	}
}

// A stream tells no more text than the answer keeps.
func TestStreamBounded(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{loopback: true, maxOut: 100})
	evs := s.openStream(t, `{"text":"bytes 80\nsleep 1ms\nbytes 80\nsleep 1ms\nbytes 80"}`).all(t)
	told := 0
	for _, ev := range evs {
		if ev.name == "message" {
			var m struct{ Text string }
			json.Unmarshal([]byte(ev.data), &m)
			told += len(m.Text)
		}
	}
	if told > 100 {
		t.Errorf("the stream told %d bytes of text; max_output is 100", told)
	}
	if last := evs[len(evs)-1]; !strings.Contains(last.data, `"truncated":true`) {
		t.Errorf("result = %s; want it truncated", last.data)
	}
}

// An idle stream gets a comment line now and then, for proxies.
func TestStreamKeepAlive(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{loopback: true, keep: 50 * time.Millisecond})
	st := s.openStream(t, `{"text":"sleep 400ms\nsay done"}`)
	comments := 0
	for {
		ev, err := st.next()
		if err != nil {
			t.Fatalf("stream ended early: %v", err)
		}
		if ev.comment && ev.data == "keepalive" {
			comments++
		}
		if ev.name == "result" {
			break
		}
	}
	if comments < 2 {
		t.Errorf("%d keepalive comments in 400ms at 50ms; want several", comments)
	}
}

// A client that goes away cancels its command: the slot frees, nothing of
// the command survives.
func TestStreamClientGone(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{loopback: true})
	st := s.openStream(t, `{"text":"escape\nsay started\nsleep 1h","cancelOnDisconnect":true}`)
	escaped := st.escaped(t)
	st.c.Close()
	// The command ends, and is counted, once its client has gone.
	vmdtest.Eventually(t, "the command to end and be counted as cancelled", func() bool {
		got := s.do(t, "GET", "/status", "")
		return strings.Contains(got.body, `"cancelled":1`) && strings.Contains(got.body, `"state":"idle"`)
	})
	for _, pid := range escaped {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("escaped process %d survives its client going away", pid)
		}
	}
	if got := s.do(t, "GET", "/status", ""); !strings.Contains(got.body, `"cancelled":1`) {
		t.Errorf("status = %s; want one cancelled command", got.body)
	}
	if got := s.do(t, "POST", "/command", `{"text":"say next"}`); got.status != 200 {
		t.Errorf("next command = %d; want 200", got.status)
	}
}
