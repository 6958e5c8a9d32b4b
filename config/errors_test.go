package config

import (
	"strings"
	"testing"
)

// Every way a setting can be refused, with the words that say which and
// how to put it right. Load reports every problem at once, one per line,
// in order: the file's, the environment's, then each setting's in table
// order, then the rules between settings.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string // one per line; a leading ^ anchors at the line's start
	}{
		// vm.hcl itself
		{"unknown attribute", "prot = 1\n", nil, []string{`vm.hcl:1:1: Unsupported argument: An argument named "prot" is not expected here. Did you mean "port"?`}},
		{"syntax", "port = \n", nil, []string{`vm.hcl:1:8: Invalid expression`}},
		{"block", "listen {\n}\n", nil, []string{`vm.hcl:1:1: Unsupported block type`}},
		{"every file error at once", "port = \"x\"\ndrain_timeout = \"soon\"\nmin_free_disk = \"1GB\"\nclaude_args = \"-p\"\nallow_unauthenticated = \"yes\"\n", nil, []string{
			`vm.hcl:1:9: Unsuitable value type: port: Unsuitable value: a number is required`,
			`vm.hcl:2:17: Invalid duration: drain_timeout: "soon" is not a duration; write it like "90s", "5m" or "1h".`,
			`vm.hcl:3:17: Invalid size: min_free_disk: "1GB" is not a size; write it like "512MiB" or "1GiB"`,
			`vm.hcl:4:16: Unsuitable value type: claude_args: Unsuitable value: list of string required`,
			`vm.hcl:5:26: Unsuitable value type: allow_unauthenticated: Unsuitable value: a bool is required`}},
		{"old and new name in the file", "work_dir = \"/\"\nworkspace_dir = \"/\"\n", nil, []string{`vm.hcl:1:1: Conflicting settings: work_dir is the deprecated name of workspace_dir: delete work_dir.`}},

		// the environment
		{"env numbers", "", []string{"PORT", "http", "MAX_OUTPUT", "1e6", "DRAIN_TIMEOUT_MS", "-", "MAX_COMMANDS", "many"},
			[]string{`PORT="http": not a whole number`, `DRAIN_TIMEOUT_MS="-": not a whole number of milliseconds`, `MAX_OUTPUT="1e6": not a whole number`, `MAX_COMMANDS="many": not a whole number`}},
		{"env others", "", []string{"ALLOW_UNAUTHENTICATED", "yes please", "COMMAND_RETENTION", "7d", "MIN_FREE_DISK_MB", "1GiB", "STALL_TIMEOUT_MS", "99999999999999999999"},
			[]string{`ALLOW_UNAUTHENTICATED="yes please": not true or false`, `STALL_TIMEOUT_MS="99999999999999999999": not a whole number of milliseconds`,
				`COMMAND_RETENTION="7d": not a duration; write it like "90m" or "168h"`, `MIN_FREE_DISK_MB="1GiB": not a whole number of mebibytes`}},
		{"env negative size", "", []string{"MIN_FREE_DISK_MB", "-1"}, []string{`MIN_FREE_DISK_MB="-1": not a whole number of mebibytes`}},
		{"old and new variable disagree", "", []string{"WORKSPACE_DIR", "/", "WORK_DIR", "/tmp"}, []string{`WORKSPACE_DIR and WORK_DIR are both set, to different values: unset WORK_DIR, the deprecated name of WORKSPACE_DIR`}},
		{"no key", "", []string{"ANTHROPIC_API_KEY", ""}, []string{"ANTHROPIC_API_KEY is not set"}},
		{"no HOME for state_dir", "", []string{"HOME", ""}, []string{`^state_dir: "$HOME/.vmd" starts with $HOME but HOME is not set: set HOME, or write an absolute path`}},
		{"no HOME for mcp_config", "", []string{"HOME", "", "STATE_DIR", "/s", "MCP_CONFIG", "~/mcp.json"}, []string{`^mcp_config: "~/mcp.json" starts with ~ but HOME is not set`}},

		// each setting's check
		{"ranges", "", []string{"PORT", "70000", "COMMAND_TIMEOUT_MS", "0", "DRAIN_TIMEOUT_MS", "-1", "STALL_TIMEOUT_MS", "-1", "IMAGE_TTL_MS", "0", "MAX_REQUEST_BODY", "10", "MAX_OUTPUT", "0", "COMMAND_RETENTION", "0s", "MAX_COMMANDS", "0"},
			[]string{"^port: 70000 is not a TCP port (0 to 65535; 0 picks a free one)", "^command_timeout: 0s must be positive", "^stall_timeout: -1ms must not be negative (0 disables it)", "^drain_timeout: -1ms must not be negative",
				"^max_request_body: 10 bytes is too small (at least 1024)", "^max_output: 0 bytes is too small (at least 1)", "^image_ttl: 0s must be positive", "^command_retention: 0s must be positive", "^max_commands: 0 commands is too small (at least 1)"}},
		{"names", "log_format = \"xml\"\nclaude_bin = \" \"\nimages_dir = \"\"\nstate_dir = \"\"\n", []string{"LOG_LEVEL", "loud"},
			[]string{`vm.hcl:2:14: claude_bin: must not be empty`, `vm.hcl:4:13: state_dir: must not be empty`,
				`^log_level: "loud" is not one of trace, debug, info, warn, error`, `vm.hcl:1:14: log_format: "xml" is not text or json`}},
		{"workspace dir", "workspace_dir = \"/no/such/dir\"\n", nil, []string{`vm.hcl:1:17: workspace_dir: "/no/such/dir" is not a directory (create it, or name an existing one)`}},
		{"workspace dir is a file", "", []string{"WORKSPACE_DIR", "/etc/passwd"}, []string{`^workspace_dir: "/etc/passwd" is not a directory`}},
		{"mcp config set but missing", "mcp_config = \"/no/such/mcp.json\"\n", nil, []string{`vm.hcl:1:14: mcp_config: "/no/such/mcp.json" is not a file (set mcp_config to an MCP servers file, or leave it at ".mcp.json")`}},
		{"mcp config from env", "", []string{"MCP_CONFIG", "/"}, []string{`^mcp_config: "/" is not a file`}},
		{"api token", "", []string{"API_TOKEN", "has space"}, []string{`^api_token: must be printable ASCII without spaces or control characters`}},
		{"hosts", "", []string{"ALLOWED_HOSTS", "ok.example,https://relay.example", "GIT_CREDENTIAL_HOSTS", "github.com/org"},
			[]string{`^allowed_hosts: "https://relay.example" is not a host name (write example.com or example.com:8080, no scheme or path)`, `^git_credential_hosts: "github.com/org" is not a host name`}},
		{"git host URL", "", []string{"GIT_CREDENTIAL_HOSTS", "ftp://git.example"}, []string{`^git_credential_hosts: "ftp://git.example" is neither a host name`}},
		{"host with user", "allowed_hosts = [\"me@relay.example\"]\n", nil, []string{`vm.hcl:1:17: allowed_hosts: "me@relay.example" is not a host name`}},
		{"origins", "", []string{"ALLOWED_ORIGINS", "https://ok.example,https://relay.example/path"}, []string{`^allowed_origins: "https://relay.example/path" is not an origin (write https://example.com or http://localhost:5173, no path)`}},
		{"origin without scheme", "allowed_origins = [\"relay.example\"]\n", nil, []string{`allowed_origins: "relay.example" is not an origin`}},
		{"webhook url", "", []string{"WEBHOOK_URL", "relay.example/hook", "WEBHOOK_SECRET", secret24}, []string{`^webhook_url: "relay.example/hook" is not an http:// or https:// URL with a host`}},
		{"webhook url scheme", "", []string{"WEBHOOK_URL", "ftp://relay.example/hook", "WEBHOOK_SECRET", secret24}, []string{`^webhook_url: "ftp://relay.example/hook" is not an http:// or https:// URL`}},
		// A receiver's secrets (user, query) stay out of the message.
		{"webhook url secrets", "", []string{"WEBHOOK_URL", "ftp://alice:hunter2@relay.example/hook?token=SECRET#x", "WEBHOOK_SECRET", secret24},
			[]string{`^webhook_url: "ftp://relay.example/hook" (its user, query and fragment not shown) is not an http:// or https:// URL with a host`}},
		{"webhook url no host", "", []string{"WEBHOOK_URL", "https://alice:hunter2@/hook?token=SECRET", "WEBHOOK_SECRET", secret24},
			[]string{`^webhook_url: "https:///hook" (its user, query and fragment not shown) is not an http:// or https:// URL with a host`}},
		{"webhook url unparsable", "", []string{"WEBHOOK_URL", "https://alice:hunter2@[::1/hook?token=SECRET", "WEBHOOK_SECRET", secret24},
			[]string{`^webhook_url: is not a URL; write it like https://relay.example/hook`}},
		{"webhook url user as scheme", "", []string{"WEBHOOK_URL", "alice:hunter2@relay.example/hook?token=SECRET", "WEBHOOK_SECRET", secret24},
			[]string{`^webhook_url: is not an http:// or https:// URL with a host; write it like https://relay.example/hook`}},
		{"webhook secret prefix", "", []string{"WEBHOOK_URL", "https://r.example", "WEBHOOK_SECRET", "s3cr3t-value"}, []string{`^webhook_secret: must start with "whsec_" (the Standard Webhooks form); make one with: echo whsec_$(openssl rand -base64 32)`}},
		{"webhook secret base64", "", []string{"WEBHOOK_URL", "https://r.example", "WEBHOOK_SECRET", "whsec_not*base64"}, []string{`^webhook_secret: is not "whsec_" followed by standard base64`}},
		{"webhook secret short", "", []string{"WEBHOOK_URL", "https://r.example", "WEBHOOK_SECRET", secret23}, []string{`^webhook_secret: holds 23 bytes; Standard Webhooks secrets hold 24 to 64`}},
		{"webhook secret long", "", []string{"WEBHOOK_URL", "https://r.example", "WEBHOOK_SECRET", secret65}, []string{`^webhook_secret: holds 65 bytes`}},
		{"git author", "git_author_name = \"Ada <ada>\"\n", []string{"VMD_GIT_AUTHOR_EMAIL", "ada at example"},
			[]string{`vm.hcl:1:19: git_author_name: must not contain <, > or a line break (git would reject the commit)`, `^git_author_email: "ada at example" is not an email address (name@example.com)`}},
		{"git email without @", "", []string{"VMD_GIT_AUTHOR_EMAIL", "ada"}, []string{`^git_author_email: "ada" is not an email address`}},

		// the rules between settings
		{"webhook url alone", "", []string{"WEBHOOK_URL", "https://r.example"}, []string{`^webhook_secret: not set while webhook_url is: set WEBHOOK_SECRET (whsec_...) too, or unset webhook_url`}},
		{"webhook secret alone", "webhook_secret = \"" + secret24 + "\"\n", nil, []string{`^webhook_url: not set while webhook_secret is: set WEBHOOK_URL too, or unset webhook_secret`}},
		{"open beyond loopback", "", []string{"HOST", "0.0.0.0"},
			[]string{`^api_token: not set while host "0.0.0.0" reaches beyond loopback, where anyone who reaches the port could run anything: set API_TOKEN (openssl rand -hex 32), or listen on loopback (HOST=127.0.0.1), or set ALLOW_UNAUTHENTICATED=true if nothing but you can reach it`}},
		{"every interface", "", []string{"HOST", "::"}, []string{`^api_token: not set while host "::" reaches beyond loopback`}},
		{"a name is not loopback", "host = \"myhost\"\n", nil, []string{`^api_token: not set while host "myhost" reaches beyond loopback`}},
		{"warm without stream-json", "claude_args = [\"-p\"]\n", nil, []string{`^warm: needs --output-format stream-json in claude_args`}},
		{"input format is vmd's", "claude_args = [\"-p\", \"--output-format\", \"stream-json\", \"--input-format\", \"text\"]\n", nil,
			[]string{`vm.hcl:1:15: claude_args: must not set --input-format: vmd sets it`}},
		{"money", "spend_limit_usd = -1\n", []string{"MAX_COST_USD", "lots"},
			[]string{`MAX_COST_USD="lots": not an amount of dollars (0.5)`, `vm.hcl:1:19: spend_limit_usd: must not be negative`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			_, err := Load(path, env(tt.env...))
			if err == nil {
				t.Fatalf("Load = nil error; want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("Load error = %q; want %d lines like %q", err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if prefix, anchored := strings.CutPrefix(w, "^"); anchored && !strings.HasPrefix(lines[i], prefix) ||
					!anchored && !strings.Contains(lines[i], w) {
					t.Errorf("error line %d = %q; want it to contain %q", i+1, lines[i], w)
				}
			}
		})
	}
}

