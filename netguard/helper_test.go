package netguard

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

// helperEnv makes the test binary, re-executed, a server (see helper).
const helperEnv = "VMD_NETGUARD_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	// fasthttp keeps one goroutine for the Date header, started once, and
	// its worker pool's cleaner sleeps up to 10s after Shutdown.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

// helper is a fasthttp server on loopback, behind a Listener ("guard", no
// per-address cap) or the bare listener ("plain", as vmd is today), that
// prints "addr ADDR" (and "cap N") and then obeys stdin, a command a line:
//
//	stats     prints "open N retried N rss KB"
//	headroom  opens pipes until it cannot, closes them, prints "headroom N" (descriptors)
//	hog       opens /dev/null until it cannot, keeps them, prints "hogged N"
//	release   closes those, prints "released"
//	exit      exits 0
//
// If Serve returns it prints "serve: ERROR" and exits 3. Warnings of the
// Listener come out on stdout too, as hclog lines.
func helper(mode string) int {
	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		say("serve: %v", err)
		return 3
	}
	var l net.Listener = ln
	var g *Listener
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }, Logger: quiet}
	if mode == "guard" {
		g = New(ln, Options{PerIP: -1, Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stdout, Level: hclog.Warn})})
		l, srv.Concurrency = g, 2*g.MaxConns()
		say("cap %d", g.MaxConns())
	}
	say("addr %s", ln.Addr())
	go func() {
		err := srv.Serve(l)
		say("serve: %v", err)
		os.Exit(3)
	}()
	var hog []*os.File
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "stats":
			say("open %d retried %d rss %s", g.Open(), g.Retried(), rss())
		case "headroom":
			say("headroom %d", headroom())
		case "hog":
			for {
				f, err := os.Open(os.DevNull)
				if err != nil {
					break
				}
				hog = append(hog, f)
			}
			say("hogged %d", len(hog))
		case "release":
			for _, f := range hog {
				f.Close()
			}
			hog = nil
			say("released")
		case "exit":
			return 0
		}
	}
	return 0
}

// headroom is how many descriptors the process could still open.
func headroom() int {
	var files []*os.File
	for {
		r, w, err := os.Pipe()
		if err != nil {
			break
		}
		files = append(files, r, w)
	}
	for _, f := range files {
		f.Close()
	}
	return len(files)
}

// quiet keeps fasthttp's complaints about the tests' slow and closed
// connections out of the test output.
var quiet = log.New(io.Discard, "", 0)

// rss is the VmRSS line of /proc/self/status, in kB.
func rss() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSuffix(strings.TrimSpace(v), " kB")
		}
	}
	return "?"
}

// child is a running helper.
type child struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // closed at the helper's EOF
	addr  string
	mu    sync.Mutex
	seen  []string
}

// startHelper runs the helper under prlimit --nofile=nofile.
func startHelper(t *testing.T, mode string, nofile int) *child {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is needed to lower the descriptor limit: %v", err)
	}
	c := &child{t: t, lines: make(chan string, 64)}
	c.cmd = exec.Command(prlimit, fmt.Sprintf("--nofile=%d", nofile), "--", os.Args[0])
	c.cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	c.cmd.Stderr = os.Stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		c.stdin.Close() // the helper exits at EOF
		for range c.lines {
		}
		c.cmd.Wait()
	})
	c.addr = strings.TrimPrefix(c.expect("addr "), "addr ")
	return c
}

// expect waits for the helper's next line starting with prefix; it fails
// the test if the helper's server stops first (unless prefix is "serve:").
func (c *child) expect(prefix string) string {
	c.t.Helper()
	timeout := time.NewTimer(2 * time.Minute) // a hang guard, not a measure
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("helper exited waiting for %q; it said %q", prefix, c.seen)
			}
			c.seen = append(c.seen, line)
			if strings.HasPrefix(line, prefix) || (prefix != "serve:" && strings.Contains(line, prefix)) {
				return line
			}
			if strings.HasPrefix(line, "serve:") {
				c.t.Fatalf("waiting for %q: the server stopped: %s", prefix, line)
			}
		case <-timeout.C:
			c.t.Fatalf("no %q from the helper; it said %q", prefix, c.seen)
		}
	}
}

// ask sends a command and waits for the line that answers it.
func (c *child) ask(command, prefix string) string {
	c.t.Helper()
	if _, err := fmt.Fprintln(c.stdin, command); err != nil {
		c.t.Fatal(err)
	}
	return c.expect(prefix)
}
