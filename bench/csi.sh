#!/usr/bin/env bash
# CSI figures against a release build of the daemon on a temporary root (vfs): NodePublish / NodeUnpublish
# latency, NodeGetVolumeStats requests per second, and the time until a pod could start on a volume restored from
# a snapshot of GiB gigabytes (lazily against in full; page cache dropped before each).
# Usage: bench/csi.sh [GiB] [convoy-csi-bench options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
gib=${1:-4}
shift || true
scripts/build-release convoy 2>/dev/null | tail -1
scripts/build-release convoy-csi-bench 2>/dev/null | tail -1
work=$(mktemp -d /var/tmp/convoy-csi-bench.XXXXXX)
cleanup() {
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  for m in $(awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
  tail -5 "$work/daemon.log" >&2
  rm -rf "$work"
}
trap cleanup EXIT
.build/release/convoy daemon --root "$work/root" --socket "$work/c.sock" --plugin-socket "$work/p.sock" \
  --csi-socket "$work/csi.sock" --host-id csi-bench --log-level error 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 300); do [[ -S "$work/csi.sock" ]] && break; sleep 0.1; done
[[ -S "$work/csi.sock" ]] || { echo "the daemon did not start" >&2; exit 1; }
echo "convoy $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, $(date -u +%Y-%m-%d)"
.build/release/convoy-csi-bench --csi-socket "$work/csi.sock" --work "$work/kubelet" \
  --dest "vfs://$work/store" --gib "$gib" "$@"
