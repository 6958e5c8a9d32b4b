package main

import (
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/config"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/internal/stack"
	"github.com/vmd-dev/vmd/webhook"
	"github.com/vmd-dev/vmd/workspace"
)

// options copies the settings each part reads from the config.
func options(cfg *config.Config, environ []string) stack.Options {
	mcpConfig := cfg.MCPConfig // absolute after Load, or "" for none
	// The git configuration lives with vmd's state; with none kept
	// (":memory:"), WriteGit makes a directory of its own under TMPDIR.
	gitDir := ""
	if cfg.StateDir != config.MemoryStateDir {
		gitDir = filepath.Join(cfg.StateDir, "git")
	}
	return stack.Options{
		ImagesDir: cfg.ImagesDir,
		ImageTTL:  cfg.ImageTTL,
		// The workspace is the CLI's working directory for every command:
		// the CLI files its sessions by directory.
		Agent: agent.Options{Bin: cfg.ClaudeBin, Args: cfg.ClaudeArgs, Env: environ, Dir: cfg.WorkDir,
			Timeout: cfg.CommandTimeout, MaxOutput: cfg.MaxOutput, StallTimeout: cfg.StallTimeout},
		MCPConfig: mcpConfig,
		// GITHUB_TOKEN is no setting of vmd's, so it reaches the CLI, for
		// git's credential helper and gh to read when they need it.
		DropEnv: config.EnvVars,
		Git: &workspace.GitOptions{Dir: gitDir, AuthorName: cfg.GitAuthorName, AuthorEmail: cfg.GitAuthorEmail,
			CredentialHosts: cfg.GitCredentialHosts},
		MinFreeDisk: uint64(cfg.MinFreeDisk),
		Commands:    commands.Options{RecordBytes: cfg.MaxOutput},
		StateDir:    cfg.StateDir, Retention: cfg.CommandRetention, MaxCommands: cfg.MaxCommands,
		Webhook: webhook.Options{URL: cfg.WebhookURL, Secret: cfg.WebhookSecret},
		API: httpapi.Options{MaxRequestBody: cfg.MaxRequestBody, CommandTimeout: cfg.CommandTimeout,
			Version: version, APIToken: cfg.APIToken, MCPConfig: mcpConfig,
			AllowedHosts: cfg.AllowedHosts, AllowedOrigins: cfg.AllowedOrigins},
	}
}

// announce logs what will make vmd misbehave in ways the operator should
// hear of at start (config's warnings, each with its fix), then the start,
// with the images directory in use (one of vmd's own if none is set).
func announce(cfg *config.Config, imagesDir string, ln net.Listener, logger hclog.Logger) {
	for _, w := range cfg.Warnings() {
		logger.Warn(w.Msg, w.Args...)
	}
	logger.Info("startup", "version", version, "address", ln.Addr().String(), "port", ln.Addr().(*net.TCPAddr).Port,
		"pid", os.Getpid(), "claude_bin", cfg.ClaudeBin, "images_dir", imagesDir, "mcp_config", cfg.MCPConfig,
		"command_timeout", cfg.CommandTimeout, "auth", cfg.APIToken != "")
}
