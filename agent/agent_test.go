package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/config"
	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/supervisor"
)

// fake is the fake claude, built once for the whole run.
var fake string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.FakeClaude}, []*string{&fake})
}

// harness is an agent over a supervisor of its own and an images store.
type harness struct {
	ag     *agent.Agent
	sup    *supervisor.Supervisor
	images string
	log    *vmdtest.LogBuffer
}

// start runs a supervisor and an images store for an agent of the fake
// with opts (Bin, Args and Env filled in when empty: the fake, vmd's
// default arguments, a HOME of its own) and stops them when the test ends.
func start(t *testing.T, opts agent.Options) *harness {
	t.Helper()
	h := &harness{images: filepath.Join(t.TempDir(), "images"), log: &vmdtest.LogBuffer{}}
	log := hclog.New(&hclog.LoggerOptions{Output: h.log, Level: hclog.Debug, JSONFormat: true})
	sup, err := supervisor.New(supervisor.Config{TempRoot: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	img, err := images.Open(h.images, time.Hour, log)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Bin == "" {
		opts.Bin = fake
	}

	if opts.Args == nil {
		opts.Args = config.DefaultClaudeArgs
	}
	opts.Env = vmdtest.Environ(append([]string{"HOME=" + t.TempDir(), "IMAGES_DIR=" + h.images}, opts.Env...)...)
	if opts.MaxOutput == 0 {
		opts.MaxOutput = 1 << 20
	}
	h.ag, h.sup = agent.New(sup, img, log, opts), sup
	supDone, imgDone := make(chan error, 1), make(chan error, 1)
	go func() { supDone <- sup.Run() }()
	go func() { imgDone <- img.Run() }()
	t.Cleanup(func() {
		sup.Stop()
		vmdtest.Within(t, "the supervisor to stop", supDone)
		img.Stop()
		vmdtest.Within(t, "the images store to stop", imgDone)
		if t.Failed() {
			t.Logf("log:\n%s", h.log)
		}
	})
	return h
}

// spawn starts a process, failing the test if vmd is stopping.
func (h *harness) spawn(t *testing.T, req agent.SpawnRequest) *agent.Process {
	t.Helper()
	p, err := h.ag.Spawn(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		vmdtest.Within(t, "the process to be done", p.Done())
	})
	return p
}

// turn runs one turn on p and waits for its result.
func turn(t *testing.T, p *agent.Process, req agent.TurnRequest) *agent.Result {
	t.Helper()
	tr := p.Turn(req)
	vmdtest.Within(t, "the turn to end", tr.Done())
	return tr.Result()
}

// cold runs prompt in a process of its own, as vmd does with warm off.
func (h *harness) cold(t *testing.T, prompt string) *agent.Result {
	t.Helper()
	return turn(t, h.spawn(t, agent.SpawnRequest{}), agent.TurnRequest{Prompt: prompt})
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{})
	tests := []struct {
		name    string
		prompt  string
		outcome outcome.Outcome
		text    string
		message string
		exit    int
	}{
		{"answer", "say 4", outcome.Succeeded, "4\n", "", 0},
		{"agent error", "agent-error overloaded", outcome.AgentError, "overloaded", "overloaded", 1},
		{"crash", "err boom\nexit 3", outcome.Failed, "", "boom", 3},
		{"killed", "die KILL", outcome.Failed, "", "claude was killed by SIGKILL", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := h.cold(t, tt.prompt)
			if res.Outcome != tt.outcome || !strings.Contains(res.Text, tt.text) || res.Message != tt.message || res.ExitCode != tt.exit {
				t.Errorf("run(%q) = %v %q message %q exit %d; want %v %q %q %d", tt.prompt,
					res.Outcome, res.Text, res.Message, res.ExitCode, tt.outcome, tt.text, tt.message, tt.exit)
			}
			if res.Warm {
				t.Error("a cold turn says warm")
			}
		})
	}
}

// A CLI that does not speak stream-json: its output is the answer, exit 0
// is success.
func TestPlainCLI(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{Args: []string{}})
	if res := h.cold(t, "say plain"); res.Outcome != outcome.Succeeded || res.Text != "plain\n" {
		t.Errorf("plain run = %v %q; want succeeded, plain", res.Outcome, res.Text)
	}
	if res := h.cold(t, "say half\nexit 2"); res.Outcome != outcome.Failed || res.Message != "half" {
		t.Errorf("plain failure = %v %q; want failed with its output as the message", res.Outcome, res.Message)
	}
}

