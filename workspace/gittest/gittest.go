// Package gittest is a git HTTP server for tests that must see git
// authenticate: git's own http-backend behind net/http/cgi, on loopback,
// answering 401 to any request without the token as its basic-auth
// password (any user name, as GitHub takes with a token). It records the
// pushes it accepted and the requests it refused.
package gittest

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Server is a running git HTTP server. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT; a repository
	// NAME is at URL/NAME.git.
	URL string
	// Root holds the bare repositories.
	Root string

	token   string
	backend string
	srv     *httptest.Server

	mu      sync.Mutex
	pushes  []Push
	refused int
}

// Push is one push the server accepted.
type Push struct {
	// Repo is the repository's path on the server, like /app.git.
	Repo string
	// User is the basic-auth user name it came with.
	User string
}

// New starts a server that demands token, closed when t ends. Root is a
// new directory that everyone can read (the git run by a test may be
// another user); the server itself runs git as the test's user.
func New(t testing.TB, token string) *Server {
	t.Helper()
	exec, err := gitExecPath()
	if err != nil {
		t.Fatalf("gittest: git --exec-path: %v (is git installed?)", err)
	}
	root, err := os.MkdirTemp("", "gittest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{Root: root, token: token, backend: filepath.Join(exec, "git-http-backend")}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

func gitExecPath() (string, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	return strings.TrimSpace(string(out)), err
}

// ServeHTTP checks the token, then hands the request to git-http-backend
// with REMOTE_USER set, which is what lets it accept a push.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || s.token == "" || pass != s.token {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
		http.Error(w, "token required", http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
		s.mu.Lock()
		s.pushes = append(s.pushes, Push{Repo: strings.TrimSuffix(r.URL.Path, "/git-receive-pack"), User: user})
		s.mu.Unlock()
	}
	h := &cgi.Handler{
		Path: s.backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + user,
			// The server's git reads no configuration of the test's user.
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
		},
	}
	h.ServeHTTP(w, r)
}

// Pushes returns the pushes accepted so far, in order.
func (s *Server) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pushes)
}

// Refused returns how many requests were answered 401 so far.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// NewRepo makes a bare repository NAME.git with one commit (README on
// main), and returns its URL.
func (s *Server) NewRepo(t testing.TB, name string) string {
	t.Helper()
	bare := filepath.Join(s.Root, name+".git")
	seed := t.TempDir()
	Git(t, "", "init", "-q", "--bare", "-b", "main", bare)
	Git(t, "", "init", "-q", "-b", "main", seed)
	if err := os.WriteFile(filepath.Join(seed, "README"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, seed, "add", "README")
	Git(t, seed, "commit", "-q", "-m", "seed")
	Git(t, seed, "push", "-q", bare, "main")
	// The git a test runs may be another user: let it read everything.
	filepath.WalkDir(bare, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			mode := fs.FileMode(0o644)
			if d.IsDir() {
				mode = 0o755
			}
			os.Chmod(p, mode)
		}
		return nil
	})
	return s.URL + "/" + name + ".git"
}

// Show returns the content of path at rev in the bare repository NAME.git,
// or "" if there is none.
func (s *Server) Show(t testing.TB, name, rev, path string) string {
	t.Helper()
	cmd := exec.Command("git", "--git-dir", filepath.Join(s.Root, name+".git"), "show", rev+":"+path)
	cmd.Env = isolated()
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// Git runs git in dir (empty for the test's) with no user's configuration
// and a fixed author, and fails t if it fails.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = isolated()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func isolated() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=/nonexistent",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=gittest", "GIT_AUTHOR_EMAIL=gittest@example.invalid",
		"GIT_COMMITTER_NAME=gittest", "GIT_COMMITTER_EMAIL=gittest@example.invalid",
	}
}

// FilesContaining returns the files under dirs whose content holds secret,
// for tests that a token was never written to disk. Unreadable files and
// the directories it cannot enter fail t.
func FilesContaining(t testing.TB, secret string, dirs ...string) []string {
	t.Helper()
	var found []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(secret)) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("gittest: searching %s: %v", dir, err)
		}
	}
	return found
}
