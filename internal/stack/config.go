package stack

import (
	"path/filepath"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/commands"
	"github.com/vmd-dev/vmd/config"
	"github.com/vmd-dev/vmd/httpapi"
	"github.com/vmd-dev/vmd/webhook"
	"github.com/vmd-dev/vmd/workspace"
)

// FromConfig copies the settings each part reads from the config: main's
// and the tests' one way from settings to parts. environ is the CLI's
// environment (vmd's own), version vmd's.
func FromConfig(cfg *config.Config, environ []string, version string) Options {
	mcpConfig := cfg.MCPConfig // absolute after Load, or "" for none
	// The git configuration lives with vmd's state; with none kept
	// (":memory:"), WriteGit makes a directory of its own under TMPDIR.
	gitDir := ""
	if cfg.StateDir != config.MemoryStateDir {
		gitDir = filepath.Join(cfg.StateDir, "git")
	}
	return Options{
		ImagesDir: cfg.ImagesDir,
		ImageTTL:  cfg.ImageTTL,
		// The workspace is the CLI's working directory for every command:
		// the CLI files its sessions by directory.
		Agent: agent.Options{Bin: cfg.ClaudeBin, Args: cfg.ClaudeArgs, Env: environ, Dir: cfg.WorkDir,
			MaxOutput: cfg.MaxOutput, StallTimeout: cfg.StallTimeout, InterruptGrace: cfg.InterruptGrace,
			MaxCostUSD: cfg.MaxCostUSD},
		// vmd is the process's only code: it reaps every child, as PID 1
		// must and as a child subreaper should.
		Reap:      true,
		MCPConfig: mcpConfig,
		// GITHUB_TOKEN is no setting of vmd's, so it reaches the CLI, for
		// git's credential helper and gh to read when they need it.
		DropEnv: config.EnvVars,
		Git: &workspace.GitOptions{Dir: gitDir, AuthorName: cfg.GitAuthorName, AuthorEmail: cfg.GitAuthorEmail,
			CredentialHosts: cfg.GitCredentialHosts},
		MinFreeDisk: uint64(cfg.MinFreeDisk),
		Commands: commands.Options{RecordBytes: cfg.MaxOutput, CommandTimeout: cfg.CommandTimeout,
			Warm: cfg.Warm, Prewarm: cfg.Prewarm, WarmConversations: cfg.WarmConversations, WarmIdle: cfg.WarmIdle,
			QueueMax: cfg.QueueMax, SpendLimitUSD: cfg.SpendLimitUSD, SpendWindow: cfg.SpendWindow},
		StateDir: cfg.StateDir, Retention: cfg.CommandRetention, MaxCommands: cfg.MaxCommands,
		Webhook: webhook.Options{URL: cfg.WebhookURL, Secret: cfg.WebhookSecret},
		API: httpapi.Options{MaxRequestBody: cfg.MaxRequestBody, Version: version, APIToken: cfg.APIToken,
			AllowedHosts: cfg.AllowedHosts, AllowedOrigins: cfg.AllowedOrigins},
	}
}
