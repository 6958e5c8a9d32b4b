// Package fakeapi is a fake Anthropic API for tests that run the real Claude
// Code CLI: an HTTP server on loopback speaking enough of the Messages API
// (streaming and not) for the unmodified CLI, pointed at it with
// ANTHROPIC_BASE_URL. What it answers is scripted by the prompt, the last
// thing the user typed (the CLI wraps it in system reminders and tool
// results; those are skipped):
//
//	... 2+2 ...                 answers "4"
//	Take a screenshot of URL    calls mcp__playwright__browser_navigate to URL,
//	                            then, given its result,
//	                            mcp__playwright__browser_take_screenshot, then
//	                            answers "Screenshot taken of URL" (or, if a
//	                            tool failed, "Tool failed: ...")
//	Open URL and stall          calls browser_navigate to URL, then, given
//	                            its result, stalls (Chromium is up)
//	Run in Bash: COMMAND        calls the CLI's Bash tool with COMMAND (the
//	                            rest of the prompt, lines included), then
//	                            answers "Bash said: OUTPUT" with the tool's
//	                            result (or "Tool failed: ..." if it failed)
//	What page is open?          calls mcp__playwright__browser_snapshot (no
//	                            navigation), then answers "Open page: URL"
//	                            with the first URL its result names, or
//	                            "No page open"
//	What did I ask before?      answers "You asked: PROMPT" with the user
//	                            prompt before this one in the conversation
//	                            (as sent again by the CLI on --resume)
//	Stall                       holds the response open until the client
//	                            gives up or the server closes
//	Fail with 401|500|529       answers with that status and the API's error
//	                            JSON (authentication_error, api_error,
//	                            overloaded_error)
//
// Anything else is answered "Unscripted: PROMPT". The server keeps no state
// between requests but its record: where a script is is read from the
// conversation the CLI sends each time, as the real API does.
//
// Besides POST /v1/messages (streamed as server-sent events when the
// request asks, as the CLI always does, else one JSON message) it answers
// POST /v1/messages/count_tokens and the CLI's HEAD /api/hello
// connectivity check (sent unless CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC
// is set). Any other route is answered 404, logged and recorded as not
// Known, so that a test can fail on a call of a newer CLI.
package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// The tools the screenshot script calls: Playwright MCP's, as the CLI names
// them for the server called "playwright" in the MCP config.
const (
	ToolNavigate   = "mcp__playwright__browser_navigate"
	ToolScreenshot = "mcp__playwright__browser_take_screenshot"
	ToolSnapshot   = "mcp__playwright__browser_snapshot"
	// ToolBash is the CLI's own tool that runs a shell command.
	ToolBash = "Bash"
)

// bashPrefix starts a prompt that runs the rest in the Bash tool.
const bashPrefix = "run in bash:"

// Server is a running fake API. Its methods are safe for concurrent use.
type Server struct {
	srv     *httptest.Server
	logf    func(format string, args ...any)
	closing chan struct{}
	stalled chan struct{} // receives (without blocking) each time a response stalls
	once    sync.Once
	ids     atomic.Int64

	mu       sync.Mutex
	requests []Request
}

// Request is one request the server received.
type Request struct {
	Method string
	// Path is the URL path, without the query (the CLI adds ?beta=true).
	Path   string
	Query  string
	Header http.Header
	Body   []byte
	// Known is false for a route the fake does not implement (answered 404).
	Known bool
	// Messages is the decoded body of a POST /v1/messages, or nil.
	Messages *MessagesRequest
	// Prompt is the prompt a Messages request was scripted by.
	Prompt string
}

// MessagesRequest is the part of a Messages API request body the fake reads.
type MessagesRequest struct {
	Model    string    `json:"model"`
	Stream   bool      `json:"stream"`
	Messages []Message `json:"messages"`
	Tools    []struct {
		Name string `json:"name"`
	} `json:"tools"`
}

// Message is one message of a conversation. Content is a string or a list
// of blocks; Blocks returns it as blocks either way.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// Block is one content block.
type Block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
}

// Blocks returns the message's content as blocks: a string content is one
// text block.
func (m Message) Blocks() []Block {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return []Block{{Type: "text", Text: s}}
	}
	var bs []Block
	json.Unmarshal(m.Content, &bs)
	return bs
}

