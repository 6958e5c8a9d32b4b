package commands

import (
	"testing"
	"time"
)

// A tick far later than its period (a machine suspended for an hour, as
// Fly.io does with an idle machine) counts as two periods of idleness at
// most: warm agents survive the suspension, and still go after warm_idle
// of the machine's running time.
func TestIdleCountsRunningTimeOnly(t *testing.T) {
	t.Parallel()
	now := time.Now()
	h := &held{}
	if h.wait(now, time.Hour, 10*time.Minute) || h.idle != 2*tick {
		t.Errorf("after a one-hour tick: idle %v; want %v, and not expired", h.idle, 2*tick)
	}
	for range 10*time.Minute/tick - 3 {
		if h.wait(now, tick, 10*time.Minute) {
			t.Fatalf("expired at %v idle; want 10m", h.idle)
		}
	}
	if !h.wait(now, tick, 10*time.Minute) {
		t.Errorf("not expired at %v idle; want expired at 10m", h.idle)
	}
	if (&held{}).wait(now, 24*time.Hour, 0) {
		t.Error("expired with no idle limit")
	}
}

// An agent released just before a tick is charged the time since its
// release, not the whole tick: with a warm_idle of one tick, it is not
// closed at the first tick after its answer.
func TestIdleCountsFromRelease(t *testing.T) {
	t.Parallel()
	now := time.Now()
	h := &held{since: now.Add(-10 * time.Millisecond)}
	if h.wait(now, tick, tick) || h.idle != 10*time.Millisecond {
		t.Errorf("released 10ms before a tick: idle %v; want 10ms, and not expired", h.idle)
	}
	if !h.wait(now.Add(tick), tick, tick) {
		t.Errorf("a tick later: idle %v; want expired at %v", h.idle, tick)
	}
}
