package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/internal/stack"
	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

var fake string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.FakeClaude}, []*string{&fake})
}

// server is the whole stack (supervisor, agent, commands, images store,
// fasthttp) over the fake claude, as vmdtest runs it.
type server struct {
	*vmdtest.Stack
}

type setup struct {
	bin      string
	timeout  time.Duration
	drain    time.Duration
	maxBody  int
	maxOut   int
	loopback bool // real TCP on 127.0.0.1 instead of an in-memory listener
	plain    bool // the CLI is run without stream-json
	keep     time.Duration
	token    string   // Options.APIToken
	mcp      string   // Options.MCPConfig
	env      []string // added to the CLI's environment
	subBytes int      // commands.Options.SubscriberBytes
	minFree  uint64   // min_free_disk, in bytes
	hosts    []string // Options.AllowedHosts
	origins  []string // Options.AllowedOrigins
	stall    time.Duration
	quiet    bool // log at warn, as vmd does by default (benchmarks)
	reap     bool // reap every child of the test process: no t.Parallel then
	warm     bool // keep agents between turns
}

// serve runs the stack and tears it down when the test ends.
func serve(t testing.TB, s setup) *server {
	t.Helper()
	if s.bin == "" {
		s.bin = fake
	}
	return &server{vmdtest.Start(t, vmdtest.Options{Bin: s.bin, Plain: s.plain, Env: s.env, Timeout: s.timeout,
		Drain: s.drain, MaxBody: s.maxBody, MaxOutput: s.maxOut, KeepAlive: s.keep, Token: s.token, MCP: s.mcp,
		Loopback: s.loopback, Commands: func(o *commands.Options) { o.SubscriberBytes = s.subBytes }, MinFreeDisk: s.minFree, Quiet: s.quiet,
		Reap: s.reap, Warm: s.warm,
		Tweak: func(o *stack.Options) {
			o.API.AllowedHosts, o.API.AllowedOrigins, o.Agent.StallTimeout = s.hosts, s.origins, s.stall
		}})}
}

// running waits until the running command has said text.
func (s *server) running(t *testing.T, text string) commands.Record {
	t.Helper()
	var rec commands.Record
	vmdtest.Eventually(t, "the command to say "+text, func() bool {
		var ok bool
		rec, ok = s.Commands.Current()
		return ok && slices.ContainsFunc(rec.Events, func(e commands.Event) bool { return strings.Contains(e.Text, text) })
	})
	return rec
}

type response struct {
	status int
	header map[string]string
	body   string
}

// roundTrip sends one request with the fasthttp client, the path exactly as
// given, and shows see the request and its answer before both are released.
// It does not call t.Fatal: it may run in a goroutine of its own.
func (s *server) roundTrip(method, path, body string, header []string, see func(*fasthttp.Request, *fasthttp.Response)) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	// A loopback Host, as a client on this machine sends: without a token
	// vmd refuses any other (guard.go).
	req.SetRequestURI("http://localhost" + path)
	if body != "" {
		req.SetBodyString(body)
		req.Header.SetContentType("application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
		if strings.EqualFold(header[i], "Host") {
			req.UseHostHeader = true // else the client sends the URI's
		}
	}
	if err := s.Client.DoTimeout(req, resp, 30*time.Second); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	see(req, resp)
	return nil
}

// fetch is roundTrip's answer as a response.
func (s *server) fetch(method, path, body string, header ...string) (response, error) {
	var r response
	err := s.roundTrip(method, path, body, header, func(_ *fasthttp.Request, resp *fasthttp.Response) {
		r = response{status: resp.StatusCode(), header: map[string]string{}, body: string(resp.Body())}
		for k, v := range resp.Header.All() {
			r.header[string(k)] = string(v)
		}
	})
	return r, err
}

// do sends one request from the test's goroutine.
func (s *server) do(t testing.TB, method, path, body string) response {
	t.Helper()
	return s.doWith(t, method, path, body)
}

