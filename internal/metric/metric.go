// Package metric is the one registry of a vmd's Prometheus metrics: each
// part registers its own families with their HELP text on the Registry it
// is given, and the HTTP layer serves what was registered, in the text
// format, with VictoriaMetrics' small library (no protobuf, no registry to
// initialise at start). Nothing here knows what the metrics mean.
package metric

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	vm "github.com/VictoriaMetrics/metrics"
)

// Registry holds a vmd's metrics. Its methods are safe for concurrent use;
// asking twice for one series returns the same one.
type Registry struct {
	set   *vm.Set
	mu    sync.Mutex
	help  map[string]string
	funcs []counterFunc // counters a part keeps itself, read at each scrape
}

// counterFunc is one series of a counter whose value a part keeps.
type counterFunc struct {
	family, series string
	read           func() uint64
}

// New makes an empty registry.
func New() *Registry {
	vm.ExposeMetadata(true) // TYPE lines, and HELP lines that Write fills in
	return &Registry{set: vm.NewSet(), help: map[string]string{}}
}

// Help declares a family's HELP text: once, where the family is owned.
func (r *Registry) Help(family, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.help[family] = text
}

// Counter is the counter of family with labels (name, value pairs, sorted
// by name).
func (r *Registry) Counter(family string, labels ...string) *vm.Counter {
	return r.set.GetOrCreateCounter(Series(family, labels...))
}

// FloatCounter is the float counter of family with labels.
func (r *Registry) FloatCounter(family string, labels ...string) *vm.FloatCounter {
	return r.set.GetOrCreateFloatCounter(Series(family, labels...))
}

// Gauge registers a gauge of family with labels whose value f gives at
// each scrape.
func (r *Registry) Gauge(family string, f func() float64, labels ...string) {
	r.set.GetOrCreateGauge(Series(family, labels...), f)
}

// CounterFunc registers a counter series of family with labels whose value
// read gives at each scrape: for a part that keeps its own running total
// (an atomic it also reports elsewhere).
func (r *Registry) CounterFunc(family string, read func() uint64, labels ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.funcs = append(r.funcs, counterFunc{family: family, series: Series(family, labels...), read: read})
}

// Histogram is the histogram of family with labels over buckets (upper
// bounds, in the family's unit).
func (r *Registry) Histogram(family string, buckets []float64, labels ...string) *vm.PrometheusHistogram {
	return r.set.GetOrCreatePrometheusHistogramExt(Series(family, labels...), buckets)
}

// Write writes every registered metric in the Prometheus text format,
// which every Prometheus version scrapes, then the Go runtime's and the
// process's own (go_*, process_*).
func (r *Registry) Write(w io.Writer) {
	var b bytes.Buffer
	r.set.WritePrometheus(&b)
	r.writeFuncs(&b)
	vm.WriteGoMetrics(&b)
	vm.WriteProcMetrics(&b)
	vm.WriteFDMetrics(&b) // process_open_fds, process_max_fds
	r.mu.Lock()
	defer r.mu.Unlock()
	for line := range bytes.Lines(b.Bytes()) {
		if fam, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
			name := string(bytes.TrimSpace(fam))
			if text := r.help[name]; text != "" {
				line = []byte("# HELP " + name + " " + text + "\n")
			}
		}
		w.Write(line)
	}
}

// writeFuncs writes the counters registered with CounterFunc, each family
// once with its metadata, its series in the order registered.
func (r *Registry) writeFuncs(b *bytes.Buffer) {
	r.mu.Lock()
	funcs := slices.Clone(r.funcs)
	r.mu.Unlock()
	slices.SortStableFunc(funcs, func(a, c counterFunc) int { return strings.Compare(a.family, c.family) })
	for i, f := range funcs {
		if i == 0 || funcs[i-1].family != f.family {
			fmt.Fprintf(b, "# HELP %s\n# TYPE %s counter\n", f.family, f.family)
		}
		fmt.Fprintf(b, "%s %d\n", f.series, f.read())
	}
}

// Value is the current value of a counter series, for status pages.
func (r *Registry) Value(family string, labels ...string) uint64 {
	return r.Counter(family, labels...).Get()
}

// Series names a series: the family and its labels (name, value pairs, in
// the order given: keep them sorted by name, as client_golang wrote them),
// values escaped as the text format wants.
func Series(family string, labels ...string) string {
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
