// The contract test is left out of fuzzing builds (go test -tags fuzzing
// -fuzz ...): libopenapi, instrumented, made them take minutes to compile.

//go:build !fuzzing

package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi-validator/responses"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/httpapi"
)

// The OpenAPI document (openapi.json) against real answers: every route,
// every status it lists, over real HTTP from the real API over the fake CLI.
// Each answer is validated with pb33f/libopenapi-validator; then every
// (path, method, status) and every shared response the document lists must
// have been seen, so that it lists nothing the test does not check.

// contract is the document, a validator over it, and what has been seen.
type contract struct {
	model  *v3.Document
	v      validator.Validator
	schema schema_validation.SchemaValidator
	seen   map[string]bool // "METHOD /template status", or a components/responses name
}

func loadContract(t *testing.T) *contract {
	t.Helper()
	doc, err := libopenapi.NewDocument(httpapi.OpenAPI)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.GetSpecInfo().VersionNumeric != 3.1 {
		t.Fatalf("openapi.json is OpenAPI %s; want 3.1", doc.GetSpecInfo().Version)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("openapi.json: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("openapi.json is not a valid OpenAPI 3.1 document:\n%s", describe(errs))
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return &contract{model: &m.Model, v: v, schema: schema_validation.NewSchemaValidator(), seen: map[string]bool{}}
}

// describe lists validation errors, one a line; each names the schema
// failures under it.
func describe(errs []*liberrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\t%s\n", e.Error())
	}
	return b.String()
}

// exchange is one request and the answer to it, as net/http values made
// from what went over the wire.
type exchange struct {
	req  *http.Request
	resp *http.Response
	body []byte
}

// withBody is the exchange with another body (or headers): for answers
// the document must refuse.
func (ex *exchange) withBody(body string, drop ...string) *exchange {
	resp := *ex.resp
	resp.Header = ex.resp.Header.Clone()
	for _, h := range drop {
		resp.Header.Del(h)
	}
	resp.Body = io.NopCloser(strings.NewReader(body))
	resp.ContentLength = int64(len(body))
	return &exchange{req: ex.req, resp: &resp, body: []byte(body)}
}

func (ex *exchange) reset() {
	ex.resp.Body = io.NopCloser(bytes.NewReader(ex.body))
}

// must is send for the test's goroutine: an error ends the test.
func (s *server) must(t *testing.T, method, path, body string, header ...string) *exchange {
	t.Helper()
	ex, err := s.send(method, path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// send makes one request with the fasthttp client and returns it and its
// answer as net/http values. It does not call t.Fatal: it may run in a
// goroutine of its own.
func (s *server) send(method, path, body string, header ...string) (*exchange, error) {
	var ex *exchange
	var err error
	rerr := s.roundTrip(method, path, body, header, func(req *fasthttp.Request, resp *fasthttp.Response) {
		var hreq *http.Request
		hreq, err = http.NewRequest(method, "http://localhost:3001"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		for k, v := range req.Header.All() {
			hreq.Header.Add(string(k), string(v))
		}
		b := slices.Clone(resp.Body())
		hresp := &http.Response{StatusCode: resp.StatusCode(), Status: strconv.Itoa(resp.StatusCode()),
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Request: hreq,
			Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b))}
		for k, v := range resp.Header.All() {
			hresp.Header.Add(string(k), string(v))
		}
		ex = &exchange{req: hreq, resp: hresp, body: b}
	})
	if rerr != nil {
		return nil, rerr
	}
	return ex, err
}

// rawExchange writes raw to a new connection (hreq is what it says, for the
// validator) and reads the answer with net/http, to the end of the stream.
func (s *server) rawExchange(t *testing.T, hreq *http.Request, raw []byte) *exchange {
	t.Helper()
	c, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), hreq)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", hreq.Method, hreq.URL.Path, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", hreq.Method, hreq.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return &exchange{req: hreq, resp: resp, body: b}
}

