//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// kind is one sort of command in the mix: the fake CLI's script, the status
// the contract gives it, and what its answer must hold.
type kind struct {
	name   string
	weight int // in each cycle of the mix
	script func(i int) string
	status int
	// check returns what is wrong with an answer with the right status.
	check func(a *answer, i int, t *trial) []string
}

// trial is what checking one answer needs to know.
type trial struct {
	timeout time.Duration // the vmd's COMMAND_TIMEOUT_MS
}

// kinds is the mix: success, crash, timeout, stray processes and pipe
// holders, in the proportions of one cycle (18 commands).
var kinds = []kind{
	{name: "say", weight: 6, status: 200,
		script: func(i int) string { return "say hello-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ *trial) []string {
			return ok200(a, "hello-"+strconv.Itoa(i)+"\n", nil)
		}},
	{name: "bytes", weight: 1, status: 200,
		script: func(int) string { return "bytes 65536" },
		check: func(a *answer, _ int, _ *trial) []string {
			return ok200(a, strings.Repeat("x", 65536), nil)
		}},
	{name: "image", weight: 2, status: 200,
		// Four names in turn: images rewritten count too, and the
		// directory stays small over 10,000 commands.
		script: func(i int) string { return fmt.Sprintf("image load-%d.png\nsay shot-%d", i%4, i) },
		check: func(a *answer, i int, _ *trial) []string {
			return ok200(a, "shot-"+strconv.Itoa(i)+"\n", []string{fmt.Sprintf("/images/load-%d.png", i%4)})
		}},
	{name: "exit 3", weight: 2, status: 500,
		script: func(i int) string { return "err boom-" + strconv.Itoa(i) + "\nexit 3" },
		check: func(a *answer, i int, _ *trial) []string {
			return failed500(a, intp(3), "", "boom-"+strconv.Itoa(i))
		}},
	{name: "die", weight: 2, status: 500,
		script: func(i int) string { return "die " + dieSignal(i) },
		check: func(a *answer, i int, _ *trial) []string {
			return failed500(a, nil, "SIG"+dieSignal(i), "claude was killed by SIG"+dieSignal(i))
		}},
	{name: "timeout", weight: 1, status: 408,
		script: func(i int) string { return "say partial-" + strconv.Itoa(i) + "\nsleep 1h" },
		check: func(a *answer, i int, t *trial) []string {
			var p []string
			want := fmt.Sprintf("Command timed out after %dms", t.timeout.Milliseconds())
			if a.Error != "timeout" || a.Message != want {
				p = append(p, fmt.Sprintf("error %q message %q; want timeout %q", a.Error, a.Message, want))
			}
			if a.Text != "partial-"+strconv.Itoa(i)+"\n" {
				p = append(p, fmt.Sprintf("partial text %q; want %q", a.Text, "partial-"+strconv.Itoa(i)+"\n"))
			}
			// Killed on time: not before the timeout, and the kill, the
			// sweep and the answer within a second of it.
			if a.latency < t.timeout || a.latency > t.timeout+time.Second {
				p = append(p, fmt.Sprintf("answered after %v; want between %v and %v", a.latency, t.timeout, t.timeout+time.Second))
			}
			return p
		}},
	{name: "orphans 3", weight: 1, status: 200,
		script: func(i int) string { return "orphans 3\nsay orphans-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ *trial) []string {
			return ok200(a, "orphans-"+strconv.Itoa(i)+"\n", nil)
		}},
	{name: "escape", weight: 1, status: 200,
		script: func(i int) string { return "escape\nsay escaped-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ *trial) []string {
			return withPid(a, "escaped", "escaped-"+strconv.Itoa(i)+"\n")
		}},
	{name: "hold", weight: 1, status: 200,
		script: func(i int) string { return "hold\nsay held-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ *trial) []string {
			return withPid(a, "holder", "held-"+strconv.Itoa(i)+"\n")
		}},
	{name: "escape-hold", weight: 1, status: 200,
		script: func(i int) string { return "escape-hold\nsay escaped-holding-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ *trial) []string {
			return withPid(a, "escaped", "escaped-holding-"+strconv.Itoa(i)+"\n")
		}},
}

// dieSignal alternates the signals the CLI dies of. Not SEGV or ABRT: they
// would dump core into the machine's core_pattern.
func dieSignal(i int) string {
	if i%2 == 0 {
		return "KILL"
	}
	return "TERM"
}

func intp(n int) *int { return &n }

// ok200 checks a 200 answer: the text exactly, exit code 0, the images
// listed exactly (an empty list, not a missing one, when none).
func ok200(a *answer, text string, images []string) []string {
	var p []string
	if a.Text != text {
		p = append(p, fmt.Sprintf("text %q; want %q", clip(a.Text), clip(text)))
	}
	if a.ExitCode == nil || *a.ExitCode != 0 {
		p = append(p, fmt.Sprintf("exitCode %v; want 0", deref(a.ExitCode)))
	}
	if a.Images == nil || !slices.Equal(a.Images, images) {
		p = append(p, fmt.Sprintf("images %q; want %q", a.Images, images))
	}
	if a.DurationMs == nil || a.Truncated {
		p = append(p, fmt.Sprintf("durationMs %v truncated %v; want a duration, not truncated", deref64(a.DurationMs), a.Truncated))
	}
	return p
}

