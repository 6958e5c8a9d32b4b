package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

// Reading the store is bounded: a page of GET /commands by the bytes of
// its answers, a stream of stored events by a page of them at a time.

// ended stores an ended record with an answer of about size bytes (a JSON
// answer, as vmd renders them) and n events of eventBytes each, and
// returns its id.
func ended(t *testing.T, st *store.Store, size, n, eventBytes int) string {
	t.Helper()
	ctx := context.Background()
	rec, _, err := st.Create(ctx, store.NewRecord{PromptLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]store.Event, n)
	for i := range evs {
		data, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("%d:%s", i+1, strings.Repeat("e", eventBytes))})
		evs[i] = store.Event{Seq: int64(i + 1), Type: "message", Data: data}
	}
	body, _ := json.Marshal(map[string]any{"text": strings.Repeat("a", size), "images": []string{}})
	err = st.Finish(ctx, rec.ID, store.End{State: store.State(outcome.Succeeded), Status: 200, Body: body, Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	return rec.ID
}

// GET /commands ends a page before the answer that would take it past
// store.PageBytes: a page short of limit still has next, and paging until
// next is null sees every record once, newest first.
func TestListPagesByBytes(t *testing.T) {
	t.Parallel()
	s := durable(t)
	third := store.PageBytes * 2 / 5 // two fit a page, three do not
	var ids []string
	for range 5 {
		ids = append(ids, ended(t, s.Store, third, 0, 0))
	}
	var pages []int
	var got []string
	path := "/commands?limit=1000"
	for {
		r := s.do(t, "GET", path, "")
		var page struct {
			Commands []record `json:"commands"`
			Next     *string  `json:"next"`
		}
		if err := json.Unmarshal([]byte(r.body), &page); r.status != 200 || err != nil {
			t.Fatalf("GET %s = %d %.200s: %v", path, r.status, r.body, err)
		}
		pages = append(pages, len(page.Commands))
		for _, c := range page.Commands {
			if len(c.Response) < third {
				t.Errorf("GET %s: record %s has a response of %d bytes; want its whole answer", path, c.ID, len(c.Response))
			}
			got = append(got, c.ID)
		}
		if page.Next == nil {
			break
		}
		if *page.Next != got[len(got)-1] {
			t.Fatalf("GET %s: next = %s; want the page's last id %s", path, *page.Next, got[len(got)-1])
		}
		path = "/commands?limit=1000&before=" + *page.Next
	}
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)
	if fmt.Sprint(pages) != "[2 2 1]" || fmt.Sprint(got) != fmt.Sprint(newestFirst) {
		t.Errorf("pages of %d-byte answers = %v, ids %v; want [2 2 1], every record newest first %v", third, pages, got, newestFirst)
	}
}

// The stored events of an ended command span several pages: its events
// stream, from the start or after any Last-Event-ID (on either side of a
// page's end, the last of all), gives each event after it once, in order,
// then the result; so does a stream retry of its key.
func TestEventsStreamByPage(t *testing.T) {
	t.Parallel()
	s := durable(t)
	const n = 120
	line := strings.Repeat("w", 1000)
	var script strings.Builder
	for i := range n {
		fmt.Fprintf(&script, "say %d %s\nsleep 0s\n", i+1, line) // one event each
	}
	body, _ := json.Marshal(map[string]string{"text": script.String()})
	if r := s.doWith(t, "POST", "/command", string(body), "Idempotency-Key", "pages"); r.status != 200 {
		t.Fatalf("command = %d %.200s", r.status, r.body)
	}
	// The answer comes at the result line; the end is stored just after.
	var rec store.Record
	var err error
	vmdtest.Eventually(t, "the command's end stored", func() bool {
		rec, err = s.Store.ByKey(context.Background(), "pages")
		if err != nil {
			return true
		}
		if _, live := s.Commands.Live(rec.ID); live {
			return false
		}
		// Read once more: the record read above may predate the end.
		rec, err = s.Store.ByKey(context.Background(), "pages")
		return true
	})
	if err != nil || rec.EventBytes < 3*store.EventPageBytes {
		t.Fatalf("the stored command = %d bytes of events, %v; want at least 3 pages", rec.EventBytes, err)
	}
	last := int(rec.EventSeq)
	_, end, err := s.Commands.EventPage(context.Background(), rec.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := int(end) // the first page's last event
	for _, after := range []int{0, 1, page - 1, page, page + 1, last - 1, last} {
		for _, how := range []string{"events", "retry"} {
			t.Run(fmt.Sprintf("%s after %d", how, after), func(t *testing.T) {
				var st *stream
				if how == "events" {
					st = s.openEvents(t, "GET", "/commands/"+rec.ID+"/events", "", "Last-Event-ID", strconv.Itoa(after))
				} else {
					st = s.openEvents(t, "POST", "/command", string(body), "Idempotency-Key", "pages", "Last-Event-ID", strconv.Itoa(after))
				}
				ids, result := st.rest(t)
				var want []string
				for seq := after + 1; seq <= last; seq++ {
					want = append(want, strconv.Itoa(seq))
				}
				if st.status != 200 || strings.Join(ids, ",") != strings.Join(want, ",") ||
					!strings.Contains(result.data, fmt.Sprintf("%d %s", n, line)) {
					t.Errorf("stream after %d = %d, ids %v, result %.100s…; want %v, then the whole answer", after, st.status, ids, result.data, want)
				}
			})
		}
	}
}

// Followers of an ended command that read nothing hold a page of its
// events each, not all of them: with eight of them blocked on their
// connections, the live heap grows by far less than one copy of the
// events. Not parallel: it measures the test process's heap.
func TestFollowersHoldAPage(t *testing.T) {
	s := serve(t, setup{})
	const followers, events, eventBytes = 8, 2000, 2000 // 4 MB of events
	id := ended(t, s.Store, 100, events, eventBytes)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for range followers {
		c, err := s.Dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /commands/%s/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n", id)
		// Its head and first events; the in-memory connection buffers a
		// few writes, then the stream waits for a reader that never comes.
		r := bufio.NewReaderSize(c, 16)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("events stream = %q, %v; want 200", line, err)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, "id: ") {
				break
			}
		}
	}
	grown := int64(heap()) - int64(before)
	if grown > events*eventBytes {
		t.Errorf("%d followers that read nothing grew the heap by %d KiB; want less than one copy of the events (%d KiB)",
			followers, grown>>10, events*eventBytes>>10)
	}
	t.Logf("%d blocked followers: heap grew %d KiB", followers, grown>>10)
}
