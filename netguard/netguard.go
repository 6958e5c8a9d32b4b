// Package netguard wraps vmd's listener so that neither a hostile client
// nor a shortage of file descriptors stops it serving:
//
//   - An accept error that passes (EMFILE, ENFILE, ENOBUFS, ENOMEM,
//     ECONNABORTED) is retried after a pause, 5 ms doubling to 1 s as
//     net/http does. fasthttp's Serve returns on any accept error but a
//     timeout, which ended vmd mid-command when descriptors ran out.
//   - Open connections are capped below the descriptor limit, keeping a
//     reserve for the rest of vmd: the command's pipes, its TMPDIR lock,
//     /proc reads and the sweep after it. At the cap, Accept waits for a
//     connection to close; new ones wait in the kernel's backlog, costing
//     no descriptor, and are served in turn.
//   - Connections from one client address (an IPv6 /64 counts as one) are
//     capped too: past the cap a connection gets a short JSON 429 and is
//     closed at once, so one address cannot take every connection and
//     /health stays answerable from any other (the container's own
//     healthcheck comes from loopback).
package netguard

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults of Options.
const (
	// DefaultReserve is how many descriptors stay free for the rest of
	// vmd. A command needs about a dozen (three pipes, the TMPDIR and its
	// lock, the reaper's and the sweep's /proc reads); the rest is
	// headroom for the images watcher, the store and the log.
	DefaultReserve = 128
	// DefaultPerIP is how many connections one address may hold: far
	// more than a relay needs (a command, its stream, a few polls), far
	// fewer than the cap.
	DefaultPerIP = 256
)

// Pauses after a failed accept, as net/http's Server.Serve.
const (
	firstPause = 5 * time.Millisecond
	maxPause   = time.Second
)

// Options tune a Listener. The zero value is fine: it derives the cap from
// the descriptor limit and keeps DefaultReserve and DefaultPerIP.
type Options struct {
	// MaxConns is the most connections open at once, if lower than the
	// descriptor limit less Reserve.
	MaxConns int
	// Reserve is how many descriptors connections may never take.
	Reserve int
	// PerIP is the most connections open at once from one address; past
	// it they are refused. Negative: no per-address cap. It is kept at most
	// half the total cap, so two addresses always fit.
	PerIP int
	// Logger hears of accept errors and refused connections (at most one
	// refusal line a minute); nil for none.
	Logger hclog.Logger
}

// Listener is a net.Listener with the guards of the package comment. Its
// methods are safe for concurrent use.
type Listener struct {
	net.Listener
	log   hclog.Logger
	max   int
	perIP int

	slots     chan struct{} // one per open connection
	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	byAddr   map[netip.Addr]int
	lastWarn time.Time
	quieted  int

	open    atomic.Int64
	refused atomic.Uint64
	retried atomic.Uint64
}

// New guards ln.
func New(ln net.Listener, opts Options) *Listener {
	if opts.Reserve <= 0 {
		opts.Reserve = DefaultReserve
	}
	limit := ConnLimit(opts.Reserve)
	if opts.MaxConns > 0 && opts.MaxConns < limit {
		limit = opts.MaxConns
	}
	perIP := opts.PerIP
	if perIP == 0 {
		perIP = DefaultPerIP
	}
	if perIP > 0 && perIP > limit/2 {
		perIP = max(1, limit/2)
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Listener{Listener: ln, log: log, max: limit, perIP: perIP,
		slots: make(chan struct{}, limit), closed: make(chan struct{}), byAddr: map[netip.Addr]int{}}
}

// ConnLimit is the most connections the descriptor limit (RLIMIT_NOFILE,
// as Go raised it at start) allows with reserve descriptors kept free, and
// never less than half the limit.
func ConnLimit(reserve int) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<20 {
		rl.Cur = 1 << 20 // unlimited, or unknown: MaxConns decides
	}
	limit := int(rl.Cur)
	return max(limit-reserve, limit/2, 1)
}

// MaxConns is the cap on open connections. Give fasthttp.Server a
// Concurrency of twice as many, so that its own refusal (a plain-text 503)
// never happens: fasthttp frees a connection's worker a moment after
// closing it, and at exactly the cap that moment would count.
func (l *Listener) MaxConns() int { return l.max }

// PerIP is the cap on one address's connections, or negative for none.
func (l *Listener) PerIP() int { return l.perIP }

// Open is how many connections are open.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Refused is how many connections were refused for their address's cap.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Retried is how many accepts failed and were retried.
func (l *Listener) Retried() uint64 { return l.retried.Load() }

// Accept waits for a free slot, then for a connection it may keep.
func (l *Listener) Accept() (net.Conn, error) {
	pause := time.Duration(0)
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.closed:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			if !passing(err) {
				return nil, err
			}
			pause = min(max(2*pause, firstPause), maxPause)
			l.retried.Add(1)
			l.log.Warn("accept failed, retrying", "error", err, "pause", pause)
			if !l.wait(pause) {
				return nil, net.ErrClosed
			}
			continue
		}
		pause = 0
		addr := clientKey(c.RemoteAddr())
		if !l.admit(addr) {
			l.refuse(c, addr)
			<-l.slots
			continue
		}
		l.open.Add(1)
		return &conn{Conn: c, l: l, addr: addr}, nil
	}
}

// Close closes the listener and ends an Accept waiting for a slot or a
// pause. Connections already accepted stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// wait pauses for d, or until the listener closes (false).
func (l *Listener) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.closed:
		return false
	}
}

// passing reports whether an accept error is one that may clear by itself:
// out of descriptors or kernel memory, or a connection aborted before it
// was accepted.
func passing(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
