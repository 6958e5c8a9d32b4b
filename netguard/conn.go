package netguard

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// conn gives back its slot and its address's count when closed.
type conn struct {
	net.Conn
	l    *Listener
	addr netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.release(c.addr)
		c.l.open.Add(-1)
		<-c.l.slots
	})
	return err
}

// ReadFrom keeps the kernel's sendfile and splice for what fasthttp copies
// to the connection (images are served from files).
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// clientKey is the address a connection counts against: the remote IP, an
// IPv4-mapped one as IPv4, an IPv6 one as its /64 (what one host or one
// customer of a provider is handed). The zero Addr for anything else
// (a Unix socket, an in-memory pipe): not capped.
func clientKey(a net.Addr) netip.Addr {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return netip.Addr{}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// admit counts a new connection from addr, unless addr holds its cap.
func (l *Listener) admit(addr netip.Addr) bool {
	if l.perIP < 0 || !addr.IsValid() {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[addr] >= l.perIP {
		return false
	}
	l.byAddr[addr]++
	return true
}

func (l *Listener) release(addr netip.Addr) {
	if l.perIP < 0 || !addr.IsValid() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
}

// tooMany is the answer to a connection past its address's cap, in the
// shape of vmd's other errors. The request is not read: the connection is
// closed right after, and a client that had sent its request may see a
// reset instead of this (the kernel resets a connection closed unread).
var tooMany = "HTTP/1.1 429 Too Many Requests\r\n" +
	"Content-Type: application/json\r\n" +
	"Connection: close\r\n" +
	"Retry-After: 1\r\n" +
	"Content-Length: " + strconv.Itoa(len(tooManyBody)) + "\r\n" +
	"\r\n" + tooManyBody

const tooManyBody = `{"error":"too_many_connections","message":"This address holds as many connections as vmd allows one"}` + "\n"

// refuse answers and closes a connection past its address's cap. The
// write fits a new socket's buffer; the deadline is for the impossible
// case it does not, as Accept is waiting.
func (l *Listener) refuse(c net.Conn, addr netip.Addr) {
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = io.WriteString(c, tooMany)
	_ = c.Close()
	l.refused.Add(1)

	l.mu.Lock()
	now := time.Now()
	warn := l.lastWarn.IsZero() || now.Sub(l.lastWarn) >= time.Minute
	quieted := l.quieted
	if warn {
		l.lastWarn, l.quieted = now, 0
	} else {
		l.quieted++
	}
	l.mu.Unlock()
	if warn {
		l.log.Warn("connection refused: too many from one address", "remote", addr, "per_ip", l.perIP,
			"refused_since_last", quieted)
	}
}