// stream posts a command asking for an event stream, over a raw
// connection, the request written by net/http.
func (s *server) stream(t *testing.T, body string, header ...string) *exchange {
	t.Helper()
	hreq, _ := http.NewRequest("POST", "http://localhost:3001/command", strings.NewReader(body))
	hreq.Header.Set("Accept", "text/event-stream")
	hreq.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		hreq.Header.Set(header[i], header[i+1])
	}
	var raw bytes.Buffer
	if err := hreq.Write(&raw); err != nil {
		t.Fatal(err)
	}
	hreq.Body = io.NopCloser(strings.NewReader(body))
	return s.rawExchange(t, hreq, raw.Bytes())
}

// sseEvent is one event of a stream.
type sseEvent struct{ id, name, status, data string }

func parseEvents(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var evs []sseEvent
	for _, block := range strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n") {
		var ev sseEvent
		for _, line := range strings.Split(block, "\n") {
			k, v, ok := strings.Cut(line, ": ")
			switch {
			case !ok:
				t.Fatalf("line %q in the stream is not a field", line)
			case k == "":
				continue // a comment
			case k == "id":
				ev.id = v
			case k == "event":
				ev.name = v
			case k == "status":
				ev.status = v
			case k == "data":
				ev.data = v
			default:
				t.Fatalf("unknown field %q in the stream", k)
			}
		}
		if ev.name != "" {
			evs = append(evs, ev)
		}
	}
	return evs
}

// check validates a real answer against the document and counts its
// (method, path, status) as seen.
func (c *contract) check(t *testing.T, ex *exchange, status int) {
	t.Helper()
	defer ex.reset()
	if ex.resp.StatusCode != status {
		t.Errorf("%s %s = %d %s; want %d", ex.req.Method, ex.req.URL.RequestURI(), ex.resp.StatusCode, ex.body, status)
		return
	}
	_, errs, template := paths.FindPath(ex.req, c.model, nil)
	if len(errs) > 0 {
		t.Errorf("%s %s is not in the document:\n%s", ex.req.Method, ex.req.URL.RequestURI(), describe(errs))
		return
	}
	if ok, errs := c.v.ValidateHttpResponse(ex.req, ex.resp); !ok {
		t.Errorf("%s %s = %d %v %s; not as documented:\n%s", ex.req.Method, ex.req.URL.RequestURI(), ex.resp.StatusCode,
			ex.resp.Header, ex.body, describe(errs))
	}
	c.seen[fmt.Sprintf("%s %s %d", ex.req.Method, template, status)] = true
}

// checkShared validates an answer any route may give against the shared
// response of that name (components/responses), and counts it as seen.
func (c *contract) checkShared(t *testing.T, name string, ex *exchange, status int) {
	t.Helper()
	if ex.resp.StatusCode != status {
		t.Errorf("%s %s = %d %s; want %d", ex.req.Method, ex.req.URL.RequestURI(), ex.resp.StatusCode, ex.body, status)
		return
	}
	if problems := c.sharedProblems(name, ex); problems != "" {
		t.Errorf("%s %s = %d %v %s; not as %s documents:\n%s", ex.req.Method, ex.req.URL.RequestURI(), ex.resp.StatusCode,
			ex.resp.Header, ex.body, name, problems)
	}
	c.seen[name] = true
}

func (c *contract) sharedProblems(name string, ex *exchange) string {
	r := c.model.Components.Responses.GetOrZero(name)
	if r == nil {
		return "no response " + name + " in components/responses"
	}
	var problems strings.Builder
	if mt, ok := helpers.FindMediaType(r.Content, ex.resp.Header.Get("Content-Type")); !ok {
		fmt.Fprintf(&problems, "\tContent-Type %q is not documented\n", ex.resp.Header.Get("Content-Type"))
	} else if ok, errs := c.schema.ValidateSchemaBytes(mt.Schema.Schema(), ex.body); !ok {
		problems.WriteString(describe(errs))
	}
	if ok, errs := responses.ValidateResponseHeaders(ex.req, ex.resp, r.Headers, "", strconv.Itoa(ex.resp.StatusCode)); !ok {
		problems.WriteString(describe(errs))
	}
	return problems.String()
}

