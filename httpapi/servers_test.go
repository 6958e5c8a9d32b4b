package httpapi_test

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/internal/stack"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// The first FastConns connections go to the fast server, the rest to the
// lean one; both answer, and a fast connection that closes frees its
// place for the next.
func TestFastAndLeanServers(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake, Loopback: true, Tweak: func(o *stack.Options) { o.API.FastConns = 2 }})
	type conn struct {
		net.Conn
		br *bufio.Reader
	}
	dial := func() conn {
		t.Helper()
		c, err := s.Dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return conn{c, bufio.NewReader(c)}
	}
	health := func(c conn) {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
		var resp fasthttp.Response
		if err := resp.Read(c.br); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("GET /health = %d, %v", resp.StatusCode(), err)
		}
	}
	var conns []conn
	for range 4 { // one at a time, so the first two are the fast ones
		c := dial()
		health(c)
		conns = append(conns, c)
	}
	if n := s.API.FastOpen(); n != 2 {
		t.Fatalf("fast connections = %d; want 2 of 4", n)
	}
	for _, c := range conns { // each still answers on its keep-alive connection
		health(c)
	}
	conns[0].Close()
	vmdtest.Eventually(t, "the closed fast connection to free its place", func() bool { return s.API.FastOpen() == 1 })
	health(dial())
	if n := s.API.FastOpen(); n != 2 {
		t.Errorf("fast connections after one closed and one opened = %d; want 2", n)
	}
}
