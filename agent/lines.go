package agent

import (
	"bytes"
	"io"

	"github.com/hashicorp/go-hclog"
)

// lines splits a CLI's stdout as it comes: a line that starts with '{' is
// collected (up to maxLine) and handed over whole, as stream-json; any
// other output is handed over as it streams, without waiting for its end
// of line (a CLI that does not speak stream-json, a crash message).
type lines struct {
	maxLine int
	log     hclog.Logger
	json    func(b []byte) // a whole line that looks like JSON
	raw     func(b []byte) // other output
	read    func()         // called for every read that returned bytes
}

func newLines(limit int, log hclog.Logger, json, raw func([]byte), read func()) *lines {
	return &lines{maxLine: max(4*limit, 1<<20), log: log, json: json, raw: raw, read: read}
}

// fill reads r to its end.
func (l *lines) fill(r io.Reader) {
	chunk := make([]byte, readChunk)
	var cur []byte // the JSON line being collected
	const (
		atStart = iota
		inJSON
		inRaw
		skipping // a JSON line too long to keep
	)
	state := atStart
	for {
		n, err := r.Read(chunk)
		b := chunk[:n]
		if n > 0 {
			l.read()
		}
		for len(b) > 0 {
			if state == atStart {
				state = inRaw
				if b[0] == '{' {
					state = inJSON
				}
			}
			end := bytes.IndexByte(b, '\n')
			part := b
			if end >= 0 {
				part = b[:end+1]
			}
			b = b[len(part):]
			switch state {
			case inRaw:
				l.raw(part)
			case inJSON:
				if len(cur)+len(part) > l.maxLine {
					l.log.Warn("stream-json line too long; skipped", "limit", l.maxLine, "start", string(cur[:min(len(cur), 60)]))
					l.json(nil) // counted as skipped
					cur, state = cur[:0], skipping
				} else {
					cur = append(cur, part...)
				}
			}
			if end >= 0 {
				if state == inJSON {
					l.json(cur)
				}
				cur, state = cur[:0], atStart
			}
		}
		if err != nil {
			if state == inJSON && len(cur) > 0 {
				l.json(cur)
			}
			return
		}
	}
}
