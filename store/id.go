package store

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/uuid"
)

// idLen is the length of an id in its canonical text form.
const idLen = 36

// ErrBadID is wrapped by ParseID's errors.
var ErrBadID = errors.New("not a command id")

// NewID returns a fresh command id: a UUIDv7 in canonical lower-case text.
// Its first 48 bits are the Unix time in milliseconds and google/uuid keeps
// ids made within one millisecond increasing, so ids sort by creation in
// text and in bytes alike; List relies on that order.
func NewID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new command id: %w", err)
	}
	return u.String(), nil
}

// ParseID checks that s is a command id as NewID makes them (a version 7
// UUID in canonical lower-case form) and returns it. Every id read from a
// request (a path, a cursor) goes through it before it reaches SQL, so the
// store only ever sees one spelling of an id.
func ParseID(s string) (string, error) {
	if len(s) != idLen {
		return "", fmt.Errorf("%q: want 36 characters: %w", clip(s), ErrBadID)
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q: %w", clip(s), ErrBadID)
	}
	if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		return "", fmt.Errorf("%q: not a version 7 uuid: %w", clip(s), ErrBadID)
	}
	if u.String() != s {
		return "", fmt.Errorf("%q: not in canonical lower-case form: %w", clip(s), ErrBadID)
	}
	return s, nil
}

// clip shortens s for an error message, so a hostile input cannot make
// the log line as long as the request.
func clip(s string) string {
	const most = 40
	if len(s) > most {
		return s[:most] + "…"
	}
	return s
}

// Machine names the machine this process runs on, for the record's machine
// field: FLY_MACHINE_ID when set (a relay in front of several Fly machines
// routes a conversation back by it), else the hostname, else "unknown".
func Machine() string {
	if id := os.Getenv("FLY_MACHINE_ID"); id != "" {
		return id
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown"
}
