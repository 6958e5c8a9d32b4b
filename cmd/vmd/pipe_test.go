package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// pipeHelperEnv makes the test binary, re-executed, the helper below.
const pipeHelperEnv = "VMD_TEST_PIPE_HELPER"

// init turns the test binary, re-executed with VMD_TEST_PIPE_HELPER set,
// into pipeHelper, before TestMain builds anything.
func init() {
	if mode := os.Getenv(pipeHelperEnv); mode != "" {
		pipeHelper(mode)
	}
}

// pipeHelper ("fix" or "nofix") is a program that logs to stderr, as vmd
// does, waits for a line on stdin (its log reader is gone by then), logs
// again, then prints on stdout whether a child it starts has SIGPIPE
// ignored, and exits.
func pipeHelper(mode string) {
	if mode == "fix" {
		survivePipes()
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "vmd", Output: os.Stderr})
	log.Info("startup")
	bufio.NewReader(os.Stdin).ReadString('\n')
	for i := range 3 {
		log.Info("request", "n", i) // the first write after the reader left raises SIGPIPE
	}
	status, err := exec.Command("cat", "/proc/self/status").Output()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("alive; child %s\n", sigIgn(string(status)))
	os.Exit(0)
}

// sigIgn is the SigIgn line of a /proc/PID/status.
func sigIgn(status string) string {
	for _, line := range strings.Split(status, "\n") {
		if strings.HasPrefix(line, "SigIgn:") {
			return line
		}
	}
	return "no SigIgn"
}

// A log line written after the log pipe's reader left must not kill vmd:
// without survivePipes the helper dies of SIGPIPE (exit 141 in a shell),
// as vmd does today; with it the helper goes on, and the commands it
// starts do not inherit SIGPIPE ignored.
func TestLogPipeClosed(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"nofix", "fix"} {
		t.Run(mode, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), pipeHelperEnv+"="+mode)
			cmd.Stderr = w
			var stdout strings.Builder
			cmd.Stdout = &stdout
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			first, err := bufio.NewReader(r).ReadString('\n')
			if !strings.Contains(first, "startup") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("first log line %q (%v); want startup", first, err)
			}
			r.Close() // the log reader goes away
			fmt.Fprintln(stdin, "go on")
			err = cmd.Wait()

			var exit *exec.ExitError
			if mode == "nofix" {
				// The control: without the fix this is how vmd ends today.
				if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGPIPE {
					t.Fatalf("without survivePipes: %v, stdout %q; want killed by SIGPIPE", err, stdout.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("helper: %v; stdout %q", err, stdout.String())
			}
			out := stdout.String()
			if !strings.HasPrefix(out, "alive") {
				t.Fatalf("stdout %q; want alive", out)
			}
			mask, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(sigIgn(strings.TrimPrefix(out, "alive; child ")), "SigIgn:")), 16, 64)
			if err != nil {
				t.Fatalf("stdout %q: %v", out, err)
			}
			if mask&(1<<(syscall.SIGPIPE-1)) != 0 {
				t.Errorf("a child of vmd starts with SIGPIPE ignored (%s); want the default", out)
			}
		})
	}
}

// vmd itself, its log a pipe whose reader leaves: the requests it logs do
// not kill it, and SIGTERM still drains it to exit 0. This fails until
// main calls survivePipes (the first thing vmd does).
func TestLogPipeClosedVMD(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(vmdBin)
	cmd.Env = baseEnv(t) // LOG_LEVEL=debug: every request is logged
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	port := 0
	for sc := bufio.NewScanner(r); port == 0 && sc.Scan(); {
		var line struct {
			Message string  `json:"@message"`
			Port    float64 `json:"port"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "startup" {
			port = int(line.Port)
		}
	}
	if port == 0 {
		t.Fatal("no startup line from vmd")
	}
	r.Close() // the log reader goes away

	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 3 {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err != nil {
			t.Errorf("request %d after the log reader left: %v", i, err)
			break
		}
		resp.Body.Close()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("vmd: %v; want exit 0 after SIGTERM (killed by SIGPIPE: main does not call survivePipes)", err)
		}
	case <-time.After(time.Minute): // a hang guard, not a measure
		t.Error("vmd still running a minute after SIGTERM")
	}
}
