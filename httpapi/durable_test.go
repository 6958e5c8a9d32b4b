package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// Durable commands (issue 10), through the whole stack over a real SQLite
// file: idempotent submits, records that outlive their request, resumable
// event streams.

// durable is the stack with its store in a file of the test's.
func durable(t *testing.T) *server {
	t.Helper()
	return &server{vmdtest.Start(t, vmdtest.Options{Bin: fake, StateDir: t.TempDir(), Loopback: true})}
}

// runs counts the CLI runs of commands (the version probe is not one).
func (s *server) runs() int {
	n := 0
	for _, m := range s.Log.Lines() {
		if m["@message"] == "spawn" && m["command_id"] != nil {
			n++
		}
	}
	return n
}

// record is GET /commands/{id}, decoded.
type record struct {
	ID             string          `json:"id"`
	State          string          `json:"state"`
	Status         *int            `json:"status"`
	Response       json.RawMessage `json:"response"`
	IdempotencyKey *string         `json:"idempotencyKey"`
	Machine        string          `json:"machine"`
	PromptLength   int             `json:"promptLength"`
	EndedAt        *time.Time      `json:"endedAt"`
}

func (s *server) record(t *testing.T, id string) (int, record) {
	t.Helper()
	got := s.do(t, "GET", "/commands/"+id, "")
	var r record
	if got.status == 200 {
		if err := json.Unmarshal([]byte(got.body), &r); err != nil {
			t.Fatalf("GET /commands/%s = %s: %v", id, got.body, err)
		}
	}
	return got.status, r
}

// Two submits with one key at once: one CLI run, the same answer twice;
// then the stored answer again, marked replayed; the key with another body
// is refused, and another command while one runs is busy.
func TestIdempotentSubmits(t *testing.T) {
	t.Parallel()
	s := durable(t)
	body := `{"text":"say started\nsleep 2s\nsay done"}`
	var wg sync.WaitGroup
	answers := make([]response, 2)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.fetch("POST", "/command", body, "Idempotency-Key", "wamid.1")
			if err != nil {
				r.body = err.Error()
			}
			answers[i] = r
		}()
	}
	s.waitRunning(t)
	if got := s.doWith(t, "POST", "/command", `{"text":"say other"}`, "Idempotency-Key", "wamid.2"); got.status != 409 {
		t.Errorf("another key while one runs = %d %s; want 409 busy", got.status, got.body)
	}
	if got := s.doWith(t, "POST", "/command", `{"text":"say other"}`, "Idempotency-Key", "wamid.1"); got.status != 422 ||
		!strings.Contains(got.body, `"error":"idempotency_key_reused"`) {
		t.Errorf("same key, another body = %d %s; want 422 idempotency_key_reused", got.status, got.body)
	}
	wg.Wait()
	if answers[0].status != 200 || answers[0].body != answers[1].body || !strings.Contains(answers[0].body, "done") {
		t.Errorf("answers = %d %s / %d %s; want the same 200 answer twice", answers[0].status, answers[0].body,
			answers[1].status, answers[1].body)
	}
	if n := answers[0].header["Idempotent-Replayed"] + answers[1].header["Idempotent-Replayed"]; n != "true" {
		t.Errorf("Idempotent-Replayed = %q; want it on the second submit only", n)
	}
	again := s.doWith(t, "POST", "/command", body, "Idempotency-Key", "wamid.1")
	if again.status != 200 || again.body != answers[0].body || again.header["Idempotent-Replayed"] != "true" {
		t.Errorf("retry after the end = %d %v %s; want the stored answer, replayed", again.status, again.header, again.body)
	}
	if got := s.runs(); got != 1 {
		t.Errorf("CLI runs = %d; want 1", got)
	}
	for _, key := range []string{"", strings.Repeat("k", 256), "caf\u00e9", "tab\there"} {
		if got := s.doWith(t, "POST", "/command", `{"text":"say x"}`, "Idempotency-Key", key); key != "" && got.status != 400 {
			t.Errorf("Idempotency-Key %q = %d %s; want 400", key, got.status, got.body)
		}
	}
}

