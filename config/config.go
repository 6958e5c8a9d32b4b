// Package config loads vmd's settings: built-in defaults, then vm.hcl, then
// environment variables, then path normalisation and validation of the
// whole.
//
// Every setting is declared once, as a row of the table in settings.go: its
// vm.hcl name, environment variable, default, parser, check and doc line.
// Decoding vm.hcl, the environment overrides, EnvVars, and the tests that
// keep vm.hcl and .env.example in step are all derived from that table.
package config

import (
	"errors"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/vmd-dev/vmd/store"
)

// The defaults. The table in settings.go uses them; vm.hcl at the
// repository root writes each out (a test keeps it so).
const (
	// DefaultHost keeps vmd to this machine: an agent with every permission
	// is not something to offer the network by accident. A container sets
	// HOST=0.0.0.0, with api_token or allow_unauthenticated.
	DefaultHost = "127.0.0.1"
	// DefaultPort is the port the relay already talks to.
	DefaultPort = 3001
	// DefaultCommandTimeout bounds one command: long enough for a browsing
	// session, short enough that a stuck run does not hold the slot for long.
	DefaultCommandTimeout = 5 * time.Minute
	// DefaultStallTimeout is how long a CLI may sit silent with no tool call
	// open: headless runs are known to wedge on a dead API connection, and
	// two minutes is longer than any honest pause between API calls.
	DefaultStallTimeout = 2 * time.Minute
	// DefaultDrainTimeout lets a running command finish after SIGTERM.
	// Docker and Fly.io are told to wait 10 s or more; 8 s leaves time to kill
	// the command, answer its request and exit before that.
	DefaultDrainTimeout = 8 * time.Second
	// DefaultImagesDir, empty, puts the screenshots beside vmd's state:
	// images in state_dir, or with state_dir ":memory:" a directory of
	// vmd's own removed at exit. Either is private to the vmd using it; a
	// fixed shared path (/tmp/images, once) let one user's vmd fail on
	// another's directory, or serve its files.
	DefaultImagesDir = ""
	// DefaultImageTTL is how long an image stays for the relay to fetch.
	DefaultImageTTL = time.Hour
	// DefaultClaudeBin is looked up on PATH at each command.
	DefaultClaudeBin = "claude"
	// DefaultMaxRequestBody allows long prompts: they travel in the body.
	DefaultMaxRequestBody = 1 << 20
	// DefaultMaxOutput caps the stdout kept for one command; the rest is
	// read and dropped so the child never blocks on a full pipe. An answer
	// is bound for WhatsApp, whose messages stop at 65,536 characters; 1 MiB
	// is plenty and keeps vmd's memory small even for output that JSON
	// inflates sixfold (control bytes become \u00XX).
	DefaultMaxOutput = 1 << 20
	// DefaultMCPConfig is the MCP servers file handed to the CLI with
	// --mcp-config, relative to workspace_dir. This one is optional: when it
	// does not exist the CLI runs without it. A path set in vm.hcl or
	// MCP_CONFIG must exist.
	DefaultMCPConfig = ".mcp.json"
	// DefaultStateDir is in the home directory, which is per user and, in
	// the image, easy to put on a volume.
	DefaultStateDir = "$HOME/.vmd"
	// MemoryStateDir as state_dir keeps the store in memory: nothing
	// survives a restart.
	MemoryStateDir = store.Memory
	// DefaultCommandRetention keeps a week of records: long enough for a
	// relay to come back for an answer after any outage worth surviving.
	DefaultCommandRetention = 7 * 24 * time.Hour
	// DefaultMaxCommands bounds the store to a few tens of megabytes.
	DefaultMaxCommands = 10000
	// DefaultGitAuthorName and DefaultGitAuthorEmail sign the agent's
	// commits as Claude Code's own co-author trailer does, so they read as
	// the agent's.
	DefaultGitAuthorName  = "Claude"
	DefaultGitAuthorEmail = "noreply@anthropic.com"
	// DefaultMinFreeDisk leaves room for vmd, Chromium and the images when
	// the agent fills the disk.
	DefaultMinFreeDisk = 1 << 30
	// DefaultWarmIdle is how long a conversation's agent waits for its
	// next message: a chat's pauses are minutes, and an idle agent costs
	// memory, not API calls.
	DefaultWarmIdle = 10 * time.Minute
	// DefaultWarmConversations is how many conversations keep an agent: one
	// warm tree with its browser is about 1 GB resident (see
	// docs/operations.md), and the image is sized for two plus the spare.
	DefaultWarmConversations = 2
	// DefaultQueueMax bounds the messages waiting for the one running: a
	// chat's burst, not a backlog.
	DefaultQueueMax = 16
	// DefaultInterruptGrace is how long an interrupted turn may take to end
	// (the CLI answers in tens of milliseconds) before its process is
	// killed.
	DefaultInterruptGrace = 3 * time.Second
	// DefaultSpendWindow is the rolling window the spend limit sums over.
	DefaultSpendWindow = 24 * time.Hour
	// DefaultLogLevel and DefaultLogFormat suit `docker logs`.
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
)

