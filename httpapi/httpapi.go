// Package httpapi is vmd's HTTP API: /health, /command, /status, /images/,
// /ready, /metrics and /openapi.json, its OpenAPI document. It asks the
// supervisor to run commands and the images store for files; it starts,
// waits for and touches nothing itself.
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

	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/supervisor"
)

const (
	// readTimeout bounds reading one request, body included.
	readTimeout = 30 * time.Second
	// idleTimeout closes a keep-alive connection left unused this long.
	idleTimeout = time.Minute
	// writeTimeout bounds writing a response once the handler has returned
	// (fasthttp starts it then), so it need not cover the command itself.
	writeTimeout = 30 * time.Second
	// shutdownGrace is the least time the last responses get to go out
	// after a drain.
	shutdownGrace = time.Second
	// messageTail is how much of stderr (or stdout) an error message holds.
	messageTail = 4 << 10
	// defaultKeepAlive is how often an idle event stream gets a comment
	// line, well inside the idle timeouts of common proxies (60 s).
	defaultKeepAlive = 15 * time.Second
	// maxConns bounds concurrent connections. Past it fasthttp refuses
	// connections with a plain-text 503 we cannot shape, /health included,
	// so it sits well above what idle or slow clients can hold open within
	// the read and idle timeouts; each idle connection costs a few KiB.
	maxConns = 16384
)

// Options are the API's settings.
type Options struct {
	// MaxRequestBody is the largest body accepted, in bytes.
	MaxRequestBody int
	// CommandTimeout is reported in timeout messages.
	CommandTimeout time.Duration
	// DrainTimeout is reported in drain messages.
	DrainTimeout time.Duration
	// Version is vmd's, for /status.
	Version string
	// KeepAlive is how often an idle event stream gets a comment line;
	// zero is 15 s.
	KeepAlive time.Duration
	// APIToken, when set, is the bearer token every route but /health
	// requires (see auth.go).
	APIToken string
	// MCPConfig is the MCP servers file /ready checks, by absolute path;
	// empty is none.
	MCPConfig string
}

// API serves vmd's endpoints.
type API struct {
	sup  *supervisor.Supervisor
	img  *images.Store
	log  hclog.Logger
	opts Options
	srv  *fasthttp.Server

	started time.Time

	streamMu  sync.Mutex // guards nstreams and noStreams
	nstreams  int        // event streams on hijacked connections
	noStreams chan struct{}

	auth     authenticator // see auth.go
	refusals refusalLog    // see auth.go
	metrics  *metrics      // see metrics.go

	draining   chan struct{}
	drainOnce  sync.Once
	drainStart time.Time // set once, before draining is closed
	drainBusy  bool      // a command was running when the drain began
}

// New builds the API over a supervisor and an images store.
func New(sup *supervisor.Supervisor, img *images.Store, log hclog.Logger, opts Options) *API {
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = defaultKeepAlive
	}
	a := &API{sup: sup, img: img, log: log, opts: opts, draining: make(chan struct{}), started: time.Now(),
		auth: newAuthenticator(opts.APIToken), metrics: newMetrics(sup, img)}
	a.srv = &fasthttp.Server{
		Handler:               a.serve,      // request id, token, then Handler: see middleware.go
		ErrorHandler:          a.serveError, // request id, token, then errorHandler
		ReadTimeout:           readTimeout,
		IdleTimeout:           idleTimeout,
		WriteTimeout:          writeTimeout,
		MaxRequestBodySize:    opts.MaxRequestBody,
		Concurrency:           maxConns,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		ReduceMemoryUsage:     true,
		// fasthttp logs what clients get wrong (bodies too large, broken
		// connections): debug material, answered in JSON anyway.
		Logger: log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	if a.auth.on {
		a.srv.HeaderReceived = a.headerReceived
	}
	return a
}

// Serve answers requests on ln until the drain is over: after Drain, new
// commands get 503 while the one in flight may finish; once stopped is
// closed (the supervisor's slot is empty for good) the server closes,
// letting the last responses go out first.
func (a *API) Serve(ln net.Listener, stopped <-chan struct{}) error {
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-a.draining:
	}
	select {
	case err := <-errc:
		return err
	case <-stopped:
	}
	// The answer of a command in flight may be large and its client slow:
	// it gets until the drain budget is over plus a grace. Otherwise, and at
	// least, the grace: an idle vmd exits at once, whatever half-open
	// connections clients hold.
	deadline := time.Now().Add(shutdownGrace)
	if last := a.drainStart.Add(a.opts.DrainTimeout + shutdownGrace); a.drainBusy && last.After(deadline) {
		deadline = last
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := a.srv.ShutdownWithContext(ctx)
	// Shutdown closes nothing if fasthttp has not taken the listener yet (a
	// signal during start-up): closing it here ends Serve either way.
	ln.Close()
	// Event streams live on hijacked connections fasthttp no longer
	// tracks; their command is over, their last event on its way.
	select {
	case <-a.streamsDone():
	case <-ctx.Done():
		a.log.Warn("event streams still open at exit")
	}
	if serr := <-errc; serr != nil {
		return serr
	}
	if err != nil {
		a.log.Warn("connections still open at exit", "error", err)
	}
	return nil
}

