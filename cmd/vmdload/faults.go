//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FaultResult is one fault: what the client got while it lasted, the log
// line that reports it, and the command that proves vmd still serves after.
type FaultResult struct {
	Fault  string   `json:"fault"`
	Result string   `json:"result"` // ok, FAILED or skipped
	How    string   `json:"how,omitempty"`
	Answer string   `json:"answer,omitempty"`
	Log    string   `json:"log,omitempty"`
	After  string   `json:"after,omitempty"`
	Took   Duration `json:"tookMs"`
}

// fault is one fault being run.
type fault struct {
	r    *runner
	v    *vmdProc
	res  FaultResult
	mark int // the log before the fault
}

func (f *fault) fail(format string, args ...any) {
	f.res.Result = "FAILED"
	f.r.rep.fail("fault %s: %s", f.res.Fault, fmt.Sprintf(format, args...))
}

// post sends a command during the fault and checks its status.
func (f *fault) post(ctx context.Context, script string, status int) *answer {
	a, err := f.v.post(ctx, script, faultTimeout+10*time.Second)
	if err != nil {
		f.fail("%q: no answer: %v", script, err)
		return nil
	}
	if a.status != status {
		f.fail("%q: got %s; want %d", script, a, status)
	}
	return a
}

// failure expects a 500 whose message and log line name the cause.
func (f *fault) failure(ctx context.Context, script, logMessage string, cause ...string) {
	a := f.post(ctx, script, 500)
	if a == nil {
		return
	}
	f.res.Answer = a.String()
	for _, c := range cause {
		if !strings.Contains(a.Message, c) {
			f.fail("%q: message %q does not say %q", script, a.Message, c)
		}
	}
	f.expectLog(logMessage, cause...)
}

// expectLog looks for a line logged since the fault began.
func (f *fault) expectLog(message string, subs ...string) {
	line, ok := f.v.findLog(f.mark, 2*time.Second, message, subs...)
	if !ok {
		f.fail("no log line %q holding %q since the fault began", message, subs)
		return
	}
	if f.res.Log == "" {
		f.res.Log = line
	}
}

// image expects a 200 listing exactly these images, each served with the
// bytes on disk.
func (f *fault) image(ctx context.Context, script string, images ...string) *answer {
	a := f.post(ctx, script, 200)
	if a == nil || a.status != 200 {
		return a
	}
	want := make([]string, len(images))
	for i, n := range images {
		want[i] = "/images/" + n
	}
	if !slices.Equal(a.Images, want) {
		f.fail("%q: images %q; want %q", script, a.Images, want)
	}
	for _, u := range a.Images {
		if p := f.r.checkImage(ctx, f.v, u, f.r.faultImages); p != "" {
			f.fail("%s", p)
		}
	}
	return a
}

// serving proves vmd still serves: a command succeeds, and nothing is left
// below vmd.
func (f *fault) serving(ctx context.Context, what string) string {
	text := "alive-" + strings.NewReplacer(" ", "-", "/", "-").Replace(f.res.Fault) + "-" + what
	a := f.post(ctx, "say "+text, 200)
	if a == nil {
		return ""
	}
	if a.Text != text+"\n" {
		f.fail("%s: text %q; want %q", what, a.Text, text+"\n")
	}
	if ps, err := processes(); err == nil {
		if t := countTree(ps, f.v.pid); t.Descendants > 0 {
			f.fail("%s: %d processes below vmd after the answer", what, t.Descendants)
		}
	}
	return a.String()
}

