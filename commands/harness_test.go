package commands_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/config"
	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
	"github.com/vmd-dev/vmd/store"
	"github.com/vmd-dev/vmd/supervisor"
)

var fake string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.FakeClaude}, []*string{&fake})
}

// service is a commands service over the fake CLI, its own supervisor,
// images store and command store, run as its actor; it drains when the
// test ends.
type service struct {
	*commands.Service
	st  *store.Store
	sup *supervisor.Supervisor
	dir string // the store's directory; "" in memory
	log *vmdtest.LogBuffer
}

// setup is how a test wants its service.
type setup struct {
	opts  commands.Options
	agent agent.Options
	disk  bool // the store on disk, with a short busy timeout
}

func newService(t *testing.T, su setup) *service {
	t.Helper()
	s := &service{log: &vmdtest.LogBuffer{}}
	log := hclog.New(&hclog.LoggerOptions{Output: s.log, Level: hclog.Debug, JSONFormat: true})
	var err error
	if s.sup, err = supervisor.New(supervisor.Config{TempRoot: t.TempDir()}, log); err != nil {
		t.Fatal(err)
	}
	img, err := images.Open(filepath.Join(t.TempDir(), "images"), time.Hour, log)
	if err != nil {
		t.Fatal(err)
	}
	dir := store.Memory
	if su.disk {
		s.dir = t.TempDir()
		dir = s.dir
	}
	if s.st, err = store.Open(context.Background(), dir, store.Options{BusyTimeout: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ao := su.agent
	ao.Bin, ao.Args = fake, config.DefaultClaudeArgs
	ao.Env = vmdtest.Environ("HOME="+t.TempDir(), "IMAGES_DIR="+img.Dir())
	ao.MaxOutput = 1 << 20
	o := su.opts
	o.Store = s.st
	if o.CommandTimeout == 0 {
		o.CommandTimeout = 20 * time.Second
	}
	if o.QueueMax == 0 {
		o.QueueMax = config.DefaultQueueMax
	}
	s.Service = commands.New(agent.New(s.sup, img, log, ao), log, o)
	done := make(chan error, 3)
	go func() { done <- s.sup.Run() }()
	go func() { done <- img.Run() }()
	go func() { done <- s.Run() }()
	t.Cleanup(func() {
		s.Drain(time.Now().Add(5 * time.Second))
		vmdtest.Within(t, "the service to drain", s.Done())
		s.sup.Stop()
		img.Stop()
		for range 3 {
			if err := vmdtest.Within(t, "the actors to return", done); err != nil {
				t.Error(err)
			}
		}
		s.st.Close()
		if t.Failed() {
			t.Logf("log:\n%s", s.log)
		}
	})
	return s
}

// submit submits req, failing the test on an error.
func (s *service) submit(t *testing.T, req commands.Request) commands.Submission {
	t.Helper()
	sub, err := s.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("Submit(%q) = %v", req.Prompt, err)
	}
	return sub
}

// run submits prompt and waits for its end to be stored.
func (s *service) run(t *testing.T, req commands.Request) commands.Record {
	t.Helper()
	c := s.submit(t, req).Command
	vmdtest.Within(t, "the command to end", c.Done())
	return c.Record()
}

// lock holds the store's write lock from a connection of the test's own
// until unlock is called (or the test ends): the service's writes wait,
// then fail.
func (s *service) lock(t *testing.T) (unlock func()) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(s.dir, store.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	done := false
	unlock = func() {
		if !done {
			done = true
			conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
			db.Close()
		}
	}
	t.Cleanup(unlock)
	return unlock
}
