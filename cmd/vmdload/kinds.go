package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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
	// timed sends the runner's -timeout as the request's timeoutMs: the
	// only kind that times out. vmd's own command_timeout stays long, so
	// that no other kind can time out on a loaded machine.
	timed bool
	// check returns what is wrong with an answer with the right status.
	check func(a *answer, i int, timeout time.Duration) []string
}

// kinds is the mix: success, crash, timeout, stray processes and pipe
// holders, in the proportions of one cycle (18 commands).
var kinds = []kind{
	{name: "say", weight: 6, status: 200,
		script: func(i int) string { return "say hello-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ time.Duration) []string {
			return ok200(a, "hello-"+strconv.Itoa(i)+"\n", nil)
		}},
	{name: "bytes", weight: 1, status: 200,
		script: func(int) string { return "bytes 65536" },
		check: func(a *answer, _ int, _ time.Duration) []string {
			return ok200(a, strings.Repeat("x", 65536), nil)
		}},
	{name: "image", weight: 2, status: 200,
		// Four names in turn: images rewritten count too, and the
		// directory stays small over 10,000 commands.
		script: func(i int) string { return fmt.Sprintf("image load-%d.png\nsay shot-%d", i%4, i) },
		check: func(a *answer, i int, _ time.Duration) []string {
			return ok200(a, "shot-"+strconv.Itoa(i)+"\n", []string{fmt.Sprintf("/images/load-%d.png", i%4)})
		}},
	{name: "exit 3", weight: 2, status: 500,
		script: func(i int) string { return "err boom-" + strconv.Itoa(i) + "\nexit 3" },
		check: func(a *answer, i int, _ time.Duration) []string {
			return failed500(a, intp(3), "", "boom-"+strconv.Itoa(i))
		}},
	{name: "die", weight: 2, status: 500,
		script: func(i int) string { return "die " + dieSignal(i) },
		check: func(a *answer, i int, _ time.Duration) []string {
			return failed500(a, nil, "SIG"+dieSignal(i), "claude was killed by SIG"+dieSignal(i))
		}},
	{name: "timeout", weight: 1, status: 408, timed: true,
		script: func(i int) string { return "say partial-" + strconv.Itoa(i) + "\nsleep 1h" },
		check: func(a *answer, i int, timeout time.Duration) []string {
			var p []string
			want := fmt.Sprintf("Command timed out after %dms", timeout.Milliseconds())
			if a.Error != "timeout" || a.Message != want {
				p = append(p, fmt.Sprintf("error %q message %q; want timeout %q", a.Error, a.Message, want))
			}
			// On a loaded machine the CLI may not have spoken before the
			// timeout: what it said is kept whole, or it said nothing.
			if a.Text != "partial-"+strconv.Itoa(i)+"\n" && a.Text != "" {
				p = append(p, fmt.Sprintf("partial text %q; want %q or none", a.Text, "partial-"+strconv.Itoa(i)+"\n"))
			}
			return p
		}},
	{name: "orphans 3", weight: 1, status: 200,
		script: func(i int) string { return "orphans 3\nsay orphans-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ time.Duration) []string {
			return ok200(a, "orphans-"+strconv.Itoa(i)+"\n", nil)
		}},
	{name: "escape", weight: 1, status: 200,
		script: func(i int) string { return "escape\nsay escaped-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ time.Duration) []string {
			return withPid(a, "escaped", "escaped-"+strconv.Itoa(i)+"\n")
		}},
	{name: "hold", weight: 1, status: 200,
		script: func(i int) string { return "hold\nsay held-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ time.Duration) []string {
			return withPid(a, "holder", "held-"+strconv.Itoa(i)+"\n")
		}},
	{name: "escape-hold", weight: 1, status: 200,
		script: func(i int) string { return "escape-hold\nsay escaped-holding-" + strconv.Itoa(i) },
		check: func(a *answer, i int, _ time.Duration) []string {
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
		p = append(p, fmt.Sprintf("text %q; want %q", clip(a.Text, 80), clip(text, 80)))
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
		return []string{fmt.Sprintf("text %q; want a line \"pid %s N\" then %q", clip(a.Text, 80), role, rest)}
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
