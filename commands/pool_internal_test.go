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
	h := &held{}
	if h.wait(time.Hour, 10*time.Minute) || h.idle != 2*tick {
		t.Errorf("after a one-hour tick: idle %v; want %v, and not expired", h.idle, 2*tick)
	}
	for range 10*time.Minute/tick - 3 {
		if h.wait(tick, 10*time.Minute) {
			t.Fatalf("expired at %v idle; want 10m", h.idle)
		}
	}
	if !h.wait(tick, 10*time.Minute) {
		t.Errorf("not expired at %v idle; want expired at 10m", h.idle)
	}
	if (&held{}).wait(24*time.Hour, 0) {
		t.Error("expired with no idle limit")
	}
}
