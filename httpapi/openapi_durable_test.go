//go:build !fuzzing

package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/internal/stack"
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
	var rec struct{ ID string }
	// A command left running by a killed vmd, replayed by its key.
	c.check(t, s.must(t, "POST", "/command", interruptedBody, keyed("wamid.interrupted")...), 503)
	c.check(t, s.must(t, "POST", "/command", `{"text":"say other"}`, keyed("wamid.interrupted")...), 422)

	sub := s.must(t, "POST", "/commands", `{"text":"say hi"}`, keyed("wamid.1")...)
	c.check(t, sub, 202)
	json.Unmarshal(sub.body, &rec)
	vmdtest.Eventually(t, "the command to end", func() bool { return !s.Commands.Busy() })
	c.check(t, s.must(t, "POST", "/commands", `{"text":"say hi"}`, keyed("wamid.1")...), 202)
	c.check(t, s.must(t, "POST", "/commands", `{"text":"say else"}`, keyed("wamid.1")...), 422)
	c.check(t, s.must(t, "POST", "/commands", `{"text":""}`, posting...), 400)
	c.check(t, s.must(t, "POST", "/commands", `{"text":"x"}`, keyed(strings.Repeat("k", 256))...), 400)
	c.check(t, s.must(t, "POST", "/commands", `{"text":"`+strings.Repeat("x", 5000)+`"}`, posting...), 413)
	c.check(t, s.must(t, "GET", "/commands", "", auth...), 200)
	c.check(t, s.must(t, "GET", "/commands?limit=1&before="+rec.ID, "", auth...), 200)
	c.check(t, s.must(t, "GET", "/commands?limit=0", "", auth...), 400)
	c.check(t, s.must(t, "GET", "/commands/"+rec.ID, "", auth...), 200)
	c.check(t, s.must(t, "GET", "/commands/01a22bb3-320f-7569-929b-3222d1142243", "", auth...), 404)
	c.check(t, s.must(t, "DELETE", "/commands/"+rec.ID, "", auth...), 200)
	c.check(t, s.must(t, "DELETE", "/commands/nope", "", auth...), 404)
	c.checkStream(t, s.events(t, rec.ID, "1", auth...), "200")
	c.check(t, s.events(t, rec.ID, "x", auth...), 400)
	c.check(t, s.events(t, "01a22bb3-320f-7569-929b-3222d1142243", "", auth...), 404)
	for _, r := range []struct{ method, path string }{
		{"GET", "/commands"}, {"POST", "/commands"}, {"GET", "/commands/" + rec.ID},
		{"DELETE", "/commands/" + rec.ID}, {"GET", "/commands/" + rec.ID + "/events"},
	} {
		c.check(t, s.must(t, r.method, r.path, `{"text":"hi"}`), 401)
	}

	// Busy, a cancel by id, then the drain.
	running := s.must(t, "POST", "/commands", `{"text":"say started\nsleep 1h"}`, posting...)
	c.check(t, running, 202)
	json.Unmarshal(running.body, &rec)
	c.check(t, s.must(t, "POST", "/commands", `{"text":"say two"}`, posting...), 409)
	s.running(t, "started")
	c.check(t, s.must(t, "DELETE", "/commands/"+rec.ID, "", auth...), 200)
	vmdtest.Eventually(t, "the slot to be free", func() bool { return !s.Commands.Busy() })
	// A command in flight holds the drain open: an idle vmd stops at once.
	c.check(t, s.must(t, "POST", "/commands", `{"text":"say again\nsleep 1h"}`, posting...), 202)
	s.running(t, "again")
	s.Commands.Drain(time.Now().Add(time.Hour))
	c.check(t, s.must(t, "POST", "/commands", `{"text":"say late"}`, posting...), 503)
	s.Commands.Hurry()
	checkLive(t, c)
}

// checkLive validates the answers of warm agents, the queue, the spend
// limit and a store that takes no writes against the document.
func checkLive(t *testing.T, c *contract) {
	auth := []string{"Authorization", "Bearer " + token}
	posting := append([]string{"Content-Type", "application/json"}, auth...)
	dir := t.TempDir()
	s := &server{vmdtest.Start(t, vmdtest.Options{Bin: fake, StateDir: dir, Token: token, Loopback: true, Warm: true, Prewarm: true,
		Commands: func(o *commands.Options) { o.QueueMax, o.SpendLimitUSD = 1, 0.02 },
		Tweak:    func(o *stack.Options) { o.Store.BusyTimeout = 50 * time.Millisecond }})}
	vmdtest.Eventually(t, "the spare", func() bool { return len(s.Commands.Agents()) == 1 })
	c.check(t, s.must(t, "GET", "/status", "", auth...), 200) // the spare listed
	first := s.must(t, "POST", "/command", `{"text":"say one"}`, posting...)
	c.check(t, first, 200) // warm, served by the spare
	running := s.must(t, "POST", "/commands", `{"text":"say started\nsleep 1h"}`, posting...)
	c.check(t, running, 202)
	s.running(t, "started")
	c.check(t, s.must(t, "POST", "/commands", `{"text":"say queued","whenBusy":"queue"}`, posting...), 202) // queued
	c.check(t, s.must(t, "POST", "/command", `{"text":"say more","whenBusy":"queue"}`, posting...), 429)    // queue_full
	c.check(t, s.must(t, "GET", "/status", "", auth...), 200)                                               // a turn running, one queued, agents busy and idle
	c.check(t, s.must(t, "DELETE", "/command", "", auth...), 200)
	vmdtest.Eventually(t, "the queue to drain", func() bool { return !s.Commands.Busy() })
	// The spend limit: two commands cost $0.0246 (and the cancelled one's
	// less), past $0.02.
	c.check(t, s.must(t, "POST", "/commands", `{"text":"say hi"}`, posting...), 429)
	c.check(t, s.must(t, "GET", "/ready", "", auth...), 503) // spend failing
	c.check(t, s.must(t, "GET", "/status", "", auth...), 200)

	// A store that takes no writes: a keyed command is not run.
	s2 := &server{vmdtest.Start(t, vmdtest.Options{Bin: fake, StateDir: t.TempDir(), Token: token, Loopback: true,
		Tweak: func(o *stack.Options) { o.Store.BusyTimeout = 50 * time.Millisecond }})}
	lock := lockStore(t, s2.Store.Path())
	for _, path := range []string{"/command", "/commands"} {
		ex, err := s2.send("POST", path, `{"text":"say once"}`, append([]string{"Idempotency-Key", "wamid.locked"}, posting...)...)
		if err != nil {
			t.Fatal(err)
		}
		c.check(t, ex, 503)
	}
	lock()
}

// lockStore holds the write lock of the store at path from a connection
// of the test's own until the returned func is called.
func lockStore(t *testing.T, path string) func() {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err == nil {
		_, err = conn.ExecContext(context.Background(), "BEGIN IMMEDIATE")
	}
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
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
