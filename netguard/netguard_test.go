package netguard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/internal/poll"
)

// get sends GET /health on a new connection from the loopback address
// from (empty: any) and returns the answer.
func get(t *testing.T, addr, from string) (int, string) {
	t.Helper()
	d := net.Dialer{}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute)) // a hang guard, not a measure
	fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
	return readAnswer(t, c)
}

func readAnswer(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func dialMany(t *testing.T, addr string, n int, send string) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		if send != "" {
			c.Write([]byte(send)) // a refused one may be reset already
		}
	}
	return conns
}

// serve runs a fasthttp server answering "ok" on a guarded loopback
// listener, until the test ends.
func serve(t *testing.T, opts Options) (*Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := New(ln, opts)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") },
		Concurrency: 2 * g.MaxConns(), Logger: quiet}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(g) }()
	t.Cleanup(func() {
		srv.Shutdown()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return g, ln.Addr().String()
}

// Thousands of slow connections (half a request each) from one address
// take that address's share and no more: /health answers from another
// address, and the held connections still work. Without the per-address
// cap they fill the total and /health waits in the backlog behind them.
func TestOneAddressCannotTakeAll(t *testing.T) {
	t.Parallel()
	const total, perIP, slow = 512, 64, 3000
	g, addr := serve(t, Options{MaxConns: total, PerIP: perIP})
	held := dialMany(t, addr, slow, "GET /health HTTP/1.1\r\nHost: localhost\r\n")
	poll.Eventually(t, "every slow connection accepted or refused", func() bool {
		return g.Open() == perIP && g.Refused() == slow-perIP
	})

	if status, body := get(t, addr, "127.0.0.2"); status != 200 || body != "ok" {
		t.Errorf("/health from 127.0.0.2: %d %q; want 200 ok", status, body)
	}
	// One of the slow requests that got in, finished now, is answered.
	var answered bool
	for _, c := range held {
		c.SetReadDeadline(time.Now()) // refused ones were answered and closed
		if _, err := c.Read(make([]byte, 1)); err == nil || !isTimeout(err) {
			continue
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		fmt.Fprint(c, "\r\n")
		if status, _ := readAnswer(t, c); status != 200 {
			t.Errorf("a held slow request, completed: %d; want 200", status)
		}
		answered = true
		break
	}
	if !answered {
		t.Error("no slow connection was held open")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A connection past its address's cap gets vmd's JSON error, 429.
func TestRefusalAnswer(t *testing.T) {
	t.Parallel()
	g, addr := serve(t, Options{PerIP: 1})
	dialMany(t, addr, 1, "")
	poll.Eventually(t, "the first connection accepted", func() bool { return g.Open() == 1 })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	status, body := readAnswer(t, c)
	if status != 429 || !strings.Contains(body, `"error":"too_many_connections"`) {
		t.Errorf("past the cap: %d %q; want 429 too_many_connections", status, body)
	}
	if g.Refused() != 1 {
		t.Errorf("Refused() = %d; want 1", g.Refused())
	}
}

// Under a descriptor limit of 1024, 1,100 connections take the cap (the
// limit less the reserve) and no more: the server keeps the reserve free,
// never fails an accept, and serves again once they go. The bare listener,
// as vmd has it today, makes fasthttp's Serve return "too many open files".
func TestDescriptorLimit(t *testing.T) {
	t.Parallel()
	const nofile, conns = 1024, 1100
	t.Run("plain", func(t *testing.T) {
		c := startHelper(t, "plain", nofile)
		// Serve returns at the first failed accept and closes the listener,
		// so the dials after that are refused or reset: that is the failure
		// under test, and the dialing stops there.
		for i := range conns {
			conn, err := net.Dial("tcp", c.addr)
			if err != nil {
				if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("connection %d: %v", i, err)
				}
				break
			}
			defer conn.Close()
		}
		if line := c.expect("serve:"); !strings.Contains(line, "too many open files") {
			t.Errorf("the bare listener: %s; want Serve to return too many open files", line)
		}
	})
	t.Run("guard", func(t *testing.T) {
		c := startHelper(t, "guard", nofile)
		limit := 0
		fmt.Sscanf(c.seen[0], "cap %d", &limit)
		if limit != nofile-DefaultReserve {
			t.Errorf("cap %d; want %d", limit, nofile-DefaultReserve)
		}
		held := dialMany(t, c.addr, conns, "")
		var stats string
		poll.Eventually(t, "the cap reached", func() bool {
			stats = c.ask("stats", "open ")
			return strings.HasPrefix(stats, fmt.Sprintf("open %d ", limit))
		})
		t.Logf("at the cap: %s", stats)
		var free int
		fmt.Sscanf(c.ask("headroom", "headroom "), "headroom %d", &free)
		if free < DefaultReserve/2 {
			t.Errorf("at the cap %d descriptors were free; want most of the reserve, %d", free, DefaultReserve)
		}
		t.Logf("descriptors free at the cap: %d", free)
		for _, h := range held {
			h.Close()
		}
		if status, body := get(t, c.addr, ""); status != 200 || body != "ok" {
			t.Errorf("/health after: %d %q; want 200 ok", status, body)
		}
		if stats := c.ask("stats", "open "); !strings.Contains(stats, " retried 0 ") {
			t.Errorf("%s; want no accept failed", stats)
		}
	})
}

// With every descriptor taken (by something else than connections), an
// accept fails with EMFILE; the Listener pauses and retries until one is
// free, and the request is answered. The bare listener stops the server.
func TestAcceptRetried(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"plain", "guard"} {
		t.Run(mode, func(t *testing.T) {
			c := startHelper(t, mode, 256)
			c.ask("hog", "hogged ")
			// With the bare listener, the accept fails at once, Serve
			// returns and closes the listener, and the kernel resets the
			// queued connection. That can land before Dial has read the
			// socket's state: then the reset is the failure under test.
			conn, err := net.Dial("tcp", c.addr)
			switch {
			case err == nil:
				defer conn.Close()
				fmt.Fprint(conn, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
			case mode == "guard" || !errors.Is(err, syscall.ECONNRESET):
				t.Fatal(err)
			}
			if mode == "plain" {
				if line := c.expect("serve:"); !strings.Contains(line, "too many open files") {
					t.Errorf("the bare listener: %s; want Serve to return too many open files", line)
				}
				return
			}
			c.expect("accept failed, retrying")
			c.ask("release", "released")
			conn.SetDeadline(time.Now().Add(2 * time.Minute))
			if status, body := readAnswer(t, conn); status != 200 || body != "ok" {
				t.Errorf("after the descriptors came back: %d %q; want 200 ok", status, body)
			}
			if stats := c.ask("stats", "open "); strings.Contains(stats, " retried 0 ") {
				t.Errorf("%s; want accepts retried", stats)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}, "127.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 1}, "10.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::"},
		{&net.UnixAddr{Name: "/x", Net: "unix"}, "invalid IP"},
	}
	for _, tt := range tests {
		if got := clientKey(tt.addr); got.String() != tt.want {
			t.Errorf("clientKey(%v) = %v; want %s", tt.addr, got, tt.want)
		}
	}
	_ = netip.Addr{}
}

// Close ends an Accept that waits at the cap.
func TestCloseAtCap(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := New(ln, Options{MaxConns: 1})
	dialMany(t, ln.Addr().String(), 2, "")
	c, err := g.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := g.Accept() // waits for the slot c holds
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	g.Close()
	if err := <-accepted; err != net.ErrClosed {
		t.Errorf("Accept at the cap after Close: %v; want net.ErrClosed", err)
	}
}