// A file named but absent is an error saying what to do.
func TestMissingFile(t *testing.T) {
	_, err := Load("/no/such/vm.hcl", env())
	if err == nil || !strings.Contains(err.Error(), "config file: open /no/such/vm.hcl: no such file or directory (set -config or VM_CONFIG to an existing vm.hcl, or neither for the defaults)") {
		t.Errorf("Load(missing) = %v; want the file named and the fix", err)
	}
}

// What is fine: loopback hosts without a token, anything with a token or
// with allow_unauthenticated, a webhook with both halves.
func TestAccepted(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
	}{
		{"localhost", []string{"HOST", "localhost"}},
		{"IPv6 loopback", []string{"HOST", "::1"}},
		{"loopback range", []string{"HOST", "127.0.0.2"}},
		{"token", []string{"HOST", "0.0.0.0", "API_TOKEN", "t0k"}},
		{"on purpose", []string{"HOST", "0.0.0.0", "ALLOW_UNAUTHENTICATED", "1"}},
		{"webhook", []string{"WEBHOOK_URL", "https://r.example/hook", "WEBHOOK_SECRET", secret32}},
		{"largest secret", []string{"WEBHOOK_URL", "https://r.example/hook", "WEBHOOK_SECRET", secret64}},
		{"no disk guard, no stall watchdog", []string{"MIN_FREE_DISK_MB", "0", "STALL_TIMEOUT_MS", "0"}},
		{"no credential hosts", []string{"GIT_CREDENTIAL_HOSTS", " , "}},
		{"memory store", []string{"STATE_DIR", ":memory:"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Load("", env(tt.env...)); err != nil {
				t.Errorf("Load(%q) = %v; want no error", tt.env, err)
			}
		})
	}
}

