package vmdtest

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/run"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/internal/stack"
	"github.com/vmd-dev/vmd/workspace"
)

// running is set while a stack runs in this process.
var running atomic.Bool

// StreamJSON are the arguments vmd gives the CLI by default.
var StreamJSON = []string{"-p", "--output-format", "stream-json", "--verbose"}

// Options shape a stack under test; zero values are the defaults.
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
	// MaxBody is max_request_body (1 MiB); MaxOutput is max_output (1 MiB).
	MaxBody, MaxOutput int
	// KeepAlive, Token and MCP are the API's options.
	KeepAlive time.Duration
	Token     string
	MCP       string
	// Commands are the commands service's options.
	Commands commands.Options
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

// Start runs a stack as main does (stack.New, stack.Add, one shutdown
// deadline) and stops it when the test ends.
//
// One stack runs at a time in a process: its supervisor reaps every child
// of the process, another's included. Start fails the test otherwise.
func Start(t testing.TB, o Options) *Stack {
	t.Helper()
	if !running.CompareAndSwap(false, true) {
		t.Fatal("vmdtest.Start: another stack runs in this process, and its reaper would take this one's children")
	}
	t.Cleanup(func() { running.Store(false) }) // last: after the stack has stopped
	o = withDefaults(o)
	s := &Stack{Log: &LogBuffer{}, ImagesDir: filepath.Join(t.TempDir(), "images"), TempRoot: t.TempDir(),
		stop: make(chan struct{}), done: make(chan error, 1)}
	level := hclog.Debug
	if o.Quiet {
		level = hclog.Warn
	}
	log := hclog.New(&hclog.LoggerOptions{Output: s.Log, JSONFormat: true, Level: level})
	args := o.Args
	if args == nil && !o.Plain {
		args = StreamJSON
	}
	// The fake CLI keeps its sessions under $HOME, as the real one does.
	env := Environ(append([]string{"HOME=" + t.TempDir()}, o.Env...)...)
	opts := stack.Options{
		ImagesDir: s.ImagesDir, ImageTTL: time.Hour, TempRoot: s.TempRoot,
		Agent:     agent.Options{Bin: o.Bin, Args: args, Env: env, Dir: o.Dir, Timeout: o.Timeout, MaxOutput: o.MaxOutput},
		MCPConfig: o.MCP,
		// As main does, in a directory of the test's.
		Git:         &workspace.GitOptions{Dir: t.TempDir()},
		MinFreeDisk: o.MinFreeDisk,
		Commands:    o.Commands,
		StateDir:    o.StateDir,
		API: httpapi.Options{MaxRequestBody: o.MaxBody, CommandTimeout: o.Timeout, Version: "test",
			KeepAlive: o.KeepAlive, APIToken: o.Token, MCPConfig: o.MCP},
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
	deadline := sync.OnceValue(func() time.Time { return time.Now().Add(o.Drain) })
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

func withDefaults(o Options) Options {
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	if o.Drain == 0 {
		o.Drain = 5 * time.Second
	}
	if o.MaxBody == 0 {
		o.MaxBody = 1 << 20
	}
	if o.MaxOutput == 0 {
		o.MaxOutput = 1 << 20
	}
	return o
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
