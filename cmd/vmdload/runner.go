//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Config is one run of the load-and-fault runner.
type Config struct {
	// VMD and Fake are the vmd binary and the fake CLI
	// (internal/fakeclaude); each is built with go build when empty.
	VMD, Fake string
	// Commands is how many commands the mixed phase runs.
	Commands int
	// Timeout is COMMAND_TIMEOUT_MS of the vmd the mixed and /health phases
	// run on: small, so that the timeout cases are quick.
	Timeout time.Duration
	// StormClients POST at once in each storm round; StormRounds rounds
	// are run with the slot idle, and as many with it busy.
	StormClients, StormRounds int
	// HealthCommands run back to back while HealthClients goroutines ask
	// for /health as fast as they can.
	HealthCommands, HealthClients int
	// OverflowFiles are created in the images directory during one
	// command, to overflow vmd's inotify queue (16384 events by default).
	OverflowFiles int
	// Seed orders the mix of commands.
	Seed uint64
	// Phases, if not empty, limits the run to these: mixed, health,
	// storms, faults.
	Phases []string
	// Progress, if not nil, gets a line as each phase starts and ends.
	Progress io.Writer
	// VMDLog, if not nil, gets every line vmd logs.
	VMDLog io.Writer
}

// DefaultConfig is the full run the README reports.
func DefaultConfig() Config {
	return Config{
		Commands:       10000,
		Timeout:        300 * time.Millisecond,
		StormClients:   100,
		StormRounds:    3,
		HealthCommands: 500,
		HealthClients:  4,
		OverflowFiles:  20000,
		Seed:           1,
	}
}

// Report is what a run found. Violations lists every expectation that did
// not hold; the run passes when it is empty.
type Report struct {
	Config   reportConfig  `json:"config"`
	Started  time.Time     `json:"started"`
	Duration Duration      `json:"durationMs"`
	Root     bool          `json:"root"`
	Mixed    *MixedReport  `json:"mixed,omitempty"`
	Health   *HealthReport `json:"health,omitempty"`
	Storms   *StormReport  `json:"storms,omitempty"`
	Faults   []FaultResult `json:"faults,omitempty"`
	// FaultUsage is the fault vmd's settled usage before and after the
	// faults.
	FaultUsage *[2]usage    `json:"faultUsage,omitempty"`
	Stops      []StopResult `json:"stops,omitempty"`
	Notes      []string     `json:"notes,omitempty"`
	Violations []string     `json:"violations"`
	// Dropped counts the violations past the first maxViolations.
	Dropped int `json:"violationsNotListed,omitempty"`

	violations sync.Mutex // guards Violations and Dropped
}

// reportConfig is the part of Config that shapes the figures.
type reportConfig struct {
	VMD            string   `json:"vmd"`
	Fake           string   `json:"fake"`
	Commands       int      `json:"commands"`
	Timeout        Duration `json:"commandTimeoutMs"`
	StormClients   int      `json:"stormClients"`
	StormRounds    int      `json:"stormRounds"`
	HealthCommands int      `json:"healthCommands"`
	HealthClients  int      `json:"healthClients"`
	OverflowFiles  int      `json:"overflowFiles"`
	Seed           uint64   `json:"seed"`
}

// StopResult is how a vmd ended at the end of its phases: SIGTERM must make
// it exit 0 within Docker's 10 s.
type StopResult struct {
	VMD      string   `json:"vmd"`
	ExitCode int      `json:"exitCode"`
	Took     Duration `json:"tookMs"`
}

// maxViolations bounds the list kept: a broken vmd fails every command, and
// the first few say what is wrong.
const maxViolations = 100

// fail records a violated expectation.
func (r *Report) fail(format string, args ...any) {
	r.violations.Lock()
	defer r.violations.Unlock()
	if len(r.Violations) >= maxViolations {
		r.Dropped++
		return
	}
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Failed reports whether any expectation was violated.
func (r *Report) Failed() bool {
	r.violations.Lock()
	defer r.violations.Unlock()
	return len(r.Violations) > 0
}

// runner holds what the phases share.
type runner struct {
	cfg  Config
	rep  *Report
	work string // the run's temporary directory
	fake string // the runner's own copy of the fake CLI, which faults may move

	faultImages          string // the fault vmd's IMAGES_DIR
	faultStart, faultEnd usage  // the fault vmd's settled usage around the faults
}

// Run builds what it is not given, runs the phases and returns the report.
// An error means the run could not be carried out at all (no vmd, no
// binaries); a vmd that misbehaves is reported in Report.Violations.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	rep := &Report{Started: time.Now(), Root: os.Geteuid() == 0, Violations: []string{}}
	start := time.Now()
	defer func() { rep.Duration = Duration(time.Since(start)) }()
	work, err := os.MkdirTemp("", "vmdload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if cfg.VMD == "" || cfg.Fake == "" {
		progress(cfg, "building vmd and the fake CLI")
	}
	if cfg.VMD, err = buildIfEmpty(cfg.VMD, "./cmd/vmd", filepath.Join(work, "vmd")); err != nil {
		return nil, err
	}
	if cfg.Fake, err = buildIfEmpty(cfg.Fake, "./internal/fakeclaude", filepath.Join(work, "fakeclaude-built")); err != nil {
		return nil, err
	}
	rep.Config = reportConfig{VMD: cfg.VMD, Fake: cfg.Fake, Commands: cfg.Commands, Timeout: Duration(cfg.Timeout),
		StormClients: cfg.StormClients, StormRounds: cfg.StormRounds, HealthCommands: cfg.HealthCommands,
		HealthClients: cfg.HealthClients, OverflowFiles: cfg.OverflowFiles, Seed: cfg.Seed}
	// The runner's own copy, so that the faults can rename, chmod and
	// replace it without touching the caller's file, and so that a fake
	// CLI process found anywhere on the machine running this path is one
	// of this run's.
	fake := filepath.Join(work, "bin", "fakeclaude")
	if err := copyFile(cfg.Fake, fake, 0o755); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, rep: rep, work: work, fake: fake}

	if r.wants("mixed") || r.wants("health") {
		if err := r.onLoadVMD(ctx); err != nil {
			return rep, err
		}
	}
	if r.wants("storms") || r.wants("faults") {
		if err := r.onFaultVMD(ctx); err != nil {
			return rep, err
		}
	}
	return rep, ctx.Err()
}

