package httpapi

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// newServer makes the one fasthttp server. A relay holds a handful of
// connections; a flood of idle ones is held lean, each giving its buffers
// back between requests (ReduceMemoryUsage), so that it cannot make vmd
// hold 8 KiB per connection. That costs a read per request, which vmd's
// per-command work (a CLI of a second or more) never notices.
func (a *API) newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:        a.serve,          // request id, admission, then Handler: see middleware.go
		ErrorHandler:   a.serveError,     // the same, then errorHandler
		HeaderReceived: a.headerReceived, // the admission, and how much body to read
		// The headers must come within headerTimeout; the body then has
		// bodyTimeout (see headerReceived).
		ReadTimeout:        headerTimeout,
		IdleTimeout:        idleTimeout,
		WriteTimeout:       writeTimeout,
		MaxRequestBodySize: a.opts.MaxRequestBody,
		// Twice the listener's cap: fasthttp answers a plain-text 503 past
		// its Concurrency, which the listener's cap, reached first, never
		// lets happen (netguard.Listener.MaxConns says why twice).
		Concurrency:           2 * a.opts.MaxConns,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		ReduceMemoryUsage:     true,
		// fasthttp logs what clients get wrong (bodies too large, broken
		// connections): debug material, answered in JSON anyway.
		Logger: a.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
}

// isClosed reports whether an Accept error means the listener was closed,
// as fasthttp judges it.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "use of closed network connection")
}
