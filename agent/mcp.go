package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vmd-dev/vmd/internal/ready"
)

// maxMCPConfig bounds how much of an MCP servers file is read.
const maxMCPConfig = 1 << 20

// CheckMCPConfig reports whether the MCP servers file at path (as given by
// config's MCPConfigPath; "" is none, which is fine) is what the CLI expects: JSON
// with an "mcpServers" object.
func CheckMCPConfig(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("mcp_config: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxMCPConfig+1))
	if err != nil {
		return fmt.Errorf("mcp_config %q: %w", path, err)
	}
	if len(src) > maxMCPConfig {
		return fmt.Errorf("mcp_config %q: larger than %d bytes", path, maxMCPConfig)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(src, &doc); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return fmt.Errorf("mcp_config %q: not JSON: %v at byte %d", path, syntax, syntax.Offset)
		}
		return fmt.Errorf("mcp_config %q: not a JSON object: %w", path, err)
	}
	var servers map[string]json.RawMessage
	if raw, ok := doc["mcpServers"]; !ok || json.Unmarshal(raw, &servers) != nil || servers == nil {
		return fmt.Errorf("mcp_config %q: no \"mcpServers\" object", path)
	}
	return nil
}

// Register adds the agent's readiness checks: the CLI starts (its
// version, found once) and the MCP servers file (mcpConfig, absolute, or
// "" for none) parses.
func (a *Agent) Register(p *ready.Prober, mcpConfig string) {
	p.Add("claude", func(ctx context.Context) ready.Status {
		v, err := a.Version(ctx)
		switch {
		case errors.Is(err, ErrStopped):
			return ready.Status{Message: "not checked: vmd is shutting down"}
		case err != nil:
			return ready.Status{Message: err.Error()}
		}
		return ready.Status{OK: true, Version: v}
	})
	p.Add("mcp_config", func(context.Context) ready.Status {
		if err := CheckMCPConfig(mcpConfig); err != nil {
			return ready.Status{Message: err.Error(), Path: mcpConfig}
		}
		if mcpConfig == "" {
			return ready.Status{OK: true, Message: "none"}
		}
		return ready.Status{OK: true, Path: mcpConfig}
	})
}
