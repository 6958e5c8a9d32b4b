// Package e2e holds vmd's real-stack tests: vmd, the real Claude Code CLI,
// real Playwright MCP and the system's Chromium, run outside any container,
// against a fake Anthropic API on loopback (internal/fakeapi). Nothing
// leaves the machine. The tests are skipped when the CLI, Playwright MCP or
// Chromium are missing (.ci/install-agent installs them), unless
// VMD_REQUIRE_REAL=1, when they fail instead.
package e2e
