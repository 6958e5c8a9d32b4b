// Command vmdload proves vmd under load and faults. It starts the vmd
// binary as a real process on loopback (127.0.0.1 only) with the fake CLI
// (internal/fakeclaude), through the shared test harness
// (internal/vmdtest). Two halves:
//
//   - load: commands of every kind back to back, sent by vegeta's library
//     one at a time (vmd has one slot), every answer checked exactly and
//     nothing left below vmd after it; then /health asked for without
//     pause while commands run. Latency and throughput are vegeta's
//     figures; vmd's memory, descriptors, threads and goroutines are read
//     settled before and after.
//   - faults: a table of cases (faults.go), each breaking vmd's
//     surroundings or its clients one way and checking the answer, the log
//     line and that vmd still serves after.
//
// It is bounded in count (flags), stops by itself, prints a report, and
// exits 1 if any expectation failed, 2 if the run could not be carried
// out. No expectation is on a duration: figures are measured, not judged.
//
//	go run ./cmd/vmdload      # 10,000 commands
//	go run -race ./cmd/vmdload -n 500 -health-commands 100 -require-all  # CI's short form
//
// Run as root on Linux, the faults also fill a 64 KiB tmpfs and remount
// directories read-only; faults that cannot be meaningful here (another
// OS, no root, a vmd without the feature) are reported "not run", saying
// why, never passed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/testfs"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// Config is one run of the load-and-fault runner.
type Config struct {
	// VMD and Fake are the vmd binary and the fake CLI; each is built with
	// go build when empty.
	VMD, Fake string
	// Commands is how many commands the load phase runs.
	Commands int
	// Timeout is the timeoutMs of the mix's timeout commands: small, so
	// that they are quick.
	Timeout time.Duration
	// StormClients POST at once in each of StormRounds rounds, with the
	// slot idle and with it busy.
	StormClients, StormRounds int
	// HealthCommands run while HealthClients ask for /health.
	HealthCommands, HealthClients int
	// OverflowFiles are made in the images directory during one command.
	OverflowFiles int
	// Duplicates is how many commands the idempotency cases submit twice.
	Duplicates int
	// Cold runs vmd with warm off: a CLI process per command. Warm (the
	// default, as vmd's), a conversation's CLI stays up between its
	// commands, and what its turns left running lives as long as it does.
	Cold bool
	// Seed orders the mix of commands; the same seed replays a run.
	Seed uint64
	// RequireAll fails the run when a fault is left out for want of a tool
	// or a privilege ("needs ..."), where the machine should have them all
	// (CI, root on Linux). Faults that cannot apply here are still only
	// reported.
	RequireAll bool
	// Settle, if set, replaces the 1.5 s vmd idles before each settled
	// reading of its memory: shorter, the readings mean little, for a run
	// that checks answers alone.
	Settle time.Duration
	// Phases, if not empty, limits the run: load, health, faults.
	Phases []string
	// Only, if not empty, runs the faults whose names hold one of these.
	Only []string
	// Progress gets a line as each phase and case ends (nil: none).
	Progress io.Writer `json:"-"`
}

// DefaultConfig is the full run.
func DefaultConfig() Config {
	return Config{Commands: 10000, Timeout: 300 * time.Millisecond, StormClients: 100, StormRounds: 3,
		HealthCommands: 500, HealthClients: 4, OverflowFiles: 20000, Duplicates: 100, Seed: 1}
}

