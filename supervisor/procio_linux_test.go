package supervisor

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// ioSize is what each test pushes through a process of the tree.
const ioSize = 1 << 20

// TreeIO counts pipe traffic (rchar/wchar, not the block-layer counters)
// of the whole tree: here a grandchild cat copies a megabyte from one pipe
// to another, which the root's own /proc/<pid>/io never shows.
func TestTreeIOCountsDescendants(t *testing.T) {
	// "; :" keeps each sh from exec-ing its last command in place.
	cmd := exec.Command("sh", "-c", `sh -c "cat; :"; :`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	pid := cmd.Process.Pid
	base, _, err := TreeIO(pid)
	if err != nil {
		t.Fatal(err)
	}
	copyThrough(t, stdin, stdout)

	total, procs := eventuallyIO(t, pid, base+2*ioSize)
	if procs < 3 {
		t.Errorf("TreeIO counted %d processes; want sh, sh and cat", procs)
	}
	own, err := ProcIO(pid)
	if err != nil || own >= ioSize {
		t.Errorf("ProcIO, the root alone: %d (%v); want the copy counted only in its grandchild", own, err)
	}
	t.Logf("tree %d bytes over %d processes (from %d), root alone %d", total, procs, base, own)
}

// A process that left the tree (its parent exited: it was reparented) but
// stays in the command's process group is still counted, and TreeIO goes on
// after the root is gone.
func TestTreeIOCountsTheGroup(t *testing.T) {
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	// A background job of a non-interactive sh reads /dev/null unless its
	// input is redirected: fd 3 is the input pipe, fd 4 the output.
	cmd := exec.Command("sh", "-c", `cat <&3 >&4 & exit 0`)
	cmd.ExtraFiles = []*os.File{inR, outW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	if err := cmd.Wait(); err != nil { // the root is gone; cat lives on, in its group
		t.Fatal(err)
	}
	defer inW.Close()
	pid := cmd.Process.Pid
	copyThrough(t, inW, outR)
	total, procs := eventuallyIO(t, pid, 2*ioSize)
	t.Logf("group %d bytes over %d processes", total, procs)
}

// copyThrough writes ioSize bytes into w and reads them back from r.
func copyThrough(t *testing.T, w io.Writer, r io.Reader) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(bytes.Repeat([]byte("x"), ioSize))
		done <- err
	}()
	if _, err := io.ReadFull(r, make([]byte, ioSize)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// eventuallyIO polls TreeIO until it reaches want: the kernel adds a
// syscall's bytes once it returns, which may be just after the data is out.
func eventuallyIO(t *testing.T, pid int, want uint64) (uint64, int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		total, procs, err := TreeIO(pid)
		if err == nil && total >= want {
			return total, procs
		}
		if time.Now().After(deadline) {
			t.Fatalf("TreeIO(%d) = %d, %d processes, %v; want at least %d", pid, total, procs, err, want)
		}
		time.Sleep(time.Millisecond)
	}
}
