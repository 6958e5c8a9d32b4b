package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// postSession posts a command that continues session id.
func postSession(url, text, id string) reply {
	return postBody(url, map[string]string{"text": text, "sessionId": id})
}

// The CLI runs in the workspace, with vmd's git configuration (written
// under state_dir) and no way to prompt for a password; GITHUB_TOKEN
// reaches it as it is.
func TestAgentWorkspace(t *testing.T) {
	t.Parallel()
	home, work := t.TempDir(), t.TempDir()
	env := append(baseEnv(t), "HOME="+home, "WORKSPACE_DIR="+work, "GITHUB_TOKEN=ghp_test",
		"VMD_GIT_AUTHOR_NAME=vmd test", "GIT_CONFIG_GLOBAL=/elsewhere")
	p := startVMD(t, env)
	r := post(p.url, "pwd\nenv GIT_CONFIG_GLOBAL\nenv GIT_TERMINAL_PROMPT\nenv GITHUB_TOKEN")
	gitconfig := filepath.Join(home, ".vmd", "git", "gitconfig")
	want := work + "\nGIT_CONFIG_GLOBAL=" + gitconfig + "\nGIT_TERMINAL_PROMPT=0\nGITHUB_TOKEN=ghp_test\n"
	if r.status != 200 || r.body["text"] != want {
		t.Errorf("the CLI's directory and git variables = %d %q; want %q", r.status, r.body["text"], want)
	}
	b, err := os.ReadFile(gitconfig)
	if err != nil || !strings.Contains(string(b), `name = "vmd test"`) || strings.Contains(string(b), "ghp_test") {
		t.Errorf("%s = %q, %v; want the author, and no token", gitconfig, b, err)
	}
	if p.logged("no GITHUB_TOKEN: git and gh in the workspace cannot push or open pull requests") {
		t.Error("warned of no GITHUB_TOKEN with one set")
	}
}

// Without GITHUB_TOKEN vmd says at start that the agent cannot push.
func TestNoTokenWarning(t *testing.T) {
	t.Parallel()
	p := startVMD(t, baseEnv(t))
	if !p.logged("no GITHUB_TOKEN: git and gh in the workspace cannot push or open pull requests") {
		t.Error("no warning without GITHUB_TOKEN")
	}
}

// A sessionId keeps resuming across commands and across a restart of vmd,
// because every command runs in the same workspace: the CLI files its
// sessions by working directory (the fake CLI does as the real one), so
// the same session from another directory is not found. The real CLI's
// resume after a container's restart is container.TestComposeWorkspace.
func TestSessionAcrossRestarts(t *testing.T) {
	t.Parallel()
	home, work := t.TempDir(), t.TempDir()
	env := append(baseEnv(t), "HOME="+home, "WORKSPACE_DIR="+work)
	p := startVMD(t, env)
	first := post(p.url, "say first")
	id, _ := first.body["sessionId"].(string)
	if first.status != 200 || id == "" {
		t.Fatalf("first command = %d %v; want 200 with a session", first.status, first.body)
	}
	recall := func(p *vmdProc, want int) {
		t.Helper()
		r := postSession(p.url, "recall", id)
		text, _ := r.body["text"].(string)
		if r.status != want || want == 200 && !strings.Contains(text, "earlier: say first") {
			t.Errorf("resuming %s = %d %v; want %d recalling the first prompt", id, r.status, r.body, want)
		}
	}
	recall(p, 200)
	p.signal(syscall.SIGTERM)
	if code := p.WaitExit(t); code != 0 {
		t.Fatalf("exit code = %d; want 0", code)
	}

	p = startVMD(t, env)
	recall(p, 200)
	p.signal(syscall.SIGTERM)
	p.WaitExit(t)

	p = startVMD(t, append(env, "WORKSPACE_DIR="+t.TempDir()))
	recall(p, 404)
}

// A state_dir vmd cannot write the git configuration into stops it at
// start, naming the setting. (The store opens first, in state_dir itself:
// here a file stands where the git configuration's directory would be.)
func TestStateDirUnwritable(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, "git"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vmdBin)
	cmd.Env = append(baseEnv(t), "STATE_DIR="+state)
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "state_dir: the agent's git configuration cannot be written") {
		t.Errorf("vmd with state_dir under a file = exit %d:\n%s\nwant 1, naming state_dir", code, out)
	}
}
