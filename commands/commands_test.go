package commands_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

func TestRecord(t *testing.T) {
	t.Parallel()
	for _, warm := range []bool{false, true} {
		s := newService(t, setup{opts: commands.Options{Warm: warm}})
		rec := s.run(t, commands.Request{Prompt: "say one\ntool Bash\nsay two"})
		if rec.Outcome != outcome.Succeeded || rec.Result == nil || rec.SessionID == "" || rec.Pid == 0 ||
			rec.PromptLength != len("say one\ntool Bash\nsay two") || rec.Ended.Before(rec.Started) || rec.Started.Before(rec.Created) {
			t.Errorf("warm %v: record = %+v; want a succeeded command with its session, pid, length and times", warm, rec)
		}
		var kinds []string
		for _, e := range rec.Events {
			kinds = append(kinds, e.Kind.String())
		}
		if got := strings.Join(kinds, ","); !strings.HasPrefix(got, "start,message") {
			t.Errorf("warm %v: record events = %s; want start, then messages", warm, got)
		}
		if got, err := s.Get(context.Background(), rec.ID); err != nil || got.State != store.State(outcome.Succeeded) {
			t.Errorf("warm %v: Get(%s) = %+v, %v; want the record", warm, rec.ID, got, err)
		}
		// Every event is stored, the last ones with the end.
		if stored, err := s.Events(context.Background(), rec.ID, 0); err != nil || len(stored) != len(rec.Events) ||
			stored[len(stored)-1].Seq != rec.Events[len(rec.Events)-1].Seq {
			t.Errorf("warm %v: stored events = %d, %v; want the record's %d", warm, len(stored), err, len(rec.Events))
		}
		rec2 := s.run(t, commands.Request{Prompt: "exit 2"})
		if rec2.State != store.State(outcome.Failed) || rec2.ID <= rec.ID {
			t.Errorf("warm %v: second record = %s %s; want failed, with an id after %s", warm, rec2.ID, rec2.State, rec.ID)
		}
	}
}

func TestBusyAndCancel(t *testing.T) {
	t.Parallel()
	for _, warm := range []bool{false, true} {
		s := newService(t, setup{opts: commands.Options{Warm: warm}})
		c := s.submit(t, commands.Request{Prompt: "say started\nsleep 1h"}).Command
		if _, err := s.Submit(context.Background(), commands.Request{Prompt: "say two"}); !errors.Is(err, commands.ErrBusy) {
			t.Errorf("warm %v: second Submit = %v; want ErrBusy", warm, err)
		}
		if cur, ok := s.Current(); !ok || cur.ID != c.ID() {
			t.Errorf("warm %v: Current() = %+v, %v; want the running command", warm, cur, ok)
		}
		sub := c.Subscribe()
		vmdtest.Eventually(t, "the first message", func() bool {
			for _, e := range c.Record().Events {
				if strings.Contains(e.Text, "started") {
					return true
				}
			}
			return false
		})
		if _, ok := s.Cancel(); !ok {
			t.Fatal("Cancel() found nothing running")
		}
		if rec := c.Record(); rec.Outcome != outcome.Cancelled || !strings.Contains(rec.Result.Text, "started") {
			t.Errorf("warm %v: cancelled record = %s %q; want cancelled with the text so far", warm, rec.Outcome, rec.Result.Text)
		}
		if _, ok := s.Current(); ok {
			t.Errorf("warm %v: Current() after Cancel returned; want none", warm)
		}
		if _, ok := s.Cancel(); ok {
			t.Errorf("warm %v: Cancel() with nothing running = true", warm)
		}
		var texts []string
		for _, e := range sub.Take() {
			texts = append(texts, e.Text)
		}
		if !strings.Contains(strings.Join(texts, ""), "started") {
			t.Errorf("warm %v: subscriber saw %q; want the message from before it subscribed too", warm, texts)
		}
		// Warm, the cancel interrupted the turn: the conversation's agent
		// serves the next message at once.
		next := s.run(t, commands.Request{Prompt: "say next", SessionID: c.Record().SessionID})
		if next.Outcome != outcome.Succeeded || next.Warm != warm {
			t.Errorf("warm %v: the next message = %s, warm %v; want succeeded, warm %v", warm, next.Outcome, next.Warm, warm)
		}
	}
}

// With a disk below min_free_disk, Submit refuses before taking the slot,
// with a *StorageError.
func TestDiskLow(t *testing.T) {
	t.Parallel()
	low := errors.New("low disk space on the workspace filesystem")
	s := newService(t, setup{opts: commands.Options{Disk: func() error { return low }}})
	_, err := s.Submit(context.Background(), commands.Request{Prompt: "say hi"})
	var storage *commands.StorageError
	if !errors.As(err, &storage) || !errors.Is(err, low) {
		t.Fatalf("Submit with the disk low = %v; want a *StorageError", err)
	}
	if s.Busy() {
		t.Error("the slot was taken by a refused command")
	}
}

