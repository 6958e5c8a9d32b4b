package httpapi

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/agent"
)

// The outcomes of POST /command, as counted by vmd_commands_total.
const (
	outcomeOK              = "ok"                   // 200
	outcomeAgentError      = "agent_error"          // 502: the CLI reported an error
	outcomeError           = "error"                // 500: the CLI exited non-zero or was killed, without a result
	outcomeTimeout         = "timeout"              // 408
	outcomeCancelled       = "cancelled"            // 499: DELETE /command, or the stream's client left
	outcomeDrained         = "drained"              // 503: stopped by the drain
	outcomeStartFailed     = "start_failed"         // 500: the CLI could not start
	outcomeSessionNotFound = "session_not_found"    // 404: a session the agent does not have
	outcomeStalled         = "stalled"              // 504: the CLI hung, killed by the stall watchdog
	outcomeBusy            = "busy"                 // 409: refused, another command runs
	outcomeShuttingDown    = "shutting_down"        // 503: refused, vmd is draining
	outcomeBadRequest      = "bad_request"          // 400: refused, bad body
	outcomeNoStorage       = "insufficient_storage" // 507: refused, a disk is low
	outcomeInternal        = "internal_error"
	outcomeKeyReused       = "idempotency_key_reused" // 422: refused, the key holds another body
)

// outcomes are created at start, so that every series exists from zero.
var outcomes = []string{outcomeOK, outcomeAgentError, outcomeError, outcomeTimeout, outcomeCancelled, outcomeDrained,
	outcomeStalled, outcomeStartFailed, outcomeSessionNotFound, outcomeBusy, outcomeShuttingDown, outcomeBadRequest, outcomeNoStorage,
	outcomeInternal, outcomeKeyReused}

// tokenKinds are the label values of vmd_tokens_total.
var tokenKinds = []string{"input", "output", "cache_creation", "cache_read"}

// durationBuckets, in seconds, span a trivial answer (100 ms) to the
// default command timeout (5 min) and past it.
var durationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300, 450, 600}

// metrics are the API's Prometheus metrics, in a set of their own, served
// in the text format with VictoriaMetrics' small library (no protobuf, no
// registry to initialise at start).
type metrics struct {
	set      *vm.Set
	commands map[string]*vm.Counter // by outcome, every one from the start
	cost     *vm.FloatCounter
	tokens   []*vm.Counter // by tokenKinds
	replayed *vm.Counter

	mu       sync.Mutex // guards requests
	requests map[routeCode]*vm.Counter
}

// routeCode is a series of vmd_http_requests_total.
type routeCode struct {
	route string
	code  int
}

func newMetrics(d Deps) *metrics {
	vm.ExposeMetadata(true) // TYPE lines, and HELP lines that help fills in
	m := &metrics{set: vm.NewSet(), commands: map[string]*vm.Counter{}, requests: map[routeCode]*vm.Counter{}}
	for _, o := range outcomes {
		m.commands[o] = m.set.NewCounter(series("vmd_commands_total", "outcome", o))
	}
	for _, k := range tokenKinds {
		m.tokens = append(m.tokens, m.set.NewCounter(series("vmd_tokens_total", "kind", k)))
	}
	m.cost = m.set.NewFloatCounter("vmd_cost_usd_total")
	m.replayed = m.set.NewCounter("vmd_commands_replayed_total")
	m.set.RegisterMetricsWriter(scraped{sup: d.Supervisor, img: d.Images, st: d.Store, hooks: d.Webhook, disk: d.Disk}.write)
	return m
}

// commandRefused counts a /command that did not run.
func (m *metrics) commandRefused(outcome string) {
	m.commands[outcome].Inc()
}

// commandRan counts a command that ran, and how long it took.
func (m *metrics) commandRan(outcome string, took time.Duration) {
	m.commands[outcome].Inc()
	m.set.GetOrCreatePrometheusHistogramExt(series("vmd_command_duration_seconds", "outcome", outcome), durationBuckets).
		Update(took.Seconds())
}

// observeUsage adds what one command cost and the tokens it used, by
// kind. A negative or non-finite value is dropped: counters only grow.
func (m *metrics) observeUsage(costUSD float64, inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens int) {
	if costUSD > 0 && !math.IsInf(costUSD, 0) {
		m.cost.Add(costUSD)
	}
	for i, n := range []int{inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens} {
		if n > 0 {
			m.tokens[i].Add(n)
		}
	}
}

// observeReport adds the cost and tokens of a command the agent reported on.
func (m *metrics) observeReport(r *agent.Report) {
	cost := 0.0
	if r.CostUSD != nil {
		cost = *r.CostUSD
	}
	m.observeUsage(cost, r.Tokens.Input, r.Tokens.Output, r.Tokens.CacheCreation, r.Tokens.CacheRead)
}

