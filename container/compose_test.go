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

// composeProject is a copy of the repository's docker-compose.yml and a
// .env made from .env.example, in a directory of their own (podman-compose
// reads .env from the compose file's directory, and a test must not write
// one into the working tree), run under a project name of its own with the
// image under test (VMD_IMAGE) published on a free loopback port
// (VMD_PUBLISH).
type composeProject struct {
	t       *testing.T
	dir     string
	name    string
	port    int
	image   string
	downed  bool
	volumes []string // the compose file's named volumes, removed at cleanup
}

// newCompose makes a project whose .env is .env.example with the
// replacements of env (old, new pairs) applied, then each of set appended
// as a line. When the test ends it is brought down and its containers,
// volumes and network (podman-compose down leaves the network) removed.
func newCompose(t *testing.T, image string, env []string, set ...string) *composeProject {
	t.Helper()
	if _, err := exec.LookPath("podman-compose"); err != nil {
		t.Fatal("podman-compose is not installed (container/podman-setup.sh installs it)")
	}
	c := &composeProject{t: t, dir: t.TempDir(), name: uniqueName("vmdtest"), port: freePort(t), image: image}
	for _, f := range []string{"docker-compose.yml", ".env.example"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "docker-compose.yml" {
			if c.volumes = namedVolumes(string(b)); len(c.volumes) == 0 {
				t.Fatal("docker-compose.yml declares no named volumes; want the ones its service mounts")
			}
		}
		if f == ".env.example" {
			f = ".env"
			b = []byte(strings.NewReplacer(env...).Replace(string(b)) + strings.Join(set, "\n") + "\n")
		}
		if err := os.WriteFile(filepath.Join(c.dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.cleanup)
	return c
}

// namedVolumes lists the volumes a compose file declares in its top-level
// volumes block, so that cleanup removes every one (podman-compose down
// leaves them, and a list kept here once forgot vmd-state). The file is
// the repository's, in the indentation it has: two spaces before a name.
func namedVolumes(compose string) []string {
	var names []string
	in := false
	for _, line := range strings.Split(compose, "\n") {
		switch {
		case line == "volumes:":
			in = true
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "    "):
		case !strings.HasPrefix(line, " "):
			in = false
		case in && strings.HasPrefix(line, "  ") && strings.HasSuffix(strings.TrimSpace(line), ":"):
			names = append(names, strings.TrimSuffix(strings.TrimSpace(line), ":"))
		}
	}
	return names
}

// appendEnv adds lines to the project's .env.
func (c *composeProject) appendEnv(lines ...string) {
	c.t.Helper()
	f, err := os.OpenFile(filepath.Join(c.dir, ".env"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		c.t.Fatal(err)
	}
}

// run runs podman-compose with args and returns its combined output.
func (c *composeProject) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman-compose", append([]string{"-p", c.name, "-f", "docker-compose.yml"}, args...)...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(),
		"VMD_IMAGE="+c.image,
		"VMD_PUBLISH=127.0.0.1:"+strconv.Itoa(c.port),
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// up brings the project up and fails the test if it does not.
func (c *composeProject) up() {
	c.t.Helper()
	if out, err := c.run(2*time.Minute, "up", "-d"); err != nil {
		c.t.Fatalf("podman-compose up -d: %v\n%s", err, out)
	}
	c.downed = false
}

// down brings it down as an operator would (podman-compose 1.0 ignores
// stop_grace_period and stops with -t 1 unless told: give it the compose
// file's 15 s), and checks no container is left.
func (c *composeProject) down() {
	c.t.Helper()
	if out, err := c.run(2*time.Minute, "down", "-t", "15"); err != nil {
		c.t.Fatalf("podman-compose down: %v\n%s", err, out)
	}
	c.downed = true
	if left := mustPodman(c.t, 30*time.Second, "ps", "-a", "--filter", "label=io.podman.compose.project="+c.name, "--format", "{{.Names}}"); left != "" {
		c.t.Errorf("containers left after down: %s", left)
	}
}

// container is the name of the project's one running container.
func (c *composeProject) container() string {
	c.t.Helper()
	name := strings.TrimSpace(mustPodman(c.t, 30*time.Second, "ps", "--filter", "label=io.podman.compose.project="+c.name, "--format", "{{.Names}}"))
	if name == "" || strings.Contains(name, "\n") {
		c.t.Fatalf("containers of project %s: %q; want one", c.name, name)
	}
	return name
}

func (c *composeProject) cleanup() {
	t := c.t
	if !c.downed {
		if out, err := c.run(2*time.Minute, "down", "-t", "0"); err != nil {
			t.Logf("cleanup: podman-compose down: %v\n%s", err, out)
		}
	}
	for _, v := range c.volumes {
		if out, err := podman(t, 30*time.Second, "volume", "rm", "-f", c.name+"_"+v); err != nil {
			t.Logf("cleanup: podman volume rm: %v\n%s", err, out)
		}
	}
	// podman-compose 1.0 makes a network per project and down leaves it.
	if out, err := podman(t, 30*time.Second, "network", "rm", "-f", c.name+"_default"); err != nil {
		t.Logf("cleanup: podman network rm: %v\n%s", err, out)
	}
}

// TestCompose brings up the repository's docker-compose.yml, unmodified,
// with podman-compose: a .env written from .env.example with a key set.
// vmd answers /health and turns healthy, the compose settings reach the
// container, the volumes outlive it, and down removes it.
func TestCompose(t *testing.T) {
	image := testImage(t)
	token := uniqueName("token-")
	c := newCompose(t, image, []string{
		"\nANTHROPIC_API_KEY=\n", "\nANTHROPIC_API_KEY=sk-ant-test-not-a-key\n",
		"\n# API_TOKEN=\n", "\nAPI_TOKEN=" + token + "\n",
	})
	t.Parallel()
	port := c.port

	start := time.Now()
	c.up()
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

	name := c.container()
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
	if got := mustPodman(t, 30*time.Second, "inspect", "--format", "{{range .Mounts}}{{.Destination}} {{end}}", name); !strings.Contains(got, "/home/node/.claude") || !strings.Contains(got, "/workspace") {
		t.Errorf("mounts = %q; want volumes at /home/node/.claude and /workspace", got)
	}

	start = time.Now()
	c.down()
	t.Logf("down after %s", time.Since(start))

	// A new container finds the sessions of the old one.
	c.up()
	waitHealthy(t, base, 30*time.Second)
	name = c.container()
	if got := mustPodman(t, 30*time.Second, "exec", name, "cat", "/home/node/.claude/vmd-test-session"); got != "kept" {
		t.Errorf("after down and up, the sessions volume holds %q; want what the old container wrote", got)
	}
}
