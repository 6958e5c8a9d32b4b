//go:build podman

package container

import (
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmd-dev/vmd/internal/fakeapi"
)

// agent runs the image on the host's network with the real CLI pointed at
// a fake Anthropic API on the host's loopback (internal/fakeapi), and
// returns the container and the fake API. Each of extra is a NAME=value
// added to the container's environment.
func agent(t *testing.T, extra ...string) (*vmd, *fakeapi.Server) {
	t.Helper()
	image := testImage(t)
	api, err := fakeapi.New(fakeapi.WithLogf(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	// Chromium looks names up at start (accounts.google.com) even with
	// background networking off; resolving none keeps it on loopback.
	// Playwright MCP merges this file (PLAYWRIGHT_MCP_CONFIG) under
	// .mcp.json's flags. World-readable: the container's node user reads it.
	dir, err := os.MkdirTemp("", "vmd-container-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pwConfig := filepath.Join(dir, "playwright-mcp.json")
	if err := os.WriteFile(pwConfig, []byte(`{"browser":{"launchOptions":{"args":["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"ANTHROPIC_API_KEY":  "sk-ant-test-not-a-key",
		"ANTHROPIC_BASE_URL": api.URL(),
		// With a base URL not Anthropic's, the CLI would hide the MCP tools
		// behind a tool search tool.
		"ENABLE_TOOL_SEARCH": "false",
		// One retry, not ten over three minutes, if something is wrong.
		"CLAUDE_CODE_MAX_RETRIES": "1",
		"COMMAND_TIMEOUT_MS":      "120000",
		"PLAYWRIGHT_MCP_CONFIG":   "/etc/vmd-test/playwright-mcp.json",
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	v := startVMD(t, image, true, env, "-v", pwConfig+":/etc/vmd-test/playwright-mcp.json:ro")
	waitHealthy(t, v.base, 30*time.Second)
	return v, api
}

// answer is the part of a POST /command answer these tests read.
type answer struct {
	Text      string   `json:"text"`
	Images    []string `json:"images"`
	ExitCode  *int     `json:"exitCode"`
	SessionID string   `json:"sessionId"`
}

func command(t *testing.T, v *vmd, prompt string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": prompt})
	status, resp, err := post(v.base+"/command", string(body))
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST /command %q = %d %s %v; want 200", prompt, status, resp, err)
	}
	var a answer
	if err := json.Unmarshal([]byte(resp), &a); err != nil {
		t.Fatalf("answer %s: %v", resp, err)
	}
	return a
}

// TestAgentAnswers: a real command through the real CLI in the image.
func TestAgentAnswers(t *testing.T) {
	t.Parallel()
	v, api := agent(t)
	start := time.Now()
	a := command(t, v, "What is 2+2?")
	t.Logf("answered in %s", time.Since(start))
	if strings.TrimSpace(a.Text) != "4" || a.ExitCode == nil || *a.ExitCode != 0 {
		t.Errorf("answer = %+v; want text 4, exit code 0", a)
	}
	if a.SessionID == "" {
		t.Errorf("answer has no sessionId: %+v", a)
	}
	for _, r := range api.Requests() {
		if !r.Known {
			t.Errorf("the CLI called %s %s, which the fake API does not know", r.Method, r.Path)
		}
	}
}

// TestAgentScreenshot: the CLI drives Playwright MCP, which drives the
// image's Chromium, to screenshot a page on the host; vmd lists the PNG and
// serves it.
func TestAgentScreenshot(t *testing.T) {
	t.Parallel()
	v, _ := agent(t)
	const page = `<!doctype html><title>vmd container page</title><style>html,body{margin:0;height:100%;background:#ff0000}</style><h1>vmd</h1>`
	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/"

	start := time.Now()
	a := command(t, v, "Take a screenshot of "+url)
	t.Logf("answered in %s", time.Since(start))
	if strings.TrimSpace(a.Text) != "Screenshot taken of "+url {
		t.Errorf("text = %q; want %q", a.Text, "Screenshot taken of "+url)
	}
	name := regexp.MustCompile(`^/images/[^/]+\.png$`)
	if len(a.Images) != 1 || !name.MatchString(a.Images[0]) {
		t.Fatalf("images = %q; want one /images/*.png", a.Images)
	}
	resp, err := client.Get(v.base + a.Images[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s = %d %s; want 200 image/png", a.Images[0], resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decoding the screenshot: %v", err)
	}
	c := img.Bounds().Max
	if r, g, bl, _ := img.At(c.X-10, c.Y-10).RGBA(); r>>8 < 240 || g>>8 > 15 || bl>>8 > 15 {
		t.Errorf("screenshot pixel near the corner = %d,%d,%d; want the page's red", r>>8, g>>8, bl>>8)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(agents, func(ua string) bool { return strings.Contains(ua, "Chrome") }) {
		t.Errorf("the page was fetched by %q; want Chromium", agents)
	}
}
