#!/usr/bin/env bash
# The snapshot scanner alone, two builds side by side: a snapshot of the bench data with nothing changed (the
# whole tree examined, no file read), timed, alternating the two binaries.
# Usage: bench/scan-before-after.sh BEFORE_WORKTREE AFTER_WORKTREE [ROUNDS]   (COLD=1: drop the page cache first)
# Each work tree must hold a release build (scripts/build-release); the data is bench/make-data.py's.
set -euo pipefail
before=$1 after=$2 rounds=${3:-5}
data=${BENCH_DIR:-/var/tmp/convoy-bench}/data
[[ -d $data ]] || { echo "no bench data in $data: run bench/backup-vs-restic.sh once" >&2; exit 2; }
declare -A tree=([before]=$before [after]=$after)
cleanup() { for side in before after; do kill "$(cat "/var/tmp/scanbench-$side/pid" 2>/dev/null)" 2>/dev/null || true; done
            sleep 1; rm -rf /var/tmp/scanbench-*; }
trap cleanup EXIT
for side in before after; do
  w=/var/tmp/scanbench-$side; rm -rf "$w"; mkdir -p "$w"
  B=${tree[$side]}/.build/release/convoy
  "$B" daemon --root "$w/root" --socket "$w/c.sock" --plugin-socket "$w/p.sock" --log-level error >"$w/log" 2>&1 &
  echo $! >"$w/pid"
  for _ in $(seq 100); do [[ -S $w/c.sock ]] && break; sleep 0.1; done
  "$B" create scanned --socket "$w/c.sock" >/dev/null
  cp -a "$data/." "$w/root/vfs/scanned/"
  "$B" snapshot create scanned --name base --socket "$w/c.sock" >/dev/null
done
for round in $(seq "$rounds"); do
  for side in before after; do
    w=/var/tmp/scanbench-$side; B=${tree[$side]}/.build/release/convoy
    if [[ ${COLD:-} == 1 ]]; then sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; fi
    t0=$(date +%s.%N); "$B" snapshot create scanned --name "r$round" --socket "$w/c.sock" >/dev/null; t1=$(date +%s.%N)
    echo "$side round $round: $(echo "$t1 - $t0" | bc) s"
  done
done
