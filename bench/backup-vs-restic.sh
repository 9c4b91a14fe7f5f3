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
idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")  # KiB, the daemon idle
volume="$run/root/vfs/bench"
cp -a "$work/data/." "$volume/"
bytes=$(du -sb --apparent-size "$volume" | cut -f1)
sync
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
store_size() { du -sb "$1" 2>/dev/null | cut -f1; }
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
# The same volume straight to a store of its own (`backup create --volume`: no snapshot, data written once).
local_before_direct=$(store_size "$run/root/snapshots")
drop; d0=$(now)
c backup create --volume bench --dest "vfs://$run/store-direct" >/dev/null
d1=$(now)
local_growth=$(( $(store_size "$run/root/snapshots") - local_before_direct ))

# 1 % change, of the kinds a volume sees (the bytes written are counted, for the new bytes each tool stores):
# an overwrite in the middle of a large file, inserts into text files (every later byte shifts), 40 small files
# replaced, a directory renamed (nothing new), a new sparse file (64 MiB, 2 MiB of data).
convoy_before=$(store_size "$run/store"); restic_before=$(store_size "$run/restic")
direct_before=$(store_size "$run/store-direct")
changed=$(python3 - "$volume" "$bytes" <<'PY'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
written = 0
with open(f"{root}/big/random-0.bin", "r+b") as f:  # overwrite: most of the 1 %
    f.seek(100 << 20)
    size = total // 100 - (6 << 20)
    f.write(rng.randbytes(size)); written += size
texts = sorted(os.path.join(d, n) for d, _, names in os.walk(f"{root}/text") for n in names)
for path in texts[::max(1, len(texts) // 20)][:20]:  # inserts: 4 KiB into the middle of 20 text files
    with open(path, "rb") as f: data = f.read()
    middle = len(data) // 2
    insert = b" ".join(rng.choice([b"alpha", b"beta", b"gamma", b"delta"]) for _ in range(700))[:4096]
    with open(path, "wb") as f: f.write(data[:middle] + insert + data[middle:])
    written += len(insert)
small = sorted(os.path.join(d, n) for d, _, names in os.walk(f"{root}/small") for n in names)
for path in small[::max(1, len(small) // 40)][:40]:  # 40 small files replaced
    with open(path, "wb") as f: f.write(rng.randbytes(8192))
    written += 8192
os.rename(f"{root}/small/d03", f"{root}/small/d03-renamed")  # a rename: no new data
with open(f"{root}/sparse.img", "wb") as f:  # sparse: 1 MiB at each end of 64 MiB
    f.write(rng.randbytes(1 << 20)); f.seek(63 << 20); f.write(rng.randbytes(1 << 20))
    written += 2 << 20
print(written)
PY
)
drop; t5=$(now)
c snapshot create bench --name incremental >/dev/null
url2=$(c backup create incremental --dest "vfs://$run/store")
t6=$(now)
convoy_after=$(store_size "$run/store")
drop; t7=$(now)
restic backup --repo "$run/restic" --quiet "$volume"
t8=$(now)
restic_after=$(store_size "$run/restic")
local_before_direct=$(store_size "$run/root/snapshots")
drop; d2=$(now)
c backup create --volume bench --dest "vfs://$run/store-direct" >/dev/null
d3=$(now)
local_growth=$(( local_growth + $(store_size "$run/root/snapshots") - local_before_direct ))
direct_after=$(store_size "$run/store-direct")

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

peak_rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")  # KiB, the daemon's peak over every step
convoy_store=$(store_size "$run/store")
local_store=$(store_size "$run/root/snapshots")
restic_store=$(store_size "$run/restic")
convoy_new=$((convoy_after - convoy_before)); restic_new=$((restic_after - restic_before))
direct_new=$((direct_after - direct_before)); direct_store=$(store_size "$run/store-direct")
# The incremental backup's manifest: the newest in the store.
manifest=$(find "$run/store" -path '*/backups/*' -type f -printf '%T@ %s\n' | sort -n | tail -1 | cut -d' ' -f2)
python3 - "$bytes" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" "$t7" "$t8" "$t9" "$t10" "$t11" "$t12" "$t13" \
  "$convoy_store" "$local_store" "$restic_store" "$changed" "$convoy_new" "$restic_new" "${manifest:-0}" \
  "$direct_store" "$direct_new" "$d0" "$d1" "$d2" "$d3" "$local_growth" "$idle_rss" "$peak_rss" <<'PY'
import sys
b = int(sys.argv[1]); t = [float(x) for x in sys.argv[2:16]]
convoy_store, local_store, restic_store, changed, convoy_new, restic_new, manifest = (int(x) for x in sys.argv[16:23])
direct_store, direct_new = int(sys.argv[23]), int(sys.argv[24])
d = [float(x) for x in sys.argv[25:29]]
direct_full, direct_inc = d[1] - d[0], d[3] - d[2]
local_growth = int(sys.argv[29])
idle_rss, peak_rss = int(sys.argv[30]) / 1024, int(sys.argv[31]) / 1024
mb = b / 1e6
snap, copy, convoy_full, restic_full = t[1]-t[0], t[2]-t[1], t[2]-t[0], t[4]-t[3]
convoy_inc, restic_inc = t[6]-t[5], t[8]-t[7]
convoy_restore, restic_restore = t[10]-t[9], t[12]-t[11]
print(f"data: {mb:,.0f} MB; 2 cores; page cache dropped before each step where allowed")
print()
def row(*cells): print("| " + " | ".join(cells) + " |")
def rate(seconds): return f"{seconds:.1f} s, {mb / seconds:,.0f} MB/s"
row("measure", "convoy", "restic 0.14", "convoy / restic")
print("|---|---|---|---|")
row("full backup", f"{rate(convoy_full)} (snapshot {snap:.1f} s + upload {copy:.1f} s)", rate(restic_full),
    f"{restic_full / convoy_full:.2f}x speed")
row("full backup, `backup create --volume` (no snapshot)", rate(direct_full), rate(restic_full),
    f"{restic_full / direct_full:.2f}x speed")
row("incremental after 1 % change", f"{convoy_inc:.2f} s", f"{restic_inc:.2f} s",
    f"{convoy_inc / restic_inc:.2f}x time")
row("incremental, `--volume`", f"{direct_inc:.2f} s", f"{restic_inc:.2f} s", f"{direct_inc / restic_inc:.2f}x time")
row(f"new bytes stored for {changed / 1e6:.1f} MB written",
    f"{convoy_new / 1e6:.1f} MB ({convoy_new / changed:.2f}x; manifest {manifest / 1e6:.2f} MB)",
    f"{restic_new / 1e6:.1f} MB ({restic_new / changed:.2f}x)", f"{convoy_new / restic_new:.2f}x")
row("new bytes stored, `--volume`", f"{direct_new / 1e6:.1f} MB ({direct_new / changed:.2f}x)",
    f"{restic_new / 1e6:.1f} MB", f"{direct_new / restic_new:.2f}x")
restic_restore_synced = t[13] - t[11]
row("restore", rate(convoy_restore), rate(restic_restore), f"{restic_restore / convoy_restore:.2f}x speed")
row("restore, data on disk (restic + sync)", f"{convoy_restore:.1f} s", f"{restic_restore_synced:.1f} s",
    f"{restic_restore_synced / convoy_restore:.2f}x speed")
row("bytes stored (destination)", f"{convoy_store / 1e6:,.0f} MB", f"{restic_store / 1e6:,.0f} MB",
    f"{convoy_store / restic_store:.2f}x")
row("local snapshot store (convoy only)", f"{local_store / 1e6:,.0f} MB", "-", "-")
row("daemon RSS: idle / peak over every step", f"{idle_rss:.0f} MiB / {peak_rss:.0f} MiB", "-", "-")
row("`--volume`: destination / written to the local store",
    f"{direct_store / 1e6:,.0f} MB / {local_growth / 1e6:,.1f} MB", "-", f"{direct_store / restic_store:.2f}x")
PY
