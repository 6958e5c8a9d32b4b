package config

import (
	"slices"
	"testing"
)

// The start-up warnings: valid settings that are likely not what was meant.
func TestWarnings(t *testing.T) {
	orig := geteuid
	t.Cleanup(func() { geteuid = orig })
	tests := []struct {
		name string
		root bool
		env  []string
		want []string // messages, in order
	}{
		{"none", false, nil, nil},
		{"drain at the platform's window", false, []string{"DRAIN_TIMEOUT_MS", "10000"},
			[]string{"drain_timeout is not below 10s, Docker's default stop window"}},
		{"root with the flag", true, nil, []string{"running as root: the Claude Code CLI may refuse --dangerously-skip-permissions"}},
		{"root in a sandbox", true, []string{"IS_SANDBOX", "1"}, nil},
		{"root without the flag", true, []string{"CLAUDE_BIN", "/bin/true"}, nil}, // args from the file below
		{"open on purpose", false, []string{"HOST", "0.0.0.0", "ALLOW_UNAUTHENTICATED", "true"},
			[]string{"no API token: anyone who can reach this address can run anything in this container"}},
		{"open with a token", false, []string{"HOST", "0.0.0.0", "API_TOKEN", "t"}, nil},
		{"memory store", false, []string{"STATE_DIR", ":memory:"},
			[]string{"state_dir is :memory:: command records, idempotency keys and pending webhooks do not survive a restart"}},
		{"stall after timeout", false, []string{"STALL_TIMEOUT_MS", "300000"},
			[]string{"stall_timeout is not below command_timeout: a stalled command times out before it is caught as stalled"}},
		{"no stall watchdog", false, []string{"STALL_TIMEOUT_MS", "0", "COMMAND_TIMEOUT_MS", "1"}, nil},
		{"no claude", false, []string{"CLAUDE_BIN", "/no/such/claude"}, []string{"claude not found; commands will fail until it is installed"}},
		{"old variable", false, []string{"WORK_DIR", "/"}, []string{"deprecated setting name"}},
		{"no GitHub token", false, []string{"GITHUB_TOKEN", ""},
			[]string{"no GITHUB_TOKEN: git and gh in the workspace cannot push or open pull requests"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			geteuid = func() int {
				if tt.root {
					return 0
				}
				return 1000
			}
			path := ""
			if tt.name == "root without the flag" {
				path = writeFile(t, `claude_args = ["-p", "--output-format", "stream-json"]`+"\n")
			}
			c, err := Load(path, env(append([]string{"CLAUDE_BIN", "/bin/true", "GITHUB_TOKEN", "ghp_test"}, tt.env...)...))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range c.Warnings() {
				got = append(got, w.Msg)
				// Every warning says what to do about it.
				if i := slices.Index(w.Args, any("fix")); len(w.Args)%2 != 0 || i < 0 || i%2 != 0 || w.Args[i+1] == "" {
					t.Errorf("warning %q: key/values %q; want pairs with a fix", w.Msg, w.Args)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Warnings() = %q; want %q", got, tt.want)
			}
		})
	}
}
