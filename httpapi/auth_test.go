package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const token = "s3cret-T0ken_with.all~kinds/of+chars="

// Every route but /health, whatever the method, known or not, answers 401
// without the token, and nothing else: no 404, no 405, no 400.
func TestAuthRequired(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{token: token})
	requests := []struct{ method, path, body string }{
		{"POST", "/command", `{"text":"say hi"}`},
		{"POST", "/command", `not json`},
		{"GET", "/command", ""},
		{"DELETE", "/command", ""},
		{"GET", "/ready", ""},
		{"HEAD", "/ready", ""},
		{"GET", "/metrics", ""},
		{"GET", "/images/shot.png", ""},
		{"HEAD", "/images/shot.png", ""},
		{"GET", "/images/..%2fsecret", ""},
		{"GET", "/status", ""},
		{"GET", "/", ""},
		{"GET", "/health/", ""},
		{"GET", "/x/../health", ""},
		{"OPTIONS", "/command", ""},
	}
	creds := []struct{ name, header string }{
		{"none", ""},
		{"wrong", "Bearer wrong"},
		{"longer", "Bearer " + token + "x"},
		{"shorter", "Bearer " + token[:len(token)-1]},
		{"empty", "Bearer "},
		{"scheme only", "Bearer"},
		{"no scheme", token},
		{"basic", "Basic " + token},
		{"other case", "Bearer " + strings.ToUpper(token)},
	}
	for _, c := range creds {
		for _, r := range requests {
			t.Run(c.name+" "+r.method+" "+r.path, func(t *testing.T) {
				var header []string
				if c.header != "" {
					header = []string{"Authorization", c.header}
				}
				got := s.doWith(t, r.method, r.path, r.body, header...)
				if got.status != 401 {
					t.Fatalf("%s %s with %s token = %d %q; want 401", r.method, r.path, c.name, got.status, got.body)
				}
				if !strings.HasPrefix(got.header["Www-Authenticate"], `Bearer realm="vmd"`) {
					t.Errorf("WWW-Authenticate = %q; want a Bearer challenge", got.header["Www-Authenticate"])
				}
				if got.header["Content-Type"] != "application/json" || got.header["X-Request-Id"] == "" {
					t.Errorf("headers = %v; want JSON and an X-Request-Id", got.header)
				}
				if r.method == "HEAD" {
					return
				}
				var body map[string]any
				if err := json.Unmarshal([]byte(got.body), &body); err != nil || body["error"] != "unauthorized" || body["message"] == "" || len(body) != 2 {
					t.Errorf("body = %q; want {\"error\":\"unauthorized\",\"message\":...}", got.body)
				}
			})
		}
	}
	if s.Commands.Busy() || s.do(t, "GET", "/health", "").status != 200 {
		t.Error("vmd is not idle and well after all that")
	}
}

// With the token every route answers as it would without authentication.
func TestAuthAccepted(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{token: token})
	for _, auth := range []string{"Bearer " + token, "bearer " + token, "BEARER  " + token} {
		for _, tt := range []struct {
			method, path, body string
			status             int
		}{
			{"POST", "/command", `{"text":"say hi"}`, 200},
			{"POST", "/command", `{}`, 400},
			{"GET", "/command", "", 405},
			{"GET", "/ready", "", 200},
			{"GET", "/metrics", "", 200},
			{"GET", "/images/missing.png", "", 404},
			{"GET", "/images/..", "", 400},
			{"GET", "/nope", "", 404},
		} {
			got := s.doWith(t, tt.method, tt.path, tt.body, "Authorization", auth)
			if got.status != tt.status {
				t.Errorf("%s %s with %q = %d %q; want %d", tt.method, tt.path, auth, got.status, got.body, tt.status)
			}
			if _, ok := got.header["Www-Authenticate"]; ok {
				t.Errorf("%s %s with the token has a WWW-Authenticate header", tt.method, tt.path)
			}
		}
	}
}

// /health stays open: platforms probe liveness without headers.
func TestHealthOpen(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{token: token})
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/health", 200}, {"HEAD", "/health", 200}, {"GET", "/health?probe=1", 200}, {"POST", "/health", 405},
	} {
		for _, header := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "Bearer " + token}} {
			if got := s.doWith(t, tt.method, tt.path, "", header...); got.status != tt.status {
				t.Errorf("%s %s with %v = %d %q; want %d", tt.method, tt.path, header, got.status, got.body, tt.status)
			}
		}
	}
}

// A request without the token is refused before its body is read: a large
// one gets 401, not 413.
func TestAuthBeforeBody(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{token: token, maxBody: 4096})
	got := s.raw(t, "POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
	if got.status != 401 || !strings.Contains(got.body, `"error":"unauthorized"`) {
		t.Errorf("POST /command of 100 KB without the token = %d %q; want 401", got.status, got.body)
	}
	got = s.raw(t, "POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"text\":\"a\"}\n")
	if got.status != 401 {
		t.Errorf("POST /command of 13 bytes without the token = %d %q; want 401", got.status, got.body)
	}
	got = s.raw(t, "POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer "+token+"\r\nContent-Length: 5000\r\n\r\n")
	if got.status != 413 {
		t.Errorf("POST /command of 5 KB with the token = %d %q; want 413 (the limit is 4096)", got.status, got.body)
	}
	got = s.raw(t, "POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer "+token+"\r\nContent-Length: 15\r\n\r\n{\"text\":\"say\"}\n")
	if got.status != 200 {
		t.Errorf("POST /command with the token = %d %q; want 200", got.status, got.body)
	}
}

// A flood of refused requests is one warn line a second, the rest at debug.
func TestUnauthorizedLogBounded(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{token: token})
	logs := s.Log
	start := time.Now()
	for range 50 {
		if got := s.do(t, "GET", "/status", ""); got.status != 401 {
			t.Fatalf("GET /status without the token = %d", got.status)
		}
	}
	warns, debugs := 0, 0
	for _, line := range logs.Lines() {
		if line["@message"] == "unauthorized" {
			switch line["@level"] {
			case "warn":
				warns++
			case "debug":
				debugs++
			}
		}
	}
	// One warn line for each second begun, however slow the machine.
	most := 1 + int(time.Since(start)/time.Second)
	if warns < 1 || warns > most || warns+debugs != 50 {
		t.Errorf("%d warn and %d debug unauthorized lines for 50 refusals; want 1 to %d warn, the rest debug", warns, debugs, most)
	}
}