// ToolNames lists the names of the tools offered to the model.
func (r *MessagesRequest) ToolNames() []string {
	names := make([]string, len(r.Tools))
	for i, t := range r.Tools {
		names[i] = t.Name
	}
	return names
}

// Option configures a Server.
type Option func(*config)

type config struct {
	addr string
	logf func(format string, args ...any)
}

// WithAddr sets the address to listen on; the default is 127.0.0.1:0, a
// free port on loopback, which a container on the host's network (podman
// --network=host) reaches too.
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithLogf sets where the server logs each request, unknown routes
// included: t.Logf, say. The default logs nothing. logf must stay callable
// until Close returns.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(c *config) { c.logf = logf }
}

// New starts a fake API. Close it when done.
func New(opts ...Option) (*Server, error) {
	c := config{addr: "127.0.0.1:0", logf: func(string, ...any) {}}
	for _, o := range opts {
		o(&c)
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("fake API: %w", err)
	}
	s := &Server{logf: c.logf, closing: make(chan struct{}), stalled: make(chan struct{}, 1)}
	// httptest's server, for its Close: it waits for every handler.
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	return s, nil
}

// URL is the base URL to hand the CLI as ANTHROPIC_BASE_URL, like
// http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.srv.URL }

// Close ends stalled responses, closes every connection and waits for the
// handlers to return.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Stalled receives a value when a response has begun to stall. It holds
// at most one, unread values included: use a server for one stall.
func (s *Server) Stalled() <-chan struct{} { return s.stalled }

