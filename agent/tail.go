package agent

import (
	"io"
	"sync"
)

// readChunk is how much is read from a pipe at a time.
const readChunk = 32 << 10

// tail keeps the last max bytes read from a pipe: the end of stderr is where
// a CLI says why it failed. It may be read while it fills.
type tail struct {
	mu   sync.Mutex
	buf  []byte
	max  int
	read int64 // all it read, kept or not
}

func (t *tail) fill(r io.Reader) {
	chunk := make([]byte, readChunk)
	for {
		n, err := r.Read(chunk)
		t.mu.Lock()
		t.read += int64(n)
		t.buf = append(t.buf, chunk[:n]...)
		if len(t.buf) > 2*t.max {
			t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		}
		t.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// bytes is a copy of the last max bytes read.
func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return append([]byte(nil), b...)
}

// total is all it read.
func (t *tail) total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.read
}
