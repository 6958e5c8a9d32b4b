package httpapi

import (
	"strconv"
	"strings"
	"sync"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/internal/metric"
)

// familyRequests counts the answered requests, by route and status.
const familyRequests = "vmd_http_requests_total"

// requestMetrics counts the answers the API gives.
type requestMetrics struct {
	reg *metric.Registry
	mu  sync.Mutex
	by  map[routeCode]*vm.Counter
}

// routeCode is a series of vmd_http_requests_total.
type routeCode struct {
	route string
	code  int
}

func newRequestMetrics(reg *metric.Registry) *requestMetrics {
	reg.Help(familyRequests, "HTTP requests answered, by route (health, command, commands, status, images, ready, metrics, openapi, other) and status code.")
	return &requestMetrics{reg: reg, by: map[routeCode]*vm.Counter{}}
}

// count counts an answered request.
func (m *requestMetrics) count(path []byte, status int) {
	k := routeCode{routeOf(path), status}
	m.mu.Lock()
	c := m.by[k]
	if c == nil {
		c = m.reg.Counter(familyRequests, "code", strconv.Itoa(status), "handler", k.route)
		m.by[k] = c
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

// serveMetrics writes every registered metric, then the Go runtime's and
// the process's own.
func (a *API) serveMetrics(ctx *fasthttp.RequestCtx) {
	a.d.Metrics.Write(ctx)
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
}
