package config

import "time"

// A setting is one row of the table: everything vmd knows about one
// setting. Default, Load, EnvVars, LogFields and the tests that keep vm.hcl
// and .env.example in step all read this table; nothing else lists settings.
type setting struct {
	name   string // attribute in vm.hcl
	env    string // environment variable; "" when only vm.hcl sets it
	doc    string // what it does and why one would change it
	field  value  // the Config field, its default, parser and check
	secret bool   // never logged, never part of an error
	// old is the name the setting had before, still read with a warning.
	old *alias
}

// alias is a setting's deprecated name in vm.hcl and the environment.
type alias struct{ name, env string }

// settings is the table, in the order vm.hcl and .env.example list them.
var settings = []setting{
	{name: "host", env: "HOST", field: text(func(c *Config) *string { return &c.Host }, DefaultHost, nil),
		doc: "Address the API listens on. 127.0.0.1 keeps vmd to this machine; 0.0.0.0 is every interface (needed in a container), and without api_token needs allow_unauthenticated."},
	{name: "port", env: "PORT", field: number(func(c *Config) *int { return &c.Port }, DefaultPort, checkPort),
		doc: "TCP port of the API. 0 picks a free port and logs it."},
	{name: "api_token", env: "API_TOKEN", secret: true, field: text(func(c *Config) *string { return &c.APIToken }, "", checkToken),
		doc: "Bearer token the API requires: every endpoint but /health answers 401 unless the request has \"Authorization: Bearer <token>\". Printable ASCII without spaces (openssl rand -hex 32); prefer the environment to this file for a secret. The CLI never sees it."},
	{name: "allow_unauthenticated", env: "ALLOW_UNAUTHENTICATED", field: boolean(func(c *Config) *bool { return &c.AllowUnauthenticated }, false),
		doc: "Without api_token, vmd refuses to start on an address beyond loopback unless this is true: set it only where nothing but you can reach the port (a container published on the host's loopback)."},
	{name: "allowed_hosts", env: "ALLOWED_HOSTS", field: list(func(c *Config) *[]string { return &c.AllowedHosts }, nil, checkHosts),
		doc: "Without api_token, requests must name a loopback Host (against DNS rebinding); these host names are accepted too (example.com or example.com:3001)."},
	{name: "allowed_origins", env: "ALLOWED_ORIGINS", field: list(func(c *Config) *[]string { return &c.AllowedOrigins }, nil, checkOrigins),
		doc: "A request sent with an Origin header (a browser) is refused 403 unless its origin is listed here (https://example.com). The relay is not a browser and sends none."},
	{name: "command_timeout", env: "COMMAND_TIMEOUT_MS", field: millis(func(c *Config) *time.Duration { return &c.CommandTimeout }, DefaultCommandTimeout, positive),
		doc: "How long one command may run before its whole process group is killed and the request answered 408 with the output so far."},
	{name: "stall_timeout", env: "STALL_TIMEOUT_MS", field: millis(func(c *Config) *time.Duration { return &c.StallTimeout }, DefaultStallTimeout, notNegative),
		doc: "A command whose CLI does no I/O and prints nothing for this long, with no tool call open, is killed and answered 504 agent_stalled (the session can be resumed). 0 disables the watchdog."},
	{name: "drain_timeout", env: "DRAIN_TIMEOUT_MS", field: millis(func(c *Config) *time.Duration { return &c.DrainTimeout }, DefaultDrainTimeout, notNegative),
		doc: "After SIGTERM or SIGINT, how long a running command may go on before it is killed (its request then gets 503 with the output so far). Keep it below the platform's kill window: stop_grace_period in docker-compose.yml, kill_timeout on Fly.io."},
	{name: "max_request_body", env: "MAX_REQUEST_BODY", field: number(func(c *Config) *int { return &c.MaxRequestBody }, DefaultMaxRequestBody, atLeast(1024, "bytes")),
		doc: "Largest request body accepted, in bytes (prompts travel in the body). Larger requests get 413."},
	{name: "max_output", env: "MAX_OUTPUT", field: number(func(c *Config) *int { return &c.MaxOutput }, DefaultMaxOutput, atLeast(1, "bytes")),
		doc: "Most stdout kept for one command, in bytes; the rest is dropped and the answer says \"truncated\": true."},
	{name: "claude_bin", env: "CLAUDE_BIN", field: text(func(c *Config) *string { return &c.ClaudeBin }, DefaultClaudeBin, notEmpty),
		doc: "The Claude Code CLI: a path, or a name looked up on PATH at each command."},
	{name: "claude_args", field: list(func(c *Config) *[]string { return &c.ClaudeArgs }, DefaultClaudeArgs, nil),
		doc: "The CLI's arguments. The prompt is written to its stdin; do not add a trailing \"-\" (the CLI would take it as part of the prompt). vmd reads the stream-json output for the session id, live events, cost and the CLI's verdict. vmd adds --mcp-config <file>, --resume <id> for a sessionId, --input-format stream-json for a warm process and --max-budget-usd for max_cost_usd; keep --output-format stream-json for warm."},
	{name: "workspace_dir", env: "WORKSPACE_DIR", old: &alias{"work_dir", "WORK_DIR"}, field: text(func(c *Config) *string { return &c.WorkDir }, "", isDir),
		doc: "The CLI's working directory, the same for every command (the CLI files its sessions by directory), and the base of a relative mcp_config. Empty is vmd's own working directory. Must exist. Formerly work_dir (WORK_DIR), still read."},
	{name: "mcp_config", env: "MCP_CONFIG", field: text(func(c *Config) *string { return &c.MCPConfig }, DefaultMCPConfig, nil), // checked in rules: relative to workspace_dir,
		doc: "MCP servers file handed to the CLI with --mcp-config, relative to workspace_dir. The default is used only if it exists; a path set here must exist."},
	{name: "images_dir", env: "IMAGES_DIR", field: text(func(c *Config) *string { return &c.ImagesDir }, DefaultImagesDir, nil),
		doc: "Where screenshots land (point Playwright MCP's --output-dir here). Empty is images in state_dir, private to this vmd; with state_dir \":memory:\", a directory of its own under TMPDIR, removed at exit. Created (mode 0700) if missing; vmd refuses to start if it cannot write it. Watched for new images, served at /images/<name>. The CLI gets it, absolute, as IMAGES_DIR."},
	{name: "image_ttl", env: "IMAGE_TTL_MS", field: millis(func(c *Config) *time.Duration { return &c.ImageTTL }, DefaultImageTTL, positive),
		doc: "Images older than this are deleted from images_dir."},
	{name: "state_dir", env: "STATE_DIR", field: text(func(c *Config) *string { return &c.StateDir }, DefaultStateDir, checkStateDir),
		doc: "Directory of vmd's command store (SQLite): records, idempotency keys, pending webhooks. Put it on a volume to keep them across restarts. A leading $HOME or ~ is the home directory. \":memory:\" keeps nothing across a restart (tests and benchmarks)."},
	{name: "command_retention", env: "COMMAND_RETENTION", field: duration(func(c *Config) *time.Duration { return &c.CommandRetention }, DefaultCommandRetention, positive),
		doc: "Command records older than this are deleted in the background."},
	{name: "max_commands", env: "MAX_COMMANDS", field: number(func(c *Config) *int { return &c.MaxCommands }, DefaultMaxCommands, atLeast(1, "commands")),
		doc: "At most this many command records are kept; the oldest go first."},
	{name: "webhook_url", env: "WEBHOOK_URL", field: text(func(c *Config) *string { return &c.WebhookURL }, "", checkWebhookURL),
		doc: "Where vmd POSTs {\"type\":\"command.completed\",...} when a command ends, signed the Standard Webhooks way. Set it with webhook_secret, or neither."},
	{name: "webhook_secret", env: "WEBHOOK_SECRET", secret: true, field: text(func(c *Config) *string { return &c.WebhookSecret }, "", checkWebhookSecret),
		doc: "The webhook's signing secret: whsec_ and the base64 of 24 to 64 random bytes (echo whsec_$(openssl rand -base64 32)). Prefer the environment to this file."},
	{name: "git_author_name", env: "VMD_GIT_AUTHOR_NAME", field: text(func(c *Config) *string { return &c.GitAuthorName }, DefaultGitAuthorName, checkGitName),
		doc: "Author of the agent's git commits. The variable is not GIT_AUTHOR_NAME, which git itself reads and which would then be hidden from the agent."},
	{name: "git_author_email", env: "VMD_GIT_AUTHOR_EMAIL", field: text(func(c *Config) *string { return &c.GitAuthorEmail }, DefaultGitAuthorEmail, checkGitEmail),
		doc: "Email of the agent's git commits (not GIT_AUTHOR_EMAIL, for the same reason)."},
	{name: "git_credential_hosts", env: "GIT_CREDENTIAL_HOSTS", field: list(func(c *Config) *[]string { return &c.GitCredentialHosts }, DefaultGitCredentialHosts, checkGitHosts),
		doc: "Hosts git may send GITHUB_TOKEN to, read from the environment when git asks; never written to disk. A host name (git.example.com) is https; a URL prefix with its scheme (http://10.0.0.5:3000) names another, in the clear for http."},
	{name: "min_free_disk", env: "MIN_FREE_DISK_MB", field: size(func(c *Config) *int64 { return &c.MinFreeDisk }, DefaultMinFreeDisk, notNegativeSize),
		doc: "When the workspace, images or temp filesystem has less free space than this, new commands get 507 insufficient_storage and /ready fails. 0 disables the guard."},
	{name: "warm", env: "WARM", field: boolean(func(c *Config) *bool { return &c.Warm }, true),
		doc: "Keep each conversation's CLI process (with its MCP servers and browser) alive between its messages, so that a follow-up is answered in milliseconds and the browser keeps its page. false starts a process per message."},
	{name: "warm_idle", env: "WARM_IDLE_MS", field: millis(func(c *Config) *time.Duration { return &c.WarmIdle }, DefaultWarmIdle, positive),
		doc: "How long a conversation's process waits for its next message before it is closed (counting only time the machine runs: a suspended machine's agents survive)."},
	{name: "warm_conversations", env: "WARM_CONVERSATIONS", field: number(func(c *Config) *int { return &c.WarmConversations }, DefaultWarmConversations, atLeast(1, "conversations")),
		doc: "At most this many conversations keep a process; a message for another closes the least recently used idle one first. Each costs about 1 GB of memory once its browser is up (docs/operations.md)."},
	{name: "prewarm", env: "PREWARM", field: boolean(func(c *Config) *bool { return &c.Prewarm }, true),
		doc: "With warm, keep one process started ahead of the next new conversation, so that its first message skips the CLI's start-up too. It costs memory, not API calls."},
	{name: "queue_max", env: "QUEUE_MAX", field: number(func(c *Config) *int { return &c.QueueMax }, DefaultQueueMax, atLeast(0, "commands")),
		doc: "At most this many commands asked with \"whenBusy\": \"queue\" wait for the running one; past it they get 429 queue_full."},
	{name: "interrupt_grace", env: "INTERRUPT_GRACE_MS", field: millis(func(c *Config) *time.Duration { return &c.InterruptGrace }, DefaultInterruptGrace, positive),
		doc: "A command cancelled or timed out is first interrupted, which keeps its conversation's process; one that has not ended this long after is killed with its process group."},
	{name: "spend_limit_usd", env: "SPEND_LIMIT_USD", field: money(func(c *Config) *float64 { return &c.SpendLimitUSD }, 0),
		doc: "When the commands that ended within spend_window cost this many US dollars (as the CLI reports), new commands get 429 spend_limit_reached until enough of it leaves the window. 0 is no limit."},
	{name: "spend_window", env: "SPEND_WINDOW", field: duration(func(c *Config) *time.Duration { return &c.SpendWindow }, DefaultSpendWindow, positive),
		doc: "The rolling window spend_limit_usd sums over."},
	{name: "max_cost_usd", env: "MAX_COST_USD", field: money(func(c *Config) *float64 { return &c.MaxCostUSD }, 0),
		doc: "Passed to the CLI as --max-budget-usd: the most one CLI process may spend. A warm process spends it across the turns it serves, and is replaced once it has less than half left, so a command may spend between half and all of it. 0 is no cap."},
	{name: "log_level", env: "LOG_LEVEL", field: text(func(c *Config) *string { return &c.LogLevel }, DefaultLogLevel, checkLogLevel),
		doc: "trace, debug, info, warn or error."},
	{name: "log_format", env: "LOG_FORMAT", field: text(func(c *Config) *string { return &c.LogFormat }, DefaultLogFormat, checkLogFormat),
		doc: "text, or json for log collectors."},
}

// lookup finds a setting by its vm.hcl name or deprecated name.
func lookup(name string) (setting, bool) {
	for _, s := range settings {
		if s.name == name || s.old != nil && s.old.name == name {
			return s, true
		}
	}
	return setting{}, false
}
