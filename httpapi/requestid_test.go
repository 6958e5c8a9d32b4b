package httpapi_test

import (
	"bufio"
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{token: token})
	logs := s.Log
	auth := []string{"Authorization", "Bearer " + token}

	t.Run("echoed", func(t *testing.T) {
		for _, id := range []string{"relay-42", "0f8fad5b-d9cb-469f-a165-70867728950e", "with space and !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", strings.Repeat("x", 128)} {
			got := s.doWith(t, "GET", "/health", "", "X-Request-Id", id)
			if got.header["X-Request-Id"] != id {
				t.Errorf("X-Request-Id %q came back as %q", id, got.header["X-Request-Id"])
			}
		}
	})
	t.Run("generated", func(t *testing.T) {
		seen := map[string]bool{}
		for _, id := range []string{"", strings.Repeat("x", 129), "naïve", "tab\there"} {
			header := []string{"X-Request-Id", id}
			if id == "" {
				header = nil
			}
			got := s.doWith(t, "GET", "/health", "", header...)
			gen := got.header["X-Request-Id"]
			if !generatedID.MatchString(gen) || seen[gen] {
				t.Errorf("X-Request-Id %q: answered with %q; want a new 32-hex-digit id", id, gen)
			}
			seen[gen] = true
		}
		// A control character, as a client library would not send it:
		// fasthttp refuses the request, which still gets an id of its own.
		c, err := s.Dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /health HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: a\x01b\r\n\r\n"))
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(c)); err != nil {
			t.Fatal(err)
		}
		if id := string(resp.Header.Peek("X-Request-Id")); !generatedID.MatchString(id) {
			t.Errorf("X-Request-Id with a control character: answered %d with %q; want a new id", resp.StatusCode(), id)
		}
	})
	t.Run("on every answer", func(t *testing.T) {
		for _, tt := range []struct {
			method, path, body string
			header             []string
			status             int
		}{
			{"GET", "/nope", "", auth, 404},
			{"PUT", "/command", "", auth, 405},
			{"POST", "/command", "{}", auth, 400},
			{"GET", "/images/missing.png", "", auth, 404},
			{"GET", "/ready", "", nil, 401},
			{"POST", "/command", `{"text":"exit 3"}`, auth, 500},
		} {
			got := s.doWith(t, tt.method, tt.path, tt.body, append(tt.header, "X-Request-Id", "req-"+tt.path)...)
			if got.status != tt.status || got.header["X-Request-Id"] != "req-"+tt.path {
				t.Errorf("%s %s = %d with X-Request-Id %q; want %d with req-%s", tt.method, tt.path, got.status, got.header["X-Request-Id"], tt.status, tt.path)
			}
		}
		// Requests fasthttp rejects before any handler, too.
		for _, req := range []string{
			"GARBAGE\r\n\r\n",
			"POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer " + token + "\r\nX-Request-Id: big\r\nContent-Length: 99999999\r\n\r\n",
		} {
			c, err := s.Dial()
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte(req))
			raw, _ := bufio.NewReader(c).ReadString(0)
			c.Close()
			if !regexp.MustCompile(`(?i)\r\nX-Request-Id: [ -~]+\r\n`).MatchString(raw) {
				t.Errorf("%q: answer %q has no X-Request-Id", req, raw)
			}
		}
	})
	t.Run("in the log", func(t *testing.T) {
		got := s.doWith(t, "POST", "/command", `{"text":"exit 2"}`, append(auth, "X-Request-Id", "cmd-7")...)
		if got.status != 500 {
			t.Fatalf("command = %d %q", got.status, got.body)
		}
		s.doWith(t, "GET", "/metrics", "", "X-Request-Id", "stranger")
		want := map[string]bool{"command received": false, "command failed": false, "request": false}
		for _, line := range logs.Lines() {
			if line["request_id"] == "cmd-7" {
				if _, ok := want[line["@message"].(string)]; ok {
					want[line["@message"].(string)] = true
				}
			}
			if line["@message"] == "unauthorized" && line["request_id"] == "stranger" {
				want["unauthorized"] = true
			}
		}
		for msg, seen := range want {
			if !seen {
				t.Errorf("no %q log line with the request's id", msg)
			}
		}
		if _, ok := want["unauthorized"]; !ok {
			t.Error(`no "unauthorized" log line with the request's id`)
		}
	})
}