// A synchronous client that hangs up: the command runs to its end, and its
// record holds the whole answer.
func TestHangUpKeepsTheAnswer(t *testing.T) {
	t.Parallel()
	s := durable(t)
	c, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	body := `{"text":"say first\nsleep 2s\nsay second"}`
	fmt.Fprintf(c, "POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	rec := s.running(t, "first")
	c.Close()
	vmdtest.Eventually(t, "the record to end", func() bool {
		_, r := s.record(t, rec.ID)
		return r.State != "running" && r.State != ""
	})
	status, r := s.record(t, rec.ID)
	if status != 200 || r.State != "succeeded" || r.Status == nil || *r.Status != 200 ||
		!strings.Contains(string(r.Response), `first\nsecond`) || r.Machine == "" || r.PromptLength != len("say first\nsleep 2s\nsay second") {
		t.Errorf("record = %d %+v %s; want succeeded with the whole answer", status, r, r.Response)
	}
}

// POST /commands answers at once; the record, the list, DELETE.
func TestAsyncSubmit(t *testing.T) {
	t.Parallel()
	s := durable(t)
	got := s.doWith(t, "POST", "/commands", `{"text":"say hi\nsleep 1h"}`, "Idempotency-Key", "k1")
	var r record
	json.Unmarshal([]byte(got.body), &r)
	if got.status != 202 || got.header["Location"] != "/commands/"+r.ID || r.State != "running" || *r.IdempotencyKey != "k1" {
		t.Fatalf("POST /commands = %d %v %s; want 202 running with its Location", got.status, got.header, got.body)
	}
	if again := s.doWith(t, "POST", "/commands", `{"text":"say hi\nsleep 1h"}`, "Idempotency-Key", "k1"); again.status != 202 ||
		again.header["Idempotent-Replayed"] != "true" || !strings.Contains(again.body, r.ID) {
		t.Errorf("POST /commands again = %d %v %s; want the same command", again.status, again.header, again.body)
	}
	if busy := s.do(t, "POST", "/commands", `{"text":"say other"}`); busy.status != 409 {
		t.Errorf("POST /commands while busy = %d; want 409", busy.status)
	}
	s.running(t, "hi")
	if del := s.do(t, "DELETE", "/commands/"+r.ID, ""); del.status != 200 || !strings.Contains(del.body, `"state":"cancelled"`) ||
		!strings.Contains(del.body, `"status":499`) {
		t.Errorf("DELETE /commands/{id} = %d %s; want the cancelled record", del.status, del.body)
	}
	second := s.do(t, "POST", "/commands", `{"text":"say two"}`)
	var r2 record
	json.Unmarshal([]byte(second.body), &r2)
	vmdtest.Eventually(t, "the second to end", func() bool { _, r := s.record(t, r2.ID); return r.State == "succeeded" })
	list := s.do(t, "GET", "/commands?limit=1", "")
	var page struct {
		Commands []record `json:"commands"`
		Next     *string  `json:"next"`
	}
	json.Unmarshal([]byte(list.body), &page)
	if list.status != 200 || len(page.Commands) != 1 || page.Commands[0].ID != r2.ID || page.Next == nil || *page.Next != r2.ID {
		t.Fatalf("GET /commands?limit=1 = %d %s; want the newest and a cursor", list.status, list.body)
	}
	older := s.do(t, "GET", "/commands?before="+*page.Next, "")
	json.Unmarshal([]byte(older.body), &page)
	if len(page.Commands) != 1 || page.Commands[0].ID != r.ID || page.Next != nil {
		t.Errorf("GET /commands?before = %s; want the first command and no cursor", older.body)
	}
	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/commands/01a22bb3-320f-7569-929b-3222d1142243", 404}, {"/commands/nope", 404},
		{"/commands?limit=0", 400}, {"/commands?limit=x", 400}, {"/commands?before=nope", 400},
	} {
		if got := s.do(t, "GET", tt.path, ""); got.status != tt.status {
			t.Errorf("GET %s = %d %s; want %d", tt.path, got.status, got.body, tt.status)
		}
	}
}

// stream is an event stream read with its ids.
type stream struct {
	c      net.Conn
	r      *bufio.Reader
	status int
}

type idEvent struct{ id, name, data string }

// openEvents sends a request for an event stream and reads its head.
func (s *server) openEvents(t *testing.T, method, path, body string, header ...string) *stream {
	t.Helper()
	c, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var h strings.Builder
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&h, "%s: %s\r\n", header[i], header[i+1])
	}
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n%sContent-Length: %d\r\n\r\n%s",
		method, path, h.String(), len(body), body)
	st := &stream{c: c, r: bufio.NewReader(c)}
	line, err := st.r.ReadString('\n')
	if err != nil {
		t.Fatalf("status line: %v", err)
	}
	st.status, _ = strconv.Atoi(strings.Fields(line)[1])
	for line != "\r\n" {
		if line, err = st.r.ReadString('\n'); err != nil {
			t.Fatalf("headers: %v", err)
		}
	}
	return st
}

