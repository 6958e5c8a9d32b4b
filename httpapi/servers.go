package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// defaultFastConns is how many connections at once the fast server takes
// (Options.FastConns): a relay holds a handful (a command, its stream, a
// few polls, the platform's probe).
const defaultFastConns = 64

// Two fasthttp servers answer vmd's connections, alike but for one
// setting. The first FastConns connections go to the fast one, which
// keeps a keep-alive connection's buffers between its requests. Past
// that (a flood of connections, hostile or not), the lean one takes
// them: it gives an idle connection's buffers back (fasthttp's
// ReduceMemoryUsage), which costs a read per request and saves 3.3 KiB
// per idle connection. So the relay's requests get the fast path and a
// flood cannot make vmd hold 8 KiB of buffers per connection.

// newServer makes one of the two servers; lean sets ReduceMemoryUsage.
func (a *API) newServer(lean bool) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:        a.serve,          // request id, guard, token, then Handler: see middleware.go
		ErrorHandler:   a.serveError,     // the same, then errorHandler
		HeaderReceived: a.headerReceived, // how much body, how long to read it
		// The headers must come within headerTimeout; the body then has
		// bodyTimeout (see headerReceived).
		ReadTimeout:        headerTimeout,
		IdleTimeout:        idleTimeout,
		WriteTimeout:       writeTimeout,
		MaxRequestBodySize: a.opts.MaxRequestBody,
		// Twice the listener's cap: fasthttp answers a plain-text 503 past
		// its Concurrency, which the listener's cap, reached first, never
		// lets happen (netguard.Listener.MaxConns says why twice).
		Concurrency:           2 * a.opts.MaxConns,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		ReduceMemoryUsage:     lean,
		// fasthttp logs what clients get wrong (bodies too large, broken
		// connections): debug material, answered in JSON anyway.
		Logger: a.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
}

// servers runs the two servers on ln's connections until ln fails or is
// closed and both servers are shut down.
type servers struct {
	ln         net.Listener
	fastSrv    *fasthttp.Server
	leanSrv    *fasthttp.Server
	max        int           // connections the fast server takes at once
	fastOpen   atomic.Int64  // connections the fast server has open
	fast, lean *queue        // what each server accepts from
	done       chan struct{} // closed once the splitter and both servers are done
	err        error         // the first error of theirs, once done is closed
}

func (a *API) startServers(ln net.Listener) *servers {
	s := &servers{ln: ln, fastSrv: a.newServer(false), leanSrv: a.newServer(true), max: a.opts.FastConns,
		fast: newQueue(ln.Addr()), lean: newQueue(ln.Addr()), done: make(chan struct{})}
	errs := make(chan error, 3)
	go func() { errs <- s.split() }()
	go func() { errs <- s.fastSrv.Serve(s.fast) }()
	go func() { errs <- s.leanSrv.Serve(s.lean) }()
	go func() {
		for range 3 {
			if err := <-errs; err != nil && s.err == nil {
				s.err = err
			}
		}
		close(s.done)
	}()
	return s
}

// split hands each connection ln accepts to the fast server while it has
// fewer than max, else to the lean one. When ln fails or is closed, it
// stops both servers taking more.
func (s *servers) split() error {
	defer s.fast.Close()
	defer s.lean.Close()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if isClosed(err) {
				return nil
			}
			return err
		}
		q := s.lean
		if s.fastOpen.Add(1) <= int64(s.max) {
			q, c = s.fast, &fastConn{Conn: c, open: &s.fastOpen}
		} else {
			s.fastOpen.Add(-1)
		}
		if !q.put(c) {
			c.Close() // its server is shutting down
		}
	}
}

// shutdown closes ln, so that new connections are refused at once, then
// shuts both servers down, each waiting for its connections until ctx is
// done.
func (s *servers) shutdown(ctx context.Context) error {
	// Closing ln ends the splitter, which closes both queues, which ends
	// both Serves. Waited for first: fasthttp's Shutdown counts a Serve
	// still running as an open connection and looks again only 100 ms
	// later.
	s.ln.Close()
	<-s.done
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, srv := range []*fasthttp.Server{s.fastSrv, s.leanSrv} {
		wg.Go(func() { errs[i] = srv.ShutdownWithContext(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// fastConn is a connection of the fast server's: closing it frees its
// place.
type fastConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *fastConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// queue is a listener one server accepts from, fed by the splitter.
type queue struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func newQueue(addr net.Addr) *queue {
	return &queue{conns: make(chan net.Conn), closed: make(chan struct{}), addr: addr}
}

// put hands c to the server; false if the queue is closed.
func (q *queue) put(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.closed:
		return false
	}
}

// Accept returns the next connection, or net.ErrClosed once closed.
func (q *queue) Accept() (net.Conn, error) {
	select {
	case <-q.closed: // first: closed wins over a connection still being put
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

// Close makes Accept return net.ErrClosed; closing twice is harmless.
func (q *queue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

// Addr is the listener's address.
func (q *queue) Addr() net.Addr { return q.addr }

// isClosed reports whether an Accept error means the listener was closed,
// as fasthttp judges it.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "use of closed network connection")
}
