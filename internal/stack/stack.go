// Package stack builds vmd's parts from their options and wires them into
// an oklog/run group: the one way both cmd/vmd and the tests (through
// internal/vmdtest) put vmd together.
package stack

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/run"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/supervisor"
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
	// Commands and API are those parts' options.
	Commands commands.Options
	API      httpapi.Options
}

// Stack is vmd's parts, built and wired.
type Stack struct {
	Images     *images.Store
	Supervisor *supervisor.Supervisor
	Agent      *agent.Agent
	Commands   *commands.Service
	API        *httpapi.API
}

// New builds the parts. Nothing runs until the group does.
func New(opts Options, log hclog.Logger) (*Stack, error) {
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
	ag := agent.New(sup, img, log.Named("agent"), ao)
	cmds := commands.New(ag, log.Named("commands"), opts.Commands)
	api := httpapi.New(httpapi.Deps{Commands: cmds, Agent: ag, Supervisor: sup, Images: img}, log.Named("http"), opts.API)
	return &Stack{Images: img, Supervisor: sup, Agent: ag, Commands: cmds, API: api}, nil
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
}