// failed500 checks a 500: execution_error, the exit code or the signal, and
// the message (the end of stderr, or how the CLI ended).
func failed500(a *answer, code *int, signal, message string) []string {
	var p []string
	if a.Error != "execution_error" || a.Message != message {
		p = append(p, fmt.Sprintf("error %q message %q; want execution_error %q", a.Error, a.Message, message))
	}
	if deref(a.ExitCode) != deref(code) || (a.ExitCode == nil) != (code == nil) || a.Signal != signal {
		p = append(p, fmt.Sprintf("exitCode %v signal %q; want %v %q", deref(a.ExitCode), a.Signal, deref(code), signal))
	}
	if !bytes.Contains(a.raw, []byte(`"exitCode":`)) {
		p = append(p, "no exitCode member (null expected when there is none)")
	}
	return p
}

// withPid checks a 200 whose text starts with the "pid ROLE N" line the
// fake CLI prints for a child it started.
func withPid(a *answer, role, rest string) []string {
	pids := startedPids(a.Text)
	if len(pids) != 1 || pids[0].role != role {
		return []string{fmt.Sprintf("text %q; want a line \"pid %s N\" then %q", clip(a.Text), role, rest)}
	}
	return ok200(a, fmt.Sprintf("pid %s %d\n%s", role, pids[0].pid, rest), nil)
}

type started struct {
	role string
	pid  int
}

// startedPids finds the fake CLI's "pid ROLE N" lines.
func startedPids(text string) []started {
	var out []started
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "pid" {
			if n, err := strconv.Atoi(f[2]); err == nil {
				out = append(out, started{f[1], n})
			}
		}
	}
	return out
}

func deref(p *int) any {
	if p == nil {
		return "null"
	}
	return *p
}

func deref64(p *int64) any {
	if p == nil {
		return "null"
	}
	return *p
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:40] + "..." + s[len(s)-20:]
	}
	return s
}

// deck deals the kinds: each cycle holds every kind weight times, in an
// order shuffled by the seed.
type deck struct {
	rng   *rand.Rand
	cards []int
}

func newDeck(seed uint64) *deck { return &deck{rng: rand.New(rand.NewPCG(seed, 0x766d64))} }

func (d *deck) next() *kind {
	if len(d.cards) == 0 {
		for i, k := range kinds {
			for range k.weight {
				d.cards = append(d.cards, i)
			}
		}
		d.rng.Shuffle(len(d.cards), func(i, j int) { d.cards[i], d.cards[j] = d.cards[j], d.cards[i] })
	}
	k := &kinds[d.cards[0]]
	d.cards = d.cards[1:]
	return k
}

func cycleLen() int {
	n := 0
	for _, k := range kinds {
		n += k.weight
	}
	return n
}

// outcome is one command as the runner saw it.
type outcome struct {
	kind     *kind
	answer   *answer
	problems []string
	tree     treeCount // below vmd once it had answered
}

// command runs command i of kind k on v and checks everything the contract
// promises about it: status and body, nothing left below vmd once it has
// answered (no process, no zombie), every process it started dead, and an
// image it listed served with the bytes on disk.
func (r *runner) command(ctx context.Context, v *vmdProc, k *kind, i int, timeout time.Duration, imagesDir string) outcome {
	o := outcome{kind: k}
	a, err := v.post(ctx, k.script(i), timeout+20*time.Second)
	o.answer = a
	switch {
	case err != nil && ctx.Err() != nil:
		return o
	case err != nil && a != nil:
		o.problems = append(o.problems, "unreadable answer: "+err.Error())
		return o
	case err != nil:
		o.problems = append(o.problems, "no answer: "+err.Error())
		return o
	case a.status != k.status:
		o.problems = append(o.problems, fmt.Sprintf("status %s; want %d", a, k.status))
	default:
		o.problems = append(o.problems, k.check(a, i, &trial{timeout: timeout})...)
	}
	ps, err := processes()
	if err != nil {
		o.problems = append(o.problems, "reading /proc: "+err.Error())
		return o
	}
	o.tree = countTree(ps, v.pid)
	if o.tree.Descendants > 0 {
		var left []string
		for _, p := range descendants(ps, v.pid) {
			left = append(left, fmt.Sprintf("%d(%s,%c)", p.pid, p.comm, p.state))
		}
		o.problems = append(o.problems, fmt.Sprintf("processes below vmd after its answer: %s", strings.Join(left, " ")))
	}
	for _, s := range startedPids(a.Text) {
		if alive(s.pid, r.fake) {
			o.problems = append(o.problems, fmt.Sprintf("%s %d still alive after the answer", s.role, s.pid))
		}
	}
	for _, img := range a.Images {
		if p := r.checkImage(ctx, v, img, imagesDir); p != "" {
			o.problems = append(o.problems, p)
		}
	}
	return o
}

// checkImage fetches an image an answer listed and compares it with the
// file in the images directory.
func (r *runner) checkImage(ctx context.Context, v *vmdProc, url, imagesDir string) string {
	name, ok := strings.CutPrefix(url, "/images/")
	if !ok {
		return fmt.Sprintf("image %q is not under /images/", url)
	}
	disk, err := os.ReadFile(filepath.Join(imagesDir, name))
	if err != nil {
		return fmt.Sprintf("image %s listed but not on disk: %v", url, err)
	}
	status, h, body, err := v.get(ctx, url)
	switch {
	case err != nil:
		return fmt.Sprintf("GET %s: %v", url, err)
	case status != 200 || h.Get("Content-Type") != "image/png" || !bytes.Equal(body, disk):
		return fmt.Sprintf("GET %s = %d %s, %d bytes; want 200 image/png, the %d bytes on disk", url, status, h.Get("Content-Type"), len(body), len(disk))
	}
	return ""
}