// faults runs every fault on v, each followed by a command that must
// succeed.
func (r *runner) faults(ctx context.Context, v *vmdProc, disk *faultDisk) []FaultResult {
	r.faultImages = disk.images
	start := r.settledUsage(ctx, v)
	list := []struct {
		name string
		run  func(context.Context, *fault, *faultDisk)
	}{
		{"CLI killed by SIGKILL", r.faultSignal},
		{"CLI missing", r.faultCLIMissing},
		{"CLI not executable", r.faultCLINotExecutable},
		{"CLI not a program", r.faultCLIGarbage},
		{"CLI interpreter missing", r.faultCLIInterpreter},
		{"images dir deleted while idle", r.faultImagesDeletedIdle},
		{"images dir deleted during a command", r.faultImagesDeletedBusy},
		{"20,000 files during a command", func(ctx context.Context, f *fault, d *faultDisk) { r.faultManyFiles(ctx, f, d, false) }},
		{"inotify overflow", func(ctx context.Context, f *fault, d *faultDisk) { r.faultManyFiles(ctx, f, d, true) }},
		{"images dir read-only", r.faultImagesReadOnly},
		{"disk full", r.faultDiskFull},
		{"TMPDIR read-only", r.faultTmpReadOnly},
		{"filesystem mounted over images dir", r.faultMountOver},
		{"overflow swallows the images dir's removal", r.faultOverflowRemoval},
	}
	var out []FaultResult
	for _, fl := range list {
		if ctx.Err() != nil {
			break
		}
		f := &fault{r: r, v: v, res: FaultResult{Fault: fl.name, Result: "ok"}, mark: v.mark()}
		began := time.Now()
		fl.run(ctx, f, disk)
		if f.res.Result != "skipped" {
			f.res.After = f.serving(ctx, "after")
		}
		f.res.Took = Duration(time.Since(began))
		progress(r.cfg, "fault %-36s %s", fl.name, f.res.Result)
		out = append(out, f.res)
	}
	if ctx.Err() == nil {
		r.faultEnd = r.flatUsage(ctx, v, "faults", start, faultRSSSlackKiB)
		r.faultStart = start
	}
	return out
}

func (r *runner) faultSignal(ctx context.Context, f *fault, _ *faultDisk) {
	f.res.How = "die KILL: the CLI kills itself with SIGKILL"
	a := f.post(ctx, "die KILL", 500)
	if a == nil {
		return
	}
	f.res.Answer = a.String()
	if a.Signal != "SIGKILL" || a.ExitCode != nil || !strings.Contains(a.Message, "SIGKILL") {
		f.fail("answer %s; want signal SIGKILL, exitCode null, a message naming the signal", a)
	}
	f.expectLog("done", `"signal":"SIGKILL"`)
	f.expectLog("command failed")
}

// swapCLI replaces the fake CLI for the length of one fault, and puts it
// back.
func (r *runner) swapCLI(f *fault, how string, replace func(path string) error) (restore func()) {
	away := r.fake + ".away"
	if err := os.Rename(r.fake, away); err != nil {
		f.fail("moving the CLI away: %v", err)
		return func() {}
	}
	f.res.How = how
	if err := replace(r.fake); err != nil {
		f.fail("%s: %v", how, err)
	}
	return func() {
		os.Remove(r.fake)
		if err := os.Rename(away, r.fake); err != nil {
			f.fail("putting the CLI back: %v", err)
		}
	}
}

func (r *runner) faultCLIMissing(ctx context.Context, f *fault, _ *faultDisk) {
	restore := r.swapCLI(f, "CLAUDE_BIN renamed away", func(string) error { return nil })
	f.failure(ctx, "say unreachable", "spawn failed", r.fake, "no such file or directory")
	restore()
}

func (r *runner) faultCLINotExecutable(ctx context.Context, f *fault, _ *faultDisk) {
	f.res.How = "chmod 0644 CLAUDE_BIN"
	if err := os.Chmod(r.fake, 0o644); err != nil {
		f.fail("chmod: %v", err)
		return
	}
	f.failure(ctx, "say unreachable", "spawn failed", r.fake, "permission denied")
	if err := os.Chmod(r.fake, 0o755); err != nil {
		f.fail("chmod back: %v", err)
	}
}

func (r *runner) faultCLIGarbage(ctx context.Context, f *fault, _ *faultDisk) {
	restore := r.swapCLI(f, "CLAUDE_BIN replaced by an executable text file with no #! line", func(p string) error {
		return os.WriteFile(p, []byte("this is not a program\n"), 0o755)
	})
	f.failure(ctx, "say unreachable", "spawn failed", r.fake, "exec format error")
	restore()
}

