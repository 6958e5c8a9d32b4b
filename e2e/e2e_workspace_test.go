//go:build real

package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmd-dev/vmd/internal/testfs"
	"github.com/vmd-dev/vmd/workspace/gittest"
)

// gitStack is a stack with a git server on loopback that demands a token
// (git http-backend, workspace/gittest) and the settings that let the
// agent push to it.
type gitStack struct {
	*stack
	srv  *gittest.Server
	repo string
	env  []string // vmd's environment for git, the token left out
}

const (
	agentName  = "vmd agent"
	agentEmail = "agent@vmd.invalid"
)

func newGitStack(t *testing.T, token string) *gitStack {
	t.Helper()
	s := newStack(t)
	srv := gittest.New(t, token)
	gs := &gitStack{stack: s, srv: srv, repo: srv.NewRepo(t, "app")}
	// The settings vmd reads: it writes the git configuration from them
	// (under state_dir, $HOME/.vmd) and hands it to the CLI.
	gs.env = []string{
		"WORKSPACE_DIR=" + filepath.Join(s.dir, "work"),
		"VMD_GIT_AUTHOR_NAME=" + agentName,
		"VMD_GIT_AUTHOR_EMAIL=" + agentEmail,
		"GIT_CREDENTIAL_HOSTS=" + srv.URL,
	}
	return gs
}

// pushPrompt clones the repository, commits a file on a new branch and
// pushes it, through the CLI's Bash tool. The steps are joined by && (the
// tool runs the command its own way, where set -e does not hold), so the
// first failure ends it and marks the tool's result an error.
func pushPrompt(repo, branch string) string {
	return "Run in Bash: " + strings.Join([]string{
		"git clone -q " + repo + " app-" + branch,
		"cd app-" + branch,
		"git checkout -q -b " + branch,
		"echo 'made by the agent' >AGENT.md",
		"git add AGENT.md",
		"git commit -q -m 'Add AGENT.md'",
		"git push -q origin " + branch,
		"echo pushed by $(git log -1 --format='%an <%ae>')",
	}, " && ")
}

// TestWorkspacePush: the real CLI, asked by the fake API to run git in
// its Bash tool, clones from a server that demands the token, commits and
// pushes a branch. The server sees the push with the token; the token is
// in no file the stack's processes could write, in no log line of vmd, and
// in nothing the CLI sent the API.
func TestWorkspacePush(t *testing.T) {
	token := "ghp_e2e" + strings.Repeat("7", 30)
	gs := newGitStack(t, token)
	v := gs.start(t, false, append(gs.env, "GITHUB_TOKEN="+token)...)

	a := v.command(pushPrompt(gs.repo, "agent-change"))
	if a.status != http.StatusOK || !strings.Contains(a.Text, "pushed by "+agentName+" <"+agentEmail+">") {
		t.Fatalf("clone, commit, push = %v; want 200 saying pushed by %s", a, agentName)
	}
	if got := gs.srv.Show(t, "app", "agent-change", "AGENT.md"); got != "made by the agent\n" {
		t.Errorf("AGENT.md on the server's agent-change = %q; want the agent's", got)
	}
	if pushes := gs.srv.Pushes(); len(pushes) != 1 || pushes[0].User != "x-access-token" {
		t.Errorf("pushes = %+v; want one, as x-access-token with the token", pushes)
	}
	// s.dir holds the workspace, HOME (the CLI's sessions and settings),
	// TMPDIR, the images and the git configuration.
	if found := gittest.FilesContaining(t, token, gs.dir); len(found) > 0 {
		t.Errorf("the token is written in %v", found)
	}
	if strings.Contains(v.logs(), token) {
		t.Error("the token is in vmd's log")
	}
	if strings.Contains(a.body, token) {
		t.Errorf("the token is in the answer: %s", a.body)
	}
	for _, r := range checkRequests(t, gs.api) {
		if bytes.Contains(r.Body, []byte(token)) {
			t.Errorf("the CLI sent the token to the API: %s", r.Body)
		}
	}
}

