package agent

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// stallWatch tells a CLI that has hung from one that is working:
// headless `claude -p` can wait for ever on a wedged API connection, with
// no CPU, no output and no retry. A run counts as stalled once, for the
// whole stall_timeout, no tool call was open (a tool_use whose tool_result
// has not come: a build or a test suite may run quietly for long), no
// event came out of the CLI, and the CLI read and wrote (sockets and pipes
// included) less than stallIOFloor bytes a second.
//
// Feed it the CLI process's own counters (supervisor.Process.IO), not its
// whole tree's: with no tool call open
// only the CLI waits on the API, while a browser that Playwright MCP keeps
// open goes on talking to itself. Measured against the fake API's stall
// (e2e, "Open URL and stall"): the tree, Chromium in it, moved 50 to 18,000
// bytes a second, about 800 on average, never quiet; the CLI alone 46 to
// 62.
//
// At heart a state machine: the caller feeds it what it sees with the time
// it saw it and asks stalled(now), so tests drive it with a made-up clock;
// watch adds the ticker that reads the I/O counters. Its methods are safe
// for concurrent use: the stream reader feeds events while watch runs.
type stallWatch struct {
	mu      sync.Mutex
	timeout time.Duration
	open    map[string]struct{} // ids of the tool calls without a result
	last    time.Time           // the last sign of life
	io      uint64              // the baseline reading of the CLI's I/O counters
	ioAt    time.Time           // when it was taken; zero before the first
}

// stallIOFloor is the I/O rate, in bytes a second, below which a process
// tree counts as quiet. Not zero: Claude Code 2.1.x, stalled on an API
// response that never comes, still reads /proc/self/statm (38 bytes) every
// second and wakes its thread pool through an eventfd (8 bytes a write),
// 46 to 62 bytes a second measured in all; an API stream that is alive
// moves kilobytes a second.
const stallIOFloor = 1024

// newStallWatch starts watching at start. A timeout of 0 or less disables
// it: stalled is then always false.
func newStallWatch(timeout time.Duration, start time.Time) *stallWatch {
	return &stallWatch{timeout: timeout, open: map[string]struct{}{}, last: start}
}

// toolUse records a tool call the CLI opened (a tool_use block, by id).
// While any is open the run is never stalled.
func (w *stallWatch) toolUse(id string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open[id] = struct{}{}
	w.last = now
}

// toolResult records the result of a tool call (a tool_result block, by
// its tool_use_id). The quiet time counts from the last result.
func (w *stallWatch) toolResult(id string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.open, id)
	w.last = now
}

// event records any other event the CLI printed. A nil watch (a transcript
// read without one) ignores it, as it does lines.
func (w *stallWatch) event(now time.Time) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = now
}

// ioTotal records a reading of the CLI's I/O counters (see
// supervisor.Process.IO). stallIOFloor bytes or more since the baseline, and
// stallIOFloor a second once the baseline is over a second old, is a sign
// of life, and so is a decrease: a process that exits takes its counters
// away. The baseline moves on at a sign of life and after each quiet
// second, so the watch may read often (and see life at once) while the
// rate is still judged over a second at least: the CLI's own noise, a few
// dozen bytes at a time, never adds up to the floor. The first reading is
// only a baseline.
func (w *stallWatch) ioTotal(total uint64, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ioAt.IsZero() || !now.After(w.ioAt) {
		w.io, w.ioAt = total, now
		return
	}
	over := max(now.Sub(w.ioAt), time.Second)
	switch {
	case total < w.io || float64(total-w.io) >= stallIOFloor*over.Seconds():
		w.last = now
	case now.Sub(w.ioAt) < time.Second:
		return // keep the baseline: too early to call it quiet
	}
	w.io, w.ioAt = total, now
}

// stalled reports whether the run has shown no sign of life for the
// timeout, with no tool call open.
func (w *stallWatch) stalled(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.timeout > 0 && len(w.open) == 0 && now.Sub(w.last) >= w.timeout
}

// quiet is how long the run has shown no sign of life, for the log line
// that says why it was killed.
func (w *stallWatch) quiet(now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return now.Sub(w.last)
}

// watch reads the CLI's I/O counters every period (readIO) and returns
// true as soon as the run is stalled, or false when done is closed, the
// watch is disabled, or readIO fails (the CLI is gone).
//
// A tick that comes far later than its period means the machine was
// suspended (Fly.io suspends idle machines with their memory): the time
// it was away is no sign of a stall, so the watch starts over from there.
func (w *stallWatch) watch(done <-chan struct{}, period time.Duration, readIO func() (uint64, error)) bool {
	if w.timeout <= 0 {
		return false
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	prev := time.Now()
	for {
		select {
		case <-done:
			return false
		case now := <-tick.C:
			total, err := readIO()
			if err != nil {
				return false
			}
			if now.Sub(prev) > jumpAfter+2*period {
				w.restart(total, now)
			}
			prev = now
			w.ioTotal(total, now)
			// A quarter of a period early rather than a whole one late:
			// the ticks that set last and read it may be late by different
			// amounts, and quiet then falls a hair short of the timeout.
			if w.stalled(now.Add(period / 4)) {
				return true
			}
		}
	}
}

// jumpAfter is how late a tick must be to count as the machine having
// been away rather than busy.
const jumpAfter = 5 * time.Second

// restart starts the watch over at now, after the machine was away.
func (w *stallWatch) restart(total uint64, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last, w.io, w.ioAt = now, total, now
}

// toolBlocks is the part of a message's content the watch reads: the ids
// of the tool calls it opens (tool_use, in the assistant's messages) and
// closes (tool_result, in the user's). A content that is a plain string
// has none.
type toolBlocks struct {
	Content []struct {
		Type      string `json:"type"`
		ID        string `json:"id"`
		ToolUseID string `json:"tool_use_id"`
	} `json:"content"`
}

// line records a stream-json line of the CLI's: the tool calls it opens
// or closes, and in any case a sign of life.
func (w *stallWatch) line(l line, now time.Time) {
	if w == nil {
		return
	}
	var m toolBlocks
	if (l.Type == "assistant" || l.Type == "user") && json.Unmarshal(l.Message, &m) == nil {
		for _, c := range m.Content {
			switch {
			case c.Type == "tool_use" && c.ID != "":
				w.toolUse(c.ID, now)
			case c.Type == "tool_result" && c.ToolUseID != "":
				w.toolResult(c.ToolUseID, now)
			}
		}
	}
	w.event(now)
}

// stallPeriod is how often the watch reads the CLI's I/O: a fortieth of
// the timeout, within [50ms, 250ms], so a stall is caught within a quarter
// of a second of stall_timeout. A reading is one small read of /proc.
func stallPeriod(timeout time.Duration) time.Duration {
	return min(max(timeout/40, 50*time.Millisecond), 250*time.Millisecond)
}

// guard watches a turn until done is closed, and stops it with stop when
// it stalls. Where the CLI's I/O cannot be read (not Linux) the turn goes
// by its events alone.
func (w *stallWatch) guard(io func() (uint64, error), done <-chan struct{}, stop func() bool, log hclog.Logger) {
	if w.timeout <= 0 {
		return
	}
	readIO := func() (uint64, error) {
		n, err := io()
		if errors.Is(err, errors.ErrUnsupported) {
			return 0, nil
		}
		return n, err
	}
	if w.watch(done, stallPeriod(w.timeout), readIO) && stop() {
		log.Warn("claude stalled: no output, no tool call open and no I/O; killing it",
			"quiet", w.quiet(time.Now()).Round(time.Millisecond), "stall_timeout", w.timeout)
	}
}
