//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// vmdBin and fake are built once for the run, as for cmd/vmd's tests.
var vmdBin, fake string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.VMD, testbin.FakeClaude}, []*string{&vmdBin, &fake})
}

// small is the runner in the size CI can afford on every push: every phase
// and every fault, a hundred commands.
func small() Config {
	return Config{
		VMD: vmdBin, Fake: fake,
		Commands: 100,
		// Roomier than the binary's 300 ms: go test runs packages side by
		// side on CI's two cores, and a "say" must not time out.
		Timeout:        500 * time.Millisecond,
		StormClients:   20,
		StormRounds:    2,
		HealthCommands: 30,
		HealthClients:  2,
		OverflowFiles:  20000,
		Seed:           uint64(time.Now().UnixNano()),
	}
}

// TestRun runs every phase against the real vmd and fails on any violated
// expectation, printing the whole report.
func TestRun(t *testing.T) {
	cfg := small()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var text strings.Builder
	rep.WriteText(&text)
	if rep.Failed() {
		t.Fatalf("seed %d: expectations violated:\n%s", cfg.Seed, text.String())
	}
	t.Logf("report:\n%s", text.String())
	if rep.Mixed == nil || rep.Mixed.Commands != cfg.Commands {
		t.Errorf("mixed phase ran %v commands; want %d", rep.Mixed, cfg.Commands)
	}
	if rep.Health == nil || rep.Health.Health.Count == 0 {
		t.Errorf("no /health answered under load: %+v", rep.Health)
	}
	if rep.Storms == nil || len(rep.Storms.Rounds) != 2*cfg.StormRounds {
		t.Errorf("storm rounds = %+v; want %d", rep.Storms, 2*cfg.StormRounds)
	}
	// Every fault of faults.go, the two found by this runner included.
	if len(rep.Faults) != 14 {
		t.Errorf("%d faults ran; want 14", len(rep.Faults))
	}
	for _, f := range rep.Faults {
		if f.Result == "skipped" {
			t.Logf("fault %q skipped here: %s", f.Fault, f.How)
		}
	}
}

// TestRunCatchesWrongAnswers points vmd at a CLI that echoes each script
// instead of acting it out: the checks must notice, or they prove nothing.
func TestRunCatchesWrongAnswers(t *testing.T) {
	echo := filepath.Join(t.TempDir(), "echo")
	if err := os.WriteFile(echo, []byte("#!/bin/sh\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := small()
	cfg.Fake, cfg.Commands, cfg.Phases = echo, 18, []string{"mixed"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !rep.Failed() {
		var text strings.Builder
		rep.WriteText(&text)
		t.Fatalf("no violation reported with cat as the CLI:\n%s", text.String())
	}
	for _, want := range []string{
		`say: text "say hello-`,  // a wrong answer
		"die: status 200",        // a crash that is not one
		"timeout: status 200",    // a timeout that is not one
		"bare fork/exec: output", // the baseline checks its output too
		`want ["/images/load-`,   // no image where one was promised
	} {
		found := false
		for _, v := range rep.Violations {
			found = found || strings.Contains(v, want)
		}
		if !found {
			t.Errorf("no violation holding %q in:\n%s", want, strings.Join(rep.Violations, "\n"))
		}
	}
}

func TestDescendants(t *testing.T) {
	ps := []proc{
		{pid: 1, ppid: 0, state: 'S'},
		{pid: 10, ppid: 1, state: 'S'},  // vmd
		{pid: 11, ppid: 10, state: 'Z'}, // its zombie child
		{pid: 12, ppid: 10, state: 'S'},
		{pid: 13, ppid: 12, state: 'Z'}, // a grandchild's zombie: not vmd's to reap
		{pid: 14, ppid: 1, state: 'S'},
	}
	got := countTree(ps, 10)
	if want := (treeCount{Descendants: 3, Zombies: 1}); got != want {
		t.Errorf("countTree(vmd) = %+v; want %+v", got, want)
	}
	if got := countTree(ps, 14); got != (treeCount{}) {
		t.Errorf("countTree(leaf) = %+v; want none", got)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := Latency{Count: 100, P50: Duration(50 * time.Millisecond), P99: Duration(99 * time.Millisecond), Max: Duration(100 * time.Millisecond)}
	if got != want {
		t.Errorf("summarize(1..100ms) = %+v; want %+v", got, want)
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize(nil) = %+v; want zero", got)
	}
}

// TestReadUsage reads the test's own /proc entries.
func TestReadUsage(t *testing.T) {
	u, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSSKiB <= 0 || u.FDs < 3 || u.Threads < 1 {
		t.Errorf("readUsage(self) = %+v; want positive figures", u)
	}
	if _, err := readUsage(-1); err == nil {
		t.Error("readUsage(-1) succeeded")
	}
}
