//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as tables for a person.
func (r *Report) WriteText(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "vmdload: %s, fake CLI %s; seed %d, root %v; %v in all\n", c.VMD, c.Fake, c.Seed, r.Root, fmtDur(time.Duration(r.Duration)))
	if m := r.Mixed; m != nil {
		fmt.Fprintf(w, "\n== mixed: %d commands (COMMAND_TIMEOUT_MS=%d) in %v wall, runner's checks included; %.1f commands/s in requests\n",
			m.Commands, time.Duration(c.Timeout).Milliseconds(), fmtDur(time.Duration(m.Wall)), m.PerSecond)
		t := table(w)
		fmt.Fprintln(t, "kind\tstatus\tcount\tp50\tp99\tmax")
		for _, k := range m.Kinds {
			fmt.Fprintf(t, "%s\t%d\t%d\t%v\t%v\t%v\n", k.Kind, k.Status, k.Latency.Count, k.Latency.P50, k.Latency.P99, k.Latency.Max)
		}
		fmt.Fprintf(t, "all\t%s\t%d\t%v\t%v\t%v\n", statuses(m.Statuses), m.Latency.Count, m.Latency.P50, m.Latency.P99, m.Latency.Max)
		fmt.Fprintf(t, "bare fork/exec of \"say\"\t-\t%d\t%v\t%v\t%v\n", m.Bare.Count, m.Bare.P50, m.Bare.P99, m.Bare.Max)
		t.Flush()
		fmt.Fprintf(w, "overhead: vmd \"say\" p50 %v vs bare fork/exec p50 %v: %+.2fms\n", m.Say.P50, m.Bare.P50,
			float64(m.Overhead)/float64(time.Millisecond))
		writeUsage(w, m.Start, m.End, &m.Peak, rssSlackKiB)
		if len(m.Quarters) > 0 {
			var q []string
			for _, u := range m.Quarters {
				q = append(q, fmt.Sprintf("%d KiB/%d fds/%d threads", u.RSSKiB, u.FDs, u.Threads))
			}
			fmt.Fprintf(w, "settled at each quarter: %s\n", strings.Join(q, ", "))
		}
		fmt.Fprintf(w, "after every answer: commands with processes left below vmd %d, most zombies at once %d; command temp dirs at the end %d (the spare)\n",
			m.Leftovers, m.MaxZombies, m.TempDirs)
	}
	if h := r.Health; h != nil {
		fmt.Fprintf(w, "\n== /health under load: %d clients without pause while %d commands ran (%s)\n", h.Clients, h.Commands, statuses(h.Statuses))
		t := table(w)
		fmt.Fprintln(t, "what\tcount\tp50\tp99\tmax\tfailures")
		fmt.Fprintf(t, "GET /health\t%d\t%v\t%v\t%v\t%d\n", h.Health.Count, h.Health.P50, h.Health.P99, h.Health.Max, h.HealthFailures)
		fmt.Fprintf(t, "POST /command\t%d\t%v\t%v\t%v\t-\n", h.CommandLatency.Count, h.CommandLatency.P50, h.CommandLatency.P99, h.CommandLatency.Max)
		t.Flush()
		writeUsage(w, h.Start, h.End, nil, rssSlackKiB)
	}
	if s := r.Storms; s != nil {
		fmt.Fprintf(w, "\n== storms: %d clients at once a round; 409s took p50 %v, p99 %v, max %v\n", s.Clients, s.Busy.P50, s.Busy.P99, s.Busy.Max)
		t := table(w)
		fmt.Fprintln(t, "round\tslot\tstatuses\tno answer")
		for i, rd := range s.Rounds {
			fmt.Fprintf(t, "%d\t%s\t%s\t%d\n", i, rd.Slot, statuses(rd.Statuses), rd.Errors)
		}
		t.Flush()
	}
	if len(r.Faults) > 0 {
		fmt.Fprintf(w, "\n== faults (each followed by a command that must succeed)\n")
		for _, f := range r.Faults {
			fmt.Fprintf(w, "%-7s %s (%v)\n", f.Result, f.Fault, fmtDur(time.Duration(f.Took)))
			if f.How != "" {
				fmt.Fprintf(w, "        how:    %s\n", f.How)
			}
			if f.Answer != "" {
				fmt.Fprintf(w, "        answer: %s\n", oneLine(f.Answer, 200))
			}
			if f.Log != "" {
				fmt.Fprintf(w, "        log:    %s\n", oneLine(f.Log, 200))
			}
			if f.After != "" {
				fmt.Fprintf(w, "        after:  %s\n", oneLine(f.After, 200))
			}
		}
		if u := r.FaultUsage; u != nil {
			writeUsage(w, u[0], u[1], nil, faultRSSSlackKiB)
		}
	}
	if len(r.Stops) > 0 {
		fmt.Fprintf(w, "\n== SIGTERM\n")
		for _, s := range r.Stops {
			fmt.Fprintf(w, "%s vmd: exit status %d in %v\n", s.VMD, s.ExitCode, fmtDur(time.Duration(s.Took)))
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\n== notes\n")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
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

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// writeUsage prints vmd's settled usage before and after a phase, and the
// peak between if known.
func writeUsage(w io.Writer, start, end usage, peak *usage, rssSlack int) {
	t := table(w)
	withPeak := peak != nil
	if !withPeak {
		peak = &usage{}
	}
	if withPeak {
		fmt.Fprintln(t, "vmd (settled)\tstart\tend\tpeak\tallowed growth")
	} else {
		fmt.Fprintln(t, "vmd (settled)\tstart\tend\tallowed growth")
	}
	row := func(name string, s, e, p int, allowed string) {
		if withPeak {
			fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%s\n", name, s, e, p, allowed)
		} else {
			fmt.Fprintf(t, "%s\t%d\t%d\t%s\n", name, s, e, allowed)
		}
	}
	row("resident memory (KiB)", start.RSSKiB, end.RSSKiB, peak.RSSKiB, fmt.Sprintf("%d KiB", rssSlack))
	row("open fds", start.FDs, end.FDs, peak.FDs, "0")
	row("threads", start.Threads, end.Threads, peak.Threads, fmt.Sprint(threadSlack))
	if start.Goroutines < 0 {
		fmt.Fprintf(t, "goroutines\tunavailable: vmd serves no go_goroutines on /metrics; threads stand in\n")
	} else {
		row("goroutines", start.Goroutines, end.Goroutines, peak.Goroutines, fmt.Sprint(goroutineSlack))
	}
	t.Flush()
}

func statuses(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
