package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// The cases of hostile or unlucky clients: storms on the one slot,
// duplicate submits, clients that hang up, a stream nobody reads.

// faultStorm sends StormClients POSTs at once, each on a connection of its
// own dialled beforehand. Idle: exactly one gets the slot, every other a
// 409. Busy: a command started before holds the slot; every client gets a
// 409. The command holding the slot waits for ever and is ended by DELETE
// (499 with its partial text), so that no outcome depends on how fast the
// clients are: a second winner would leave a 409 missing, and fail the
// wait for it.
func faultStorm(t testing.TB, e *faultEnv, busy bool) {
	for round := range e.r.cfg.StormRounds {
		script := fmt.Sprintf("say storm-%d\nsleep 1h", round)
		holder := make(<-chan *answer)
		said := e.s.Log.Count("message")
		if busy {
			holder = e.during(t, script)
			vmdtest.Eventually(t, "the holder running", func() bool { return e.s.Log.Count("message") > said })
			script = "say intruder"
		}
		answers := storm(t, e.s, script, e.r.cfg.StormClients)
		refused := e.r.cfg.StormClients
		if !busy {
			refused--
			holder = answers
		}
		for i := range refused {
			a := vmdtest.Within(t, fmt.Sprintf("round %d: 409 number %d", round, i+1), answers)
			if a.status != http.StatusConflict || a.Error != "busy" || a.Message != "A command is already in progress" {
				t.Errorf("round %d: a client got %s; want 409 busy", round, a)
			}
		}
		// Its partial text is in before it is cancelled.
		vmdtest.Eventually(t, "the holder's text", func() bool { return e.s.Log.Count("message") > said })
		e.s.cancel(t)
		if a := vmdtest.Within(t, "the holder's answer", holder); a == nil || a.status != 499 || a.Text != fmt.Sprintf("storm-%d\n", round) {
			t.Errorf("round %d: the command holding the slot got %v; want 499 with its partial text", round, a)
		}
	}
}

// storm sends n requests at once; their answers come on the channel.
func storm(t testing.TB, s *server, script string, n int) <-chan *answer {
	addr := strings.TrimPrefix(s.URL, "http://")
	req := rawPost(addr, script, "Connection: close")
	answers := make(chan *answer, n)
	release := make(chan struct{})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		go func() {
			defer c.Close()
			<-release
			answers <- stormOnce(c, req)
		}()
	}
	close(release)
	return answers
}

// rawPost is a POST /command of script, as bytes for a connection the
// runner dials itself, with these extra header lines.
func rawPost(addr, script string, header ...string) string {
	body, _ := json.Marshal(map[string]string{"text": script})
	return fmt.Sprintf("POST /command HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s",
		addr, strings.Join(append(header, ""), "\r\n"), len(body), body)
}

