package main

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/config"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/internal/stack"
)

// options copies the settings each part reads from the config.
func options(cfg *config.Config, environ []string) (stack.Options, error) {
	mcpConfig, err := cfg.MCPConfigPath()
	if err != nil {
		return stack.Options{}, err
	}
	return stack.Options{
		ImagesDir: cfg.ImagesDir,
		ImageTTL:  cfg.ImageTTL,
		Agent: agent.Options{Bin: cfg.ClaudeBin, Args: cfg.ClaudeArgs, Env: environ, Dir: cfg.WorkDir,
			Timeout: cfg.CommandTimeout, MaxOutput: cfg.MaxOutput},
		MCPConfig: mcpConfig,
		DropEnv:   config.EnvVars,
		Commands:  commands.Options{},
		API: httpapi.Options{MaxRequestBody: cfg.MaxRequestBody, CommandTimeout: cfg.CommandTimeout,
			Version: version, APIToken: cfg.APIToken, MCPConfig: mcpConfig,
			AllowedHosts: cfg.AllowedHosts, AllowedOrigins: cfg.AllowedOrigins},
	}, nil
}

// announce logs what will make vmd misbehave in ways the operator should
// hear of at start, then the start itself.
func announce(cfg *config.Config, ln net.Listener, logger hclog.Logger) {
	mcpConfig, _ := cfg.MCPConfigPath() // options has checked it
	defer logger.Info("startup", "version", version, "address", ln.Addr().String(), "port", ln.Addr().(*net.TCPAddr).Port,
		"pid", os.Getpid(), "claude_bin", cfg.ClaudeBin, "images_dir", cfg.ImagesDir, "mcp_config", mcpConfig,
		"command_timeout", cfg.CommandTimeout, "auth", cfg.APIToken != "")
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
}
