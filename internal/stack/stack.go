// Package stack builds vmd's parts from their options and wires them into
// an oklog/run group: the one way both cmd/vmd and the tests (through
// internal/vmdtest) put vmd together.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/run"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/disk"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/internal/metric"
	"github.com/vmd-dev/vmd/internal/ready"
	"github.com/vmd-dev/vmd/store"
	"github.com/vmd-dev/vmd/supervisor"
	"github.com/vmd-dev/vmd/webhook"
	"github.com/vmd-dev/vmd/workspace"
)

// Options are every part's options, as main copies them from the config.
type Options struct {
	// ImagesDir is the images directory; made absolute, for the CLI runs
	// in another directory. Empty is a private directory of vmd's own,
	// removed at exit (see images.Open). ImageTTL is how long an image is
	// kept.
	ImagesDir string
	ImageTTL  time.Duration
	// TempRoot holds the per-process temporary directories; empty is the
	// system's.
	TempRoot string
	// Reap has the supervisor reap every child of the process (main, where
	// the process is vmd alone; see supervisor.Config.Reap).
	Reap bool
	// Agent runs the CLI. Its Args are claude_args and its Env vmd's
	// environment: New adds the MCP servers file, the screenshot hint and
	// IMAGES_DIR, and drops the variables named in DropEnv.
	Agent     agent.Options
	MCPConfig string
	DropEnv   []string
	// Git, if set, is the git configuration the CLI is given (see
	// workspace.WriteGit); nil leaves git to the CLI's environment.
	Git *workspace.GitOptions
	// MinFreeDisk is the free space, in bytes, the workspace (Agent.Dir),
	// images and temp filesystems must keep for a new command; 0 disables
	// the guard, though /status and /metrics still show the space.
	MinFreeDisk uint64
	// Commands and API are those parts' options.
	Commands commands.Options
	API      httpapi.Options
	// StateDir holds the command store (store.Memory: in memory).
	// Retention and MaxCommands bound what it keeps.
	StateDir    string
	Retention   time.Duration
	MaxCommands int
	// Store tunes the store (its zero value is right for vmd; tests
	// shorten its busy timeout).
	Store store.Options
	// Webhook delivers completion webhooks when its URL is set.
	Webhook webhook.Options
}

// Stack is vmd's parts, built and wired.
type Stack struct {
	Images     *images.Store
	Supervisor *supervisor.Supervisor
	Agent      *agent.Agent
	Commands   *commands.Service
	API        *httpapi.API
	Disk       *disk.Guard
	Store      *store.Store
	Webhook    *webhook.Sender // nil without webhook_url
	Pruner     *commands.Pruner
	Metrics    *metric.Registry
	Prober     *ready.Prober

	git *workspace.Git // nil without Options.Git; Close removes what it made
}

// New builds the parts and has each register its metrics and readiness
// checks. Nothing runs until the group does, but the store is open: a
// store that cannot be opened (corrupt, another vmd's) fails here, and
// records a stopped vmd left running are ended interrupted. Close closes
// it once the group has stopped.
//
// The store opens first: it takes state_dir's lock, so a second vmd on
// the same state_dir stops before it touches anything of the first's (the
// git configuration it would write there included).
func New(opts Options, log hclog.Logger) (_ *Stack, err error) {
	s := &Stack{Metrics: metric.New(), Prober: &ready.Prober{}}
	if err := s.openStore(opts, log); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Store.Close() // lets go of state_dir's lock
		}
	}()
	dir := opts.ImagesDir
	if dir != "" {
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, fmt.Errorf("images_dir %q: %w", opts.ImagesDir, err)
		}
	}
	if s.Images, err = images.Open(dir, opts.ImageTTL, log.Named("images")); err != nil {
		return nil, err
	}
	dir = s.Images.Dir()
	if s.Supervisor, err = supervisor.New(supervisor.Config{TempRoot: opts.TempRoot, Reap: opts.Reap, Metrics: s.Metrics},
		log.Named("supervisor")); err != nil {
		return nil, err
	}
	ao := opts.Agent
	ao.Args = agent.Args(ao.Args, dir, opts.MCPConfig)
	ao.Env = agent.Env(ao.Env, opts.DropEnv, dir)
	if opts.Git != nil {
		git, err := workspace.WriteGit(*opts.Git)
		var pe *fs.PathError
		if errors.As(err, &pe) {
			// The settings' own errors name them; a file error is about
			// the directory, which main puts under state_dir.
			return nil, fmt.Errorf("state_dir: the agent's git configuration cannot be written (make state_dir writable by vmd's user, or set STATE_DIR): %w", err)
		} else if err != nil {
			return nil, err
		}
		s.git = git
		ao.Env = git.Env(ao.Env)
	}
	defer func() {
		if err != nil && s.git != nil {
			s.git.Remove()
		}
	}()
	if s.Disk, err = diskGuard(opts, ao.Dir, dir); err != nil {
		return nil, err
	}
	s.Agent = agent.New(s.Supervisor, s.Images, log.Named("agent"), ao)
	s.Agent.Register(s.Prober, opts.MCPConfig)
	s.Images.Register(s.Metrics, s.Prober)
	s.Store.Register(s.Metrics, s.Prober)
	s.Disk.Register(s.Metrics, s.Prober)
	co := opts.Commands
	co.Disk, co.Store, co.Metrics, co.Prober = s.Disk.Check, s.Store, s.Metrics, s.Prober
	co.MaxCostUSD = ao.MaxCostUSD
	if s.Webhook != nil {
		co.Webhook = s.Webhook.Notify
	}
	s.Commands = commands.New(s.Agent, log.Named("commands"), co)
	s.API = httpapi.New(httpapi.Deps{Commands: s.Commands, Images: s.Images, Metrics: s.Metrics, Prober: s.Prober,
		ClaudeVersion: s.Agent.KnownVersion, Disk: s.Disk.Status}, log.Named("http"), opts.API)
	ctx := context.Background()
	if n, err := s.Commands.Recover(ctx); err != nil {
		log.Error("cannot end the commands a stopped vmd left running", "error", err)
	} else if n > 0 {
		log.Warn("commands left running by a stopped vmd are now interrupted", "commands", n)
	}
	if err := s.Commands.LoadSpend(ctx); err != nil {
		log.Error("cannot read what commands cost lately; the spend limit counts from now", "error", err)
	}
	return s, nil
}

