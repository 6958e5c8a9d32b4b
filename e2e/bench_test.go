//go:build real

package e2e

import (
	"bytes"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// BenchmarkWarmVersusCold measures what a person on the other end of
// WhatsApp waits for, with the real CLI, Playwright MCP and Chromium
// against the fake API: a vmd with warm=false and one with the defaults
// (warm agents, a spare), side by side, each round interleaved. A round is
// a 4-message conversation, begun after a short idle (the spare is ready),
// then a screenshot and a screenshot follow-up in it.
//
//	go test -tags real -run '^$' -bench WarmVersusCold -benchtime 3x ./e2e/
//
// Reported, medians over the rounds: first-ms (a new conversation's first
// message), followup-ms (messages 2-4), shot-followup-ms (a screenshot
// when the conversation took one before), each cold and warm, with warm as
// a share of cold; and the warm agent tree's RSS and PSS once its browser
// is up.
func BenchmarkWarmVersusCold(b *testing.B) {
	s := newStack(b)
	url, _ := servePage(b)
	modes := []struct {
		name string
		v    *vmd
	}{
		{"cold", s.start(b, false, "WARM=false")},
		{"warm", s.start(b, false)},
	}
	times := map[string][]time.Duration{}
	var rss, pss []float64
	for b.Loop() {
		for _, m := range modes {
			// A short idle: the spare has started, its MCP server connected.
			time.Sleep(2 * time.Second)
			first := timed(b, m.v, map[string]string{"text": "What is 2+2?"})
			times[m.name+" first"] = append(times[m.name+" first"], first.took)
			for range 3 {
				a := timed(b, m.v, map[string]string{"text": "What did I ask before?", "sessionId": first.SessionID})
				times[m.name+" followup"] = append(times[m.name+" followup"], a.took)
			}
			timed(b, m.v, map[string]string{"text": "Take a screenshot of " + url, "sessionId": first.SessionID})
			shot := timed(b, m.v, map[string]string{"text": "Take a screenshot of " + url, "sessionId": first.SessionID})
			times[m.name+" shot"] = append(times[m.name+" shot"], shot.took)
			if m.name == "warm" {
				r, p := treeMemory(b, m.v, first.SessionID)
				rss, pss = append(rss, r), append(pss, p)
			}
		}
	}
	for _, what := range []string{"first", "followup", "shot"} {
		cold, warm := median(times["cold "+what]), median(times["warm "+what])
		unit := map[string]string{"first": "first", "followup": "followup", "shot": "shot-followup"}[what]
		b.ReportMetric(ms(cold), "cold-"+unit+"-ms")
		b.ReportMetric(ms(warm), "warm-"+unit+"-ms")
		b.ReportMetric(float64(warm)/float64(cold), "warm/cold-"+unit)
	}
	b.ReportMetric(medianF(rss), "warm-tree-rss-MiB")
	b.ReportMetric(medianF(pss), "warm-tree-pss-MiB")
}

// timed posts a command and fails the benchmark unless it answers 200.
func timed(b *testing.B, v *vmd, fields map[string]string) answer {
	b.Helper()
	a := v.commandWith(fields)
	if a.status != http.StatusOK {
		b.Fatalf("%v = %v; want 200", fields, a)
	}
	return a
}

// treeMemory is the RSS and PSS, in MiB, of the processes of the agent
// holding session: the CLI, Playwright MCP, Chromium (by the marker they
// inherit from the agent's process).
func treeMemory(b *testing.B, v *vmd, session string) (rss, pss float64) {
	b.Helper()
	var marker string
	for _, a := range v.status(b).Agents {
		if a.SessionID != nil && *a.SessionID == session {
			marker = vmdtest.Marker(a.Pid)
		}
	}
	if marker == "" {
		b.Fatalf("no agent holds session %s", session)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || vmdtest.Marker(pid) != marker {
			continue
		}
		rollup, _ := os.ReadFile("/proc/" + e.Name() + "/smaps_rollup")
		rss += kib(rollup, "Rss:") / 1024
		pss += kib(rollup, "Pss:") / 1024
	}
	return rss, pss
}

// kib reads a "Name:   N kB" line of /proc's.
func kib(b []byte, name string) float64 {
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte(name)); ok {
			n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 64)
			return n
		}
	}
	return 0
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianF(fs []float64) float64 {
	if len(fs) == 0 {
		return 0
	}
	s := slices.Clone(fs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
