//go:build podman

package container

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCompose brings up the repository's docker-compose.yml, unmodified,
// with podman-compose: the image under test (VMD_IMAGE), a .env written
// from .env.example with a key set, published on a free loopback port
// (VMD_PUBLISH). vmd answers /health and turns healthy, the compose settings
// reach the container, and down removes it.
func TestCompose(t *testing.T) {
	image := testImage(t)
	if _, err := exec.LookPath("podman-compose"); err != nil {
		t.Fatal("podman-compose is not installed (container/podman-setup.sh installs it)")
	}
	t.Parallel()

	// A copy of the compose file and .env.example: podman-compose reads .env
	// from the compose file's directory, and the test must not write one
	// into the working tree.
	dir := t.TempDir()
	token := uniqueName("token-")
	for _, f := range []string{"docker-compose.yml", ".env.example"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == ".env.example" {
			f = ".env"
			b = []byte(strings.NewReplacer(
				"\nANTHROPIC_API_KEY=\n", "\nANTHROPIC_API_KEY=sk-ant-test-not-a-key\n",
				"\n# API_TOKEN=\n", "\nAPI_TOKEN="+token+"\n",
			).Replace(string(b)))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	project := uniqueName("vmdtest")
	port := freePort(t)
	compose := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "podman-compose", append([]string{"-p", project, "-f", "docker-compose.yml"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"VMD_IMAGE="+image,
			"VMD_PUBLISH=127.0.0.1:"+strconv.Itoa(port),
		)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			if out, err := compose(2*time.Minute, "down", "-t", "0"); err != nil {
				t.Logf("cleanup: podman-compose down: %v\n%s", err, out)
			}
		}
		if out, err := podman(t, 30*time.Second, "volume", "rm", "-f", project+"_claude-sessions"); err != nil {
			t.Logf("cleanup: podman volume rm: %v\n%s", err, out)
		}
	})

	start := time.Now()
	if out, err := compose(2*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("podman-compose up -d: %v\n%s", err, out)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitHealthy(t, base, 30*time.Second)
	t.Logf("up and answering /health after %s", time.Since(start))

	// .env reached vmd: with API_TOKEN set, /ready wants it (/health not).
	req, _ := http.NewRequest("GET", base+"/ready", nil)
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer " + token, http.StatusOK},
	} {
		req.Header.Set("Authorization", tc.auth)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /ready with Authorization %q = %d; want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}

	name := strings.TrimSpace(mustPodman(t, 30*time.Second, "ps", "--filter", "label=io.podman.compose.project="+project, "--format", "{{.Names}}"))
	if name == "" || strings.Contains(name, "\n") {
		t.Fatalf("containers of project %s: %q; want one", project, name)
	}
	if _, err := podman(t, 30*time.Second, "healthcheck", "run", name); err != nil {
		t.Errorf("podman healthcheck run: %v", err)
	}
	for _, tc := range []struct{ format, want string }{
		{"{{.State.Health.Status}}", "healthy"},
		{"{{.HostConfig.ShmSize}}", strconv.Itoa(1 << 30)},
		{"{{.HostConfig.Memory}}", strconv.Itoa(4 << 30)},
		{"{{.HostConfig.RestartPolicy.Name}}", "unless-stopped"},
		{"{{json .HostConfig.PortBindings}}", `{"3001/tcp":[{"HostIp":"127.0.0.1","HostPort":"` + strconv.Itoa(port) + `"}]}`},
		{"{{.Config.User}}", "node"},
	} {
		if got := mustPodman(t, 30*time.Second, "inspect", "--format", tc.format, name); got != tc.want {
			t.Errorf("podman inspect %s = %q; want %q", tc.format, got, tc.want)
		}
	}

	// The CLI's sessions live on a volume node can write: what is there
	// outlives the container.
	if out, err := podman(t, 30*time.Second, "exec", name, "sh", "-c", "echo kept > /home/node/.claude/vmd-test-session"); err != nil {
		t.Errorf("writing in /home/node/.claude as node: %v\n%s", err, out)
	}
	if got := mustPodman(t, 30*time.Second, "inspect", "--format", "{{range .Mounts}}{{.Destination}} {{end}}", name); !strings.Contains(got, "/home/node/.claude") {
		t.Errorf("mounts = %q; want a volume at /home/node/.claude", got)
	}

	// podman-compose 1.0 ignores stop_grace_period and stops with -t 1
	// unless told: give it the compose file's 15 s.
	start = time.Now()
	if out, err := compose(2*time.Minute, "down", "-t", "15"); err != nil {
		t.Fatalf("podman-compose down: %v\n%s", err, out)
	}
	downDone = true
	t.Logf("down after %s", time.Since(start))
	if left := mustPodman(t, 30*time.Second, "ps", "-a", "--filter", "label=io.podman.compose.project="+project, "--format", "{{.Names}}"); left != "" {
		t.Errorf("containers left after down: %s", left)
	}

	// A new container finds the sessions of the old one.
	if out, err := compose(2*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("podman-compose up -d, again: %v\n%s", err, out)
	}
	downDone = false
	waitHealthy(t, base, 30*time.Second)
	name = strings.TrimSpace(mustPodman(t, 30*time.Second, "ps", "--filter", "label=io.podman.compose.project="+project, "--format", "{{.Names}}"))
	if got := mustPodman(t, 30*time.Second, "exec", name, "cat", "/home/node/.claude/vmd-test-session"); got != "kept" {
		t.Errorf("after down and up, the sessions volume holds %q; want what the old container wrote", got)
	}
}
