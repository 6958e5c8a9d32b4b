package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// The store's own failures must be as safe as a crash already is: nothing
// runs twice, no answer is lost. Each case ends with that verdict in the
// report's notes, counted from the fake CLI's log of what it was asked.

// faultSecondVMD starts a second vmd on the faults vmd's state_dir while a
// keyed command runs there: it must exit 1 at once, naming the directory
// and the first's pid, having touched nothing; the command ends as it
// would have, and its key answers it again.
func faultSecondVMD(t testing.TB, e *faultEnv) {
	key := fmt.Sprintf("vmdload-second-%d", e.r.cfg.Seed)
	script := "say first-vmd\nsleep 300ms\nsay still-first"
	got := e.during(t, script, "Idempotency-Key", key)
	e.s.asked(t, script, 1)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, e.r.cfg.VMD)
	second.Env = e.s.env
	out, _ := second.CombinedOutput()
	if code := second.ProcessState.ExitCode(); code != 1 ||
		!strings.Contains(string(out), "is in use by another vmd") || !strings.Contains(string(out), fmt.Sprintf("(pid %d)", e.s.Pid)) {
		t.Errorf("a second vmd on the state_dir: exit %d, %s; want 1, saying it is in use by pid %d", code, clip(string(out), 400), e.s.Pid)
	}

	first := vmdtest.Within(t, "the first vmd's answer", got)
	if first == nil {
		return
	}
	if first.status != 200 || first.Text != "first-vmd\nstill-first\n" {
		t.Errorf("the command running when the second vmd started: %s; want 200 with its whole text", first)
	}
	again := e.s.mustPost(t, script, 200, "Idempotency-Key", key)
	lost := 0
	if string(again.raw) != string(first.raw) || again.header.Get("Idempotent-Replayed") != "true" {
		lost = 1
		t.Errorf("its key after the second vmd: %s, replayed %q; want the first answer again", again, again.header.Get("Idempotent-Replayed"))
	}
	runs := e.s.runs(script)
	if runs != 1 {
		t.Errorf("the CLI ran the command %d times; want once", runs)
	}
	e.r.rep.note("second vmd on the state_dir: refused at start; %d duplicate runs, %d answers lost", max(runs-1, 0), lost)
}
