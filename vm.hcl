# vm.hcl: vmd's settings. Every setting is written here with its built-in
# default, so this file changes nothing until you edit it; without a file
# (no -config, no VM_CONFIG) vmd uses the same defaults.
#
# Each setting but claude_args can also be set from the environment, which
# wins over this file. Durations are strings: "90s", "5m", "168h"; so are
# sizes: "512MiB", "1GiB".
#
# Generated from the table in config/settings.go: edit the table, then
#   go test ./config -run TestRepoFiles -update

# Address the API listens on. 127.0.0.1 keeps vmd to this machine; 0.0.0.0
# is every interface (needed in a container), and without api_token needs
# allow_unauthenticated. Env: HOST.
host = "127.0.0.1"

# TCP port of the API. 0 picks a free port and logs it. Env: PORT.
port = 3001

# Bearer token the API requires: every endpoint but /health answers 401
# unless the request has "Authorization: Bearer <token>". Printable ASCII
# without spaces (openssl rand -hex 32); prefer the environment to this file
# for a secret. The CLI never sees it. Env: API_TOKEN.
api_token = ""

# Without api_token, vmd refuses to start on an address beyond loopback
# unless this is true: set it only where nothing but you can reach the port
# (a container published on the host's loopback). Env:
# ALLOW_UNAUTHENTICATED.
allow_unauthenticated = false

# Without api_token, requests must name a loopback Host (against DNS
# rebinding); these host names are accepted too (example.com or
# example.com:3001). Env: ALLOWED_HOSTS (comma-separated).
allowed_hosts = []

# A request sent with an Origin header (a browser) is refused 403 unless its
# origin is listed here (https://example.com). The relay is not a browser
# and sends none. Env: ALLOWED_ORIGINS (comma-separated).
allowed_origins = []

# How long one command may run before its whole process group is killed and
# the request answered 408 with the output so far. Env: COMMAND_TIMEOUT_MS
# (milliseconds).
command_timeout = "5m"

# A command whose CLI does no I/O and prints nothing for this long, with no
# tool call open, is killed and answered 504 agent_stalled (the session can
# be resumed). 0 disables the watchdog. Env: STALL_TIMEOUT_MS
# (milliseconds).
stall_timeout = "2m"

# After SIGTERM or SIGINT, how long a running command may go on before it is
# killed (its request then gets 503 with the output so far). Keep it below
# the platform's kill window: stop_grace_period in docker-compose.yml,
# kill_timeout on Fly.io. Env: DRAIN_TIMEOUT_MS (milliseconds).
drain_timeout = "8s"

# Largest request body accepted, in bytes (prompts travel in the body).
# Larger requests get 413. Env: MAX_REQUEST_BODY.
max_request_body = 1048576

# Most stdout kept for one command, in bytes; the rest is dropped and the
# answer says "truncated": true. Env: MAX_OUTPUT.
max_output = 1048576

# The Claude Code CLI: a path, or a name looked up on PATH at each command.
# Env: CLAUDE_BIN.
claude_bin = "claude"

# The CLI's arguments. The prompt is written to its stdin; do not add a
# trailing "-" (the CLI would take it as part of the prompt). vmd reads the
# stream-json output for the session id, live events, cost and the CLI's
# verdict. vmd adds --mcp-config <file>, --resume <id> for a sessionId,
# --input-format stream-json for a warm process and --max-budget-usd for
# max_cost_usd; keep --output-format stream-json for warm. Not read from the
# environment.
claude_args = ["-p", "--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"]

# The CLI's working directory, the same for every command (the CLI files its
# sessions by directory), and the base of a relative mcp_config. Empty is
# vmd's own working directory. Must exist. Formerly work_dir (WORK_DIR),
# still read. Env: WORKSPACE_DIR.
workspace_dir = ""

# MCP servers file handed to the CLI with --mcp-config, relative to
# workspace_dir. The default is used only if it exists; a path set here must
# exist. Env: MCP_CONFIG.
mcp_config = ".mcp.json"

# Where screenshots land (point Playwright MCP's --output-dir here). Empty
# is images in state_dir, private to this vmd; with state_dir ":memory:", a
# directory of its own under TMPDIR, removed at exit. Created (mode 0700) if
# missing; vmd refuses to start if it cannot write it. Watched for new
# images, served at /images/<name>. The CLI gets it, absolute, as
# IMAGES_DIR. Env: IMAGES_DIR.
images_dir = ""

