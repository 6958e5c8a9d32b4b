package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/testfs"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// faultTimeout is the fault vmd's COMMAND_TIMEOUT_MS: no case waits for
// it; a command that must run until the runner has done something sleeps
// an hour and is ended by DELETE /command.
const faultTimeout = 5 * time.Minute

// faultRSSSlackKiB: the faults include answers listing 20,001 images and
// a stream of 64 MiB nobody reads, which leave partly used spans behind;
// the old runner saw the fault vmd's settled RSS plateau 2 to 4 MiB above
// its start. Twice the most seen flags a runaway, not that. Since vmd
// keeps its records in SQLite, its connections' page caches (about 2 MiB
// each, a writer and up to four readers) fill too once those answers have
// been written and read back: another 8 MiB, seen at 11 MiB in all.
const faultRSSSlackKiB = 16 << 10

// recordsKept is how many finished commands vmd keeps in memory
// (commands' defaultKeep).
const recordsKept = 100

// fault is one case of the table: what it breaks, the reason it cannot be
// meaningful here if any (need), and the case itself. Unless own is set,
// a command must succeed after it, with nothing left below vmd.
type fault struct {
	name string
	need func(e *faultEnv) string
	run  func(t testing.TB, e *faultEnv)
	own  bool // the case proves serving itself (it ran its own vmd)
}

// faultEnv is what the cases share: the runner, the fault vmd and its
// disk.
type faultEnv struct {
	r    *runner
	s    *server
	disk *faultDisk
	mark int // vmd's log when the case began

	idemOnce sync.Once
	idemWhy  string
}

// faultCases is the table. Linux-only cases live in faults_linux.go and
// say "not run" elsewhere.
var faultCases = []fault{
	{name: "CLI killed by SIGKILL", run: faultSignal},
	{name: "CLI missing", run: swapCLI("renamed away", nil, "no such file or directory")},
	{name: "CLI not executable", run: swapCLI("mode 0644", []byte("#!/bin/sh\n"), "permission denied")},
	{name: "CLI not a program", run: swapCLI("text with no #! line", []byte("this is not a program\n"), "exec format error")},
	{name: "CLI interpreter missing", run: swapCLI("#! names a missing interpreter", []byte("#!/nonexistent/node\n"), "interpreter")},
	{name: "images dir deleted while idle", run: faultImagesDeletedIdle},
	{name: "images dir deleted during a command", run: faultImagesDeletedBusy},
	{name: "many files during a command", run: func(t testing.TB, e *faultEnv) { faultManyFiles(t, e, false) }},
	{name: "inotify overflow", need: linuxOnly, run: func(t testing.TB, e *faultEnv) { faultManyFiles(t, e, true) }},
	{name: "images dir read-only", need: needReadOnly, run: faultImagesReadOnly},
	{name: "disk full", need: needTmpfs, run: faultDiskFull},
	{name: "TMPDIR read-only", need: needReadOnly, run: faultTmpReadOnly},
	{name: "filesystem mounted over images dir", need: needMount, run: faultMountOver},
	{name: "overflow swallows the images dir's removal", need: linuxOnly, run: faultOverflowRemoval},
	{name: "storm, slot idle", run: func(t testing.TB, e *faultEnv) { faultStorm(t, e, false) }},
	{name: "storm, slot busy", run: func(t testing.TB, e *faultEnv) { faultStorm(t, e, true) }},
	{name: "duplicate submits, one Idempotency-Key", need: needIdempotency, run: faultDuplicates},
	{name: "client disconnects mid-command", need: needIdempotency, run: faultDisconnects},
	{name: "slow stream reader", need: linuxOnly, run: faultSlowReader},
	{name: "descriptor limit, 1,100 connections", need: needGuard, run: faultDescriptors, own: true},
	{name: "CLI stalls with no tool call open", need: needStall, run: faultStall, own: true},
	{name: "second vmd on the state_dir", need: needIdempotency, run: faultSecondVMD},
	{name: "store disk full mid-command", need: needTmpfs, run: faultStoreFull, own: true},
}