// Drain makes the API refuse new commands with 503; the rest still answers.
func (a *API) Drain() {
	a.drainOnce.Do(func() {
		a.drainStart = time.Now()
		a.drainBusy = a.sup != nil && a.sup.Busy()
		close(a.draining)
	})
}

func (a *API) isDraining() bool {
	select {
	case <-a.draining:
		return true
	default:
		return false
	}
}

// Handler routes a request. Routing looks at the path as sent, before any
// decoding or dot-segment cleaning, so that /images/..%2f.. is seen for what
// it is rather than cleaned into some other route. The server calls it
// through serve, which has checked the token first.
func (a *API) Handler(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Request.URI().PathOriginal())
	switch {
	case path == "/health":
		if a.allow(ctx, "GET, HEAD", fasthttp.MethodGet, fasthttp.MethodHead) {
			a.reqLog(ctx).Debug("health")
			writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
		}
	case path == "/command":
		if a.allow(ctx, "POST, DELETE", fasthttp.MethodPost, fasthttp.MethodDelete) {
			if ctx.IsDelete() {
				a.cancel(ctx)
			} else {
				a.command(ctx)
			}
		}
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

func (a *API) command(ctx *fasthttp.RequestCtx) {
	log := a.reqLog(ctx)
	if a.isDraining() {
		a.metrics.commandRefused(outcomeShuttingDown)
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, errShuttingDown)
		return
	}
	req, err := ParseCommand(ctx.PostBody(), a.opts.CommandTimeout)
	if err != nil {
		a.metrics.commandRefused(outcomeBadRequest)
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: "bad_request", Message: err.Error()})
		return
	}
	log.Info("command received", "prompt_length", len(req.Text), "session_id", req.SessionID,
		"timeout", req.Timeout, "stream", wantsStream(ctx))
	sreq := supervisor.Request{Prompt: req.Text, SessionID: req.SessionID, Timeout: req.Timeout, Log: log}
	if wantsStream(ctx) {
		a.stream(ctx, req, sreq, log)
		return
	}
	run, err := a.sup.Start(sreq)
	if err != nil {
		status, body := a.refused(err)
		writeJSON(ctx, status, body)
		return
	}
	res := run.Wait()
	status, body := a.finish(req, res, log)
	writeJSON(ctx, status, body)
}

var (
	errShuttingDown = errorBody{Error: "shutting_down", Message: "vmd is shutting down"}
	errBusy         = errorBody{Error: "busy", Message: "A command is already in progress"}
)

// refused answers a command the supervisor would not take.
func (a *API) refused(err error) (int, errorBody) {
	switch {
	case errors.Is(err, supervisor.ErrBusy):
		a.metrics.commandRefused(outcomeBusy)
		return fasthttp.StatusConflict, errBusy
	case errors.Is(err, supervisor.ErrDraining):
		a.metrics.commandRefused(outcomeShuttingDown)
		return fasthttp.StatusServiceUnavailable, errShuttingDown
	}
	a.metrics.commandRefused(outcomeInternal)
	return fasthttp.StatusInternalServerError, errorBody{Error: "internal_error", Message: err.Error()}
}

// finish maps a result to its answer, counts it and logs failures.
func (a *API) finish(req CommandRequest, res *supervisor.Result, log hclog.Logger) (int, any) {
	status, body, outcome := a.answer(req, res)
	a.metrics.commandRan(outcome, res.Duration)
	if r := res.Report; r != nil {
		a.metrics.observeReport(r)
	}
	switch status {
	case fasthttp.StatusInternalServerError:
		log.Error("command failed", "status", status, "outcome", res.Outcome.String(), "pid", res.Pid,
			"exit_code", res.ExitCode, "stderr", string(tailOf(res.Stderr)))
	case fasthttp.StatusBadGateway:
		log.Warn("claude reported an error", "status", status, "pid", res.Pid, "message", res.Report.Text)
	}
	return status, body
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
