# vm.hcl: vmd's settings. Every setting is written here with its built-in
# default, so this file changes nothing until you edit it; without a file
# (no -config, no VM_CONFIG) vmd uses the same defaults.
#
# Each setting but claude_args can also be set from the environment, which
# wins over this file. Durations are strings: "90s", "5m", "1h".

# Address the API listens on. 0.0.0.0 is every interface (needed in a
# container); 127.0.0.1 keeps vmd to this machine. Env: HOST.
host = "0.0.0.0"

# TCP port of the API. 0 picks a free port and logs it. Env: PORT.
port = 3001

# How long one command may run before its whole process group is killed and
# the request answered 408 with the output so far. Env: COMMAND_TIMEOUT_MS
# (milliseconds).
command_timeout = "5m0s"

# After SIGTERM or SIGINT, how long a running command may go on before it is
# killed (its request then gets 503 with the output so far). Keep it below the
# platform's kill window: stop_grace_period in docker-compose.yml,
# kill_timeout on Fly.io. Env: DRAIN_TIMEOUT_MS (milliseconds).
drain_timeout = "8s"

# Where screenshots land (point Playwright MCP's --output-dir here). Created
# if missing, watched for new images, served at /images/<name>. The CLI gets
# it as IMAGES_DIR. Env: IMAGES_DIR.
images_dir = "/tmp/images"

# Images older than this are deleted from images_dir. Env: IMAGE_TTL_MS
# (milliseconds).
image_ttl = "1h0m0s"

# The Claude Code CLI: a path, or a name looked up on PATH at each command.
# Env: CLAUDE_BIN.
claude_bin = "claude"

# Its arguments. The prompt is written to its stdin; do not add a trailing
# "-" (the CLI would take it as part of the prompt). vmd reads the
# stream-json output for the session id, live events, cost and the CLI's
# verdict; without it answers carry the plain output and no session.
# vmd adds --resume <id> for a sessionId and --mcp-config <file>.
claude_args = ["-p", "--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"]

# The CLI's working directory, and the base of a relative mcp_config. Empty
# is vmd's own working directory. Env: WORK_DIR.
work_dir = ""

# MCP servers file handed to the CLI with --mcp-config, relative to work_dir.
# The default is used only if it exists; a path set here must exist.
# Env: MCP_CONFIG.
mcp_config = ".mcp.json"

# Largest request body accepted, in bytes (prompts travel in the body).
# Larger requests get 413. Env: MAX_REQUEST_BODY.
max_request_body = 1048576

# Most stdout kept for one command, in bytes; the rest is dropped and the
# answer says "truncated": true. Env: MAX_OUTPUT.
max_output = 1048576

# trace, debug, info, warn or error. Env: LOG_LEVEL.
log_level = "info"

# text, or json for log collectors. Env: LOG_FORMAT.
log_format = "text"

# Bearer token the API requires: every endpoint but /health answers 401
# unless the request has "Authorization: Bearer <token>". Empty leaves the
# API open to anyone who can reach the port (vmd warns at start when it
# listens beyond loopback). Printable ASCII without spaces; prefer the
# environment to this file for a secret. The CLI never sees it.
# Env: API_TOKEN.
api_token = ""
