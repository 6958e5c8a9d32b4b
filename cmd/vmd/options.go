package main

import (
	"net"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/config"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/internal/stack"
)

// options copies the settings each part reads from the config.
func options(cfg *config.Config, environ []string) (stack.Options, error) {
	mcpConfig := cfg.MCPConfig // absolute after Load, or "" for none
	return stack.Options{
		ImagesDir: cfg.ImagesDir,
		ImageTTL:  cfg.ImageTTL,
		Agent: agent.Options{Bin: cfg.ClaudeBin, Args: cfg.ClaudeArgs, Env: environ, Dir: cfg.WorkDir,
			Timeout: cfg.CommandTimeout, MaxOutput: cfg.MaxOutput, StallTimeout: cfg.StallTimeout},
		MCPConfig: mcpConfig,
		DropEnv:   config.EnvVars,
		Commands:  commands.Options{},
		API: httpapi.Options{MaxRequestBody: cfg.MaxRequestBody, CommandTimeout: cfg.CommandTimeout,
			Version: version, APIToken: cfg.APIToken, MCPConfig: mcpConfig,
			AllowedHosts: cfg.AllowedHosts, AllowedOrigins: cfg.AllowedOrigins},
	}, nil
}

// announce logs what will make vmd misbehave in ways the operator should
// hear of at start (config's warnings, each with its fix), then the start.
func announce(cfg *config.Config, ln net.Listener, logger hclog.Logger) {
	for _, w := range cfg.Warnings() {
		logger.Warn(w.Msg, w.Args...)
	}
	logger.Info("startup", "version", version, "address", ln.Addr().String(), "port", ln.Addr().(*net.TCPAddr).Port,
		"pid", os.Getpid(), "claude_bin", cfg.ClaudeBin, "images_dir", cfg.ImagesDir, "mcp_config", cfg.MCPConfig,
		"command_timeout", cfg.CommandTimeout, "auth", cfg.APIToken != "")
}
