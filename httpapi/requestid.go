package httpapi

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// headerRequestID carries a request's id, both ways.
const headerRequestID = "X-Request-Id"

// maxRequestID is the longest id taken from a client.
const maxRequestID = 128

// User value keys of a request.
type userKey int

const (
	requestIDKey userKey = iota // string
	loggerKey                   // hclog.Logger, made on first use
)

// setRequestID gives the request its id: id if set (see clientRequestID),
// else the request's own. The response carries it whatever the answer.
func setRequestID(ctx *fasthttp.RequestCtx, id string) {
	if id == "" {
		id = clientRequestID(&ctx.Request.Header)
	}
	ctx.SetUserValue(requestIDKey, id)
	ctx.Response.Header.Set(headerRequestID, id)
}

// clientRequestID is the client's X-Request-Id if it is sane, else a new
// id.
func clientRequestID(h *fasthttp.RequestHeader) string {
	id := string(h.Peek(headerRequestID))
	if !saneRequestID(id) {
		id = newRequestID()
	}
	return id
}

// saneRequestID accepts 1 to maxRequestID bytes of printable ASCII: what a
// proxy or the relay would send, and safe in a log line and a header.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// newRequestID is 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand's contract since Go 1.24)
	return hex.EncodeToString(b[:])
}

// requestID is the id of the request being handled. It is a string, so it
// may be kept after the handler returns (the ctx may not).
func requestID(ctx *fasthttp.RequestCtx) string {
	id, _ := ctx.UserValue(requestIDKey).(string)
	return id
}

// reqLog is the API's logger with the request's id on every line. It may be
// kept after the handler returns, for the rest of the request's work.
func (a *API) reqLog(ctx *fasthttp.RequestCtx) hclog.Logger {
	if l, ok := ctx.UserValue(loggerKey).(hclog.Logger); ok {
		return l
	}
	l := a.log.With("request_id", requestID(ctx))
	ctx.SetUserValue(loggerKey, l)
	return l
}