// counts are the commands counted so far, by outcome, for /status.
func (m *metrics) counts() map[string]int64 {
	out := make(map[string]int64, len(outcomes))
	for _, o := range outcomes {
		out[o] = int64(m.commands[o].Get())
	}
	return out
}

// request counts an answered request.
func (m *metrics) request(path []byte, status int) {
	k := routeCode{routeOf(path), status}
	m.mu.Lock()
	c := m.requests[k]
	if c == nil {
		c = m.set.NewCounter(series("vmd_http_requests_total", "code", strconv.Itoa(status), "handler", k.route))
		m.requests[k] = c
	}
	m.mu.Unlock()
	c.Inc()
}

// routeOf names a path's route for the handler label, from the few there
// are, so that the paths strangers try do not each make a series. Keep it
// in step with Handler.
func routeOf(path []byte) string {
	switch p := string(path); {
	case p == "/health":
		return "health"
	case p == "/command":
		return "command"
	case p == "/commands" || strings.HasPrefix(p, "/commands/"):
		return "commands"
	case p == "/status":
		return "status"
	case p == "/ready":
		return "ready"
	case p == "/metrics":
		return "metrics"
	case p == "/openapi.json":
		return "openapi"
	case strings.HasPrefix(p, "/images/"):
		return "images"
	}
	return "other"
}

// serveMetrics writes every metric in the Prometheus text format, which
// every Prometheus version scrapes: vmd's, then the Go runtime's and the
// process's own (go_*, process_*).
func (a *API) serveMetrics(ctx *fasthttp.RequestCtx) {
	var b bytes.Buffer
	a.metrics.set.WritePrometheus(&b)
	vm.WriteGoMetrics(&b)
	vm.WriteProcMetrics(&b)
	vm.WriteFDMetrics(&b) // process_open_fds, process_max_fds: see netguard
	for line := range bytes.Lines(b.Bytes()) {
		if fam, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
			if text := help[string(bytes.TrimSpace(fam))]; text != "" {
				line = []byte("# HELP " + string(bytes.TrimSpace(fam)) + " " + text + "\n")
			}
		}
		ctx.Write(line)
	}
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
}

// series names a series: the family and its labels (name, value pairs, in
// the order given: keep them sorted by name, as client_golang wrote them),
// values escaped as the text format wants.
func series(family string, labels ...string) string {
	var b strings.Builder
	b.WriteString(family)
	for i := 0; i+1 < len(labels); i += 2 {
		b.WriteByte("{,"[min(i, 1)])
		b.WriteString(labels[i] + `="` + labelEscaper.Replace(labels[i+1]) + `"`)
	}
	if len(labels) > 0 {
		b.WriteByte('}')
	}
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// help is the HELP text of each of vmd's families, declared once; the
// library writes HELP lines bare and serveMetrics fills them in.
var help = map[string]string{
	"vmd_commands_total":               "Requests to POST /command, by outcome: ok, agent_error, error, timeout, cancelled, drained, stalled, start_failed, session_not_found (the command ran), busy, shutting_down, bad_request, insufficient_storage, internal_error, idempotency_key_reused (it did not).",
	"vmd_command_duration_seconds":     "How long commands that ran took, from the request to the end of their cleanup, by outcome.",
	"vmd_http_requests_total":          "HTTP requests answered, by route (health, command, commands, status, images, ready, metrics, openapi, other) and status code.",
	"vmd_cost_usd_total":               "What commands cost, in US dollars, as the CLI reports it.",
	"vmd_tokens_total":                 "Tokens commands used, by kind: input, output, cache_creation, cache_read.",
	"vmd_commands_replayed_total":      "Submits whose Idempotency-Key found its command (running or ended) instead of starting one.",
	"vmd_zombies_reaped_total":         "Orphaned processes (not the CLI itself) vmd reaped, as PID 1 or child subreaper.",
	"vmd_stray_processes_killed_total": "Processes found still alive below vmd after a command, and killed.",
	"vmd_command_busy":                 "1 while a command runs, else 0.",
	"vmd_images_written_total":         "Images commands made, as listed in their answers.",
	"vmd_images_cleaned_total":         "Images deleted for being older than image_ttl.",
	"vmd_store_write_errors_total":     "Writes to the command store that failed (disk full, read-only, I/O error): those answers were given but not kept.",
	"vmd_store_size_bytes":             "The command store's size on disk: its file plus its write-ahead log.",
	"vmd_webhook_deliveries_total":     "Completion webhook attempts, by outcome: delivered, retried (failed, will retry), gone (410, never again), expired (given up after 24 h).",
	"vmd_disk_free_bytes":              "Free space left to vmd's user on each filesystem the disk guard watches, by filesystem (workspace, images, temp, or several joined by +) and path.",
	"vmd_disk_size_bytes":              "Size of each filesystem the disk guard watches.",
	"vmd_disk_min_free_bytes":          "min_free_disk: below this free space on any watched filesystem, new commands get 507 (0: the guard is off).",
}
