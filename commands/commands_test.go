package commands_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/store"
)

var fake string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.FakeClaude}, []*string{&fake})
}

func TestRecord(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake})
	first, err := s.Commands.Start(commands.Request{Prompt: "say one\ntool Bash\nsay two"})
	if err != nil {
		t.Fatal(err)
	}
	rec := first.Wait()
	if rec.State != commands.Succeeded || rec.Result == nil || rec.SessionID == "" || rec.Pid == 0 ||
		rec.PromptLength != len("say one\ntool Bash\nsay two") || rec.Ended.Before(rec.Started) || rec.Started.Before(rec.Created) {
		t.Errorf("record = %+v; want a succeeded command with its session, pid, length and times", rec)
	}
	var kinds []string
	for _, e := range rec.Events {
		kinds = append(kinds, map[commands.EventKind]string{commands.EventStart: "start", commands.EventMessage: "message"}[e.Kind])
	}
	if got := strings.Join(kinds, ","); !strings.HasPrefix(got, "start,message") {
		t.Errorf("record events = %s; want start, then messages", got)
	}
	if got, err := s.Commands.Get(context.Background(), rec.ID); err != nil || got.State != commands.Succeeded {
		t.Errorf("Get(%s) = %+v, %v; want the record", rec.ID, got, err)
	}
	// Every event is stored, the last ones with the end.
	if stored, err := s.Commands.Events(context.Background(), rec.ID, 0); err != nil || len(stored) != len(rec.Events) ||
		stored[len(stored)-1].Seq != rec.Events[len(rec.Events)-1].Seq {
		t.Errorf("stored events = %d, %v; want the record's %d", len(stored), err, len(rec.Events))
	}
	second, err := s.Commands.Start(commands.Request{Prompt: "exit 2"})
	if err != nil {
		t.Fatal(err)
	}
	if rec2 := second.Wait(); rec2.State != commands.Failed || rec2.ID <= rec.ID {
		t.Errorf("second record = %s %s; want failed, with an id after %s", rec2.ID, rec2.State, rec.ID)
	}
}

func TestBusyAndCancel(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake})
	c, err := s.Commands.Start(commands.Request{Prompt: "say started\nsleep 1h"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commands.Start(commands.Request{Prompt: "say two"}); !errors.Is(err, commands.ErrBusy) {
		t.Errorf("second Start = %v; want ErrBusy", err)
	}
	if cur, ok := s.Commands.Current(); !ok || cur.ID != c.ID() {
		t.Errorf("Current() = %+v, %v; want the running command", cur, ok)
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
	if _, ok := s.Commands.Cancel(); !ok {
		t.Fatal("Cancel() found nothing running")
	}
	if rec := c.Record(); rec.State != commands.Cancelled || !strings.Contains(rec.Result.Text, "started") {
		t.Errorf("cancelled record = %s %q; want cancelled with the text so far", rec.State, rec.Result.Text)
	}
	if _, ok := s.Commands.Current(); ok {
		t.Error("Current() after Cancel returned; want none")
	}
	if _, ok := s.Commands.Cancel(); ok {
		t.Error("Cancel() with nothing running = true")
	}
	var texts []string
	for _, e := range sub.Take() {
		texts = append(texts, e.Text)
	}
	if !strings.Contains(strings.Join(texts, ""), "started") {
		t.Errorf("subscriber saw %q; want the message from before it subscribed too", texts)
	}
}

// With a disk below min_free_disk, Start refuses before taking the slot,
// with a *StorageError naming the filesystem.
func TestDiskLow(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake, MinFreeDisk: 1 << 60}) // no disk has an EiB free
	c, err := s.Commands.Start(commands.Request{Prompt: "say hi"})
	var storage *commands.StorageError
	if c != nil || !errors.As(err, &storage) || !strings.Contains(err.Error(), "low disk space on the workspace") {
		t.Fatalf("Start with the disk low = %v, %v; want a *StorageError naming the workspace", c, err)
	}
	if s.Commands.Busy() || s.Supervisor.Stats().Busy {
		t.Error("the slot was taken by a refused command")
	}
}