// faults runs the table on one vmd, each case followed by a command that
// must succeed, then stops vmd with SIGTERM.
func (r *runner) faults(t testing.TB) {
	disk := newFaultDisk(t, filepath.Join(r.work, "faults"), faultDiskSize)
	// The fault disk is tiny on purpose: the disk guard would refuse every
	// command on it (min_free_disk off), and the command store lives on a
	// disk of its own, for the faults are the images' and TMPDIR's.
	s := startVMD(t, r.cfg, vmdSpec{name: "faults", fake: r.fake, images: disk.images, tmp: disk.tmp, timeout: faultTimeout,
		env: []string{"MIN_FREE_DISK_MB=0", "STATE_DIR=" + filepath.Join(t.TempDir(), "state")}})
	e := &faultEnv{r: r, s: s, disk: disk}
	start := r.settled(t, s)
	for _, c := range faultCases {
		if t.Context().Err() != nil {
			break
		}
		if len(r.cfg.Only) > 0 && !slices.ContainsFunc(r.cfg.Only, func(w string) bool { return strings.Contains(c.name, w) }) {
			continue
		}
		r.rep.Faults = append(r.rep.Faults, r.runFault(t.(*vmdtest.T), e, c))
	}
	if len(r.cfg.Only) == 0 {
		// vmd keeps its last records in memory, answers included: push
		// the faults' big ones (20,001 images) out before the reading, so
		// that what remains above the start is a leak, not a record.
		for range recordsKept {
			s.mustPost(t, "say flush", 200)
		}
		r.flat(t, s, start, faultRSSSlackKiB)
	}
	r.rep.Stops = append(r.rep.Stops, s.stop(t, r.fake))
}

func (r *runner) runFault(t *vmdtest.T, e *faultEnv, c fault) FaultResult {
	res := FaultResult{Fault: c.name, Result: "ok"}
	began := time.Now()
	defer func() { r.progress("fault %-45s %s", c.name, res.Result) }()
	if c.need != nil {
		if why := c.need(e); why != "" {
			res.Result, res.Why = "not run", why
			if r.cfg.RequireAll && strings.HasPrefix(why, "needs ") {
				r.rep.fail("fault %s: not run, and every fault is required: %s", c.name, why)
			}
			return res
		}
	}
	e.mark = e.s.mark()
	sub := t.Run(c.name, func(t testing.TB) {
		c.run(t, e)
		if !c.own {
			e.serving(t)
		}
	})
	res.Took = Duration(time.Since(began))
	if u, err := usageOf(e.s.Pid); err == nil {
		res.RSSKiB = u.RSSKiB
	}
	if sub.Failed() {
		res.Result, res.Errors = "FAILED", sub.Errors()
		for _, err := range res.Errors {
			r.rep.fail("fault %s: %s", c.name, err)
		}
	}
	return res
}

// serving proves vmd still serves: a command succeeds, and nothing is
// left below vmd.
func (e *faultEnv) serving(t testing.TB) {
	t.Helper()
	a := e.s.mustPost(t, "say alive", 200)
	if a.Text != "alive\n" {
		t.Errorf("after: text %q; want %q", a.Text, "alive\n")
	}
	if live, zombies, list := e.s.leftover(); live+zombies > 0 {
		t.Errorf("after: %d processes and %d zombies below vmd that no agent owns: %s", live, zombies, list)
	}
}

// during posts script in the background; its answer comes on the channel
// (nil if none came, which fails t).
func (e *faultEnv) during(t testing.TB, script string, header ...string) <-chan *answer {
	got := make(chan *answer, 1)
	go func() {
		a, err := e.s.post(script, header...)
		if err != nil {
			t.Errorf("%q: no answer: %v", script, err)
			a = nil
		}
		got <- a
	}()
	return got
}

// failure expects a 500 whose message names each cause and its log line.
func (e *faultEnv) failure(t testing.TB, script, logMessage string, cause ...string) {
	t.Helper()
	a := e.s.mustPost(t, script, 500)
	for _, c := range cause {
		if !strings.Contains(a.Message, c) {
			t.Errorf("%q: message %q does not say %q", script, a.Message, c)
		}
	}
	e.s.logged(t, e.mark, logMessage, cause...)
}

