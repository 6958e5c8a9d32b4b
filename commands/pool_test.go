package commands_test

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/outcome"
)

// agentPids are the pids of the agents held, and the spare's.
func agentPids(s *service) []int {
	var pids []int
	for _, a := range s.Agents() {
		pids = append(pids, a.Pid)
	}
	return pids
}

// A conversation keeps its agent: the follow-up goes to the same process,
// warm, and recalls the first message.
func TestConversationKeepsItsAgent(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{opts: commands.Options{Warm: true, WarmConversations: 2}})
	first := s.run(t, commands.Request{Prompt: "say one"})
	next := s.run(t, commands.Request{Prompt: "recall", SessionID: first.SessionID})
	if first.Warm || !next.Warm || next.Pid != first.Pid || !strings.Contains(next.Result.Text, "earlier: say one") {
		t.Errorf("first warm %v pid %d; follow-up warm %v pid %d %q; want the follow-up warm in the same process, recalling",
			first.Warm, first.Pid, next.Warm, next.Pid, next.Result.Text)
	}
	agents := s.Agents()
	if len(agents) != 1 || agents[0].State != "idle" || agents[0].Pid != first.Pid || *agents[0].SessionID != first.SessionID {
		t.Errorf("Agents() = %+v; want the conversation's agent, idle", agents)
	}
}

// A new conversation takes the spare, which is warm; a new spare follows
// its turn.
func TestSpare(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{opts: commands.Options{Warm: true, Prewarm: true, WarmConversations: 2}})
	vmdtest.Eventually(t, "the spare", func() bool { return len(s.Agents()) == 1 })
	spare := s.Agents()[0]
	if spare.SessionID != nil || (spare.State != "spare" && spare.State != "starting") {
		t.Fatalf("Agents() = %+v; want a spare", s.Agents())
	}
	rec := s.run(t, commands.Request{Prompt: "say hi"})
	if !rec.Warm || rec.Pid != spare.Pid {
		t.Errorf("a new conversation = warm %v pid %d; want it served warm by the spare (pid %d)", rec.Warm, rec.Pid, spare.Pid)
	}
	vmdtest.Eventually(t, "a new spare and the conversation's agent", func() bool {
		pids := agentPids(s)
		return len(pids) == 2 && slices.Contains(pids, rec.Pid)
	})
}

// Past warm_conversations, the least recently used idle agent is closed;
// its next message resumes the session in a new agent, never two at once.
func TestEvictionAndResume(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{opts: commands.Options{Warm: true, WarmConversations: 1}})
	a := s.run(t, commands.Request{Prompt: "say a"})
	b := s.run(t, commands.Request{Prompt: "say b"})
	// Listed as closing until its sweep is over, then not at all.
	vmdtest.Eventually(t, "the first agent closed, b's alone left", func() bool {
		pids := agentPids(s)
		return syscall.Kill(a.Pid, 0) != nil && len(pids) == 1 && pids[0] == b.Pid
	})
	again := s.run(t, commands.Request{Prompt: "recall", SessionID: a.SessionID})
	if again.Outcome != outcome.Succeeded || again.Warm || again.Pid == a.Pid || !strings.Contains(again.Result.Text, "earlier: say a") {
		t.Errorf("a's next message = %s warm %v pid %d %q; want a cold resume in a new process, recalling",
			again.Outcome, again.Warm, again.Pid, again.Result.Text)
	}
}

// An agent idle for warm_idle is closed, and not before: idle time counts
// from its answer, not from the tick before it. The turn takes 0.9 s, so
// that it ends just before the service's first tick (a second after its
// start), where an agent charged the whole tick would close at once. The
// bound is one load cannot break: the turn's sleep and the idle time are
// both real time, and load only delays the close.
func TestIdleAgentClosed(t *testing.T) {
	t.Parallel()
	const idle, turn = time.Second, 900 * time.Millisecond
	s := newService(t, setup{opts: commands.Options{Warm: true, WarmConversations: 2, WarmIdle: idle}})
	asked := time.Now()
	rec := s.run(t, commands.Request{Prompt: "sleep " + turn.String() + "\nsay hi"})
	// Listed as closing until its sweep is over, then not at all.
	vmdtest.Eventually(t, "the idle agent closed", func() bool { return syscall.Kill(rec.Pid, 0) != nil && len(s.Agents()) == 0 })
	if waited := time.Since(asked); waited < turn+idle {
		t.Errorf("the agent was closed %v after a %v turn was sent; want warm_idle (%v) of waiting after the turn", waited, turn, idle)
	}
}

// An agent that dies between turns is replaced quietly: the next message
// of its conversation resumes it.
func TestAgentDiesBetweenTurns(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{opts: commands.Options{Warm: true, WarmConversations: 2}})
	first := s.run(t, commands.Request{Prompt: "say one"})
	if err := syscall.Kill(first.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	next := s.run(t, commands.Request{Prompt: "recall", SessionID: first.SessionID})
	if next.Outcome != outcome.Succeeded || next.Pid == first.Pid || !strings.Contains(next.Result.Text, "earlier: say one") {
		t.Errorf("message after its agent died = %s pid %d %q; want it resumed in a new agent", next.Outcome, next.Pid, next.Result.Text)
	}
}

// The drain closes idle agents and the spare: nothing is left running.
func TestDrainClosesAgents(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{opts: commands.Options{Warm: true, Prewarm: true, WarmConversations: 2}})
	rec := s.run(t, commands.Request{Prompt: "say hi"})
	vmdtest.Eventually(t, "the spare", func() bool { return len(s.Agents()) == 2 })
	pids := agentPids(s)
	s.Drain(time.Now().Add(time.Minute))
	vmdtest.Within(t, "the drain", s.Done())
	for _, pid := range append(pids, rec.Pid) {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("agent %d alive after the drain", pid)
		}
	}
}

// Processes that have exited are forgotten at the next tick, with no one
// reading /status or the metrics: a cold vmd does not keep one for every
// command it has run.
func TestExitedProcessesForgotten(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{})
	for i := range 3 {
		c := s.submit(t, commands.Request{Prompt: "sleep 2s\nsay hi"}).Command
		vmdtest.Eventually(t, fmt.Sprintf("command %d's process tracked", i), func() bool { return s.Tracked() == 1 })
		vmdtest.Within(t, "the command to end", c.Done())
	}
	vmdtest.Eventually(t, "the exited processes forgotten", func() bool { return s.Tracked() == 0 })
}