// DefaultClaudeArgs runs the CLI headless with no permission prompts,
// writing its progress as stream-json, which vmd reads for the session id,
// the live events, the cost and the CLI's own verdict. The prompt goes to
// stdin; no trailing "-" (the CLI would take it as prompt text).
var DefaultClaudeArgs = []string{"-p", "--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"}

// DefaultGitCredentialHosts are the hosts GITHUB_TOKEN is for.
var DefaultGitCredentialHosts = []string{"github.com"}

// Config is vmd's settings after defaults, vm.hcl and the environment. The
// vm.hcl name and environment variable of each field are in the table in
// settings.go (and in vm.hcl). After Load, every path is absolute.
type Config struct {
	// Host is the address the API listens on.
	Host string
	// Port is the API's TCP port; 0 picks a free one (tests).
	Port int
	// APIToken, when set, is the bearer token every endpoint but /health
	// requires. A secret: never log it.
	APIToken string
	// AllowUnauthenticated lets vmd listen beyond loopback without APIToken.
	AllowUnauthenticated bool
	// AllowedHosts are Host header values accepted, besides loopback ones,
	// when there is no APIToken.
	AllowedHosts []string
	// AllowedOrigins are the Origin header values accepted; a request with
	// any other Origin is refused.
	AllowedOrigins []string
	// CommandTimeout bounds one command; on expiry its process group is
	// killed and the request answered 408.
	CommandTimeout time.Duration
	// StallTimeout is how long the CLI may do nothing, no tool call open,
	// before it is killed as stalled; 0 disables the watchdog.
	StallTimeout time.Duration
	// DrainTimeout is how long a running command may go on after SIGTERM or
	// SIGINT before it is killed.
	DrainTimeout time.Duration
	// MaxRequestBody is the largest request body accepted, in bytes.
	MaxRequestBody int
	// MaxOutput is the most stdout kept for one command, in bytes.
	MaxOutput int
	// ClaudeBin is the CLI to run, a path or a name looked up on PATH.
	ClaudeBin string
	// ClaudeArgs are the CLI's arguments (vm.hcl only).
	ClaudeArgs []string
	// WorkDir is the CLI's working directory, the workspace (workspace_dir;
	// work_dir is its deprecated old name). Absolute after Load.
	WorkDir string
	// MCPConfig is the MCP servers file passed to the CLI (--mcp-config).
	// After Load it is absolute, or "" when the default file is absent.
	MCPConfig string
	// ImagesDir is watched for images made during a command and served at
	// /images/. After Load it is absolute, or "" when state_dir is
	// MemoryStateDir and none is set: images.Open then makes one of its own.
	ImagesDir string
	// ImageTTL is the age past which an image is deleted.
	ImageTTL time.Duration
	// StateDir holds the command store; MemoryStateDir keeps it in memory.
	// Absolute after Load (or MemoryStateDir).
	StateDir string
	// CommandRetention is the age past which a command record is pruned.
	CommandRetention time.Duration
	// MaxCommands is the most command records kept.
	MaxCommands int
	// WebhookURL receives a signed POST when a command ends; "" is none.
	WebhookURL string
	// WebhookSecret signs the webhook ("whsec_..."). A secret: never log it.
	WebhookSecret string
	// GitAuthorName and GitAuthorEmail author the agent's git commits.
	GitAuthorName  string
	GitAuthorEmail string
	// GitCredentialHosts are the hosts git is given GITHUB_TOKEN for.
	GitCredentialHosts []string
	// MinFreeDisk is the free space, in bytes, below which new commands are
	// refused; 0 disables the guard.
	MinFreeDisk int64
	// Warm keeps each conversation's CLI process alive between its
	// messages; WarmIdle is how long one waits for the next; at most
	// WarmConversations are kept; Prewarm keeps a spare started for the
	// next new conversation.
	Warm              bool
	WarmIdle          time.Duration
	WarmConversations int
	Prewarm           bool
	// QueueMax bounds the commands waiting for the running one.
	QueueMax int
	// InterruptGrace is how long an interrupted turn may take to end before
	// its process group is killed.
	InterruptGrace time.Duration
	// SpendLimitUSD, above zero, refuses new commands once those that ended
	// within SpendWindow cost that much.
	SpendLimitUSD float64
	SpendWindow   time.Duration
	// MaxCostUSD, above zero, is passed to the CLI as --max-budget-usd.
	MaxCostUSD float64
	// LogLevel is trace, debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string

	warnings []Warning
}

