package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Streaming input (--input-format stream-json): one process, many turns, as
// docs/cli-streaming.md measured the real CLI 2.1.332.

// turnCost is what a turn costs, in dollars: what a run of one prompt
// reports.
const turnCost = 0.0123

// conversation is the fake in streaming-input mode. One goroutine (the
// main one) runs the turns; readInput's goroutine hands it stdin's lines,
// which it takes in while it waits (in sleeps and slow tools), when a tool
// call returns and between turns.
type conversation struct {
	st *stream
	// in is readInput's channel; nil once stdin has ended, so that a
	// select on it blocks.
	in <-chan event
	// queue holds the lines not yet taken into a turn, in order.
	queue []message
	// folded holds the lines a tool call's return took into the running
	// turn, whose scripts are yet to be spliced into it.
	folded []message
	replay bool

	// The running turn.
	running     bool
	prompts     []string // its prompt and those folded into it
	interrupted bool     // an interrupt ended it
	charged     bool     // the turn made a model call: it cost turnCost
	spentBefore bool     // the budget was spent before the turn began
	inTool      bool     // a tool call is running
	spent       bool     // it reached the budget

	budget  float64 // --max-budget-usd, or 0
	cost    float64 // this process's spend, which the budget counts
	total   float64 // the session's, total_cost_usd, kept across --resume
	results int     // results written, for result_index
}

// converse serves stdin's turns until stdin ends, then exits with the
// status of the last turn (1 after an error result, as the CLI does).
func converse() {
	if !hasArgs("--output-format", "stream-json") {
		fail("Error: --input-format=stream-json requires output-format=stream-json.")
	}
	if !hasArgs("--verbose") {
		fail("Error: When using --print, --output-format=stream-json requires --verbose")
	}
	c := &conversation{st: openSession(), replay: hasArgs("--replay-user-messages")}
	c.st.pace = c
	c.budget, _ = strconv.ParseFloat(argAfter("--max-budget-usd"), 64)
	raw, _ := os.ReadFile(c.costFile())
	c.total, _ = strconv.ParseFloat(string(raw), 64)
	c.in = readInput(os.Stdin)
	for {
		for len(c.queue) == 0 && c.in != nil {
			ev, ok := <-c.in
			c.take(ev, ok)
		}
		if len(c.queue) == 0 {
			os.Exit(c.st.status)
		}
		m := c.queue[0]
		c.queue = c.queue[1:]
		c.turn(m)
	}
}

// costFile keeps the session's total cost, which the CLI restores on
// --resume; the session file itself stays the list of prompts that
// single-prompt runs read.
func (c *conversation) costFile() string {
	return filepath.Join(sessionsDir(), c.st.session+".cost")
}

// take takes in one event of readInput's (ok false: stdin has ended).
func (c *conversation) take(ev event, ok bool) {
	switch {
	case !ok:
		c.in = nil
	case ev.msg != nil:
		c.queue = append(c.queue, *ev.msg)
	case ev.subtype == "interrupt":
		// Answered at once; idle, nothing else happens.
		c.st.emit(map[string]any{"type": "control_response", "response": map[string]any{
			"subtype": "success", "request_id": ev.requestID, "response": map[string]any{"still_queued": []string{}}}})
		c.interrupted = c.interrupted || c.running
	default:
		c.st.emit(map[string]any{"type": "control_response", "response": map[string]any{
			"subtype": "error", "request_id": ev.requestID, "error": "Unsupported control request subtype: " + ev.subtype,
			"error_code": "unsupported_request"}})
	}
}

// wait pauses for d taking in stdin meanwhile; false means an interrupt
// ended the turn.
func (c *conversation) wait(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for !c.interrupted {
		select {
		case <-timer.C:
			return true
		case ev, ok := <-c.in:
			c.take(ev, ok)
		}
	}
	return false
}

// toolCalled refuses the call once the turn has spent the budget: the
// CLI checks it after each model call, and the call that reaches it is
// shown but not run.
func (c *conversation) toolCalled() bool {
	if c.overBudget(c.cost + turnCost) {
		c.spent = true
		return false
	}
	c.inTool = true
	return true
}

// toolReturned takes the lines that came while the turn ran into it: the
// CLI gives them to the model with the tool's result.
func (c *conversation) toolReturned() {
	c.inTool = false
	c.drain()
	if c.interrupted {
		// The turn ends here; the lines wait for turns of their own.
		return
	}
	for _, m := range c.queue {
		c.replayLine(m)
	}
	c.folded = append(c.folded, c.queue...)
	c.queue = nil
}

// drain takes in what readInput has handed over already, without waiting.
func (c *conversation) drain() {
	for c.in != nil && !c.interrupted {
		select {
		case ev, ok := <-c.in:
			c.take(ev, ok)
		default:
			return
		}
	}
}

// overBudget reports whether a spend of cost reaches --max-budget-usd.
func (c *conversation) overBudget(cost float64) bool { return c.budget > 0 && cost >= c.budget }