func (r *runner) faultCLIInterpreter(ctx context.Context, f *fault, _ *faultDisk) {
	restore := r.swapCLI(f, "CLAUDE_BIN replaced by a script whose #! interpreter is missing (node, for the real CLI)", func(p string) error {
		return os.WriteFile(p, []byte("#!/nonexistent/node\n"), 0o755)
	})
	f.failure(ctx, "say unreachable", "spawn failed", r.fake, "interpreter")
	restore()
}

func (r *runner) faultImagesDeletedIdle(ctx context.Context, f *fault, disk *faultDisk) {
	f.res.How = "rm -rf IMAGES_DIR between commands"
	if err := os.RemoveAll(disk.images); err != nil {
		f.fail("rm -rf: %v", err)
		return
	}
	f.expectLog("images directory removed; recreating it")
	if !waitDir(disk.images, 5*time.Second) {
		f.fail("the images directory was not recreated within 5s")
		return
	}
	if a := f.image(ctx, "image after-delete.png\nsay shot", "after-delete.png"); a != nil {
		f.res.Answer = a.String()
	}
}

func (r *runner) faultImagesDeletedBusy(ctx context.Context, f *fault, disk *faultDisk) {
	f.res.How = "rm -rf IMAGES_DIR while a command, between two screenshots, sleeps"
	got := r.during(ctx, f, "image before.png\nsleep 1s\nimage after.png\nsay done")
	if !waitFile(filepath.Join(disk.images, "before.png"), 5*time.Second) {
		f.fail("the command's first image did not appear")
	} else if err := os.RemoveAll(disk.images); err != nil {
		f.fail("rm -rf: %v", err)
	}
	a := <-got
	if a == nil {
		return
	}
	f.res.Answer = a.String()
	// before.png went with the directory; after.png is in the new one.
	if a.status != 200 || !slices.Equal(a.Images, []string{"/images/after.png"}) || a.Text != "done\n" {
		f.fail("answer %s; want 200 \"done\" listing /images/after.png only", a)
	}
	f.expectLog("images directory removed; recreating it")
}

// during posts script in the background; its answer comes on the channel
// (nil if none came).
func (r *runner) during(ctx context.Context, f *fault, script string) <-chan *answer {
	got := make(chan *answer, 1)
	go func() {
		a, err := f.v.post(ctx, script, faultTimeout+10*time.Second)
		if err != nil {
			f.fail("%q: no answer: %v", script, err)
			a = nil
		}
		got <- a
	}()
	return got
}