func (r *runner) wants(phase string) bool {
	if len(r.cfg.Phases) == 0 {
		return true
	}
	for _, p := range r.cfg.Phases {
		if p == phase {
			return true
		}
	}
	return false
}

// onLoadVMD runs the mixed and /health phases on a vmd with a small command
// timeout, then stops it.
func (r *runner) onLoadVMD(ctx context.Context) error {
	dir := filepath.Join(r.work, "load")
	images, tmp := filepath.Join(dir, "images"), filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	v, err := startVMD(ctx, "load", r.cfg.VMD, vmdEnv(r.fake, images, tmp, r.cfg.Timeout), r.cfg.VMDLog)
	if err != nil {
		return err
	}
	defer v.kill()
	if r.wants("mixed") {
		progress(r.cfg, "mixed: %d commands", r.cfg.Commands)
		r.rep.Mixed = r.mixed(ctx, v, images, tmp)
	}
	if r.wants("health") && ctx.Err() == nil {
		progress(r.cfg, "health: %d commands, %d clients on /health", r.cfg.HealthCommands, r.cfg.HealthClients)
		r.rep.Health = r.health(ctx, v, images)
	}
	r.stopVMD(v)
	return nil
}

// onFaultVMD runs the storms and the faults on a vmd with room for slower
// commands, its images directory and TMPDIR on a small tmpfs when the
// runner may mount one.
func (r *runner) onFaultVMD(ctx context.Context) error {
	disk, err := newFaultDisk(filepath.Join(r.work, "faults"))
	if err != nil {
		return err
	}
	defer disk.release(r.rep)
	if disk.mountErr != nil {
		r.rep.note("fault vmd: images directory and TMPDIR on a plain directory, not a tmpfs (%v)", disk.mountErr)
	}
	v, err := startVMD(ctx, "faults", r.cfg.VMD, vmdEnv(r.fake, disk.images, disk.tmp, faultTimeout), r.cfg.VMDLog)
	if err != nil {
		return err
	}
	defer v.kill()
	// Faults first: a storm leaves a hundred fasthttp workers parked for
	// up to 20 s, which the faults' goroutine figures would count.
	if r.wants("faults") {
		progress(r.cfg, "faults")
		r.rep.Faults = r.faults(ctx, v, disk)
		if ctx.Err() == nil {
			r.rep.FaultUsage = &[2]usage{r.faultStart, r.faultEnd}
		}
	}
	if r.wants("storms") && ctx.Err() == nil {
		progress(r.cfg, "storms: %d rounds idle and %d busy, %d clients each", r.cfg.StormRounds, r.cfg.StormRounds, r.cfg.StormClients)
		r.rep.Storms = r.storms(ctx, v)
	}
	r.stopVMD(v)
	return nil
}

// stopVMD stops a vmd with SIGTERM, as docker stop does, and checks that
// it exits 0 in time and leaves no fake CLI running anywhere.
func (r *runner) stopVMD(v *vmdProc) {
	code, took, err := v.stop()
	r.rep.Stops = append(r.rep.Stops, StopResult{VMD: v.name, ExitCode: code, Took: Duration(took)})
	if err != nil {
		r.rep.fail("%s vmd: stop: %v", v.name, err)
	} else if code != 0 {
		r.rep.fail("%s vmd: exit status %d after SIGTERM, want 0", v.name, code)
	}
	if ps, err := processes(); err == nil {
		if left := runningExe(ps, r.fake); len(left) > 0 {
			r.rep.fail("%s vmd: fake CLI processes %v still running after vmd exited", v.name, left)
		}
	}
}

// faultTimeout is the fault vmd's COMMAND_TIMEOUT_MS: longer than any of its
// commands (the storm holders and the overflow command sleep up to 3 s).
const faultTimeout = 15 * time.Second

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

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, mode)
}

func progress(cfg Config, format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "vmdload: "+format+"\n", args...)
	}
}
