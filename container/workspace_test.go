//go:build podman

package container

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/fakeapi"
	"github.com/vmd-dev/vmd/workspace/gittest"
)

// The settings of issue 12 these tests give vmd, by the names config
// declares for them.
const (
	agentName  = "vmd agent"
	agentEmail = "agent@vmd.invalid"
)

// gitEnv is the environment that lets the agent push to srv with token.
func gitEnv(srv *gittest.Server, token string) []string {
	return []string{
		"GITHUB_TOKEN=" + token,
		"GIT_CREDENTIAL_HOSTS=" + srv.URL,
		"VMD_GIT_AUTHOR_NAME=" + agentName,
		"VMD_GIT_AUTHOR_EMAIL=" + agentEmail,
	}
}

// TestAgentGit: as the agent sees it in the image, gh is there, git has
// vmd's author and credential helper, and the CLI runs in /workspace; it
// clones from a git server on the host that demands the token, commits and
// pushes a branch, and the token is written nowhere.
func TestAgentGit(t *testing.T) {
	t.Parallel()
	token := "ghp_container" + strings.Repeat("5", 27)
	srv := gittest.New(t, token)
	repo := srv.NewRepo(t, "app")
	v, _ := agent(t, gitEnv(srv, token)...)

	a := command(t, v, "Run in Bash: pwd && gh --version && git config --get-urlmatch credential.helper https://github.com/owner/repo.git && git config --get user.name")
	for _, want := range []string{"/workspace", "gh version", "!f()", agentName} {
		if !strings.Contains(a.Text, want) {
			t.Errorf("the agent's pwd, gh --version, credential helper, user.name = %q; want it to contain %q", a.Text, want)
		}
	}

	a = command(t, v, "Run in Bash: "+strings.Join([]string{
		"git clone -q " + repo + " app",
		"cd app",
		"git checkout -q -b agent-change",
		"echo 'made by the agent' >AGENT.md",
		"git add AGENT.md",
		"git commit -q -m 'Add AGENT.md'",
		"git push -q origin agent-change",
		"echo pushed by $(git log -1 --format='%an')",
	}, " && "))
	if !strings.Contains(a.Text, "pushed by "+agentName) {
		t.Errorf("clone, commit, push = %q; want pushed by %s", a.Text, agentName)
	}
	if got := srv.Show(t, "app", "agent-change", "AGENT.md"); got != "made by the agent\n" {
		t.Errorf("AGENT.md on the server's agent-change = %q; want the agent's", got)
	}
	// The token's only home is the environment: not the workspace, the
	// home (sessions, gh's and git's files), the temp directory or vmd's
	// files; not vmd's log.
	found := mustPodman(t, 60*time.Second, "exec", v.name, "sh", "-c",
		`grep -rlsF -- "$1" /workspace /home/node /tmp /etc/vmd || true`, "sh", token)
	if found != "" {
		t.Errorf("the token is written in:\n%s", found)
	}
	if logs := mustPodman(t, 30*time.Second, "logs", v.name); strings.Contains(logs, token) {
		t.Error("the token is in vmd's log")
	}
}

// TestComposeWorkspace: with docker-compose.yml, a file one command
// writes in the workspace is read by a command after podman-compose down
// and up, and the first command's session resumes. The real CLI in the
// image talks to a fake API on the host, reached at the gateway of the
// project's own network: podman-compose 1.0 puts every service on a
// network of the project's (no network_mode: host), so the test makes
// that network first and listens on its bridge address, which only the
// host and the project's containers reach.
func TestComposeWorkspace(t *testing.T) {
	image := testImage(t)
	c := newCompose(t, image, []string{"\nANTHROPIC_API_KEY=\n", "\nANTHROPIC_API_KEY=sk-ant-test-not-a-key\n"})
	t.Parallel()
	api := bridgeAPI(t, image, c.name+"_default")
	c.appendEnv("ANTHROPIC_BASE_URL="+api.URL(), "ENABLE_TOOL_SEARCH=false",
		"CLAUDE_CODE_MAX_RETRIES=1", "COMMAND_TIMEOUT_MS=120000")
	v := &vmd{base: "http://127.0.0.1:" + strconv.Itoa(c.port)}

	c.up()
	waitHealthy(t, v.base, 30*time.Second)
	const note = "kept across containers"
	first := command(t, v, "Run in Bash: echo '"+note+"' >note.txt && pwd")
	if !strings.Contains(first.Text, "/workspace") || first.SessionID == "" {
		t.Fatalf("writing note.txt = %+v; want it written in /workspace, and a session", first)
	}

	c.down()
	c.up()
	waitHealthy(t, v.base, 30*time.Second)
	if a := command(t, v, "Run in Bash: cat note.txt"); !strings.Contains(a.Text, note) {
		t.Errorf("note.txt after down and up = %q; want %q", a.Text, note)
	}
	body, _ := json.Marshal(map[string]string{"text": "What did I ask before?", "sessionId": first.SessionID})
	status, resp, err := post(v.base+"/command", string(body))
	if err != nil || status != http.StatusOK || !strings.Contains(resp, "You asked: Run in Bash: echo") {
		t.Errorf("resuming %s after down and up = %d %s %v; want 200 recalling the first prompt", first.SessionID, status, resp, err)
	}
}

// bridgeAPI makes the podman network name (removed with the project) and
// starts a fake API on its gateway address. The bridge gets that address
// only once a container is on it: a placeholder sleeps there until the
// test ends.
func bridgeAPI(t *testing.T, image, name string) *fakeapi.Server {
	t.Helper()
	mustPodman(t, 30*time.Second, "network", "create", "--label", testLabel, name)
	gw := mustPodman(t, 30*time.Second, "network", "inspect", "--format", "{{range .Subnets}}{{.Gateway}}{{end}}", name)
	hold := uniqueName("vmd-test-hold-")
	t.Cleanup(func() { podman(t, 60*time.Second, "rm", "-f", "-v", "-t", "0", hold) })
	mustPodman(t, 60*time.Second, "run", "-d", "--pull=never", "--name", hold, "--label", testLabel,
		"--network", name, "--entrypoint", "sleep", image, "infinity")
	api, err := fakeapi.New(fakeapi.WithAddr(net.JoinHostPort(gw, "0")), fakeapi.WithLogf(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	return api
}
