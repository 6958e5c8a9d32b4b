package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// unauthBody is the most body vmd reads from a request without the token:
// it answers 401 without reading a large body first.
const unauthBody = 1

// authenticator checks bearer tokens. The zero value, for an empty token,
// lets every request through.
type authenticator struct {
	on bool
	// sum is the token's SHA-256. Comparing digests in constant time
	// compares slices of equal length: nothing leaks the token's length,
	// nor how much of a guess was right.
	sum [sha256.Size]byte
}

func newAuthenticator(token string) authenticator {
	if token == "" {
		return authenticator{}
	}
	return authenticator{on: true, sum: sha256.Sum256([]byte(token))}
}

// authResult is what a request's Authorization header amounts to.
type authResult int

const (
	authOK      authResult = iota
	authMissing            // no Authorization header, or not a bearer token
	authInvalid            // a bearer token, not the right one
)

func (r authResult) String() string {
	switch r {
	case authOK:
		return "ok"
	case authMissing:
		return "missing"
	}
	return "invalid"
}

// exempt is the one route open without a token, and to any Host and
// Origin: liveness, which tells nothing. Platforms probe it without the
// token and with a Host of their own (Fly.io's checks name the machine's
// address; the image's HEALTHCHECK says localhost), so the guard's Host
// check would fail a healthy vmd; a page that reads it through DNS
// rebinding learns that vmd is up, and no more. It reads no body (see
// headerReceived). path is as sent.
func exempt(path []byte) bool { return string(path) == "/health" }

// check reads "Authorization: Bearer <token>"; the scheme is
// case-insensitive (RFC 9110).
func (au *authenticator) check(h *fasthttp.RequestHeader) authResult {
	if !au.on {
		return authOK
	}
	scheme, token, ok := bytes.Cut(h.Peek(fasthttp.HeaderAuthorization), []byte(" "))
	if !ok || !bytes.EqualFold(scheme, []byte("Bearer")) {
		return authMissing
	}
	sum := sha256.Sum256(bytes.TrimLeft(token, " "))
	if subtle.ConstantTimeCompare(sum[:], au.sum[:]) != 1 {
		return authInvalid
	}
	return authOK
}

// unauthorized answers 401 with a Bearer challenge (RFC 6750).
// path is the request's as sent (a request whose body fasthttp failed to
// read has lost its own).
func (a *API) unauthorized(ctx *fasthttp.RequestCtx, why authResult, path string) {
	challenge, msg := `Bearer realm="vmd"`, "This endpoint requires an Authorization: Bearer <token> header"
	if why == authInvalid {
		challenge, msg = `Bearer realm="vmd", error="invalid_token"`, "The bearer token is not valid"
	}
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, challenge)
	writeJSON(ctx, fasthttp.StatusUnauthorized, errorBody{Error: "unauthorized", Message: msg})
	args := []any{"reason", why, "method", truncate(string(ctx.Method()), 20),
		"path", truncate(path, 200), "remote", ctx.RemoteIP().String()}
	if warn, quieted := a.refusals.take(time.Now()); warn {
		a.reqLog(ctx).Warn("unauthorized", append(args, "quieted_since_last", quieted)...)
	} else {
		a.reqLog(ctx).Debug("unauthorized", args...)
	}
}

// refusalLog keeps a scanner on a public address from flooding the log:
// at most one unauthorized request a second is logged at warn, the rest at
// debug, and the next warn line says how many those were.
type refusalLog struct {
	mu      sync.Mutex
	last    time.Time
	quieted int
}

func (l *refusalLog) take(now time.Time) (warn bool, quieted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < time.Second {
		l.quieted++
		return false, 0
	}
	quieted, l.quieted, l.last = l.quieted, 0, now
	return true, quieted
}
