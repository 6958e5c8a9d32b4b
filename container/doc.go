// Package container holds the tests of vmd's image, run with real podman:
// vmd as PID 1 and as the node user, /health, /ready and the image's
// HEALTHCHECK, a stop within the platform's window, the start-up error
// without a key, docker-compose.yml brought up and down, and commands:
// through the fake CLI mounted in, and through the image's own CLI,
// Playwright MCP and Chromium against a fake Anthropic API on the host
// (internal/fakeapi), an answer and a screenshot.
//
// They need an image: build it (see .ci/run, or podman-setup.sh and
// base-images.sh here for a machine without a registry), then
//
//	VMD_TEST_IMAGE=localhost/vmd:dev go test -race ./container/
//
// Without VMD_TEST_IMAGE they skip, unless VMD_REQUIRE_REAL=1, which makes a
// missing image or podman a failure (CI sets it).
package container
