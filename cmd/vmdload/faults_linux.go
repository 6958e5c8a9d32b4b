package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// faultDiskSize is the fault vmd's disk: a tmpfs this small fills with one
// write loop.
const faultDiskSize = "64k"

// faultDisk is where the fault vmd keeps its images and its per-command
// temp dirs: one small tmpfs holding both, as vmd's defaults put both in
// /tmp. The images directory is a directory on it, not its mount point,
// so that it can be deleted.
type faultDisk struct {
	root, images, tmp string
	// mountErr says why root is a plain directory (not root, or no
	// CAP_SYS_ADMIN in a container).
	mountErr error
}

func newFaultDisk(t testing.TB, root, size string) *faultDisk {
	d := &faultDisk{root: root, images: filepath.Join(root, "images"), tmp: filepath.Join(root, "tmp")}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("vmdload", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size+",mode=0755"); err != nil {
		d.mountErr = fmt.Errorf("mount -t tmpfs -o size=%s: %w", size, err)
		return d
	}
	// Registered before vmd is started on it: cleanups run last first,
	// so vmd is stopped by then; a lazy unmount covers a straggler.
	t.Cleanup(func() {
		if err := unix.Unmount(root, 0); err != nil {
			if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
				t.Errorf("unmounting the fault disk %s: %v", root, err)
			}
		}
	})
	return d
}

func needTmpfs(e *faultEnv) string {
	if e.disk.mountErr != nil {
		return "needs a tmpfs: " + e.disk.mountErr.Error()
	}
	return ""
}

func needMount(*faultEnv) string {
	if os.Geteuid() != 0 {
		return "needs root to mount"
	}
	return ""
}

// needReadOnly: as root, a read-only bind mount (permissions do not stop
// root); otherwise mode 0555 does.
func needReadOnly(e *faultEnv) string {
	if os.Geteuid() == 0 {
		return needMount(e)
	}
	return ""
}

// readOnly makes dir read-only for real until t ends, and returns the
// cause a write then fails with.
func readOnly(t testing.TB, dir string) (cause string, undo func()) {
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		return "permission denied", func() { _ = os.Chmod(dir, 0o755) }
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		_ = unix.Unmount(dir, 0)
		t.Fatalf("read-only remount: %v", err)
	}
	return "read-only file system", func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("undoing the read-only mount: %v", err)
		}
	}
}

// faultImagesReadOnly: the CLI's screenshot fails and it says so (exit 1);
// the cause reaches the caller.
func faultImagesReadOnly(t testing.TB, e *faultEnv) {
	cause, undo := readOnly(t, e.s.images)
	a := e.s.mustPost(t, "image ro.png\nexit 1", 500)
	if !strings.Contains(a.Message, cause) {
		t.Errorf("message %q does not say %q", a.Message, cause)
	}
	e.serving(t)
	undo()
	e.image(t, "image after-ro.png\nsay shot", "after-ro.png")
}

func faultDiskFull(t testing.TB, e *faultEnv) {
	filler := filepath.Join(e.disk.root, "filler")
	if err := fill(filler); err != nil {
		t.Fatalf("filling the disk: %v", err)
	}
	a := e.s.mustPost(t, "image full.png\nexit 1", 500)
	if !strings.Contains(a.Message, "no space left on device") {
		t.Errorf("message %q does not say the disk is full", a.Message)
	}
	// vmd itself needs no disk to run a command.
	e.serving(t)
	os.Remove(filler)
	os.Remove(filepath.Join(e.s.images, "full.png"))
	e.image(t, "image after-full.png\nsay shot", "after-full.png")
}

// fill writes a file until the disk is full.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for n := 0; n < 64<<20; n += len(buf) {
		if _, err := f.Write(buf); errors.Is(err, unix.ENOSPC) {
			return nil
		} else if err != nil {
			return err
		}
	}
	return errors.New("wrote 64 MiB and the disk is not full")
}

// faultTmpReadOnly: no per-command temp dir can be made. vmd keeps one
// ready, so the first command may still get it; the next cannot.
func faultTmpReadOnly(t testing.TB, e *faultEnv) {
	cause, undo := readOnly(t, e.s.tmp)
	defer undo()
	var a *answer
	for range 2 {
		var err error
		if a, err = e.s.post("say needs-a-tmpdir"); err != nil {
			t.Fatal(err)
		}
		if a.status == 500 {
			break
		}
	}
	if a.status != 500 || !strings.Contains(a.Message, "temp dir") || !strings.Contains(a.Message, cause) {
		t.Errorf("got %s; want a 500 within two commands saying the temp dir cannot be made (%s)", a, cause)
	}
	e.s.logged(t, e.mark, "spawn failed", cause)
}

