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
// and every fault, small.
func small() Config {
	return Config{VMD: vmdBin, Fake: fake, Commands: 100, Timeout: 500 * time.Millisecond,
		StormClients: 20, StormRounds: 1, HealthCommands: 30, HealthClients: 2, OverflowFiles: 20000,
		Duplicates: 5, Seed: uint64(time.Now().UnixNano())}
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
	if rep.Load == nil || rep.Load.Commands.Requests != uint64(cfg.Commands) {
		t.Errorf("load phase ran %v; want %d commands", rep.Load, cfg.Commands)
	}
	if rep.Health == nil || rep.Health.Health.Requests == 0 {
		t.Errorf("no /health answered under load: %+v", rep.Health)
	}
	if len(rep.Faults) != len(faultCases) {
		t.Errorf("%d faults reported; want %d", len(rep.Faults), len(faultCases))
	}
	// A fault left out for want of a tool or a privilege ("needs ...")
	// fails where CI says the machine has them all; one left out because
	// vmd lacks the feature yet, or the OS has no such thing, is logged.
	for _, f := range rep.Faults {
		switch {
		case f.Result != "not run":
		case os.Getenv("VMD_REQUIRE_REAL") == "1" && strings.HasPrefix(f.Why, "needs "):
			t.Errorf("fault %q not run with VMD_REQUIRE_REAL=1: %s", f.Fault, f.Why)
		default:
			t.Logf("fault %q not run here: %s", f.Fault, f.Why)
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
	cfg.Fake, cfg.Commands, cfg.Phases = echo, 18, []string{"load"}
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
		`say: text "say hello-`, // a wrong answer
		"die: status 200",       // a crash that is not one
		"timeout: status 200",   // a timeout that is not one
		`want ["/images/load-`,  // no image where one was promised
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

// TestFaultImagesDeletedBusy runs the one fault whose answer depends on
// what the CLI said before DELETE: the runner must wait for the words to
// reach vmd, however long the CLI takes to say them.
func TestFaultImagesDeletedBusy(t *testing.T) {
	cfg := small()
	cfg.Phases, cfg.Only = []string{"faults"}, []string{"images dir deleted during a command"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Faults) != 1 || rep.Faults[0].Result != "ok" || rep.Failed() {
		var text strings.Builder
		rep.WriteText(&text)
		t.Fatalf("faults %+v; want the one, ok:\n%s", rep.Faults, text.String())
	}
}
