package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// withVersion sets how the fake answers --version, and a file it appends a
// line to at each run; runs counts the lines.
func withVersion(t *testing.T, how string) ([]string, func() int) {
	log := filepath.Join(t.TempDir(), "runs")
	return []string{"FAKECLAUDE_VERSION=" + how, "FAKECLAUDE_VERSION_LOG=" + log}, func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "\n")
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
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
			t.Parallel()
			env, runs := withVersion(t, tt.how)
			bin := fake
			if tt.bin != "" {
				bin = tt.bin
			}
			s := start(t, agent.Options{Bin: bin, Env: env, VersionTimeout: 300 * time.Millisecond, VersionRetry: time.Hour})
			v, err := s.ag.Version(context.Background())
			if tt.ok && (err != nil || v != tt.want) || !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Version() = %q, %v; want %q (ok %v)", v, err, tt.want, tt.ok)
			}
			// Asked again, it answers the same without another run.
			v2, err2 := s.ag.Version(context.Background())
			if v2 != v || (err2 == nil) != (err == nil) {
				t.Errorf("Version() again = %q, %v; want %q, %v", v2, err2, v, err)
			}
			if n := runs(); tt.bin == "" && n != 1 {
				t.Errorf("--version ran %d times; want 1", n)
			}
		})
	}
}

// A failure is answered again without a run within the retry interval, and
// tried again past it.
func TestVersionRetry(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		retry time.Duration
		want  int
	}{{"within", time.Hour, 1}, {"past", time.Nanosecond, 5}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, runs := withVersion(t, "fail")
			s := start(t, agent.Options{Env: env, VersionRetry: tt.retry})
			for range 5 {
				if _, err := s.ag.Version(context.Background()); err == nil {
					t.Fatal("Version() = nil error; want the failure")
				}
			}
			if n := runs(); n != tt.want {
				t.Errorf("5 calls in a row: --version ran %d times; want %d", n, tt.want)
			}
		})
	}
}

// Callers at the same time share one run; a caller that stops waiting does
// not stop it.
func TestVersionShared(t *testing.T) {
	t.Parallel()
	env, runs := withVersion(t, "slow 300ms")
	s := start(t, agent.Options{Env: env})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.ag.Version(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Version(ctx expiring first) error = %v; want context.DeadlineExceeded", err)
	}
	var wg sync.WaitGroup
	got := make([]string, 4)
	for i := range got {
		wg.Go(func() { got[i], _ = s.ag.Version(context.Background()) })
	}
	wg.Wait()
	for i, v := range got {
		if v != "1.0.0-fake (Claude Code)" {
			t.Errorf("caller %d: Version() = %q; want the version", i, v)
		}
	}
	if n := runs(); n != 1 {
		t.Errorf("--version ran %d times; want 1", n)
	}
}

// The probe runs beside a command, and the sweep after the command, which
// kills what the command left, spares it.
func TestVersionBesideCommand(t *testing.T) {
	t.Parallel()
	env, runs := withVersion(t, "slow 500ms")
	s := start(t, agent.Options{Env: env})
	got := make(chan error, 1)
	go func() {
		_, err := s.ag.Version(context.Background())
		got <- err
	}()
	vmdtest.Eventually(t, "the probe started", func() bool { return runs() == 1 })
	p := s.spawn(t, agent.SpawnRequest{})
	res := turn(t, p, agent.TurnRequest{Prompt: "escape\nsay done"})
	vmdtest.Within(t, "the command's process to be done", p.Done())
	if res.ExitCode != 0 || p.Exit().Strays != 1 {
		t.Errorf("command beside the probe: exit %d, %d strays; want 0, 1 (the escaped process, not the probe)", res.ExitCode, p.Exit().Strays)
	}
	if err := <-got; err != nil {
		t.Errorf("Version() beside a command = %v; want the version", err)
	}
}

// Stop kills a probe at once; after it nothing new starts.
func TestVersionStop(t *testing.T) {
	t.Parallel()
	env, runs := withVersion(t, "hang")
	s := start(t, agent.Options{Env: env, VersionRetry: time.Nanosecond})
	got := make(chan error, 1)
	go func() {
		_, err := s.ag.Version(context.Background())
		got <- err
	}()
	vmdtest.Eventually(t, "the probe started", func() bool { return runs() == 1 })
	s.sup.Stop()
	err := vmdtest.Within(t, "the probe to end", got)
	if err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("Version() during Stop = %v; want it stopped", err)
	}
	vmdtest.Within(t, "the supervisor to stop", s.sup.Done())
	if _, err := s.ag.Version(context.Background()); !errors.Is(err, agent.ErrStopped) {
		t.Errorf("Version() after Stop = %v; want ErrStopped", err)
	}
	if n := runs(); n != 1 {
		t.Errorf("--version ran %d times; want 1", n)
	}
}

// A version once known is kept, even after Stop.
func TestVersionKept(t *testing.T) {
	t.Parallel()
	s := start(t, agent.Options{})
	if v := s.ag.KnownVersion(); v != "" {
		t.Errorf("KnownVersion() before any probe = %q; want none", v)
	}
	v, err := s.ag.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if known := s.ag.KnownVersion(); known != v {
		t.Errorf("KnownVersion() = %q; want %q", known, v)
	}
	s.sup.Stop()
	vmdtest.Within(t, "the supervisor to stop", s.sup.Done())
	if v2, err := s.ag.Version(context.Background()); v2 != v || err != nil {
		t.Errorf("Version() after Stop = %q, %v; want %q", v2, err, v)
	}
}
