package agent

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A script is a sequence of steps, one per second from t0: "use:ID",
// "result:ID", "event", "io:N", or "-" (nothing happens). stalled is asked
// after each step.
func TestStallWatch(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		timeout time.Duration
		steps   string
		want    string // after each step: s (stalled) or . (not)
	}{
		{"quiet from the start", 3 * time.Second, "- - - -", "..ss"},
		{"disabled", 0, "- - - - - -", "......"},
		{"events keep it alive", 3 * time.Second, "event - event - - -", ".....s"},
		{"io keeps it alive", 3 * time.Second, "io:0 io:5000 io:6100 - - -", ".....s"},
		{"io rate over the gap", 3 * time.Second, "io:0 - io:2048 - - -", ".....s"},
		{"first io reading is a baseline", 2 * time.Second, "- io:5000 - -", ".sss"},
		{"io unchanged is quiet", 3 * time.Second, "io:5 io:5 io:5 io:5", "..ss"},
		{"io trickle below the floor is quiet", 3 * time.Second, "io:0 io:60 io:120 io:180 io:240", "..sss"},
		{"io going down is a change", 2 * time.Second, "io:9 - - io:4 - -", ".ss..s"},
		{"open tool call: never stalled", 2 * time.Second, "use:a - - - - - io:1 io:1 -", "........."},
		{"quiet counts from the result", 2 * time.Second, "use:a - - - result:a - -", "......s"},
		{"one of two results", 2 * time.Second, "use:a use:b - result:a - - - result:b - -", ".........s"},
		{"result of an unknown call", 2 * time.Second, "use:a result:x - - -", "....."},
		{"stalled, then alive again", 2 * time.Second, "- - event -", ".s.."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newStallWatch(tt.timeout, t0)
			var got strings.Builder
			for i, step := range strings.Fields(tt.steps) {
				now := t0.Add(time.Duration(i+1) * time.Second)
				kind, arg, _ := strings.Cut(step, ":")
				switch kind {
				case "use":
					w.toolUse(arg, now)
				case "result":
					w.toolResult(arg, now)
				case "event":
					w.event(now)
				case "io":
					var n uint64
					fmt.Sscan(arg, &n)
					w.ioTotal(n, now)
				case "-":
				default:
					t.Fatalf("bad step %q", step)
				}
				if w.stalled(now) {
					got.WriteByte('s')
				} else {
					got.WriteByte('.')
				}
			}
			if got.String() != tt.want {
				t.Errorf("steps %q: stalled %s; want %s", tt.steps, got.String(), tt.want)
			}
		})
	}
}

// Read every quarter of a second, as the watch does: the CLI's noise (15
// bytes a reading, 60 a second) stays quiet however often it is read, and
// a kilobyte is life the moment it is read.
func TestStallWatchFrequentReadings(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	w := newStallWatch(3*time.Second, t0)
	var total uint64
	read := func(i int, add uint64) time.Time {
		now := t0.Add(time.Duration(i) * 250 * time.Millisecond)
		total += add
		w.ioTotal(total, now)
		return now
	}
	for i := 1; i <= 12; i++ {
		now := read(i, 15)
		if got, want := w.stalled(now), i >= 12; got != want {
			t.Fatalf("noise, reading %d: stalled %v; want %v", i, got, want)
		}
	}
	now := read(13, 1100)
	if w.stalled(now) || w.quiet(now) != 0 {
		t.Fatalf("a kilobyte in a quarter second: stalled %v, quiet %v; want alive now", w.stalled(now), w.quiet(now))
	}
	for i := 14; i <= 25; i++ {
		now = read(i, 15)
	}
	if !w.stalled(now) {
		t.Errorf("noise for 3s after the kilobyte: not stalled; want stalled")
	}
}

func TestStallWatchQuiet(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(0, 0)
	w := newStallWatch(time.Minute, t0)
	w.event(t0.Add(10 * time.Second))
	if got := w.quiet(t0.Add(70 * time.Second)); got != time.Minute {
		t.Errorf("quiet = %v; want 1m", got)
	}
}

func TestStallWatchWatch(t *testing.T) {
	t.Parallel()
	constant := func() (uint64, error) { return 42, nil }
	t.Run("stalled", func(t *testing.T) {
		w := newStallWatch(20*time.Millisecond, time.Now())
		if !w.watch(nil, time.Millisecond, constant) {
			t.Error("watch = false over a quiet CLI; want true")
		}
	})
	t.Run("disabled", func(t *testing.T) {
		w := newStallWatch(0, time.Now())
		if w.watch(nil, time.Millisecond, constant) {
			t.Error("watch = true with the watchdog off")
		}
	})
	t.Run("cli gone", func(t *testing.T) {
		w := newStallWatch(time.Hour, time.Now())
		gone := func() (uint64, error) { return 0, errors.New("no such process") }
		if w.watch(nil, time.Millisecond, gone) {
			t.Error("watch = true once the CLI is gone")
		}
	})
	t.Run("cancelled while fed", func(t *testing.T) {
		// The stream reader feeds events while watch reads: -race checks
		// the locking.
		w := newStallWatch(time.Hour, time.Now())
		stop := make(chan struct{})
		var n atomic.Int64
		done := make(chan bool)
		go func() {
			done <- w.watch(stop, time.Millisecond, func() (uint64, error) { return uint64(n.Add(1)), nil })
		}()
		for i := 0; n.Load() < 10; i++ {
			id := fmt.Sprint(i)
			w.toolUse(id, time.Now())
			w.toolResult(id, time.Now())
			w.event(time.Now())
		}
		close(stop)
		if <-done {
			t.Error("watch = true; want false once cancelled")
		}
	})
}

// A machine suspended mid-turn (Fly.io) comes back with its clock far
// ahead: the time away is no sign of a stall.
func TestStallWatchRestartsAfterAJump(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(0, 0)
	w := newStallWatch(10*time.Second, t0)
	w.ioTotal(100, t0)
	back := t0.Add(time.Hour)
	w.restart(100, back)
	if w.stalled(back.Add(9 * time.Second)) {
		t.Error("stalled 9 s after the machine came back; want the quiet time counted from then")
	}
	if !w.stalled(back.Add(10 * time.Second)) {
		t.Error("not stalled 10 s after the machine came back, quiet since; want stalled")
	}
}
