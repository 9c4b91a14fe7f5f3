#!/usr/bin/env bash
# Backup benchmark, convoy against restic 0.14 (Debian's package) on the same data, local directory stores:
# full backup, incremental backup after a 1 % change, restore, bytes stored.
# Usage: bench/backup-vs-restic.sh [SCALE]   (SCALE 1.0 ≈ 2 GiB of data; the default)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scale=${1:-1.0}
source bench/restic-bench-setup.sh run

c create bench >/dev/null
volume="$run/root/vfs/bench"
cp -a "$work/data/." "$volume/"
bytes=$(du -sb --apparent-size "$volume" | cut -f1)
sync
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$run/restic-cache"
restic init --repo "$run/restic" --repository-version 2 >/dev/null

# Full backup
drop; t0=$(now)
c snapshot create bench --name full >/dev/null
t1=$(now)
url=$(c backup create full --dest "vfs://$run/store")
t2=$(now)
drop; t3=$(now)
restic backup --repo "$run/restic" --quiet "$volume"
t4=$(now)

# 1 % change: rewrite 1 % of the bytes in one large file, touch a few small ones
change=$((bytes / 100))
python3 - "$volume" "$change" <<'PY'
import os, random, sys
root, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
with open(f"{root}/big/random-0.bin", "r+b") as f:
    f.seek(100 << 20)
    f.write(rng.randbytes(size - 40 * 8192))
small = sorted(os.path.join(d, n) for d, _, names in os.walk(f"{root}/small") for n in names)
for path in small[::max(1, len(small) // 40)][:40]:
    with open(path, "wb") as f:
        f.write(rng.randbytes(8192))
PY
drop; t5=$(now)
c snapshot create bench --name incremental >/dev/null
url2=$(c backup create incremental --dest "vfs://$run/store")
t6=$(now)
drop; t7=$(now)
restic backup --repo "$run/restic" --quiet "$volume"
t8=$(now)

# Restore the incremental backup
drop; t9=$(now)
c create restored --backup "$url2" >/dev/null
t10=$(now)
drop; t11=$(now)
restic restore latest --repo "$run/restic" --target "$run/restic-restore" --quiet
t12=$(now)
# convoy syncs a restored volume before it reports it ready; restic leaves the data in the page cache.
sync
t13=$(now)
diff -r "$volume" "$run/root/vfs/restored" >/dev/null && echo "convoy restore: identical to the source" >&2
diff -r "$volume" "$run/restic-restore$volume" >/dev/null && echo "restic restore: identical to the source" >&2

convoy_store=$(du -sb "$run/store" | cut -f1)
local_store=$(du -sb "$run/root/snapshots" | cut -f1)
restic_store=$(du -sb "$run/restic" | cut -f1)
python3 - "$bytes" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" "$t7" "$t8" "$t9" "$t10" "$t11" "$t12" "$t13" \
  "$convoy_store" "$local_store" "$restic_store" <<'PY'
import sys
b = int(sys.argv[1]); t = [float(x) for x in sys.argv[2:16]]
convoy_store, local_store, restic_store = (int(x) for x in sys.argv[16:19])
mb = b / 1e6
snap, copy, convoy_full, restic_full = t[1]-t[0], t[2]-t[1], t[2]-t[0], t[4]-t[3]
convoy_inc, restic_inc = t[6]-t[5], t[8]-t[7]
convoy_restore, restic_restore = t[10]-t[9], t[12]-t[11]
print(f"data: {mb:,.0f} MB; 2 cores; page cache dropped before each step where allowed")
print()
print("| measure | convoy | restic 0.14 | convoy / restic |")
print("|---|---|---|---|")
print(f"| full backup | {convoy_full:.1f} s, {mb/convoy_full:,.0f} MB/s (snapshot {snap:.1f} s + upload {copy:.1f} s) | {restic_full:.1f} s, {mb/restic_full:,.0f} MB/s | {restic_full/convoy_full:.2f}x speed |")
print(f"| incremental after 1 % change | {convoy_inc:.2f} s | {restic_inc:.2f} s | {convoy_inc/restic_inc:.2f}x time |")
restic_restore_synced = t[13]-t[11]
print(f"| restore | {convoy_restore:.1f} s, {mb/convoy_restore:,.0f} MB/s | {restic_restore:.1f} s, {mb/restic_restore:,.0f} MB/s | {restic_restore/convoy_restore:.2f}x speed |")
print(f"| restore, data on disk (restic + sync) | {convoy_restore:.1f} s | {restic_restore_synced:.1f} s | {restic_restore_synced/convoy_restore:.2f}x speed |")
print(f"| bytes stored (destination) | {convoy_store/1e6:,.0f} MB | {restic_store/1e6:,.0f} MB | {convoy_store/restic_store:.2f}x |")
print(f"| local snapshot store (convoy only) | {local_store/1e6:,.0f} MB | - | - |")
PY
