// Command vmd runs the Claude Code CLI behind an HTTP API, one command at a
// time. It is meant to be a container's entrypoint (PID 1).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/run"

	"github.com/vmd-dev/vmd/config"
	"github.com/vmd-dev/vmd/internal/stack"
	"github.com/vmd-dev/vmd/netguard"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(vmd(os.Args[1:], os.Getenv, os.Environ(), os.Stderr))
}

func vmd(args []string, getenv func(string) string, environ []string, stderr io.Writer) int {
	// Before anything else, so no SIGTERM finds vmd without a handler.
	signals := listenForSignals()
	survivePipes() // a closed log pipe must not kill vmd (SIGPIPE on fd 2)
	followGoRun()  // killing `go run` stops vmd too
	cfg, code := loadConfig(args, getenv, stderr)
	if cfg == nil {
		return code
	}
	logger := cfg.Logger(stderr)

	// Listen first, so that a port in use fails at start, not inside the group.
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("cannot listen", "address", addr, "error", err)
		return 1
	}
	// Accept errors back off instead of stopping vmd, connections stay
	// below the descriptor limit, and one address cannot take them all.
	ln := netguard.New(tcp, netguard.Options{Logger: logger.Named("netguard")})
	opts := stack.FromConfig(cfg, environ, version)
	opts.API.MaxConns = ln.MaxConns()
	st, err := stack.New(opts, logger)
	if err == nil {
		announce(cfg, st.Images.Dir(), ln, logger)
		return serve(st, ln, signals, cfg.DrainTimeout, logger)
	}
	logger.Error("cannot start", "error", err)
	return 1
}

// serve runs vmd's actors until a signal or a failure stops them.
func serve(st *stack.Stack, ln net.Listener, signals signalListener, drain time.Duration, logger hclog.Logger) int {
	// The one shutdown deadline, fixed at the first interrupt: the command
	// in flight may run until then. After it, the kill, the sweep and the
	// pipes (about 1.25 s when processes are stuck in the kernel), the
	// images watcher's catch-up (0.5 s) and the last answer's write (1 s)
	// still come: keep drain_timeout 2-3 s inside the platform's stop window.
	deadline := sync.OnceValue(func() time.Time { return time.Now().Add(drain) })
	var g run.Group
	// Signals: the first SIGTERM, SIGINT or SIGHUP starts the drain; a
	// second one stops the running command at once.
	g.Add(signals.actor(st.Commands))
	// The parts, in the order their interrupts must run: see stack.Add.
	st.Add(&g, ln, deadline)

	// The CLI's version, asked once in the background: the start-up log and
	// /status show it, and a CLI that cannot start is logged at once.
	go st.Agent.Version(context.Background())
	err := g.Run()
	// The store closes last: every actor that writes to it has stopped.
	if cerr := st.Close(); cerr != nil {
		logger.Error("cannot close the command store", "error", cerr)
	}
	if err == nil || errors.Is(err, run.ErrSignal) {
		logger.Info("stopped", "reason", err)
		return 0
	}
	logger.Error("stopped", "error", err)
	return 1
}

// loadConfig reads the flags and the config; a nil config means exit with
// the code.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (*config.Config, int) {
	flags := flag.NewFlagSet("vmd", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", getenv(config.FileEnv), "`path` to vm.hcl (env VM_CONFIG); none for the built-in defaults")
	showVersion := flags.Bool("version", false, "print the version and exit")
	if err := flags.Parse(args); err != nil {
		return nil, 2
	}
	if *showVersion {
		fmt.Fprintln(stderr, "vmd", version)
		return nil, 0
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "vmd:", line)
		}
		return nil, 1
	}
	return cfg, 0
}
