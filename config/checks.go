package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// The checks of single settings. Each returns what is wrong and how to put
// it right; the caller prefixes the setting's name. None repeats the value
// of a secret.

func checkPort(p int) error {
	if p < 0 || p > 65535 {
		return fmt.Errorf("%d is not a TCP port (0 to 65535; 0 picks a free one)", p)
	}
	return nil
}

func positive(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s must be positive", d)
	}
	return nil
}

func notNegative(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s must not be negative (0 disables it)", d)
	}
	return nil
}

func atLeast(minimum int, unit string) func(int) error {
	return func(n int) error {
		if n < minimum {
			return fmt.Errorf("%d %s is too small (at least %d)", n, unit, minimum)
		}
		return nil
	}
}

func notEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// isDir accepts an existing directory, or "" for vmd's own (Load has
// made it absolute).
func isDir(path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return fmt.Errorf("%q is not a directory (create it, or name an existing one)", path)
	}
	return nil
}

// isFile accepts "" (no MCP servers file) or an existing regular file.
func isFile(path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%q is not a file (set mcp_config to an MCP servers file, or leave it at %q)", path, DefaultMCPConfig)
	}
	return nil
}

func checkLogLevel(s string) error {
	if hclog.LevelFromString(s) == hclog.NoLevel {
		return fmt.Errorf("%q is not one of trace, debug, info, warn, error", s)
	}
	return nil
}

func checkLogFormat(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("%q is not text or json", s)
	}
	return nil
}

// checkToken accepts an API token that can travel in an Authorization
// header as written: printable ASCII without spaces. Its value is never
// part of the error.
func checkToken(token string) error {
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return errors.New("must be printable ASCII without spaces or control characters (it is sent as \"Authorization: Bearer <token>\")")
		}
	}
	return nil
}

// checkStateDir accepts a directory path or ":memory:".
func checkStateDir(s string) error {
	if s == MemoryStateDir {
		return nil
	}
	return notEmpty(s)
}

// checkWebhookURL accepts "" (no webhook) or an absolute http(s) URL. Its
// errors show the URL's scheme, host and path at most: receivers put
// secrets in the query string and the user part.
func checkWebhookURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		// Not url.Parse's words: they quote the part it stopped at, and an
		// unencoded "/" or "#" in a password makes that the password.
		return errors.New("is not a URL; write it like https://relay.example/hook")
	case u.Opaque != "":
		// "user:password@host/path" reads as scheme "user": show nothing.
		return errors.New("is not an http:// or https:// URL with a host; write it like https://relay.example/hook")
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		shown := fmt.Sprintf("%q", (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String())
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			shown += " (its user, query and fragment not shown)"
		}
		return fmt.Errorf("%s is not an http:// or https:// URL with a host", shown)
	}
	return nil
}

// Standard Webhooks secrets are "whsec_" and the base64 of 24 to 64 random
// bytes.
const (
	webhookSecretPrefix = "whsec_"
	minWebhookSecret    = 24
	maxWebhookSecret    = 64
)

// checkWebhookSecret accepts "" (no webhook) or a Standard Webhooks secret.
// Its value is never part of the error.
func checkWebhookSecret(s string) error {
	if s == "" {
		return nil
	}
	const fix = "; make one with: echo whsec_$(openssl rand -base64 32)"
	b64, ok := strings.CutPrefix(s, webhookSecretPrefix)
	if !ok {
		return errors.New("must start with \"whsec_\" (the Standard Webhooks form)" + fix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return errors.New("is not \"whsec_\" followed by standard base64" + fix)
	}
	if len(key) < minWebhookSecret || len(key) > maxWebhookSecret {
		return fmt.Errorf("holds %d bytes; Standard Webhooks secrets hold %d to %d%s", len(key), minWebhookSecret, maxWebhookSecret, fix)
	}
	return nil
}

// checkHosts accepts host names or addresses, each with an optional port:
// what a request's Host header or a git remote names.
func checkHosts(hosts []string) error {
	for _, h := range hosts {
		name := h
		if host, _, err := net.SplitHostPort(h); err == nil {
			name = host
		}
		if name == "" || strings.ContainsAny(name, "/ @\t") || strings.Contains(h, "://") {
			return fmt.Errorf("%q is not a host name (write example.com or example.com:8080, no scheme or path)", h)
		}
	}
	return nil
}

// checkGitHosts accepts what git matches credentials against: a host name
// with an optional port (https), or a URL prefix with its scheme, for a
// server that is not https (a local one in tests).
func checkGitHosts(hosts []string) error {
	for _, h := range hosts {
		if !strings.Contains(h, "://") {
			if err := checkHosts([]string{h}); err != nil {
				return err
			}
			continue
		}
		u, err := url.Parse(h)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(h, " \t\"\\") {
			return fmt.Errorf("%q is neither a host name (git.example.com, git.example.com:8443) nor an http(s) URL without user or query", h)
		}
	}
	return nil
}

// checkOrigins accepts browser origins: scheme://host[:port], no path.
func checkOrigins(origins []string) error {
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("%q is not an origin (write https://example.com or http://localhost:5173, no path)", o)
		}
	}
	return nil
}

// checkGitName accepts a name git can put in a commit's author line.
func checkGitName(s string) error {
	if strings.ContainsAny(s, "<>\n\r\x00") {
		return errors.New("must not contain <, > or a line break (git would reject the commit)")
	}
	return nil
}

// checkGitEmail accepts "" or an address git can put in an author line.
func checkGitEmail(s string) error {
	if s == "" {
		return nil
	}
	if strings.ContainsAny(s, "<> \t\n\r\x00") || !strings.Contains(s, "@") {
		return fmt.Errorf("%q is not an email address (name@example.com)", s)
	}
	return nil
}

func notNegativeSize(n int64) error {
	if n < 0 {
		return fmt.Errorf("%d bytes must not be negative (0 disables the guard)", n)
	}
	return nil
}

func notNegativeMoney(v float64) error {
	if v < 0 {
		return errors.New("must not be negative")
	}
	return nil
}
