package workspace_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/workspace"
	"github.com/vmd-dev/vmd/workspace/gittest"
)

// agent is a world as the CLI sees it: a workspace, a home and a TMPDIR of
// its own, and the environment vmd gives it.
type agent struct {
	workspace, home, tmp, gitDir string
	env                          []string
}

func newAgent(t *testing.T, token string, hosts ...string) *agent {
	t.Helper()
	base := t.TempDir()
	a := &agent{
		workspace: filepath.Join(base, "workspace"),
		home:      filepath.Join(base, "home"),
		tmp:       filepath.Join(base, "tmp"),
		gitDir:    filepath.Join(base, "state", "git"),
	}
	for _, d := range []string{a.workspace, a.home, a.tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g, err := workspace.WriteGit(workspace.GitOptions{
		Dir: a.gitDir, AuthorName: "Agent Smith", AuthorEmail: "agent@example.invalid", CredentialHosts: hosts,
	})
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + a.home, "TMPDIR=" + a.tmp,
		// What a developer's shell may carry: all of it must be overridden.
		"GIT_TERMINAL_PROMPT=1", "GIT_ASKPASS=/bin/false-askpass", "SSH_ASKPASS=/bin/false-askpass",
	}
	if token != "" {
		env = append(env, "GITHUB_TOKEN="+token)
	}
	a.env = g.Env(env)
	return a
}

// sh runs a shell script in the workspace as the agent's Bash tool would,
// with no terminal and nothing on stdin, and returns its output and error.
// A minute is far more than it needs: past it, git waited for something.
func (a *agent) sh(t *testing.T, script string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-ec", script)
	cmd.Dir, cmd.Env = a.workspace, a.env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("sh -ec %q hung (killed after a minute): %s", script, out)
	}
	return string(out), err
}

// pushScript clones URL, commits a file on a new branch and pushes it.
const pushScript = `git clone -q "$REPO" app
cd app
git checkout -q -b agent/change
echo changed >CHANGE
git add CHANGE
git commit -q -m "Add CHANGE"
git push -q origin agent/change
git log -1 --format='%an <%ae>'`

func TestPushWithToken(t *testing.T) {
	t.Parallel()
	const token = "ghp_testtoken0123456789secret"
	srv := gittest.New(t, token)
	repo := srv.NewRepo(t, "app")
	a := newAgent(t, token, srv.URL)
	a.env = append(a.env, "REPO="+repo)

	out, err := a.sh(t, pushScript)
	if err != nil {
		t.Fatalf("clone, commit, push: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(out), "Agent Smith <agent@example.invalid>"; got != want {
		t.Errorf("commit author = %q; want %q", got, want)
	}
	if got := srv.Show(t, "app", "agent/change", "CHANGE"); got != "changed\n" {
		t.Errorf("CHANGE on the server's agent/change = %q; want %q", got, "changed\n")
	}
	if pushes := srv.Pushes(); len(pushes) != 1 || pushes[0].Repo != "/app.git" || pushes[0].User != "x-access-token" {
		t.Errorf("pushes = %+v; want one to /app.git as x-access-token", pushes)
	}
	if found := gittest.FilesContaining(t, token, a.workspace, a.home, a.tmp, a.gitDir); len(found) > 0 {
		t.Errorf("the token is written in %v", found)
	}
	if strings.Contains(out, token) {
		t.Errorf("the token is in git's output: %s", out)
	}
	// The remote URL carries no credentials.
	remote, err := a.sh(t, "git -C app remote get-url origin")
	if err != nil || strings.TrimSpace(remote) != repo {
		t.Errorf("origin = %q (%v); want %q", remote, err, repo)
	}
}

// TestPushRefused: the same agent, the token changed or gone between the
// clone and the push (the helper reads it when git asks, not at start).
func TestPushRefused(t *testing.T) {
	t.Parallel()
	const token = "ghp_righttoken"
	cases := []struct {
		name  string
		set   string // how the push's shell sets the token
		want  []string
		token string // must not be in the output
	}{
		{"wrong token", "export GITHUB_TOKEN=ghp_wrongtoken", []string{"Authentication failed"}, "ghp_wrongtoken"},
		{"no token", "unset GITHUB_TOKEN", []string{"terminal prompts disabled", "GITHUB_TOKEN is not set"}, token},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := gittest.New(t, token)
			repo := srv.NewRepo(t, "app")
			a := newAgent(t, token, srv.URL)
			script := "git clone -q " + repo + " app && cd app && git commit -q --allow-empty -m empty && " +
				c.set + " && git push -q origin HEAD:agent/refused"
			out, err := a.sh(t, script)
			if err == nil {
				t.Fatalf("push with %s succeeded: %s", c.name, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("git's output lacks %q: %s", w, out)
				}
			}
			if strings.Contains(out, c.token) || strings.Contains(out, token) {
				t.Errorf("a token is in git's output: %s", out)
			}
			if srv.Refused() == 0 || len(srv.Pushes()) != 0 {
				t.Errorf("server refused %d requests, accepted pushes %v; want some refused, no push", srv.Refused(), srv.Pushes())
			}
		})
	}
}