// commandSchema is the documented JSON body of POST /command's answer with
// this status: what an event stream's result event must hold.
func (c *contract) commandSchema(t *testing.T, status string) *base.Schema {
	t.Helper()
	r := c.model.Paths.PathItems.GetOrZero("/command").Post.Responses.FindResponseByCode(atoi(t, status))
	if r == nil {
		t.Fatalf("POST /command has no documented %s answer", status)
	}
	return r.Content.GetOrZero("application/json").Schema.Schema()
}

// eventSchemas are the documented data of the stream's events, by name
// (x-vmd-events of POST /command's text/event-stream answer).
func (c *contract) eventSchemas(t *testing.T) map[string]*base.Schema {
	t.Helper()
	mt := c.model.Paths.PathItems.GetOrZero("/command").Post.Responses.Codes.GetOrZero("200").Content.GetOrZero("text/event-stream")
	node := mt.Extensions.GetOrZero("x-vmd-events")
	var events map[string]any
	if node == nil || node.Decode(&events) != nil {
		t.Fatal("POST /command's text/event-stream has no x-vmd-events")
	}
	out := map[string]*base.Schema{}
	for name, v := range events {
		m, _ := v.(map[string]any)
		ref, _ := m["$ref"].(string)
		if ref == "" {
			continue // result: described, its schema is the status's
		}
		proxy := c.model.Components.Schemas.GetOrZero(strings.TrimPrefix(ref, "#/components/schemas/"))
		if proxy == nil {
			t.Fatalf("event %s: no schema %s", name, ref)
		}
		out[name] = proxy.Schema()
	}
	return out
}

// checkStream validates an event stream: its answer as documented, each
// event's data against its schema, and the result's data against the
// plain answer's schema for its status. It returns the events.
func (c *contract) checkStream(t *testing.T, ex *exchange, wantStatus string) []sseEvent {
	t.Helper()
	c.check(t, ex, 200)
	if ct := ex.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("stream Content-Type = %q; want text/event-stream", ct)
	}
	evs := parseEvents(t, ex.body)
	schemas := c.eventSchemas(t)
	for i, ev := range evs {
		var schema *base.Schema
		switch {
		case ev.name == "result":
			if i != len(evs)-1 {
				t.Errorf("result event %d of %d; want it last", i, len(evs))
			}
			if ev.status != wantStatus {
				t.Errorf("result status %s %s; want %s", ev.status, ev.data, wantStatus)
			}
			schema = c.commandSchema(t, ev.status)
			c.seen["event result "+ev.status] = true
		case schemas[ev.name] != nil:
			schema = schemas[ev.name]
			c.seen["event "+ev.name] = true
		default:
			t.Errorf("event %q is not documented", ev.name)
			continue
		}
		if ok, errs := c.schema.ValidateSchemaString(schema, ev.data); !ok {
			t.Errorf("event %s %s: not as documented:\n%s", ev.name, ev.data, describe(errs))
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].name != "result" {
		t.Errorf("events %v; want a result last", evs)
	}
	return evs
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("status %q: %v", s, err)
	}
	return n
}

// wontSee are the shared responses no test here can provoke, and why.
var wontSee = map[string]string{
	"RequestTimeout": "the header timeout is 10 s: too slow for a unit test",
	"InternalError":  "needs an I/O failure (an unreadable image) that a test run as root cannot make",
}

