package vmdtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/poll"
)

// Process is a vmd running as a process of its own, logging JSON.
type Process struct {
	Cmd *exec.Cmd
	// URL is where it serves, from its startup line.
	URL string
	// Pid is its pid as seen from the test (inside a PID namespace vmd may
	// be 1).
	Pid int
	// Log holds its standard error.
	Log *LogBuffer

	exit chan struct{}
}

// StartProcess runs cmd (vmd, or a wrapper that runs it, with LOG_FORMAT=json
// in its environment) and waits for its startup line. The process is killed
// when the test ends, if it still runs.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, Log: &LogBuffer{}, exit: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.Pid = cmd.Process.Pid
	started := make(chan int, 1)
	go func() {
		defer close(p.exit)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.Log.Write(append(sc.Bytes(), '\n'))
			var line struct {
				Message string `json:"@message"`
				Port    int    `json:"port"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "startup" {
				started <- line.Port
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exit
		if t.Failed() {
			t.Logf("vmd log:\n%s", p.Log)
		}
	})
	select {
	case port := <-started:
		p.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	case <-p.exit:
		t.Fatalf("vmd exited before its startup line:\n%s", p.Log)
	case <-time.After(poll.Patience):
		t.Fatalf("no startup line in %s:\n%s", poll.Patience, p.Log)
	}
	return p
}

// Exited is closed once the process has exited and its output is read.
func (p *Process) Exited() <-chan struct{} { return p.exit }

// WaitExit waits for the process to exit and returns its exit code.
func (p *Process) WaitExit(t testing.TB) int {
	t.Helper()
	Within(t, "vmd to exit", p.exit)
	return p.Cmd.ProcessState.ExitCode()
}
