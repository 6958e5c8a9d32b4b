//go:build podman

package container

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/poll"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// aKey stands in for ANTHROPIC_API_KEY where no command reaches the API.
var aKey = map[string]string{"ANTHROPIC_API_KEY": "sk-ant-test-not-a-key"}

// TestImageRuns: vmd is PID 1, runs as node, answers /health on the
// published port, and the image's own HEALTHCHECK passes.
func TestImageRuns(t *testing.T) {
	image := testImage(t)
	t.Parallel()
	v := startVMD(t, image, false, aKey)
	waitHealthy(t, v.base, 30*time.Second)

	if got := v.exec(t, "cat", "/proc/1/cmdline"); !strings.HasPrefix(got, "/usr/local/bin/vmd\x00") {
		t.Errorf("PID 1's command line = %q; want /usr/local/bin/vmd ...", got)
	}
	// PID 1's real and effective uid, and the name they map to.
	status := v.exec(t, "cat", "/proc/1/status")
	if !strings.Contains(status, "\nUid:\t1000\t1000\t") {
		t.Errorf("PID 1 is not uid 1000 (node):\n%s", status)
	}
	if got := v.exec(t, "id", "-un", "1000"); got != "node" {
		t.Errorf("id -un 1000 = %q; want node", got)
	}
	// The image's HEALTHCHECK, run the way the engine runs it (podman has
	// no timer for it without systemd, so it is run here on demand).
	if out, err := podman(t, 30*time.Second, "healthcheck", "run", v.name); err != nil {
		t.Errorf("podman healthcheck run: %v", err)
	} else if out != "" && out != "healthy" {
		t.Errorf("podman healthcheck run = %q; want healthy", out)
	}
	if got := v.inspect(t, "{{.State.Health.Status}}"); got != "healthy" {
		t.Errorf("health status = %q; want healthy", got)
	}
	// /ready: the CLI runs (claude --version), IMAGES_DIR is writable and
	// .mcp.json parses, in the image as built. The first probe runs the
	// CLI, which may take a few seconds on a busy machine.
	vmdtest.Eventually(t, "GET /ready to answer 200 ready", func() bool {
		status, body, err := get(v.base + "/ready")
		return err == nil && status == http.StatusOK && strings.Contains(body, `"ready":true`)
	})
	// Nothing at start-up says commands will fail (as root, or without
	// the CLI on PATH).
	if logs := mustPodman(t, 30*time.Second, "logs", v.name); strings.Contains(logs, "running as root") || strings.Contains(logs, "claude not found") {
		t.Errorf("start-up warns that commands will fail:\n%s", logs)
	}
	// An unknown route still answers JSON: it is vmd, not something else,
	// on the port.
	if status, body, err := get(v.base + "/nope"); err != nil || status != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
		t.Errorf("GET /nope = %d %s %v; want 404 not_found", status, body, err)
	}
}

// TestAgentInstalled: the pinned CLI, Playwright MCP and Chromium run as
// the node user, from PATH, with nothing fetched.
func TestAgentInstalled(t *testing.T) {
	image := testImage(t)
	t.Parallel()
	v := startVMD(t, image, false, aKey)
	waitHealthy(t, v.base, 30*time.Second)

	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"claude", "--version"}, "2.1.332"},
		{[]string{"sh", "-c", "command -v playwright-mcp"}, "/opt/vmd-agent/node_modules/.bin/playwright-mcp"},
		{[]string{"chromium", "--version"}, "Chromium"},
		{[]string{"git", "--version"}, "git version"},
		{[]string{"gh", "--version"}, "gh version"},
		// vmd's files are root's and read-only to the agent; the
		// workspace is the agent's, and where vmd (and so the CLI) runs.
		{[]string{"stat", "-c", "%U %a %n", "/etc/vmd/vm.hcl", "/etc/vmd/.mcp.json"}, "root 644 /etc/vmd/vm.hcl\nroot 644 /etc/vmd/.mcp.json"},
		{[]string{"sh", "-c", "test -w /etc/vmd/vm.hcl || test -w /etc/vmd || echo read-only"}, "read-only"},
		{[]string{"stat", "-c", "%U", "/workspace"}, "node"},
		{[]string{"readlink", "/proc/1/cwd"}, "/workspace"},
		{[]string{"sh", "-c", "echo $CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"}, "1"},
		{[]string{"sh", "-c", "touch $IMAGES_DIR/probe && echo writable"}, "writable"},
	} {
		t.Run(tc.cmd[0]+" "+tc.cmd[len(tc.cmd)-1], func(t *testing.T) {
			if got := v.exec(t, tc.cmd...); !strings.Contains(got, tc.want) {
				t.Errorf("%q = %q; want it to contain %q", tc.cmd, got, tc.want)
			}
		})
	}
	// Nothing of vmd's in the agent's workspace.
	if got := v.exec(t, "ls", "-A", "/workspace"); got != "" {
		t.Errorf("ls -A /workspace = %q; want an empty workspace", got)
	}
}

