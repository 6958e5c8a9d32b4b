package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A valid Standard Webhooks secret (24 bytes) and invalid ones.
const (
	secret24 = "whsec_YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh"
	secret32 = "whsec_YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI="
	secret64 = "whsec_Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjYw=="
	secret23 = "whsec_YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="
	secret65 = "whsec_YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="
)

// Every setting is read from vm.hcl and from its variable, and the variable
// wins. A new setting must add its case here.
func TestEverySetting(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	mcp1, mcp2 := filepath.Join(dir1, "a.json"), filepath.Join(dir2, "b.json")
	for _, p := range []string{mcp1, mcp2} {
		if err := os.WriteFile(p, []byte(`{"mcpServers":{}}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		hcl, env string // env "" is a setting vm.hcl alone sets
		fromFile any
		fromEnv  any
		with     []string // environment every load of this case has
	}{
		{"host", `"localhost"`, "::1", "localhost", "::1", nil},
		{"port", `4000`, "5000", 4000, 5000, nil},
		{"api_token", `"file-tok"`, "env-tok", "file-tok", "env-tok", nil},
		{"allow_unauthenticated", `true`, "false", true, false, nil},
		{"allowed_hosts", `["a.example", "b.example:3001"]`, " a.example , ,c.example", []string{"a.example", "b.example:3001"}, []string{"a.example", "c.example"}, nil},
		{"allowed_origins", `["https://relay.example"]`, "http://localhost:5173,https://x.example", []string{"https://relay.example"}, []string{"http://localhost:5173", "https://x.example"}, nil},
		{"command_timeout", `"90s"`, "1500", 90 * time.Second, 1500 * time.Millisecond, nil},
		{"stall_timeout", `"0s"`, "30000", time.Duration(0), 30 * time.Second, nil},
		{"drain_timeout", `"2s"`, "0", 2 * time.Second, time.Duration(0), nil},
		{"max_request_body", `2048`, "4096", 2048, 4096, nil},
		{"max_output", `10`, "20", 10, 20, nil},
		{"claude_bin", `"/bin/true"`, "/bin/false", "/bin/true", "/bin/false", nil},
		{"claude_args", `["-p", "--verbose", "--output-format", "stream-json"]`, "", []string{"-p", "--verbose", "--output-format", "stream-json"}, nil, nil},
		{"workspace_dir", `"` + dir1 + `"`, dir2, dir1, dir2, nil},
		{"mcp_config", `"` + mcp1 + `"`, mcp2, mcp1, mcp2, nil},
		{"images_dir", `"/x/images"`, "/y/images", "/x/images", "/y/images", nil},
		{"image_ttl", `"10m"`, "60000", 10 * time.Minute, time.Minute, nil},
		{"state_dir", `"$HOME/s"`, "/var/lib/vmd", testHome + "/s", "/var/lib/vmd", nil},
		{"command_retention", `"24h"`, "90m", 24 * time.Hour, 90 * time.Minute, nil},
		{"max_commands", `5`, "7", 5, 7, nil},
		{"webhook_url", `"https://a.example/hook"`, "http://127.0.0.1:9/hook", "https://a.example/hook", "http://127.0.0.1:9/hook", []string{"WEBHOOK_SECRET", secret24}},
		{"webhook_secret", `"` + secret24 + `"`, secret32, secret24, secret32, []string{"WEBHOOK_URL", "https://a.example/hook"}},
		{"git_author_name", `"Ada Lovelace"`, "Grace", "Ada Lovelace", "Grace", nil},
		{"git_author_email", `"ada@example.com"`, "grace@example.com", "ada@example.com", "grace@example.com", nil},
		{"git_credential_hosts", `["github.com", "git.example:8443"]`, "gitlab.com,http://127.0.0.1:8080", []string{"github.com", "git.example:8443"}, []string{"gitlab.com", "http://127.0.0.1:8080"}, nil},
		{"min_free_disk", `"512MiB"`, "2048", int64(512 << 20), int64(2 << 30), nil},
		{"warm", `false`, "true", false, true, nil},
		{"warm_idle", `"1m"`, "5000", time.Minute, 5 * time.Second, nil},
		{"warm_conversations", `3`, "1", 3, 1, nil},
		{"prewarm", `false`, "1", false, true, nil},
		{"queue_max", `0`, "4", 0, 4, nil},
		{"interrupt_grace", `"1s"`, "250", time.Second, 250 * time.Millisecond, nil},
		{"spend_limit_usd", `5`, "2.5", 5.0, 2.5, nil},
		{"spend_window", `"1h"`, "30m", time.Hour, 30 * time.Minute, nil},
		{"max_cost_usd", `0.5`, "0.25", 0.5, 0.25, nil},
		{"log_level", `"debug"`, "warn", "debug", "warn", nil},
		{"log_format", `"json"`, "text", "json", "text", nil},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			s, _ := lookup(tt.name)
			get := func(file string, kv ...string) any {
				t.Helper()
				path := ""
				if file != "" {
					path = writeFile(t, file)
				}
				c, err := Load(path, env(append(copyList(tt.with), kv...)...))
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return s.field.logValue(c)
			}
			file := tt.name + " = " + tt.hcl + "\n"
			if got := get(file); !reflect.DeepEqual(got, tt.fromFile) {
				t.Errorf("vm.hcl %s: %s = %#v; want %#v", strings.TrimSpace(file), tt.name, got, tt.fromFile)
			}
			if s.env == "" {
				return
			}
			if got := get("", s.env, tt.env); !reflect.DeepEqual(got, tt.fromEnv) {
				t.Errorf("%s=%q: %s = %#v; want %#v", s.env, tt.env, tt.name, got, tt.fromEnv)
			}
			if got := get(file, s.env, tt.env); !reflect.DeepEqual(got, tt.fromEnv) {
				t.Errorf("vm.hcl and %s=%q: %s = %#v; want the variable's %#v", s.env, tt.env, tt.name, got, tt.fromEnv)
			}
		})
	}
	for _, s := range settings {
		if !covered[s.name] {
			t.Errorf("setting %s has no case in TestEverySetting", s.name)
		}
	}
}

// copyList copies a list so that appending to it leaves the case's alone.
func copyList(s []string) []string { return append([]string(nil), s...) }

// work_dir and WORK_DIR, the old names of workspace_dir, still work, with
// a warning.
func TestDeprecatedNames(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, file string
		env        []string
		where      string
	}{
		{"file", `work_dir = "` + dir + `"`, nil, "vm.hcl:1,1-9"},
		{"env", "", []string{"WORK_DIR", dir}, "environment"},
		{"env, same as the new name", "", []string{"WORK_DIR", dir, "WORKSPACE_DIR", dir}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file+"\n")
			}
			c, err := Load(path, env(tt.env...))
			if err != nil || c.WorkDir != dir {
				t.Fatalf("Load: WorkDir = %q, %v; want %q", c.WorkDir, err, dir)
			}
			found := ""
			for _, w := range c.Warnings() {
				if w.Msg == "deprecated setting name" {
					found = w.Args[3].(string)
				}
			}
			if !strings.HasSuffix(found, tt.where) || (tt.where == "") != (found == "") {
				t.Errorf("deprecation warning at %q; want %q", found, tt.where)
			}
		})
	}
}
