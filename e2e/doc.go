// Package e2e holds vmd's real-stack tests: vmd, the real Claude Code CLI,
// real Playwright MCP and the system's Chromium, run outside any container,
// against a fake Anthropic API on loopback (internal/fakeapi). Nothing
// leaves the machine.
//
// They are selected explicitly with the build tag real, after
// .ci/install-agent has installed the CLI, Playwright MCP and Chromium:
//
//	go test -race -tags real ./e2e/
//
// Selected, a missing tool fails them; without the tag there is nothing to
// run, so they never report ok while skipping.
package e2e