// A command whose end is visible (its record says how it ended) but which
// is still writing that end must not make the next Submit busy: a client
// that saw the end and sends the next command at once gets the slot.
func TestSubmitAfterVisibleEnd(t *testing.T) {
	rendering, release := make(chan struct{}), make(chan struct{})
	var once bool
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake, Commands: commands.Options{
		Render: func(commands.Record) (int, []byte) {
			if !once { // the first command's end waits here, already visible
				once = true
				close(rendering)
				<-release
			}
			return 200, []byte(`{}`)
		}}})
	first, err := s.Commands.Start(commands.Request{Prompt: "say one"})
	if err != nil {
		t.Fatal(err)
	}
	vmdtest.Within(t, "the first command's end to be rendered", rendering)
	if rec := first.Record(); rec.State != commands.Succeeded {
		t.Fatalf("record while its end is written = %s; want succeeded", rec.State)
	}
	// The end is released a moment after the next Start is sent: a Start
	// that answers busy at once fails the test (the moment only ever
	// hides that, never fails a right one).
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(release)
	}()
	second, err := s.Commands.Start(commands.Request{Prompt: "say two"})
	if err != nil {
		t.Fatalf("Start after the first command's end was visible = %v; want it to run", err)
	}
	if rec := second.Wait(); rec.State != commands.Succeeded {
		t.Errorf("second command = %s; want succeeded", rec.State)
	}
}

// An end that cannot be written (a stuck disk) holds the next Submit for a
// moment only: it is told busy, as it would be while the command ran.
func TestSubmitAfterStuckEnd(t *testing.T) {
	rendering, release := make(chan struct{}), make(chan struct{})
	var once bool
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake, Commands: commands.Options{
		Render: func(commands.Record) (int, []byte) {
			if !once {
				once = true
				close(rendering)
				<-release
			}
			return 200, []byte(`{}`)
		}}})
	if _, err := s.Commands.Start(commands.Request{Prompt: "say one"}); err != nil {
		t.Fatal(err)
	}
	vmdtest.Within(t, "the first command's end to be rendered", rendering)
	got := make(chan error, 1)
	go func() {
		_, err := s.Commands.Start(commands.Request{Prompt: "say two"})
		got <- err
	}()
	if err := vmdtest.Within(t, "Start while the end is stuck", got); !errors.Is(err, commands.ErrBusy) {
		t.Errorf("Start while the first command's end is stuck = %v; want ErrBusy", err)
	}
	close(release)
}

// The answer goes out while the end is being written: a store slow to take
// the end (here another connection holds its write lock) holds back
// neither the answer nor the slot. Until the end is stored, a retry of
// the key still gets the command, and reads of its id show it ended.
func TestAnswerBeforeStored(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var lock *sql.Conn
	locked := false
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake, StateDir: dir, Commands: commands.Options{
		Render: func(commands.Record) (int, []byte) {
			if !locked { // the first end: the store is locked before it is written
				locked = true // Render runs on the command's goroutine: no Fatal here
				if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
					t.Errorf("cannot lock the store: %v", err)
				}
			}
			return 200, []byte(`{"text":"one"}`)
		}}})
	lock = storeConn(t, dir)
	first := commands.Request{Prompt: "say one", Key: "k1", BodyHash: []byte{1}}
	sub, err := s.Commands.Submit(first)
	if err != nil {
		t.Fatal(err)
	}
	c := sub.Command
	answered := make(chan string, 1)
	go func() {
		_, body := c.Answer()
		answered <- string(body)
	}()
	if body := vmdtest.Within(t, "the answer while the store is locked", answered); body != `{"text":"one"}` {
		t.Errorf("answer = %s", body)
	}
	select {
	case <-c.Done():
		t.Fatal("Done before the end was stored")
	default:
	}
	if rec, err := s.Store.Get(ctx, c.ID()); err != nil || rec.State != store.Running {
		t.Errorf("stored record while locked = %s, %v; want running", rec.State, err)
	}
	if cur, ok := s.Commands.Current(); ok {
		t.Errorf("Current once answered = %s; want none", cur.ID)
	}
	if got, err := s.Commands.Get(ctx, c.ID()); err != nil || got.State != store.Succeeded {
		t.Errorf("Get while the end is stored = %s, %v; want succeeded", got.State, err)
	}
	if retry, err := s.Commands.Submit(first); err != nil || retry.Command != c || !retry.Attached {
		t.Errorf("a retry of the key while the end is stored = %+v, %v; want the same command", retry, err)
	}
	// The next command takes the slot at once; its own record waits for
	// the lock, so it is seen running, held, and let go with the lock.
	_, second := submitHeld(t, s, commands.Request{Prompt: "say two"})
	sqlExec(t, lock, "ROLLBACK")
	vmdtest.Within(t, "the end to be stored", c.Done())
	if r := vmdtest.Within(t, "the next command", second); r.err != nil || r.sub.Command.Wait().State != commands.Succeeded {
		t.Errorf("next command = %+v, %v; want it to run and succeed", r.sub, r.err)
	}
	if rec, err := s.Store.Get(ctx, c.ID()); err != nil || rec.State != store.Succeeded || string(rec.Body) != `{"text":"one"}` {
		t.Errorf("stored record = %s %s, %v; want succeeded with the answer", rec.State, rec.Body, err)
	}
}

