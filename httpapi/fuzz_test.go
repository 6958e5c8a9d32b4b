package httpapi

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParsePrompt(f *testing.F) {
	for _, s := range []string{`{"text":"hi"}`, `{"text":""}`, `{"text":5}`, `[]`, `null`, `{"text":"a"} x`,
		`{"text":"\u0000"}`, `{"text":"\ud800"}`, `{"text":"a","text":" "}`, `{"TEXT":"a"}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		text, ok := ParsePrompt(body)
		if !ok {
			return
		}
		if strings.TrimSpace(text) == "" {
			t.Errorf("ParsePrompt(%q) accepted blank text %q", body, text)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("ParsePrompt(%q) accepted a body that is not a JSON object: %v", body, err)
		}
		if s, isString := m["text"].(string); !isString || s != text {
			t.Errorf("ParsePrompt(%q) = %q; the body's text is %#v", body, text, m["text"])
		}
	})
}

func FuzzImageName(f *testing.F) {
	for _, s := range []string{"shot.png", "..", "%2e%2e", "..%2f..%2fetc%2fpasswd", "a%5cb", "a%00b", "%zz", "my%20shot.png", "%2ehidden"} {
		f.Add(s)
	}
	dir := "/tmp/images"
	f.Fuzz(func(t *testing.T, raw string) {
		name, ok := imageName(raw)
		if !ok {
			return
		}
		p := filepath.Join(dir, name)
		if filepath.Dir(p) != dir || filepath.Base(p) != name || strings.HasPrefix(name, ".") {
			t.Errorf("imageName(%q) = %q, which joins to %q", raw, name, p)
		}
	})
}