func TestSessionNotFound(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{})
	const missing = "00000000-0000-4000-8000-000000000000"
	for _, warm := range []bool{false, true} {
		p := h.spawn(t, agent.SpawnRequest{Resume: missing, Warm: warm})
		if res := turn(t, p, agent.TurnRequest{Prompt: "say hi"}); res.Outcome != outcome.SessionNotFound {
			t.Errorf("resume of an unknown session (warm %v) = %v %q; want session_not_found", warm, res.Outcome, res.Message)
		}
	}
	first := h.cold(t, "say one")
	p := h.spawn(t, agent.SpawnRequest{Resume: first.SessionID, Warm: true})
	if again := turn(t, p, agent.TurnRequest{Prompt: "recall"}); again.Outcome != outcome.Succeeded ||
		!strings.Contains(again.Text, "earlier: say one") {
		t.Errorf("warm resume of session %q = %v %q; want it to recall the first prompt", first.SessionID, again.Outcome, again.Text)
	}
}

// A timeout kills a cold process with its group; the text so far is kept.
func TestTimeoutKeepsPartialText(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{})
	p := h.spawn(t, agent.SpawnRequest{})
	res := turn(t, p, agent.TurnRequest{Prompt: "say partial\nsleep 1h", Timeout: 300 * time.Millisecond})
	if res.Outcome != outcome.Timeout || !strings.HasPrefix(res.Text, "partial") {
		t.Errorf("timed out run = %v %q; want timeout with the text so far", res.Outcome, res.Text)
	}
	vmdtest.Within(t, "the killed process to be done", p.Done())
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, bin, want string }{
		{"missing", filepath.Join(t.TempDir(), "no-such-claude"), "no such file"},
		{"not on PATH", "no-such-claude-anywhere", `claude_bin "no-such-claude-anywhere": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, agent.Options{Bin: tt.bin})
			res := h.cold(t, "hello")
			if res.Outcome != outcome.StartFailed || !strings.Contains(res.Message, tt.want) || res.Pid != 0 {
				t.Errorf("run with claude_bin %q = %v %q pid %d; want start_failed mentioning %q", tt.bin, res.Outcome,
					res.Message, res.Pid, tt.want)
			}
		})
	}
}

func TestOutputCap(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{Args: []string{}, MaxOutput: 1000})
	if res := h.cold(t, "bytes 300000"); len(res.Text) != 1000 || !res.Truncated {
		t.Errorf("stdout %d bytes, truncated %v; want 1000, true", len(res.Text), res.Truncated)
	}
	if res := h.cold(t, "bytes 1000"); len(res.Text) != 1000 || res.Truncated {
		t.Errorf("stdout %d bytes, truncated %v; want 1000, false", len(res.Text), res.Truncated)
	}
}

// A warm turn whose answer is far past MaxOutput ends at its result line,
// read with the answer cut, not at its timeout: the process lives on.
func TestWarmOutputCap(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{MaxOutput: 1000})
	p := h.spawn(t, agent.SpawnRequest{Warm: true})
	res := turn(t, p, agent.TurnRequest{Prompt: "bytes 9000000\nsay end", Timeout: time.Hour})
	if res.Outcome != outcome.Succeeded || len(res.Text) != 1000 || !res.Truncated || res.SessionID == "" {
		t.Errorf("turn with 9 MB of answer = %v, %d bytes, truncated %v, session %q; want succeeded, 1000, true, a session",
			res.Outcome, len(res.Text), res.Truncated, res.SessionID)
	}
	if next := turn(t, p, agent.TurnRequest{Prompt: "say again"}); next.Text != "again\n" || !next.Warm {
		t.Errorf("the next turn = %q warm %v; want again, warm", next.Text, next.Warm)
	}
	p.Close()
}

// Each turn lists the images it made, and tells them as events; a warm
// process's next turn lists none of the earlier ones.
func TestImagesOfTheTurn(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{})
	if err := os.WriteFile(filepath.Join(h.images, "old.png"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := h.spawn(t, agent.SpawnRequest{Warm: true})
	var told []string
	res := turn(t, p, agent.TurnRequest{Prompt: "screenshot a.png\nimage b.jpeg\nimage notes.txt\nsay done",
		OnEvent: func(ev agent.Event) {
			if ev.Kind == agent.EventImage {
				told = append(told, ev.Image)
			}
		}})
	if got := strings.Join(res.Images, ","); got != "a.png,b.jpeg" {
		t.Errorf("Images = %q; want a.png,b.jpeg", got)
	}
	if got := strings.Join(told, ","); got != "a.png,b.jpeg" {
		t.Errorf("image events = %q; want a.png,b.jpeg", got)
	}
	if res := turn(t, p, agent.TurnRequest{Prompt: "say none"}); len(res.Images) != 0 {
		t.Errorf("Images of a turn that made none = %q", res.Images)
	}
}

func TestArgsAndEnv(t *testing.T) {
	t.Parallel()
	args := agent.Args([]string{"-p"}, "/img", "/mcp.json")
	if got := strings.Join(args[:3], " "); got != "-p --mcp-config /mcp.json" || args[3] != "--append-system-prompt" ||
		!strings.Contains(args[4], "/img") {
		t.Errorf("Args = %q; want claude_args, the MCP config and the screenshot hint", args)
	}
	if args := agent.Args([]string{"--system-prompt", "x"}, "/img", "/mcp.json"); len(args) != 4 {
		t.Errorf("Args with a system prompt = %q; want no hint added", args)
	}
	if args := agent.Args([]string{"-p"}, "/img", ""); len(args) != 1 {
		t.Errorf("Args without an MCP config = %q; want claude_args alone", args)
	}
	env := agent.Env([]string{"PORT=3001", "HOME=/h", "IMAGES_DIR=/old"}, []string{"PORT"}, "/img")
	if got := strings.Join(env, " "); got != "HOME=/h IMAGES_DIR=/img" {
		t.Errorf("Env = %q; want vmd's settings dropped and IMAGES_DIR set", got)
	}
}

// A warm process serves turn after turn: one pid, one session, each turn
// with its own answer, the later ones warm.
func TestWarmTurns(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{})
	p := h.spawn(t, agent.SpawnRequest{Warm: true})
	var starts []agent.Event
	first := turn(t, p, agent.TurnRequest{Prompt: "say one", OnEvent: func(ev agent.Event) {
		if ev.Kind == agent.EventStart {
			starts = append(starts, ev)
		}
	}})
	second := turn(t, p, agent.TurnRequest{Prompt: "recall"})
	if first.Outcome != outcome.Succeeded || first.Text != "one\n" || first.Warm || first.ExitCode != 0 {
		t.Errorf("first turn = %v %q warm %v exit %d; want succeeded, one, cold, 0", first.Outcome, first.Text, first.Warm, first.ExitCode)
	}
	if second.Outcome != outcome.Succeeded || !strings.Contains(second.Text, "earlier: say one") || !second.Warm ||
		second.Pid != first.Pid || second.SessionID != first.SessionID || p.Session() != first.SessionID {
		t.Errorf("second turn = %v %q warm %v pid %d session %q; want it to recall the first, warm, in pid %d session %q",
			second.Outcome, second.Text, second.Warm, second.Pid, second.SessionID, first.Pid, first.SessionID)
	}
	if len(starts) != 1 || starts[0].Pid != first.Pid || starts[0].SessionID != first.SessionID {
		t.Errorf("start events of the first turn = %+v; want one with its pid and session", starts)
	}
	if c := *first.Report.CostUSD + *second.Report.CostUSD; c < 0.0245 || c > 0.0247 || p.Spent() < 0.0245 {
		t.Errorf("turn costs %v + %v, spent %v; want 0.0123 each: the turn's own, not the session's total",
			*first.Report.CostUSD, *second.Report.CostUSD, p.Spent())
	}
	p.Close()
	vmdtest.Within(t, "the closed process to exit", p.Done())
	if ex := p.Exit(); ex.Code != 0 {
		t.Errorf("exit after Close = %+v; want 0", ex)
	}
}

// A warm turn stopped (cancelled, timed out) is interrupted: it ends with
// its text so far, and the process, its session, serves the next turn.
func TestInterruptKeepsTheProcess(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{})
	p := h.spawn(t, agent.SpawnRequest{Warm: true})
	said := make(chan struct{}, 1)
	tr := p.Turn(agent.TurnRequest{Prompt: "say partial\nsleep 1h", OnEvent: func(ev agent.Event) {
		if ev.Kind == agent.EventMessage {
			select {
			case said <- struct{}{}:
			default:
			}
		}
	}})
	vmdtest.Within(t, "the turn's first words", said)
	if !tr.Stop(outcome.Cancelled) || tr.Stop(outcome.Cancelled) {
		t.Error("Stop = false the first time, or true the second; want true, then false")
	}
	vmdtest.Within(t, "the interrupted turn to end", tr.Done())
	if res := tr.Result(); res.Outcome != outcome.Cancelled || res.Text != "partial\n" {
		t.Errorf("interrupted turn = %v %q; want cancelled with the text so far", res.Outcome, res.Text)
	}
	if !p.Idle() {
		t.Fatal("the process is not idle after the interrupt; want it kept for the next turn")
	}
	next := turn(t, p, agent.TurnRequest{Prompt: "say again", Timeout: 100 * time.Millisecond})
	if next.Outcome != outcome.Succeeded || next.Text != "again\n" || next.Pid != tr.Result().Pid {
		t.Errorf("turn after the interrupt = %v %q pid %d; want succeeded, again, the same pid", next.Outcome, next.Text, next.Pid)
	}
	timedOut := turn(t, p, agent.TurnRequest{Prompt: "say slow\nsleep 1h", Timeout: 200 * time.Millisecond})
	if timedOut.Outcome != outcome.Timeout || !p.Idle() {
		t.Errorf("timed out warm turn = %v, process idle %v; want timeout, the process kept", timedOut.Outcome, p.Idle())
	}
}

// A CLI that does not answer its interrupt within the grace is killed
// with its group; a stall kills at once, without asking.
func TestStopsThatKill(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{InterruptGrace: 100 * time.Millisecond, StallTimeout: 300 * time.Millisecond})
	p := h.spawn(t, agent.SpawnRequest{Warm: true})
	deaf := p.Turn(agent.TurnRequest{Prompt: "say wedged\nwedge 1h"})
	vmdtest.Eventually(t, "the wedged turn's words", func() bool { return h.log.Logged("message") })
	deaf.Stop(outcome.Cancelled)
	vmdtest.Within(t, "the deaf turn to end", deaf.Done())
	if res := deaf.Result(); res.Outcome != outcome.Cancelled || res.Signal != "SIGKILL" {
		t.Errorf("deaf turn = %v signal %q; want cancelled, killed", res.Outcome, res.Signal)
	}
	vmdtest.Within(t, "the killed process", p.Done())

	q := h.spawn(t, agent.SpawnRequest{Warm: true})
	if res := turn(t, q, agent.TurnRequest{Prompt: "wedge 1h"}); res.Outcome != outcome.Stalled || res.Signal != "SIGKILL" {
		t.Errorf("stalled turn = %v signal %q; want stalled, killed", res.Outcome, res.Signal)
	}
}

// A warm process that dies mid-turn fails the turn; one that dies between
// turns answers the next at once, saying so.
func TestWarmProcessDies(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{})
	p := h.spawn(t, agent.SpawnRequest{Warm: true})
	if res := turn(t, p, agent.TurnRequest{Prompt: "say bye\ndie KILL"}); res.Outcome != outcome.Failed || res.Signal != "SIGKILL" {
		t.Errorf("turn whose process died = %v %q signal %q; want failed, killed", res.Outcome, res.Message, res.Signal)
	}
	vmdtest.Within(t, "the dead process", p.Done())
	if p.Idle() {
		t.Error("a dead process is idle")
	}
	if res := turn(t, p, agent.TurnRequest{Prompt: "say hi"}); res.Outcome != outcome.Failed {
		t.Errorf("turn on a dead process = %v; want failed", res.Outcome)
	}
}

// --max-budget-usd counts the process's spend across its turns: the turn
// that reaches it ends error_max_budget_usd, an agent error.
func TestBudget(t *testing.T) {
	t.Parallel()
	h := start(t, agent.Options{MaxCostUSD: 0.02})
	p := h.spawn(t, agent.SpawnRequest{Warm: true})
	if res := turn(t, p, agent.TurnRequest{Prompt: "say one"}); res.Outcome != outcome.Succeeded {
		t.Fatalf("first turn = %v %q; want succeeded", res.Outcome, res.Message)
	}
	res := turn(t, p, agent.TurnRequest{Prompt: "say two"})
	if res.Outcome != outcome.AgentError || res.Report == nil || res.Report.Subtype != agent.BudgetExhausted ||
		!strings.Contains(res.Message, "Reached maximum budget") {
		t.Errorf("second turn = %v %q; want an agent error saying the budget was reached", res.Outcome, res.Message)
	}
}
