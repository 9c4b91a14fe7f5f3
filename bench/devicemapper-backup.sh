#!/usr/bin/env bash
# devicemapper block backups (issue 5), measured inside the VM of scripts/vm-run (this machine's kernel has no
# device-mapper; the VM runs under software emulation, so absolute speeds are those of an emulated CPU):
# full and incremental block backup MB/s, bytes read against bytes changed, restore MB/s, lazy restore time to the
# first byte read and to complete hydration.
# Usage: bench/devicemapper-backup.sh [DATA_MB]   (default 512)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [[ ${CONVOY_VM:-} != 1 ]]; then
  scripts/build-release convoy 2>&1 | tail -1 >&2
  mkdir -p /var/tmp/convoy-bench
  exec env VM_MEMORY=16384 VM_TIMEOUT=1800 VM_RWDIRS=/var/tmp/convoy-bench scripts/vm-run bench/devicemapper-backup.sh "$@"
fi
mb=${1:-512}
run=/tmp/dm-bench     # tmpfs inside the VM: the pool's sparse files and the backup store
mkdir -p $run
convoy=.build/release/convoy
$convoy daemon --root $run/root --socket $run/c.sock --plugin-socket $run/p.sock --drivers devicemapper \
  --log-level error 2>$run/daemon.log &
for _ in $(seq 600); do $convoy info --socket $run/c.sock >/dev/null 2>&1 && break; sleep 0.1; done
c() { $convoy "$@" --socket $run/c.sock; }
now() { date +%s.%N; }
result() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])['Result'][sys.argv[1]])" "$1"; }

c create vol --size 2G >/dev/null
mp=$(c mount vol)
# Data: half random, half text (as the other benchmarks), written through the filesystem.
python3 - "$mp/data" "$mb" <<'PY'
import random, sys
rng = random.Random(9); words = [bytes(rng.choice(b"abcdefghij") for _ in range(6)) for _ in range(500)]
with open(sys.argv[1], "wb") as f:
    for i in range(int(sys.argv[2])):
        f.write(rng.randbytes(1 << 20) if i % 2 == 0 else b" ".join(rng.choice(words) for _ in range(150000))[:1 << 20])
PY
sync
c snapshot create vol --name s1 >/dev/null
t0=$(now); out=$(c backup create s1 --dest vfs://$run/store --json); t1=$(now)
full_read=$(echo "$out" | result BytesRead)
# 1 % change: 64 scattered 80 KiB writes into the file.
python3 - "$mp/data" "$mb" <<'PY'
import os, random, sys
rng = random.Random(3); size = int(sys.argv[2]) << 20
with open(sys.argv[1], "r+b") as f:
    for _ in range(64):
        f.seek(rng.randrange(0, size - 81920)); f.write(rng.randbytes(81920))
    f.flush(); os.fsync(f.fileno())
PY
changed=$((64 * 81920))
c snapshot create vol --name s2 >/dev/null
t2=$(now); out2=$(c backup create s2 --dest vfs://$run/store --json); t3=$(now)
inc_read=$(echo "$out2" | result BytesRead); url=$(echo "$out2" | result URL)
t4=$(now); c create copy --backup "$url" >/dev/null; t5=$(now)
# Lazy restore: create, mount and read the first byte of the file; then the time until hydration is complete.
t6=$(now); c create lazy --backup "$url" --lazy >/dev/null; lmp=$(c mount lazy); head -c 1 "$lmp/data" >/dev/null; t7=$(now)
c hydrate lazy --wait >/dev/null; t8=$(now)
python3 - "$mb" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" "$t7" "$t8" "$full_read" "$inc_read" "$changed" <<'PY'
import sys
mb = int(sys.argv[1]); t = [float(x) for x in sys.argv[2:11]]; full_read, inc_read, changed = (int(x) for x in sys.argv[11:14])
full, inc, restore, first, hydrated = t[1] - t[0], t[3] - t[2], t[5] - t[4], t[7] - t[6], t[8] - t[6]
print(f"data: {mb} MB written through ext4 on a 2 GiB thin volume (2 MiB pool blocks); VM under TCG emulation, 2 vCPUs")
print("| measure | result |")
print("|---|---|")
print(f"| full block backup | {full:.1f} s, {full_read / full / 1e6:.0f} MB/s of {full_read / 1e6:.0f} MB read (the mapped blocks) |")
print(f"| incremental after 64 writes of 80 KiB ({changed / 1e6:.1f} MB changed) | {inc:.1f} s, {inc_read / 1e6:.1f} MB read ({inc_read / changed:.1f}x the bytes changed: whole 2 MiB pool blocks) |")
print(f"| restore onto a new thin volume | {restore:.1f} s, {full_read / restore / 1e6:.0f} MB/s |")
print(f"| lazy restore: create, mount, first byte of the file read | {first:.2f} s ({restore / first:.0f}x sooner than the full restore) |")
print(f"| lazy restore: hydration complete (every block in the local cache) | {hydrated:.1f} s |")
PY
c umount vol >/dev/null
c umount lazy >/dev/null
