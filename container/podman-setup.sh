#!/usr/bin/env bash
# podman-setup.sh: install podman and podman-compose on this Debian 12 VM and
# configure them for it, so the image can be built and run here without
# Docker. Idempotent: run it as often as you like (as root).
#
# What this VM needs, and why:
# - runtime = "runc": the OCI runtime installed here (podman depends on
#   "crun | runc"; runc is the one named, and the only one installed), so
#   podman never goes looking for crun.
# - cgroup_manager = "cgroupfs": there is no systemd (PID 1 is not systemd),
#   so podman cannot ask it for scopes and writes the cgroups itself.
# - events_logger = "file": the default, journald, needs systemd too.
# - default_ulimits no higher than the hard limits: rootful podman asks for
#   nofile=1048576 and nproc=1048576 by default, and root here lacks
#   CAP_SYS_RESOURCE (see CapBnd in /proc/self/status), so no process may
#   raise a hard limit: every container failed to start with "error setting
#   rlimit type 7 (then 6): operation not permitted". nofile is this shell's
#   hard limit (ulimit -Hn); nproc is also capped at 32768, the hard limit
#   conmon runs runc with here (seen in /proc/<conmon>/limits), which is
#   lower than this shell's.
# - storage: overlay where the kernel's overlayfs accepts podman's mounts
#   (it does here), else vfs (which copies every layer: slow, and large).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "podman-setup: run as root" >&2; exit 1; }

pkgs=(podman podman-compose debootstrap runc uidmap slirp4netns netavark aardvark-dns iptables)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "podman-setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=32768
[ "$nproc" -gt 32768 ] && nproc=32768

mkdir -p /etc/containers
cat >/etc/containers/containers.conf <<CONF
# Written by vmd's container/podman-setup.sh; see its header for why.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
CONF

# Pick the storage driver once: changing it later orphans the images stored
# under the old one, so an existing choice is kept.
if [ ! -f /etc/containers/storage.conf ]; then
  driver=vfs
  probe=$(mktemp -d)
  mkdir -p "$probe"/{l,u,w,m}
  if mount -t overlay overlay -o "lowerdir=$probe/l,upperdir=$probe/u,workdir=$probe/w" "$probe/m" 2>/dev/null; then
    umount "$probe/m"
    driver=overlay
  fi
  rm -rf "$probe"
  cat >/etc/containers/storage.conf <<CONF
# Written by vmd's container/podman-setup.sh: the driver that works here.
[storage]
driver = "${driver}"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
CONF
fi

# Only registries that exist offline: the base images are built locally
# (container/base-images.sh), and nothing should try to pull.
if [ ! -f /etc/containers/registries.conf.d/vmd.conf ]; then
  mkdir -p /etc/containers/registries.conf.d
  printf '# Written by vmd'"'"'s container/podman-setup.sh.\nshort-name-mode = "permissive"\n' \
    >/etc/containers/registries.conf.d/vmd.conf
fi

podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Store.GraphDriverName}}'
