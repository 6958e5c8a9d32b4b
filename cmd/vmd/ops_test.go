package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// request sends one request with headers as name, value pairs, and returns the
// status and body.
func request(t *testing.T, method, url, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// API_TOKEN guards everything but /health, and the CLI never sees it.
func TestAPIToken(t *testing.T) {
	t.Parallel()
	const token = "e2e-token-0123456789"
	p := startVMD(t, append(baseEnv(t), "API_TOKEN="+token))
	if auth := p.field("startup", "auth"); auth != true {
		t.Errorf("startup auth = %v; want true", auth)
	}
	if status, _, _ := request(t, "GET", p.url+"/health", ""); status != 200 {
		t.Errorf("GET /health without a token = %d; want 200", status)
	}
	for _, path := range []string{"/command", "/ready", "/metrics", "/images/x.png", "/nope"} {
		status, h, body := request(t, "POST", p.url+path, `{"text":"say hi"}`)
		if status != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(body, `"unauthorized"`) {
			t.Errorf("POST %s without a token = %d %q %q; want 401 with a Bearer challenge", path, status, h.Get("WWW-Authenticate"), body)
		}
	}
	bearer := []string{"Authorization", "Bearer " + token, "X-Request-Id", "e2e-1"}
	status, h, body := request(t, "POST", p.url+"/command", `{"text":"env API_TOKEN\nenv ANTHROPIC_API_KEY"}`, bearer...)
	if status != 200 || !strings.Contains(body, `"text":"API_TOKEN=\nANTHROPIC_API_KEY=test-key\n"`) {
		t.Errorf("the CLI's API_TOKEN = %d %q; want 200 with it empty", status, body)
	}
	if h.Get("X-Request-Id") != "e2e-1" || p.field("command received", "request_id") != "e2e-1" {
		t.Errorf("request id: header %q, logged %v; want e2e-1 in both", h.Get("X-Request-Id"), p.field("command received", "request_id"))
	}
	if status, _, body := request(t, "GET", p.url+"/ready", "", bearer...); status != 200 || !strings.Contains(body, `"ready":true`) {
		t.Errorf("GET /ready with the token = %d %q; want 200 ready", status, body)
	}
	if status, _, body := request(t, "GET", p.url+"/metrics", "", bearer...); status != 200 || !strings.Contains(body, "\nvmd_commands_total{outcome=\"ok\"} 1\n") {
		t.Errorf("GET /metrics with the token = %d; want 200 counting one command:\n%s", status, body)
	}
}

const openWarning = "no API token: anyone who can reach this address can run anything in this container"

// Without a token, vmd listens beyond loopback only when told to
// (allow_unauthenticated; without it, TestStartupErrors: exit 1), and then
// warns at start.
func TestOpenWarning(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  []string
		warn bool
	}{
		{"every interface, unauthenticated on purpose", []string{"HOST=0.0.0.0", "ALLOW_UNAUTHENTICATED=true"}, true},
		{"loopback", []string{"HOST=127.0.0.1"}, false},
		{"every interface with a token", []string{"HOST=0.0.0.0", "API_TOKEN=t"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startVMD(t, append(baseEnv(t), tt.env...))
			if got := p.logged(openWarning); got != tt.warn {
				t.Errorf("warned %v; want %v", got, tt.warn)
			}
		})
	}
}

// As PID 1, the CLI's version probe runs beside a command whose orphans
// vmd reaps and whose strays it kills, and is neither reaped by mistake nor
// swept; the counters show both.
func TestReadyBesideCommandAsPID1(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root for unshare --pid")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	// Cold: a warm agent keeps what it started (the escaped process) until
	// it ends, so there would be no stray to count.
	env := append(baseEnv(t), "FAKECLAUDE_VERSION=slow 500ms", "WARM=false")
	p := startVMD(t, env, unshare, "--pid", "--fork", "--mount-proc", "--kill-child", vmdBin)
	got := p.inFlight(t, "orphans 4\nsleep 1s\nescape\nsay done") // seen running on a loaded machine
	status, _, body := request(t, "GET", p.url+"/ready", "")
	if status != 200 || !strings.Contains(body, `"version":"1.0.0-fake (Claude Code)"`) {
		t.Errorf("GET /ready beside a command = %d %q; want 200 with the version", status, body)
	}
	if r := <-got; r.status != 200 || r.body["text"] == nil {
		t.Fatalf("command = %d %v %v", r.status, r.body, r.err)
	}
	waitFor(t, "counters", func() bool {
		_, _, metrics := request(t, "GET", p.url+"/metrics", "")
		return regexp.MustCompile(`\nvmd_stray_processes_killed_total [1-9]`).MatchString(metrics) &&
			regexp.MustCompile(`\nvmd_zombies_reaped_total ([5-9]|\d\d)`).MatchString(metrics)
	})
}
