package main

import (
	"strings"
	"testing"
	"time"
)

// Each turn gets its own init and result; the session, its prompts and its
// cost go on from turn to turn; stdin's end after a success exits 0.
func TestStreamTurns(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), streaming...)
	p.user("What is 2+2?")
	first := p.until("result")
	eq(t, "first turn", types(first), "system/init assistant result")
	session := first[0]["session_id"]
	r := first[2]
	eq(t, "result", r["result"], any("echo: What is 2+2?\n"))
	eq(t, "subtype", r["subtype"], any("success"))
	eq(t, "is_error", r["is_error"], any(false))
	eq(t, "total_cost_usd", r["total_cost_usd"], any(0.0123))
	eq(t, "result_index", r["result_index"], any(0.0))

	// Content as blocks, as the SDKs send it.
	p.send(`{"type":"user","message":{"role":"user","content":[{"type":"text","text":"say two\nrecall"}]}}`)
	second := p.until("result")
	eq(t, "second turn", types(second), "system/init assistant result")
	eq(t, "second init's session", second[0]["session_id"], session)
	r = second[2]
	eq(t, "result", r["result"], any("two\nearlier: What is 2+2?\n"))
	eq(t, "session", r["session_id"], session)
	eq(t, "total_cost_usd", r["total_cost_usd"], any(0.0246))
	eq(t, "result_index", r["result_index"], any(1.0))

	// Tool call ids are unique in the process, as the CLI's are.
	ids := map[any]bool{}
	for range 2 {
		p.user("tool Read")
		evs := p.until("result")
		ids[blocks(evs[1])[0]["id"]] = true
	}
	eq(t, "tool call ids", len(ids), 2)

	p.stdin.Close()
	eq(t, "exit status", p.wait(), 0)
}

// An interrupt stops the running turn at once, mid sleep or mid tool call,
// and the process serves the next line; idle, it is only answered.
func TestStreamInterrupt(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), streaming...)
	p.user("say before\nsleep 1m\nsay after")
	p.until("assistant")
	began := time.Now()
	p.interrupt("r1")
	evs := p.until("result")
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("the interrupt took %v", d)
	}
	eq(t, "events", types(evs), "control_response user result")
	resp := evs[0]["response"].(map[string]any)
	eq(t, "response", resp["subtype"], any("success"))
	eq(t, "request_id", resp["request_id"], any("r1"))
	eq(t, "marker", blocks(evs[1])[0]["text"], any("[Request interrupted by user]"))
	r := evs[2]
	eq(t, "subtype", r["subtype"], any("error_during_execution"))
	eq(t, "is_error", r["is_error"], any(true))
	if _, ok := r["result"]; ok {
		t.Errorf("an interrupted turn's result has a result: %v", r)
	}

	p.user("slow-tool 1m\nsay after")
	evs = p.until("assistant")
	eq(t, "tool call", blocks(evs[len(evs)-1])[0]["type"], any("tool_use"))
	p.interrupt("r2")
	evs = p.until("result")
	eq(t, "events", types(evs), "control_response user user result")
	eq(t, "tool result is_error", blocks(evs[1])[0]["is_error"], any(true))
	eq(t, "marker", blocks(evs[2])[0]["text"], any("[Request interrupted by user for tool use]"))
	eq(t, "subtype", evs[3]["subtype"], any("error_during_execution"))

	// Idle: answered, nothing else.
	p.interrupt("r3")
	evs = p.until("control_response")
	eq(t, "events", types(evs), "control_response")
	p.user("say again")
	r = p.result()
	eq(t, "result", r["result"], any("again\n"))
	eq(t, "is_error", r["is_error"], any(false))

	p.stdin.Close()
	eq(t, "exit status", p.wait(), 0)
}

// A line that comes while a tool call runs joins the turn; one that comes
// while the turn makes no more tool calls waits for a turn of its own.
func TestStreamFold(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), append(streaming, "--replay-user-messages")...)
	p.user("slow-tool 500ms\nsay first")
	evs := p.until("assistant")
	eq(t, "events", types(evs), "system/init user assistant")
	eq(t, "replayed", evs[1]["isReplay"], any(true))
	p.user("say second")
	p.user("say third")
	evs = p.until("result")
	eq(t, "folded turn", types(evs), "user user user assistant result")
	eq(t, "tool result", blocks(evs[0])[0]["type"], any("tool_result"))
	eq(t, "replayed", evs[1]["message"].(map[string]any)["content"], any("say second"))
	eq(t, "replayed", evs[2]["message"].(map[string]any)["content"], any("say third"))
	eq(t, "result", evs[4]["result"], any("second\nthird\nfirst\n"))

	p.user("say a\nsleep 500ms\nsay b")
	p.until("assistant")
	p.user("say c")
	evs = p.until("result")
	eq(t, "result", evs[len(evs)-1]["result"], any("a\nb\n"))
	evs = p.until("result")
	eq(t, "queued turn", types(evs), "system/init user assistant result")
	eq(t, "result", evs[3]["result"], any("c\n"))

	p.stdin.Close()
	eq(t, "exit status", p.wait(), 0)
}

