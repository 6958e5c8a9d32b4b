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
	"sync"
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
	// idBase is what the process's earlier turns counted, so that tool
	// call ids stay unique in a process that serves many.
	idBase int
	pace   pacer
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

// startStream opens or resumes the session, records prompt in it and
// writes the init event.
func startStream(prompt string) *stream {
	st := openSession()
	st.save(append(slices.Clone(st.history), prompt))
	st.init(prompt)
	return st
}

// openSession opens the session --resume names, or a new one. A session
// that is not there ends the process as it ends the real CLI 2.1: an error
// result, no init, the reason on stderr and status 1.
func openSession() *stream {
	st := &stream{start: time.Now(), pace: sleeper{}}
	id := argAfter("--resume")
	if id == "" {
		st.session = newUUID()
		return st
	}
	raw, err := os.ReadFile(filepath.Join(sessionsDir(), filepath.Base(id)))
	if err != nil {
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
	return st
}

// newUUID returns a random (version 4) UUID, the form of the CLI's ids.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// save records the session's prompts, for recall and --resume.
func (st *stream) save(prompts []string) {
	os.MkdirAll(sessionsDir(), 0o700)
	saved, _ := json.Marshal(prompts)
	os.WriteFile(filepath.Join(sessionsDir(), st.session), saved, 0o600)
}

// init writes the init event of a run of prompt, whose mcp-failed lines
// name the MCP servers to report failed.
func (st *stream) init(prompt string) {
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
}

// outMu keeps each line of stdout whole: streaming input writes from two
// goroutines (and ends the process from one).
var outMu sync.Mutex

// emit writes one event, a line of stdout.
func (st *stream) emit(ev map[string]any) {
	b, _ := json.Marshal(ev)
	outMu.Lock()
	defer outMu.Unlock()
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
		st.tool("mcp__playwright__browser_take_screenshot", func() bool {
			os.WriteFile(filepath.Join(os.Getenv("IMAGES_DIR"), arg), png, 0o644)
			return true
		})
	case "slow-tool":
		// A tool call that runs for the duration, printing nothing: a
		// build or a test suite, which is no stall.
		d, _ := time.ParseDuration(arg)
		st.tool("Bash", func() bool { return st.pace.wait(d) })
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
		outMu.Lock()
		os.Stdout.WriteString(arg + "\n")
		outMu.Unlock()
	default:
		return false
	}
	return true
}

// interruptedTool is the CLI's tool result for a call an interrupt stopped.
const interruptedTool = "The user doesn't want to proceed with this tool use. The tool use was rejected " +
	"(eg. if it was a file edit, the new_string was NOT written to the file). STOP what you are doing and " +
	"wait for the user to tell you how to proceed. Correction to the text above: this call was stopped while " +
	"running, not refused before it ran. It may have run in part or in full, and its changes may have been " +
	"written. No permission prompt was involved. Work it started elsewhere (a remote command, a background " +
	"process) may still be running, so check before starting the same work again. The instruction to stop " +
	"and wait still stands."

// tool writes a tool call, runs it, and writes its result. run reports
// false when an interrupt stopped it; the result then says so, as the
// CLI's does. A call the pacer refuses is not run and gets no result.
func (st *stream) tool(name string, run func() bool) {
	st.Flush()
	st.turns++
	id := "toolu_" + strconv.Itoa(st.idBase+st.turns)
	st.emit(map[string]any{"type": "assistant", "session_id": st.session, "message": map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake-claude",
		"content": []map[string]any{{"type": "tool_use", "id": id, "name": name, "input": map[string]any{}}}}})
	if !st.pace.toolCalled() {
		return
	}
	result := map[string]any{"type": "tool_result", "tool_use_id": id, "content": "ok"}
	done := run == nil || run()
	if !done {
		result["content"], result["is_error"] = interruptedTool, true
	}
	st.emit(map[string]any{"type": "user", "session_id": st.session, "message": map[string]any{
		"role": "user", "content": []map[string]any{result}}})
	if done {
		st.pace.toolReturned()
	}
}

// result writes the last event.
func (st *stream) result() { st.emit(st.resultEvent(st.finalText())) }

// finalText ends the output and returns the result's text: all the output,
// or the error agent-error set.
func (st *stream) finalText() string {
	st.Flush()
	if !st.isError {
		return st.all.String()
	}
	// The real CLI says the error as the assistant, then in a result whose
	// subtype is "success" all the same.
	fmt.Fprint(st, st.errText)
	st.Flush()
	return st.errText
}

// resultEvent is the result event of what ran, with text as its result.
func (st *stream) resultEvent(text string) map[string]any {
	return map[string]any{"type": "result", "subtype": "success", "is_error": st.isError,
		"duration_ms": time.Since(st.start).Milliseconds(), "num_turns": max(st.turns, 1), "result": text,
		"session_id": st.session, "total_cost_usd": 0.0123,
		"usage": map[string]any{"input_tokens": 10, "output_tokens": 5}}
}

// pacer paces a script: how it waits, and what happens around its tool
// calls. One prompt sleeps and runs every call (sleeper); streaming input
// hears stdin meanwhile (conversation).
type pacer interface {
	// wait pauses for d, as a slow model or tool would; false means an
	// interrupt ended the turn meanwhile.
	wait(d time.Duration) bool
	// toolCalled hears of a tool call before it runs; false means the call
	// is not run (the budget is spent).
	toolCalled() bool
	// toolReturned hears that a tool call returned its result.
	toolReturned()
}

// sleeper paces one prompt: plain sleeps, every tool call run.
type sleeper struct{}

func (sleeper) wait(d time.Duration) bool { time.Sleep(d); return true }
func (sleeper) toolCalled() bool          { return true }
func (sleeper) toolReturned()             {}
