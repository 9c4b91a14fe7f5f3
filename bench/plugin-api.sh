#!/usr/bin/env bash
# Plugin API load: Get/List requests per second and Mount+Unmount latency, against a release build of the daemon
# on a temporary root (vfs). Usage: bench/plugin-api.sh [convoy-bench options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/build-release convoy 2>/dev/null | tail -1
scripts/build-release convoy-bench 2>/dev/null | tail -1
work=$(mktemp -d /tmp/convoy-bench.XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; cat "$work/daemon.log" >&2; rm -rf "$work"' EXIT
.build/release/convoy daemon --root "$work/root" --socket "$work/c.sock" --plugin-socket "$work/p.sock" \
  --log-level error 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 300); do [[ -S "$work/p.sock" ]] && break; sleep 0.1; done
[[ -S "$work/p.sock" ]] || { echo "the daemon did not start" >&2; exit 1; }
echo "convoy $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, $(date -u +%Y-%m-%d)"
.build/release/convoy-bench --plugin-socket "$work/p.sock" "$@"
