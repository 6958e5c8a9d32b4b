// Package httpapi is vmd's HTTP API: /health, /command, /commands,
// /status, /images/, /ready, /metrics and /openapi.json, its OpenAPI
// document. It speaks HTTP only: routing, auth, request parsing, JSON and
// SSE encoding. It asks the commands service to run commands (whose
// answers that service makes) and the images store for files, serves the
// metrics and readiness checks the parts registered, and starts, waits for
// and touches nothing itself.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/disk"
	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/internal/metric"
	"github.com/vmd-dev/vmd/internal/ready"
)

// storeCtx is the context of what a request asks of the layers below (a
// store lookup, a submit, the readiness probes), never the request's own
// *fasthttp.RequestCtx: fasthttp recycles that once the handler returns,
// while database/sql, given it, reads it from a goroutine of its own for
// as long as the query's rows live (the race detector caught that read
// against the recycling). The lookups are bounded by the store's busy
// timeout and the probes by their own; an event stream's pages are read
// after its handler has returned.
var storeCtx = context.Background()

const (
	// idleTimeout closes a keep-alive connection left unused this long.
	idleTimeout = time.Minute
	// writeTimeout bounds writing a response once the handler has returned
	// (fasthttp starts it then), so it need not cover the command itself.
	writeTimeout = 30 * time.Second
	// shutdownGrace is how long the last responses get to go out once no
	// command runs.
	shutdownGrace = time.Second
	// defaultKeepAlive is how often an idle event stream gets a comment
	// line, well inside the idle timeouts of common proxies (60 s).
	defaultKeepAlive = 15 * time.Second
	// defaultMaxConns bounds concurrent connections when Options.MaxConns
	// does not: main sets it from the listener's own cap (netguard).
	defaultMaxConns = 16384
)

// Options are the API's settings.
type Options struct {
	// MaxRequestBody is the largest body accepted, in bytes.
	MaxRequestBody int
	// Version is vmd's, for /status.
	Version string
	// KeepAlive is how often an idle event stream gets a comment line;
	// zero is 15 s.
	KeepAlive time.Duration
	// APIToken, when set, is the bearer token every route but /health
	// requires (see auth.go).
	APIToken string
	// AllowedHosts are Host headers accepted besides loopback ones when
	// APIToken is empty; AllowedOrigins the Origin headers accepted. "*"
	// allows any. See guard.go.
	AllowedHosts, AllowedOrigins []string
	// MaxConns is the most connections the listener lets in at once
	// (netguard.Listener.MaxConns); zero is 16384.
	MaxConns int
}

// Deps are what the API serves from.
type Deps struct {
	// Commands runs commands.
	Commands *commands.Service
	// Images serves /images/; nil is none.
	Images *images.Store
	// Metrics are served at /metrics; Prober's checks at /ready.
	Metrics *metric.Registry
	Prober  *ready.Prober
	// ClaudeVersion is the CLI's version once known, for /status; Disk the
	// disk guard's state, measured now (nil: no guard).
	ClaudeVersion func() string
	Disk          func() *disk.Status
}

// API serves vmd's endpoints.
type API struct {
	d    Deps
	cmds *commands.Service
	img  *images.Store
	log  hclog.Logger
	opts Options
	srv  *fasthttp.Server
	reqs *requestMetrics // see metrics.go

	started time.Time

	streamMu  sync.Mutex // guards nstreams and noStreams
	nstreams  int        // event streams on hijacked connections
	noStreams chan struct{}

	auth       authenticator // see auth.go
	refusals   refusalLog    // see auth.go
	guard      *guard        // see guard.go
	admissions admissions    // see middleware.go
}

// New builds the API.
func New(d Deps, log hclog.Logger, opts Options) *API {
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = defaultKeepAlive
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = defaultMaxConns
	}
	if d.Metrics == nil {
		d.Metrics = metric.New()
	}
	if d.Prober == nil {
		d.Prober = &ready.Prober{}
	}
	if d.ClaudeVersion == nil {
		d.ClaudeVersion = func() string { return "" }
	}
	a := &API{d: d, cmds: d.Commands, img: d.Images, log: log, opts: opts, started: time.Now(),
		auth:  newAuthenticator(opts.APIToken),
		guard: newGuard(opts.APIToken != "", opts.AllowedHosts, opts.AllowedOrigins),
		reqs:  newRequestMetrics(d.Metrics)}
	a.srv = a.newServer()
	return a
}