// TestNotOtherHosts: the token goes to github.com and the hosts listed,
// not to any server that asks for a password.
func TestNotOtherHosts(t *testing.T) {
	t.Parallel()
	const token = "ghp_notforthem"
	srv := gittest.New(t, token)
	repo := srv.NewRepo(t, "app")
	a := newAgent(t, token) // srv.URL not listed
	out, err := a.sh(t, "git clone -q "+repo+" app")
	if err == nil || !strings.Contains(out, "terminal prompts disabled") {
		t.Errorf("clone from an unlisted host: %v, %s; want git's terminal prompts disabled", err, out)
	}
}

func TestGitConfig(t *testing.T) {
	t.Parallel()
	a := newAgent(t, "", "git.example.com", "http://127.0.0.1:8080/", "https://git.example.com")
	cases := []struct{ args, want string }{
		{"user.name", "Agent Smith"},
		{"user.email", "agent@example.invalid"},
		{"credential.https://github.com.helper", "!f()"},
		{"credential.https://git.example.com.helper", "!f()"},
		{"credential.http://127.0.0.1:8080.helper", "!f()"},
	}
	for _, c := range cases {
		t.Run(c.args, func(t *testing.T) {
			out, err := a.sh(t, "git config --get "+c.args)
			if err != nil || !strings.HasPrefix(out, c.want) {
				t.Errorf("git config --get %s = %q, %v; want %q...", c.args, out, err, c.want)
			}
		})
	}
	// As git resolves it for a remote: the helper, and for another host none.
	if out, err := a.sh(t, "git config --get-urlmatch credential.helper https://github.com/owner/repo.git"); err != nil || !strings.HasPrefix(out, "!f()") {
		t.Errorf("credential.helper for a github.com remote = %q, %v; want vmd's", out, err)
	}
	if out, err := a.sh(t, "git config --get-urlmatch credential.helper https://evil.example.com/x.git"); err == nil && strings.TrimSpace(out) != "" {
		t.Errorf("credential.helper for evil.example.com = %q; want none", out)
	}
	// git.example.com is listed once, though given twice.
	b, err := os.ReadFile(filepath.Join(a.gitDir, "gitconfig"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `[credential "https://git.example.com"]`); n != 1 {
		t.Errorf("git.example.com has %d credential sections; want 1:\n%s", n, b)
	}
}

func TestWriteGitRejects(t *testing.T) {
	t.Parallel()
	cases := []workspace.GitOptions{
		{CredentialHosts: []string{"ftp://example.com"}},
		{CredentialHosts: []string{"https://user:pw@example.com"}},
		{CredentialHosts: []string{`exa"mple.com`}},
		{CredentialHosts: []string{"https://example.com/?q=1"}},
		{AuthorName: "two\nlines"},
	}
	for _, o := range cases {
		o.Dir = t.TempDir()
		if g, err := workspace.WriteGit(o); err == nil {
			t.Errorf("WriteGit(%+v) = %v, nil; want an error", o, g.Path)
		}
	}
}

func TestEnvReplaces(t *testing.T) {
	t.Parallel()
	g := &workspace.Git{Path: "/state/gitconfig"}
	got := g.Env([]string{"A=1", "GIT_CONFIG_GLOBAL=/home/x/.gitconfig", "GIT_TERMINAL_PROMPT=1", "GITHUB_TOKEN=t"})
	want := []string{"A=1", "GITHUB_TOKEN=t", "GIT_CONFIG_GLOBAL=/state/gitconfig", "GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=", "GH_PROMPT_DISABLED=1", "GH_NO_UPDATE_NOTIFIER=1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Env = %q; want %q", got, want)
	}
}

// Without a directory (state_dir ":memory:"), WriteGit makes one of its
// own under TMPDIR, and Remove leaves nothing there; a directory it was
// given is left as it is. TMPDIR is process-wide: not parallel.
func TestWriteGitOwnDirectory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	given := t.TempDir()
	for _, tt := range []struct {
		name, dir string
		kept      bool // the file is still there after Remove
	}{
		{"own", "", false},
		{"given", given, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, err := workspace.WriteGit(workspace.GitOptions{Dir: tt.dir})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(g.Path); err != nil {
				t.Fatalf("WriteGit wrote no file: %v", err)
			}
			if tt.dir == "" && !strings.HasPrefix(g.Path, filepath.Join(tmp, "vmd-git-")) {
				t.Errorf("Path = %s; want it in a vmd-git-* directory under TMPDIR %s", g.Path, tmp)
			}
			if err := g.Remove(); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if _, err := os.Stat(g.Path); (err == nil) != tt.kept {
				t.Errorf("after Remove, Stat(%s) = %v; want the file kept %v", g.Path, err, tt.kept)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("TMPDIR holds %v after Remove; want nothing", left)
			}
		})
	}
}