// The CLI starts while the record is written but gets its prompt only once
// the record exists: with the store locked by another connection, the
// fake has started and said nothing; released, it runs, and the record
// holds every event.
func TestPromptAfterRecord(t *testing.T) {
	s, lock := lockedStack(t)
	ctx := context.Background()
	held, started := submitHeld(t, s, commands.Request{Prompt: "say one"})
	pid := held.Pid
	// A CLI given its prompt says "one" within milliseconds; the moment
	// only ever hides a failure, never fails a right one.
	time.Sleep(100 * time.Millisecond)
	if rec, _ := s.Commands.Current(); len(rec.Events) != 0 {
		t.Fatalf("the CLI made events before its record was written: %+v", rec.Events)
	}
	sqlExec(t, lock, "ROLLBACK")
	r := vmdtest.Within(t, "Start once the store is free", started)
	if r.err != nil {
		t.Fatalf("Start = %v", r.err)
	}
	c := r.sub.Command
	if rec := c.Wait(); rec.State != commands.Succeeded || rec.Pid != pid {
		t.Fatalf("command = %s (pid %d); want succeeded (pid %d)", rec.State, rec.Pid, pid)
	}
	if rec, err := s.Store.Get(ctx, c.ID()); err != nil || !rec.StartedAt.Equal(c.Record().Started) {
		t.Errorf("stored start = %v, %v; want the CLI's start %v", rec.StartedAt, err, c.Record().Started)
	}
	stored, err := s.Store.Events(ctx, c.ID(), 0)
	if err != nil || len(stored) == 0 || len(stored) != len(c.Record().Events) {
		t.Errorf("stored events = %d, %v; want the record's %d", len(stored), err, len(c.Record().Events))
	}
}

// A key another writer takes while the record is being written: the CLI
// started for it is stopped before it gets its prompt, and the request
// gets the record that holds the key.
func TestKeyTakenWhileRecording(t *testing.T) {
	s, lock := lockedStack(t)
	ctx := context.Background()
	held, got := submitHeld(t, s, commands.Request{Prompt: "say one", Key: "k", BodyHash: []byte{1}})
	sqlExec(t, lock, `INSERT INTO commands (id, state, created_at, idem_key, body_hash, status, answer)
		VALUES ('other', 'succeeded', 1, 'k', x'01', 200, '{"text":"earlier"}')`)
	sqlExec(t, lock, "COMMIT")
	r := vmdtest.Within(t, "Submit once the key is taken", got)
	if r.err != nil || r.sub.Command != nil || r.sub.Ended == nil || r.sub.Ended.ID != "other" {
		t.Fatalf("Submit = %+v, %v; want the record holding the key", r.sub, r.err)
	}
	if _, ok := s.Commands.Current(); ok || s.Commands.Busy() {
		t.Error("the slot is still held after the command was discarded")
	}
	if _, err := s.Store.Get(ctx, held.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the discarded command's record: %v; want none", err)
	}
	if len(held.Events) != 0 {
		t.Errorf("the discarded CLI made events: %+v", held.Events)
	}
	if err := syscall.Kill(held.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the discarded CLI (pid %d) is still there: %v", held.Pid, err)
	}
}

// storeConn is a connection of the test's own to the store in dir, opened
// once vmd's store has made the file: it holds the store's write lock
// while a test needs vmd's writes to wait.
func storeConn(t *testing.T, dir string) *sql.Conn {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, store.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// lockedStack starts a stack with its store on disk and returns it with
// a connection holding the store's write lock (let go with ROLLBACK or
// COMMIT).
func lockedStack(t *testing.T) (*vmdtest.Stack, *sql.Conn) {
	t.Helper()
	dir := t.TempDir()
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake, StateDir: dir})
	lock := storeConn(t, dir)
	sqlExec(t, lock, "BEGIN IMMEDIATE")
	return s, lock
}

// sqlExec runs q on conn or fails the test.
func sqlExec(t *testing.T, conn *sql.Conn, q string) {
	t.Helper()
	if _, err := conn.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// submitted is what Submit returned.
type submitted struct {
	sub commands.Submission
	err error
}

// submitHeld submits req in the background while the test holds the
// store's write lock, and returns once its CLI runs (its record not yet
// written), with the command as Current shows it; Submit's result comes
// on the channel once the lock is let go.
func submitHeld(t *testing.T, s *vmdtest.Stack, req commands.Request) (commands.Record, <-chan submitted) {
	t.Helper()
	got := make(chan submitted, 1)
	go func() {
		sub, err := s.Commands.Submit(req)
		got <- submitted{sub, err}
	}()
	var held commands.Record
	vmdtest.Eventually(t, "the CLI to start while its record cannot be written", func() bool {
		var ok bool
		held, ok = s.Commands.Current()
		return ok && held.Pid != 0 && held.PromptLength == len(req.Prompt)
	})
	return held, got
}
