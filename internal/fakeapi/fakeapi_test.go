package fakeapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T) *Server {
	t.Helper()
	s, err := New(WithLogf(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// msgs builds a conversation from JSON messages.
func msgs(t *testing.T, js ...string) []json.RawMessage {
	t.Helper()
	out := make([]json.RawMessage, len(js))
	for i, j := range js {
		if !json.Valid([]byte(j)) {
			t.Fatalf("invalid JSON: %s", j)
		}
		out[i] = json.RawMessage(j)
	}
	return out
}

func post(t *testing.T, s *Server, stream bool, messages []json.RawMessage) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": "claude-test", "stream": stream, "max_tokens": 100, "messages": messages,
		"tools": []map[string]any{{"name": ToolNavigate}, {"name": "Bash"}}})
	resp, err := client.Post(s.URL()+"/v1/messages?beta=true", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// message is an assistant turn as a client puts it together.
type message struct {
	Content    []Block `json:"content"`
	StopReason string  `json:"stop_reason"`
}

// assemble reads a stream of server-sent events the way the SDK does and
// returns the message and the event names in order.
func assemble(t *testing.T, r io.Reader) (message, []string) {
	t.Helper()
	var m message
	var events []string
	var inputs []string
	sc := bufio.NewScanner(r)
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
			events = append(events, name)
		case strings.HasPrefix(line, "data: "):
			var ev struct {
				Type         string `json:"type"`
				Index        int    `json:"index"`
				ContentBlock Block  `json:"content_block"`
				Delta        struct {
					Type        string `json:"type"`
					Text        string `json:"text"`
					PartialJSON string `json:"partial_json"`
					StopReason  string `json:"stop_reason"`
				} `json:"delta"`
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
				t.Fatalf("event %s: %v", name, err)
			}
			if ev.Type != name {
				t.Errorf("event %s has type %s", name, ev.Type)
			}
			switch ev.Type {
			case "content_block_start":
				if ev.Index != len(m.Content) {
					t.Fatalf("block %d started after %d blocks", ev.Index, len(m.Content))
				}
				ev.ContentBlock.Input = nil
				m.Content = append(m.Content, ev.ContentBlock)
				inputs = append(inputs, "")
			case "content_block_delta":
				switch ev.Delta.Type {
				case "text_delta":
					m.Content[ev.Index].Text += ev.Delta.Text
				case "input_json_delta":
					inputs[ev.Index] += ev.Delta.PartialJSON
				}
			case "message_delta":
				m.StopReason = ev.Delta.StopReason
			}
		}
	}
	for i, in := range inputs {
		if in != "" {
			m.Content[i].Input = json.RawMessage(in)
		}
	}
	return m, events
}

