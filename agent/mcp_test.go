package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckMCPConfig(t *testing.T) {
	t.Parallel()
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
			path := filepath.Join(t.TempDir(), ".mcp.json")
			if err := os.WriteFile(path, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
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