// stormOnce sends one prepared request on c and reads the answer.
func stormOnce(c net.Conn, req string) *answer {
	if _, err := io.WriteString(c, req); err != nil {
		return &answer{status: -1, raw: []byte(err.Error())}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return &answer{status: -1, raw: []byte(err.Error())}
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a, _ := decode(resp.StatusCode, raw)
	return a
}

// needIdempotency probes once whether vmd knows Idempotency-Key: the same
// key sent twice must replay the first answer (Idempotent-Replayed: true).
// A vmd with durable records (GET /commands answers) must; one without is
// reported as such, and its cases are not run.
func needIdempotency(e *faultEnv) string {
	e.idemOnce.Do(func() {
		key := fmt.Sprintf("vmdload-probe-%d", time.Now().UnixNano())
		for range 2 {
			a, err := e.s.post("say probe", "Idempotency-Key", key)
			if err != nil {
				e.idemWhy = "probe: " + err.Error()
				return
			}
			if a.header.Get("Idempotent-Replayed") == "true" {
				return
			}
		}
		if status, _, _, err := e.s.get("/commands?limit=1"); err == nil && status == 200 {
			return // it has records: its cases run, and say what fails
		}
		e.idemWhy = "server has no idempotency (a repeated Idempotency-Key ran the command again; GET /commands is not served)"
	})
	return e.idemWhy
}

// faultDuplicates submits Duplicates commands twice at once with one key
// each: one CLI run a key, two identical answers, and a third submit
// after the end replays it (Idempotent-Replayed: true). The same key with
// another body is refused 422.
func faultDuplicates(t testing.TB, e *faultEnv) {
	runs, dup := 0, 0
	for i := range e.r.cfg.Duplicates {
		key := fmt.Sprintf("vmdload-dup-%d-%d", e.r.cfg.Seed, i)
		script := fmt.Sprintf("say dup-%d", i)
		a, b := e.during(t, script, "Idempotency-Key", key), e.during(t, script, "Idempotency-Key", key)
		first, second := <-a, <-b
		if first == nil || second == nil {
			return
		}
		if first.status != 200 || first.Text != fmt.Sprintf("dup-%d\n", i) || string(first.raw) != string(second.raw) {
			t.Errorf("key %s: answers %s and %s; want two identical 200s", key, first, second)
		}
		again := e.s.mustPost(t, script, 200, "Idempotency-Key", key)
		if again.header.Get("Idempotent-Replayed") != "true" || string(again.raw) != string(first.raw) {
			t.Errorf("key %s after its end: %s, Idempotent-Replayed %q; want the same answer replayed", key, again, again.header.Get("Idempotent-Replayed"))
		}
		n := e.s.runs(script)
		runs += n
		dup += max(n-1, 0)
	}
	if dup > 0 {
		t.Errorf("%d duplicate CLI runs over %d keys (%d runs)", dup, e.r.cfg.Duplicates, runs)
	}
	key := fmt.Sprintf("vmdload-dup-%d-0", e.r.cfg.Seed)
	if a := e.s.mustPost(t, "say another body", 422, "Idempotency-Key", key); a.Error != "idempotency_key_reused" {
		t.Errorf("same key, another body: %s; want 422 idempotency_key_reused", a)
	}
}

// faultDisconnects hangs up Duplicates synchronous clients once their
// command runs; the same key then answers the whole result, from the one
// run: no answer lost, none run twice.
func faultDisconnects(t testing.TB, e *faultEnv) {
	lost, dup := 0, 0
	for i := range e.r.cfg.Duplicates {
		l, d := hangUpOnce(t, e.s, fmt.Sprintf("vmdload-disc-%d-%d", e.r.cfg.Seed, i), i)
		lost, dup = lost+l, dup+d
	}
	if lost+dup > 0 {
		t.Errorf("over %d hung-up clients: %d answers lost, %d duplicate runs", e.r.cfg.Duplicates, lost, dup)
	}
}

// hangUpOnce sends a command with this key whose client hangs up once it
// runs, then sends it again: the second client must get the whole answer,
// from the one run. It returns the answers lost and the duplicate runs (0
// or 1 each).
func hangUpOnce(t testing.TB, s *server, key string, i int) (lost, dup int) {
	script := fmt.Sprintf("say disc-%d\nsleep 200ms\nsay end-%d", i, i)
	addr := strings.TrimPrefix(s.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, rawPost(addr, script, "Idempotency-Key: "+key))
	// Running: the CLI has it, or (a CLI that keeps no prompt log) the
	// command holds the slot, or has its answer already.
	answered := func() bool {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		n, _ := c.Read(make([]byte, 1))
		return n > 0
	}
	vmdtest.Eventually(t, "the command to run", func() bool { return s.runs(script) > 0 || s.running(t) >= 0 || answered() })
	c.Close()
	a, err := s.post(script, "Idempotency-Key", key)
	if err != nil || a.status != 200 || a.Text != fmt.Sprintf("disc-%d\nend-%d\n", i, i) {
		lost = 1
		t.Errorf("key %s after its client hung up: %v %v; want 200 with the whole text", key, a, err)
	}
	return lost, min(max(s.runs(script)-1, 0), 1)
}

// slowReaderGrowthKiB bounds vmd's memory growth while a stream client
// reads nothing and the CLI writes slowReaderMiB: the subscriber's queue is
// bounded (1 MiB), the record's events too (4 MiB), and one stream-json
// line is read at most 4 MiB at a time.
const (
	slowReaderGrowthKiB = 32 << 10
	slowReaderMiB       = 64
)

// faultSlowReader asks for an event stream and reads nothing while the
// CLI writes slowReaderMiB in 64 KiB events: vmd's resident memory must
// stay bounded (figures read from /proc).
func faultSlowReader(t testing.TB, e *faultEnv) {
	start, err := usageOf(e.s.Pid)
	if err != nil && procOK {
		t.Fatal(err)
	}
	script := strings.Repeat("bytes 65536\nsleep 0s\n", slowReaderMiB*16) + "say end"
	addr := strings.TrimPrefix(e.s.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, rawPost(addr, script, "Accept: text/event-stream"))
	peak := start.RSSKiB
	track := func() {
		if u, err := usageOf(e.s.Pid); err == nil {
			peak = max(peak, u.RSSKiB)
		}
	}
	// The slot was free (the last case's command answered), so the first
	// command /status shows is this one; the end is /status idle again,
	// not a "process done" log line, which may be the last case's, late.
	vmdtest.Eventually(t, "the command to start", func() bool { track(); return e.s.running(t) > 0 })
	vmdtest.Eventually(t, "the command to end with its stream unread", func() bool { track(); return e.s.running(t) < 0 })
	c.Close()
	if procOK && peak > start.RSSKiB+slowReaderGrowthKiB {
		t.Errorf("vmd's RSS rose from %d KiB to %d KiB while a stream client read nothing; want at most %d KiB more",
			start.RSSKiB, peak, slowReaderGrowthKiB)
	}
	after := e.r.settled(t, e.s)
	e.r.rep.note("slow stream reader: %d MiB written by the CLI; vmd RSS %d KiB before, peak %d KiB, settled after %d KiB",
		slowReaderMiB, start.RSSKiB, peak, after.RSSKiB)
}