func TestScripts(t *testing.T) {
	const reminder = `{"type":"text","text":"<system-reminder>\nnot the prompt\n</system-reminder>\n"}`
	for _, tc := range []struct {
		name     string
		messages []string
		want     []Block
		stop     string
		prompt   string
	}{{
		name:     "answer",
		messages: []string{`{"role":"user","content":[` + reminder + `,{"type":"text","text":"What is 2+2?\n"}]}`},
		want:     []Block{{Type: "text", Text: "4"}},
		stop:     "end_turn",
		prompt:   "What is 2+2?",
	}, {
		name:     "string content",
		messages: []string{`{"role":"user","content":"What is 2+2?"}`},
		want:     []Block{{Type: "text", Text: "4"}},
		stop:     "end_turn",
		prompt:   "What is 2+2?",
	}, {
		name:     "screenshot: navigate",
		messages: []string{`{"role":"user","content":"Take a screenshot of http://127.0.0.1:1/x"}`},
		want:     []Block{{Type: "tool_use", Name: ToolNavigate, Input: json.RawMessage(`{"url":"http://127.0.0.1:1/x"}`)}},
		stop:     "tool_use",
	}, {
		name:     "navigate then stall: navigate",
		messages: []string{`{"role":"user","content":"Open http://127.0.0.1:1/x and stall"}`},
		want:     []Block{{Type: "tool_use", Name: ToolNavigate, Input: json.RawMessage(`{"url":"http://127.0.0.1:1/x"}`)}},
		stop:     "tool_use",
	}, {
		name: "screenshot: after navigate",
		messages: []string{
			`{"role":"user","content":"Take a screenshot of http://127.0.0.1:1/x"}`,
			`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"` + ToolNavigate + `","input":{}}]}`,
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"ok"}]}]}`,
		},
		want: []Block{{Type: "tool_use", Name: ToolScreenshot, Input: json.RawMessage(`{"type":"png"}`)}},
		stop: "tool_use",
	}, {
		name: "screenshot: done",
		messages: []string{
			`{"role":"user","content":"Take a screenshot of http://127.0.0.1:1/x"}`,
			`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"n","input":{}}]}`,
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}`,
			`{"role":"assistant","content":[{"type":"tool_use","id":"t2","name":"s","input":{}}]}`,
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t2","content":"ok"},` + reminder + `]}`,
		},
		want: []Block{{Type: "text", Text: "Screenshot taken of http://127.0.0.1:1/x"}},
		stop: "end_turn",
	}, {
		name: "screenshot: tool failed",
		messages: []string{
			`{"role":"user","content":"Take a screenshot of http://127.0.0.1:1/x"}`,
			`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"n","input":{}}]}`,
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":[{"type":"text","text":"net::ERR"}]}]}`,
		},
		want: []Block{{Type: "text", Text: "Tool failed: net::ERR"}},
		stop: "end_turn",
	}, {
		name: "previous prompt",
		messages: []string{
			`{"role":"user","content":[` + reminder + `,{"type":"text","text":"What is 2+2?"}]}`,
			`{"role":"assistant","content":[{"type":"text","text":"4"}]}`,
			`{"role":"user","content":"What did I ask before?"}`,
		},
		want: []Block{{Type: "text", Text: "You asked: What is 2+2?"}},
		stop: "end_turn",
	}, {
		name:     "bash: call",
		messages: []string{`{"role":"user","content":"Run in Bash: echo one\necho two"}`},
		want:     []Block{{Type: "tool_use", Name: ToolBash, Input: json.RawMessage(`{"command":"echo one\necho two","description":"Run the command asked for"}`)}},
		stop:     "tool_use",
	}, {
		name: "bash: done",
		messages: []string{
			`{"role":"user","content":"Run in Bash: echo one"}`,
			`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{}}]}`,
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"one"}]}`,
		},
		want: []Block{{Type: "text", Text: "Bash said: one"}},
		stop: "end_turn",
	}, {
		name: "bash: failed",
		messages: []string{
			`{"role":"user","content":"Run in Bash: false"}`,
			`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{}}]}`,
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"Exit code 1"}]}`,
		},
		want: []Block{{Type: "text", Text: "Tool failed: Exit code 1"}},
		stop: "end_turn",
	}, {
		name:     "no previous prompt",
		messages: []string{`{"role":"user","content":"What did I ask before?"}`},
		want:     []Block{{Type: "text", Text: "You asked nothing before."}},
		stop:     "end_turn",
	}, {
		name:     "unscripted",
		messages: []string{`{"role":"user","content":"hello"}`},
		want:     []Block{{Type: "text", Text: "Unscripted: hello"}},
		stop:     "end_turn",
	}} {
		for _, stream := range []bool{true, false} {
			name := tc.name
			if !stream {
				name += " (JSON)"
			}
			t.Run(name, func(t *testing.T) {
				s := start(t)
				resp := post(t, s, stream, msgs(t, tc.messages...))
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d; want 200", resp.StatusCode)
				}
				var got message
				if stream {
					var events []string
					got, events = assemble(t, resp.Body)
					if events[0] != "message_start" || events[len(events)-1] != "message_stop" || events[len(events)-2] != "message_delta" {
						t.Errorf("events = %v; want message_start ... message_delta, message_stop", events)
					}
				} else if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
					t.Fatal(err)
				}
				for i := range got.Content {
					if got.Content[i].Type == "tool_use" && !strings.HasPrefix(got.Content[i].ID, "toolu_") {
						t.Errorf("tool_use id %q; want toolu_...", got.Content[i].ID)
					}
					got.Content[i].ID = ""
				}
				if !reflect.DeepEqual(got.Content, tc.want) || got.StopReason != tc.stop {
					t.Errorf("answer = %+v, %s; want %+v, %s", got.Content, got.StopReason, tc.want, tc.stop)
				}
				reqs := s.Requests()
				if len(reqs) != 1 || reqs[0].Messages == nil || !reqs[0].Known || reqs[0].Path != "/v1/messages" || reqs[0].Query != "beta=true" {
					t.Fatalf("recorded %+v; want the one Messages request", reqs)
				}
				if tc.prompt != "" && reqs[0].Prompt != tc.prompt {
					t.Errorf("recorded prompt %q; want %q", reqs[0].Prompt, tc.prompt)
				}
				if got := reqs[0].Messages.ToolNames(); !reflect.DeepEqual(got, []string{ToolNavigate, "Bash"}) {
					t.Errorf("recorded tools %v", got)
				}
			})
		}
	}
}

