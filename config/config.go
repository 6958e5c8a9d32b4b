// Package config loads vmd's settings: built-in defaults, then vm.hcl, then
// environment variables, then validation of the whole.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// The defaults. vm.hcl at the repository root repeats each of them.
const (
	// DefaultHost listens on every interface: inside a container the port
	// is reached through the container's network.
	DefaultHost = "0.0.0.0"
	// DefaultPort is the port the relay already talks to.
	DefaultPort = 3001
	// DefaultCommandTimeout bounds one command: long enough for a browsing
	// session, short enough that a stuck run does not hold the slot for long.
	DefaultCommandTimeout = 5 * time.Minute
	// DefaultDrainTimeout lets a running command finish after SIGTERM.
	// Docker and Fly.io are told to wait 10 s or more; 8 s leaves time to kill
	// the command, answer its request and exit before that.
	DefaultDrainTimeout = 8 * time.Second
	// DefaultImagesDir is where Playwright MCP writes screenshots.
	DefaultImagesDir = "/tmp/images"
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
	// --mcp-config, relative to work_dir. This one is optional: when it does
	// not exist the CLI runs without it. A path set in vm.hcl or MCP_CONFIG
	// must exist.
	DefaultMCPConfig = ".mcp.json"
	// DefaultLogLevel and DefaultLogFormat suit `docker logs`.
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
)

// DefaultClaudeArgs runs the CLI headless with no permission prompts,
// writing its progress as stream-json, which vmd reads for the session id,
// the live events, the cost and the CLI's own verdict. The prompt goes to
// stdin; no trailing "-" (the CLI would take it as prompt text).
var DefaultClaudeArgs = []string{"-p", "--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"}

// Config is vmd's settings after defaults, vm.hcl and the environment.
type Config struct {
	// Host is the address the API listens on. vm.hcl: host; env: HOST.
	Host string
	// Port is the API's TCP port; 0 picks a free one (tests). vm.hcl: port;
	// env: PORT.
	Port int
	// CommandTimeout bounds one command; on expiry its process group is
	// killed and the request answered 408. vm.hcl: command_timeout; env:
	// COMMAND_TIMEOUT_MS.
	CommandTimeout time.Duration
	// DrainTimeout is how long a running command may go on after SIGTERM or
	// SIGINT before it is killed. vm.hcl: drain_timeout; env: DRAIN_TIMEOUT_MS.
	DrainTimeout time.Duration
	// ImagesDir is watched for images made during a command and served at
	// /images/. vm.hcl: images_dir; env: IMAGES_DIR.
	ImagesDir string
	// ImageTTL is the age past which an image is deleted. vm.hcl: image_ttl;
	// env: IMAGE_TTL_MS.
	ImageTTL time.Duration
	// ClaudeBin is the CLI to run, a path or a name looked up on PATH.
	// vm.hcl: claude_bin; env: CLAUDE_BIN.
	ClaudeBin string
	// ClaudeArgs are the CLI's arguments. vm.hcl: claude_args.
	ClaudeArgs []string
	// WorkDir is the CLI's working directory, where .mcp.json lives; empty is
	// vmd's own. vm.hcl: work_dir; env: WORK_DIR.
	WorkDir string
	// MCPConfig is the MCP servers file passed to the CLI (--mcp-config),
	// relative to WorkDir. vm.hcl: mcp_config; env: MCP_CONFIG.
	MCPConfig string
	// MaxRequestBody is the largest request body accepted, in bytes.
	// vm.hcl: max_request_body; env: MAX_REQUEST_BODY.
	MaxRequestBody int
	// MaxOutput is the most stdout kept for one command, in bytes.
	// vm.hcl: max_output; env: MAX_OUTPUT.
	MaxOutput int
	// LogLevel is trace, debug, info, warn or error. vm.hcl: log_level;
	// env: LOG_LEVEL.
	LogLevel string
	// LogFormat is text or json. vm.hcl: log_format; env: LOG_FORMAT.
	LogFormat string
	// APIToken, when set, is the bearer token every endpoint but /health
	// requires. Empty leaves the API open. vm.hcl: api_token; env: API_TOKEN.
	APIToken string
}

