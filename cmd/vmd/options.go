package main

import (
	"net"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/vmd-dev/vmd/config"
)

// announce logs what will make vmd misbehave in ways the operator should
// hear of at start (config's warnings, each with its fix), then the start,
// with the images directory in use (one of vmd's own if none is set).
func announce(cfg *config.Config, imagesDir string, ln net.Listener, logger hclog.Logger) {
	for _, w := range cfg.Warnings() {
		logger.Warn(w.Msg, w.Args...)
	}
	logger.Info("startup", "version", version, "address", ln.Addr().String(), "port", ln.Addr().(*net.TCPAddr).Port,
		"pid", os.Getpid(), "claude_bin", cfg.ClaudeBin, "images_dir", imagesDir, "mcp_config", cfg.MCPConfig,
		"command_timeout", cfg.CommandTimeout, "auth", cfg.APIToken != "", "warm", cfg.Warm)
}
