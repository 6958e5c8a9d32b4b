package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// stream writes the CLI's stream-json events to stdout.
type stream struct {
	session string
	history []string // this session's earlier prompts
	pending bytes.Buffer
	all     strings.Builder
	isError bool
	errText string
	status  int
	start   time.Time
	turns   int
}

func hasArgs(pair ...string) bool {
	args := os.Args[1:]
	for i := 0; i+len(pair) <= len(args); i++ {
		if slices.Equal(args[i:i+len(pair)], pair) {
			return true
		}
	}
	return false
}

func argAfter(flag string) string {
	args := os.Args[1:]
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// sessionsDir files sessions by working directory, as the real CLI does
// (~/.claude/projects/<the directory, each / a ->): a session resumes only
// from the directory it was made in.
func sessionsDir() string {
	wd, _ := os.Getwd()
	return filepath.Join(os.Getenv("HOME"), ".claude", "fake-sessions", strings.ReplaceAll(wd, "/", "-"))
}

// startStream opens or resumes the session and writes the init event.
func startStream(prompt string) *stream {
	st := &stream{start: time.Now()}
	if id := argAfter("--resume"); id != "" {
		raw, err := os.ReadFile(filepath.Join(sessionsDir(), filepath.Base(id)))
		if err != nil {
			// What the real CLI 2.1 does: an error result and no init.
			msg := "No conversation found with session ID: " + id
			st.session = id
			st.emit(map[string]any{"type": "result", "subtype": "error_during_execution", "is_error": true,
				"duration_ms": 0, "num_turns": 0, "session_id": id, "total_cost_usd": 0,
				"usage": map[string]any{"input_tokens": 0, "output_tokens": 0}, "errors": []string{msg}})
			fmt.Fprintln(os.Stderr, msg)
			os.Exit(1)
		}
		json.Unmarshal(raw, &st.history)
		st.session = id
	} else {
		b := make([]byte, 16)
		rand.Read(b)
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		st.session = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	}
	os.MkdirAll(sessionsDir(), 0o700)
	saved, _ := json.Marshal(append(slices.Clone(st.history), prompt))
	os.WriteFile(filepath.Join(sessionsDir(), st.session), saved, 0o600)

	servers := []map[string]string{{"name": "playwright", "status": "connected"}}
	for _, l := range strings.Split(prompt, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(l), "mcp-failed "); ok {
			servers = append(servers, map[string]string{"name": name, "status": "failed"})
		}
	}
	wd, _ := os.Getwd()
	st.emit(map[string]any{"type": "system", "subtype": "init", "cwd": wd, "session_id": st.session,
		"tools": []string{"Bash", "Read", "Write", "mcp__playwright__browser_navigate"}, "mcp_servers": servers,
		"model": "fake-claude", "permissionMode": "bypassPermissions", "apiKeySource": "ANTHROPIC_API_KEY"})
	return st
}

func (st *stream) emit(ev map[string]any) {
	b, _ := json.Marshal(ev)
	os.Stdout.Write(append(b, '\n'))
}

func (st *stream) Write(p []byte) (int, error) { return st.pending.Write(p) }

// Flush ends a stretch of output: one assistant message.
func (st *stream) Flush() error {
	if st.pending.Len() == 0 {
		return nil
	}
	text := st.pending.String()
	st.pending.Reset()
	st.all.WriteString(text)
	st.turns++
	st.emit(map[string]any{"type": "assistant", "session_id": st.session, "message": map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake-claude",
		"content": []map[string]any{{"type": "text", "text": text}}}})
	return nil
}

// verb acts out the stream-only verbs; it reports whether it knew verb.
func (st *stream) verb(verb, arg string) bool {
	switch verb {
	case "tool":
		st.tool(arg, nil)
	case "screenshot":
		// As Playwright MCP does: the file is written while the tool runs,
		// before its result.
		st.tool("mcp__playwright__browser_take_screenshot", func() {
			os.WriteFile(filepath.Join(os.Getenv("IMAGES_DIR"), arg), png, 0o644)
		})
	case "slow-tool":
		// A tool call that runs for the duration, printing nothing: a
		// build or a test suite, which is no stall.
		d, _ := time.ParseDuration(arg)
		st.tool("Bash", func() { time.Sleep(d) })
	case "agent-error":
		st.isError, st.errText, st.status = true, arg, 1
	case "status":
		st.status, _ = strconv.Atoi(arg)
	case "mcp-failed":
	case "recall":
		for _, p := range st.history {
			fmt.Fprintf(st, "earlier: %s\n", p)
		}
	case "raw":
		st.Flush()
		os.Stdout.WriteString(arg + "\n")
	default:
		return false
	}
	return true
}

// tool writes a tool call, runs it, and writes its result.
func (st *stream) tool(name string, run func()) {
	st.Flush()
	st.turns++
	id := "toolu_" + strconv.Itoa(st.turns)
	st.emit(map[string]any{"type": "assistant", "session_id": st.session, "message": map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake-claude",
		"content": []map[string]any{{"type": "tool_use", "id": id, "name": name, "input": map[string]any{}}}}})
	if run != nil {
		run()
	}
	st.emit(map[string]any{"type": "user", "session_id": st.session, "message": map[string]any{
		"role": "user", "content": []map[string]any{{"type": "tool_result", "tool_use_id": id, "content": "ok"}}}})
}

// result writes the last event.
func (st *stream) result() {
	st.Flush()
	subtype, text := "success", st.all.String()
	if st.isError {
		// The real CLI says the error as the assistant, then in a result
		// whose subtype is "success" all the same.
		fmt.Fprint(st, st.errText)
		st.Flush()
		text = st.errText
	}
	st.emit(map[string]any{"type": "result", "subtype": subtype, "is_error": st.isError,
		"duration_ms": time.Since(st.start).Milliseconds(), "num_turns": max(st.turns, 1), "result": text,
		"session_id": st.session, "total_cost_usd": 0.0123,
		"usage": map[string]any{"input_tokens": 10, "output_tokens": 5}})
}
