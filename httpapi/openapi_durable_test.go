package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/store"
)

// checkDurable validates real answers of the durable command routes
// (issue 10) against the document: every status they document.
func checkDurable(t *testing.T, c *contract) {
	auth := []string{"Authorization", "Bearer " + token}
	posting := append([]string{"Content-Type", "application/json"}, auth...)
	keyed := func(key string) []string { return append([]string{"Idempotency-Key", key}, posting...) }
	dir := t.TempDir()
	interruptedBody := `{"text":"say partial\nsleep 1h"}`
	leaveInterrupted(t, dir, "wamid.interrupted", interruptedBody)
	s := &server{vmdtest.Start(t, vmdtest.Options{Bin: fake, StateDir: dir, Token: token, MaxBody: 4096, Loopback: true})}
	do := func(method, path, body string, header ...string) *exchange {
		t.Helper()
		ex, err := s.send(method, path, body, header...)
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	var rec struct{ ID string }
	// A command left running by a killed vmd, replayed by its key.
	c.check(t, do("POST", "/command", interruptedBody, keyed("wamid.interrupted")...), 503)
	c.check(t, do("POST", "/command", `{"text":"say other"}`, keyed("wamid.interrupted")...), 422)

	sub := do("POST", "/commands", `{"text":"say hi"}`, keyed("wamid.1")...)
	c.check(t, sub, 202)
	json.Unmarshal(sub.body, &rec)
	vmdtest.Eventually(t, "the command to end", func() bool { return !s.Commands.Busy() })
	c.check(t, do("POST", "/commands", `{"text":"say hi"}`, keyed("wamid.1")...), 202)
	c.check(t, do("POST", "/commands", `{"text":"say else"}`, keyed("wamid.1")...), 422)
	c.check(t, do("POST", "/commands", `{"text":""}`, posting...), 400)
	c.check(t, do("POST", "/commands", `{"text":"x"}`, keyed(strings.Repeat("k", 256))...), 400)
	c.check(t, do("POST", "/commands", `{"text":"`+strings.Repeat("x", 5000)+`"}`, posting...), 413)
	c.check(t, do("GET", "/commands", "", auth...), 200)
	c.check(t, do("GET", "/commands?limit=1&before="+rec.ID, "", auth...), 200)
	c.check(t, do("GET", "/commands?limit=0", "", auth...), 400)
	c.check(t, do("GET", "/commands/"+rec.ID, "", auth...), 200)
	c.check(t, do("GET", "/commands/01a22bb3-320f-7569-929b-3222d1142243", "", auth...), 404)
	c.check(t, do("DELETE", "/commands/"+rec.ID, "", auth...), 200)
	c.check(t, do("DELETE", "/commands/nope", "", auth...), 404)
	c.checkStream(t, s.events(t, rec.ID, "1", auth...), "200")
	c.check(t, s.events(t, rec.ID, "x", auth...), 400)
	c.check(t, s.events(t, "01a22bb3-320f-7569-929b-3222d1142243", "", auth...), 404)
	for _, r := range []struct{ method, path string }{
		{"GET", "/commands"}, {"POST", "/commands"}, {"GET", "/commands/" + rec.ID},
		{"DELETE", "/commands/" + rec.ID}, {"GET", "/commands/" + rec.ID + "/events"},
	} {
		c.check(t, do(r.method, r.path, `{"text":"hi"}`), 401)
	}

	// Busy, a cancel by id, then the drain.
	running := do("POST", "/commands", `{"text":"say started\nsleep 1h"}`, posting...)
	c.check(t, running, 202)
	json.Unmarshal(running.body, &rec)
	c.check(t, do("POST", "/commands", `{"text":"say two"}`, posting...), 409)
	s.running(t, "started")
	c.check(t, do("DELETE", "/commands/"+rec.ID, "", auth...), 200)
	vmdtest.Eventually(t, "the slot to be free", func() bool { return !s.Commands.Busy() })
	s.API.Drain(time.Now().Add(time.Hour))
	c.check(t, do("POST", "/commands", `{"text":"say late"}`, posting...), 503)
}

// leaveInterrupted leaves in dir's store what a killed vmd leaves: a
// running record with its key and an event.
func leaveInterrupted(t *testing.T, dir, key, body string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sum := sha256.Sum256([]byte(body))
	rec, _, err := st.Create(ctx, store.NewRecord{IdempotencyKey: key, BodyHash: sum[:], PromptLen: len(body)})
	if err == nil {
		_, err = st.AppendEvent(ctx, rec.ID, store.Event{Seq: 1, Type: "message", Data: []byte(`{"text":"partial"}`)})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// events asks for a command's event stream, after lastID when not empty.
func (s *server) events(t *testing.T, id, lastID string, header ...string) *exchange {
	t.Helper()
	hreq, _ := http.NewRequest("GET", "http://localhost:3001/commands/"+id+"/events", nil)
	hreq.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		hreq.Header.Set("Last-Event-ID", lastID)
	}
	for i := 0; i+1 < len(header); i += 2 {
		hreq.Header.Set(header[i], header[i+1])
	}
	var raw bytes.Buffer
	if err := hreq.Write(&raw); err != nil {
		t.Fatal(err)
	}
	return s.rawExchange(t, hreq, raw.Bytes())
}