// TestWorkspacePushRefused: with a wrong token, or none, the push fails
// at once (no password prompt: the command would hang until its timeout)
// and the answer carries git's own message.
func TestWorkspacePushRefused(t *testing.T) {
	const token = "ghp_e2eright"
	cases := []struct {
		name string
		env  string
		want []string
	}{
		{"wrong token", "GITHUB_TOKEN=ghp_e2ewrong", []string{"Authentication failed"}},
		{"no token", "GITHUB_TOKEN=", []string{"terminal prompts disabled", "GITHUB_TOKEN is not set"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gs := newGitStack(t, token)
			v := gs.start(t, false, append(gs.env, c.env)...)
			a := v.command(pushPrompt(gs.repo, "refused"))
			if a.status != http.StatusOK || !strings.Contains(a.Text, "Tool failed") {
				t.Fatalf("push with %s = %v; want 200 with Tool failed and git's message", c.name, a)
			}
			for _, w := range c.want {
				if !strings.Contains(a.Text, w) {
					t.Errorf("the answer lacks git's %q: %s", w, a.Text)
				}
			}
			if len(gs.srv.Pushes()) != 0 || gs.srv.Refused() == 0 {
				t.Errorf("server: pushes %v, %d refused; want no push, some refused", gs.srv.Pushes(), gs.srv.Refused())
			}
			if _, err := os.Stat(filepath.Join(gs.dir, "work", "app-refused")); err == nil {
				t.Error("the clone was made without the token")
			}
		})
	}
}

// TestConversationAcrossRestarts: the real CLI files its sessions by
// working directory under $HOME/.claude, and vmd runs it in the same
// workspace for every command, so a sessionId answered before vmd stops
// still resumes once it is started again.
func TestConversationAcrossRestarts(t *testing.T) {
	s := newStack(t)
	v := s.start(t, false)
	first := v.command("What is 2+2?")
	if first.status != http.StatusOK || first.SessionID == "" {
		t.Fatalf("What is 2+2? = %v; want 200 with a session id", first)
	}
	v.cmd.Process.Signal(syscall.SIGTERM)
	if code := v.proc.WaitExit(t); code != 0 {
		t.Fatalf("vmd exited %d after SIGTERM; want 0", code)
	}

	v = s.start(t, false)
	next := v.commandWith(map[string]string{"text": "What did I ask before?", "sessionId": first.SessionID})
	if next.status != http.StatusOK || strings.TrimSpace(next.Text) != "You asked: What is 2+2?" || next.SessionID != first.SessionID {
		t.Errorf("resumed after a restart = %v; want 200 recalling the first prompt in session %s", next, first.SessionID)
	}
}

// TestDiskGuard: with the workspace on a small tmpfs filled past
// min_free_disk, a command is refused 507 insufficient_storage naming the
// filesystem, /ready fails saying the same, /status and /metrics show the
// free space; once space is freed, commands run again. It needs root (to
// mount).
func TestDiskGuard(t *testing.T) {
	s := newStack(t)
	ws := filepath.Join(s.dir, "workspace")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	testfs.MountTmpfs(t, ws, "64m")
	s.chown(ws)
	v := s.start(t, false, "WORKSPACE_DIR="+ws, "WORK_DIR="+ws, "MIN_FREE_DISK_MB=32")

	big := filepath.Join(ws, "big")
	if err := os.WriteFile(big, make([]byte, 48<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	a := v.command("What is 2+2?")
	if a.status != http.StatusInsufficientStorage || a.Error != "insufficient_storage" || !strings.Contains(a.Message, ws) {
		t.Errorf("a command with 16 of 64 MiB free = %v; want 507 insufficient_storage naming %s", a, ws)
	}
	status, body := v.get(t, "/ready")
	if status == http.StatusOK || !strings.Contains(body, ws) {
		t.Errorf("GET /ready with 16 MiB free = %d %s; want a failure naming %s", status, body, ws)
	}
	if _, body := v.get(t, "/status"); !strings.Contains(body, ws) {
		t.Errorf("GET /status = %s; want the free space of %s", body, ws)
	}
	if _, body := v.get(t, "/metrics"); !strings.Contains(body, "vmd_disk_free_bytes") {
		t.Error("GET /metrics has no vmd_disk_free_bytes")
	}

	if err := os.Remove(big); err != nil {
		t.Fatal(err)
	}
	if status, body := v.get(t, "/ready"); status != http.StatusOK {
		t.Errorf("GET /ready once freed = %d %s; want 200", status, body)
	}
	if a := v.command("What is 2+2?"); a.status != http.StatusOK || strings.TrimSpace(a.Text) != "4" {
		t.Errorf("a command once freed = %v; want 200 4", a)
	}
}

// get fetches path from vmd and returns the status and body (0 and the
// error if the request failed).
func (v *vmd) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := v.client.Get(v.url + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
