//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// Tolerances for "flat" resources, vmd settled before and after the phase
// (a second and a half idle: vmd hands freed memory back to the OS a
// second after the last command).
const (
	settleWait = 1500 * time.Millisecond
	// rssSlackKiB: the start figure is taken after warm-up cycles, so the
	// heap has met every kind of command; what remains is the Go runtime
	// keeping some freed spans and the allocator's fragmentation, about a
	// MiB either way between settled readings of the same vmd (the settled
	// readings at each quarter of the phase show the trend). A leak of
	// 1 KiB a command grows RSS by 10 MiB over 10,000 commands (by 0.5 MiB
	// over CI's 500, below this: the short form catches gross leaks only).
	rssSlackKiB = 3 << 10
	// faultRSSSlackKiB: the faults include two answers listing 20,001
	// images (half a MiB of JSON built in vmd, the recording's map, the
	// scan fallback's listing of 20,000 entries), which leave partly used
	// spans behind. Repeating the overflow six times on one vmd, its
	// settled RSS plateaued 2 MiB above the start (4 MiB was seen once
	// after the whole fault list): twice that flags a runaway, not that.
	faultRSSSlackKiB = 8 << 10
	// threadSlack: Go keeps every OS thread it made. The count climbs to a
	// plateau set by the most blocking system calls ever in flight at once,
	// which a late burst can raise by a few; a goroutine leak that holds a
	// thread grows it by one a command.
	threadSlack = 6
	// goroutineSlack: the /metrics request being served, and one more for
	// a connection fasthttp has not yet seen close.
	goroutineSlack = 2
	// goroutineWait: fasthttp stops a worker idle for 10 s at its next
	// clean-up, which runs every 10 s: up to 20 s after its last request.
	goroutineWait = 25 * time.Second
	// warmCycles of the mix run before the start figures are taken.
	warmCycles = 3
)

// MixedReport is phase 1: commands back to back through the fake CLI.
type MixedReport struct {
	Commands int `json:"commands"`
	// Wall is the whole phase, the runner's own checks and the bare
	// fork/execs between commands included.
	Wall Duration `json:"wallMs"`
	// PerSecond is commands over the time spent in requests.
	PerSecond float64        `json:"commandsPerSecond"`
	Latency   Latency        `json:"latency"`
	Kinds     []KindFigures  `json:"kinds"`
	Statuses  map[string]int `json:"statuses"`
	// Say is vmd's round trip for "say" commands; Bare the same script run
	// by the runner with a plain fork/exec right after each, the runner's
	// pipes standing in for vmd's. Overhead is the difference of medians.
	Say      Latency  `json:"say"`
	Bare     Latency  `json:"bareExec"`
	Overhead Duration `json:"overheadP50Ms"`
	// Start and End are settled readings; Peak the largest seen between.
	Start usage `json:"start"`
	End   usage `json:"end"`
	Peak  usage `json:"peak"`
	// Quarters are settled readings after each quarter of the commands but
	// the last (End is that one): a leak climbs through them, a plateau
	// does not.
	Quarters []usage `json:"quarters"`
	// Leftovers counts commands after whose answer any process (zombies
	// included) was still below vmd; MaxZombies is the most zombie
	// children of vmd seen at once.
	Leftovers  int `json:"leftovers"`
	MaxZombies int `json:"maxZombies"`
	// TempDirs is how many vmd-cmd-* directories vmd's TMPDIR held at the
	// end (the spare one is expected).
	TempDirs int `json:"tempDirs"`
	// Log counts vmd's log lines by level and message.
	Log map[string]int `json:"log"`
}

// KindFigures is one kind of command in the mix.
type KindFigures struct {
	Kind    string  `json:"kind"`
	Status  int     `json:"status"`
	Latency Latency `json:"latency"`
}