// rest reads the stream to its end: the ids of its events, then its
// result event.
func (st *stream) rest(t *testing.T) (ids []string, result idEvent) {
	t.Helper()
	for {
		ev, err := st.next()
		if err == io.EOF {
			return ids, result
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.name == "result" {
			result = ev
			continue
		}
		ids = append(ids, ev.id)
	}
}

// next reads the next event, comments skipped; io.EOF at the end.
func (st *stream) next() (idEvent, error) {
	var ev idEvent
	_ = st.c.SetReadDeadline(time.Now().Add(20 * time.Second)) // against a hang only
	for {
		line, err := st.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
		switch k {
		case "":
			if ev.name != "" {
				return ev, nil
			}
		case "id":
			ev.id = v
		case "event":
			ev.name = v
		case "data":
			ev.data = v
		}
	}
}

// A stream dropped mid-run and resumed with Last-Event-ID: every event
// exactly once, then the result; and the same again once it has ended.
func TestStreamResumes(t *testing.T) {
	t.Parallel()
	s := durable(t)
	script := `say one\nsay two\nsleep 1s\nsay three\nsleep 100ms\nsay four\nsleep 100ms\nsay five`
	first := s.openEvents(t, "POST", "/command", `{"text":"`+script+`"}`, "Idempotency-Key", "resume")
	var ids []string
	for len(ids) < 2 {
		ev, err := first.next()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.id)
	}
	first.c.Close()
	rec := s.running(t, "one")
	resumed := s.openEvents(t, "GET", "/commands/"+rec.ID+"/events", "", "Last-Event-ID", ids[len(ids)-1])
	more, result := resumed.rest(t)
	ids = append(ids, more...)
	var all []string
	for i := range ids {
		all = append(all, strconv.Itoa(i+1))
	}
	if strings.Join(ids, ",") != strings.Join(all, ",") || len(ids) < 5 || !strings.Contains(result.data, "five") {
		t.Errorf("ids %v, result %q; want every event once (%v), then the result", ids, result.data, all)
	}
	// Ended: the stored events after the id, then the result; by the key too.
	replay := s.openEvents(t, "GET", "/commands/"+rec.ID+"/events", "", "Last-Event-ID", "1")
	var after []string
	for {
		ev, err := replay.next()
		if err != nil {
			break
		}
		after = append(after, ev.id+ev.name)
	}
	if len(after) != len(ids) || after[0] != "2message" || after[len(after)-1] != "result" {
		t.Errorf("stored events after 1 = %v; want 2..%d then the result", after, len(ids))
	}
	if again := s.openEvents(t, "POST", "/command", `{"text":"`+script+`"}`, "Idempotency-Key", "resume"); again.status != 200 {
		t.Errorf("stream retry with the key = %d; want 200", again.status)
	}
	if bad := s.openEvents(t, "GET", "/commands/"+rec.ID+"/events", "", "Last-Event-ID", "x"); bad.status != 400 {
		t.Errorf("Last-Event-ID x = %d; want 400", bad.status)
	}
	if s.runs() != 1 {
		t.Errorf("CLI runs = %d; want 1", s.runs())
	}
}

// A plain client that asked for "cancelOnDisconnect" and hangs up: its
// command is cancelled; one that stays gets its answer as usual.
func TestCancelOnDisconnect(t *testing.T) {
	t.Parallel()
	s := durable(t)
	c, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	body := `{"text":"say first\nsleep 1h","cancelOnDisconnect":true}`
	fmt.Fprintf(c, "POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	rec := s.running(t, "first")
	c.Close()
	vmdtest.Eventually(t, "the command to be cancelled", func() bool {
		_, r := s.record(t, rec.ID)
		return r.State == "cancelled" && !s.Commands.Busy()
	})
	got := s.do(t, "POST", "/command", `{"text":"say stays","cancelOnDisconnect":true}`)
	if got.status != 200 || !strings.Contains(got.body, "stays") || got.header["X-Request-Id"] == "" {
		t.Errorf("a client that stays = %d %v %s; want its 200 answer with its request id", got.status, got.header, got.body)
	}
	if got := s.do(t, "POST", "/command", `{"text":"say x","cancelOnDisconnect":1}`); got.status != 400 {
		t.Errorf("cancelOnDisconnect 1 = %d; want 400", got.status)
	}
}

// A stream retry while the command runs follows the same command's events
// from the first, then its result.
func TestStreamRetryFollows(t *testing.T) {
	t.Parallel()
	s := durable(t)
	body := `{"text":"say a\nsleep 1s\nsay b"}`
	first := s.openEvents(t, "POST", "/command", body, "Idempotency-Key", "follow")
	if _, err := first.next(); err != nil {
		t.Fatal(err)
	}
	retry := s.openEvents(t, "POST", "/command", body, "Idempotency-Key", "follow")
	var got []string
	for {
		ev, err := retry.next()
		if err != nil {
			break
		}
		got = append(got, ev.id+ev.name)
	}
	if len(got) < 3 || got[0] != "1start" || got[len(got)-1] != "result" || retry.status != 200 {
		t.Errorf("retry's events = %d %v; want the command's from the start, then its result", retry.status, got)
	}
	if s.runs() != 1 {
		t.Errorf("CLI runs = %d; want 1", s.runs())
	}
}
