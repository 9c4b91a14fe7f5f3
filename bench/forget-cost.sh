#!/usr/bin/env bash
# What a daily forget costs (issue 21): a volume of ~2 GiB (bench/make-data.py) backed up once a day for DAYS
# days while ~1 % of it changes each day (a new stretch of one large file, 40 small files rewritten), then the
# oldest backup forgotten (`convoy backup forget --keep-last DAYS-1`, which deletes it and collects), side by side
# with restic 0.14 (`restic forget --keep-last DAYS-1 --prune`) on the same data and days. Reported: the bytes the
# forgetting process read and wrote through system calls (rchar / wchar of /proc/PID/io: the daemon's delta
# around the CLI call; restic's whole run), time, and the store before and after.
# Usage: bench/forget-cost.sh [DAYS] [SCALE]    (defaults 30 and 1.0)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
days=${1:-30}
scale=${2:-1.0}
[[ $days =~ ^[0-9]+$ && $days -ge 2 ]] || { echo "usage: bench/forget-cost.sh [DAYS>=2] [SCALE]" >&2; exit 2; }
source bench/restic-bench-setup.sh forget
io() { awk '/^rchar|^wchar/ {printf "%s ", $2}' "/proc/$1/io"; }
now() { date +%s.%N; }

c create bench >/dev/null
volume="$run/root/vfs/bench"
cp -a "$work/data/." "$volume/"
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$run/restic-cache"
restic init --repo "$run/restic" --repository-version 2 >/dev/null
for day in $(seq 1 "$days"); do
  python3 - "$volume" "$day" <<'PY'
import os, random, sys
root, day = sys.argv[1], int(sys.argv[2])
rng = random.Random(day)
size = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names) // 100
with open(f"{root}/big/random-0.bin", "r+b") as f:
    f.seek((day * 37 % 90) << 20)
    f.write(rng.randbytes(size - 40 * 8192))
small = sorted(os.path.join(d, n) for d, _, names in os.walk(f"{root}/small") for n in names)
for path in rng.sample(small, 40):
    with open(path, "wb") as f:
        f.write(rng.randbytes(8192))
PY
  c snapshot create bench --name "day$day" >/dev/null
  c backup create "day$day" --dest "vfs://$run/store" >/dev/null
  restic backup --repo "$run/restic" --quiet --host bench "$volume"
  sleep 1.1  # backup times have one-second precision
done
convoy_before=$(du -sb "$run/store" | cut -f1)
restic_before=$(du -sb "$run/restic" | cut -f1)
sync

keep=$((days - 1))
before=$(io $pid); t0=$(now)
c backup forget "vfs://$run/store" --keep-last "$keep" --format table > "$run/convoy-forget.txt"
t1=$(now); after=$(io $pid)
# restic's own counters, read just before it exits (it is a child of the poller).
read -r restic_read restic_written restic_seconds < <(python3 - "$run/restic" "$keep" <<'PY'
import subprocess, sys, time
start = time.time()
child = subprocess.Popen(["restic", "forget", "--repo", sys.argv[1], "--keep-last", sys.argv[2], "--prune",
                          "--quiet"], stdout=subprocess.DEVNULL)
last = (0, 0)
while child.poll() is None:
    try:
        fields = dict(line.split(": ") for line in open(f"/proc/{child.pid}/io").read().splitlines())
        last = (int(fields["rchar"]), int(fields["wchar"]))
    except (OSError, KeyError, ValueError):
        pass
    time.sleep(0.02)
print(last[0], last[1], time.time() - start)
PY
)
convoy_after=$(du -sb "$run/store" | cut -f1)
restic_after=$(du -sb "$run/restic" | cut -f1)
tail -1 "$run/convoy-forget.txt" >&2
python3 - "$days" $before $after "$t0" "$t1" "$restic_read" "$restic_written" "$restic_seconds" \
  "$convoy_before" "$convoy_after" "$restic_before" "$restic_after" <<'PY'
import sys
a = sys.argv[1:]
days = int(a[0]); r0, w0, r1, w1 = (int(x) for x in a[1:5]); t0, t1 = float(a[5]), float(a[6])
rr, rw, rs = int(a[7]), int(a[8]), float(a[9])
cb, ca, rb, ra = (int(x) for x in a[10:14])
mb = lambda x: f"{x / 1e6:,.1f} MB"
print(f"{days} daily backups, the oldest forgotten (keep-last {days - 1}); rchar / wchar of the forgetting process")
print()
print("| measure | convoy | restic 0.14 (--prune) |")
print("|---|---|---|")
print(f"| read | {mb(r1 - r0)} | {mb(rr)} |")
print(f"| written | {mb(w1 - w0)} | {mb(rw)} |")
print(f"| time | {t1 - t0:.2f} s | {rs:.2f} s |")
print(f"| store before → after | {mb(cb)} → {mb(ca)} | {mb(rb)} → {mb(ra)} |")
PY
