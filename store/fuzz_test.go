package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	t.Parallel()
	fresh, _ := NewID()
	tests := []struct {
		in     string
		wantOK bool
	}{
		{fresh, true},
		{"0192f3a4-5b6c-7d8e-9f01-23456789abcd", true},
		{"0192F3A4-5B6C-7D8E-9F01-23456789ABCD", false}, // upper case: one spelling only
		{"{0192f3a4-5b6c-7d8e-9f01-23456789abcd}", false},
		{"urn:uuid:0192f3a4-5b6c-7d8e-9f01-23456789abcd", false},
		{"0192f3a45b6c7d8e9f0123456789abcd", false},
		{"0192f3a4-5b6c-4d8e-9f01-23456789abcd", false}, // version 4
		{"0192f3a4-5b6c-7d8e-1f01-23456789abcd", false}, // NCS variant
		{"", false},
		{"' OR 1=1 --", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if (err == nil) != tt.wantOK || (err == nil && got != tt.in) {
				t.Errorf("ParseID(%q) = %q, %v; want ok %v", tt.in, got, err, tt.wantOK)
			}
			if err != nil && !errors.Is(err, ErrBadID) {
				t.Errorf("ParseID(%q) error %v; want it to wrap ErrBadID", tt.in, err)
			}
		})
	}
}

func TestNewIDSorts(t *testing.T) {
	t.Parallel()
	prev, _ := NewID()
	for range 1000 {
		id, err := NewID()
		if err != nil || id <= prev {
			t.Fatalf("NewID() = %q, %v after %q; want a larger id", id, err, prev)
		}
		prev = id
	}
}

// FuzzParseID: an accepted id is canonical, 36 bytes of [0-9a-f-], and
// accepted again unchanged; everything else wraps ErrBadID.
func FuzzParseID(f *testing.F) {
	id, _ := NewID()
	for _, s := range []string{id, strings.ToUpper(id), "", "0192f3a4-5b6c-7d8e-9f01-23456789abcd", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, ErrBadID) {
				t.Fatalf("ParseID(%q) error %v; want it to wrap ErrBadID", s, err)
			}
			return
		}
		if got != s || len(got) != idLen || strings.Trim(got, "0123456789abcdef-") != "" {
			t.Fatalf("ParseID(%q) = %q; want s back, canonical", s, got)
		}
		if again, err := ParseID(got); err != nil || again != got {
			t.Fatalf("ParseID(ParseID(%q)) = %q, %v; want it unchanged", s, again, err)
		}
	})
}

// FuzzListCursor: any cursor, checked or not, lists without error and only
// records older than it, newest first.
func FuzzListCursor(f *testing.F) {
	s, err := Open(context.Background(), Memory, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	var ids []string
	for range 5 {
		rec, _, err := s.Create(context.Background(), NewRecord{})
		if err != nil {
			f.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	for _, c := range append(ids, "", "zzz", "0", "'", "\x00") {
		f.Add(c, 2)
	}
	f.Fuzz(func(t *testing.T, before string, limit int) {
		recs, next, err := s.List(context.Background(), limit, before, 0)
		if err != nil {
			t.Fatalf("List(%d, %q) = %v", limit, before, err)
		}
		for i, r := range recs {
			if before != "" && r.ID >= before {
				t.Fatalf("List(%d, %q) gave %s; want ids below the cursor", limit, before, r.ID)
			}
			if i > 0 && r.ID >= recs[i-1].ID {
				t.Fatalf("List(%d, %q) out of order at %d", limit, before, i)
			}
		}
		if next != "" && next != recs[len(recs)-1].ID {
			t.Fatalf("List(%d, %q) next = %q; want the last id", limit, before, next)
		}
	})
}