// faultMountOver mounts a tmpfs over the images directory while vmd runs.
// inotify does not report it: vmd must notice (it compares the directory
// with the one it watches before each command) or images written to the
// new filesystem are served but never listed.
func faultMountOver(t testing.TB, e *faultEnv) {
	if err := unix.Mount("vmdload-over", e.s.images, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=64k"); err != nil {
		t.Fatalf("mount: %v", err)
	}
	defer unix.Unmount(e.s.images, unix.MNT_DETACH)
	e.image(t, "image over.png\nsay shot", "over.png")
}

func pause(t testing.TB, pid int) {
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
}

func resume(t testing.TB, pid int) {
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Errorf("SIGCONT: %v", err)
	}
}

// needGuard: the case means something only with netguard's listener in
// vmd (issue 11, branch guard); without it fasthttp's Serve returns on
// EMFILE and vmd exits, which is that bug, not news.
func needGuard(e *faultEnv) string {
	if _, err := exec.LookPath("prlimit"); err != nil {
		return "needs prlimit (util-linux)"
	}
	return needLinked(e, "github.com/vmd-dev/vmd/netguard.", "vmd has no accept guard yet (netguard's listener is not linked; it lands on branch guard)")
}

// needStall: the watchdog (issue 11) must be in vmd.
func needStall(e *faultEnv) string {
	return needLinked(e, "github.com/vmd-dev/vmd/agent.(*stallWatch).", "vmd has no stall watchdog (agent's stallWatch is not linked)")
}

func needLinked(e *faultEnv, symbol, why string) string {
	ok, err := linked(e.r.cfg.VMD, symbol)
	switch {
	case err != nil:
		return "cannot tell whether vmd has the feature: " + err.Error()
	case !ok:
		return why
	}
	return ""
}

// faultDescriptors runs a vmd under prlimit --nofile=1024 and opens 1,100
// connections to it from 127.0.0.1: it must keep serving, /health and a
// command from another address (127.0.0.2) answered, the child that
// command leaves behind killed, and stop cleanly.
func faultDescriptors(t testing.TB, e *faultEnv) {
	dir := filepath.Join(e.r.work, "nofile")
	s := startVMD(t, e.r.cfg, vmdSpec{name: "nofile", fake: e.r.fake, images: filepath.Join(dir, "images"),
		tmp: filepath.Join(dir, "tmp"), timeout: faultTimeout, wrap: []string{"prlimit", "--nofile=1024:1024"}})
	addr := strings.TrimPrefix(s.URL, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 1100 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial number %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	other := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	s.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		return other.DialContext(ctx, n, a)
	}}}
	if status, _, body, err := s.get("/health"); err != nil || status != 200 {
		t.Errorf("GET /health from 127.0.0.2 with 1,100 connections open = %d %s, %v; want 200", status, body, err)
	}
	// The command leaves a child that escaped its process group behind:
	// the sweep after it, which reads /proc, must still find and kill it
	// with vmd's descriptors all but taken.
	a := s.mustPost(t, "escape\nsay still-serving", 200)
	if p := withPid(a, "escaped", "still-serving\n"); len(p) > 0 {
		t.Errorf("command with 1,100 connections open: %s", p)
	}
	if pids := startedPids(a.Text); len(pids) == 1 && s.stray(pids[0].pid, e.r.fake) {
		t.Errorf("the escaped child %d outlived its command with 1,100 connections open", pids[0].pid)
	}
	if live, zombies, list := s.leftover(); live+zombies > 0 {
		t.Errorf("%d processes and %d zombies below vmd that no agent owns with 1,100 connections open: %s", live, zombies, list)
	}
	select {
	case <-s.Exited():
		t.Fatalf("vmd exited with 1,100 connections open")
	default:
	}
	e.r.rep.Stops = append(e.r.rep.Stops, s.stop(t, e.r.fake))
}

// faultStall runs a vmd with STALL_TIMEOUT_MS=1000 and a CLI that goes
// silent with no tool call open: 504 agent_stalled with the partial text
// and the session, so the relay can resume; nothing left below vmd.
func faultStall(t testing.TB, e *faultEnv) {
	dir := filepath.Join(e.r.work, "stall")
	s := startVMD(t, e.r.cfg, vmdSpec{name: "stall", fake: e.r.fake, images: filepath.Join(dir, "images"),
		tmp: filepath.Join(dir, "tmp"), timeout: faultTimeout, env: []string{"STALL_TIMEOUT_MS=1000"}})
	a := s.mustPost(t, "say before-stall\nsleep 1h", 504)
	if a.Error != "agent_stalled" || a.Text != "before-stall\n" || a.SessionID == nil || *a.SessionID == "" {
		t.Errorf("answer %s; want 504 agent_stalled with text %q and the session id", a, "before-stall\n")
	}
	if live, zombies, list := s.leftover(); live+zombies > 0 {
		t.Errorf("%d processes and %d zombies below vmd that no agent owns after the stall: %s", live, zombies, list)
	}
	if a := s.mustPost(t, "say after-stall", 200); a.Text != "after-stall\n" {
		t.Errorf("after the stall: %s", a)
	}
	e.r.rep.Stops = append(e.r.rep.Stops, s.stop(t, e.r.fake))
}