// faultManyFiles creates OverflowFiles files in the images directory while
// a command runs; the answer must list every one. vmd drains its inotify
// queue (16384 events by default) faster than four writers fill it, so to
// overflow it for certain, vmd is stopped with SIGSTOP while the files are
// made, as a starved or throttled container would be; it must then log the
// overflow and still list every file.
func (r *runner) faultManyFiles(ctx context.Context, f *fault, disk *faultDisk, overflow bool) {
	n := r.cfg.OverflowFiles
	f.res.How = fmt.Sprintf("%d empty .png files created in IMAGES_DIR by 4 writers while a command sleeps 3s", n)
	if overflow {
		f.res.How += ", vmd stopped (SIGSTOP) meanwhile"
	}
	got := r.during(ctx, f, "image own.png\nsleep 3s\nsay done")
	var made []string
	var took time.Duration
	if !waitFile(filepath.Join(disk.images, "own.png"), 5*time.Second) {
		f.fail("the command's own image did not appear")
	} else {
		began := time.Now()
		if overflow {
			if err := syscall.Kill(f.v.pid, syscall.SIGSTOP); err != nil {
				f.fail("SIGSTOP: %v", err)
			}
		}
		var err error
		made, err = createFiles(disk.images, n, 4)
		if overflow {
			if err := syscall.Kill(f.v.pid, syscall.SIGCONT); err != nil {
				f.fail("SIGCONT: %v", err)
			}
		}
		took = time.Since(began)
		if err != nil {
			f.fail("creating files: %v", err)
		}
	}
	a := <-got
	if took > 2500*time.Millisecond {
		f.fail("creating %d files took %v: not all during the command, so the check below does not hold", n, took)
	}
	defer func() {
		for _, m := range append(made, "own.png") {
			os.Remove(filepath.Join(disk.images, m))
		}
	}()
	if a == nil {
		return
	}
	f.res.Answer = fmt.Sprintf("%d, %d images listed (files made in %v)", a.status, len(a.Images), took.Round(time.Millisecond))
	want := append([]string{"own.png"}, made...)
	if a.status != 200 || len(a.Images) == 0 || a.Images[0] != "/images/own.png" {
		f.fail("answer %d with %d images; want 200 listing /images/own.png first", a.status, len(a.Images))
	}
	listed := map[string]bool{}
	for _, u := range a.Images {
		listed[strings.TrimPrefix(u, "/images/")] = true
	}
	missing := 0
	for _, w := range want {
		if !listed[w] {
			missing++
		}
	}
	if missing > 0 || len(listed) != len(want) || len(a.Images) != len(want) {
		f.fail("listed %d images (%d distinct), %d of the %d made missing", len(a.Images), len(listed), missing, len(want))
	}
	if len(made) > 0 {
		if status, _, body, err := f.v.get(ctx, "/images/"+made[len(made)-1]); err != nil || status != 200 || len(body) != 0 {
			f.fail("GET /images/%s = %d, %d bytes, %v; want 200 and the empty file", made[len(made)-1], status, len(body), err)
		}
	}
	if overflow {
		f.expectLog("images watcher error", "overflow")
		return
	}
	// Unstopped, whether the queue overflows depends on how fast vmd
	// drains it: the list above must be whole either way.
	if line, ok := f.v.findLog(f.mark, 0, "images watcher error"); ok {
		f.res.Log = line
	} else {
		f.res.Log = "(no overflow: vmd kept up with the events)"
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
			for i := k; i < n; i += w {
				f, err := os.OpenFile(filepath.Join(dir, names[i]), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
				if err != nil {
					errs[k] = err
					return
				}
				f.Close()
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

func (r *runner) faultImagesReadOnly(ctx context.Context, f *fault, disk *faultDisk) {
	how, undo, err := readOnly(disk.images)
	if err != nil {
		f.res.Result, f.res.How = "skipped", "cannot make the directory read-only: "+err.Error()
		return
	}
	f.res.How = "IMAGES_DIR made read-only: " + how
	cause := "read-only file system"
	if !strings.HasPrefix(how, "read-only") {
		cause = "permission denied"
	}
	// The CLI's screenshot fails and it says so (exit 1): the cause
	// reaches the caller and the log.
	f.failure(ctx, "image ro.png\nexit 1", "command failed", cause)
	f.serving(ctx, "during")
	if err := undo(); err != nil {
		f.fail("undoing %s: %v", how, err)
		return
	}
	f.image(ctx, "image after-ro.png\nsay shot", "after-ro.png")
}

func (r *runner) faultDiskFull(ctx context.Context, f *fault, disk *faultDisk) {
	if !disk.tmpfs {
		f.res.Result, f.res.How = "skipped", "needs a tmpfs: "+disk.mountErr.Error()
		return
	}
	n, err := disk.fill()
	if err != nil {
		f.fail("filling the disk: %v", err)
		return
	}
	f.res.How = fmt.Sprintf("the %s tmpfs holding IMAGES_DIR and TMPDIR filled (%d KiB written)", faultDiskSize, n>>10)
	f.failure(ctx, "image full.png\nexit 1", "command failed", "no space left on device")
	// vmd itself needs no disk to run a command.
	f.serving(ctx, "during")
	if err := disk.unfill(); err != nil {
		f.fail("freeing the disk: %v", err)
	}
	os.Remove(filepath.Join(disk.images, "full.png"))
	f.image(ctx, "image after-full.png\nsay shot", "after-full.png")
}

func (r *runner) faultTmpReadOnly(ctx context.Context, f *fault, disk *faultDisk) {
	how, undo, err := readOnly(disk.tmp)
	if err != nil {
		f.res.Result, f.res.How = "skipped", "cannot make the directory read-only: "+err.Error()
		return
	}
	f.res.How = "vmd's TMPDIR made read-only (" + how + "): no per-command temp dir can be made"
	cause := "read-only file system"
	if !strings.HasPrefix(how, "read-only") {
		cause = "permission denied"
	}
	// vmd keeps one temp dir ready: the first command may still get it.
	// The next cannot.
	var a *answer
	for range 2 {
		if a, err = f.v.post(ctx, "say needs-a-tmpdir", faultTimeout+10*time.Second); err != nil || a.status == 500 {
			break
		}
	}
	switch {
	case err != nil:
		f.fail("no answer: %v", err)
	case a.status != 500 || !strings.Contains(a.Message, "temp dir") || !strings.Contains(a.Message, cause):
		f.fail("got %s; want a 500 within two commands saying the temp dir cannot be made (%s)", a, cause)
	default:
		f.res.Answer = a.String()
		f.expectLog("spawn failed", cause)
	}
	if err := undo(); err != nil {
		f.fail("undoing %s: %v", how, err)
	}
}

func waitFile(path string, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
	}
	return false
}

func waitDir(path string, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// faultMountOver mounts a tmpfs over the images directory while vmd runs.
// An inotify watch stays on the directory underneath, which inotify does not
// report: vmd must notice (it compares the directory with the one it
// watches before each command) or images written to the new filesystem are
// served by /images/ but never listed in an answer.
func (r *runner) faultMountOver(ctx context.Context, f *fault, disk *faultDisk) {
	if os.Geteuid() != 0 {
		f.res.Result, f.res.How = "skipped", "needs root to mount"
		return
	}
	if err := unix.Mount("vmdload-over", disk.images, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=64k"); err != nil {
		f.res.Result, f.res.How = "skipped", "mount: "+err.Error()
		return
	}
	defer unix.Unmount(disk.images, unix.MNT_DETACH)
	f.res.How = "mount -t tmpfs over IMAGES_DIR while vmd runs, then a command writes an image"
	if a := f.image(ctx, "image over.png\nsay shot", "over.png"); a != nil {
		f.res.Answer = a.String()
	}
}

// faultOverflowRemoval removes the images directory while vmd's inotify
// queue is overflowing, so that the removal event is among those dropped.
// vmd must still recreate the directory (it checks it on an overflow) and
// list the images made in it.
func (r *runner) faultOverflowRemoval(ctx context.Context, f *fault, disk *faultDisk) {
	f.res.How = fmt.Sprintf("vmd stopped (SIGSTOP), %d files made in IMAGES_DIR, IMAGES_DIR removed, vmd continued", r.cfg.OverflowFiles)
	if err := syscall.Kill(f.v.pid, syscall.SIGSTOP); err != nil {
		f.fail("SIGSTOP: %v", err)
		return
	}
	_, err := createFiles(disk.images, r.cfg.OverflowFiles, 4)
	if rerr := os.RemoveAll(disk.images); err == nil {
		err = rerr
	}
	if cerr := syscall.Kill(f.v.pid, syscall.SIGCONT); cerr != nil {
		f.fail("SIGCONT: %v", cerr)
	}
	if err != nil {
		f.fail("making files or removing the directory: %v", err)
		return
	}
	f.expectLog("images watcher error", "overflow")
	f.expectLog("images directory gone; recreating it")
	if !waitDir(disk.images, 5*time.Second) {
		f.fail("IMAGES_DIR not recreated within 5s of the overflow (README: \"If the directory is removed, vmd recreates it\")")
		if err := os.MkdirAll(disk.images, 0o755); err != nil {
			f.fail("making it for vmd: %v", err)
			return
		}
	}
	for i := range 2 {
		if a := f.image(ctx, fmt.Sprintf("image after-overflow-%d.png\nsay shot", i), fmt.Sprintf("after-overflow-%d.png", i)); a != nil {
			f.res.Answer = a.String()
		}
	}
}
