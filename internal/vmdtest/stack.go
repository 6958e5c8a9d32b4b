package vmdtest

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/run"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/config"
	"github.com/vmd-dev/vmd/internal/stack"
)

// Options shape a stack under test; zero values are the defaults: vmd's
// own (config.Default), but for what a test needs otherwise, said here.
type Options struct {
	// Bin is the CLI (required: the fake, built by the test's TestMain).
	Bin string
	// Plain runs the CLI without stream-json arguments; Args replaces them.
	Plain bool
	Args  []string
	// Env is added to the CLI's environment.
	Env []string
	// Dir is the CLI's working directory.
	Dir string
	// Timeout is command_timeout (20 s); Drain is drain_timeout (5 s).
	Timeout, Drain time.Duration
	// MaxBody is max_request_body; MaxOutput is max_output.
	MaxBody, MaxOutput int
	// KeepAlive, Token and MCP are the API's options.
	KeepAlive time.Duration
	Token     string
	MCP       string
	// Warm keeps agents between turns, as vmd does by default; Prewarm
	// keeps a spare too. Off, every command has a process of its own.
	Warm, Prewarm bool
	// Reap has the stack reap every child of the test process, as main
	// does: only for a test that does not run in parallel with others
	// that start processes.
	Reap bool
	// Commands are the commands service's options, over those of the
	// config.
	Commands func(*commands.Options)
	// MinFreeDisk is min_free_disk, in bytes (0: the guard is off).
	MinFreeDisk uint64
	// StateDir holds the command store; empty keeps it in memory.
	StateDir string
	// Loopback serves on real TCP on 127.0.0.1 instead of in memory.
	Loopback bool
	// Tweak, if set, changes the stack's options last.
	Tweak func(*stack.Options)
	// Quiet logs at warn, as vmd runs by default, instead of debug: for
	// benchmarks, which would otherwise measure the test log.
	Quiet bool
}

// Stack is vmd's stack running in the test's process, over the fake CLI.
type Stack struct {
	*stack.Stack
	// Log holds the stack's JSON logs, at debug.
	Log *LogBuffer
	// ImagesDir and TempRoot are the stack's directories.
	ImagesDir, TempRoot string
	// Dial connects to the API; Client sends requests through Dial.
	Dial   func() (net.Conn, error)
	Client *fasthttp.Client
	// Addr is the loopback address, with Options.Loopback.
	Addr string

	stop     chan struct{}
	stopOnce sync.Once
	done     chan error
}

// Start runs a stack as main does (config.Default, stack.FromConfig,
// stack.New, stack.Add, one shutdown deadline) and stops it when the test
// ends. Stacks run side by side, in parallel tests.
func Start(t testing.TB, o Options) *Stack {
	t.Helper()
	s := &Stack{Log: &LogBuffer{}, ImagesDir: filepath.Join(t.TempDir(), "images"), TempRoot: t.TempDir(),
		stop: make(chan struct{}), done: make(chan error, 1)}
	level := hclog.Debug
	if o.Quiet {
		level = hclog.Warn
	}
	log := hclog.New(&hclog.LoggerOptions{Output: s.Log, JSONFormat: true, Level: level})
	cfg := config.Default()
	cfg.ClaudeBin, cfg.WorkDir, cfg.MCPConfig = o.Bin, o.Dir, o.MCP
	cfg.CommandTimeout, cfg.DrainTimeout = or(o.Timeout, 20*time.Second), or(o.Drain, 5*time.Second)
	cfg.MaxRequestBody, cfg.MaxOutput = or(o.MaxBody, cfg.MaxRequestBody), or(o.MaxOutput, cfg.MaxOutput)
	cfg.APIToken, cfg.MinFreeDisk = o.Token, int64(o.MinFreeDisk)
	cfg.Warm, cfg.Prewarm = o.Warm, o.Prewarm
	cfg.StateDir = config.MemoryStateDir
	if o.StateDir != "" {
		cfg.StateDir = o.StateDir
	}
	switch {
	case o.Args != nil:
		cfg.ClaudeArgs = o.Args
	case o.Plain:
		cfg.ClaudeArgs = nil
	}
	// The fake CLI keeps its sessions under $HOME, as the real one does.
	env := Environ(append([]string{"HOME=" + t.TempDir()}, o.Env...)...)
	opts := stack.FromConfig(cfg, env, "test")
	opts.ImagesDir, opts.ImageTTL, opts.TempRoot, opts.Reap = s.ImagesDir, time.Hour, s.TempRoot, o.Reap
	opts.Git.Dir = t.TempDir() // as main does, in a directory of the test's
	opts.API.KeepAlive = o.KeepAlive
	if o.Commands != nil {
		o.Commands(&opts.Commands)
	}
	if o.Tweak != nil {
		o.Tweak(&opts)
	}
	st, err := stack.New(opts, log)
	if err != nil {
		t.Fatal(err)
	}
	s.Stack = st
	ln := s.listen(t, o.Loopback)
	var g run.Group
	g.Add(func() error { <-s.stop; return nil }, func(error) { s.Shutdown() })
	deadline := sync.OnceValue(func() time.Time { return time.Now().Add(cfg.DrainTimeout) })
	st.Add(&g, ln, deadline)
	go func() { s.done <- g.Run() }()
	t.Cleanup(func() {
		s.Shutdown()
		if err := <-s.done; err != nil {
			t.Errorf("stack stopped with %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("store closed with %v", err)
		}
		s.Client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("log:\n%s", s.Log)
		}
	})
	return s
}

// or is v, or def when v is zero.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (s *Stack) listen(t testing.TB, loopback bool) net.Listener {
	var ln net.Listener
	if loopback {
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, s.Addr = tcp, tcp.Addr().String()
		s.Dial = func() (net.Conn, error) { return net.Dial("tcp", s.Addr) }
	} else {
		mem := fasthttputil.NewInmemoryListener()
		ln, s.Dial = mem, mem.Dial
	}
	s.Client = &fasthttp.Client{
		Dial: func(string) (net.Conn, error) { return s.Dial() },
		// Paths go out as written: the tests send ../ and %2f on purpose.
		DisablePathNormalizing: true,
	}
	return ln
}

// Shutdown stops the stack as a signal would, and returns at once.
func (s *Stack) Shutdown() { s.stopOnce.Do(func() { close(s.stop) }) }

// Environ is the test's environment with these variables set: replaced,
// not added twice (a program sees the first of two).
func Environ(set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(set, func(s string) bool { return strings.HasPrefix(s, name+"=") }) {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}