// Serve answers requests on ln until stopped is closed (no command runs,
// and none will: the commands service has drained), then closes the
// listener, so that new connections are refused at once, and lets the last
// responses go out within a grace. Commands asked for meanwhile get 503
// from the commands service; everything else still answers.
func (a *API) Serve(ln net.Listener, stopped <-chan struct{}) error {
	served := make(chan error, 1)
	go func() { served <- a.srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-stopped:
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Closing ln ends Serve; fasthttp's Shutdown counts a Serve still
	// returning as an open connection and looks again only 100 ms later,
	// so it is waited for first.
	ln.Close()
	if err := <-served; err != nil && !isClosed(err) {
		return err
	}
	err := a.srv.ShutdownWithContext(ctx)
	// Event streams live on hijacked connections fasthttp no longer
	// tracks; their command is over, their last event on its way.
	select {
	case <-a.streamsDone():
	case <-ctx.Done():
		a.log.Warn("event streams still open at exit")
	}
	if err != nil {
		a.log.Warn("connections still open at exit", "error", err)
	}
	return nil
}

// Handler routes a request. Routing looks at the path as sent, before any
// decoding or dot-segment cleaning, so that /images/..%2f.. is seen for what
// it is rather than cleaned into some other route. The server calls it
// through serve, which has admitted the request first.
func (a *API) Handler(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Request.URI().PathOriginal())
	switch {
	case path == "/health":
		if a.allow(ctx, "GET, HEAD", fasthttp.MethodGet, fasthttp.MethodHead) {
			// The hottest route (every probe), and always the same answer;
			// the access log line (debug) says it was asked.
			writeBody(ctx, fasthttp.StatusOK, healthBody)
		}
	case path == "/command":
		if a.allow(ctx, "POST, DELETE", fasthttp.MethodPost, fasthttp.MethodDelete) {
			if ctx.IsDelete() {
				a.cancel(ctx)
			} else {
				a.command(ctx)
			}
		}
	case path == "/commands":
		if a.allow(ctx, "GET, POST", fasthttp.MethodGet, fasthttp.MethodPost) {
			if ctx.IsPost() {
				a.submit(ctx)
			} else {
				a.list(ctx)
			}
		}
	case strings.HasPrefix(path, "/commands/"):
		a.commandRoute(ctx, path)
	case path == "/status":
		if a.allow(ctx, "GET, HEAD", fasthttp.MethodGet, fasthttp.MethodHead) {
			a.status(ctx)
		}
	case strings.HasPrefix(path, "/images/"):
		if a.allow(ctx, "GET, HEAD", fasthttp.MethodGet, fasthttp.MethodHead) {
			a.image(ctx, path[len("/images/"):])
		}
	case path == "/ready":
		if a.allow(ctx, "GET, HEAD", fasthttp.MethodGet, fasthttp.MethodHead) {
			a.ready(ctx)
		}
	case path == "/metrics":
		if a.allow(ctx, "GET, HEAD", fasthttp.MethodGet, fasthttp.MethodHead) {
			a.serveMetrics(ctx)
		}
	case path == "/openapi.json":
		if a.allow(ctx, "GET, HEAD", fasthttp.MethodGet, fasthttp.MethodHead) {
			a.serveOpenAPI(ctx)
		}
	default:
		writeJSON(ctx, fasthttp.StatusNotFound, errorBody{Error: "not_found",
			Message: fmt.Sprintf("No route for %s %s", ctx.Method(), truncate(path, 200))})
	}
}

// allow answers 405 with an Allow header unless the method is one of ok.
func (a *API) allow(ctx *fasthttp.RequestCtx, header string, ok ...string) bool {
	m := string(ctx.Method())
	for _, o := range ok {
		if m == o {
			return true
		}
	}
	ctx.Response.Header.Set(fasthttp.HeaderAllow, header)
	writeJSON(ctx, fasthttp.StatusMethodNotAllowed, errorBody{Error: "method_not_allowed",
		Message: fmt.Sprintf("Method %s is not allowed here; use %s", truncate(m, 20), header)})
	return false
}

// errorBody is the shape of every error without command output.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

// imageName decodes the part of the path after /images/ and accepts it only
// if it names a file directly inside the images directory.
func imageName(raw string) (string, bool) {
	name, err := url.PathUnescape(raw)
	return name, err == nil && images.ValidName(name)
}

func (a *API) image(ctx *fasthttp.RequestCtx, raw string) {
	name, ok := imageName(raw)
	if !ok {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: "bad_request", Message: "Invalid image name"})
		return
	}
	f, err := a.img.OpenFile(name)
	switch {
	case errors.Is(err, images.ErrNotFound):
		writeJSON(ctx, fasthttp.StatusNotFound, errorBody{Error: "not_found", Message: "No image named " + truncate(name, 200)})
		return
	case err != nil:
		a.reqLog(ctx).Error("cannot open image", "name", name, "error", err)
		writeJSON(ctx, fasthttp.StatusInternalServerError, errorBody{Error: "internal_error", Message: "Cannot read the image"})
		return
	}
	h := &ctx.Response.Header
	h.SetContentType(f.ContentType)
	// Served from vmd's origin: an SVG must not run script, nothing may be
	// sniffed into HTML.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	if ctx.IsHead() {
		h.SetContentLength(int(f.Size))
		f.Close()
		return
	}
	ctx.SetBodyStream(f, int(f.Size)) // fasthttp closes f once sent
}

// errorHandler answers, in JSON, the requests fasthttp rejects before any
// handler sees them.
func (a *API) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeJSON(ctx, fasthttp.StatusRequestEntityTooLarge, errorBody{Error: "payload_too_large",
			Message: fmt.Sprintf("Request body exceeds %d bytes", a.opts.MaxRequestBody)})
	case errors.As(err, &small):
		writeJSON(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, errorBody{Error: "headers_too_large",
			Message: "Request headers are too large"})
	case errors.As(err, &netErr) && netErr.Timeout():
		writeJSON(ctx, fasthttp.StatusRequestTimeout, errorBody{Error: "request_timeout",
			Message: "The request was not received in time"})
	default:
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: "bad_request", Message: "Malformed HTTP request"})
	}
}

// healthBody is /health's answer, as writeJSON would write it.
var healthBody = []byte(`{"status":"ok"}` + "\n")

// writeJSON encodes v straight into the response body: an answer of several
// MiB is not copied again on its way out.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	ctx.Response.ResetBody()
	enc := json.NewEncoder(ctx)
	enc.SetEscapeHTML(false) // answers are full of code: keep < > & readable
	if err := enc.Encode(v); err != nil {
		status = fasthttp.StatusInternalServerError
		ctx.Response.SetBodyString(`{"error":"internal_error","message":"cannot encode the response"}` + "\n")
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
}

// truncate keeps echoed client input short in messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// optional is s, or nil (JSON null) when empty.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
