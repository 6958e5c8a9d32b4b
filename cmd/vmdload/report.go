package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// Report is what a run found. Violations lists every expectation that did
// not hold; the run passes when it is empty.
type Report struct {
	Config   Config        `json:"config"`
	Started  time.Time     `json:"started"`
	Duration Duration      `json:"durationMs"`
	Root     bool          `json:"root"`
	Load     *LoadReport   `json:"load,omitempty"`
	Health   *LoadReport   `json:"health,omitempty"`
	Faults   []FaultResult `json:"faults,omitempty"`
	Stops    []StopResult  `json:"stops,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
	// Violations holds the first maxViolations; Dropped counts the rest.
	Violations []string `json:"violations"`
	Dropped    int      `json:"violationsNotListed,omitempty"`

	mu sync.Mutex
}

// LoadReport is a load phase: vegeta's figures for the commands (and for
// /health in the health phase), the answers' statuses, and vmd's usage.
type LoadReport struct {
	Commands *vegeta.Metrics            `json:"commands"`
	Kinds    map[string]*vegeta.Metrics `json:"kinds,omitempty"`
	Health   *vegeta.Metrics            `json:"health,omitempty"`
	// Start and End are settled readings; Quarters settled readings after
	// each quarter but the last (a leak climbs through them, a plateau
	// does not); Peak the largest seen between.
	Start, End, Peak Usage
	Quarters         []Usage `json:"quarters,omitempty"`
	// MaxZombies is the most zombies seen below vmd after an answer.
	MaxZombies int `json:"maxZombies"`
	// Retries are the mix's replays and hung-up clients (see retries).
	Retries Retries `json:"retries"`
	// StoreBytes is the command store's size after the phase (-1: not
	// served), warm-up and retries included.
	StoreBytes int64 `json:"storeBytes"`
}

// Retries counts the mix's second submits of one Idempotency-Key: replays
// of an answered command, and clients that hung up and sent it again;
// with the commands that ran twice and the answers lost (both must be 0).
type Retries struct {
	Replayed   int `json:"replayed"`
	HungUp     int `json:"hungUp"`
	Duplicates int `json:"duplicateRuns"`
	Lost       int `json:"lostAnswers"`
}

// Usage is vmd's usage with its goroutines (-1: not served).
type Usage struct {
	vmdtest.Usage
	Goroutines int `json:"goroutines"`
}

// FaultResult is one fault case: ok, FAILED or "not run", and why.
type FaultResult struct {
	Fault  string   `json:"fault"`
	Result string   `json:"result"`
	Why    string   `json:"why,omitempty"`
	Errors []string `json:"errors,omitempty"`
	Took   Duration `json:"tookMs"`
	// RSSKiB is the fault vmd's resident memory after the case (not
	// settled): where memory is kept, it shows which case keeps it.
	RSSKiB int `json:"rssKiB,omitempty"`
}

// StopResult is how a vmd ended: SIGTERM must make it exit 0 in Docker's
// 10 s.
type StopResult struct {
	VMD      string   `json:"vmd"`
	ExitCode int      `json:"exitCode"`
	Took     Duration `json:"tookMs"`
}

const maxViolations = 100

func (r *Report) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.Violations) >= maxViolations {
		r.Dropped++
		return
	}
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

func (r *Report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Failed reports whether any expectation was violated.
func (r *Report) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.Violations) > 0
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person.
func (r *Report) WriteText(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "vmdload: %s, fake CLI %s; seed %d, root %v; %v in all\n", c.VMD, c.Fake, c.Seed, r.Root, r.Duration)
	if l := r.Load; l != nil {
		fmt.Fprintf(w, "\n== load: commands one at a time (timeoutMs=%d for the timeout kind), latencies from vegeta\n", c.Timeout.Milliseconds())
		t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(t, "kind\tstatuses\tcount\tp50\tp99\tmax")
		kinds := make([]string, 0, len(l.Kinds))
		for k := range l.Kinds {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			metricsRow(t, k, l.Kinds[k])
		}
		metricsRow(t, "all", l.Commands)
		t.Flush()
		fmt.Fprintf(w, "throughput: %.1f commands/s in requests (%.1f/s with the runner's checks between them)\n",
			float64(l.Commands.Requests)/l.Commands.Latencies.Total.Seconds(), l.Commands.Rate)
		if l.StoreBytes >= 0 {
			fmt.Fprintf(w, "command store after the phase: %d KiB\n", l.StoreBytes>>10)
		}
		writeUsage(w, l)
	}
	if h := r.Health; h != nil {
		fmt.Fprintf(w, "\n== /health under load: %d clients without pause while commands ran\n", c.HealthClients)
		t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(t, "what\tstatuses\tcount\tp50\tp99\tmax")
		metricsRow(t, "GET /health", h.Health)
		metricsRow(t, "POST /command", h.Commands)
		t.Flush()
		fmt.Fprintf(w, "/health: %.0f answers/s\n", h.Health.Rate)
		writeUsage(w, h)
	}
	r.writeFaults(w)
	r.writeEnd(w)
}

func metricsRow(w io.Writer, name string, m *vegeta.Metrics) {
	if m == nil {
		return
	}
	fmt.Fprintf(w, "%s\t%s\t%d\t%v\t%v\t%v\n", name, statuses(m.StatusCodes), m.Requests,
		Duration(m.Latencies.P50), Duration(m.Latencies.P99), Duration(m.Latencies.Max))
}

func writeUsage(w io.Writer, l *LoadReport) {
	u := func(x Usage) string {
		return fmt.Sprintf("%d KiB, %d fds, %d threads, %d goroutines", x.RSSKiB, x.FDs, x.Threads, x.Goroutines)
	}
	rt := l.Retries
	fmt.Fprintf(w, "same Idempotency-Key again: %d replays, %d clients hung up and retried; %d duplicate runs, %d answers lost\n",
		rt.Replayed, rt.HungUp, rt.Duplicates, rt.Lost)
	if !procOK {
		fmt.Fprintf(w, "vmd usage: not read (no /proc here)\n")
		return
	}
	fmt.Fprintf(w, "vmd settled: start %s; end %s; peak %d KiB, %d fds\n", u(l.Start), u(l.End), l.Peak.RSSKiB, l.Peak.FDs)
	var q []string
	for _, x := range l.Quarters {
		q = append(q, strconv.Itoa(x.RSSKiB)+" KiB")
	}
	if len(q) > 0 {
		fmt.Fprintf(w, "RSS settled at each quarter: %s\n", strings.Join(q, ", "))
	}
	fmt.Fprintf(w, "zombies below vmd after an answer: at most %d\n", l.MaxZombies)
}

func (r *Report) writeFaults(w io.Writer) {
	if len(r.Faults) == 0 {
		return
	}
	fmt.Fprintf(w, "\n== faults (each followed by a command that must succeed)\n")
	for _, f := range r.Faults {
		if f.Result == "not run" {
			fmt.Fprintf(w, "%-8s %s\n", f.Result, f.Fault)
		} else {
			fmt.Fprintf(w, "%-8s %s (%v, vmd RSS after %d KiB)\n", f.Result, f.Fault, f.Took, f.RSSKiB)
		}
		if f.Why != "" {
			fmt.Fprintf(w, "         %s\n", f.Why)
		}
		for _, e := range f.Errors {
			fmt.Fprintf(w, "         - %s\n", oneLine(e, 300))
		}
	}
}

func (r *Report) writeEnd(w io.Writer) {
	for _, s := range r.Stops {
		fmt.Fprintf(w, "\nSIGTERM: %s vmd exited %d in %v", s.VMD, s.ExitCode, s.Took)
	}
	fmt.Fprintln(w)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(r.Violations) == 0 {
		fmt.Fprintf(w, "\nPASS: every expectation held\n")
		return
	}
	fmt.Fprintf(w, "\nFAIL: %d expectations violated\n", len(r.Violations)+r.Dropped)
	for _, v := range r.Violations {
		fmt.Fprintf(w, "- %s\n", oneLine(v, 400))
	}
	if r.Dropped > 0 {
		fmt.Fprintf(w, "- ... and %d more\n", r.Dropped)
	}
}

func statuses(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func oneLine(s string, n int) string { return clip(strings.Join(strings.Fields(s), " "), n) }

// Duration is a time.Duration written to JSON as milliseconds.
type Duration time.Duration

// MarshalJSON writes d as a number of milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', 3, 64), nil
}

func (d Duration) String() string {
	x := time.Duration(d)
	switch {
	case x >= time.Second:
		return strconv.FormatFloat(x.Seconds(), 'f', 2, 64) + "s"
	case x >= time.Millisecond:
		return strconv.FormatFloat(float64(x)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(float64(x)/float64(time.Microsecond), 'f', 1, 64) + "µs"
}
