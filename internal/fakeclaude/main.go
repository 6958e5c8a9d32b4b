// Command fakeclaude stands in for the Claude Code CLI in vmd's tests. It is
// a real process: it reads its prompt from stdin like `claude -p` and takes
// the prompt as a script, one instruction a line, to act out what the real
// CLI and the programs below it do (answer, fail, hang, leave processes
// behind, hold pipes open, write screenshots). A prompt that is not a script
// is answered "echo: <prompt>".
//
//	say TEXT        print TEXT to stdout
//	err TEXT        print TEXT to stderr
//	bytes N         print N bytes to stdout
//	sleep DUR       sleep (Go duration)
//	ignore-term     ignore SIGTERM and SIGINT
//	hold            start a child in the same group that keeps stdout open
//	escape          start a child in a session of its own (like Chromium)
//	escape-hold     the same, keeping stdout open
//	orphans N       leave N short-lived orphans for vmd to reap
//	image NAME      write a PNG called NAME into $IMAGES_DIR
//	args | pwd | tmpdir | env NAME   print them
//	die SIG         kill itself with signal SIG (e.g. SEGV)
//	exit N          exit with status N at once
//
// Pids of started children are printed to stdout as "pid ROLE PID". With
// FAKECLAUDE_PROMPT_LOG set to a file, each turn appends its prompt to it,
// quoted, one a line: tests count there what the CLI was asked to run.
// `fakeclaude --version` answers like the CLI: see version.go.
//
// Run with --output-format stream-json, as vmd runs the real CLI, it writes
// what the real one does: a system/init event with a session id, an
// assistant event for each stretch of output (up to a sleep, a tool call or
// the end), and a result event whose result is all the output, then exits
// 0. It keeps each session's prompts under $HOME/.claude/fake-sessions, in
// a directory per working directory as the real CLI does, so --resume works
// for sessions it made from the same directory and fails like the real CLI
// for others. More verbs in that mode:
//
//	tool NAME         an assistant tool_use of NAME, then its tool result
//	slow-tool DUR     a Bash tool call that runs DUR, printing nothing
//	screenshot NAME   the same for a screenshot that writes image NAME
//	agent-error TEXT  end with is_error: true and TEXT as the result, exit 1
//	status N          the exit status after the result event
//	mcp-failed NAME   the init event reports MCP server NAME failed
//	recall            print the earlier prompts of this session
//	raw TEXT          print TEXT as a line that is not JSON
//
// Run with --input-format stream-json (and --output-format stream-json
// --verbose, which it then requires, as the CLI does), it serves many turns
// from one process, as the real CLI does for the Agent SDKs; see input.go
// and docs/cli-streaming.md for what it copies. Each stdin line
// {"type":"user","message":{"role":"user","content":TEXT}} (TEXT a string
// or a list of text blocks) is a turn: an init event, TEXT acted out as a
// script or echoed, a result event. The session keeps every turn's prompt,
// so recall and --resume see them, and its cost, total_cost_usd, which
// grows by 0.0123 a turn and goes on across --resume. When stdin ends it
// exits with the status of its last turn: 0, 1 after an error result (an
// interrupt, the budget, agent-error, which ends the turn only), or N after
// "status N". exit and die still end it at once. Further:
//
//   - {"type":"control_request","request_id":ID,"request":{"subtype":"interrupt"}}
//     is answered at once with a control_response; a running turn then
//     stops, mid sleep or slow-tool too, with an error_during_execution
//     result, and the next line is served;
//   - a line that comes while a turn runs joins it when one of the turn's
//     tool calls returns (its script runs next), else waits for a turn of
//     its own;
//   - --replay-user-messages writes each user line back when a turn takes
//     it;
//   - wedge DUR sleeps without reading input: an interrupt waits unheard,
//     as with a CLI wedged inside a call;
//   - each result says the turn's own cost in model_usage_since_last_result,
//     as the CLI does;
//   - --max-budget-usd X ends the turn that brings this process's spend to
//     X, at its next tool call (which then does not run) or its end, with
//     an error_max_budget_usd result, and refuses every later turn so;
//   - a line that is not JSON, or a user line whose role is not "user",
//     ends the process with status 1 and the CLI's words on stderr;
//     blank lines and lines of other types are skipped.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A 1×1 PNG.
var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		version()
		return
	}
	if role(os.Getenv("FAKECLAUDE_ROLE")) {
		return
	}
	if hasArgs("--input-format", "stream-json") {
		converse()
		return
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading stdin:", err)
		os.Exit(2)
	}
	prompt := string(in)
	logPrompt(prompt)
	var out output = bufio.NewWriter(os.Stdout)
	var st *stream
	if hasArgs("--output-format", "stream-json") {
		st = startStream(prompt)
		out = st
	}
	if !isScript(prompt) {
		fmt.Fprintf(out, "echo: %s\n", prompt)
		finish(out, st)
		return
	}
	sc := bufio.NewScanner(strings.NewReader(prompt))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if st != nil && st.verb(verb, arg) {
			continue
		}
		act(out, verb, arg)
	}
	finish(out, st)
}

