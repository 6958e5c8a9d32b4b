package agent

import "io"

// readChunk is how much is read from a pipe at a time.
const readChunk = 32 << 10

// tail keeps the last max bytes read from a pipe: the end of stderr is where
// a CLI says why it failed.
type tail struct {
	buf  []byte
	max  int
	read int64 // all it read, kept or not
}

func (t *tail) fill(r io.Reader) {
	chunk := make([]byte, readChunk)
	for {
		n, err := r.Read(chunk)
		t.read += int64(n)
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