// openStore opens the store, its webhook sender and its pruner.
func (s *Stack) openStore(opts Options, log hclog.Logger) error {
	dir := opts.StateDir
	if dir == "" {
		dir = store.Memory
	}
	st, err := store.Open(context.Background(), dir, opts.Store)
	if err != nil {
		return err
	}
	s.Store = st
	if opts.Webhook.URL != "" {
		wo := opts.Webhook
		wo.Logger = log.Named("webhook")
		if s.Webhook, err = webhook.New(st, wo); err != nil {
			st.Close()
			return err
		}
		s.Webhook.Register(s.Metrics)
	}
	s.Pruner = commands.NewPruner(st, opts.Retention, opts.MaxCommands, log.Named("pruner"))
	return nil
}

// Close closes the store, and removes the directory of the agent's git
// configuration if vmd made one (state_dir ":memory:"). Call it after the
// group has stopped: the commands service has stored every end it could.
func (s *Stack) Close() error {
	err := s.Store.Close()
	if s.git != nil {
		err = errors.Join(err, s.git.Remove())
	}
	return err
}

// diskGuard watches the filesystems commands fill: the workspace (the
// CLI's working directory, vmd's own when empty), the images and the
// processes' temp directories.
func diskGuard(opts Options, work, images string) (*disk.Guard, error) {
	if work == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("workspace_dir: %w", err)
		}
		work = wd
	}
	temp := opts.TempRoot
	if temp == "" {
		temp = os.TempDir()
	}
	return disk.NewGuard(opts.MinFreeDisk, disk.Dir{Name: "workspace", Path: work},
		disk.Dir{Name: "images", Path: images}, disk.Dir{Name: "temp", Path: temp}), nil
}

// Add adds the parts' actors to g, serving on ln. deadline is main's one
// shutdown deadline, fixed at the first interrupt: the command in flight
// may run until then. oklog/run calls the interrupts in the order the
// actors were added; those that wait for another part to be done come
// last, so that they hold up no other.
func (s *Stack) Add(g *run.Group, ln net.Listener, deadline func() time.Time) {
	// API: serves until the commands service has drained, so that the
	// answer of the command in flight gets out; commands asked for
	// meanwhile get 503 from the service.
	g.Add(func() error { return s.API.Serve(ln, s.Commands.Done()) }, func(error) {})
	// Commands: refuses new commands, ends the queued ones, closes idle
	// agents, lets the running command go on until the deadline, then
	// stops it, and stores every end.
	g.Add(s.Commands.Run, func(error) { s.Commands.Drain(deadline()) })
	// Webhook sender and pruner: they only read and write the store, which
	// main closes once the whole group has stopped. A delivery cut short
	// here is sent again after the restart.
	if s.Webhook != nil {
		g.Add(func() error { return s.Webhook.Run(context.Background()) }, func(error) { s.Webhook.Stop() })
	}
	g.Add(s.Pruner.Run, func(error) { s.Pruner.Stop() })
	// Supervisor: once the commands service is done (every agent gone), it
	// kills whatever is left (a version probe) and stops reaping.
	g.Add(s.Supervisor.Run, func(error) {
		<-s.Commands.Done()
		s.Supervisor.Stop()
	})
	// Images: watches the directory and deletes expired images. It stops
	// only once every process is gone, so the command in flight still gets
	// its own images listed.
	g.Add(s.Images.Run, func(error) {
		<-s.Supervisor.Done()
		s.Images.Stop()
	})
}
