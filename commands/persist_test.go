package commands_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/outcome"
	"github.com/vmd-dev/vmd/store"
)

// An end the store will not take is kept: the answer goes out, the
// command answers as ended from memory (Get, a retry of its key), and the
// end is written once the store takes writes again.
func TestEndKeptUntilStored(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{disk: true})
	ctx := context.Background()
	req := commands.Request{Prompt: "say started\nsleep 2s\nsay one", Key: "k1", BodyHash: []byte{1}}
	c := s.submit(t, req).Command
	vmdtest.Eventually(t, "the command to start", func() bool { return len(c.Record().Events) > 1 })
	unlock := s.lock(t)
	status, body := c.Answer()
	if status != 200 || !strings.Contains(string(body), "one") {
		t.Fatalf("answer while the store is locked = %d %s; want 200", status, body)
	}
	vmdtest.Eventually(t, "a write of the end to fail", func() bool { return s.log.Logged("cannot store the end of the command; it is kept and written again") })
	select {
	case <-c.Done():
		t.Fatal("Done while the end cannot be stored")
	default:
	}
	if got, err := s.Get(ctx, c.ID()); err != nil || got.State != store.State(outcome.Succeeded) || got.Status != 200 {
		t.Errorf("Get while the end is kept = %s %d, %v; want it ended", got.State, got.Status, err)
	}
	if retry, err := s.Submit(ctx, req); err != nil || retry.Command != c || !retry.Attached {
		t.Errorf("a retry of the key while the end is kept = %+v, %v; want the same command", retry, err)
	}
	unlock()
	vmdtest.Within(t, "the end to be stored", c.Done())
	if rec, err := s.st.Get(ctx, c.ID()); err != nil || rec.State != store.State(outcome.Succeeded) || string(rec.Body) != string(body) {
		t.Errorf("stored record = %s %s, %v; want the end and its answer", rec.State, rec.Body, err)
	}
	if retry, err := s.Submit(ctx, req); err != nil || retry.Ended == nil || retry.Ended.ID != c.ID() {
		t.Errorf("a retry once stored = %+v, %v; want the stored record", retry, err)
	}
}

// A keyed request whose key the store cannot record is not run: it could
// run twice. Once the store works, the key runs, once.
func TestKeyedRefusedWhenStoreFails(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{disk: true})
	ctx := context.Background()
	unlock := s.lock(t)
	req := commands.Request{Prompt: "say once", Key: "k2", BodyHash: []byte{2}}
	if sub, err := s.Submit(ctx, req); !errors.Is(err, commands.ErrStoreUnavailable) {
		t.Fatalf("keyed Submit while the store takes no writes = %+v, %v; want ErrStoreUnavailable", sub, err)
	}
	if s.Busy() || s.log.Logged("spawn") {
		t.Error("a refused command took the slot or started a CLI")
	}
	unlock()
	first := s.run(t, req)
	again, err := s.Submit(ctx, req)
	if err != nil || again.Ended == nil || again.Ended.ID != first.ID || first.Outcome != outcome.Succeeded {
		t.Errorf("the key once the store works: %s, then %+v, %v; want it run once, then replayed", first.Outcome, again, err)
	}
}

// A request without a key still runs when its record cannot be created;
// its answer says so, and it is stored whole once the store works.
func TestUnkeyedRunsUnstored(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{disk: true})
	ctx := context.Background()
	unlock := s.lock(t)
	c := s.submit(t, commands.Request{Prompt: "say hi"}).Command
	if v := c.View(); !strings.Contains(v.Warning, "could not record this command") {
		t.Errorf("View().Warning = %q; want it to say the record is not stored", v.Warning)
	}
	_, body := c.Answer()
	if !strings.Contains(string(body), "could not record this command") {
		t.Errorf("answer = %s; want a warning that it is not stored", body)
	}
	if got, err := s.Get(ctx, c.ID()); err != nil || got.ID != c.ID() {
		t.Errorf("Get of the unstored command = %+v, %v; want it from memory", got, err)
	}
	unlock()
	vmdtest.Within(t, "the command to be stored", c.Done())
	rec, err := s.st.Get(ctx, c.ID())
	evs, _ := s.Events(ctx, c.ID(), 0)
	if err != nil || rec.State != store.State(outcome.Succeeded) || len(evs) == 0 {
		t.Errorf("stored later = %+v, %d events, %v; want it whole", rec, len(evs), err)
	}
}

// A key the store cannot look up is not run either.
func TestKeyLookupFails(t *testing.T) {
	t.Parallel()
	s := newService(t, setup{disk: true})
	s.run(t, commands.Request{Prompt: "say first", Key: "seen", BodyHash: []byte{1}})
	s.st.Close() // every read fails from here on
	for _, key := range []string{"seen", "unseen"} {
		if sub, err := s.Submit(context.Background(), commands.Request{Prompt: "say again", Key: key, BodyHash: []byte{1}}); !errors.Is(err, commands.ErrStoreUnavailable) {
			t.Errorf("Submit of key %q with the store unreadable = %+v, %v; want ErrStoreUnavailable", key, sub, err)
		}
	}
	if s.log.Count("spawn") != 1 {
		t.Errorf("%d CLIs started; want the first command's alone", s.log.Count("spawn"))
	}
}

// A keyed command whose record the store will not take holds the slot
// until Submit gives up on it: a cancel or a drain that meets it then
// returns, and it never runs. The drain's deadline is an hour away: a
// drain that waited for the command's answer would not finish.
func TestCancelMeetsUnrecordedCommand(t *testing.T) {
	t.Parallel()
	for _, stop := range []string{"cancel", "drain"} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			s := newService(t, setup{disk: true})
			unlock := s.lock(t)
			defer unlock()
			refused := make(chan error, 1)
			go func() {
				_, err := s.Submit(context.Background(), commands.Request{Prompt: "say never", Key: "k3", BodyHash: []byte{3}})
				refused <- err
			}()
			vmdtest.Eventually(t, "the command to take the slot", s.Busy)
			if stop == "cancel" {
				cancelled := make(chan bool, 1)
				go func() { _, ok := s.Cancel(); cancelled <- ok }()
				if ok := vmdtest.Within(t, "Cancel to return", cancelled); ok {
					t.Errorf("Cancel of a command the store could not record = stopped; want nothing stopped")
				}
			}
			s.Drain(time.Now().Add(time.Hour))
			if err := vmdtest.Within(t, "Submit to give up", refused); !errors.Is(err, commands.ErrStoreUnavailable) {
				t.Errorf("Submit = %v; want ErrStoreUnavailable", err)
			}
			vmdtest.Within(t, "the drain to finish", s.Done())
			if n := s.log.Count("spawn"); n != 0 {
				t.Errorf("%d CLIs started; want none", n)
			}
		})
	}
}
