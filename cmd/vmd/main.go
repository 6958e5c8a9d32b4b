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
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/run"

	"github.com/vmd-dev/vmd/config"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/images"
	"github.com/vmd-dev/vmd/supervisor"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(vmd(os.Args[1:], os.Getenv, os.Environ(), os.Stderr))
}

func vmd(args []string, getenv func(string) string, environ []string, stderr io.Writer) int {
	// Before anything else, so no SIGTERM finds vmd without a handler.
	signals := listenForSignals()

	flags := flag.NewFlagSet("vmd", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", getenv("VM_CONFIG"), "`path` to vm.hcl (env VM_CONFIG); none for the built-in defaults")
	showVersion := flags.Bool("version", false, "print the version and exit")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stderr, "vmd", version)
		return 0
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "vmd:", line)
		}
		return 1
	}
	logger := cfg.Logger(stderr)

	// Listen first, so that a port in use fails at start, not inside the group.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		logger.Error("cannot listen", "address", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), "error", err)
		return 1
	}
	// The CLI runs in work_dir: it gets the images directory absolute.
	var img *images.Store
	imagesDir, err := filepath.Abs(cfg.ImagesDir)
	if err == nil {
		img, err = images.Open(imagesDir, cfg.ImageTTL, logger.Named("images"))
	}
	if err != nil {
		logger.Error("cannot open the images directory", "error", err)
		return 1
	}
	mcpConfig, _ := cfg.MCPConfigPath() // Load has checked it
	sup, err := supervisor.New(supervisor.Config{
		Bin:          cfg.ClaudeBin,
		Args:         cliArgs(cfg.ClaudeArgs, imagesDir, mcpConfig),
		Dir:          cfg.WorkDir,
		Env:          childEnv(environ, imagesDir),
		Timeout:      cfg.CommandTimeout,
		DrainTimeout: cfg.DrainTimeout,
		MaxOutput:    cfg.MaxOutput,
	}, logger.Named("supervisor"), img)
	if err != nil {
		logger.Error("cannot start the supervisor", "error", err)
		return 1
	}
	api := httpapi.New(sup, img, logger.Named("http"), httpapi.Options{
		MaxRequestBody: cfg.MaxRequestBody,
		CommandTimeout: cfg.CommandTimeout,
		DrainTimeout:   cfg.DrainTimeout,
		Version:        version,
		APIToken:       cfg.APIToken,
		MCPConfig:      mcpConfig,
	})
	if cfg.DrainTimeout >= 10*time.Second {
		logger.Warn("drain_timeout is not below 10s, Docker's default stop window: give the platform longer (stop_grace_period, Fly's kill_timeout)",
			"drain_timeout", cfg.DrainTimeout)
	}
	if os.Geteuid() == 0 && slices.Contains(cfg.ClaudeArgs, "--dangerously-skip-permissions") {
		logger.Warn("running as root: Claude Code refuses --dangerously-skip-permissions as root, so commands will fail; run vmd as an unprivileged user (the image runs as node)")
	}
	if cfg.APIToken == "" && httpapi.Exposed(ln.Addr()) {
		logger.Warn("no API token: anyone who can reach this address can run anything in this container",
			"address", ln.Addr().String(), "fix", "set API_TOKEN (api_token in vm.hcl), or listen on loopback (HOST=127.0.0.1)")
	}
	if _, err := exec.LookPath(cfg.ClaudeBin); err != nil {
		logger.Warn("claude not found; commands will fail until it is installed", "claude_bin", cfg.ClaudeBin, "error", err)
	}

	// oklog/run calls the interrupts in this order: the API stops taking
	// commands before the supervisor is told to stop the one running.
	var g run.Group
	// Signals: the first SIGTERM, SIGINT or SIGHUP starts the drain; a
	// second one kills the running command at once.
	g.Add(signals.actor(sup))
	// API: answers 503 to new commands once draining, and serves until the
	// supervisor is done, so the answer of the command in flight gets out.
	g.Add(func() error { return api.Serve(ln, sup.Done()) }, func(error) { api.Drain() })
	// Supervisor: lets the running command finish within the drain budget,
	// then kills its process group and everything else below vmd.
	g.Add(sup.Run, func(error) { sup.Stop() })
	// Images: watches the directory and deletes expired images. It stops
	// only once the supervisor is done, so the command in flight still gets
	// its own images listed; added last, its waiting holds up no other
	// interrupt.
	g.Add(img.Run, func(error) {
		<-sup.Done()
		img.Stop()
	})

	logger.Info("startup", "version", version, "address", ln.Addr().String(), "port", ln.Addr().(*net.TCPAddr).Port,
		"pid", os.Getpid(), "claude_bin", cfg.ClaudeBin, "images_dir", cfg.ImagesDir, "mcp_config", mcpConfig, "command_timeout", cfg.CommandTimeout, "auth", cfg.APIToken != "")
	// The CLI's version, asked once in the background: the start-up log and
	// /status show it, and a CLI that cannot start is logged at once.
	go sup.CLIVersion(context.Background())
	err = g.Run()
	if err == nil || errors.Is(err, run.ErrSignal) {
		logger.Info("stopped", "reason", err)
		return 0
	}
	logger.Error("stopped", "error", err)
	return 1
}

// screenshotHint tells Claude where a screenshot must go to reach the user:
// Playwright MCP saves one taken without a filename in its output directory
// (the images directory, per .mcp.json), but one given a relative filename
// in the working directory, where vmd would never see it.
const screenshotHint = "Screenshots reach the user only from the directory %s. When you save one " +
	"(Playwright's browser_take_screenshot), leave out the filename so that it lands there, or give an " +
	"absolute path inside that directory."

// cliArgs are the CLI's arguments: claude_args, then the MCP servers file
// (which is where screenshots come from) and, unless claude_args sets a
// system prompt of its own, where screenshots must go.
func cliArgs(claudeArgs []string, imagesDir, mcpConfig string) []string {
	args := slices.Clone(claudeArgs)
	if mcpConfig == "" {
		return args
	}
	args = append(args, "--mcp-config", mcpConfig)
	if !slices.Contains(args, "--append-system-prompt") && !slices.Contains(args, "--system-prompt") {
		args = append(args, "--append-system-prompt", fmt.Sprintf(screenshotHint, imagesDir))
	}
	return args
}

// childEnv is vmd's environment for the CLI, without vmd's own settings
// (a PORT=3001 would send the dev servers the agent starts onto vmd's port),
// and with IMAGES_DIR, absolute, for the MCP config to use.
func childEnv(environ []string, imagesDir string) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(config.EnvVars, name) {
			env = append(env, kv)
		}
	}
	return append(env, "IMAGES_DIR="+imagesDir)
}