// A secret is never part of an error, however it is wrong.
func TestSecretsStayOutOfErrors(t *testing.T) {
	for _, tt := range []struct{ file, env, value string }{
		{"api_token", "API_TOKEN", "sp ace-secret"},
		{"api_token", "API_TOKEN", "naïve-secret"},
		{"webhook_secret", "WEBHOOK_SECRET", "plain-secret"},
		{"webhook_secret", "WEBHOOK_SECRET", "whsec_short-secret"},
	} {
		_, err := Load("", env(tt.env, tt.value, "WEBHOOK_URL", "https://r.example"))
		if err == nil || strings.Contains(err.Error(), tt.value) {
			t.Errorf("%s=%q: Load error = %v; want an error without the value", tt.env, tt.value, err)
		}
		_, err = Load(writeFile(t, tt.file+" = \""+tt.value+"\"\nwebhook_url = \"https://r.example\"\n"), env())
		if err == nil || strings.Contains(err.Error(), tt.value) {
			t.Errorf("vm.hcl %s = %q: Load error = %v; want an error without the value", tt.file, tt.value, err)
		}
	}
}

// A webhook URL is refused without its user, password, query or fragment
// in the error: receivers put secrets there.
func TestWebhookURLSecretsStayOutOfErrors(t *testing.T) {
	secrets := []string{"alice", "hunter2", "SECRET", "anchor9"}
	tests := []struct{ name, url string }{
		{"scheme", "ftp://alice:hunter2@relay.example/hook?token=SECRET#anchor9"},
		{"no host", "https://alice:hunter2@/hook?token=SECRET#anchor9"},
		{"unparsable", "https://alice:hunter2@[::1/hook?token=SECRET#anchor9"},
		{"user as scheme", "alice:hunter2@relay.example/hook?token=SECRET#anchor9"},
		{"no scheme", "relay.example/hook?token=SECRET#anchor9"},
		// An unencoded "/" or "#" in the password ends the host early, and
		// url.Parse's own error quotes the rest as a port.
		{"slash in password", "https://alice:hunter2/x@relay.example/hook?token=SECRET#anchor9"},
		{"hash in password", "https://alice:hunter2#x@relay.example/hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, where := range []string{"env", "file"} {
				var err error
				if where == "env" {
					_, err = Load("", env("WEBHOOK_URL", tt.url, "WEBHOOK_SECRET", secret24))
				} else {
					_, err = Load(writeFile(t, "webhook_url = \""+tt.url+"\"\nwebhook_secret = \""+secret24+"\"\n"), env())
				}
				if err == nil || !strings.Contains(err.Error(), "webhook_url: ") {
					t.Fatalf("%s: Load error = %v; want webhook_url refused", where, err)
				}
				for _, secret := range secrets {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("%s: Load error = %v; shows %q", where, err, secret)
					}
				}
			}
		})
	}
}
