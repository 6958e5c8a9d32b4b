package httpapi_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/testfs"
)

// check is one readiness check's result.
type check struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	Version string `json:"version,omitempty"`
	Path    string `json:"path,omitempty"`
}

type readyReply struct {
	status int
	Ready  bool             `json:"ready"`
	Error  string           `json:"error"`
	Msg    string           `json:"message"`
	Fail   []string         `json:"failing"`
	Checks map[string]check `json:"checks"`
}

func (s *server) ready(t *testing.T) readyReply {
	t.Helper()
	got := s.do(t, "GET", "/ready", "")
	r := readyReply{status: got.status}
	if err := json.Unmarshal([]byte(got.body), &r); err != nil {
		t.Fatalf("GET /ready = %d %q: %v", got.status, got.body, err)
	}
	return r
}

func TestReady(t *testing.T) {
	t.Parallel()
	mcp := filepath.Join(t.TempDir(), "mcp.json")
	os.WriteFile(mcp, []byte(`{"mcpServers":{"playwright":{"command":"npx"}}}`), 0o644)
	s := serve(t, setup{mcp: mcp})
	r := s.ready(t)
	want := map[string]check{
		"claude":     {OK: true, Version: "1.0.0-fake (Claude Code)"},
		"images_dir": {OK: true},
		"mcp_config": {OK: true, Path: mcp},
		"disk":       {OK: true},
		"draining":   {OK: true},
		"store":      {OK: true},
	}
	if r.status != 200 || !r.Ready || fmt.Sprint(r.Checks) != fmt.Sprint(want) {
		t.Errorf("GET /ready = %d ready %v %v; want 200 ready %v", r.status, r.Ready, r.Checks, want)
	}
	if got := s.do(t, "HEAD", "/ready", ""); got.status != 200 || got.body != "" {
		t.Errorf("HEAD /ready = %d %q; want 200 without a body", got.status, got.body)
	}
	if got := s.do(t, "POST", "/ready", ""); got.status != 405 || got.header["Allow"] != "GET, HEAD" {
		t.Errorf("POST /ready = %d Allow %q; want 405 GET, HEAD", got.status, got.header["Allow"])
	}
}

// No MCP servers file is fine.
func TestReadyWithoutMCPConfig(t *testing.T) {
	t.Parallel()
	// A test of its own: two supervisors in one process would reap each
	// other's children.
	s := serve(t, setup{})
	if r := s.ready(t); r.status != 200 || r.Checks["mcp_config"] != (check{OK: true, Message: "none"}) {
		t.Errorf("GET /ready without an MCP config = %d %v; want 200, mcp_config none", r.status, r.Checks)
	}
}

// Each check that fails makes /ready 503 and names it, and only it.
func TestNotReady(t *testing.T) {
	t.Parallel()
	badMCP := filepath.Join(t.TempDir(), "mcp.json")
	os.WriteFile(badMCP, []byte(`{"mcpServers": {`), 0o644)
	tests := []struct {
		name    string
		setup   setup
		breakIt func(t *testing.T, s *server)
		failing string
		message string // part of the failing check's message
	}{
		{name: "CLI missing", setup: setup{bin: filepath.Join(t.TempDir(), "no-claude")},
			failing: "claude", message: "no-claude"},
		{name: "CLI fails", setup: setup{env: []string{"FAKECLAUDE_VERSION=fail"}},
			failing: "claude", message: "exited with status 1: version: broken"},
		{name: "images dir read-only", breakIt: func(t *testing.T, s *server) { testfs.Immutable(t, s.ImagesDir) },
			failing: "images_dir", message: "is not writable"},
		{name: "images dir gone", breakIt: func(t *testing.T, s *server) {
			// Moving the parent is nothing the images watcher sees, so it
			// does not recreate the directory.
			parent := filepath.Dir(s.ImagesDir)
			if err := os.Rename(parent, parent+".gone"); err != nil {
				t.Fatal(err)
			}
		}, failing: "images_dir", message: "no such file or directory"},
		{name: "bad MCP JSON", setup: setup{mcp: badMCP}, failing: "mcp_config", message: "not JSON"},
		{name: "MCP config gone", setup: setup{mcp: filepath.Join(t.TempDir(), "gone.json")}, failing: "mcp_config", message: "no such file"},
		{name: "draining", breakIt: func(t *testing.T, s *server) {
			s.ready(t) // the CLI's version is known before the drain
			// A command runs on through the drain: idle, vmd would be
			// done draining, and gone, before /ready is asked.
			go s.fetch("POST", "/command", `{"text":"say draining\nsleep 1h"}`)
			s.running(t, "draining")
			s.Commands.Drain(time.Now().Add(time.Hour))
			t.Cleanup(s.Commands.Hurry) // before the stack's own: the command stops at once
		}, failing: "draining", message: "shutting down"},
		// No filesystem has an exbibyte free.
		{name: "disk low", setup: setup{minFree: 1 << 60}, failing: "disk", message: "low disk space on the workspace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := serve(t, tt.setup)
			if tt.breakIt != nil {
				tt.breakIt(t, s)
			}
			r := s.ready(t)
			c := r.Checks[tt.failing]
			if r.status != 503 || r.Ready || r.Error != "not_ready" || fmt.Sprint(r.Fail) != "["+tt.failing+"]" ||
				c.OK || !strings.Contains(c.Message, tt.message) || !strings.Contains(r.Msg, tt.failing) {
				t.Errorf("GET /ready = %d %+v; want 503 not_ready, failing [%s] with a message containing %q", r.status, r, tt.failing, tt.message)
			}
			if len(r.Checks) != 6 {
				t.Errorf("checks = %v; want all six", r.Checks)
			}
		})
	}
}
