package vmdtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// LogBuffer collects a logger's output, safe for many writers, and reads
// JSON log lines back by message.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write adds to the buffer.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is all that was written.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines are the JSON log lines so far, decoded; other lines are left out.
func (l *LogBuffer) Lines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Logged reports whether a JSON line with this message was logged.
func (l *LogBuffer) Logged(message string) bool {
	_, ok := l.Line(message)
	return ok
}

// Field is a field of the first JSON line with this message, or nil.
func (l *LogBuffer) Field(message, key string) any {
	m, _ := l.Line(message)
	return m[key]
}

// Line is the first JSON line with this message.
func (l *LogBuffer) Line(message string) (map[string]any, bool) {
	for _, m := range l.Lines() {
		if m["@message"] == message {
			return m, true
		}
	}
	return nil, false
}

// Count counts the JSON lines with this message.
func (l *LogBuffer) Count(message string) int {
	n := 0
	for _, m := range l.Lines() {
		if m["@message"] == message {
			n++
		}
	}
	return n
}
