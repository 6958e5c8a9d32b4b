package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"time"
)

// rules check what no single setting can: each returns the name of the
// setting to blame and what is wrong, or a nil error.
var rules = []func(c *Config) (string, error){
	checkMCPConfigFile,
	checkWebhookPair,
	checkExposure,
	checkWarmArgs,
}

// checkWarmArgs: a warm process takes its messages as stream-json lines
// (vmd adds --input-format) and ends each turn with a result line, which
// only --output-format stream-json writes.
func checkWarmArgs(c *Config) (string, error) {
	switch {
	case slices.Contains(c.ClaudeArgs, "--input-format"):
		return "claude_args", errors.New("must not set --input-format: vmd sets it for warm processes, and gives a cold one its prompt on stdin")
	case c.Warm && !hasPair(c.ClaudeArgs, "--output-format", "stream-json"):
		return "warm", errors.New("needs --output-format stream-json in claude_args, which ends each turn with a result line; keep it there, or set warm = false (WARM=false)")
	}
	return "", nil
}

// hasPair reports whether args hold flag followed by value.
func hasPair(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

// checkMCPConfigFile: a relative mcp_config is taken from workspace_dir;
// the default file may be absent, a file set on purpose must exist.
func checkMCPConfigFile(c *Config) (string, error) {
	path, err := c.MCPConfigPath()
	if err == nil {
		err = isFile(path)
	}
	return "mcp_config", err
}

// checkWebhookPair: a webhook needs both its URL and its secret.
func checkWebhookPair(c *Config) (string, error) {
	switch {
	case c.WebhookURL != "" && c.WebhookSecret == "":
		return "webhook_secret", errors.New("not set while webhook_url is: set WEBHOOK_SECRET (whsec_...) too, or unset webhook_url")
	case c.WebhookURL == "" && c.WebhookSecret != "":
		return "webhook_url", errors.New("not set while webhook_secret is: set WEBHOOK_URL too, or unset webhook_secret")
	}
	return "", nil
}

// checkExposure is the secure default: an API without a token is
// offered to loopback only, unless allow_unauthenticated says otherwise on
// purpose.
func checkExposure(c *Config) (string, error) {
	if c.APIToken != "" || c.AllowUnauthenticated || loopback(c.Host) {
		return "", nil
	}
	return "api_token", fmt.Errorf("not set while host %q reaches beyond loopback, where anyone who reaches the port could run anything: "+
		"set API_TOKEN (openssl rand -hex 32), or listen on loopback (HOST=127.0.0.1), "+
		"or set ALLOW_UNAUTHENTICATED=true if nothing but you can reach it", c.Host)
}

// loopback reports whether host names this machine only: "localhost" or a
// loopback address. Any other name may resolve beyond it; "" is every
// interface.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Warning is a start-up concern that does not stop vmd: an hclog message
// and its key/value pairs. main logs each at warn level.
type Warning struct {
	Msg  string
	Args []any
}

// geteuid is os.Geteuid; tests replace it.
var geteuid = os.Geteuid

// deprecated is the warning for a setting read under its old name.
func deprecated(old, name, where string) Warning {
	return Warning{"deprecated setting name", []any{"name", old, "where", where, "fix", "rename it " + name}}
}

// startWarnings are the concerns about settings that are valid but likely
// not what was meant.
func (c *Config) startWarnings(getenv func(string) string) []Warning {
	var ws []Warning
	warn := func(msg string, args ...any) { ws = append(ws, Warning{msg, args}) }
	if c.DrainTimeout >= 10*time.Second {
		warn("drain_timeout is not below 10s, Docker's default stop window",
			"drain_timeout", c.DrainTimeout, "fix", "give the platform longer (stop_grace_period, Fly's kill_timeout), or lower drain_timeout")
	}
	// The CLI (2.1.x) exits at once when run as root with this flag, unless
	// IS_SANDBOX=1 says the machine is a sandbox. Other CLIs (the test fake)
	// do not, hence "may": the command's own answer carries the CLI's words.
	if geteuid() == 0 && slices.Contains(c.ClaudeArgs, "--dangerously-skip-permissions") && getenv("IS_SANDBOX") != "1" {
		warn("running as root: the Claude Code CLI may refuse --dangerously-skip-permissions",
			"fix", "run vmd as an unprivileged user (the image runs as node), or set IS_SANDBOX=1 if this container is the sandbox")
	}
	if c.APIToken == "" && !loopback(c.Host) {
		warn("no API token: anyone who can reach this address can run anything in this container",
			"host", c.Host, "fix", "set API_TOKEN (api_token in vm.hcl), or listen on loopback (HOST=127.0.0.1)")
	}
	if c.StateDir == MemoryStateDir {
		warn("state_dir is :memory:: command records, idempotency keys and pending webhooks do not survive a restart",
			"fix", "set STATE_DIR to a directory (on a volume in a container)")
	}
	if c.StallTimeout > 0 && c.StallTimeout >= c.CommandTimeout {
		warn("stall_timeout is not below command_timeout: a stalled command times out before it is caught as stalled",
			"stall_timeout", c.StallTimeout, "command_timeout", c.CommandTimeout, "fix", "set stall_timeout below command_timeout, or to 0 to disable it")
	}
	// Not a setting (the CLI's environment keeps it, for git's credential
	// helper and gh), but without it the workspace cannot push.
	if getenv("GITHUB_TOKEN") == "" {
		warn("no GITHUB_TOKEN: git and gh in the workspace cannot push or open pull requests",
			"fix", "set GITHUB_TOKEN to a token allowed to push to the repositories the agent works on")
	}
	if _, err := exec.LookPath(c.ClaudeBin); err != nil {
		warn("claude not found; commands will fail until it is installed", "claude_bin", c.ClaudeBin, "error", err,
			"fix", "install the Claude Code CLI, or set CLAUDE_BIN to its path")
	}
	return ws
}