// turn serves one user line: an init event, the line's script (and those
// folded into it), a result event.
func (c *conversation) turn(m message) {
	st := c.st
	// A turn starts afresh: its output, error, status, clock and count.
	*st = stream{session: st.session, history: st.history, idBase: st.idBase + st.turns, start: time.Now(), pace: c}
	c.running, c.interrupted, c.inTool, c.spent = true, false, false, false
	c.prompts = []string{m.text}
	defer func() {
		c.running = false
		st.history = append(st.history, c.prompts...)
	}()
	st.save(append(slices.Clone(st.history), c.prompts...))
	st.init(m.text)
	logPrompt(m.text)
	c.charged, c.spentBefore = false, false
	if c.overBudget(c.cost) {
		// Refused before any model call: no replay, no cost.
		c.spent, c.spentBefore = true, true
		c.result()
		return
	}
	c.replayLine(m)
	todo := steps(m.text)
	for i := 0; i < len(todo) && !c.interrupted && !c.spent; i++ {
		c.run(todo[i])
		if len(c.folded) == 0 {
			continue
		}
		// The model answers the folded lines next, then goes on.
		var next []step
		for _, f := range c.folded {
			next = append(next, steps(f.text)...)
			c.prompts = append(c.prompts, f.text)
		}
		todo = slices.Insert(todo, i+1, next...)
		c.folded = nil
		st.save(append(slices.Clone(st.history), c.prompts...))
	}
	// A turn interrupted before the model said anything cost nothing, as
	// a model call cut short costs nothing.
	c.charged = !c.interrupted || st.turns > 0
	if c.charged {
		c.cost += turnCost
		c.total += turnCost
		os.WriteFile(c.costFile(), []byte(strconv.FormatFloat(c.total, 'f', -1, 64)), 0o600)
	}
	c.spent = c.spent || c.overBudget(c.cost)
	c.result()
}

// run acts out one step of the turn.
func (c *conversation) run(s step) {
	st := c.st
	switch {
	case s.echo:
		fmt.Fprintf(st, "echo: %s\n", s.arg)
	case s.verb == "sleep":
		st.Flush()
		d, _ := time.ParseDuration(s.arg)
		c.wait(d)
	case s.verb == "wedge":
		// A CLI wedged inside a call: it reads no input meanwhile, so an
		// interrupt waits unheard.
		st.Flush()
		d, _ := time.ParseDuration(s.arg)
		time.Sleep(d)
	case st.verb(s.verb, s.arg):
	default:
		act(st, s.verb, s.arg)
	}
}

// result writes the turn's result event, which says how it ended, and sets
// the exit status that stdin's end would bring.
func (c *conversation) result() {
	st := c.st
	var ev map[string]any
	noUsage := map[string]any{"input_tokens": 0, "output_tokens": 0}
	switch {
	case c.interrupted:
		st.Flush()
		// The interrupt counts as a turn, as the CLI counts it.
		marker, reason, turns := "[Request interrupted by user]", "aborted_streaming", max(st.turns, 1)+1
		if c.inTool {
			marker, reason, turns = "[Request interrupted by user for tool use]", "aborted_tools", turns+1
		}
		st.emit(map[string]any{"type": "user", "session_id": st.session, "parent_tool_use_id": nil,
			"message": map[string]any{"role": "user", "content": []map[string]any{{"type": "text", "text": marker}}}})
		ev = st.resultEvent("")
		ev["subtype"], ev["is_error"], ev["num_turns"], ev["terminal_reason"] = "error_during_execution", true, turns, reason
		ev["errors"] = []string{"[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"}
		if !c.inTool {
			ev["usage"] = noUsage
		}
		delete(ev, "result")
		st.status = 1
	case c.spent:
		st.Flush()
		ev = st.resultEvent("")
		ev["subtype"], ev["is_error"], ev["terminal_reason"], ev["usage"] = "error_max_budget_usd", true, "budget_exhausted", noUsage
		ev["errors"] = []string{"Reached maximum budget ($" + strconv.FormatFloat(c.budget, 'f', -1, 64) + ")"}
		delete(ev, "result")
		st.status = 1
	default:
		ev = st.resultEvent(st.finalText())
		ev["terminal_reason"] = "completed"
		if st.isError {
			ev["terminal_reason"] = "api_error"
		}
	}
	// This turn's cost by model, as the CLI says it beside the session's
	// total; {} for a turn that made no model call.
	since := map[string]any{}
	if c.charged && !c.spentBefore {
		since["fake-claude"] = map[string]any{"costUSD": turnCost}
	}
	ev["total_cost_usd"], ev["result_index"], ev["model_usage_since_last_result"] = c.total, c.results, since
	c.results++
	st.emit(ev)
}

// replayLine writes m back, as --replay-user-messages asks, when the model
// gets it.
func (c *conversation) replayLine(m message) {
	if !c.replay {
		return
	}
	id := m.uuid
	if id == "" {
		id = newUUID()
	}
	c.st.emit(map[string]any{"type": "user", "message": m.raw, "session_id": c.st.session,
		"parent_tool_use_id": nil, "uuid": id, "timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"isReplay": true})
}