// At stdin's end the fake serves what it has, then exits with the status
// of its last turn.
func TestStreamEOF(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, streaming...)
	p.user("sleep 200ms\nsay late")
	p.user("say queued")
	p.stdin.Close()
	eq(t, "result", p.result()["result"], any("late\n"))
	eq(t, "result", p.result()["result"], any("queued\n"))
	eq(t, "exit status", p.wait(), 0)

	// agent-error ends the turn, not the process; its error is the status.
	p = start(t, dir, streaming...)
	p.user("agent-error Credit balance is too low")
	r := p.result()
	eq(t, "is_error", r["is_error"], any(true))
	eq(t, "subtype", r["subtype"], any("success"))
	p.user("say still here")
	eq(t, "result", p.result()["result"], any("still here\n"))
	p.user("agent-error again")
	p.result()
	p.stdin.Close()
	eq(t, "exit status", p.wait(), 1)
}

// A line that is not JSON ends the process at once, mid-turn too, in the
// CLI's words; a line of an unknown type is skipped.
func TestStreamMalformed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, streaming...)
	p.send(`{"type":"bogus"}`)
	p.send(``)
	p.user("say fine")
	eq(t, "result", p.result()["result"], any("fine\n"))
	p.user("sleep 1m")
	p.until("system")
	p.send("not json")
	eq(t, "exit status", p.wait(), 1)
	eq(t, "stderr", p.stderr.String(), "Error parsing streaming input line (type=unknown, 8 chars): SyntaxError\n")

	p = start(t, dir, streaming...)
	p.send(`{"type":"user", bad`)
	eq(t, "exit status", p.wait(), 1)
	eq(t, "stderr", p.stderr.String(), "Error parsing streaming input line (type=user, 19 chars): SyntaxError\n")

	p = start(t, dir, streaming...)
	p.send(`{"type":"user"}`)
	eq(t, "exit status", p.wait(), 1)
	eq(t, "stderr", p.stderr.String(), "Error: Expected message role 'user', got 'undefined'\n")
}

// --resume goes on with a session another process made, its prompts and
// its cost; a session that is not there ends the process without a line
// of stdin read.
func TestStreamResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, streaming...)
	p.user("say one")
	session := p.result()["session_id"].(string)
	p.stdin.Close()
	p.wait()

	p = start(t, dir, append(streaming, "--resume", session)...)
	p.user("recall")
	evs := p.until("result")
	eq(t, "init's session", evs[0]["session_id"], any(session))
	r := evs[len(evs)-1]
	eq(t, "result", r["result"], any("earlier: say one\n"))
	eq(t, "total_cost_usd", r["total_cost_usd"], any(0.0246))
	p.stdin.Close()
	eq(t, "exit status", p.wait(), 0)

	missing := "11111111-2222-4333-8444-555555555555"
	p = start(t, dir, append(streaming, "--resume", missing)...)
	r = p.next()
	eq(t, "type", r["type"], any("result"))
	eq(t, "subtype", r["subtype"], any("error_during_execution"))
	eq(t, "is_error", r["is_error"], any(true))
	eq(t, "exit status", p.wait(), 1)
	eq(t, "stderr", p.stderr.String(), "No conversation found with session ID: "+missing+"\n")
}

// The budget counts the process's spend: the turn that reaches it stops
// at its tool call, and later turns are refused.
func TestStreamBudget(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), append(streaming, "--max-budget-usd", "0.02")...)
	p.user("say one")
	eq(t, "subtype", p.result()["subtype"], any("success"))
	p.user("say two\ntool Bash\nsay never")
	evs := p.until("result")
	eq(t, "events", types(evs), "system/init assistant assistant result")
	r := evs[3]
	eq(t, "subtype", r["subtype"], any("error_max_budget_usd"))
	eq(t, "is_error", r["is_error"], any(true))
	eq(t, "total_cost_usd", r["total_cost_usd"], any(0.0246))
	eq(t, "errors", strings.Join(toStrings(r["errors"]), ""), "Reached maximum budget ($0.02)")

	p.user("say refused")
	evs = p.until("result")
	eq(t, "refused turn", types(evs), "system/init result")
	eq(t, "subtype", evs[1]["subtype"], any("error_max_budget_usd"))
	eq(t, "total_cost_usd", evs[1]["total_cost_usd"], any(0.0246))
	p.stdin.Close()
	eq(t, "exit status", p.wait(), 1)
}

func toStrings(v any) []string {
	var ss []string
	for _, x := range v.([]any) {
		ss = append(ss, x.(string))
	}
	return ss
}

// The old mode stays: one prompt read to its end, one init and result.
func TestOnePrompt(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), "-p", "--output-format", "stream-json", "--verbose")
	p.send("say hello")
	p.stdin.Close()
	evs := p.until("result")
	eq(t, "events", types(evs), "system/init assistant result")
	eq(t, "total_cost_usd", evs[2]["total_cost_usd"], any(0.0123))
	eq(t, "exit status", p.wait(), 0)
}