// Default returns the built-in settings, as written in the table. Its paths
// are as written ("$HOME/.vmd", a relative mcp_config): to run with, get a
// Config from Load, which resolves them (Load("", getenv) for the defaults).
func Default() *Config {
	c := &Config{}
	for _, s := range settings {
		s.field.reset(c)
	}
	return c
}

// FileEnv names the environment variable that points to vm.hcl (main's
// -config flag defaults to it).
const FileEnv = "VM_CONFIG"

// EnvVars lists the variables vmd reads for itself: FileEnv and every
// setting's, deprecated names included. They are settings of vmd, not of
// the agent, so the child does not inherit them (a PORT=3001 in the child
// would make the dev servers it starts fight vmd for its port, and the
// webhook secret is none of the agent's business).
var EnvVars = envVars()

func envVars() []string {
	vars := []string{FileEnv}
	for _, s := range settings {
		if s.env != "" {
			vars = append(vars, s.env)
		}
		if s.old != nil && s.old.env != "" {
			vars = append(vars, s.old.env)
		}
	}
	return vars
}

// Load builds the settings: defaults, then the vm.hcl at path (none if path
// is empty), then the environment read through getenv, then paths made
// absolute and every setting validated. Every problem found is reported at
// once, one line each; a value written in vm.hcl is reported at its
// file:line:column. What is worth a warning but not a refusal is in
// Warnings.
func Load(path string, getenv func(string) string) (*Config, error) {
	c := Default()
	l := &loader{c: c, getenv: getenv, written: map[string]hcl.Range{}}
	if path != "" {
		if err := l.decodeFile(path); err != nil {
			return nil, err
		}
	}
	var errs []error
	errs = append(errs, l.applyEnv()...)
	if getenv("ANTHROPIC_API_KEY") == "" {
		errs = append(errs, errors.New("ANTHROPIC_API_KEY is not set: claude needs it to reach the API; set it in the environment (or .env for docker compose)"))
	}
	errs = append(errs, l.normalise()...)
	errs = append(errs, l.validate()...)
	c.warnings = append(l.warnings, c.startWarnings(getenv)...)
	return c, errors.Join(errs...)
}

// Validate reports every invalid setting, each prefixed with its vm.hcl
// name. Load calls it; it is exported for configs built in code (tests).
func (c *Config) Validate() []error {
	l := &loader{c: c, written: map[string]hcl.Range{}}
	return l.validate()
}

// Warnings are the concerns Load found that do not stop vmd. Log each at
// warn level: logger.Warn(w.Msg, w.Args...).
func (c *Config) Warnings() []Warning { return c.warnings }

// MCPConfigPath is the absolute path of the MCP servers file to hand the
// CLI, or "" when there is none. After Load it is MCPConfig as is; on a
// Config that has not been through Load it resolves MCPConfig the same way.
func (c *Config) MCPConfigPath() (string, error) {
	return resolveMCPConfig(c.MCPConfig, c.WorkDir)
}

// Logger builds vmd's root logger from the settings. Call it after Load.
func (c *Config) Logger(out io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "vmd",
		Level:      hclog.LevelFromString(c.LogLevel),
		JSONFormat: c.LogFormat == "json",
		Output:     out,
	})
}

// LogFields are every setting as hclog key/value pairs, by vm.hcl name, for
// a start-up log line. A secret shows only whether it is set.
func (c *Config) LogFields() []any {
	kv := make([]any, 0, 2*len(settings))
	for _, s := range settings {
		v := s.field.logValue(c)
		if s.secret {
			v = v != ""
		}
		kv = append(kv, s.name, v)
	}
	return kv
}
