package main

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkStartup starts the vmd binary and measures how long until
// /health answers (ms-to-ready) and vmd's resident memory once idle
// (idle-rss-KiB, read from /proc after a few health checks):
//
//	go test -run '^$' -bench Startup -benchtime 20x ./cmd/vmd/
func BenchmarkStartup(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	env := []string{"PATH=" + os.Getenv("PATH"), "ANTHROPIC_API_KEY=k", "HOME=" + b.TempDir(), "HOST=127.0.0.1", "PORT=" + port,
		"CLAUDE_BIN=" + fake, "IMAGES_DIR=" + filepath.Join(b.TempDir(), "images"), "LOG_LEVEL=warn"}
	var ready time.Duration
	var rss int
	for b.Loop() {
		cmd := exec.Command(vmdBin)
		cmd.Env = env
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for !healthy(port) {
			if time.Since(start) > 10*time.Second {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatal("vmd not ready in 10s")
			}
			time.Sleep(100 * time.Microsecond)
		}
		ready += time.Since(start)
		for range 10 {
			healthy(port)
		}
		rss = max(rss, residentKiB(b, cmd.Process.Pid))
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("vmd exit: %v", err)
		}
	}
	b.ReportMetric(float64(ready.Microseconds())/1000/float64(b.N), "ms-to-ready")
	b.ReportMetric(float64(rss), "idle-rss-KiB")
}

// healthy sends GET /health on a fresh connection and reports a 200.
func healthy(port string) bool {
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		return false
	}
	defer c.Close()
	c.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "HTTP/1.1 200 OK\r\n"
}

func residentKiB(b testing.TB, pid int) int {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		b.Fatal("no VmRSS")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// BenchmarkSettledMemory runs commands through vmd (over cat, which echoes
// the prompt), lets it settle, and reports its resident memory then
// (settled-rss-KiB) and its open file descriptors before and after
// (fds-start, fds-end): what a long-running vmd holds between commands.
//
//	go test -run '^$' -bench SettledMemory -benchtime 1x ./cmd/vmd/
func BenchmarkSettledMemory(b *testing.B) {
	const commands = 500
	cfg := filepath.Join(b.TempDir(), "vm.hcl")
	if err := os.WriteFile(cfg, []byte("claude_bin = \"cat\"\nclaude_args = []\nwarm = false\nhost = \"127.0.0.1\"\nport = 0\nlog_format = \"json\"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "ANTHROPIC_API_KEY=k", "HOME=" + b.TempDir(), "IMAGES_DIR=" + filepath.Join(b.TempDir(), "images"), "TMPDIR=" + b.TempDir()}
	var rss, fdsStart, fdsEnd int
	for b.Loop() {
		p := startVMD(b, env, vmdBin, "-config", cfg)
		if r := post(p.url, "warm up"); r.status != 200 {
			b.Fatalf("first command = %d %v %v", r.status, r.body, r.err)
		}
		http.DefaultClient.CloseIdleConnections()
		time.Sleep(100 * time.Millisecond) // the janitor has made the spare TMPDIR
		fdsStart = openFDs(b, p.pid)
		for i := range commands {
			if r := post(p.url, "hello "+strconv.Itoa(i)); r.status != 200 {
				b.Fatalf("command %d = %d %v %v", i, r.status, r.body, r.err)
			}
		}
		http.DefaultClient.CloseIdleConnections() // the keep-alive connection is the client's, not a leak
		time.Sleep(1500 * time.Millisecond)       // past the settle delay
		rss = max(rss, residentKiB(b, p.pid))
		fdsEnd = openFDs(b, p.pid)
		p.Cmd.Process.Signal(syscall.SIGTERM)
		p.WaitExit(b)
	}
	b.ReportMetric(float64(rss), "settled-rss-KiB")
	b.ReportMetric(float64(fdsStart), "fds-start")
	b.ReportMetric(float64(fdsEnd), "fds-end")
}

func openFDs(b testing.TB, pid int) int {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		b.Fatal(err)
	}
	return len(entries)
}
