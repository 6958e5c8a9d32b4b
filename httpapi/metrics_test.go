package httpapi_test

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// scrape fetches /metrics and parses it as Prometheus does.
func (s *server) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, _ := s.scrapeText(t)
	return mfs
}

// scrapeText is scrape with the text itself.
func (s *server) scrapeText(t *testing.T) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	got := s.do(t, "GET", "/metrics", "")
	if got.status != 200 || got.header["Content-Type"] != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("GET /metrics = %d %q", got.status, got.header["Content-Type"])
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(got.body))
	if err != nil {
		t.Fatalf("GET /metrics: %v\n%s", err, got.body)
	}
	return mfs, got.body
}

// value is the value of the series of a family with these labels (name,
// value pairs), or NaN if there is none. For a histogram, its count.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return math.NaN()
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return math.NaN()
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	mfs := s.scrape(t)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "vmd_cost_usd_total"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	for _, o := range []string{"ok", "agent_error", "error", "timeout", "cancelled", "drained", "stalled", "start_failed",
		"session_not_found", "busy", "shutting_down", "bad_request", "insufficient_storage", "internal_error",
		"idempotency_key_reused", "queue_full", "store_unavailable", "spend_limit_reached"} {
		if v := value(mfs, "vmd_commands_total", "outcome", o); v != 0 {
			t.Errorf("vmd_commands_total{outcome=%q} at start = %v; want 0", o, v)
		}
	}

	for _, tt := range []struct {
		body   string
		status int
	}{
		{`{"text":"say hi"}`, 200},
		{`{"text":"image a.png\nimage b.png\nsay ok"}`, 200},
		{`{"text":"exit 3"}`, 500},
		{`{"text":"sleep 1h","timeoutMs":500}`, 408},
		{`{"text":""}`, 400},
	} {
		if got := s.do(t, "POST", "/command", tt.body); got.status != tt.status {
			t.Fatalf("POST /command %s = %d %q; want %d", tt.body, got.status, got.body, tt.status)
		}
	}
	// One command while another runs: busy, with the gauge up.
	first := make(chan int, 1)
	go func() {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.Header.SetMethod("POST")
		req.SetRequestURI("http://localhost/command")
		req.SetBodyString(`{"text":"sleep 2s"}`)
		req.Header.SetContentType("application/json")
		s.Client.Do(req, resp)
		first <- resp.StatusCode()
	}()
	vmdtest.Eventually(t, "the command to run", s.Commands.Busy)
	if v := value(s.scrape(t), "vmd_command_busy"); v != 1 {
		t.Errorf("vmd_command_busy during a command = %v; want 1", v)
	}
	if got := s.do(t, "POST", "/command", `{"text":"say second"}`); got.status != 409 {
		t.Errorf("second command = %d; want 409", got.status)
	}
	if status := <-first; status != 200 {
		t.Errorf("first command = %d; want 200", status)
	}

	mfs = s.scrape(t)
	for outcome, want := range map[string]float64{"ok": 3, "error": 1, "timeout": 1, "bad_request": 1, "busy": 1, "drained": 0} {
		if v := value(mfs, "vmd_commands_total", "outcome", outcome); v != want {
			t.Errorf("vmd_commands_total{outcome=%q} = %v; want %v", outcome, v, want)
		}
	}
	for outcome, want := range map[string]float64{"ok": 3, "error": 1, "timeout": 1} {
		if v := value(mfs, "vmd_command_duration_seconds", "outcome", outcome); v != want {
			t.Errorf("vmd_command_duration_seconds{outcome=%q} count = %v; want %v", outcome, v, want)
		}
	}
	for name, want := range map[string]float64{"vmd_command_busy": 0, "vmd_images_written_total": 2} {
		if v := value(mfs, name); v != want {
			t.Errorf("%s = %v; want %v", name, v, want)
		}
	}
	if v := value(mfs, "vmd_http_requests_total", "handler", "command", "code", "200"); v != 3 {
		t.Errorf(`vmd_http_requests_total{handler="command",code="200"} = %v; want 3`, v)
	}
	if v := value(mfs, "vmd_http_requests_total", "handler", "metrics", "code", "200"); v < 2 {
		t.Errorf(`vmd_http_requests_total{handler="metrics",code="200"} = %v; want at least 2`, v)
	}

	// Prometheus' linter finds nothing to say of vmd's families, HELP text
	// included. (The library's go_* and process_* families have bare HELP
	// lines and names of their own making: not vmd's to lint.)
	_, text := s.scrapeText(t)
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "vmd_") {
			t.Errorf("metrics lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// The supervisor's counters: orphans reaped, strays killed. Not parallel:
// the stack reaps every child of the test process, as vmd does.
func TestProcessMetrics(t *testing.T) {
	s := serve(t, setup{reap: true})
	if got := s.do(t, "POST", "/command", `{"text":"orphans 3\nsleep 200ms\nescape\nsay ok"}`); got.status != 200 {
		t.Fatalf("command = %d %q", got.status, got.body)
	}
	// At least 4 reaped (3 orphans and the escaped) and 1 stray killed.
	vmdtest.Eventually(t, "the reaped and killed counts", func() bool {
		mfs := s.scrape(t)
		return value(mfs, "vmd_zombies_reaped_total") >= 4 && value(mfs, "vmd_stray_processes_killed_total") >= 1
	})
}

func TestStartFailedMetric(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{bin: "/no/such/claude"})
	s.do(t, "POST", "/command", `{"text":"hi"}`)
	if v := value(s.scrape(t), "vmd_commands_total", "outcome", "start_failed"); v != 1 {
		t.Errorf(`vmd_commands_total{outcome="start_failed"} = %v; want 1`, v)
	}
}

// What the CLI reports commands cost, and the tokens they used.
func TestUsageMetrics(t *testing.T) {
	t.Parallel()
	s := serve(t, setup{})
	for range 2 { // the fake reports $0.0123, 10 input and 5 output tokens a command
		if got := s.do(t, "POST", "/command", `{"text":"say hi"}`); got.status != 200 {
			t.Fatalf("command = %d %q", got.status, got.body)
		}
	}
	mfs := s.scrape(t)
	if v := value(mfs, "vmd_cost_usd_total"); math.Abs(v-0.0246) > 1e-9 {
		t.Errorf("vmd_cost_usd_total = %v; want 0.0246", v)
	}
	for kind, want := range map[string]float64{"input": 20, "output": 10, "cache_creation": 0, "cache_read": 0} {
		if v := value(mfs, "vmd_tokens_total", "kind", kind); v != want {
			t.Errorf("vmd_tokens_total{kind=%q} = %v; want %v", kind, v, want)
		}
	}
}
