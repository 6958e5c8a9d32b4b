//go:build podman

package container

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testLabel marks every container these tests start with the run they
// belong to, vmd-test=$VMD_TEST_RUN ("local" when unset): .ci/run removes
// its own run's leftovers, never those of another run on the same host.
var testLabel = "vmd-test=" + cmp.Or(os.Getenv("VMD_TEST_RUN"), "local")

// testImage is the image under test, from VMD_TEST_IMAGE. Without one (or
// without podman) the test fails: it was selected (-tags podman).
func testImage(t *testing.T) string {
	t.Helper()
	image := os.Getenv("VMD_TEST_IMAGE")
	_, podmanErr := exec.LookPath("podman")
	why := ""
	switch {
	case image == "":
		why = "VMD_TEST_IMAGE is not set: build the image (see .ci/run) and set it to test the image"
	case podmanErr != nil:
		why = "podman is not installed (container/podman-setup.sh installs it): " + podmanErr.Error()
	}
	if why != "" {
		t.Fatal(why)
	}
	return image
}

// podman runs podman with args and returns its combined output.
func podman(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "podman", args...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("podman %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), err
}

// mustPodman is podman, failing the test on error.
func mustPodman(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := podman(t, timeout, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// uniqueName is a container or project name no concurrent run shares.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// freePort is a loopback TCP port free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// vmd is a container of the image under test.
type vmd struct {
	name string
	base string // http://127.0.0.1:PORT
}

// startVMD runs the image detached, with env and extra podman run flags,
// and removes the container when the test ends, whatever happened. With
// hostNet the container shares the host's network (vmd listens on a free
// port of its own); otherwise vmd's 3001 is published on a free loopback
// port, as docker-compose.yml does.
func startVMD(t *testing.T, image string, hostNet bool, env map[string]string, extra ...string) *vmd {
	t.Helper()
	v := &vmd{name: uniqueName("vmd-test-")}
	port := freePort(t)
	v.base = "http://127.0.0.1:" + strconv.Itoa(port)
	args := []string{"run", "-d", "--pull=never", "--name", v.name, "--label", testLabel, "--shm-size=1g"}
	if hostNet {
		// On the host's network: loopback only, not every interface.
		args = append(args, "--network=host", "-e", "HOST=127.0.0.1", "-e", "PORT="+strconv.Itoa(port))
	} else {
		// Published on the host's loopback only, as compose does: the
		// image listens on every interface, which without a token vmd
		// allows only when told, as .env.example tells it.
		args = append(args, "-p", "127.0.0.1:"+strconv.Itoa(port)+":3001", "-e", "ALLOW_UNAUTHENTICATED=true")
	}
	for k, val := range env {
		args = append(args, "-e", k+"="+val)
	}
	args = append(args, extra...)
	args = append(args, image)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := podman(t, 30*time.Second, "logs", v.name)
			t.Logf("logs of %s:\n%s", v.name, logs)
		}
		if _, err := podman(t, 60*time.Second, "rm", "-f", "-v", "-t", "0", v.name); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	mustPodman(t, 60*time.Second, args...)
	return v
}

// waitHealthy polls GET /health until it answers 200 or the deadline passes.
func waitHealthy(t *testing.T, base string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		status, body, err := get(base + "/health")
		if err == nil && status == http.StatusOK {
			if !strings.Contains(body, `"status":"ok"`) {
				t.Fatalf("GET /health = %d %s; want {\"status\":\"ok\"}", status, body)
			}
			return
		}
		last = fmt.Sprint(status, " ", body, " ", err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s/health did not answer 200 within %s; last: %s", base, within, last)
}

// client keeps no idle connections: none outlives a test (goleak).
var client = &http.Client{
	Timeout:   10 * time.Minute,
	Transport: &http.Transport{DisableKeepAlives: true},
}

func get(url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func post(url, body string) (int, string, error) {
	resp, err := client.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// exec runs a command inside the container, as the image's user.
func (v *vmd) exec(t *testing.T, args ...string) string {
	t.Helper()
	return mustPodman(t, 60*time.Second, append([]string{"exec", v.name}, args...)...)
}

// inspect returns a podman inspect --format field of the container.
func (v *vmd) inspect(t *testing.T, format string) string {
	t.Helper()
	return mustPodman(t, 30*time.Second, "inspect", "--format", format, v.name)
}
