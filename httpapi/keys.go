package httpapi

import (
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/store"
)

// HeaderIdempotencyKey names the request header that makes a submit
// idempotent; HeaderReplayed marks an answer given again for it.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
	headerLastEventID    = "Last-Event-ID"
	maxKeyLength         = 255
)

var (
	errKey         = errors.New("'Idempotency-Key' must be 1 to 255 printable ASCII characters")
	errLastEventID = errors.New("'Last-Event-ID' must be the id of an event this command sent (a whole number)")
	errCommandID   = errors.New("not a command id")
)

// ParseIdempotencyKey checks an Idempotency-Key header's value: 1 to 255
// printable ASCII characters (space to tilde). A WhatsApp message id fits.
func ParseIdempotencyKey(v []byte) (string, error) {
	if len(v) == 0 || len(v) > maxKeyLength {
		return "", errKey
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return "", errKey
		}
	}
	return string(v), nil
}

// ParseLastEventID reads a Last-Event-ID header: the seq of the last event
// the client has. Absent or empty is 0: from the first event.
func ParseLastEventID(v []byte) (int64, error) {
	if len(v) == 0 {
		return 0, nil
	}
	if len(v) > 19 || v[0] < '0' || v[0] > '9' {
		return 0, errLastEventID
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 {
		return 0, errLastEventID
	}
	return n, nil
}

// ParseCommandPath splits a path under /commands/ into the command's id and
// what follows it ("" or "events"); ok is false for a path that is
// neither. The id is checked: a command id, as vmd makes them.
func ParseCommandPath(path string) (id, rest string, err error) {
	tail, ok := strings.CutPrefix(path, "/commands/")
	if !ok {
		return "", "", errCommandID
	}
	raw, rest, _ := strings.Cut(tail, "/")
	if rest != "" && rest != "events" {
		return "", "", errCommandID
	}
	id, err = store.ParseID(raw)
	if err != nil {
		return "", "", errCommandID
	}
	return id, rest, nil
}

// submission is what a submit's headers ask beside its body.
type submission struct {
	key  string
	hash []byte
}

// readSubmission reads the Idempotency-Key, and hashes the body the key is
// held with: the same key with another body is refused.
func readSubmission(ctx *fasthttp.RequestCtx) (submission, error) {
	raw := ctx.Request.Header.Peek(HeaderIdempotencyKey)
	if raw == nil {
		return submission{}, nil
	}
	key, err := ParseIdempotencyKey(raw)
	if err != nil {
		return submission{}, err
	}
	sum := sha256.Sum256(ctx.PostBody())
	return submission{key: key, hash: sum[:]}, nil
}
