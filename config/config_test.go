package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env makes a getenv over a map, with the API key set unless overridden.
func env(kv ...string) func(string) string {
	m := map[string]string{"ANTHROPIC_API_KEY": "k"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vm.hcl")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load("", env())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load with nothing set = %+v; want the defaults %+v", c, Default())
	}
	if c.Port != 3001 || c.CommandTimeout != 300*time.Second || c.ImagesDir != "/tmp/images" ||
		c.ClaudeBin != "claude" || c.MaxRequestBody < 1<<20 || c.DrainTimeout != 8*time.Second {
		t.Errorf("defaults = %+v; want the contract's", c)
	}
}

// The repository's vm.hcl documents every default: loading it changes
// nothing.
func TestRepoFileIsTheDefaults(t *testing.T) {
	c, err := Load("../vm.hcl", env())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(vm.hcl) = %+v; want the defaults %+v", c, Default())
	}
	src, _ := os.ReadFile("../vm.hcl")
	for _, name := range []string{"host", "port", "command_timeout", "drain_timeout", "images_dir", "image_ttl",
		"claude_bin", "claude_args", "work_dir", "mcp_config", "max_request_body", "max_output", "log_level", "log_format", "api_token"} {
		if !strings.Contains(string(src), "\n"+name+" ") {
			t.Errorf("vm.hcl does not document %s", name)
		}
	}
}

// The MCP config is found from the CLI's working directory; the default file
// is optional, a file named on purpose is not.
func TestMCPConfigPath(t *testing.T) {
	dir := t.TempDir()
	c := Default()
	c.WorkDir = dir
	if p, err := c.MCPConfigPath(); p != "" || err != nil {
		t.Errorf("absent default: MCPConfigPath = %q, %v; want none", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".mcp.json"), []byte(`{"mcpServers":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := c.MCPConfigPath(); p != filepath.Join(dir, ".mcp.json") || err != nil {
		t.Errorf("present default: MCPConfigPath = %q, %v; want it in work_dir", p, err)
	}
	c.MCPConfig = "other.json"
	if p, _ := c.MCPConfigPath(); p != filepath.Join(dir, "other.json") {
		t.Errorf("named file: MCPConfigPath = %q; want it in work_dir even before it exists", p)
	}
	if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "other.json\" is not a file") {
		t.Errorf("named file missing: Validate = %v; want one mcp_config error", errs)
	}
}

func TestFileThenEnv(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, `
port            = 4000
command_timeout = "90s"
image_ttl       = "10m"
claude_args     = ["-p", "--verbose"]
work_dir        = "`+dir+`"
log_format      = "json"
`)
	c, err := Load(path, env("PORT", "5000", "COMMAND_TIMEOUT_MS", "1500", "LOG_LEVEL", "DEBUG"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Port = 5000                              // env wins over the file
	want.CommandTimeout = 1500 * time.Millisecond // likewise
	want.ImageTTL = 10 * time.Minute
	want.ClaudeArgs = []string{"-p", "--verbose"}
	want.WorkDir = dir
	want.LogFormat = "json"
	want.LogLevel = "DEBUG"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load = %+v; want %+v", c, want)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string
	}{
		{"unknown attribute", "prot = 1\n", nil, []string{`vm.hcl:1:1: Unsupported argument: An argument named "prot" is not expected here.`}},
		{"bad duration", "drain_timeout = \"soon\"\n", nil, []string{`vm.hcl:1:17: Invalid duration: drain_timeout = "soon" is not a duration`}},
		{"syntax", "port = \n", nil, []string{`vm.hcl:1:8: Invalid expression`}},
		{"block", "listen {\n}\n", nil, []string{`vm.hcl:1:1: Unsupported block type`}},
		{"env numbers", "", []string{"PORT", "http", "MAX_OUTPUT", "1e6", "DRAIN_TIMEOUT_MS", "-"},
			[]string{`PORT="http": not a whole number`, `DRAIN_TIMEOUT_MS="-": not a whole number of milliseconds`, `MAX_OUTPUT="1e6": not a whole number`}},
		{"no key", "", []string{"ANTHROPIC_API_KEY", ""}, []string{"ANTHROPIC_API_KEY is not set"}},
		{"ranges", "", []string{"PORT", "70000", "COMMAND_TIMEOUT_MS", "0", "DRAIN_TIMEOUT_MS", "-1", "MAX_REQUEST_BODY", "10", "MAX_OUTPUT", "0"},
			[]string{"port: 70000 is not a TCP port", "command_timeout: 0s must be positive", "drain_timeout: -1ms must not be negative",
				"max_request_body: 10 bytes is too small", "max_output: 0 bytes must be positive"}},
		{"names", "log_format = \"xml\"\nclaude_bin = \" \"\nimages_dir = \"\"\n", []string{"LOG_LEVEL", "loud"},
			[]string{`images_dir: must not be empty`, `claude_bin: must not be empty`, `log_level: "loud" is not one of`, `log_format: "xml" is not text or json`}},
		{"work dir", "work_dir = \"/no/such/dir\"\n", nil, []string{`work_dir: "/no/such/dir" is not a directory`}},
		{"mcp config set but missing", "mcp_config = \"/no/such/mcp.json\"\n", nil, []string{`vm.hcl:1:14: mcp_config: "/no/such/mcp.json" is not a file`}},
		{"mcp config from env", "", []string{"MCP_CONFIG", "/"}, []string{`mcp_config: "/" is not a file`}},
		{"file values carry their position", "port = -5\n\nmax_output = 0\n", []string{"COMMAND_TIMEOUT_MS", "-9223372036855"},
			[]string{`COMMAND_TIMEOUT_MS="-9223372036855": not a whole number of milliseconds`,
				`vm.hcl:1:8: port: -5 is not a TCP port`, `vm.hcl:3:14: max_output: 0 bytes must be positive`}},
		{"bad env value leaves the file's position", "port = -5\n", []string{"PORT", "abc"},
			[]string{`PORT="abc": not a whole number`, `vm.hcl:1:8: port: -5 is not a TCP port`}},
		{"env value has no file position", "port = 3001\n", []string{"PORT", "-1"}, []string{`^port: -1 is not a TCP port`}},
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
				// A leading ^ anchors the want at the start of the line.
				if prefix, anchored := strings.CutPrefix(w, "^"); anchored && !strings.HasPrefix(lines[i], prefix) ||
					!anchored && !strings.Contains(lines[i], w) {
					t.Errorf("error line %d = %q; want it to contain %q", i+1, lines[i], w)
				}
			}
		})
	}
}
