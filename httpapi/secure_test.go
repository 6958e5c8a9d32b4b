package httpapi_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// Issue 11 gap 1: what a web page can make a browser send is refused
// before anything runs: a cross-origin POST (a "simple request" is
// text/plain), any body that is not JSON, and, without a token, a Host
// that is not this machine's (DNS rebinding). Real HTTP on loopback.
func TestGuard(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{loopback: true, hosts: []string{"vmd.internal"}, origins: []string{"https://relay.example"}})
	const cmd = `{"text":"say hi"}`
	for _, c := range []struct {
		name   string
		method string
		path   string
		body   string
		header []string
		status int
		code   string
	}{
		{"cross-origin text/plain", "POST", "/command", cmd,
			[]string{"Origin", "https://evil.example", "Content-Type", "text/plain"}, 403, "forbidden_origin"},
		{"cross-origin JSON", "POST", "/command", cmd, []string{"Origin", "https://evil.example"}, 403, "forbidden_origin"},
		{"text/plain", "POST", "/command", cmd, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"form", "POST", "/command", cmd, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"no Content-Type", "POST", "/command", cmd, []string{"Content-Type", ""}, 415, "unsupported_media_type"},
		{"foreign Host", "POST", "/command", cmd, []string{"Host", "evil.example"}, 403, "forbidden_host"},
		{"rebound Host with a port", "GET", "/status", "", []string{"Host", "evil.example:3001"}, 403, "forbidden_host"},
		{"foreign Host, status", "GET", "/status", "", []string{"Host", "10.0.0.1"}, 403, "forbidden_host"},
		{"no body at all", "POST", "/command", "", nil, 400, "bad_request"},
		{"liveness, any Host", "GET", "/health", "", []string{"Host", "fly-probe.internal", "Origin", "https://evil.example"}, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := s.doWith(t, c.method, c.path, c.body, c.header...)
			if got.status != c.status || c.code != "" && !strings.Contains(got.body, `"error":"`+c.code+`"`) || got.header["X-Request-Id"] == "" {
				t.Errorf("%s %s %v = %d %q; want %d %s with a request id", c.method, c.path, c.header, got.status, got.body, c.status, c.code)
			}
		})
	}
	if s.Log.Logged("spawn") {
		t.Fatalf("a refused request ran a command")
	}
	for _, c := range []struct {
		name   string
		header []string
	}{
		{"loopback name", []string{"Host", "localhost:3001"}},
		{"loopback address", []string{"Host", "127.0.0.1:3001"}},
		{"IPv6 loopback", []string{"Host", "[::1]:3001"}},
		{"listed Host", []string{"Host", "VMD.internal:8080"}},
		{"listed Origin", []string{"Origin", "https://relay.example"}},
		{"JSON with its charset", []string{"Content-Type", "application/json; charset=utf-8"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := s.doWith(t, "POST", "/command", cmd, c.header...); got.status != 200 {
				t.Errorf("POST /command %v = %d %q; want 200", c.header, got.status, got.body)
			}
		})
	}
}

// With a token the Host is not checked (a page cannot send the token), but
// the Origin and the Content-Type are; the guard answers before the token
// is looked at.
func TestGuardWithToken(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{loopback: true, token: token})
	auth := []string{"Authorization", "Bearer " + token}
	if got := s.doWith(t, "POST", "/command", `{"text":"say hi"}`, append(auth, "Host", "vmd.fly.dev")...); got.status != 200 {
		t.Errorf("POST /command to a public Host with the token = %d %q; want 200", got.status, got.body)
	}
	for _, h := range [][]string{append(auth, "Origin", "https://evil.example"), {"Origin", "https://evil.example"}} {
		if got := s.doWith(t, "POST", "/command", `{"text":"say hi"}`, h...); got.status != 403 || !strings.Contains(got.body, "forbidden_origin") {
			t.Errorf("POST /command %v = %d %q; want 403 forbidden_origin", h, got.status, got.body)
		}
	}
	if got := s.doWith(t, "POST", "/command", `{"text":"say hi"}`, append(auth, "Content-Type", "text/plain")...); got.status != 415 {
		t.Errorf("POST /command as text/plain with the token = %d %q; want 415", got.status, got.body)
	}
}

// DELETE /command racing the command's own end (issue 11 gap 8): DELETE
// says cancelled only when the command's own client gets 499; when that
// client gets its 200, DELETE finds nothing to cancel (404). Each round
// sends DELETE a little later, sweeping the moment the CLI exits; the
// delays spread the race, they synchronise nothing.
func TestCancelRacingEnd(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	var cancelled, ended int
	for i := range 40 {
		own := make(chan response, 1)
		go func() {
			r, err := s.fetch("POST", "/command", `{"text":"say done"}`)
			if err != nil {
				r.body = err.Error()
			}
			own <- r
		}()
		vmdtest.Eventually(t, "the command to start", s.Commands.Busy)
		time.Sleep(time.Duration(i) * 500 * time.Microsecond)
		del := s.do(t, "DELETE", "/command", "")
		got := <-own
		switch {
		case del.status == 200 && strings.Contains(del.body, `"cancelled":true`) && got.status == 499:
			cancelled++
		case del.status == 404 && got.status == 200:
			ended++
		default:
			t.Errorf("round %d: DELETE = %d %q while the command's own answer = %d %q", i, del.status, del.body, got.status, got.body)
		}
	}
	t.Logf("DELETE stopped the command in %d rounds; it had ended by itself in %d", cancelled, ended)
}

// The stall watchdog (issue 11): a CLI that prints nothing, reads and
// writes nothing and has no tool call open for stall_timeout is killed
// and answered 504 agent_stalled with its partial text and session, and
// counted; a tool call that runs longer than that is left alone.
func TestStall(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{stall: 500 * time.Millisecond, timeout: time.Minute})
	got := s.do(t, "POST", "/command", `{"text":"say partial\nescape\nsleep 1h"}`)
	fields := fieldsOf(t, got.body)
	text, _ := fields["text"].(string)
	if got.status != 504 || fields["error"] != "agent_stalled" || !strings.HasPrefix(text, "partial\n") || fields["sessionId"] == nil {
		t.Errorf("a stalled command = %d %s; want 504 agent_stalled with the partial text and the session", got.status, got.body)
	}
	if s.Commands.Busy() {
		t.Error("the slot is still taken after the 504")
	}
	for _, pid := range pidsIn(text, "escaped") {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("escaped process %d survives the stall", pid)
		}
	}
	if !s.Log.Logged("claude stalled: no output, no tool call open and no I/O; killing it") {
		t.Error("vmd's log says nothing of the stall")
	}
	if got := s.do(t, "GET", "/status", ""); !strings.Contains(got.body, `"stalled":1`) {
		t.Errorf("status = %s; want one stalled command", got.body)
	}
	if got := s.do(t, "GET", "/metrics", ""); !strings.Contains(got.body, "\nvmd_commands_total{outcome=\"stalled\"} 1\n") {
		t.Errorf("metrics lack one stalled command:\n%s", got.body)
	}
	got = s.do(t, "POST", "/command", `{"text":"say building\nslow-tool 2s\nsay built"}`)
	if fields := fieldsOf(t, got.body); got.status != 200 || fields["text"] != "building\nbuilt\n" {
		t.Errorf("a tool call of 2s under a stall timeout of 500ms = %d %s; want 200, not killed", got.status, got.body)
	}
}
