package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmd-dev/vmd/agent"
	"github.com/vmd-dev/vmd/internal/testbin"
	"github.com/vmd-dev/vmd/internal/vmdtest"
)

// fake is the fake claude, built once for the whole run.
var fake string

func TestMain(m *testing.M) {
	vmdtest.Main(m, []string{testbin.FakeClaude}, []*string{&fake})
}

// run runs one prompt through the stack's agent.
func run(t *testing.T, s *vmdtest.Stack, prompt string) *agent.Result {
	t.Helper()
	return runReq(t, s, agent.Request{Prompt: prompt})
}

func runReq(t *testing.T, s *vmdtest.Stack, req agent.Request) *agent.Result {
	t.Helper()
	r, err := s.Agent.Start(req)
	if err != nil {
		t.Fatalf("Start(%q) error = %v", req.Prompt, err)
	}
	return r.Wait()
}

func noneLeft(t *testing.T) {
	t.Helper()
	if live, zombies := vmdtest.Tree(os.Getpid()); live != 0 || zombies != 0 {
		t.Errorf("left %d live children and %d zombies; want none", live, zombies)
	}
}

func TestOutcomes(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake})
	tests := []struct {
		name    string
		prompt  string
		outcome agent.Outcome
		text    string
		message string
		exit    int
	}{
		{"answer", "say 4", agent.OK, "4\n", "", 0},
		{"agent error", "agent-error overloaded", agent.AgentError, "overloaded", "overloaded", 1},
		{"crash", "err boom\nexit 3", agent.Crashed, "", "boom", 3},
		{"killed", "die KILL", agent.Crashed, "", "claude was killed by SIGKILL", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, s, tt.prompt)
			if res.Outcome != tt.outcome || !strings.Contains(res.Text, tt.text) || res.Message != tt.message || res.ExitCode != tt.exit {
				t.Errorf("run(%q) = %v %q message %q exit %d; want %v %q %q %d", tt.prompt,
					res.Outcome, res.Text, res.Message, res.ExitCode, tt.outcome, tt.text, tt.message, tt.exit)
			}
		})
	}
}

// A CLI that does not speak stream-json: its output is the answer, exit 0
// is success.
func TestPlainCLI(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake, Plain: true})
	if res := run(t, s, "say plain"); res.Outcome != agent.OK || res.Text != "plain\n" {
		t.Errorf("plain run = %v %q; want ok, plain", res.Outcome, res.Text)
	}
	if res := run(t, s, "say half\nexit 2"); res.Outcome != agent.Crashed || res.Message != "half" {
		t.Errorf("plain failure = %v %q; want crashed with its output as the message", res.Outcome, res.Message)
	}
}

func TestSessionNotFound(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake})
	res := runReq(t, s, agent.Request{Prompt: "say hi", SessionID: "00000000-0000-4000-8000-000000000000"})
	if res.Outcome != agent.SessionNotFound {
		t.Errorf("resume of an unknown session = %v %q; want session_not_found", res.Outcome, res.Message)
	}
	first := run(t, s, "say one")
	if again := runReq(t, s, agent.Request{Prompt: "recall", SessionID: first.SessionID}); again.Outcome != agent.OK {
		t.Errorf("resume of session %q = %v; want ok", first.SessionID, again.Outcome)
	}
}

func TestTimeoutKeepsPartialText(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake})
	res := runReq(t, s, agent.Request{Prompt: "say partial\nsleep 1h", Timeout: 300e6})
	if res.Outcome != agent.TimedOut || !strings.HasPrefix(res.Text, "partial") {
		t.Errorf("timed out run = %v %q; want timeout with the text so far", res.Outcome, res.Text)
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct{ name, bin, want string }{
		{"missing", filepath.Join(t.TempDir(), "no-such-claude"), "no such file"},
		{"not on PATH", "no-such-claude-anywhere", `claude_bin "no-such-claude-anywhere": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := vmdtest.Start(t, vmdtest.Options{Bin: tt.bin})
			res := run(t, s, "hello")
			if res.Outcome != agent.StartFailed || !strings.Contains(res.Message, tt.want) {
				t.Errorf("run with claude_bin %q = %v %q; want start_failed mentioning %q", tt.bin, res.Outcome, res.Message, tt.want)
			}
			if s.Supervisor.Busy() {
				t.Error("slot still taken after a failed start")
			}
		})
	}
}

func TestBusy(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake})
	r, err := s.Agent.Start(agent.Request{Prompt: "sleep 1h"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Agent.Start(agent.Request{Prompt: "say two"}); !errors.Is(err, agent.ErrBusy) {
		t.Errorf("second Start = %v; want ErrBusy", err)
	}
	r.Cancel()
	if res := r.Wait(); res.Outcome != agent.Cancelled {
		t.Errorf("cancelled run = %v; want cancelled", res.Outcome)
	}
}

func TestOutputCap(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake, Plain: true, MaxOutput: 1000})
	if res := run(t, s, "bytes 300000"); len(res.Text) != 1000 || !res.Truncated {
		t.Errorf("stdout %d bytes, truncated %v; want 1000, true", len(res.Text), res.Truncated)
	}
	if res := run(t, s, "bytes 1000"); len(res.Text) != 1000 || res.Truncated {
		t.Errorf("stdout %d bytes, truncated %v; want 1000, false", len(res.Text), res.Truncated)
	}
}

func TestImagesOfTheCommand(t *testing.T) {
	s := vmdtest.Start(t, vmdtest.Options{Bin: fake})
	if err := os.WriteFile(filepath.Join(s.ImagesDir, "old.png"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var told []string
	res := runReq(t, s, agent.Request{Prompt: "screenshot a.png\nimage b.jpeg\nimage notes.txt\nsay done",
		OnEvent: func(ev agent.Event) {
			if ev.Kind == agent.EventImage {
				told = append(told, ev.Image)
			}
		}})
	if got := strings.Join(res.Images, ","); got != "a.png,b.jpeg" {
		t.Errorf("Images = %q; want a.png,b.jpeg", got)
	}
	if got := strings.Join(told, ","); got != "a.png,b.jpeg" {
		t.Errorf("image events = %q; want a.png,b.jpeg", got)
	}
	if res := run(t, s, "say none"); len(res.Images) != 0 {
		t.Errorf("Images of a command that made none = %q", res.Images)
	}
}

func TestArgsAndEnv(t *testing.T) {
	args := agent.Args([]string{"-p"}, "/img", "/mcp.json")
	if got := strings.Join(args[:3], " "); got != "-p --mcp-config /mcp.json" || args[3] != "--append-system-prompt" ||
		!strings.Contains(args[4], "/img") {
		t.Errorf("Args = %q; want claude_args, the MCP config and the screenshot hint", args)
	}
	if args := agent.Args([]string{"--system-prompt", "x"}, "/img", "/mcp.json"); len(args) != 4 {
		t.Errorf("Args with a system prompt = %q; want no hint added", args)
	}
	if args := agent.Args([]string{"-p"}, "/img", ""); len(args) != 1 {
		t.Errorf("Args without an MCP config = %q; want claude_args alone", args)
	}
	env := agent.Env([]string{"PORT=3001", "HOME=/h", "IMAGES_DIR=/old"}, []string{"PORT"}, "/img")
	if got := strings.Join(env, " "); got != "HOME=/h IMAGES_DIR=/img" {
		t.Errorf("Env = %q; want vmd's settings dropped and IMAGES_DIR set", got)
	}
}
