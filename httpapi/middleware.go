package httpapi

import (
	"bytes"
	"errors"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// serve is the server's handler: every request passes here. It gives the
// request its id and answers it as its admission says (see
// headerReceived, which decided it once, from the headers): refused, for
// what a web page could have sent (see guard.go), then unauthorized,
// without the token, so that a caller without it learns nothing, not even
// which routes exist. /health is exempt from both: see exempt. Then it
// routes, and counts the answer.
func (a *API) serve(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	h := &ctx.Request.Header
	ad, ok := a.admissions.take(h)
	if !ok { // headerReceived always runs first; this is a guard, not a path
		ad = a.admit(h, ctx.Request.URI().PathOriginal())
	}
	setRequestID(ctx, ad.id)
	path := ctx.Request.URI().PathOriginal()
	switch {
	case ad.refusal.status != 0:
		a.forbid(ctx, ad.refusal)
	case ad.auth != authOK:
		a.unauthorized(ctx, ad.auth, string(path))
	default:
		a.Handler(ctx)
	}
	a.reqs.count(path, ctx.Response.StatusCode())
	if a.log.IsDebug() {
		a.reqLog(ctx).Debug("request", "method", truncate(string(ctx.Method()), 20), "path", truncate(string(path), 200),
			"status", ctx.Response.StatusCode(), "duration", time.Since(start))
	}
}

// serveError answers the requests fasthttp rejects before serve sees them,
// with an id like any other. A request whose headers were read was
// admitted (or not) by headerReceived, which kept its decision: fasthttp
// resets a request whose body it fails to read (a chunked body past the
// limit), headers and all. A body too large for a request that was
// refused, or lacks the token, gets that refusal, not 413.
func (a *API) serveError(ctx *fasthttp.RequestCtx, err error) {
	ad, ok := a.admissions.take(&ctx.Request.Header)
	if !ok {
		ad = a.admit(&ctx.Request.Header, ctx.Request.URI().PathOriginal())
	}
	setRequestID(ctx, ad.id)
	tooLarge := errors.Is(err, fasthttp.ErrBodyTooLarge)
	switch {
	case tooLarge && ad.refusal.status != 0:
		a.forbid(ctx, ad.refusal)
	case tooLarge && ad.auth != authOK:
		a.unauthorized(ctx, ad.auth, ad.path)
	default:
		a.errorHandler(ctx, err)
	}
	a.reqs.count([]byte(ad.path), ctx.Response.StatusCode())
}

// Bounds on reading a request.
const (
	// headerTimeout bounds reading a request's headers: short, so that
	// slow clients cannot hold connections long.
	headerTimeout = 10 * time.Second
	// bodyTimeout bounds reading its body, from the end of its headers.
	bodyTimeout = 30 * time.Second
)

// headerReceived decides a request's admission, once, as soon as its
// headers are in and before any body is read: the guard's verdict and the
// token's. That decides how much body vmd will read: none (one byte, so
// that any more is refused at once) for a request the guard refuses, for
// one without the token, and for /health, which takes no body and no
// token; the configured maximum otherwise. A stranger cannot make vmd
// buffer a megabyte to be told 401. The decision is kept for serve and
// serveError (see admissions).
func (a *API) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	path, _, _ := bytes.Cut(h.RequestURI(), []byte("?"))
	ad := a.admit(h, path)
	a.admissions.put(h, ad)
	conf := fasthttp.RequestConfig{ReadTimeout: bodyTimeout}
	if ad.refusal.status != 0 || ad.auth != authOK || exempt(path) {
		conf.MaxRequestBodySize = unauthBody
	}
	return conf
}

// admission is what a request's headers earn it.
type admission struct {
	id      string // its request id
	path    string // as sent, for the metrics
	refusal refusal
	auth    authResult
}

// refusal is the guard's answer; status 0 lets the request through.
type refusal struct {
	status        int
	code, message string
}

// admit checks a request's headers: the guard, then the token.
func (a *API) admit(h *fasthttp.RequestHeader, path []byte) admission {
	ad := admission{id: clientRequestID(h), path: string(path)}
	bodyLen := h.ContentLength()
	if bodyLen == -2 { // neither Content-Length nor chunked: no body
		bodyLen = 0
	}
	ad.refusal = a.refusal(h, path, bodyLen)
	ad.auth = a.authorize(h, path)
	return ad
}

// refusal is the guard's verdict on a request, of which bodyLen bytes of
// body are known (negative: not known yet).
func (a *API) refusal(h *fasthttp.RequestHeader, path []byte, bodyLen int) refusal {
	if exempt(path) {
		return refusal{}
	}
	status, code, msg := a.guard.check(h.Method(), h.Host(), h.Peek(fasthttp.HeaderOrigin), h.ContentType(), bodyLen)
	return refusal{status, code, msg}
}

// forbid answers the guard's refusal.
func (a *API) forbid(ctx *fasthttp.RequestCtx, r refusal) {
	writeJSON(ctx, r.status, errorBody{Error: r.code, Message: r.message})
	a.reqLog(ctx).Debug("refused", "error", r.code, "method", truncate(string(ctx.Method()), 20),
		"host", truncate(string(ctx.Host()), 100), "origin", truncate(string(ctx.Request.Header.Peek(fasthttp.HeaderOrigin)), 100),
		"remote", ctx.RemoteIP().String())
}

// authorize checks the token, unless the route is exempt.
func (a *API) authorize(h *fasthttp.RequestHeader, path []byte) authResult {
	if exempt(path) {
		return authOK
	}
	return a.auth.check(h)
}

// admissions carries headerReceived's decisions to serve and serveError, by
// the address of the request's header: fasthttp hands HeaderReceived the
// header alone, and keeps its address through a reset (a chunked body past
// the limit resets the request, headers and all, before serveError sees
// it). serve and serveError take a request's entry out; one whose
// connection closed mid-body, which fasthttp answers with neither, stays
// until its request context (pooled) serves again: at most one per
// context.
type admissions struct {
	mu sync.Mutex
	m  map[*fasthttp.RequestHeader]admission
}

func (s *admissions) put(h *fasthttp.RequestHeader, ad admission) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[*fasthttp.RequestHeader]admission{}
	}
	s.m[h] = ad
}

func (s *admissions) take(h *fasthttp.RequestHeader) (admission, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ad, ok := s.m[h]
	if ok {
		delete(s.m, h)
	}
	return ad, ok
}
