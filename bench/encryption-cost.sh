#!/usr/bin/env bash
# What encryption at rest costs (issue 21), in one run on bench/make-data.py's data set: backup, restore and a
# cold read of the small-file tree from a mounted backup, to a plain `vfs://` store, to an encrypted one
# (`backup init --encrypt`), and with restic 0.14 (which always encrypts) on local directory stores.
# Usage: bench/encryption-cost.sh [SCALE]   (SCALE 1.0 ≈ 2 GiB of data; the default)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scale=${1:-1.0}
source bench/restic-bench-setup.sh encryption

c create bench >/dev/null
volume="$run/root/vfs/bench"
cp -a "$work/data/." "$volume/"
bytes=$(du -sb --apparent-size "$volume" | cut -f1)
small_bytes=$(du -sb --apparent-size "$volume/small" | cut -f1)
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
since() { python3 -c "import sys, time; print(time.time() - float(sys.argv[1]))" "$1"; }
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$run/restic-cache"
restic init --repo "$run/restic" --repository-version 2 >/dev/null
printf 'a passphrase for the benchmark\n' > "$run/password"
c backup init "vfs://$run/encrypted" --encrypt --password-file "$run/password" >/dev/null
declare -A t

drop; t0=$(now); c snapshot create bench --name full >/dev/null; t[snapshot]=$(since "$t0")
# Each store gets the same snapshot; the page cache is dropped before each upload.
for store in plain encrypted; do
  drop; t0=$(now)
  url[$([[ $store == plain ]] && echo 0 || echo 1)]=$(c backup create full --dest "vfs://$run/$store")
  t[backup_$store]=$(since "$t0")
done
drop; t0=$(now); restic backup --repo "$run/restic" --quiet "$volume"; t[backup_restic]=$(since "$t0")

drop; t0=$(now); c create restored-plain --backup "${url[0]}" >/dev/null; t[restore_plain]=$(since "$t0")
drop; t0=$(now); c create restored-encrypted --backup "${url[1]}" >/dev/null; t[restore_encrypted]=$(since "$t0")
drop; t0=$(now); restic restore latest --repo "$run/restic" --target "$run/restic-restore" --quiet; sync
t[restore_restic]=$(since "$t0")
for restored in "$run/root/vfs/restored-plain" "$run/root/vfs/restored-encrypted" "$run/restic-restore$volume"; do
  diff -r "$volume" "$restored" >/dev/null || { echo "$restored differs from the source" >&2; exit 1; }
done

# Cold read of the small-file tree from a mounted backup (fresh mount, empty page cache).
read_tree() { (cd "$1/small" && find . -type f -print0 | xargs -0 cat >/dev/null); }
mnt="$run/root/browse/mnt"; mkdir -p "$mnt" "$run/restic-mnt"
for index in 0 1; do
  c backup mount "${url[$index]}" "$mnt" >/dev/null
  drop; t0=$(now); read_tree "$mnt"; t[browse_$index]=$(since "$t0")
  c backup umount "$mnt"
done
restic mount --repo "$run/restic" --no-default-permissions "$run/restic-mnt" >"$run/restic-mount.log" 2>&1 &
restic_pid=$!
for _ in $(seq 600); do [[ -d $run/restic-mnt/snapshots/latest ]] && break; sleep 0.1; done
drop; t0=$(now); read_tree "$run/restic-mnt/snapshots/latest$volume"; t[browse_restic]=$(since "$t0")
umount "$run/restic-mnt"; wait "$restic_pid" 2>/dev/null || true

python3 - "$bytes" "$small_bytes" "${t[snapshot]}" \
  "${t[backup_plain]}" "${t[backup_encrypted]}" "${t[backup_restic]}" \
  "${t[restore_plain]}" "${t[restore_encrypted]}" "${t[restore_restic]}" \
  "${t[browse_0]}" "${t[browse_1]}" "${t[browse_restic]}" \
  "$(du -sb "$run/plain" | cut -f1)" "$(du -sb "$run/encrypted" | cut -f1)" "$(du -sb "$run/restic" | cut -f1)" <<'PY'
import sys
b, small = int(sys.argv[1]), int(sys.argv[2])
snap, bp, be, br, rp, re_, rr, fp, fe, fr = (float(x) for x in sys.argv[3:13])
sp, se, sr = (int(x) for x in sys.argv[13:16])
mb = b / 1e6
def cell(size, s): return f"{s:.2f} s, {size / 1e6 / s:,.0f} MB/s"
print(f"data: {mb:,.0f} MB ({small / 1e6:,.0f} MB of it in small files); 2 cores; page cache dropped before each step")
print()
print("| measure | convoy plain | convoy encrypted | restic 0.14 | encryption cost | encrypted / restic |")
print("|---|---|---|---|---|---|")
fp_, fe_ = snap + bp, snap + be
print(f"| full backup (snapshot {snap:.1f} s + upload) | {cell(b, fp_)} | {cell(b, fe_)} | {cell(b, br)} "
      f"| {100 * (fe_ / fp_ - 1):+.1f} % | {br / fe_:.2f}x speed |")
print(f"| upload of the snapshot alone | {cell(b, bp)} | {cell(b, be)} | - | {100 * (be / bp - 1):+.1f} % | - |")
print(f"| restore | {cell(b, rp)} | {cell(b, re_)} | {cell(b, rr)} | {100 * (re_ / rp - 1):+.1f} % "
      f"| {rr / re_:.2f}x speed |")
print(f"| small files from a mounted backup, cold | {cell(small, fp)} | {cell(small, fe)} | {cell(small, fr)} "
      f"| {100 * (fe / fp - 1):+.1f} % | {fr / fe:.2f}x speed |")
print(f"| bytes stored | {sp / 1e6:,.0f} MB | {se / 1e6:,.0f} MB | {sr / 1e6:,.0f} MB "
      f"| {100 * (se / sp - 1):+.1f} % | - |")
PY