// image expects a 200 listing exactly these images, each served with the
// bytes on disk.
func (e *faultEnv) image(t testing.TB, script string, images ...string) {
	t.Helper()
	a := e.s.mustPost(t, script, 200)
	want := make([]string, len(images))
	for i, n := range images {
		want[i] = "/images/" + n
	}
	if !slices.Equal(a.Images, want) {
		t.Errorf("%q: images %q; want %q", script, a.Images, want)
	}
	for _, u := range a.Images {
		if p := checkImage(e.s, u); p != "" {
			t.Error(p)
		}
	}
}

func faultSignal(t testing.TB, e *faultEnv) {
	a := e.s.mustPost(t, "die KILL", 500)
	if a.Signal != "SIGKILL" || a.ExitCode != nil || !strings.Contains(a.Message, "SIGKILL") {
		t.Errorf("answer %s; want signal SIGKILL, exitCode null, a message naming the signal", a)
	}
	e.s.logged(t, e.mark, "process done", `"signal":"SIGKILL"`)
}

// swapCLI replaces the fake CLI with content (nil: nothing there) for one
// command that needs a new process, which must fail naming the path and
// cause, and puts it back.
func swapCLI(how string, content []byte, cause string) func(testing.TB, *faultEnv) {
	return func(t testing.TB, e *faultEnv) {
		if !e.r.cfg.Cold {
			// Warm, a spare started before the CLI goes away serves the
			// next new conversation; the one after needs a new process.
			vmdtest.Eventually(t, "a spare agent", func() bool {
				return slices.ContainsFunc(e.s.agents(), func(a agentState) bool { return a.State == "spare" })
			})
		}
		fake := e.r.fake
		away := fake + ".away"
		if err := os.Rename(fake, away); err != nil {
			t.Fatalf("moving the CLI away: %v", err)
		}
		defer func() {
			os.Remove(fake)
			if err := os.Rename(away, fake); err != nil {
				t.Errorf("putting the CLI back: %v", err)
			}
		}()
		if content != nil {
			mode := os.FileMode(0o755)
			if how == "mode 0644" {
				mode = 0o644
			}
			if err := testfs.WriteExecutable(fake, content, mode); err != nil {
				t.Fatalf("%s: %v", how, err)
			}
		}
		if !e.r.cfg.Cold {
			if a := e.s.mustPost(t, "say from-the-spare", 200); a.Text != "from-the-spare\n" {
				t.Errorf("with the CLI gone, the spare's answer %s; want 200 from-the-spare", a)
			}
		}
		e.failure(t, "say unreachable", "spawn failed", fake, cause)
	}
}

func faultImagesDeletedIdle(t testing.TB, e *faultEnv) {
	if err := os.RemoveAll(e.s.images); err != nil {
		t.Fatal(err)
	}
	e.s.logged(t, e.mark, "images directory removed; recreating it")
	vmdtest.Eventually(t, "the images directory recreated", func() bool { return isDir(e.s.images) })
	e.image(t, "image after-delete.png\nsay shot", "after-delete.png")
}

// faultImagesDeletedBusy removes the images directory while a command
// that took a screenshot waits (ended by DELETE once vmd has read what the
// CLI said after it): its answer lists no image (before.png went with the
// directory), vmd recreates the directory, and the next command's
// screenshot is listed.
func faultImagesDeletedBusy(t testing.TB, e *faultEnv) {
	// The fake takes a moment before it says done, as the real CLI would:
	// the case must wait for the words to reach vmd, not assume they have.
	got := e.during(t, "image before.png\nsleep 200ms\nsay done\nsleep 1h")
	vmdtest.Eventually(t, "the command's image", func() bool { return exists(filepath.Join(e.s.images, "before.png")) })
	if err := os.RemoveAll(e.s.images); err != nil {
		t.Fatal(err)
	}
	e.s.logged(t, e.mark, "images directory removed; recreating it")
	// The answer is to carry "done": cancel only once vmd has it.
	e.s.said(t, "done")
	e.s.cancel(t)
	if a := vmdtest.Within(t, "the cancelled answer", got); a != nil && (a.status != 499 || a.Text != "done\n" || len(a.Images) != 0) {
		t.Errorf("answer %s; want 499 \"done\" listing no image (before.png went with the directory)", a)
	}
	e.image(t, "image after.png\nsay shot", "after.png")
}

