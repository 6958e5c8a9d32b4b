package httpapi

import (
	"strconv"
	"strings"
	"testing"

	"github.com/vmd-dev/vmd/store"
)

func FuzzParseIdempotencyKey(f *testing.F) {
	for _, s := range []string{"wamid.HBgLMzQ2MTIzNDU2NzgVAgASGBQzQUI=", "", " ", "a b", "caf\u00e9", "tab\t", "\x7f", "\x00",
		strings.Repeat("k", 255), strings.Repeat("k", 256), "~!@#$%^&*()"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		key, err := ParseIdempotencyKey(v)
		if err != nil {
			return
		}
		if key != string(v) || len(key) < 1 || len(key) > 255 {
			t.Errorf("ParseIdempotencyKey(%q) = %q; want the value itself, 1 to 255 bytes", v, key)
		}
		for _, c := range []byte(key) {
			if c < ' ' || c > '~' {
				t.Errorf("ParseIdempotencyKey(%q) accepted byte %#x", v, c)
			}
		}
	})
}

func FuzzParseLastEventID(f *testing.F) {
	for _, s := range []string{"", "0", "1", "42", "-1", "+1", " 1", "1 ", "01", "9223372036854775807", "9223372036854775808",
		"99999999999999999999", "1e3", "0x10", "\u0661"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		n, err := ParseLastEventID(v)
		if err != nil {
			return
		}
		if n < 0 || len(v) > 0 && strconv.FormatInt(n, 10) != strings.TrimLeft(string(v), "0") && !(n == 0 && strings.Trim(string(v), "0") == "") {
			t.Errorf("ParseLastEventID(%q) = %d; want the number it writes", v, n)
		}
	})
}

func FuzzParseCommandPath(f *testing.F) {
	for _, s := range []string{"/commands/01a22bb3-320f-7569-929b-3222d1142243", "/commands/01a22bb3-320f-7569-929b-3222d1142243/events",
		"/commands/01A22BB3-320F-7569-929B-3222D1142243", "/commands/01a22bb3-320f-4569-929b-3222d1142243", "/commands/",
		"/commands/x/events", "/commands/01a22bb3-320f-7569-929b-3222d1142243/../x", "/commands/01a22bb3-320f-7569-929b-3222d1142243/events/",
		"/commands//events", "/commands/%30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		id, rest, err := ParseCommandPath(path)
		if err != nil {
			return
		}
		if back, err := store.ParseID(id); err != nil || back != id {
			t.Errorf("ParseCommandPath(%q) id = %q, not a command id: %v", path, id, err)
		}
		want := "/commands/" + id
		if rest != "" {
			want += "/" + rest
		}
		if rest != "" && rest != "events" || want != path {
			t.Errorf("ParseCommandPath(%q) = %q, %q; want the path's own parts", path, id, rest)
		}
	})
}
