package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// withVersion sets how the fake answers --version, and a file it appends a
// line to at each run; runs counts the lines.
func withVersion(t *testing.T, how string) (func(*Config), func() int) {
	log := filepath.Join(t.TempDir(), "runs")
	return func(c *Config) {
			c.Env = append(c.Env, "FAKECLAUDE_VERSION="+how, "FAKECLAUDE_VERSION_LOG="+log)
		}, func() int {
			b, _ := os.ReadFile(log)
			return strings.Count(string(b), "\n")
		}
}

func TestCLIVersion(t *testing.T) {
	tests := []struct {
		name string
		how  string // FAKECLAUDE_VERSION
		bin  string // instead of the fake
		want string // the version, or a part of the error
		ok   bool
	}{
		{"answers", "", "", "1.0.0-fake (Claude Code)", true},
		{"fails", "fail", "", "--version exited with status 1: version: broken", false},
		{"says nothing", "empty", "", "--version printed nothing", false},
		{"missing", "", "/no/such/claude", `claude_bin "/no/such/claude": `, false},
		{"hangs", "hang", "", "--version did not answer within 300ms", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tweak, runs := withVersion(t, tt.how)
			h := start(t, func(c *Config) {
				tweak(c)
				if tt.bin != "" {
					c.Bin = tt.bin
				}
			})
			h.sup.ver.timeout = 300 * time.Millisecond
			v, err := h.sup.CLIVersion(context.Background())
			if tt.ok && (err != nil || v != tt.want) || !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("CLIVersion() = %q, %v; want %q (ok %v)", v, err, tt.want, tt.ok)
			}
			// Asked again, it answers the same without another run.
			v2, err2 := h.sup.CLIVersion(context.Background())
			if v2 != v || (err2 == nil) != (err == nil) {
				t.Errorf("CLIVersion() again = %q, %v; want %q, %v", v2, err2, v, err)
			}
			if n := runs(); tt.bin == "" && n != 1 {
				t.Errorf("--version ran %d times; want 1", n)
			}
			if live, zombies := descendants(t); live != 0 || zombies != 0 {
				t.Errorf("left %d live children and %d zombies; want none", live, zombies)
			}
		})
	}
}

// A failure is tried again, but not before the retry interval.
func TestCLIVersionRetry(t *testing.T) {
	tweak, runs := withVersion(t, "fail")
	h := start(t, tweak)
	h.sup.ver.retry = 300 * time.Millisecond
	for range 5 {
		if _, err := h.sup.CLIVersion(context.Background()); err == nil {
			t.Fatal("CLIVersion() = nil error; want the failure")
		}
	}
	if n := runs(); n != 1 {
		t.Errorf("5 calls at once: --version ran %d times; want 1", n)
	}
	time.Sleep(350 * time.Millisecond)
	h.sup.CLIVersion(context.Background())
	if n := runs(); n != 2 {
		t.Errorf("after the retry interval: --version ran %d times; want 2", n)
	}
}

// Callers at the same time share one run; a caller that stops waiting does
// not stop it.
func TestCLIVersionShared(t *testing.T) {
	tweak, runs := withVersion(t, "slow 300ms")
	h := start(t, tweak)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.sup.CLIVersion(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CLIVersion(ctx expiring first) error = %v; want context.DeadlineExceeded", err)
	}
	var wg sync.WaitGroup
	got := make([]string, 4)
	for i := range got {
		wg.Go(func() { got[i], _ = h.sup.CLIVersion(context.Background()) })
	}
	wg.Wait()
	for i, v := range got {
		if v != "1.0.0-fake (Claude Code)" {
			t.Errorf("caller %d: CLIVersion() = %q; want the version", i, v)
		}
	}
	if n := runs(); n != 1 {
		t.Errorf("--version ran %d times; want 1", n)
	}
}

// The probe runs beside a command, and the sweep after the command, which
// kills every other child of vmd, spares it.
func TestCLIVersionBesideCommand(t *testing.T) {
	tweak, _ := withVersion(t, "slow 500ms")
	h := start(t, tweak)
	got := make(chan error, 1)
	go func() {
		_, err := h.sup.CLIVersion(context.Background())
		got <- err
	}()
	waitFor(t, func() bool {
		h.sup.reapMu.Lock()
		defer h.sup.reapMu.Unlock()
		return len(h.sup.waiters) == 1
	})
	res := h.exec(t, "escape\nsay done")
	if res.ExitCode != 0 || res.Strays != 1 {
		t.Errorf("command beside the probe: exit %d, %d strays; want 0, 1 (the escaped process, not the probe)", res.ExitCode, res.Strays)
	}
	if err := <-got; err != nil {
		t.Errorf("CLIVersion() beside a command = %v; want the version", err)
	}
}

// Stop kills a probe at once; after it nothing new starts.
func TestCLIVersionStop(t *testing.T) {
	tweak, runs := withVersion(t, "hang")
	h := start(t, tweak)
	got := make(chan error, 1)
	go func() {
		_, err := h.sup.CLIVersion(context.Background())
		got <- err
	}()
	waitFor(t, func() bool { return runs() == 1 })
	stopped := time.Now()
	h.sup.Stop()
	err := <-got
	if err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("CLIVersion() during Stop = %v; want it stopped", err)
	}
	if d := time.Since(stopped); d > 2*time.Second {
		t.Errorf("probe stopped %v after Stop; want at once", d)
	}
	<-h.sup.Done()
	h.sup.ver.retry = time.Nanosecond
	if _, err := h.sup.CLIVersion(context.Background()); !errors.Is(err, ErrDraining) {
		t.Errorf("CLIVersion() after Stop = %v; want ErrDraining", err)
	}
	if n := runs(); n != 1 {
		t.Errorf("--version ran %d times; want 1", n)
	}
	if live, zombies := descendants(t); live != 0 || zombies != 0 {
		t.Errorf("left %d live children and %d zombies; want none", live, zombies)
	}
}

// A version once known is kept, even after Stop.
func TestCLIVersionKept(t *testing.T) {
	h := start(t, nil)
	if v := h.sup.KnownCLIVersion(); v != "" {
		t.Errorf("KnownCLIVersion() before any probe = %q; want none", v)
	}
	v, err := h.sup.CLIVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if known := h.sup.KnownCLIVersion(); known != v {
		t.Errorf("KnownCLIVersion() = %q; want %q", known, v)
	}
	h.sup.Stop()
	<-h.sup.Done()
	if v2, err := h.sup.CLIVersion(context.Background()); v2 != v || err != nil {
		t.Errorf("CLIVersion() after Stop = %q, %v; want %q", v2, err, v)
	}
}
