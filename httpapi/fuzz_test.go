package httpapi

import (
	"bytes"
	"encoding/json"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{`{"text":"hi"}`, `{"text":""}`, `{"text":5}`, `[]`, `null`, `{"text":"a"} x`,
		`{"text":"\u0000"}`, `{"text":"\ud800"}`, `{"text":"a","text":" "}`, `{"TEXT":"a"}`, "\xff",
		`{"text":"a","sessionId":"0b6a2f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"}`, `{"text":"a","sessionId":"../x"}`,
		`{"text":"a","sessionId":null,"timeoutMs":null}`, `{"text":"a","timeoutMs":1.5}`, `{"text":"a","timeoutMs":1e3}`,
		`{"text":"a","timeoutMs":-1}`, `{"text":"a","timeoutMs":99999999999999999999}`, `{"text":"a","timeoutMs":"5"}`,
		`{"text":"a","whenBusy":"queue"}`, `{"text":"a","whenBusy":"later"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseCommand(body)
		if err != nil {
			return
		}
		if strings.TrimSpace(req.Text) == "" {
			t.Errorf("ParseCommand(%q) accepted blank text %q", body, req.Text)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("ParseCommand(%q) accepted a body that is not a JSON object: %v", body, err)
		}
		if s, isString := m["text"].(string); !isString || s != req.Text {
			t.Errorf("ParseCommand(%q) text = %q; the body's text is %#v", body, req.Text, m["text"])
		}
		if req.SessionID != "" && (m["sessionId"] != req.SessionID || !sessionIDPattern.MatchString(req.SessionID)) {
			t.Errorf("ParseCommand(%q) sessionId = %q; the body's is %#v", body, req.SessionID, m["sessionId"])
		}
		if req.Timeout < 0 || req.Timeout > maxTimeout {
			t.Errorf("ParseCommand(%q) timeout = %v; want within (0, %v]", body, req.Timeout, maxTimeout)
		}
		if req.Queue != (m["whenBusy"] == "queue") {
			t.Errorf("ParseCommand(%q) queue = %v; the body's whenBusy is %#v", body, req.Queue, m["whenBusy"])
		}
		if req.Timeout > 0 && req.Timeout < maxTimeout {
			if n, isNumber := m["timeoutMs"].(float64); !isNumber || time.Duration(n)*time.Millisecond != req.Timeout {
				t.Errorf("ParseCommand(%q) timeout = %v; the body's timeoutMs is %#v", body, req.Timeout, m["timeoutMs"])
			}
		}
	})
}

// bigTimeout is the body's timeoutMs as a whole number of any size.
func bigTimeout(body []byte) (*big.Int, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil, false
	}
	num, ok := m["timeoutMs"].(json.Number)
	if !ok {
		return nil, false
	}
	return new(big.Int).SetString(num.String(), 10)
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