// doWith is do with request headers (name, value pairs).
func (s *server) doWith(t testing.TB, method, path, body string, header ...string) response {
	t.Helper()
	r, err := s.fetch(method, path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// raw sends bytes as they are, for requests a client library would refuse
// to write, and reads one response.
func (s *server) raw(t *testing.T, request string) response {
	t.Helper()
	c, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("reading the response to %q: %v", request, err)
	}
	return response{status: resp.StatusCode(), body: string(resp.Body())}
}

const badRequestBody = `{"error":"bad_request","message":"Request body must include a non-empty 'text' field"}` + "\n"

func TestBadCommandBodies(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	for _, body := range []string{
		``, `{}`, `{"text":""}`, `{"text":"   \n\t"}`, `{"text":5}`, `{"text":null}`,
		`{"text":["a"]}`, `{"text":{"a":1}}`, `{"text":true}`, `[]`, `["text"]`, `"text"`, `null`, `42`,
		`{bad json`, `{"text":"a"} trailing`, `{"TEXT":"a"}`, `{"text":"a",}`,
	} {
		t.Run(body, func(t *testing.T) {
			got := s.do(t, "POST", "/command", body)
			if got.status != 400 || got.body != badRequestBody || got.header["Content-Type"] != "application/json" {
				t.Errorf("POST /command %q = %d %s %q; want 400 %s", body, got.status, got.header["Content-Type"], got.body, badRequestBody)
			}
		})
	}
}

// uuid stands for a session id in wanted bodies.
const uuid = "<uuid>"

// fieldsOf decodes a JSON body, checks durationMs is a number and takes it
// out, and replaces a session id that is a UUID with uuid.
func fieldsOf(t *testing.T, body string) map[string]any {
	t.Helper()
	var fields map[string]any
	if err := json.Unmarshal([]byte(body), &fields); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if _, ok := fields["durationMs"].(float64); !ok {
		t.Errorf("durationMs = %v in %s; want a number", fields["durationMs"], body)
	}
	delete(fields, "durationMs")
	if id, ok := fields["sessionId"].(string); ok && httpapi.SessionIDPattern.MatchString(id) {
		fields["sessionId"] = uuid
	}
	return fields
}

// agentFields are what the fake CLI reports about a run.
var agentFields = map[string]any{"sessionId": uuid, "costUsd": 0.0123, "numTurns": 1.0,
	"usage": map[string]any{"input_tokens": 10.0, "output_tokens": 5.0}, "warnings": []any{}, "warm": false}

func with(m map[string]any, more map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

func TestCommandOutcomes(t *testing.T) {
	t.Parallel()
	// Only the timeout case has a short timeout, its own: a short one for
	// all would time out the others on a loaded machine.
	s := serve(t, setup{maxOut: 1000})
	failed := map[string]any{"error": "execution_error", "images": []any{}, "sessionId": uuid, "warnings": []any{}, "warm": false}
	tests := []struct {
		name   string
		s      *server
		prompt string
		status int
		want   map[string]any // fields of the JSON body; durationMs is checked apart
	}{
		{"answer", s, "What is 2+2?", 200, with(agentFields, map[string]any{"text": "echo: What is 2+2?\n", "images": []any{}, "exitCode": 0.0})},
		{"html kept readable", s, "say <b>&</b>", 200, with(agentFields, map[string]any{"text": "<b>&</b>\n", "images": []any{}, "exitCode": 0.0})},
		{"image", s, "image shot.png\nimage my shot.jpg\nsay ok", 200, with(agentFields, map[string]any{"text": "ok\n",
			"images": []any{"/images/shot.png", "/images/my%20shot.jpg"}, "exitCode": 0.0})},
		{"truncated", s, "bytes 5000", 200, with(agentFields, map[string]any{"text": strings.Repeat("x", 1000), "images": []any{},
			"exitCode": 0.0, "truncated": true})},
		{"answer over several messages", s, "say one\nsleep 1ms\nsay two", 200, with(agentFields,
			map[string]any{"text": "one\ntwo\n", "images": []any{}, "exitCode": 0.0, "numTurns": 2.0})},
		{"MCP server failed", s, "mcp-failed browser\nsay ok", 200, with(agentFields, map[string]any{"text": "ok\n", "images": []any{},
			"exitCode": 0.0, "warnings": []any{`MCP server "browser" failed to start; its tools are not available`}})},
		{"lines that are not JSON are kept, not fatal", s, "raw not json\nraw {broken\nsay ok", 200, with(agentFields,
			map[string]any{"text": "ok\n", "images": []any{}, "exitCode": 0.0})},
		{"API error, exit 1", s, "agent-error API Error: 401 invalid x-api-key", 502, with(agentFields, map[string]any{"error": "agent_error",
			"message": "API Error: 401 invalid x-api-key", "images": []any{}, "exitCode": 1.0})},
		// Answered at the result line, before the CLI exits: the exit
		// code is the one the CLI gives an error result, whatever it
		// exits with after.
		{"API error, exit 0", s, "agent-error API Error: Overloaded\nstatus 0", 502, with(agentFields, map[string]any{"error": "agent_error",
			"message": "API Error: Overloaded", "images": []any{}, "exitCode": 1.0})},
		{"crash with stderr", s, "say out\nerr first\nerr boom\nexit 3", 500, with(failed, map[string]any{
			"message": "first\nboom", "exitCode": 3.0, "text": "out\n"})},
		{"killed", s, "die KILL", 500, with(failed, map[string]any{
			"message": "claude was killed by SIGKILL", "exitCode": nil, "signal": "SIGKILL", "text": ""})},
		{"silent failure", s, "exit 4", 500, with(failed, map[string]any{
			"message": "claude exited with status 4", "exitCode": 4.0, "text": ""})},
		{"timeout", s, "image early.png\nsay partial\nsleep 1h", 408, map[string]any{"error": "timeout", "sessionId": uuid, "warnings": []any{}, "warm": false,
			"message": "Command timed out after 500ms", "text": "partial\n", "images": []any{"/images/early.png"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := map[string]any{"text": tt.prompt}
			if tt.status == 408 {
				fields["timeoutMs"] = 500
			}
			body, _ := json.Marshal(fields)
			got := tt.s.do(t, "POST", "/command", string(body))
			if fields := fieldsOf(t, got.body); got.status != tt.status || fmt.Sprint(fields) != fmt.Sprint(tt.want) {
				t.Errorf("POST /command %q = %d %v; want %d %v", tt.prompt, got.status, fields, tt.status, tt.want)
			}
		})
	}
}

// A CLI that does not speak stream-json still works: its output is the
// answer, and what it cannot tell is null. (A second server, not beside the
// first: one process, one supervisor, or they reap each other's children.)
func TestPlainCLI(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{plain: true})
	tests := []struct {
		prompt string
		status int
		want   map[string]any
	}{
		{"say hi", 200, map[string]any{"text": "hi\n", "images": []any{}, "exitCode": 0.0,
			"sessionId": nil, "costUsd": nil, "numTurns": nil, "usage": nil, "warnings": []any{}, "warm": false}},
		{"say API Error: 401 invalid x-api-key\nexit 1", 500, map[string]any{"error": "execution_error",
			"message": "API Error: 401 invalid x-api-key", "exitCode": 1.0, "text": "API Error: 401 invalid x-api-key\n",
			"images": []any{}, "sessionId": nil, "warnings": []any{}, "warm": false}},
	}
	for _, tt := range tests {
		body, _ := json.Marshal(map[string]string{"text": tt.prompt})
		got := s.do(t, "POST", "/command", string(body))
		if fields := fieldsOf(t, got.body); got.status != tt.status || fmt.Sprint(fields) != fmt.Sprint(tt.want) {
			t.Errorf("POST /command %q = %d %v; want %d %v", tt.prompt, got.status, fields, tt.status, tt.want)
		}
	}
}

func TestStartFailure(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{bin: filepath.Join(t.TempDir(), "missing-claude")})
	got := s.do(t, "POST", "/command", `{"text":"hi"}`)
	var body map[string]any
	json.Unmarshal([]byte(got.body), &body)
	if got.status != 500 || body["error"] != "execution_error" || body["exitCode"] != nil ||
		!strings.Contains(fmt.Sprint(body["message"]), "missing-claude") {
		t.Errorf("command with a missing claude = %d %s; want 500 execution_error, exitCode null, naming the binary", got.status, got.body)
	}
	if _, ok := body["exitCode"]; !ok {
		t.Errorf("exitCode missing from %s; want it present as null", got.body)
	}
	// The daemon keeps serving.
	if got := s.do(t, "GET", "/health", ""); got.status != 200 {
		t.Errorf("GET /health after a failed start = %d", got.status)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	tests := []struct {
		method, path string
		status       int
		allow        string
		body         string
	}{
		{"GET", "/health", 200, "", `{"status":"ok"}` + "\n"},
		{"GET", "/health?probe=1", 200, "", `{"status":"ok"}` + "\n"},
		{"HEAD", "/health", 200, "", ""},
		{"POST", "/health", 405, "GET, HEAD", `{"error":"method_not_allowed","message":"Method POST is not allowed here; use GET, HEAD"}` + "\n"},
		{"GET", "/command", 405, "POST, DELETE", `{"error":"method_not_allowed","message":"Method GET is not allowed here; use POST, DELETE"}` + "\n"},
		{"PUT", "/command", 405, "POST, DELETE", `{"error":"method_not_allowed","message":"Method PUT is not allowed here; use POST, DELETE"}` + "\n"},
		{"DELETE", "/command", 404, "", `{"error":"not_running","message":"No command is running"}` + "\n"},
		{"POST", "/status", 405, "GET, HEAD", `{"error":"method_not_allowed","message":"Method POST is not allowed here; use GET, HEAD"}` + "\n"},
		{"DELETE", "/images/a.png", 405, "GET, HEAD", `{"error":"method_not_allowed","message":"Method DELETE is not allowed here; use GET, HEAD"}` + "\n"},
		{"GET", "/", 404, "", `{"error":"not_found","message":"No route for GET /"}` + "\n"},
		{"GET", "/health/", 404, "", `{"error":"not_found","message":"No route for GET /health/"}` + "\n"},
		{"GET", "/images", 404, "", `{"error":"not_found","message":"No route for GET /images"}` + "\n"},
		{"GET", "/x/../health", 404, "", `{"error":"not_found","message":"No route for GET /x/../health"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			got := s.do(t, tt.method, tt.path, "")
			if got.status != tt.status || got.header["Allow"] != tt.allow || got.body != tt.body {
				t.Errorf("%s %s = %d Allow %q %q; want %d Allow %q %q", tt.method, tt.path,
					got.status, got.header["Allow"], got.body, tt.status, tt.allow, tt.body)
			}
			if tt.status != 200 && got.header["Content-Type"] != "application/json" {
				t.Errorf("%s %s Content-Type = %q; want application/json", tt.method, tt.path, got.header["Content-Type"])
			}
		})
	}
}

func TestPayloadTooLarge(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{maxBody: 4096})
	// Sent raw, headers only: vmd answers from the Content-Length, and a
	// client still writing the body could see the connection close first.
	got := s.raw(t, "POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n")
	if got.status != 413 || got.body != `{"error":"payload_too_large","message":"Request body exceeds 4096 bytes"}`+"\n" {
		t.Errorf("POST /command with 5 KB = %d %q; want 413 payload_too_large", got.status, got.body)
	}
	// Just under the limit is a command like any other.
	body := `{"text":"` + strings.Repeat("a", 4000) + `"}`
	if got := s.do(t, "POST", "/command", body); got.status != 200 {
		t.Errorf("POST /command with 4 KB = %d %q; want 200", got.status, got.body)
	}
}

func TestMalformedHTTPIsJSON(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	got := s.raw(t, "GARBAGE\r\n\r\n")
	if got.status != 400 || !strings.Contains(got.body, `"error":"bad_request"`) {
		t.Errorf("malformed request = %d %q; want 400 JSON", got.status, got.body)
	}
}

func TestImages(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(s.ImagesDir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("shot.png", "PNGDATA")
	write("photo.JPG", "JPEGDATA")
	write("with space.webp", "WEBP")
	secret := filepath.Join(t.TempDir(), "secret.png")
	os.WriteFile(secret, []byte("secret"), 0o644)
	os.Symlink(secret, filepath.Join(s.ImagesDir, "link.png"))
	os.Mkdir(filepath.Join(s.ImagesDir, "dir.png"), 0o755)
	syscall.Mkfifo(filepath.Join(s.ImagesDir, "fifo.png"), 0o644)

	t.Run("served", func(t *testing.T) {
		for _, tt := range []struct{ path, ctype, body string }{
			{"/images/shot.png", "image/png", "PNGDATA"},
			{"/images/photo.JPG", "image/jpeg", "JPEGDATA"},
			{"/images/with%20space.webp", "image/webp", "WEBP"},
		} {
			got := s.do(t, "GET", tt.path, "")
			if got.status != 200 || got.header["Content-Type"] != tt.ctype || got.body != tt.body {
				t.Errorf("GET %s = %d %q %q; want 200 %q %q", tt.path, got.status, got.header["Content-Type"], got.body, tt.ctype, tt.body)
			}
		}
		if got := s.do(t, "HEAD", "/images/shot.png", ""); got.status != 200 || got.header["Content-Length"] != "7" {
			t.Errorf("HEAD /images/shot.png = %d length %q; want 200, 7", got.status, got.header["Content-Length"])
		}
	})
	t.Run("not found", func(t *testing.T) {
		for _, path := range []string{"/images/missing.png", "/images/link.png", "/images/dir.png", "/images/fifo.png"} {
			got := s.do(t, "GET", path, "")
			if got.status != 404 || !strings.HasPrefix(got.body, `{"error":"not_found"`) {
				t.Errorf("GET %s = %d %q; want 404 not_found", path, got.status, got.body)
			}
		}
	})
	t.Run("escaping names", func(t *testing.T) {
		for _, path := range []string{
			"/images/..", "/images/../secret.png", "/images/%2e%2e", "/images/%2E%2E/secret.png",
			"/images/..%2fsecret.png", "/images/..%2Fsecret.png", "/images/a%2fb.png", "/images/a%5cb.png",
			"/images/a%00b.png", "/images/.", "/images/.hidden.png", "/images/%2ehidden.png", "/images/",
			"/images/sub/shot.png", "/images/%zz.png", "/images/a%0ab.png",
		} {
			got := s.do(t, "GET", path, "")
			if got.status != 400 || got.body != `{"error":"bad_request","message":"Invalid image name"}`+"\n" {
				t.Errorf("GET %s = %d %q; want 400 invalid image name", path, got.status, got.body)
			}
		}
		for _, req := range []string{
			"GET /images/..\\secret.png HTTP/1.1\r\nHost: localhost\r\n\r\n",
			"GET /images/a\\b.png HTTP/1.1\r\nHost: localhost\r\n\r\n",
		} {
			if got := s.raw(t, req); got.status != 400 {
				t.Errorf("%q = %d %q; want 400", req, got.status, got.body)
			}
		}
	})
}

func TestBusy(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	first := make(chan response, 1)
	go func() {
		// Not s.do: it may call t.Fatal, which is for the test's goroutine.
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.Header.SetMethod("POST")
		req.SetRequestURI("http://localhost/command")
		req.SetBodyString(`{"text":"sleep 2s\nsay first"}`)
		req.Header.SetContentType("application/json")
		err := s.Client.Do(req, resp)
		r := response{status: resp.StatusCode(), body: string(resp.Body())}
		if err != nil {
			r.body = err.Error()
		}
		first <- r
	}()
	vmdtest.Eventually(t, "the first command to run", s.Commands.Busy)
	got := s.do(t, "POST", "/command", `{"text":"say second"}`)
	if got.status != 409 || got.body != `{"error":"busy","message":"A command is already in progress"}`+"\n" {
		t.Errorf("second command = %d %q; want 409 busy", got.status, got.body)
	}
	if got := s.do(t, "GET", "/health", ""); got.status != 200 {
		t.Errorf("GET /health while busy = %d; want 200", got.status)
	}
	if r := <-first; r.status != 200 || !strings.Contains(r.body, `"text":"first\n"`) {
		t.Errorf("first command = %d %q; want 200 with its answer", r.status, r.body)
	}
}

func TestDrainRefusesNewCommands(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	// A command in flight holds the drain open: an idle vmd stops at once.
	running := s.background(t, `{"text":"say working\nsleep 1h"}`)
	s.running(t, "working")
	s.Commands.Drain(time.Now().Add(time.Hour))
	defer func() {
		s.Commands.Hurry()
		if r := <-running; r.status != 503 {
			t.Errorf("the command in flight = %d %s; want 503 drained", r.status, r.body)
		}
	}()
	got := s.do(t, "POST", "/command", `{"text":"hi"}`)
	if got.status != 503 || got.body != `{"error":"shutting_down","message":"vmd is shutting down"}`+"\n" {
		t.Errorf("command while draining = %d %q; want 503 shutting_down", got.status, got.body)
	}
	if got := s.do(t, "GET", "/health", ""); got.status != 200 {
		t.Errorf("GET /health while draining = %d; want 200", got.status)
	}
}

func TestLoopback(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{loopback: true})
	if got := s.do(t, "GET", "/health", ""); got.status != 200 {
		t.Errorf("GET /health over TCP = %d %q", got.status, got.body)
	}
	// Several commands on one keep-alive connection.
	for i := range 3 {
		got := s.do(t, "POST", "/command", fmt.Sprintf(`{"text":"say %d"}`, i))
		if got.status != 200 || !strings.Contains(got.body, fmt.Sprintf(`"text":"%d\n"`, i)) {
			t.Errorf("command %d over TCP = %d %q", i, got.status, got.body)
		}
	}
}

// A drain over before Serve has started (a signal during start-up, with no
// command) must still let Serve return.
func TestServeAfterDrain(t *testing.T) {
	t.Parallel()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := httpapi.New(httpapi.Deps{}, hclog.NewNullLogger(), httpapi.Options{MaxRequestBody: 1 << 20})
		stopped := make(chan struct{})
		close(stopped)
		done := make(chan error, 1)
		go func() { done <- a.Serve(ln, stopped) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve = %v", err)
			}
		case <-time.After(10 * time.Second):
			ln.Close()
			<-done
			t.Fatal("Serve did not return after the drain")
		}
	}
}

// eventOrder is the names of a stream's events, as vmd is designed to
// send them: an image comes right after its tool's result once the images
// watcher has caught up with the tool's writes, within a bounded wait; on
// a machine so loaded that the watcher misses it, vmd logs so and tells
// the image at the end, before the result. Then the image's place is not
// checked, only that it came, once, before the result.
func (s *server) eventOrder(names []string) string {
	if !s.Log.Logged("images watcher did not catch up; scanning instead") {
		return strings.Join(names, " ")
	}
	var out []string
	images := 0
	for _, n := range names {
		if n == "image" {
			images++
			continue
		}
		if n == "result" {
			out = append(out, strings.Repeat("image ", images)+"(late)")
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

// wantOrder is want as eventOrder gives it for s: with the image late
// when the watcher missed its wait.
func (s *server) wantOrder(want string) string {
	if !s.Log.Logged("images watcher did not catch up; scanning instead") {
		return want
	}
	return s.eventOrder(strings.Fields(want))
}
