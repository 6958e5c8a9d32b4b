package config

import (
	"slices"
	"strings"
	"testing"
)

func TestAPIToken(t *testing.T) {
	if c, err := Load("", env()); err != nil || c.APIToken != "" {
		t.Errorf("default APIToken = %q, %v; want empty", c.APIToken, err)
	}
	path := writeFile(t, `api_token = "from-file"`+"\n")
	if c, err := Load(path, env()); err != nil || c.APIToken != "from-file" {
		t.Errorf("vm.hcl api_token: APIToken = %q, %v; want from-file", c.APIToken, err)
	}
	if c, err := Load(path, env("API_TOKEN", "from-env")); err != nil || c.APIToken != "from-env" {
		t.Errorf("API_TOKEN over vm.hcl: APIToken = %q, %v; want from-env", c.APIToken, err)
	}
	// The child never inherits it.
	if !slices.Contains(EnvVars, "API_TOKEN") {
		t.Errorf("EnvVars = %q; want API_TOKEN in it", EnvVars)
	}
	for _, bad := range []string{"has space", "tab\there", "new\nline", "naïve", "del\x7f"} {
		_, err := Load("", env("API_TOKEN", bad))
		if err == nil || !strings.HasPrefix(err.Error(), "api_token: must be printable ASCII") {
			t.Errorf("API_TOKEN=%q: Load error = %v; want api_token: must be printable ASCII ...", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), bad) {
			t.Errorf("API_TOKEN=%q: the error %q shows the token", bad, err)
		}
	}
	path = writeFile(t, `api_token = "a b"`+"\n")
	if _, err := Load(path, env()); err == nil || !strings.Contains(err.Error(), "vm.hcl:1:13: api_token: must be printable ASCII") {
		t.Errorf("vm.hcl api_token with a space: Load error = %v; want it at vm.hcl:1:13", err)
	}
}

func TestCheckMCPConfig(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       string // "" is no error
	}{
		{"servers", `{"mcpServers":{"playwright":{"command":"npx","args":["@playwright/mcp"]}}}`, ""},
		{"no servers", `{"mcpServers":{}}`, ""},
		{"not JSON", `{"mcpServers":`, "not JSON"},
		{"trailing comma", `{"mcpServers":{},}`, "not JSON"},
		{"array", `[]`, "not a JSON object"},
		{"missing", `{"servers":{}}`, `no "mcpServers" object`},
		{"null", `{"mcpServers":null}`, `no "mcpServers" object`},
		{"list", `{"mcpServers":[]}`, `no "mcpServers" object`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.body)
			err := CheckMCPConfig(path)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("CheckMCPConfig(%s) = %v; want %q", tt.body, err, tt.want)
			}
		})
	}
	if err := CheckMCPConfig(""); err != nil {
		t.Errorf(`CheckMCPConfig("") = %v; want nil (no file is fine)`, err)
	}
	if err := CheckMCPConfig("/no/such/mcp.json"); err == nil {
		t.Error("CheckMCPConfig of a missing file = nil; want an error")
	}
}