// logPrompt appends prompt to FAKECLAUDE_PROMPT_LOG, if set, in one write.
func logPrompt(prompt string) {
	if f := os.Getenv("FAKECLAUDE_PROMPT_LOG"); f != "" {
		if w, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			w.WriteString(strconv.Quote(prompt) + "\n")
			w.Close()
		}
	}
}

// role acts out a child's role, if this is a child; it reports whether it
// was.
func role(name string) bool {
	switch name {
	case "sleeper":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		time.Sleep(time.Hour)
		return true
	case "parent":
		// Start a short-lived child and exit at once, orphaning it.
		child("orphan", nil, false)
		return true
	case "orphan":
		time.Sleep(20 * time.Millisecond)
		return true
	}
	return false
}

// act acts out one line of the script.
func act(out output, verb, arg string) {
	switch verb {
	case "say":
		fmt.Fprintln(out, arg)
	case "err":
		fmt.Fprintln(os.Stderr, arg)
	case "bytes":
		n, _ := strconv.Atoi(arg)
		out.Write([]byte(strings.Repeat("x", n)))
	case "sleep":
		out.Flush()
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	case "hold":
		fmt.Fprintf(out, "pid holder %d\n", child("sleeper", os.Stdout, false))
	case "escape":
		fmt.Fprintf(out, "pid escaped %d\n", child("sleeper", nil, true))
	case "escape-hold":
		fmt.Fprintf(out, "pid escaped %d\n", child("sleeper", os.Stdout, true))
	case "orphans":
		n, _ := strconv.Atoi(arg)
		for range n {
			child("parent", nil, false)
		}
	case "image":
		if err := os.WriteFile(filepath.Join(os.Getenv("IMAGES_DIR"), arg), png, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	case "args":
		fmt.Fprintln(out, strings.Join(os.Args[1:], " "))
	case "pwd":
		wd, _ := os.Getwd()
		fmt.Fprintln(out, wd)
	case "tmpdir":
		d := os.Getenv("TMPDIR")
		os.WriteFile(filepath.Join(d, "left-behind"), []byte("x"), 0o644)
		fmt.Fprintln(out, d)
	case "env":
		fmt.Fprintf(out, "%s=%s\n", arg, os.Getenv(arg))
	case "die":
		out.Flush()
		sig := map[string]syscall.Signal{"SEGV": syscall.SIGSEGV, "KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM, "ABRT": syscall.SIGABRT}[arg]
		signal.Reset()
		syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Second)
	case "exit":
		n, _ := strconv.Atoi(arg)
		out.Flush()
		os.Exit(n)
	}
}

// output is stdout: plain, or stream-json events.
type output interface {
	io.Writer
	Flush() error
}

func finish(out output, st *stream) {
	out.Flush()
	if st != nil {
		st.result()
		os.Exit(st.status)
	}
}

var verbs = map[string]bool{"say": true, "err": true, "bytes": true, "sleep": true, "ignore-term": true,
	"hold": true, "escape": true, "escape-hold": true, "orphans": true, "image": true, "args": true, "pwd": true,
	"tmpdir": true, "env": true, "die": true, "exit": true, "wedge": true,
	"tool": true, "slow-tool": true, "screenshot": true, "agent-error": true, "status": true, "mcp-failed": true, "recall": true, "raw": true}

func isScript(prompt string) bool {
	verb, _, _ := strings.Cut(strings.TrimSpace(prompt), " ")
	verb, _, _ = strings.Cut(verb, "\n")
	return verbs[verb]
}

// child starts this program again in another role and returns its pid
// without waiting for it.
func child(role string, stdout *os.File, setsid bool) int {
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "FAKECLAUDE_ROLE="+role)
	cmd.Stdout = stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 0
	}
	return cmd.Process.Pid
}
