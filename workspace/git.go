// Package workspace readies the agent's working directory for development:
// the git configuration the Claude Code CLI is given (an author, and a
// credential helper that hands git the GitHub token from the environment at
// the moment git asks), and a guard that refuses new work when the disks the
// agent, vmd and Chromium share run low.
package workspace

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmd-dev/vmd/internal/leftovers"
)

// DefaultCredentialHost is the host the credential helper always answers
// for: GITHUB_TOKEN is GitHub's.
const DefaultCredentialHost = "https://github.com"

// GitOptions is what the agent's git configuration is made from.
type GitOptions struct {
	// Dir is a directory vmd owns (not the user's home, not the workspace:
	// neither is vmd's to rewrite) where the configuration file is
	// written; it is created if missing. Empty is a new directory of this
	// vmd's own under the system's temporary directory, which Git.Remove
	// deletes (see WriteGit).
	Dir string
	// AuthorName and AuthorEmail are the agent's identity in commits
	// (user.name, user.email); empty leaves git to its own defaults.
	AuthorName  string
	AuthorEmail string
	// CredentialHosts are hosts besides github.com the token is offered
	// to: "git.example.com" (https) or a URL prefix with its scheme and
	// port, "http://127.0.0.1:8080".
	CredentialHosts []string
}

// Git is the agent's git configuration, written to a file.
type Git struct {
	// Path is the configuration file, handed to git as GIT_CONFIG_GLOBAL.
	Path string
	// own is the directory WriteGit made for the file when given none.
	own *leftovers.Dir
}

// Remove deletes the directory WriteGit made for the file when it was
// given none, and the file with it; a directory it was given, and the file
// there, are left for the next start. Call it once no CLI runs.
func (g *Git) Remove() error {
	if g.own == nil {
		return nil
	}
	return g.own.Remove()
}

// TokenVar is the environment variable the credential helper reads the
// token from, when git asks, and the one gh reads its token from.
const TokenVar = "GITHUB_TOKEN"

// credentialHelper answers git's "get" with the token in GITHUB_TOKEN at
// the moment git asks: the token lives only in the environment, never in
// a file or a remote URL. Without a token it answers nothing and says why
// on stderr; with GIT_TERMINAL_PROMPT=0 git then fails at once with its
// own "terminal prompts disabled" message instead of prompting. git runs
// a helper starting with "!" through the shell, appending the action.
const credentialHelper = `!f() { test "$1" = get || exit 0; ` +
	`if test -z "$GITHUB_TOKEN"; then echo "vmd: GITHUB_TOKEN is not set, no credentials for git" >&2; exit 0; fi; ` +
	`echo username=x-access-token; printf "password=%s\n" "$GITHUB_TOKEN"; }; f`

// WriteGit writes the agent's git configuration into o.Dir and returns it.
// It is written afresh at every start (the agent may edit it with git
// config --global, which lands there), by rename, so a CLI starting
// meanwhile reads the old file or the new one, never half of one.
//
// Without o.Dir (vmd keeps no state: state_dir ":memory:") the file goes
// in a directory vmd-git-* of this vmd's own under the system's temporary
// directory, locked while this vmd lives (internal/leftovers): Remove
// deletes it at exit, and a vmd that died without doing so leaves it to
// the next one's sweep, here, of those no live vmd holds.
func WriteGit(o GitOptions) (g *Git, err error) {
	hosts, err := credentialHosts(o.CredentialHosts)
	if err != nil {
		return nil, err
	}
	for setting, v := range map[string]string{"git_author_name": o.AuthorName, "git_author_email": o.AuthorEmail} {
		if strings.ContainsAny(v, "\n\r\x00") {
			return nil, fmt.Errorf("%s: %q has a line break or NUL; write it on one line", setting, v)
		}
	}
	g = &Git{}
	dir := o.Dir
	if dir == "" {
		leftovers.Sweep(os.TempDir(), "git")
		if g.own, err = leftovers.Make(os.TempDir(), "git"); err != nil {
			return nil, fmt.Errorf("git config directory: %w", err)
		}
		defer func() {
			if err != nil {
				g.own.Remove()
			}
		}()
		dir = g.own.Path
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("git config directory: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, "gitconfig"))
	if err != nil {
		return nil, fmt.Errorf("git config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".gitconfig-*")
	if err != nil {
		return nil, fmt.Errorf("git config: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	_, err = tmp.WriteString(gitConfig(o.AuthorName, o.AuthorEmail, hosts))
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("git config: %w", err)
	}
	g.Path = path
	return g, nil
}

// gitConfig is the configuration file's text.
func gitConfig(name, email string, hosts []string) string {
	var b strings.Builder
	b.WriteString("# Written by vmd at start (workspace.WriteGit); changes are lost at its next start.\n")
	if name != "" || email != "" {
		b.WriteString("[user]\n")
		if name != "" {
			fmt.Fprintf(&b, "\tname = %s\n", quote(name))
		}
		if email != "" {
			fmt.Fprintf(&b, "\temail = %s\n", quote(email))
		}
	}
	// No hint about the default branch name in every answer that inits.
	b.WriteString("[init]\n\tdefaultBranch = main\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "[credential %s]\n", quote(h))
		// The empty helper clears any helper a system configuration set
		// (a store or a keychain would write the token to disk).
		b.WriteString("\thelper =\n")
		fmt.Fprintf(&b, "\thelper = %s\n", quote(credentialHelper))
	}
	return b.String()
}

// quote writes s as a git config value or subsection name in double quotes.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// credentialHosts returns github.com and each host of extra as URL prefixes
// git matches credential sections against, without duplicates.
func credentialHosts(extra []string) ([]string, error) {
	hosts := []string{DefaultCredentialHost}
	for _, h := range extra {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if !strings.Contains(h, "://") {
			h = "https://" + h
		}
		u, err := url.Parse(h)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(h, " \t\n\r\"\\") {
			return nil, fmt.Errorf("git_credential_hosts: %q is not a host name (git.example.com) nor an http(s) URL without user, query or spaces", h)
		}
		h = strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/")
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts, nil
}

// Env returns env with the variables that point git and gh at this
// configuration, replacing any of the same names:
//
//   - GIT_CONFIG_GLOBAL, this file instead of ~/.gitconfig;
//   - GIT_TERMINAL_PROMPT=0 and an empty GIT_ASKPASS (which also hides
//     SSH_ASKPASS and core.askPass): without a token git fails at once
//     with its own message instead of waiting for a password no one types;
//   - GH_PROMPT_DISABLED=1 and GH_NO_UPDATE_NOTIFIER=1 for gh, which reads
//     GITHUB_TOKEN (or GH_TOKEN, which wins) itself.
//
// GITHUB_TOKEN itself is passed through as env has it: the helper and gh
// read it from the environment when they need it.
func (g *Git) Env(env []string) []string {
	set := []string{
		"GIT_CONFIG_GLOBAL=" + g.Path,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"GH_PROMPT_DISABLED=1",
		"GH_NO_UPDATE_NOTIFIER=1",
	}
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(set, func(s string) bool { return strings.HasPrefix(s, name+"=") }) {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}
