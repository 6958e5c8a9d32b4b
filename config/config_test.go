package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testHome is the HOME every test's environment has, for state_dir.
const testHome = "/home/test"

// env makes a getenv over a map, with the API key and HOME set unless
// overridden.
func env(kv ...string) func(string) string {
	m := map[string]string{"ANTHROPIC_API_KEY": "k", "HOME": testHome}
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

// loaded is Default() as Load leaves it with nothing set: paths made
// absolute, the absent default MCP file dropped.
func loaded(t *testing.T) *Config {
	t.Helper()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.WorkDir = cwd
	c.StateDir = testHome + "/.vmd"
	c.ImagesDir = testHome + "/.vmd/images" // beside the state
	c.MCPConfig = ""                        // no .mcp.json in config/
	return c
}

// same compares configs without their warnings.
func same(a, b *Config) bool {
	x, y := *a, *b
	x.warnings, y.warnings = nil, nil
	return reflect.DeepEqual(x, y)
}

// The contract's defaults.
func TestDefaults(t *testing.T) {
	c := Default()
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"host", c.Host, "127.0.0.1"},
		{"port", c.Port, 3001},
		{"command_timeout", c.CommandTimeout, 5 * time.Minute},
		{"drain_timeout", c.DrainTimeout, 8 * time.Second},
		{"stall_timeout", c.StallTimeout, 120 * time.Second},
		{"images_dir", c.ImagesDir, ""}, // beside state_dir: see TestImagesDirDefault
		{"claude_bin", c.ClaudeBin, "claude"},
		{"max_request_body", c.MaxRequestBody, 1 << 20},
		{"state_dir", c.StateDir, "$HOME/.vmd"},
		{"command_retention", c.CommandRetention, 7 * 24 * time.Hour},
		{"max_commands", c.MaxCommands, 10000},
		{"git_credential_hosts", c.GitCredentialHosts, []string{"github.com"}},
		{"min_free_disk", c.MinFreeDisk, int64(1 << 30)},
		{"allow_unauthenticated", c.AllowUnauthenticated, false},
	} {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("Default().%s = %v; want %v", tt.name, tt.got, tt.want)
		}
	}
	// A default list is the caller's to change.
	c.ClaudeArgs[0] = "changed"
	if Default().ClaudeArgs[0] != "-p" {
		t.Error("changing one Default's claude_args changed the next one's")
	}
	got, err := Load("", env())
	if err != nil {
		t.Fatal(err)
	}
	if want := loaded(t); !same(got, want) {
		t.Errorf("Load with nothing set = %+v; want %+v", got, want)
	}
}

// images_dir defaults to a directory private to the vmd using it: images
// beside its state, or none (images.Open makes one of its own) when it
// keeps its state in memory; a directory set is used as set.
func TestImagesDirDefault(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
		want string
	}{
		{"default state_dir", nil, testHome + "/.vmd/images"},
		{"state_dir set", []string{"STATE_DIR", "/var/lib/vmd"}, "/var/lib/vmd/images"},
		{"state_dir from $HOME", []string{"STATE_DIR", "~/state"}, testHome + "/state/images"},
		{"state in memory", []string{"STATE_DIR", MemoryStateDir}, ""},
		{"images_dir set", []string{"IMAGES_DIR", "/srv/shots"}, "/srv/shots"},
		{"images_dir set, state in memory", []string{"IMAGES_DIR", "/srv/shots", "STATE_DIR", MemoryStateDir}, "/srv/shots"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("", env(tt.env...))
			if err != nil {
				t.Fatal(err)
			}
			if c.ImagesDir != tt.want {
				t.Errorf("Load with %q: images_dir = %q; want %q", tt.env, c.ImagesDir, tt.want)
			}
		})
	}
}