func TestErrors(t *testing.T) {
	s := start(t)
	for _, tc := range []struct {
		status int
		typ    string
	}{
		{401, "authentication_error"},
		{500, "api_error"},
		{529, "overloaded_error"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			resp := post(t, s, true, msgs(t, `{"role":"user","content":"Please fail with `+strconv.Itoa(tc.status)+`."}`))
			var body struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Type != "error" || body.Error.Type != tc.typ || body.Error.Message == "" {
				t.Errorf("got %d %+v; want %d with an error of type %s", resp.StatusCode, body, tc.status, tc.typ)
			}
		})
	}
}

func TestOtherRoutes(t *testing.T) {
	s := start(t)
	resp, err := client.Post(s.URL()+"/v1/messages/count_tokens?beta=true", "application/json", strings.NewReader(`{"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	var count struct {
		InputTokens *int `json:"input_tokens"`
	}
	json.NewDecoder(resp.Body).Decode(&count)
	resp.Body.Close()
	if resp.StatusCode != 200 || count.InputTokens == nil {
		t.Errorf("count_tokens: %d %+v; want 200 with input_tokens", resp.StatusCode, count)
	}
	req, _ := http.NewRequest(http.MethodHead, s.URL()+"/api/hello", nil)
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("HEAD /api/hello: %v %v; want 200", resp, err)
	}
	resp, err = client.Get(s.URL() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /v1/models: %d; want 404", resp.StatusCode)
	}
	reqs := s.Requests()
	if len(reqs) != 3 || !reqs[0].Known || !reqs[1].Known || reqs[2].Known || reqs[2].Path != "/v1/models" {
		t.Errorf("recorded %+v; want the unknown route marked", reqs)
	}
	s.Reset()
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests after Reset", n)
	}
}

// A stalled response ends when the client gives up, and Close does not
// wait for it to.
func TestStall(t *testing.T) {
	for _, prompt := range []string{"Stall", "Open http://127.0.0.1:1/ and stall"} {
		t.Run(prompt, func(t *testing.T) {
			s, err := New()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			messages := msgs(t, `{"role":"user","content":"`+prompt+`"}`)
			if prompt != "Stall" {
				// Past navigate: its result is in.
				messages = msgs(t, `{"role":"user","content":"`+prompt+`"}`,
					`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"n","input":{}}]}`,
					`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}`)
			}
			body, _ := json.Marshal(map[string]any{"stream": true, "messages": messages})
			done := make(chan error, 1)
			go func() {
				resp, err := client.Post(s.URL()+"/v1/messages", "application/json", bytes.NewReader(body))
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				done <- err
			}()
			select {
			case <-s.Stalled():
			case err := <-done:
				t.Fatalf("answered (%v); want a stall", err)
			}
			select {
			case err := <-done:
				t.Fatalf("answered (%v) while stalled", err)
			case <-time.After(100 * time.Millisecond):
			}
			closed := make(chan struct{})
			go func() { s.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("Close waits for the stalled response")
			}
			<-done
		})
	}
}

// After an interrupt the CLI sends the interrupted prompt, the marker and
// the next prompt together: the next prompt is what the user asks.
func TestPromptAfterInterrupt(t *testing.T) {
	for _, blocks := range [][]Block{
		{{Type: "text", Text: "Stall"}, {Type: "text", Text: "[Request interrupted by user]"}, {Type: "text", Text: "What is 2+2?"}},
		{{Type: "text", Text: "Stall\n[Request interrupted by user for tool use]\nWhat is 2+2?"}},
	} {
		if got := typed(blocks); got != "What is 2+2?" {
			t.Errorf("typed(%+v) = %q; want the prompt after the interrupt", blocks, got)
		}
	}
}
