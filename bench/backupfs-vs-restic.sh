#!/usr/bin/env bash
# BackupFS benchmark (issue 4), side by side in one run on the same data:
#  - sequential read of a 512 MiB file and of a tree of small files from a mounted backup, cold and warm:
#    `convoy backup mount` against `restic mount` (restic 0.14, Debian) and against the original on local disk;
#  - time from `convoy create --backup URL --lazy` to the first byte read, against a full restore, for a 4 GiB backup.
# Usage: bench/backupfs-vs-restic.sh [BIG_GIB] [DAEMON FLAGS...]   (size of the lazy-restore backup; default 4;
#        flags for the daemon, e.g. --fuse-cache-size 128M). Also reports the daemon's peak RSS over the reads.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
big_gib=${1:-4}
shift || true
command -v restic >/dev/null || apt-get install -y -qq restic >/dev/null
scripts/build-release convoy 2>&1 | tail -1 >&2

work=${BENCH_DIR:-/var/tmp/convoy-bench}/backupfs
run=$work/run
mkdir -p "$work"
convoy=.build/release/convoy
# Data, generated once: a 512 MiB file (half random, half text; named one-gib.bin, which it never was: the
# name stays so that data generated before keeps its meaning) and 8,000 small files (4–60 KiB, mixed).
if [[ ! -f $work/data.done ]]; then
  rm -rf "$work/data" && mkdir -p "$work/data/small"
  python3 - "$work/data" <<'PY'
import os, random, sys
root = sys.argv[1]; rng = random.Random(4)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
def text(n):
    out = bytearray()
    while len(out) < n: out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])
with open(f"{root}/one-gib.bin", "wb") as f:
    for i in range(64):
        f.write(rng.randbytes(8 << 20) if i % 2 == 0 else text(8 << 20))
for i in range(8000):
    d = f"{root}/small/d{i // 500:02d}"; os.makedirs(d, exist_ok=True)
    n = rng.randint(4 << 10, 60 << 10)
    with open(f"{d}/f{i:05d}", "wb") as f: f.write(rng.randbytes(n) if i % 2 else text(n))
PY
  touch "$work/data.done"
fi
if [[ ! -f $work/big-$big_gib.done ]]; then
  rm -rf "$work/big" && mkdir -p "$work/big"
  for i in $(seq 1 "$big_gib"); do head -c 1G /dev/urandom > "$work/big/part-$i.bin"; done
  touch "$work/big-$big_gib.done"
fi