// Requests returns a copy of the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Reset forgets the requests received so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// ServeHTTP answers one request of the CLI.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Known: true}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
	}()

	switch {
	case r.URL.Path == "/api/hello":
		// The CLI's connectivity check, a HEAD before the first call.
		s.logf("fake API: %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages/count_tokens":
		s.logf("fake API: %s %s", r.Method, r.URL.Path)
		writeJSON(w, http.StatusOK, map[string]any{"input_tokens": len(body) / 4})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages":
		var req MessagesRequest
		if err := json.Unmarshal(body, &req); err != nil {
			s.logf("fake API: %s %s: bad body: %v", r.Method, r.URL.Path, err)
			apiError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
			return
		}
		p, results := prompt(req.Messages)
		rec.Messages, rec.Prompt = &req, p
		s.logf("fake API: %s %s stream=%v tools=%d tool_results=%d prompt=%q", r.Method, r.URL.Path, req.Stream, len(req.Tools), len(results), p)
		s.messages(w, r, &req, p, results)
	default:
		rec.Known = false
		s.logf("fake API: unknown route %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
		apiError(w, http.StatusNotFound, "not_found_error", "fake API: no route for "+r.Method+" "+r.URL.Path)
	}
}

var (
	urlRE    = regexp.MustCompile(`https?://[^\s"'<>]+`)
	statusRE = regexp.MustCompile(`(?i)\bfail with (\d{3})\b`)
)

// messages answers POST /v1/messages according to the script the prompt p
// names, at the step the tool results sent since p say.
func (s *Server) messages(w http.ResponseWriter, r *http.Request, req *MessagesRequest, p string, results []Block) {
	lower := strings.ToLower(p)
	url := urlRE.FindString(p)
	switch {
	case statusRE.MatchString(p):
		code := statusRE.FindStringSubmatch(p)[1]
		switch code {
		case "401":
			apiError(w, 401, "authentication_error", "invalid x-api-key")
		case "529":
			apiError(w, 529, "overloaded_error", "Overloaded")
		default:
			apiError(w, 500, "api_error", "Internal server error")
		}
	case strings.HasPrefix(lower, bashPrefix):
		switch {
		case len(results) == 0:
			cmd := strings.TrimSpace(p[len(bashPrefix):])
			s.reply(w, req, s.toolUse(ToolBash, map[string]any{"command": cmd, "description": "Run the command asked for"}))
		case failed(results) != "":
			s.reply(w, req, text("Tool failed: "+failed(results)))
		default:
			s.reply(w, req, text("Bash said: "+results[0].ResultText()))
		}
	case strings.HasPrefix(lower, "stall"):
		s.stall(w, r)
	case strings.Contains(lower, "what page is open"):
		switch {
		case len(results) == 0:
			s.reply(w, req, s.toolUse(ToolSnapshot, map[string]any{}))
		case urlRE.MatchString(results[0].ResultText()):
			s.reply(w, req, text("Open page: "+urlRE.FindString(results[0].ResultText())))
		default:
			s.reply(w, req, text("No page open"))
		}
	case strings.Contains(lower, "what did i ask before"):
		prompts := prompts(req.Messages)
		if len(prompts) < 2 {
			s.reply(w, req, text("You asked nothing before."))
			return
		}
		s.reply(w, req, text("You asked: "+prompts[len(prompts)-2]))
	case strings.Contains(lower, "screenshot") && url != "":
		switch {
		case len(results) == 0:
			s.reply(w, req, s.toolUse(ToolNavigate, map[string]any{"url": url}))
		case failed(results) != "":
			s.reply(w, req, text("Tool failed: "+failed(results)))
		case len(results) == 1:
			// No filename: Playwright MCP then saves into its --output-dir,
			// the images directory. A named file would go to the workspace.
			s.reply(w, req, s.toolUse(ToolScreenshot, map[string]any{"type": "png"}))
		default:
			s.reply(w, req, text("Screenshot taken of "+url))
		}
	case strings.Contains(lower, "stall") && url != "":
		if len(results) == 0 {
			s.reply(w, req, s.toolUse(ToolNavigate, map[string]any{"url": url}))
			return
		}
		s.stall(w, r)
	case strings.Contains(p, "2+2"):
		s.reply(w, req, text("4"))
	default:
		s.reply(w, req, text("Unscripted: "+p))
	}
}

// answer is the assistant turn to send: its content and why it stopped.
type answer struct {
	content    []Block
	stopReason string
}

func text(t string) answer {
	return answer{content: []Block{{Type: "text", Text: t}}, stopReason: "end_turn"}
}

func (s *Server) toolUse(name string, input map[string]any) answer {
	in, _ := json.Marshal(input)
	id := fmt.Sprintf("toolu_fake%04d", s.ids.Add(1))
	return answer{content: []Block{{Type: "tool_use", ID: id, Name: name, Input: in}}, stopReason: "tool_use"}
}

// reply sends a as a Messages API response: a stream of server-sent events
// if the request asked for one, else one JSON message.
func (s *Server) reply(w http.ResponseWriter, req *MessagesRequest, a answer) {
	id := fmt.Sprintf("msg_fake%04d", s.ids.Add(1))
	usage := map[string]any{"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
	if !req.Stream {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": req.Model,
			"content": a.content, "stop_reason": a.stopReason, "stop_sequence": nil, "usage": usage,
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	event := func(name string, data map[string]any) {
		data["type"] = name
		b, _ := json.Marshal(data)
		fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", name, b)
	}
	event("message_start", map[string]any{"message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": req.Model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 10, "output_tokens": 1},
	}})
	for i, b := range a.content {
		switch b.Type {
		case "text":
			event("content_block_start", map[string]any{"index": i, "content_block": map[string]any{"type": "text", "text": ""}})
			for _, chunk := range halves(b.Text) {
				event("content_block_delta", map[string]any{"index": i, "delta": map[string]any{"type": "text_delta", "text": chunk}})
			}
		case "tool_use":
			event("content_block_start", map[string]any{"index": i, "content_block": map[string]any{"type": "tool_use", "id": b.ID, "name": b.Name, "input": map[string]any{}}})
			for _, chunk := range halves(string(b.Input)) {
				event("content_block_delta", map[string]any{"index": i, "delta": map[string]any{"type": "input_json_delta", "partial_json": chunk}})
			}
		}
		event("content_block_stop", map[string]any{"index": i})
	}
	event("message_delta", map[string]any{"delta": map[string]any{"stop_reason": a.stopReason, "stop_sequence": nil}, "usage": usage})
	event("message_stop", map[string]any{})
	w.Write(buf.Bytes())
}

// halves splits s in two, so that every block arrives as more than one
// delta, as the real API sends it.
func halves(s string) []string {
	if len(s) < 2 {
		return []string{s}
	}
	return []string{s[:len(s)/2], s[len(s)/2:]}
}

// stall sends the status and headers of a stream, then nothing, until the
// client goes away or the server closes.
func (s *Server) stall(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	select {
	case s.stalled <- struct{}{}:
	default:
	}
	select {
	case <-r.Context().Done():
	case <-s.closing:
	}
}

// apiError answers with the Messages API's error shape.
func apiError(w http.ResponseWriter, status int, typ, message string) {
	w.Header().Set("request-id", "req_fake")
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