// Asked to, a command waits for the running one; the queue runs in order,
// each command's timeout from its own start, and is bounded.
func TestQueue(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{opts: commands.Options{QueueMax: 2}})
	first := s.submit(t, commands.Request{Prompt: "sleep 1s\nsay first"}).Command
	second := s.submit(t, commands.Request{Prompt: "say second\nsleep 200ms", Queue: true, Timeout: time.Second}).Command
	third := s.submit(t, commands.Request{Prompt: "say third", Queue: true}).Command
	if rec := second.Record(); rec.State != commands.Queued || !rec.Started.IsZero() {
		t.Errorf("a queued record = %s started %v; want queued, not started", rec.State, rec.Started)
	}
	if got, err := s.Submit(context.Background(), commands.Request{Prompt: "say fourth", Queue: true}); !errors.Is(err, commands.ErrQueueFull) {
		t.Errorf("Submit past queue_max = %+v, %v; want ErrQueueFull", got, err)
	}
	if s.Queued() != 2 {
		t.Errorf("Queued() = %d; want 2", s.Queued())
	}
	var ends []commands.Record
	for _, c := range []*commands.Command{first, second, third} {
		vmdtest.Within(t, "the queue to run", c.Done())
		ends = append(ends, c.Record())
	}
	for i, rec := range ends {
		if rec.Outcome != outcome.Succeeded {
			t.Errorf("command %d = %s; want succeeded (a timeout counted from its submit would have cut the second)", i, rec.Outcome)
		}
		if i > 0 && rec.Started.Before(ends[i-1].Ended) {
			t.Errorf("command %d started at %v, before the one before it ended at %v", i, rec.Started, ends[i-1].Ended)
		}
	}
}

// A queued command cancelled never runs; vmd's stop ends queued commands
// drained, never run either.
func TestQueuedNeverRun(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{})
	running := s.submit(t, commands.Request{Prompt: "sleep 1h"}).Command
	queued := s.submit(t, commands.Request{Prompt: "say never", Queue: true}).Command
	if !queued.Cancel() {
		t.Error("Cancel of a queued command = false")
	}
	rec := queued.Record()
	if rec.Outcome != outcome.Cancelled || rec.Pid != 0 || len(rec.Events) != 0 || rec.Result.Text != "" {
		t.Errorf("cancelled queued command = %s pid %d events %d %q; want cancelled, never run", rec.Outcome, rec.Pid,
			len(rec.Events), rec.Result.Text)
	}
	if status, body := queued.Answer(); status != commands.StatusCancelled || !strings.Contains(string(body), `"cancelled"`) {
		t.Errorf("its answer = %d %s; want 499 cancelled", status, body)
	}
	drained := s.submit(t, commands.Request{Prompt: "say never", Queue: true}).Command
	s.Drain(time.Now())
	for _, c := range []*commands.Command{running, drained} {
		vmdtest.Within(t, "the drain to end the command", c.Done())
		if rec := c.Record(); rec.Outcome != outcome.Drained {
			t.Errorf("command %s at the drain = %s; want drained", c.ID(), rec.Outcome)
		}
	}
	if rec := drained.Record(); rec.Pid != 0 {
		t.Errorf("the queued command ran (pid %d) in the drain", rec.Pid)
	}
	if _, err := s.Submit(context.Background(), commands.Request{Prompt: "say late"}); !errors.Is(err, commands.ErrDraining) {
		t.Errorf("Submit while draining = %v; want ErrDraining", err)
	}
}

// The spend limit refuses new commands once those within the window cost
// it, saying when to try again.
func TestSpendLimit(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{opts: commands.Options{SpendLimitUSD: 0.02, SpendWindow: time.Hour}})
	for range 2 { // the fake says each command cost $0.0123
		s.run(t, commands.Request{Prompt: "say hi"})
	}
	_, err := s.Submit(context.Background(), commands.Request{Prompt: "say one more"})
	var spend *commands.SpendError
	if !errors.As(err, &spend) || spend.Spent < 0.0245 || spend.RetryAfter < 59*time.Minute || spend.RetryAfter > time.Hour {
		t.Fatalf("Submit past the spend limit = %v; want a *SpendError retried in about an hour", err)
	}
	if spent, limit, _ := s.Spend(); spent < 0.0245 || limit != 0.02 {
		t.Errorf("Spend() = %v, %v; want about 0.0246 of 0.02", spent, limit)
	}
}

// The process of a cancelled cold command is killed; nothing of a command
// outlives it.
func TestColdProcessGone(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{})
	c := s.submit(t, commands.Request{Prompt: "say up\nsleep 1h"}).Command
	vmdtest.Eventually(t, "the CLI to start", func() bool { return c.Record().Pid != 0 })
	pid := c.Record().Pid
	c.Cancel()
	vmdtest.Eventually(t, "the CLI to be gone", func() bool { return syscall.Kill(pid, 0) != nil })
}

// Resume of a session the CLI does not have: session_not_found, cold and
// warm.
func TestSessionNotFound(t *testing.T) {
	t.Parallel()
	for _, warm := range []bool{false, true} {
		s := newService(t, setup{opts: commands.Options{Warm: warm}, agent: agent.Options{}})
		rec := s.run(t, commands.Request{Prompt: "say hi", SessionID: "00000000-0000-4000-8000-000000000000"})
		if rec.Outcome != outcome.SessionNotFound {
			t.Errorf("warm %v: resume of an unknown session = %s; want session_not_found", warm, rec.Outcome)
		}
	}
}
