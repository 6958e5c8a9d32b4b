package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/testfs"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// vmdBin and fake are built once for the run, as for cmd/vmd's tests.
var vmdBin, fake string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.VMD, testbin.FakeClaude}, []*string{&vmdBin, &fake})
}

// seed orders the mix of the tests' runs. Fixed, so that a failure
// replays: VMD_LOAD=1 go test ./cmd/vmdload -run '^TestRun$' -seed N.
var seed = flag.Uint64("seed", 1, "orders the mix of commands; the seed a failed run logged replays it")

// small is the runner in a size the tests can afford: every phase and
// every fault, small.
func small() Config {
	return Config{VMD: vmdBin, Fake: fake, Commands: 100, Timeout: 500 * time.Millisecond,
		StormClients: 20, StormRounds: 1, HealthCommands: 30, HealthClients: 2, OverflowFiles: 20000,
		Duplicates: 5, Seed: *seed, RequireAll: os.Getenv("VMD_REQUIRE_REAL") == "1"}
}

// loadEnv selects TestRun. The whole run takes about 40 s, most of what
// go test ./... would take; CI runs it as a step of its own, with go run
// (see .ci/run), and these tests keep the runner itself honest.
const loadEnv = "VMD_LOAD"

// TestRun runs every phase against the real vmd and fails on any violated
// expectation, printing the whole report. With VMD_REQUIRE_REAL=1 a fault
// left out for want of a tool or a privilege fails it too.
func TestRun(t *testing.T) {
	if os.Getenv(loadEnv) != "1" {
		t.Skipf("the whole load-and-fault run (about 40 s): %s=1 selects it", loadEnv)
	}
	cfg := small()
	t.Logf("seed %d (-seed %d replays this run)", cfg.Seed, cfg.Seed)
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
	if len(rep.Faults) != len(faultCases) {
		t.Errorf("%d faults reported; want %d", len(rep.Faults), len(faultCases))
	}
	for _, f := range rep.Faults {
		if f.Result == "not run" {
			t.Logf("fault %q not run here: %s", f.Fault, f.Why)
		}
	}
}

// TestRunCatchesWrongAnswers points vmd at a CLI that echoes each script
// instead of acting it out: the checks must notice, or they prove nothing.
func TestRunCatchesWrongAnswers(t *testing.T) {
	t.Parallel()
	echo := filepath.Join(t.TempDir(), "echo")
	if err := testfs.WriteExecutable(echo, []byte("#!/bin/sh\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := small()
	// Answers are what is checked here, not memory: no waiting for vmd to
	// settle before each of the six readings.
	cfg.Fake, cfg.Commands, cfg.Phases, cfg.Settle = echo, 18, []string{"load"}, time.Millisecond
	// Cold: warm, cat never answers the stream-json input at all, and the
	// first command would wait out its timeout.
	cfg.Cold = true
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
	t.Parallel()
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