// Default returns the built-in settings.
func Default() *Config {
	return &Config{
		Host:           DefaultHost,
		Port:           DefaultPort,
		CommandTimeout: DefaultCommandTimeout,
		DrainTimeout:   DefaultDrainTimeout,
		ImagesDir:      DefaultImagesDir,
		ImageTTL:       DefaultImageTTL,
		ClaudeBin:      DefaultClaudeBin,
		ClaudeArgs:     append([]string(nil), DefaultClaudeArgs...),
		MCPConfig:      DefaultMCPConfig,
		MaxRequestBody: DefaultMaxRequestBody,
		MaxOutput:      DefaultMaxOutput,
		LogLevel:       DefaultLogLevel,
		LogFormat:      DefaultLogFormat,
	}
}

// EnvVars lists the variables vmd reads for itself. They are settings of
// vmd, not of the agent, so the child does not inherit them (a PORT=3001 in
// the child would make the dev servers it starts fight vmd for its port).
var EnvVars = []string{
	"VM_CONFIG", "HOST", "PORT", "COMMAND_TIMEOUT_MS", "DRAIN_TIMEOUT_MS",
	"IMAGES_DIR", "IMAGE_TTL_MS", "CLAUDE_BIN", "WORK_DIR", "MCP_CONFIG", "MAX_REQUEST_BODY",
	"MAX_OUTPUT", "LOG_LEVEL", "LOG_FORMAT", "API_TOKEN",
}

// Load builds the settings: defaults, then the vm.hcl at path (none if path
// is empty), then the environment read through getenv, then validation. Every
// problem found is reported at once, one line each.
func Load(path string, getenv func(string) string) (*Config, error) {
	c := Default()
	written := map[string]hcl.Range{} // where vm.hcl sets each setting
	if path != "" {
		var err error
		if written, err = c.decodeFile(path); err != nil {
			return nil, err
		}
	}
	var errs []error
	errs = append(errs, c.applyEnv(getenv, written)...)
	if getenv("ANTHROPIC_API_KEY") == "" {
		errs = append(errs, errors.New("ANTHROPIC_API_KEY is not set: claude needs it to reach the API; set it in the environment (or .env for docker compose)"))
	}
	errs = append(errs, c.validate(written)...)
	return c, errors.Join(errs...)
}

// file is vm.hcl as written. Durations are strings ("5m") parsed once in
// decodeFile; gohcl leaves an attribute that is not written untouched, so the
// defaults copied in beforehand survive.
type file struct {
	Host           string   `hcl:"host,optional"`
	Port           int      `hcl:"port,optional"`
	CommandTimeout string   `hcl:"command_timeout,optional"`
	DrainTimeout   string   `hcl:"drain_timeout,optional"`
	ImagesDir      string   `hcl:"images_dir,optional"`
	ImageTTL       string   `hcl:"image_ttl,optional"`
	ClaudeBin      string   `hcl:"claude_bin,optional"`
	ClaudeArgs     []string `hcl:"claude_args,optional"`
	WorkDir        string   `hcl:"work_dir,optional"`
	MCPConfig      string   `hcl:"mcp_config,optional"`
	MaxRequestBody int      `hcl:"max_request_body,optional"`
	MaxOutput      int      `hcl:"max_output,optional"`
	LogLevel       string   `hcl:"log_level,optional"`
	LogFormat      string   `hcl:"log_format,optional"`
	APIToken       string   `hcl:"api_token,optional"`
}

