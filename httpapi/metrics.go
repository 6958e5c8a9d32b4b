package httpapi

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/supervisor"
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

// metrics are the API's Prometheus metrics, in a registry of their own.
type metrics struct {
	reg      *prometheus.Registry
	commands *prometheus.CounterVec
	duration *prometheus.HistogramVec
	requests *prometheus.CounterVec
	cost     prometheus.Counter
	tokens   *prometheus.CounterVec
	replayed prometheus.Counter
}

func newMetrics(d Deps) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmd_commands_total",
			Help: "Requests to POST /command, by outcome: ok, agent_error, error, timeout, cancelled, drained, start_failed, session_not_found (the command ran), busy, shutting_down, bad_request, insufficient_storage, internal_error (it did not).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vmd_command_duration_seconds",
			Help:    "How long commands that ran took, from the request to the end of their cleanup, by outcome.",
			Buckets: durationBuckets,
		}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmd_http_requests_total",
			Help: "HTTP requests answered, by route (health, command, status, images, ready, metrics, openapi, other) and status code.",
		}, []string{"handler", "code"}),
		cost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmd_cost_usd_total",
			Help: "What commands cost, in US dollars, as the CLI reports it.",
		}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmd_tokens_total",
			Help: "Tokens commands used, by kind: input, output, cache_creation, cache_read.",
		}, []string{"kind"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vmd_commands_replayed_total",
			Help: "Submits whose Idempotency-Key found its command (running or ended) instead of starting one.",
		}),
	}
	for _, o := range outcomes {
		m.commands.WithLabelValues(o)
	}
	for _, k := range tokenKinds {
		m.tokens.WithLabelValues(k)
	}
	m.reg.MustRegister(m.commands, m.duration, m.requests, m.cost, m.tokens, m.replayed,
		statsCollector{sup: d.Supervisor, img: d.Images}, storeCollector{st: d.Store, hooks: d.Webhook},
		diskCollector{disk: d.Disk},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// commandRefused counts a /command that did not run.
func (m *metrics) commandRefused(outcome string) {
	m.commands.WithLabelValues(outcome).Inc()
}

// commandRan counts a command that ran, and how long it took.
func (m *metrics) commandRan(outcome string, took time.Duration) {
	m.commands.WithLabelValues(outcome).Inc()
	m.duration.WithLabelValues(outcome).Observe(took.Seconds())
}

// observeUsage adds what one command cost and the tokens it used, by
// kind. A negative or non-finite value is dropped: counters only grow.
func (m *metrics) observeUsage(costUSD float64, inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens int) {
	if costUSD > 0 && !math.IsInf(costUSD, 0) {
		m.cost.Add(costUSD)
	}
	for i, n := range []int{inputTokens, outputTokens, cacheCreationTokens, cacheReadTokens} {
		if n > 0 {
			m.tokens.WithLabelValues(tokenKinds[i]).Add(float64(n))
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
		var v dto.Metric
		if m.commands.WithLabelValues(o).Write(&v) == nil {
			out[o] = int64(v.GetCounter().GetValue())
		}
	}
	return out
}

// request counts an answered request.
func (m *metrics) request(path []byte, status int) {
	m.requests.WithLabelValues(routeOf(path), strconv.Itoa(status)).Inc()
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
// every Prometheus version scrapes.
func (a *API) serveMetrics(ctx *fasthttp.RequestCtx) {
	mfs, err := a.metrics.reg.Gather()
	if err != nil {
		// Gather still returns what it could; say what it could not.
		a.reqLog(ctx).Error("cannot gather every metric", "error", err)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	enc := expfmt.NewEncoder(ctx, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			a.reqLog(ctx).Error("cannot encode metrics", "error", err)
			writeJSON(ctx, fasthttp.StatusInternalServerError, errorBody{Error: "internal_error", Message: "Cannot encode the metrics"})
			return
		}
	}
	ctx.SetContentType(string(format))
}

// statsCollector exposes the supervisor's and the images store's counters,
// read at each scrape, so that neither package knows about Prometheus.
type statsCollector struct {
	sup *supervisor.Supervisor
	img *images.Store
}

var (
	zombiesDesc = prometheus.NewDesc("vmd_zombies_reaped_total",
		"Orphaned processes (not the CLI itself) vmd reaped, as PID 1 or child subreaper.", nil, nil)
	straysDesc = prometheus.NewDesc("vmd_stray_processes_killed_total",
		"Processes found still alive below vmd after a command, and killed.", nil, nil)
	busyDesc = prometheus.NewDesc("vmd_command_busy",
		"1 while a command runs, else 0.", nil, nil)
	imagesWrittenDesc = prometheus.NewDesc("vmd_images_written_total",
		"Images commands made, as listed in their answers.", nil, nil)
	imagesCleanedDesc = prometheus.NewDesc("vmd_images_cleaned_total",
		"Images deleted for being older than image_ttl.", nil, nil)
)

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{zombiesDesc, straysDesc, busyDesc, imagesWrittenDesc, imagesCleanedDesc} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	var sup supervisor.Stats
	if c.sup != nil {
		sup = c.sup.Stats()
	}
	var img images.Stats
	if c.img != nil {
		img = c.img.Stats()
	}
	busy := 0.0
	if sup.Busy {
		busy = 1
	}
	ch <- prometheus.MustNewConstMetric(zombiesDesc, prometheus.CounterValue, float64(sup.ZombiesReaped))
	ch <- prometheus.MustNewConstMetric(straysDesc, prometheus.CounterValue, float64(sup.StraysKilled))
	ch <- prometheus.MustNewConstMetric(busyDesc, prometheus.GaugeValue, busy)
	ch <- prometheus.MustNewConstMetric(imagesWrittenDesc, prometheus.CounterValue, float64(img.Written))
	ch <- prometheus.MustNewConstMetric(imagesCleanedDesc, prometheus.CounterValue, float64(img.Cleaned))
}
