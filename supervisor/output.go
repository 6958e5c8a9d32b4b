package supervisor

import (
	"io"
	"os"
)

// readChunk is how much is read from a pipe at a time.
const readChunk = 32 << 10

// capture keeps the first max bytes read from a pipe and counts the rest,
// which it reads and drops so that the child never blocks on a full pipe.
type capture struct {
	buf     []byte
	max     int
	dropped int64
}

func (c *capture) fill(r io.Reader) {
	chunk := make([]byte, readChunk)
	for {
		n, err := r.Read(chunk)
		if room := c.max - len(c.buf); room > 0 {
			c.buf = append(c.buf, chunk[:min(n, room)]...)
			c.dropped += int64(n - min(n, room))
		} else {
			c.dropped += int64(n)
		}
		if err != nil {
			return
		}
	}
}

// tail keeps the last max bytes read from a pipe: the end of stderr is where
// a CLI says why it failed.
type tail struct {
	buf []byte
	max int
}

func (t *tail) fill(r io.Reader) {
	chunk := make([]byte, readChunk)
	for {
		n, err := r.Read(chunk)
		t.buf = append(t.buf, chunk[:n]...)
		if len(t.buf) > 2*t.max {
			t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		}
		if err != nil {
			return
		}
	}
}

func (t *tail) bytes() []byte {
	if len(t.buf) > t.max {
		return t.buf[len(t.buf)-t.max:]
	}
	return t.buf
}

// pipe is one of the child's stdio pipes: the end vmd keeps and the end
// handed to the child.
type pipe struct{ ours, theirs *os.File }

func newPipes() (in, out, errp pipe, err error) {
	var ps [3]pipe
	for i := range ps {
		r, w, perr := os.Pipe()
		if perr != nil {
			for _, p := range ps[:i] {
				p.ours.Close()
				p.theirs.Close()
			}
			return in, out, errp, perr
		}
		if i == 0 {
			ps[i] = pipe{ours: w, theirs: r}
		} else {
			ps[i] = pipe{ours: r, theirs: w}
		}
	}
	return ps[0], ps[1], ps[2], nil
}