// decodeFile applies vm.hcl and returns where each setting it writes is.
func (c *Config) decodeFile(path string) (map[string]hcl.Range, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w (set -config or VM_CONFIG to an existing vm.hcl, or neither for the defaults)", err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	fc := file{
		Host: c.Host, Port: c.Port,
		CommandTimeout: c.CommandTimeout.String(), DrainTimeout: c.DrainTimeout.String(),
		ImagesDir: c.ImagesDir, ImageTTL: c.ImageTTL.String(),
		ClaudeBin: c.ClaudeBin, ClaudeArgs: c.ClaudeArgs, WorkDir: c.WorkDir, MCPConfig: c.MCPConfig,
		MaxRequestBody: c.MaxRequestBody, MaxOutput: c.MaxOutput,
		LogLevel: c.LogLevel, LogFormat: c.LogFormat, APIToken: c.APIToken,
	}
	if diags := gohcl.DecodeBody(f.Body, nil, &fc); diags.HasErrors() {
		return nil, diagError(diags)
	}
	c.Host, c.Port = fc.Host, fc.Port
	c.ImagesDir, c.ClaudeBin, c.ClaudeArgs, c.WorkDir = fc.ImagesDir, fc.ClaudeBin, fc.ClaudeArgs, fc.WorkDir
	c.MCPConfig = fc.MCPConfig
	c.MaxRequestBody, c.MaxOutput = fc.MaxRequestBody, fc.MaxOutput
	c.LogLevel, c.LogFormat = fc.LogLevel, fc.LogFormat
	c.APIToken = fc.APIToken

	// A bad value is reported where it is written.
	attrs, _ := f.Body.JustAttributes()
	written := map[string]hcl.Range{}
	for name, a := range attrs {
		written[name] = a.Expr.Range()
	}
	for _, d := range []struct {
		name string
		raw  string
		dst  *time.Duration
	}{
		{"command_timeout", fc.CommandTimeout, &c.CommandTimeout},
		{"drain_timeout", fc.DrainTimeout, &c.DrainTimeout},
		{"image_ttl", fc.ImageTTL, &c.ImageTTL},
	} {
		v, err := time.ParseDuration(d.raw)
		if err != nil {
			subject := f.Body.MissingItemRange().Ptr()
			if a, ok := attrs[d.name]; ok {
				subject = a.Expr.Range().Ptr()
			}
			diags = diags.Append(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid duration",
				Detail:   fmt.Sprintf("%s = %q is not a duration; write it like \"90s\", \"5m\" or \"1h\".", d.name, d.raw),
				Subject:  subject,
			})
			continue
		}
		*d.dst = v
	}
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	return written, nil
}

// diagError turns HCL diagnostics into one error line each, as
// file:line:column: summary: detail.
func diagError(diags hcl.Diagnostics) error {
	var errs []error
	for _, d := range diags.Errs() {
		var diag *hcl.Diagnostic
		if !errors.As(d, &diag) || diag.Subject == nil {
			errs = append(errs, d)
			continue
		}
		s := diag.Subject
		errs = append(errs, fmt.Errorf("%s:%d:%d: %s: %s", s.Filename, s.Start.Line, s.Start.Column, diag.Summary, diag.Detail))
	}
	return errors.Join(errs...)
}

// applyEnv overrides settings from the environment. A value that does not
// parse is an error naming the variable, never a silent default. A setting
// taken from the environment is no longer the file's: it leaves written.
func (c *Config) applyEnv(getenv func(string) string, written map[string]hcl.Range) []error {
	var errs []error
	set := func(env, setting string, parse func(string) error) {
		v := getenv(env)
		if v == "" {
			return
		}
		if err := parse(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			return
		}
		delete(written, setting)
	}
	str := func(env, setting string, dst *string) {
		set(env, setting, func(v string) error { *dst = v; return nil })
	}
	num := func(env, setting string, dst *int) {
		set(env, setting, func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return errors.New("not a whole number")
			}
			*dst = n
			return nil
		})
	}
	millis := func(env, setting string, dst *time.Duration) {
		set(env, setting, func(v string) error {
			const limit = int64(1<<63-1) / int64(time.Millisecond)
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n > limit || n < -limit {
				return errors.New("not a whole number of milliseconds")
			}
			*dst = time.Duration(n) * time.Millisecond
			return nil
		})
	}
	str("HOST", "host", &c.Host)
	num("PORT", "port", &c.Port)
	millis("COMMAND_TIMEOUT_MS", "command_timeout", &c.CommandTimeout)
	millis("DRAIN_TIMEOUT_MS", "drain_timeout", &c.DrainTimeout)
	str("IMAGES_DIR", "images_dir", &c.ImagesDir)
	millis("IMAGE_TTL_MS", "image_ttl", &c.ImageTTL)
	str("CLAUDE_BIN", "claude_bin", &c.ClaudeBin)
	str("WORK_DIR", "work_dir", &c.WorkDir)
	str("MCP_CONFIG", "mcp_config", &c.MCPConfig)
	num("MAX_REQUEST_BODY", "max_request_body", &c.MaxRequestBody)
	num("MAX_OUTPUT", "max_output", &c.MaxOutput)
	str("LOG_LEVEL", "log_level", &c.LogLevel)
	str("LOG_FORMAT", "log_format", &c.LogFormat)
	str("API_TOKEN", "api_token", &c.APIToken)
	return errs
}

