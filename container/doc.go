// Package container holds the tests of vmd's image, run with real podman:
// vmd as PID 1 and as the node user, /health, /ready and the image's
// HEALTHCHECK, a stop within the platform's window, the start-up error
// without a key, docker-compose.yml brought up and down, and commands:
// through the fake CLI mounted in, and through the image's own CLI,
// Playwright MCP and Chromium against a fake Anthropic API on the host
// (internal/fakeapi), an answer and a screenshot.
//
// They need podman and an image: build it (see .ci/run, or podman-setup.sh
// and base-images.sh here for a machine without a registry), then select
// them with the build tag podman:
//
//	VMD_TEST_IMAGE=localhost/vmd:dev go test -race -tags podman ./container/
//
// Selected, a missing image, podman or podman-compose fails them; without
// the tag there is nothing to run, so they never report ok while skipping.
package container
