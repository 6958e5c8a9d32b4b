package httpapi

import (
	"errors"
	"time"

	"github.com/valyala/fasthttp"
)

// serve is the server's handler: every request passes here. It gives the
// request its id, then checks the token before anything else, so that
// without it a caller learns nothing, not even which routes exist; only
// /health is exempt. Then it routes, and counts the answer.
func (a *API) serve(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	setRequestID(ctx)
	path := ctx.Request.URI().PathOriginal()
	if why := a.authorize(ctx, path); why != authOK {
		a.unauthorized(ctx, why)
	} else {
		a.Handler(ctx)
	}
	a.metrics.request(path, ctx.Response.StatusCode())
	if a.log.IsDebug() {
		a.reqLog(ctx).Debug("request", "method", truncate(string(ctx.Method()), 20), "path", truncate(string(path), 200),
			"status", ctx.Response.StatusCode(), "duration", time.Since(start))
	}
}

// serveError answers the requests fasthttp rejects before serve sees them,
// with an id like any other. A body too large for a request without the
// token (see headerReceived) is answered 401, like the rest.
func (a *API) serveError(ctx *fasthttp.RequestCtx, err error) {
	setRequestID(ctx)
	path := ctx.Request.URI().PathOriginal()
	if why := a.authorize(ctx, path); why != authOK && errors.Is(err, fasthttp.ErrBodyTooLarge) {
		a.unauthorized(ctx, why)
	} else {
		a.errorHandler(ctx, err)
	}
	a.metrics.request(path, ctx.Response.StatusCode())
}

// authorize checks the token, unless the route is exempt.
func (a *API) authorize(ctx *fasthttp.RequestCtx, path []byte) authResult {
	if exempt(path) {
		return authOK
	}
	return a.auth.check(&ctx.Request.Header)
}