// Every exported Config field is one setting of the table, and every
// setting has a name, a doc line and, but claude_args, its own variable.
func TestTableCoversConfig(t *testing.T) {
	c := &Config{}
	fields := map[uintptr]string{}
	rv := reflect.ValueOf(c).Elem()
	for i := range rv.NumField() {
		if rv.Type().Field(i).IsExported() {
			fields[rv.Field(i).Addr().Pointer()] = rv.Type().Field(i).Name
		}
	}
	names, envs := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		addr := reflect.ValueOf(s.field.ptr(c)).Pointer()
		if _, ok := fields[addr]; !ok {
			t.Errorf("setting %s: its field is not a Config field, or is another setting's", s.name)
		}
		delete(fields, addr)
		if names[s.name] || s.doc == "" || (s.env == "" && s.name != "claude_args") || envs[s.env] {
			t.Errorf("setting %q (env %q): want a unique name and variable and a doc line", s.name, s.env)
		}
		names[s.name], envs[s.env] = true, true
	}
	for _, name := range fields {
		t.Errorf("Config.%s is in no setting of the table", name)
	}
}

// EnvVars is what the child's environment loses: vmd's own settings, the
// deprecated names too, and never git's own variables.
func TestEnvVars(t *testing.T) {
	for _, name := range []string{"VM_CONFIG", "HOST", "PORT", "API_TOKEN", "WEBHOOK_SECRET", "WORKSPACE_DIR", "WORK_DIR", "STATE_DIR", "MIN_FREE_DISK_MB", "VMD_GIT_AUTHOR_NAME"} {
		if !slices.Contains(EnvVars, name) {
			t.Errorf("EnvVars = %q; want %s in it", EnvVars, name)
		}
	}
	for _, name := range []string{"ANTHROPIC_API_KEY", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GITHUB_TOKEN", "IS_SANDBOX"} {
		if slices.Contains(EnvVars, name) {
			t.Errorf("EnvVars = %q; want no %s: it belongs to the CLI", EnvVars, name)
		}
	}
	sorted := slices.Sorted(slices.Values(EnvVars))
	if len(slices.Compact(sorted)) != len(EnvVars) {
		t.Errorf("EnvVars = %q; want each once", EnvVars)
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
		t.Errorf("present default: MCPConfigPath = %q, %v; want it in workspace_dir", p, err)
	}
	got, err := Load("", env("WORKSPACE_DIR", dir))
	if err != nil || got.MCPConfig != filepath.Join(dir, ".mcp.json") {
		t.Errorf("Load: MCPConfig = %q, %v; want it absolute in workspace_dir", got.MCPConfig, err)
	}
	c.MCPConfig = "other.json"
	if p, _ := c.MCPConfigPath(); p != filepath.Join(dir, "other.json") {
		t.Errorf("named file: MCPConfigPath = %q; want it in workspace_dir even before it exists", p)
	}
	if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "other.json\" is not a file") {
		t.Errorf("named file missing: Validate = %v; want one mcp_config error", errs)
	}
}

// Relative paths become absolute once, in Load: images_dir from vmd's
// working directory, state_dir from $HOME, workspace_dir as is.
func TestPathsAreAbsolute(t *testing.T) {
	cwd, _ := os.Getwd()
	work := t.TempDir()
	c, err := Load("", env("IMAGES_DIR", "images", "STATE_DIR", "~/state", "WORKSPACE_DIR", work))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, got, want string }{
		{"images_dir", c.ImagesDir, filepath.Join(cwd, "images")},
		{"state_dir", c.StateDir, testHome + "/state"},
		{"workspace_dir", c.WorkDir, work},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q; want %q", tt.name, tt.got, tt.want)
		}
	}
	if c, err := Load("", env("STATE_DIR", ":memory:")); err != nil || c.StateDir != ":memory:" {
		t.Errorf("STATE_DIR=:memory: state_dir = %q, %v; want :memory:", c.StateDir, err)
	}
}

// A secret shows in the log only as set or not.
func TestLogFields(t *testing.T) {
	c, err := Load("", env("API_TOKEN", "tok-123", "WEBHOOK_URL", "https://relay.example/hook", "WEBHOOK_SECRET", secret24))
	if err != nil {
		t.Fatal(err)
	}
	kv := c.LogFields()
	got := map[any]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		got[kv[i]] = kv[i+1]
	}
	for _, tt := range []struct {
		name string
		want any
	}{{"api_token", true}, {"webhook_secret", true}, {"webhook_url", "https://relay.example/hook"}, {"port", 3001}} {
		if got[tt.name] != tt.want {
			t.Errorf("LogFields()[%s] = %v; want %v", tt.name, got[tt.name], tt.want)
		}
	}
	if len(got) != len(settings) {
		t.Errorf("LogFields() has %d settings; want %d", len(got), len(settings))
	}
}