func main() {
	cfg := DefaultConfig()
	flag.StringVar(&cfg.VMD, "vmd", "", "vmd `binary`; built from ./cmd/vmd when empty")
	flag.StringVar(&cfg.Fake, "fake", "", "fake CLI `binary`; built from ./internal/fakeclaude when empty")
	flag.IntVar(&cfg.Commands, "n", cfg.Commands, "commands in the load phase")
	flag.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "timeoutMs of the mix's timeout commands")
	flag.IntVar(&cfg.StormClients, "storm-clients", cfg.StormClients, "concurrent POSTs in each storm round")
	flag.IntVar(&cfg.StormRounds, "storm-rounds", cfg.StormRounds, "storm rounds with the slot idle, and as many with it busy")
	flag.IntVar(&cfg.HealthCommands, "health-commands", cfg.HealthCommands, "commands run while /health is asked for")
	flag.IntVar(&cfg.HealthClients, "health-clients", cfg.HealthClients, "clients asking for /health without pause")
	flag.IntVar(&cfg.OverflowFiles, "overflow-files", cfg.OverflowFiles, "files made in the images directory during one command")
	flag.IntVar(&cfg.Duplicates, "duplicates", cfg.Duplicates, "commands submitted twice with one Idempotency-Key")
	flag.BoolVar(&cfg.Cold, "cold", false, "run vmd with WARM=false: a CLI process per command")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "orders the mix of commands; the same seed replays a run")
	flag.BoolVar(&cfg.RequireAll, "require-all", false, "fail when a fault is left out for want of a tool or a privilege (CI: root on Linux)")
	phases := flag.String("phases", "", "comma-separated subset of load,health,faults (default all; \"mixed\" is load)")
	only := flag.String("faults", "", "comma-separated words: run only the faults whose names hold one")
	asJSON := flag.Bool("json", false, "print the report as JSON instead of text")
	flag.Parse()
	if *phases != "" {
		cfg.Phases = strings.Split(strings.ReplaceAll(*phases, "mixed", "load"), ",")
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	cfg.Progress = os.Stderr

	// Ctrl-C ends the run early, still unmounting and stopping vmd.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		if *asJSON {
			_ = rep.WriteJSON(os.Stdout)
		} else {
			rep.WriteText(os.Stdout)
		}
	}
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "vmdload:", err)
		os.Exit(2)
	case rep.Failed():
		os.Exit(1)
	}
}

// runner holds what the phases share.
type runner struct {
	cfg  Config
	rep  *Report
	root *vmdtest.T
	work string // the run's temporary directory
	fake string // the runner's own copy of the fake CLI, which faults move
}

// Run builds what it is not given, runs the phases and returns the report.
// An error means the run could not be carried out at all; a vmd that
// misbehaves is reported in Report.Violations.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	rep := &Report{Started: time.Now(), Root: os.Geteuid() == 0, Violations: []string{}}
	start := time.Now()
	defer func() { rep.Duration = Duration(time.Since(start)) }()
	work, err := os.MkdirTemp("", "vmdload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if cfg.VMD, err = buildIfEmpty(cfg.VMD, "./cmd/vmd", filepath.Join(work, "vmd")); err != nil {
		return nil, err
	}
	if cfg.Fake, err = buildIfEmpty(cfg.Fake, "./internal/fakeclaude", filepath.Join(work, "fakeclaude-built")); err != nil {
		return nil, err
	}
	rep.Config = cfg
	// The runner's own copy, so that faults can rename, chmod and replace
	// it, and so that a fake CLI found running this path is this run's.
	fake := filepath.Join(work, "bin", "fakeclaude")
	if err := testfs.CopyExecutable(cfg.Fake, fake); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, rep: rep, work: work, fake: fake, root: vmdtest.NewT(ctx, "vmdload", cfg.Progress)}
	r.progress("seed %d (-seed %d replays this run)", cfg.Seed, cfg.Seed)
	if r.wants("load") || r.wants("health") {
		r.phase("load", r.loadPhases)
	}
	if r.wants("faults") && ctx.Err() == nil {
		r.phase("faults", r.faults)
	}
	return rep, ctx.Err()
}

// phase runs f as a subtest of the run; what it records fails the run.
func (r *runner) phase(name string, f func(testing.TB)) {
	sub := r.root.Run(name, f)
	for _, e := range sub.Errors() {
		r.rep.fail("%s: %s", name, e)
	}
	if why := sub.SkipReason(); why != "" {
		r.rep.note("%s: not run: %s", name, why)
	}
}

func (r *runner) wants(phase string) bool {
	return len(r.cfg.Phases) == 0 || slices.Contains(r.cfg.Phases, phase)
}

func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "vmdload: "+format+"\n", args...)
	}
}

// buildIfEmpty returns path, or builds pkg into out when path is empty.
func buildIfEmpty(path, pkg, out string) (string, error) {
	if path != "" {
		return filepath.Abs(path)
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s (run vmdload from the repository, or give -vmd and -fake): %w\n%s", pkg, err, b)
	}
	return out, nil
}
