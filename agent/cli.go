package agent

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// screenshotHint tells Claude where a screenshot must go to reach the user:
// Playwright MCP saves one taken without a filename in its output directory
// (the images directory, per .mcp.json), but one given a relative filename
// in the working directory, where vmd would never see it.
const screenshotHint = "Screenshots reach the user only from the directory %s. When you save one " +
	"(Playwright's browser_take_screenshot), leave out the filename so that it lands there, or give an " +
	"absolute path inside that directory."

// Args are the CLI's arguments: claude_args, then the MCP servers file
// (which is where screenshots come from) and, unless claude_args sets a
// system prompt of its own, where screenshots must go.
func Args(claudeArgs []string, imagesDir, mcpConfig string) []string {
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

// Env is vmd's environment for the CLI without vmd's own settings (drop
// names them: a PORT=3001 would send the dev servers the agent starts onto
// vmd's port), and with IMAGES_DIR, absolute, for the MCP config to use.
func Env(environ, drop []string, imagesDir string) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(drop, name) && name != "IMAGES_DIR" {
			env = append(env, kv)
		}
	}
	if imagesDir == "" {
		return env
	}
	return append(env, "IMAGES_DIR="+imagesDir)
}

// resolveBin finds the CLI, absolute: it starts in its working directory,
// where a relative path would change meaning. A lookup on PATH at each use,
// which starts nothing.
func resolveBin(bin string) (string, error) {
	path, err := exec.LookPath(bin)
	if err == nil {
		path, err = filepath.Abs(path)
	}
	if err != nil {
		return "", fmt.Errorf("claude_bin %q: %w", bin, err)
	}
	return path, nil
}
