#!/bin/bash
# make demo: shows the main job of bivy on this machine. Grows with each capability.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
echo "== bivy $($BUILD/bivy --version | head -1)"
echo "== rootfs at $BUILD/rootfs ($(ls $BUILD/rootfs/bin | wc -l) busybox applets in /bin)"