// Validate reports every invalid setting, each prefixed with its vm.hcl name.
func (c *Config) Validate() []error { return c.validate(nil) }

// validate is Validate, with the position in vm.hcl before each setting
// written there.
func (c *Config) validate(written map[string]hcl.Range) []error {
	var errs []error
	bad := func(name, format string, args ...any) {
		err := fmt.Errorf(name+": "+format, args...)
		if r, ok := written[name]; ok {
			err = fmt.Errorf("%s:%d:%d: %w", r.Filename, r.Start.Line, r.Start.Column, err)
		}
		errs = append(errs, err)
	}
	if c.Port < 0 || c.Port > 65535 {
		bad("port", "%d is not a TCP port (0 to 65535; 0 picks a free one)", c.Port)
	}
	if c.CommandTimeout <= 0 {
		bad("command_timeout", "%s must be positive", c.CommandTimeout)
	}
	if c.DrainTimeout < 0 {
		bad("drain_timeout", "%s must not be negative", c.DrainTimeout)
	}
	if c.ImageTTL <= 0 {
		bad("image_ttl", "%s must be positive", c.ImageTTL)
	}
	if strings.TrimSpace(c.ImagesDir) == "" {
		bad("images_dir", "must not be empty")
	}
	if strings.TrimSpace(c.ClaudeBin) == "" {
		bad("claude_bin", "must not be empty")
	}
	if c.WorkDir != "" {
		if fi, err := os.Stat(c.WorkDir); err != nil || !fi.IsDir() {
			bad("work_dir", "%q is not a directory", c.WorkDir)
		}
	}
	if path, err := c.MCPConfigPath(); err != nil {
		bad("mcp_config", "%v", err)
	} else if path != "" {
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			bad("mcp_config", "%q is not a file (set mcp_config to an MCP servers file, or leave it at %q)", path, DefaultMCPConfig)
		}
	}
	if c.MaxRequestBody < 1024 {
		bad("max_request_body", "%d bytes is too small (at least 1024)", c.MaxRequestBody)
	}
	if c.MaxOutput < 1 {
		bad("max_output", "%d bytes must be positive", c.MaxOutput)
	}
	if lvl := hclog.LevelFromString(c.LogLevel); lvl == hclog.NoLevel {
		bad("log_level", "%q is not one of trace, debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q is not text or json", c.LogFormat)
	}
	if err := checkToken(c.APIToken); err != nil {
		bad("api_token", "%v", err)
	}
	return errs
}

// MCPConfigPath is the absolute path of the MCP servers file to hand the
// CLI, or "" when there is none: the default file may be absent, a path set
// on purpose may not (Validate reports it). A relative path is taken from
// WorkDir, where the CLI runs.
func (c *Config) MCPConfigPath() (string, error) {
	if c.MCPConfig == "" {
		return "", nil
	}
	path := c.MCPConfig
	if !filepath.IsAbs(path) {
		path = filepath.Join(c.WorkDir, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if c.MCPConfig == DefaultMCPConfig {
		if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
	}
	return abs, nil
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
