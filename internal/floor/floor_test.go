package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/vmd-dev/vmd/internal/testbin"
)

var vmdBin, floorBin string

func TestMain(m *testing.M) {
	// fasthttp clients clean idle connections from goroutines of their own
	// that outlive them for a moment.
	testbin.Main(m, []string{testbin.VMD, "github.com/vmd-dev/vmd/internal/floor"}, []*string{&vmdBin, &floorBin},
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"))
}

// server is one wrapper under measurement: vmd, the floor, or an older vmd
// named by VMD_BENCH_BASELINE.
type server struct {
	name string
	cmd  *exec.Cmd
	addr string
}

// start runs a wrapper over cat (which echoes the prompt) on a free
// loopback port and returns once /health answers, with the time that took.
// env overrides its environment (STATE_DIR=:memory:).
func start(tb testing.TB, name, bin string, env ...string) (*server, time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := tb.TempDir()
	hcl := filepath.Join(dir, "vm.hcl")
	if err := os.WriteFile(hcl, []byte("claude_bin = \"cat\"\nclaude_args = []\nwarm = false\nlog_level = \"warn\"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", hcl)
	_, port, _ := net.SplitHostPort(addr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "ANTHROPIC_API_KEY=k", "HOST=127.0.0.1",
		"PORT=" + port, "IMAGES_DIR=" + filepath.Join(dir, "images"), "STATE_DIR=" + filepath.Join(dir, "state"),
		"WORKSPACE_DIR=" + dir, "TMPDIR=" + dir, "FLOOR_ADDR=" + addr, "FLOOR_BIN=/bin/cat"}
	cmd.Env = append(cmd.Env, env...) // the last of a name wins
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s := &server{name: name, cmd: cmd, addr: addr}
	tb.Cleanup(s.stop)
	for {
		if code, _ := s.get("/health"); code == 200 {
			return s, time.Since(t0)
		}
		if time.Since(t0) > 10*time.Second {
			tb.Fatalf("%s: /health did not answer in 10s", name)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (s *server) stop() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
	}
}

// get does one request on a fresh connection, the way a health probe does.
func (s *server) get(path string) (int, error) {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path)
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		return 0, err
	}
	return resp.StatusCode(), nil
}

func (s *server) rss(tb testing.TB) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	n, _ := strconv.Atoi(string(m[1]))
	return float64(n) / 1024
}

// commands sends n POST /command over one keep-alive connection and
// returns each round trip.
func (s *server) commands(tb testing.TB, c *fasthttp.HostClient, n int) []time.Duration {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	out := make([]time.Duration, 0, n)
	for range n {
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetRequestURI("http://" + s.addr + "/command")
		req.SetBodyString(`{"text":"hi"}`)
		t0 := time.Now()
		if err := c.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
			tb.Fatalf("%s: POST /command = %d %s %v", s.name, resp.StatusCode(), resp.Body(), err)
		}
		out = append(out, time.Since(t0))
	}
	return out
}

// health sends n GET /health from 8 concurrent keep-alive connections and
// returns the answers per second.
func (s *server) health(tb testing.TB, n int) float64 {
	c := &fasthttp.HostClient{Addr: s.addr, MaxConns: 8}
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 8 {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + s.addr + "/health")
			for range n / 8 {
				if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					tb.Errorf("%s: GET /health = %d %v", s.name, resp.StatusCode(), err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(t0).Seconds()
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkVersusFloor measures vmd against the floor program (and against
// an older vmd binary named by VMD_BENCH_BASELINE, if set) in one run,
// interleaved, so that the ratios hold on a noisy machine: the /command
// round trip (p50), the time from exec to a /health answer, /health
// throughput, and resident memory once idle. vmd-memory is vmd with its
// command store in memory (state_dir ":memory:"): what the store on the
// local disk costs is vmd's figures over it.
//
//	go test -run '^$' -bench VersusFloor -benchtime 5x ./internal/floor/
func BenchmarkVersusFloor(b *testing.B) {
	bins := [][3]string{{"floor", floorBin}, {"vmd", vmdBin}, {"vmd-memory", vmdBin, "STATE_DIR=:memory:"}}
	if base := os.Getenv("VMD_BENCH_BASELINE"); base != "" {
		bins = append(bins, [3]string{"baseline", base})
	}
	ready := map[string][]time.Duration{}
	cmd := map[string][]time.Duration{}
	health := map[string][]float64{}
	rss := map[string][]float64{}
	for b.Loop() {
		for _, nb := range bins {
			var env []string
			if nb[2] != "" {
				env = []string{nb[2]}
			}
			s, took := start(b, nb[0], nb[1], env...)
			ready[s.name] = append(ready[s.name], took)
			for range 10 {
				s.get("/health")
			}
			rss[s.name] = append(rss[s.name], s.rss(b))
			c := &fasthttp.HostClient{Addr: s.addr}
			s.commands(b, c, 20) // warm up
			cmd[s.name] = append(cmd[s.name], s.commands(b, c, 300)...)
			c.CloseIdleConnections()
			health[s.name] = append(health[s.name], s.health(b, 100000)) // fewer varied by ±15% from run to run
			s.stop()
		}
	}
	floorCmd, floorReady, floorHealth := median(cmd["floor"]), median(ready["floor"]), median(health["floor"])
	for _, nb := range bins {
		n := nb[0]
		p50 := median(cmd[n])
		b.ReportMetric(float64(p50.Microseconds())/1000, n+"-cmd-p50-ms")
		b.ReportMetric(float64(median(ready[n]).Microseconds())/1000, n+"-ready-ms")
		b.ReportMetric(median(health[n]), n+"-health-req/s")
		b.ReportMetric(median(rss[n]), n+"-idle-rss-MiB")
		if n != "floor" {
			b.ReportMetric(float64((p50-floorCmd).Microseconds())/1000, n+"-cmd-over-floor-ms")
			b.ReportMetric(float64(median(ready[n]))/float64(floorReady), n+"-ready-x-floor")
			b.ReportMetric(median(health[n])/floorHealth, n+"-health-x-floor")
		}
	}
	b.ReportMetric(float64((median(cmd["vmd"])-median(cmd["vmd-memory"])).Microseconds())/1000, "store-on-disk-over-memory-ms")
	fmt.Fprintln(os.Stderr) // keep the metrics on a line of their own
}