// mixed runs the mixed phase on v.
func (r *runner) mixed(ctx context.Context, v *vmdProc, images, tmp string) *MixedReport {
	rep := &MixedReport{Statuses: map[string]int{}}
	d := newDeck(r.cfg.Seed)
	logMark := v.mark()
	// Warm-up: warmCycles of the mix, so that the start figures are of a
	// vmd whose heap has met every kind of command a few times. Its answers
	// count in the log check only.
	logged := map[string]int{}
	warm := newDeck(r.cfg.Seed + 2)
	for i := range warmCycles * cycleLen() {
		k := warm.next()
		o := r.command(ctx, v, k, r.cfg.Commands+i, r.cfg.Timeout, images)
		if len(o.problems) > 0 {
			r.rep.fail("mixed warm-up %s: %s", k.name, strings.Join(o.problems, "; "))
		}
		if o.answer != nil {
			logged[fmt.Sprint(o.answer.status)]++
		}
	}
	rep.Start = r.settledUsage(ctx, v)
	rep.Peak = rep.Start

	byKind := map[string][]time.Duration{}
	var all, say, bare []time.Duration
	var inRequests time.Duration
	start := time.Now()
	for i := 0; i < r.cfg.Commands && ctx.Err() == nil; i++ {
		k := d.next()
		o := r.command(ctx, v, k, i, r.cfg.Timeout, images)
		for _, p := range o.problems {
			r.rep.fail("mixed #%d %s: %s", i, k.name, p)
		}
		if o.tree.Descendants > 0 {
			rep.Leftovers++
		}
		rep.MaxZombies = max(rep.MaxZombies, o.tree.Zombies)
		if o.answer == nil {
			continue
		}
		rep.Commands++
		rep.Statuses[fmt.Sprint(o.answer.status)]++
		logged[fmt.Sprint(o.answer.status)]++
		all = append(all, o.answer.latency)
		inRequests += o.answer.latency
		byKind[k.name] = append(byKind[k.name], o.answer.latency)
		if k.name == "say" {
			say = append(say, o.answer.latency)
			b, err := bareExec(r.fake, k.script(i), "hello-"+fmt.Sprint(i)+"\n")
			if err != nil {
				r.rep.fail("mixed #%d bare fork/exec: %v", i, err)
			} else {
				bare = append(bare, b)
			}
		}
		if q := r.cfg.Commands / 4; q > 0 && (i+1)%q == 0 && i+1 < r.cfg.Commands {
			rep.Quarters = append(rep.Quarters, r.settledUsage(ctx, v))
		}
		if every := max(r.cfg.Commands/10, 1); (i+1)%every == 0 {
			if u, err := readUsage(v.pid); err == nil {
				rep.Peak = peak(rep.Peak, u)
			}
			if ps, err := processes(); err == nil {
				if left := runningExe(ps, r.fake); len(left) > 0 {
					r.rep.fail("mixed #%d: fake CLI processes %v running between commands", i, left)
				}
			}
			progress(r.cfg, "mixed: %d/%d commands, %v", i+1, r.cfg.Commands, time.Since(start).Round(time.Second))
		}
	}
	rep.Wall = Duration(time.Since(start))
	if inRequests > 0 {
		rep.PerSecond = float64(rep.Commands) / inRequests.Seconds()
	}
	rep.Latency, rep.Say, rep.Bare = summarize(all), summarize(say), summarize(bare)
	rep.Overhead = rep.Say.P50 - rep.Bare.P50
	for _, k := range kinds {
		rep.Kinds = append(rep.Kinds, KindFigures{Kind: k.name, Status: k.status, Latency: summarize(byKind[k.name])})
	}
	if ctx.Err() != nil {
		return rep
	}

	rep.End = r.flatUsage(ctx, v, "mixed", rep.Start, rssSlackKiB)
	rep.Peak = peak(rep.Peak, rep.End)
	rep.TempDirs = r.checkTempDirs(tmp, "mixed")
	rep.Log = r.checkLog(v, logMark, "mixed", logged)
	return rep
}

// bareExec runs the fake CLI as a plain fork/exec with script on its stdin
// and returns how long it took, from fork to the end of its output.
func bareExec(fake, script, want string) (time.Duration, error) {
	cmd := exec.Command(fake)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout = &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err == nil && out.String() != want {
		err = fmt.Errorf("output %q; want %q", out.String(), want)
	}
	return d, err
}

func peak(a, b usage) usage {
	return usage{RSSKiB: max(a.RSSKiB, b.RSSKiB), FDs: max(a.FDs, b.FDs), Threads: max(a.Threads, b.Threads),
		Goroutines: max(a.Goroutines, b.Goroutines)}
}

// settledUsage reads vmd's usage once it has been idle for settleWait.
func (r *runner) settledUsage(ctx context.Context, v *vmdProc) usage {
	time.Sleep(settleWait)
	u, err := v.usage(ctx)
	if err != nil {
		r.rep.fail("%s vmd: reading its usage: %v", v.name, err)
	}
	// The connection the runner just closed may not be closed on vmd's
	// side yet: read again until two readings agree.
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		again, err := readUsage(v.pid)
		if err != nil || again.FDs == u.FDs {
			break
		}
		u.FDs = again.FDs
	}
	return u
}

