#!/bin/bash
# Install every Debian package that building, testing, the demo and the benchmarks need.
# Idempotent: skips what is installed; runs `apt-get update` at most once.
#   tools/deps.sh               install what is missing (make deps)
#   tools/deps.sh --if-missing  same, but silent when nothing is missing
set -euo pipefail

PKGS=(
  # build
  build-essential pkg-config clang libclang-rt-14-dev
  libjansson-dev libseccomp-dev libnl-3-dev libnl-route-3-dev libcgroup-dev libnftables-dev
  libcap-dev libsystemd-dev libcurl4-openssl-dev
  # tests
  libcriterion-dev busybox-static jq iproute2 nftables netcat-openbsd util-linux procps
  etcd-server curl
  # the pure cgroup v2 VM tier
  qemu-system-x86 cpio kmod xz-utils
  # real clients and peers
  podman runc crun conmon criu hyperfine strace
)

quiet=0
[ "${1:-}" = "--if-missing" ] && quiet=1

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = "installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  [ $quiet = 1 ] || echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages (${missing[*]}); run 'make deps' as root" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