func TestOpenAPI(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	auth := []string{"Authorization", "Bearer " + token}
	posting := []string{"Content-Type", "application/json", "Authorization", "Bearer " + token}
	// A command running in the background, its answer on the channel.
	background := func(t *testing.T, s *server, body string) <-chan *exchange {
		t.Helper()
		got := make(chan *exchange, 1)
		go func() {
			ex, err := s.send("POST", "/command", body, posting...)
			if err != nil {
				ex = &exchange{body: []byte(err.Error())}
			}
			got <- ex
		}()
		s.waitRunning(t)
		return got
	}
	waitAnswer := func(t *testing.T, got <-chan *exchange) *exchange {
		t.Helper()
		ex := <-got
		if ex.resp == nil {
			t.Fatalf("background command: %s", ex.body)
		}
		return ex
	}
	// A request the schema of POST /command's body must take exactly when
	// vmd takes it.
	checkRequest := func(t *testing.T, ex *exchange) {
		t.Helper()
		body, _ := io.ReadAll(ex.req.Body)
		ex.req.Body = io.NopCloser(bytes.NewReader(body))
		ok, errs := c.v.ValidateHttpRequest(ex.req)
		ex.req.Body = io.NopCloser(bytes.NewReader(body))
		if refused := ex.resp.StatusCode == 400; ok == refused {
			t.Errorf("POST /command %s = %d, but the document's request schema says valid %v:\n%s", body, ex.resp.StatusCode, ok, describe(errs))
		}
	}

	var answer, status *exchange // real answers, spoilt below
	var stream []sseEvent
	t.Run("running", func(t *testing.T) {
		mcp := filepath.Join(t.TempDir(), "mcp.json")
		os.WriteFile(mcp, []byte(`{"mcpServers":{}}`), 0o644)
		s := serve(t, setup{loopback: true, token: token, maxBody: 4096, maxOut: 1000, mcp: mcp})
		if err := os.WriteFile(filepath.Join(s.ImagesDir, "shot.png"), []byte("PNG"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"GET", "HEAD"} {
			c.check(t, s.must(t, m, "/health", ""), 200)
			c.check(t, s.must(t, m, "/status", "", auth...), 200)
			c.check(t, s.must(t, m, "/ready", "", auth...), 200)
			c.check(t, s.must(t, m, "/metrics", "", auth...), 200)
			c.check(t, s.must(t, m, "/openapi.json", "", auth...), 200)
			c.check(t, s.must(t, m, "/images/shot.png", "", auth...), 200)
			c.check(t, s.must(t, m, "/images/%2e%2e", "", auth...), 400)
			c.check(t, s.must(t, m, "/images/.hidden.png", "", auth...), 400)
			c.check(t, s.must(t, m, "/images/missing.png", "", auth...), 404)
		}
		if ex := s.must(t, "GET", "/openapi.json", "", auth...); !bytes.Equal(ex.body, httpapi.OpenAPI) ||
			ex.resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET /openapi.json = %s %.40q...; want application/json, openapi.json", ex.resp.Header.Get("Content-Type"), ex.body)
		}
		if ex := s.must(t, "GET", "/metrics", "", auth...); !strings.Contains(string(ex.body), `vmd_http_requests_total{code="200",handler="openapi"}`) {
			t.Errorf("GET /metrics does not count GET /openapi.json under handler openapi:\n%s", ex.body)
		}

		// Commands, one per documented outcome.
		for _, tt := range []struct {
			name, body string
			status     int
		}{
			{"answer", `{"text":"image shot2.png\nsay hi"}`, 200},
			{"truncated", `{"text":"bytes 5000"}`, 200},
			{"a warning", `{"text":"mcp-failed browser\nsay ok","sessionId":null,"timeoutMs":null}`, 200},
			{"no body", ``, 400},
			{"blank text", `{"text":" \n\t"}`, 400},
			{"text not a string", `{"text":5}`, 400},
			{"sessionId not a UUID", `{"text":"hi","sessionId":"../etc"}`, 400},
			{"timeoutMs zero", `{"text":"hi","timeoutMs":0}`, 400},
			{"timeoutMs a string", `{"text":"hi","timeoutMs":"300"}`, 400},
			{"unknown session", `{"text":"hi","sessionId":"0b6a2f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"}`, 404},
			{"timeout", `{"text":"image early.png\nsay partial\nsleep 1h","timeoutMs":300}`, 408},
			{"crash", `{"text":"say out\nerr boom\nexit 3"}`, 500},
			{"killed", `{"text":"die KILL"}`, 500},
			{"agent error", `{"text":"agent-error API Error: 401 invalid x-api-key"}`, 502},
		} {
			t.Run(tt.name, func(t *testing.T) {
				ex := s.must(t, "POST", "/command", tt.body, posting...)
				c.check(t, ex, tt.status)
				checkRequest(t, ex)
				if tt.name == "answer" {
					answer = ex
				}
			})
		}
		// 413, sent raw: headers only, vmd answers from the Content-Length.
		big, _ := http.NewRequest("POST", "http://localhost:3001/command", nil)
		big.Header.Set("Authorization", "Bearer "+token)
		ex := s.rawExchange(t, big, []byte("POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer "+token+"\r\nContent-Length: 5000\r\n\r\n"))
		c.check(t, ex, 413)
		c.checkShared(t, "PayloadTooLarge", ex, 413)

		// Busy, cancelled, status while busy.
		running := background(t, s, `{"text":"say working\nsleep 1h"}`)
		c.check(t, s.must(t, "POST", "/command", `{"text":"say second"}`, posting...), 409)
		for _, m := range []string{"GET", "HEAD"} {
			c.check(t, s.must(t, m, "/status", "", auth...), 200)
		}
		status = s.must(t, "GET", "/status", "", auth...)
		if !strings.Contains(string(status.body), `"state":"busy"`) {
			t.Errorf("GET /status while a command runs = %s; want busy", status.body)
		}
		c.check(t, s.must(t, "DELETE", "/command", "", auth...), 200)
		c.check(t, waitAnswer(t, running), 499)
		c.check(t, s.must(t, "DELETE", "/command", "", auth...), 404)

		// Event streams: the answer and the result of each kind of end.
		t.Run("stream", func(t *testing.T) {
			ex := s.stream(t, `{"text":"say looking\nscreenshot page.png\nsay done"}`, auth...)
			stream = c.checkStream(t, ex, "200")
			var names []string
			for _, ev := range stream {
				names = append(names, ev.name)
			}
			if got, want := s.eventOrder(names), s.wantOrder("start message message image message result"); got != want {
				t.Errorf("events %s; want start, messages, an image and the result", got)
			}
			for _, tt := range []struct{ body, status string }{
				{`{"text":"say partial\nsleep 1h","timeoutMs":300}`, "408"},
				{`{"text":"die KILL"}`, "500"},
				{`{"text":"agent-error API Error: Overloaded"}`, "502"},
				{`{"text":"hi","sessionId":"0b6a2f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"}`, "404"},
			} {
				c.checkStream(t, s.stream(t, tt.body, auth...), tt.status)
			}
			// Refusals before any event are plain JSON answers.
			c.check(t, s.stream(t, `{"text":""}`, auth...), 400)

		})

		// Without the token, or with another: 401 on every secured
		// operation, and on routes that do not exist.
		for _, cred := range [][]string{nil, {"Authorization", "Bearer wrong"}} {
			for _, r := range []struct{ method, path string }{
				{"GET", "/status"}, {"HEAD", "/status"}, {"GET", "/ready"}, {"HEAD", "/ready"},
				{"GET", "/metrics"}, {"HEAD", "/metrics"}, {"GET", "/openapi.json"}, {"HEAD", "/openapi.json"},
				{"GET", "/images/shot.png"}, {"HEAD", "/images/shot.png"}, {"DELETE", "/command"},
			} {
				c.check(t, s.must(t, r.method, r.path, "", cred...), 401)
			}
			ex := s.must(t, "POST", "/command", `{"text":"say hi"}`, cred...)
			c.check(t, ex, 401)
			// A wrong token is one the document cannot tell from the right one.
			if ok, _ := c.v.ValidateHttpRequest(ex.req); ok && cred == nil {
				t.Errorf("POST /command with %v: the document's security takes it; vmd answers 401", cred)
			}
			c.checkShared(t, "Unauthorized", s.must(t, "GET", "/nowhere", "", cred...), 401)
		}

		// What any route may answer.
		for _, r := range []struct{ method, path string }{
			{"POST", "/health"}, {"PUT", "/health"}, {"GET", "/command"}, {"PATCH", "/command"}, {"POST", "/status"},
			{"POST", "/ready"}, {"POST", "/metrics"}, {"POST", "/openapi.json"}, {"DELETE", "/images/shot.png"},
		} {
			c.checkShared(t, "MethodNotAllowed", s.must(t, r.method, r.path, "", auth...), 405)
		}
		for _, path := range []string{"/", "/nowhere", "/health/", "/images", "/x/../health", "/openapi.yaml"} {
			c.checkShared(t, "RouteNotFound", s.must(t, "GET", path, "", auth...), 404)
		}
		garbage, _ := http.NewRequest("GARBAGE", "http://localhost:3001/", nil)
		c.checkShared(t, "MalformedRequest", s.rawExchange(t, garbage, []byte("GARBAGE\r\n\r\n")), 400)
		huge, _ := http.NewRequest("GET", "http://localhost:3001/status", nil)
		c.checkShared(t, "HeadersTooLarge", s.rawExchange(t, huge,
			[]byte("GET /status HTTP/1.1\r\nHost: localhost\r\nX-Big: "+strings.Repeat("a", 16<<10)+"\r\n\r\n")), 431)

		// What a web page could make a browser send, refused before the
		// token is looked at (issue 11): a foreign Origin, a body that is
		// not JSON, and, without a token, a foreign Host.
		c.checkShared(t, "Forbidden", s.must(t, "POST", "/command", `{"text":"say hi"}`,
			slices.Concat(posting, []string{"Origin", "https://evil.example"})...), 403)
		c.checkShared(t, "UnsupportedMediaType", s.must(t, "POST", "/command", `{"text":"say hi"}`,
			slices.Concat(auth, []string{"Content-Type", "text/plain"})...), 415)

		// The drain: new commands refused, /ready failing, and the command
		// that was running stopped with what it had.
		running = background(t, s, `{"text":"say partial\nsleep 1h"}`)
		// The partial text must be in before the kill: it is what the
		// drained answer must hold.
		s.running(t, "partial")
		s.Commands.Drain(time.Now().Add(time.Hour))
		c.check(t, s.must(t, "POST", "/command", `{"text":"say hi"}`, posting...), 503)
		c.check(t, s.must(t, "GET", "/ready", "", auth...), 503)
		c.check(t, s.must(t, "HEAD", "/ready", "", auth...), 503)
		c.check(t, s.must(t, "GET", "/status", "", auth...), 200)
		s.Commands.Hurry()
		ex = waitAnswer(t, running)
		c.check(t, ex, 503)
		if !strings.Contains(string(ex.body), `"text":"partial\n"`) {
			t.Errorf("drained command = %s; want its partial text", ex.body)
		}
	})

	// A reader too slow for its bound (here: no event fits) is told what it
	// missed. A stack of its own, once the one above has stopped: one
	// process has one reaper.
	t.Run("slow reader", func(t *testing.T) {
		s := serve(t, setup{loopback: true, token: token, subBytes: 1})
		evs := c.checkStream(t, s.stream(t, `{"text":"say a\nsay b"}`, auth...), "200")
		if len(evs) < 2 || evs[0].name != "dropped" {
			t.Errorf("events of a stream whose bound no event fits = %+v; want dropped events, then the result", evs)
		}
		for _, ev := range evs[:max(len(evs)-1, 0)] {
			if ev.name != "dropped" {
				t.Errorf("event %s in a stream whose bound no event fits; want only dropped events", ev.name)
			}
		}
	})

	t.Run("CLI cannot start", func(t *testing.T) {
		s := serve(t, setup{bin: filepath.Join(t.TempDir(), "missing-claude"), token: token})
		c.check(t, s.must(t, "POST", "/command", `{"text":"hi"}`, posting...), 500)
		ex := s.must(t, "GET", "/ready", "", auth...)
		c.check(t, ex, 503)
		if !strings.Contains(string(ex.body), `"failing":["claude"]`) {
			t.Errorf("GET /ready without a CLI = %s; want claude failing", ex.body)
		}
	})

	t.Run("disk low", func(t *testing.T) {
		// No filesystem has an exbibyte free: commands are refused, with
		// or without a stream asked for, and /ready says why.
		s := serve(t, setup{token: token, minFree: 1 << 60})
		ex := s.must(t, "POST", "/command", `{"text":"say hi"}`, posting...)
		c.check(t, ex, 507)
		if !strings.Contains(string(ex.body), "low disk space on the workspace") {
			t.Errorf("POST /command with the disk low = %s; want the filesystem named", ex.body)
		}
		c.check(t, s.stream(t, `{"text":"say hi"}`, auth...), 507)
		ex = s.must(t, "GET", "/ready", "", auth...)
		c.check(t, ex, 503)
		if !strings.Contains(string(ex.body), `"failing":["disk"]`) {
			t.Errorf("GET /ready with the disk low = %s; want disk failing", ex.body)
		}
		c.check(t, s.must(t, "GET", "/status", "", auth...), 200)
	})

	t.Run("CLI without stream-json", func(t *testing.T) {
		// What the CLI cannot tell is null.
		s := serve(t, setup{plain: true, token: token})
		ex := s.must(t, "POST", "/command", `{"text":"say hi"}`, posting...)
		c.check(t, ex, 200)
		if !strings.Contains(string(ex.body), `"sessionId":null,"costUsd":null,"numTurns":null,"usage":null`) {
			t.Errorf("answer of a plain CLI = %s; want nulls", ex.body)
		}
	})

	t.Run("durable commands", func(t *testing.T) { checkDurable(t, c) })

	// The converse: the document lists nothing the test has not seen.
	// Without a token (so the Host is checked), and with a stall timeout.
	t.Run("no token, stall watchdog", func(t *testing.T) {
		s := serve(t, setup{stall: 300 * time.Millisecond})
		c.checkShared(t, "Forbidden", s.must(t, "GET", "/status", "", "Host", "evil.example"), 403)
		// A CLI that stalls: 504 with the text so far and the session.
		c.check(t, s.must(t, "POST", "/command", `{"text":"say partial\nsleep 1h"}`), 504)
	})

	t.Run("everything documented was seen", func(t *testing.T) {
		for path, item := range c.model.Paths.PathItems.FromOldest() {
			for method, op := range item.GetOperations().FromOldest() {
				for code := range op.Responses.Codes.KeysFromOldest() {
					key := fmt.Sprintf("%s %s %s", strings.ToUpper(method), path, code)
					if !c.seen[key] {
						t.Errorf("%s is documented but no test saw it", key)
					}
				}
			}
		}
		for name := range c.model.Components.Responses.KeysFromOldest() {
			if why, ok := wontSee[name]; ok {
				if c.seen[name] {
					t.Errorf("%s was seen: take it out of wontSee", name)
				}
				t.Logf("%s not checked: %s", name, why)
				continue
			}
			if !c.seen[name] {
				t.Errorf("components/responses/%s is documented but no test saw it", name)
			}
		}
		for name := range c.eventSchemas(t) {
			if !c.seen["event "+name] {
				t.Errorf("event %s is documented but no test saw it", name)
			}
		}
		for _, code := range []string{"200", "404", "408", "500", "502"} {
			if !c.seen["event result "+code] {
				t.Errorf("no result event with status %s was checked", code)
			}
		}
	})

	// The check can fail: real answers, spoilt, are refused.
	t.Run("wrong answers fail", func(t *testing.T) {
		if answer == nil || status == nil || len(stream) == 0 {
			t.Skip("no real answers to spoil")
		}
		// spoil is a real answer with its body edited.
		spoil := func(ex *exchange, edit func(m map[string]any)) *exchange {
			t.Helper()
			var m map[string]any
			if err := json.Unmarshal(ex.body, &m); err != nil {
				t.Fatal(err)
			}
			edit(m)
			b, _ := json.Marshal(m)
			return ex.withBody(string(b))
		}
		for _, tt := range []struct {
			name string
			ex   *exchange
			ok   bool
		}{
			{"the real answer", answer.withBody(string(answer.body)), true},
			{"usage is the CLI's own, open", spoil(answer, func(m map[string]any) { m["usage"] = map[string]any{"new_kind": 1} }), true},
			{"a field missing", spoil(answer, func(m map[string]any) { delete(m, "exitCode") }), false},
			{"a field more", spoil(answer, func(m map[string]any) { m["model"] = "x" }), false},
			{"null where not nullable", spoil(answer, func(m map[string]any) { m["text"] = nil }), false},
			{"a session id not a UUID", spoil(answer, func(m map[string]any) { m["sessionId"] = "abc" }), false},
			{"truncated false", spoil(answer, func(m map[string]any) { m["truncated"] = false }), false},
			{"no X-Request-Id", answer.withBody(string(answer.body), "X-Request-Id"), false},
			{"not JSON", answer.withBody("<html>"), false},
			{"the real busy status", status.withBody(string(status.body)), true},
			{"busy without its command", spoil(status, func(m map[string]any) { m["command"] = nil }), false},
			{"idle with a command", spoil(status, func(m map[string]any) { m["state"], m["busy"] = "idle", false }), false},
			{"an outcome missing", spoil(status, func(m map[string]any) { delete(m["commands"].(map[string]any), "ok") }), false},
		} {
			ok, errs := c.v.ValidateHttpResponse(tt.ex.req, tt.ex.resp)
			if ok != tt.ok {
				t.Errorf("%s: valid = %v; want %v (%s)\n%s", tt.name, ok, tt.ok, tt.ex.body, describe(errs))
			}
		}
		// An undocumented status.
		teapot := answer.withBody(`{"error":"teapot","message":"no"}`)
		teapot.resp.StatusCode = 418
		if ok, _ := c.v.ValidateHttpResponse(teapot.req, teapot.resp); ok {
			t.Error("a 418 from POST /command validates; want it refused")
		}
		// A shared response without its header.
		s405 := answer.withBody(`{"error":"method_not_allowed","message":"no"}`)
		s405.resp.StatusCode = 405
		if c.sharedProblems("MethodNotAllowed", s405) == "" {
			t.Error("a 405 without Allow validates; want it refused")
		}
		// Events with the wrong data.
		schemas := c.eventSchemas(t)
		for _, tt := range []struct{ name, data string }{
			{"start", `{"pid":"1","sessionId":null}`},
			{"message", `{"text":"hi"}`},
			{"image", `{"name":"a.png","url":"/elsewhere/a.png"}`},
		} {
			if ok, _ := c.schema.ValidateSchemaString(schemas[tt.name], tt.data); ok {
				t.Errorf("%s event %s validates; want it refused", tt.name, tt.data)
			}
		}
		last := stream[len(stream)-1]
		if ok, _ := c.schema.ValidateSchemaString(c.commandSchema(t, "200"), strings.Replace(last.data, `"images":`, `"pictures":`, 1)); ok {
			t.Errorf("a result with a field renamed validates; want it refused")
		}
	})
}