// TestStopIdle: podman stop (SIGTERM) ends an idle vmd with status 0 well
// within Docker's 10 s.
func TestStopIdle(t *testing.T) {
	image := testImage(t)
	t.Parallel()
	v := startVMD(t, image, false, aKey)
	waitHealthy(t, v.base, 30*time.Second)

	t.Logf("idle stop: %s", stop(t, v))
}

// TestStopBusy: SIGTERM during a command that would run for minutes (the
// CLI retrying an API that is not there): vmd drains for its 8 s, kills the
// command, answers it 503, and exits 0 — all before a 10 s kill window ends.
func TestStopBusy(t *testing.T) {
	image := testImage(t)
	t.Parallel()
	env := map[string]string{
		"ANTHROPIC_API_KEY":  "sk-ant-test-not-a-key",
		"ANTHROPIC_BASE_URL": "http://127.0.0.1:9", // discard: nothing answers
	}
	v := startVMD(t, image, false, env)
	waitHealthy(t, v.base, 30*time.Second)

	type answer struct {
		status int
		body   string
		err    error
	}
	first := make(chan answer, 1)
	go func() {
		status, body, err := post(v.base+"/command", `{"text":"What is 2+2?"}`)
		first <- answer{status, body, err}
	}()
	// Busy once vmd has taken the command (a probe POST sent earlier
	// could take the slot itself); then a second command gets 409.
	vmdtest.Eventually(t, "GET /status to say busy", func() bool {
		status, body, err := get(v.base + "/status")
		return err == nil && status == http.StatusOK && strings.Contains(body, `"busy":true`)
	})
	if status, body, err := post(v.base+"/command", `{"text":"second"}`); err != nil || status != http.StatusConflict {
		t.Fatalf("second POST /command = %d %s %v; want 409 busy", status, body, err)
	}

	t.Logf("busy stop: %s", stop(t, v))
	select {
	case a := <-first:
		if a.err != nil || a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, `"shutting_down"`) {
			t.Errorf("the command in flight got %d %s %v; want 503 shutting_down", a.status, a.body, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the command in flight got no answer")
	}
}

// stop runs podman stop with Docker's default kill window (10 s: SIGTERM,
// then SIGKILL when it runs out), checks that vmd exited by itself within
// it (status 0 and its "stopped" line; podman's SIGKILL would be 137), and
// returns how long the stop took, podman's own work included, for the log:
// the window is the contract, not a duration.
func stop(t *testing.T, v *vmd) time.Duration {
	t.Helper()
	start := time.Now()
	mustPodman(t, 60*time.Second, "stop", "-t", "10", v.name)
	took := time.Since(start)
	if got := v.inspect(t, "{{.State.ExitCode}}"); got != "0" {
		t.Errorf("exit code after podman stop = %s; want 0", got)
	}
	if logs := mustPodman(t, 30*time.Second, "logs", v.name); !strings.Contains(logs, "stopped") {
		t.Errorf("log has no \"stopped\" line:\n%s", logs)
	}
	return took
}

// TestNoKey: without ANTHROPIC_API_KEY the container exits at once,
// non-zero, saying why.
func TestNoKey(t *testing.T) {
	image := testImage(t)
	t.Parallel()
	name := uniqueName("vmd-test-")
	t.Cleanup(func() { podman(t, 60*time.Second, "rm", "-f", "-v", "-t", "0", name) })
	start := time.Now()
	out, err := podman(t, 60*time.Second, "run", "--pull=never", "--name", name, "--label", testLabel, image)
	if err == nil {
		t.Fatalf("podman run without a key exited 0; want non-zero. Output:\n%s", out)
	}
	if got := mustPodman(t, 30*time.Second, "inspect", "--format", "{{.State.ExitCode}}", name); got != "1" {
		t.Errorf("exit code = %s; want 1", got)
	}
	logs := mustPodman(t, 30*time.Second, "logs", name)
	if !strings.Contains(logs, "ANTHROPIC_API_KEY is not set") {
		t.Errorf("log = %q; want it to say ANTHROPIC_API_KEY is not set", logs)
	}
	t.Logf("exited after %s: %s", time.Since(start), logs)
}

// TestCommand runs a command through vmd in the container with the fake
// CLI mounted in (no API needed): the answer, a screenshot listed and
// served, and vmd, as PID 1 and not root, reaping the orphans and killing
// the escaped session the command left behind, once the command's process
// has ended: cold, after its answer; warm (as the image ships), once its
// conversation's process has waited out warm_idle (5 s here, no spare).
// Until then what a warm turn leaves is its process's own: the fake CLI
// reaps none of its children, and their zombies are its, not vmd's.
func TestCommand(t *testing.T) {
	image := testImage(t)
	t.Parallel()
	for _, warm := range []bool{true, false} {
		t.Run(map[bool]string{true: "warm", false: "cold"}[warm], func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"ANTHROPIC_API_KEY": "sk-ant-test-not-a-key", "CLAUDE_BIN": "/usr/local/bin/fakeclaude",
				"WARM": strconv.FormatBool(warm), "WARM_IDLE_MS": "5000", "PREWARM": "false"}
			v := startVMD(t, image, false, env, "-v", fakeClaude+":/usr/local/bin/fakeclaude:ro")
			waitHealthy(t, v.base, 30*time.Second)
			runCommand(t, v)
			if warm {
				if live, _ := belowVMD(t, v); len(live) == 0 {
					t.Errorf("nothing below vmd right after a warm answer; want its conversation's process")
				}
			}
			// The command did leave processes behind, for vmd to deal with.
			vmdtest.Eventually(t, `a "killed stray processes" line: the escaped session killed`, func() bool {
				return strings.Contains(mustPodman(t, 30*time.Second, "logs", v.name), "killed stray processes")
			})
			var live, zombies []string
			if !poll.Until(func() bool {
				live, zombies = belowVMD(t, v)
				return len(live)+len(zombies) == 0
			}) {
				t.Errorf("left below vmd: %q, zombies: %q; want nothing", live, zombies)
			}
		})
	}
}