// faultManyFiles makes OverflowFiles files in the images directory while a
// command waits; the answer (after DELETE) must list every one. With
// overflow, vmd is stopped (SIGSTOP) meanwhile, as a starved container
// would be, so that its inotify queue overflows for certain: it must log
// the overflow and still list every file.
func faultManyFiles(t testing.TB, e *faultEnv, overflow bool) {
	got := e.during(t, "image own.png\nsay done\nsleep 1h")
	own := filepath.Join(e.s.images, "own.png")
	vmdtest.Eventually(t, "the command's own image", func() bool { return exists(own) })
	if overflow {
		pause(t, e.s.Pid)
	}
	made, err := createFiles(e.s.images, e.r.cfg.OverflowFiles, 4)
	if overflow {
		resume(t, e.s.Pid)
	}
	defer func() {
		for _, m := range append(made, "own.png") {
			os.Remove(filepath.Join(e.s.images, m))
		}
	}()
	if err != nil {
		t.Fatalf("creating files: %v", err)
	}
	if overflow {
		e.s.logged(t, e.mark, "images watcher error", "overflow")
	}
	e.s.cancel(t)
	a := vmdtest.Within(t, "the cancelled answer", got)
	if a == nil {
		return
	}
	want := append([]string{"/images/own.png"}, prefixed("/images/", made)...)
	slices.Sort(want[1:])
	listed := slices.Clone(a.Images)
	if len(listed) > 1 {
		slices.Sort(listed[1:])
	}
	if a.status != 499 || !slices.Equal(listed, want) {
		t.Errorf("answer %d listing %d images; want 499 listing own.png first and the %d made", a.status, len(a.Images), len(made))
	}
	if status, _, body, err := e.s.get("/images/" + made[len(made)-1]); err != nil || status != 200 || len(body) != 0 {
		t.Errorf("GET /images/%s = %d, %d bytes, %v; want 200 and the empty file", made[len(made)-1], status, len(body), err)
	}
}

// createFiles makes n empty files ovf-NNNNN.png in dir with w writers, and
// returns their names in order.
func createFiles(dir string, n, w int) ([]string, error) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("ovf-%05d.png", i)
	}
	var wg sync.WaitGroup
	errs := make([]error, w)
	for k := range w {
		wg.Go(func() {
			for i := k; i < n && errs[k] == nil; i += w {
				var f *os.File
				if f, errs[k] = os.OpenFile(filepath.Join(dir, names[i]), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); f != nil {
					f.Close()
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return names, err
		}
	}
	return names, nil
}

func faultOverflowRemoval(t testing.TB, e *faultEnv) {
	pause(t, e.s.Pid)
	_, err := createFiles(e.s.images, e.r.cfg.OverflowFiles, 4)
	if rerr := os.RemoveAll(e.s.images); err == nil {
		err = rerr
	}
	resume(t, e.s.Pid)
	if err != nil {
		t.Fatalf("making files or removing the directory: %v", err)
	}
	e.s.logged(t, e.mark, "images watcher error", "overflow")
	e.s.logged(t, e.mark, "images directory gone; recreating it")
	vmdtest.Eventually(t, "the images directory recreated after the overflow", func() bool { return isDir(e.s.images) })
	for i := range 2 {
		e.image(t, fmt.Sprintf("image after-overflow-%d.png\nsay shot", i), fmt.Sprintf("after-overflow-%d.png", i))
	}
}

func prefixed(p string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = p + n
	}
	return out
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func isDir(path string) bool { fi, err := os.Stat(path); return err == nil && fi.IsDir() }

func linuxOnly(*faultEnv) string {
	if !procOK {
		return "Linux only (inotify, /proc)"
	}
	return ""
}
