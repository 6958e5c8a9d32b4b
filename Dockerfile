# vmd's image: vmd as PID 1, running the Claude Code CLI with Playwright MCP
# and Debian's Chromium, as the unprivileged node user.
#
#   docker compose up --build             (see docker-compose.yml, .env.example)
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t vmd .
#
# Behind a TLS-intercepting proxy, put its CA certificate(s) in certs/ as
# *.crt files (PEM) before building (see certs/README.md); empty by default.
# Without them the download steps fail with an x509 error and the build
# stops there, saying what to do. podman-compose 1.0 exits 0 even then (with
# nothing running): read its output, or build first with podman build.
# Needs BuildKit (Docker 23+ and docker compose use it by default) or podman.

# --- build: a static vmd -------------------------------------------------
FROM golang:1.26-bookworm AS build
# Extra CAs first, so Go module downloads trust a TLS-intercepting proxy.
# Only this stage's trust store gets them; the stage is thrown away.
COPY certs/ /usr/local/share/ca-certificates/vmd-extra/
RUN update-ca-certificates
WORKDIR /src
# Modules before sources: editing code does not download them again.
COPY go.mod go.sum ./
RUN go mod download || { \
      echo >&2; \
      echo >&2 "vmd build: go mod download failed (see above)."; \
      echo >&2 "vmd build: behind a proxy that intercepts TLS (x509: certificate signed by unknown authority)?"; \
      echo >&2 "vmd build: copy its CA certificate(s), PEM, to certs/<name>.crt and build again; see certs/README.md."; \
      exit 1; }
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/vmd ./cmd/vmd

# --- runtime -------------------------------------------------------------
FROM node:22-bookworm-slim
# Chromium for Playwright MCP (--executable-path /usr/bin/chromium in
# .mcp.json), fonts so pages render text and emoji, git and gh (Debian's
# package, GitHub's CLI) for the agent.
# Left out: Chromium's Vulkan validation layer (23 MB), a debugging aid
# Chromium loads only when asked to.
RUN echo 'path-exclude /usr/lib/chromium/libVkLayer_khronos_validation.so' \
      >/etc/dpkg/dpkg.cfg.d/vmd-exclude \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates chromium fonts-liberation fonts-noto-color-emoji git gh \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

# The agent, at the versions package-lock.json pins, with its install
# scripts (without them `claude` is a stub). It is root's: the agent cannot
# rewrite itself. Its .bin is on PATH, so nothing is fetched at run time.
# The extra CAs are bind-mounted for npm only, never stored in the image.
WORKDIR /opt/vmd-agent
ENV PATH=/opt/vmd-agent/node_modules/.bin:$PATH \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
    DISABLE_AUTOUPDATER=1
COPY package.json package-lock.json ./
RUN --mount=type=bind,source=certs,target=/tmp/vmd-extra-ca \
    set -e; \
    if ls /tmp/vmd-extra-ca/*.crt >/dev/null 2>&1; then \
      cat /tmp/vmd-extra-ca/*.crt >/tmp/extra-ca.pem; \
      export NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem; \
    fi; \
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
      npm ci --omit=dev --ignore-scripts=false --no-audit --no-fund --no-update-notifier --cache /tmp/npm-cache || { \
        echo >&2; \
        echo >&2 "vmd build: npm ci failed (see above)."; \
        echo >&2 "vmd build: behind a proxy that intercepts TLS (UNABLE_TO_GET_ISSUER_CERT_LOCALLY, SELF_SIGNED_CERT_IN_CHAIN)?"; \
        echo >&2 "vmd build: copy its CA certificate(s), PEM, to certs/<name>.crt and build again; see certs/README.md."; \
        exit 1; }; \
    rm -rf /tmp/npm-cache /tmp/node-compile-cache /tmp/extra-ca.pem; \
    claude --version | grep -F '(Claude Code)'

COPY --from=build /out/vmd /usr/local/bin/vmd

# vmd's own files, read-only to the agent: root's, 0644, out of the
# workspace. VM_CONFIG and MCP_CONFIG below point vmd at them.
COPY --chown=root:root --chmod=0644 vm.hcl .mcp.json /etc/vmd/
# /workspace is the agent's: the CLI's working directory, where it clones
# and builds, on a volume so that clones and uncommitted work survive a new
# container (docker-compose.yml names it; Fly mounts one, see fly.toml).
# ~/.claude holds the CLI's sessions, filed by working directory: compose
# mounts a volume there too, and on ~/.vmd, vmd's command store (STATE_DIR).
# All made here so that a new volume starts out node's.
RUN mkdir -p /workspace /home/node/.claude /home/node/.vmd \
 && chown node:node /workspace /home/node/.claude /home/node/.vmd \
 && vmd -version
# Without a volume of its own, docker run makes an anonymous one per
# container (docker rm -v removes it).
VOLUME /workspace
WORKDIR /workspace

# Screenshots land in IMAGES_DIR; the node user must be able to write it.
ENV IMAGES_DIR=/tmp/images
USER node
EXPOSE 3001
# vmd drains on SIGTERM (8 s by default) and exits 0: give it 10 s or more
# (stop_grace_period, Fly's kill_timeout).
STOPSIGNAL SIGTERM
# Node is already here (no curl in the slim image): fetch /health on the
# port vmd listens on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3001)+'/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# vmd itself is PID 1 (no tini): it reaps every orphan itself. Its settings:
# /etc/vmd/vm.hcl, then the environment (VM_CONFIG names another file).
# WORKSPACE_DIR is the CLI's working directory (vmd's own, WORKDIR, too).
# HOST: every interface, for the port to be published at all (vm.hcl's
# default is loopback). Without API_TOKEN vmd then refuses to start unless
# ALLOW_UNAUTHENTICATED=true says only you can reach the port, as
# .env.example does for compose, which publishes on the host's loopback.
ENV VM_CONFIG=/etc/vmd/vm.hcl \
    MCP_CONFIG=/etc/vmd/.mcp.json \
    WORKSPACE_DIR=/workspace \
    HOST=0.0.0.0
ENTRYPOINT ["/usr/local/bin/vmd"]
CMD []
