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
//
// A JSON line that grows past maxLine is kept with its long strings cut
// (see trim): the result line of a 64 MiB answer still reaches the turn,
// and ends it, which matters most to a warm CLI, whose exit will not. A
// line still too long after that is skipped.
type lines struct {
	maxLine int
	maxStr  int // a string of a line past maxLine keeps this many bytes
	log     hclog.Logger
	json    func(b []byte, cut bool) // a whole line that looks like JSON; cut: its strings were cut
	raw     func(b []byte)           // other output
	read    func()                   // called for every read that returned bytes
}

func newLines(limit int, log hclog.Logger, json func([]byte, bool), raw func([]byte), read func()) *lines {
	return &lines{maxLine: max(4*limit, 1<<20), maxStr: max(limit, 1<<16) + 1, log: log, json: json, raw: raw, read: read}
}

// fill reads r to its end.
func (l *lines) fill(r io.Reader) {
	chunk := make([]byte, readChunk)
	var cur []byte // the JSON line being collected
	var tr trim    // its long strings cut, once it is too long
	const (
		atStart = iota
		inJSON
		inTrimmed // a JSON line past maxLine, its long strings cut
		inRaw
		skipping // a JSON line too long to keep even so
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
				if len(cur)+len(part) <= l.maxLine {
					cur = append(cur, part...)
					break
				}
				tr = trim{max: l.maxStr}
				cur = tr.add(tr.add(nil, cur), part)
				state = inTrimmed
			case inTrimmed:
				cur = tr.add(cur, part)
			}
			if state == inTrimmed && len(cur) > l.maxLine {
				l.log.Warn("stream-json line too long; skipped", "limit", l.maxLine, "start", string(cur[:min(len(cur), 60)]))
				l.json(skippedLine(cur), false)
				cur, state = cur[:0], skipping
			}
			if end >= 0 {
				if state == inJSON || state == inTrimmed {
					l.json(cur, state == inTrimmed)
				}
				cur, state = cur[:0], atStart
			}
		}
		if err != nil {
			if (state == inJSON || state == inTrimmed) && len(cur) > 0 {
				l.json(cur, state == inTrimmed)
			}
			return
		}
	}
}

// skippedLine is what the turn is handed for a line too long to keep: nil
// (counted as skipped), or, for a result line, a result saying so, so that
// the turn ends now and not at its timeout.
func skippedLine(head []byte) []byte {
	if !bytes.Contains(head[:min(len(head), 64)], []byte(`"type":"result"`)) {
		return nil
	}
	return []byte(`{"type":"result","subtype":"error_during_execution","is_error":true,` +
		`"result":"vmd could not read the CLI's result: its line was too long, even with its long strings cut"}`)
}

// trim copies a JSON line with each string value cut to its first max
// bytes: the cut falls between characters, never inside an escape or a
// UTF-8 sequence, and the string is closed where the original closed, so
// the line stays valid JSON. (A cut between the halves of a \u surrogate
// pair reads as U+FFFD.)
type trim struct {
	max     int
	inStr   bool // inside a string
	esc     bool // after its backslash
	hex     int  // hex digits of a \u escape to come
	n       int  // bytes of this string kept
	cutting bool
}

func (t *trim) add(dst, b []byte) []byte {
	for _, c := range b {
		if !t.inStr {
			if c == '"' {
				t.inStr, t.n, t.cutting = true, 0, false
			}
			dst = append(dst, c)
			continue
		}
		between := !t.esc && t.hex == 0 && c&0xC0 != 0x80
		switch {
		case t.esc:
			t.esc = false
			if c == 'u' {
				t.hex = 4
			}
		case t.hex > 0:
			t.hex--
		case c == '\\':
			t.esc = true
		case c == '"':
			t.inStr = false
			dst = append(dst, c)
			continue
		}
		if !t.cutting && t.n >= t.max && between {
			t.cutting = true
		}
		if !t.cutting {
			dst = append(dst, c)
			t.n++
		}
	}
	return dst
}