cleanup() {
  for m in "$run/convoy-mnt" "$run/restic-mnt"; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  [[ -n ${restic_pid:-} ]] && kill "$restic_pid" 2>/dev/null
  [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  for m in $(awk -v r="$run/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
  true
}
cleanup
rm -rf "$run" && mkdir -p "$run/convoy-mnt" "$run/restic-mnt"
sock=$run/c.sock
# --browse-root: the backup is mounted at $run/convoy-mnt, outside the default browse roots.
$convoy daemon --root "$run/root" --socket "$sock" --plugin-socket "$run/p.sock" --browse-root "$run" \
  --log-level error "$@" 2>"$run/daemon.log" &
pid=$!
trap cleanup EXIT
for _ in $(seq 300); do [[ -S $sock ]] && break; sleep 0.1; done
c() { $convoy "$@" --socket "$sock"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$run/restic-cache

# The same data backed up by both tools into local directory stores.
c create data >/dev/null
cp -a "$work/data/." "$run/root/vfs/data/"
c snapshot create data --name data-snap >/dev/null
url=$(c backup create data-snap --dest "vfs://$run/store")
restic init --repo "$run/restic" --repository-version 2 >/dev/null
(cd "$run/root/vfs/data" && restic backup --repo "$run/restic" --quiet .)

mount_convoy() { c backup mount "$url" "$run/convoy-mnt" >/dev/null; }
umount_convoy() { c backup umount "$run/convoy-mnt"; }
mount_restic() {
  restic mount --repo "$run/restic" --no-default-permissions "$run/restic-mnt" >"$run/restic-mount.log" 2>&1 &
  restic_pid=$!
  for _ in $(seq 600); do [[ -d $run/restic-mnt/snapshots/latest ]] && return; sleep 0.1; done
  echo "restic mount did not come up: $(cat "$run/restic-mount.log")" >&2; exit 1
}
umount_restic() { umount "$run/restic-mnt"; wait "$restic_pid" 2>/dev/null || true; restic_pid=; }

# read TREE_ROOT: seconds to read the large file, then the small-file tree
read_file() { local t0 t1; t0=$(now); cat "$1/one-gib.bin" >/dev/null; t1=$(now); elapsed "$t0" "$t1"; }
read_tree() { local t0 t1; t0=$(now); (cd "$1/small" && find . -type f -print0 | xargs -0 cat >/dev/null); t1=$(now); elapsed "$t0" "$t1"; }

declare -A r
# Cold: fresh mounts (empty in-process caches) and an empty page cache before each read; warm: read again.
for kind in file tree; do
  drop; r[local_${kind}_cold]=$(read_$kind "$run/root/vfs/data")
  r[local_${kind}_warm]=$(read_$kind "$run/root/vfs/data")
  mount_convoy; drop; r[convoy_${kind}_cold]=$(read_$kind "$run/convoy-mnt")
  r[convoy_${kind}_warm]=$(read_$kind "$run/convoy-mnt"); umount_convoy
  mount_restic; drop; r[restic_${kind}_cold]=$(read_$kind "$run/restic-mnt/snapshots/latest")
  r[restic_${kind}_warm]=$(read_$kind "$run/restic-mnt/snapshots/latest"); umount_restic
done
tree_bytes=$(du -sb --apparent-size "$work/data/small" | cut -f1)
reads_peak=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")  # MiB, backup and mounted reads

# First byte of a lazily restored volume against a full restore, from a ${big_gib} GiB backup.
c create big >/dev/null
cp "$work/big/"*.bin "$run/root/vfs/big/"
c snapshot create big --name big-snap >/dev/null
big_url=$(c backup create big-snap --dest "vfs://$run/store")
drop; t0=$(now)
c create big-lazy --backup "$big_url" --lazy >/dev/null
mp=$(c mount big-lazy)
head -c 1 "$mp/part-$big_gib.bin" >/dev/null
t1=$(now)
c umount big-lazy; c delete big-lazy
drop; t2=$(now)
c create big-full --backup "$big_url" >/dev/null
head -c 1 "$run/root/vfs/big-full/part-$big_gib.bin" >/dev/null
t3=$(now)
first_lazy=$(elapsed "$t0" "$t1"); first_full=$(elapsed "$t2" "$t3")

echo "daemon peak RSS: ${reads_peak} MiB over the backups and mounted reads, $(awk '/VmHWM/ {printf "%.0f", \
  $2 / 1024}' "/proc/$pid/status") MiB with the lazy restore"
file_bytes=$(stat -c %s "$work/data/one-gib.bin")
python3 - "$tree_bytes" "$file_bytes" "$big_gib" "$first_lazy" "$first_full" \
  "${r[local_file_cold]}" "${r[local_file_warm]}" "${r[convoy_file_cold]}" "${r[convoy_file_warm]}" \
  "${r[restic_file_cold]}" "${r[restic_file_warm]}" "${r[local_tree_cold]}" "${r[local_tree_warm]}" \
  "${r[convoy_tree_cold]}" "${r[convoy_tree_warm]}" "${r[restic_tree_cold]}" "${r[restic_tree_warm]}" <<'PY'
import sys
tree, large, big = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lazy, full = float(sys.argv[4]), float(sys.argv[5])
v = [float(x) for x in sys.argv[6:]]
names = ["local", "convoy", "restic"]
def row(label, size, times, files=0):
    # Small files: files per second, what a tree of them is limited by.
    cells = [f"{t:.2f} s, {files / t:,.0f} files/s" if files else f"{t:.2f} s, {size / t / 1e6:,.0f} MB/s"
             for t in times]
    return f"| {label} | " + " | ".join(cells) + f" | {times[2] / times[1]:.1f}x | {times[0] / times[1]:.2f}x |"
print("| read | local disk | convoy backup mount | restic mount | convoy / restic | convoy / local |")
print("|---|---|---|---|---|---|")
print(row(f"{large >> 20} MiB file, cold", large, [v[0], v[2], v[4]]))
print(row(f"{large >> 20} MiB file, warm", large, [v[1], v[3], v[5]]))
print(row(f"8,000 small files ({tree / 1e6:.0f} MB), cold", tree, [v[6], v[8], v[10]], 8000))
print(row(f"8,000 small files ({tree / 1e6:.0f} MB), warm", tree, [v[7], v[9], v[11]], 8000))
print()
print(f"| {big} GiB backup | first byte readable after |")
print("|---|---|")
print(f"| convoy create --backup --lazy, mount, read 1 byte | {lazy:.2f} s |")
print(f"| full restore (convoy create --backup), read 1 byte | {full:.2f} s |")
PY