// flatUsage reads vmd's settled usage at the end of a phase and checks it
// against start. A leaked fd or goroutine stays; one still closing goes
// within seconds, so fds and goroutines are read again for a while before
// they count as leaked.
func (r *runner) flatUsage(ctx context.Context, v *vmdProc, phase string, start usage, rssSlack int) usage {
	end := r.settledUsage(ctx, v)
	for deadline := time.Now().Add(3 * time.Second); end.FDs > start.FDs && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if u, err := readUsage(v.pid); err == nil {
			end.FDs = u.FDs
		}
	}
	if start.Goroutines >= 0 {
		for deadline := time.Now().Add(goroutineWait); end.Goroutines > start.Goroutines+goroutineSlack && time.Now().Before(deadline); {
			time.Sleep(500 * time.Millisecond)
			if g, err := v.goroutines(ctx); err == nil {
				end.Goroutines = g
			}
		}
	}
	if end.FDs > start.FDs {
		r.rep.fail("%s: vmd holds %d fds after, %d before: not flat", phase, end.FDs, start.FDs)
	}
	if end.RSSKiB > start.RSSKiB+rssSlack {
		r.rep.fail("%s: vmd resident memory %d KiB after, %d KiB before: grew more than %d KiB", phase, end.RSSKiB, start.RSSKiB, rssSlack)
	}
	if end.Threads > start.Threads+threadSlack {
		r.rep.fail("%s: vmd has %d threads after, %d before: grew more than %d", phase, end.Threads, start.Threads, threadSlack)
	}
	switch {
	case start.Goroutines < 0 || end.Goroutines < 0:
		r.rep.note("%s: goroutines unavailable (vmd serves no go_goroutines on /metrics); threads from /proc stand in: %d before, %d after",
			phase, start.Threads, end.Threads)
	case end.Goroutines > start.Goroutines+goroutineSlack:
		r.rep.fail("%s: vmd has %d goroutines after, %d before: grew more than %d", phase, end.Goroutines, start.Goroutines, goroutineSlack)
	}
	return end
}

// checkTempDirs counts vmd's per-command temp dirs left in its TMPDIR: the
// spare one at most, once the janitor has caught up.
func (r *runner) checkTempDirs(tmp, phase string) int {
	count := func() int {
		entries, _ := os.ReadDir(tmp)
		n := 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "vmd-cmd-") {
				n++
			}
		}
		return n
	}
	n := count()
	for deadline := time.Now().Add(3 * time.Second); n > 1 && time.Now().Before(deadline); n = count() {
		time.Sleep(100 * time.Millisecond)
	}
	if n > 1 {
		r.rep.fail("%s: %d command temp dirs left in vmd's TMPDIR; want the spare one at most", phase, n)
	}
	return n
}

// Log lines a phase of the mix may log, besides info ones.
var expectedWarnings = map[string]bool{
	"timeout":                true, // the 408s
	"killed stray processes": true, // escape, escape-hold, orphans
	"command failed":         true, // the 500s (error level)
}

// checkLog counts vmd's log lines since mark and checks them against the
// answers: one spawn and one done a command, a "command failed" for each
// 500, a "timeout" for each 408, no error line but those.
func (r *runner) checkLog(v *vmdProc, mark int, phase string, statuses map[string]int) map[string]int {
	commands := 0
	for _, n := range statuses {
		commands += n
	}
	// The last lines may still be in the pipe.
	time.Sleep(100 * time.Millisecond)
	counts := map[string]int{}
	byMessage := map[string]int{}
	for _, l := range v.since(mark) {
		counts[l.level+" "+l.message]++
		byMessage[l.message]++
		if expectedWarnings[l.message] || l.level == "info" || l.level == "debug" || l.level == "trace" {
			continue
		}
		if l.level == "warn" {
			continue // listed below, as notes
		}
		r.rep.fail("%s: unexpected log line: %s", phase, l.raw)
	}
	want := map[string]int{"command received": commands, "spawn": commands, "done": commands,
		"command failed": statuses["500"], "timeout": statuses["408"]}
	for msg, n := range want {
		if byMessage[msg] != n {
			r.rep.fail("%s: %d %q log lines; want %d", phase, byMessage[msg], msg, n)
		}
	}
	var warns []string
	for k, n := range counts {
		if msg, ok := strings.CutPrefix(k, "warn "); ok && !expectedWarnings[msg] {
			warns = append(warns, fmt.Sprintf("%q ×%d", msg, n))
		}
	}
	sort.Strings(warns)
	if len(warns) > 0 {
		r.rep.note("%s: vmd logged warnings beyond timeouts and strays: %s", phase, strings.Join(warns, ", "))
	}
	return counts
}
