package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
		"strings"
	"testing"

	"github.com/vmd-dev/vmd/store"
)

// Reading the store is bounded: a page of GET /commands by the bytes of
// its answers.

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
	err = st.Finish(ctx, rec.ID, store.End{State: store.Succeeded, Status: 200, Body: body, Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	return rec.ID
}

// GET /commands ends a page before the answer that would take it past
// store.PageBytes: a page short of limit still has next, and paging until
// next is null sees every record once, newest first.
func TestListPagesByBytes(t *testing.T) {
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
	if fmt.Sprint(pages) != "[2 2 1]" || fmt.Sprint(got) != fmt.Sprint(reversed(ids)) {
		t.Errorf("pages of %d-byte answers = %v, ids %v; want [2 2 1], every record newest first %v", third, pages, got, reversed(ids))
	}
}

func reversed(s []string) []string {
	r := make([]string, len(s))
	for i, v := range s {
		r[len(s)-1-i] = v
	}
	return r
}