# Images older than this are deleted from images_dir. Env: IMAGE_TTL_MS
# (milliseconds).
image_ttl = "1h"

# Directory of vmd's command store (SQLite): records, idempotency keys,
# pending webhooks. Put it on a volume to keep them across restarts. A
# leading $HOME or ~ is the home directory. ":memory:" keeps nothing across
# a restart (tests and benchmarks). Env: STATE_DIR.
state_dir = "$HOME/.vmd"

# Command records older than this are deleted in the background. Env:
# COMMAND_RETENTION (a duration such as "168h").
command_retention = "168h"

# At most this many command records are kept; the oldest go first. Env:
# MAX_COMMANDS.
max_commands = 10000

# Where vmd POSTs {"type":"command.completed",...} when a command ends,
# signed the Standard Webhooks way. Set it with webhook_secret, or neither.
# Env: WEBHOOK_URL.
webhook_url = ""

# The webhook's signing secret: whsec_ and the base64 of 24 to 64 random
# bytes (echo whsec_$(openssl rand -base64 32)). Prefer the environment to
# this file. Env: WEBHOOK_SECRET.
webhook_secret = ""

# Author of the agent's git commits. The variable is not GIT_AUTHOR_NAME,
# which git itself reads and which would then be hidden from the agent. Env:
# VMD_GIT_AUTHOR_NAME.
git_author_name = "Claude"

# Email of the agent's git commits (not GIT_AUTHOR_EMAIL, for the same
# reason). Env: VMD_GIT_AUTHOR_EMAIL.
git_author_email = "noreply@anthropic.com"

# Hosts git may send GITHUB_TOKEN to, read from the environment when git
# asks; never written to disk. A host name (git.example.com) is https; a URL
# prefix with its scheme (http://10.0.0.5:3000) names another, in the clear
# for http. Env: GIT_CREDENTIAL_HOSTS (comma-separated).
git_credential_hosts = ["github.com"]

# When the workspace, images or temp filesystem has less free space than
# this, new commands get 507 insufficient_storage and /ready fails. 0
# disables the guard. Env: MIN_FREE_DISK_MB (MiB).
min_free_disk = "1GiB"

# Keep each conversation's CLI process (with its MCP servers and browser)
# alive between its messages, so that a follow-up is answered in
# milliseconds and the browser keeps its page. false starts a process per
# message. Env: WARM.
warm = true

# How long a conversation's process waits for its next message before it is
# closed (counting only time the machine runs: a suspended machine's agents
# survive). Env: WARM_IDLE_MS (milliseconds).
warm_idle = "10m"

# At most this many conversations keep a process; a message for another
# closes the least recently used idle one first. Each costs about 1 GB of
# memory once its browser is up (docs/operations.md). Env:
# WARM_CONVERSATIONS.
warm_conversations = 2

# With warm, keep one process started ahead of the next new conversation, so
# that its first message skips the CLI's start-up too. It costs memory, not
# API calls. Env: PREWARM.
prewarm = true

# At most this many commands asked with "whenBusy": "queue" wait for the
# running one; past it they get 429 queue_full. Env: QUEUE_MAX.
queue_max = 16

# A command cancelled or timed out is first interrupted, which keeps its
# conversation's process; one that has not ended this long after is killed
# with its process group. Env: INTERRUPT_GRACE_MS (milliseconds).
interrupt_grace = "3s"

# When the commands that ended within spend_window cost this many US dollars
# (as the CLI reports), new commands get 429 spend_limit_reached until
# enough of it leaves the window. 0 is no limit. Env: SPEND_LIMIT_USD (US
# dollars).
spend_limit_usd = 0

# The rolling window spend_limit_usd sums over. Env: SPEND_WINDOW (a
# duration such as "168h").
spend_window = "24h"

# Passed to the CLI as --max-budget-usd: the most one CLI process may spend.
# A warm process spends it across the turns it serves, and is replaced once
# it has less than half left, so a command may spend between half and all of
# it. 0 is no cap. Env: MAX_COST_USD (US dollars).
max_cost_usd = 0

# trace, debug, info, warn or error. Env: LOG_LEVEL.
log_level = "info"

# text, or json for log collectors. Env: LOG_FORMAT.
log_format = "text"