// runCommand runs one command that takes a screenshot, leaves three
// orphans and an escaped session, and says four; it checks the answer and
// the screenshot served.
func runCommand(t *testing.T, v *vmd) {
	t.Helper()
	shot := uniqueName("shot-") + ".png"
	status, body, err := post(v.base+"/command", `{"text":"orphans 3\nescape\nimage `+shot+`\nsay four"}`)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST /command = %d %s %v; want 200", status, body, err)
	}
	var res struct {
		Text     string   `json:"text"`
		Images   []string `json:"images"`
		ExitCode *int     `json:"exitCode"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if !strings.Contains(res.Text, "four") || res.ExitCode == nil || *res.ExitCode != 0 {
		t.Errorf("answer = %s; want text with four, exitCode 0", body)
	}
	if want := []string{"/images/" + shot}; !slices.Equal(res.Images, want) {
		t.Errorf("images = %q; want %q", res.Images, want)
	}
	resp, err := client.Get(v.base + "/images/" + shot)
	if err != nil {
		t.Fatal(err)
	}
	png, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("GET /images/%s = %d %s %q...; want 200 image/png with a PNG", shot, resp.StatusCode, resp.Header.Get("Content-Type"), png[:min(8, len(png))])
	}
}

// belowVMD lists the container's processes that are children of PID 1
// (processes podman exec starts have parent 0), and its zombies, as
// /proc/<pid>/stat lines.
func belowVMD(t *testing.T, v *vmd) (live, zombies []string) {
	t.Helper()
	left := v.exec(t, "sh", "-c", `for s in /proc/[0-9]*/stat; do read -r l <"$s" && echo "$l"; done 2>/dev/null`)
	for _, line := range strings.Split(left, "\n") {
		// pid (comm) state ppid ...
		i := strings.LastIndex(line, ")")
		if i < 0 {
			continue
		}
		switch f := strings.Fields(line[i+1:]); {
		case len(f) < 2:
		case f[0] == "Z":
			zombies = append(zombies, line)
		case f[1] == "1":
			live = append(live, line)
		}
	}
	return live, zombies
}
