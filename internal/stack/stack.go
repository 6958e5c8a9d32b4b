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
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/store"
	"github.com/vmd-dev/vmd/supervisor"
	"github.com/vmd-dev/vmd/webhook"
	"github.com/vmd-dev/vmd/workspace"
)

// Options are every part's options, as main copies them from the config.
type Options struct {
	// ImagesDir is the images directory; made absolute, for the CLI runs
	// in another directory. ImageTTL is how long an image is kept.
	ImagesDir string
	ImageTTL  time.Duration
	// TempRoot holds the per-command temporary directories; empty is the
	// system's.
	TempRoot string
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
	Disk       *workspace.Guard
	Store      *store.Store
	Webhook    *webhook.Sender // nil without webhook_url
	Pruner     *commands.Pruner
}

// New builds the parts. Nothing runs until the group does, but the store
// is open: a store that cannot be opened (corrupt, another vmd's) fails
// here, and records a stopped vmd left running are ended interrupted. Close
// closes it once the group has stopped.
//
// The store opens first: it takes state_dir's lock, so a second vmd on
// the same state_dir stops before it touches anything of the first's (the
// git configuration it would write there included).
func New(opts Options, log hclog.Logger) (_ *Stack, err error) {
	s := &Stack{}
	if err := s.openStore(opts, log); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Store.Close() // lets go of state_dir's lock
		}
	}()
	dir, err := filepath.Abs(opts.ImagesDir)
	if err != nil {
		return nil, fmt.Errorf("images_dir %q: %w", opts.ImagesDir, err)
	}
	img, err := images.Open(dir, opts.ImageTTL, log.Named("images"))
	if err != nil {
		return nil, err
	}
	sup, err := supervisor.New(supervisor.Config{TempRoot: opts.TempRoot}, log.Named("supervisor"))
	if err != nil {
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
		ao.Env = git.Env(ao.Env)
	}
	disk, err := diskGuard(opts, ao.Dir, dir)
	if err != nil {
		return nil, err
	}
	ag := agent.New(sup, img, log.Named("agent"), ao)
	s.Images, s.Supervisor, s.Agent, s.Disk = img, sup, ag, disk
	co := opts.Commands
	co.Disk = disk
	co.Store = s.Store
	if co.Render == nil { // a test may bring its own
		co.Render = func(r commands.Record) (int, []byte) { return s.API.Render(r) }
	}
	if s.Webhook != nil {
		co.Webhook = s.Webhook.Notify
	}
	s.Commands = commands.New(ag, log.Named("commands"), co)
	s.API = httpapi.New(httpapi.Deps{Commands: s.Commands, Agent: ag, Supervisor: sup, Images: img,
		Store: s.Store, Webhook: s.Webhook, Disk: disk}, log.Named("http"), opts.API)
	if n, err := s.Commands.Recover(context.Background()); err != nil {
		log.Error("cannot end the commands a stopped vmd left running", "error", err)
	} else if n > 0 {
		log.Warn("commands left running by a stopped vmd are now interrupted", "commands", n)
	}
	return s, nil
}

// openStore opens the store, its webhook sender and its pruner.
func (s *Stack) openStore(opts Options, log hclog.Logger) error {
	dir := opts.StateDir
	if dir == "" {
		dir = store.Memory
	}
	st, err := store.Open(context.Background(), dir, store.Options{})
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
	}
	retention, most := opts.Retention, opts.MaxCommands
	if retention <= 0 {
		retention = 7 * 24 * time.Hour
	}
	if most <= 0 {
		most = 10000
	}
	s.Pruner = commands.NewPruner(st, retention, most, log.Named("pruner"))
	return nil
}

// Close closes the store once every command has written its end. Call it
// after the group has stopped.
func (s *Stack) Close() error {
	s.Commands.Wait()
	return s.Store.Close()
}

// diskGuard watches the filesystems commands fill: the workspace (the
// CLI's working directory, vmd's own when empty), the images and the
// command temp directories.
func diskGuard(opts Options, work, images string) (*workspace.Guard, error) {
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
	return workspace.NewGuard(opts.MinFreeDisk, workspace.Dir{Name: "workspace", Path: work},
		workspace.Dir{Name: "images", Path: images}, workspace.Dir{Name: "temp", Path: temp}), nil
}

// Add adds the parts' actors to g, serving on ln. deadline is main's one
// shutdown deadline, fixed at the first interrupt: the command in flight
// may run until then. oklog/run calls the interrupts in the order the
// actors were added, and that order is load-bearing: the API stops taking
// commands before the supervisor is told to stop the one running.
func (s *Stack) Add(g *run.Group, ln net.Listener, deadline func() time.Time) {
	// API: answers 503 to new commands once draining, and serves until the
	// supervisor is done, so the answer of the command in flight gets out.
	g.Add(func() error { return s.API.Serve(ln, s.Supervisor.Done()) },
		func(error) { s.API.Drain(deadline()) })
	// Supervisor: lets the running command go on until the deadline, then
	// kills its process group and everything else below vmd.
	g.Add(s.Supervisor.Run, func(error) { s.Supervisor.Stop(deadline()) })
	// Images: watches the directory and deletes expired images. It stops
	// only once the supervisor is done, so the command in flight still gets
	// its own images listed; added last, its waiting holds up no other
	// interrupt.
	g.Add(s.Images.Run, func(error) {
		<-s.Supervisor.Done()
		s.Images.Stop()
	})
	// Webhook sender and pruner: they only read and write the store, which
	// main closes once the whole group has stopped. A delivery cut short
	// here is sent again after the restart.
	if s.Webhook != nil {
		g.Add(func() error { return s.Webhook.Run(context.Background()) }, func(error) { s.Webhook.Stop() })
	}
	g.Add(s.Pruner.Run, func(error) { s.Pruner.Stop() })
}
