#!/usr/bin/env bash
# The cost and the RPO of a replicated volume (issue 19): a vfs volume of SIZE_GIB GiB (ten files of random data)
# created with -o replica=vfs://... -o replicainterval=INTERVAL, changing 1 % a minute (1 MiB regions rewritten at
# random offsets), for ROUNDS minutes. Reports, per interval, the daemon's CPU time (user + system, from
# /proc/PID/stat) as a share of one core, the bytes the replica store grew by, and at the end the RPO a kill -9
# would give: the age of the newest replica (status replicaAgeSeconds), sampled every second.
# Usage: bench/replication-cost.sh [SIZE_GIB=10] [ROUNDS=5] [INTERVAL=60s]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
size_gib=${1:-10}
rounds=${2:-5}
interval=${3:-60s}
scripts/build-release convoy 2>/dev/null | tail -1
work=$(mktemp -d /var/tmp/convoy-replication.XXXXXX)
# At exit: the daemon stopped, the mounts the takeover made under $work detached, then $work removed.
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; tail -5 "$work/daemon.log" >&2
  awk -v w="$work/" '\''index($5, w) == 1 {print $5}'\'' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
  rm -rf "$work"' EXIT
convoy=.build/release/convoy
$convoy daemon --root "$work/root" --socket "$work/c.sock" --plugin-socket "$work/p.sock" --host-id bench \
  --log-level error 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 300); do [[ -S "$work/c.sock" ]] && break; sleep 0.1; done
cli() { $convoy --socket "$work/c.sock" "$@"; }
ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{printf "%.2f", ($14 + $15) / t}' "/proc/$pid/stat"; }
store_bytes() { du -sb "$work/store" 2>/dev/null | cut -f1; }
age() { cli inspect data | python3 -c 'import json,sys; print(json.load(sys.stdin)["Status"].get("replicaAgeSeconds",""))'; }
newest() { cli inspect data | python3 -c 'import json,sys; print(json.load(sys.stdin)["Status"].get("replica",""))'; }

echo "convoy $(git rev-parse --short HEAD), $(nproc) cores, $(date -u +%Y-%m-%d); ${size_gib} GiB, 1 %/min, interval $interval"
mkdir -p "$work/store"
cli create data --opt "replica=vfs://$work/store" --opt "replicainterval=$interval" >/dev/null
python3 - "$work/root/vfs/data" "$size_gib" <<'EOF'
import os, sys
root, gib = sys.argv[1], int(sys.argv[2])
for i in range(10):
    with open(f"{root}/f{i}", "wb") as f:
        for m in range(gib * 1024 // 10):
            f.write(os.urandom(1 << 20))
EOF
sync
echo "waiting for a replica of all the data..."
written=$(date +%s)
until a=$(age) && [[ -n $a ]] && (( $(date +%s) - a > written )); do sleep 1; done
echo "full replica: $(( $(date +%s) - written )) s after the data was written, store $(( $(store_bytes) >> 20 )) MiB"

# Steady state: 1 % of the volume rewritten once a minute; CPU and store growth measured over whole minutes.
cpu0=$(cpu); bytes0=$(store_bytes); t0=$(date +%s.%N); max_age=0; replicas=0; last=$(newest)
for round in $(seq "$rounds"); do
  python3 - "$work/root/vfs/data" "$size_gib" <<'EOF'
import os, random, sys
root, gib = sys.argv[1], int(sys.argv[2])
per_file = gib * 1024 // 10
for _ in range(gib * 1024 // 100):  # 1 % of the volume, in 1 MiB regions
    with open(f"{root}/f{random.randrange(10)}", "r+b") as f:
        f.seek(random.randrange(per_file) << 20)
        f.write(os.urandom(1 << 20))
EOF
  end=$(( $(date +%s) + 60 ))
  while (( $(date +%s) < end )); do
    a=$(age); [[ -n $a ]] && (( a > max_age )) && max_age=$a
    n=$(newest); [[ $n != "$last" ]] && { replicas=$((replicas + 1)); last=$n; }
    sleep 1
  done
  echo "minute $round: daemon CPU $(cpu) s in all, store $(( $(store_bytes) >> 20 )) MiB"
done
cpu1=$(cpu); bytes1=$(store_bytes); t1=$(date +%s.%N)
python3 - "$cpu0" "$cpu1" "$bytes0" "$bytes1" "$t0" "$t1" "$rounds" "$size_gib" "$max_age" "$replicas" <<'EOF'
import sys
c0, c1, b0, b1, t0, t1 = map(float, sys.argv[1:7])
rounds, gib, max_age, replicas = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10])
changed = gib * 1024 / 100 * rounds
per = f"{(c1 - c0) / replicas:.1f} s each" if replicas else "none finished"
print(f"steady state over {t1 - t0:.0f} s: daemon CPU {c1 - c0:.1f} s = {100 * (c1 - c0) / (t1 - t0):.1f} % of one core; "
      f"{replicas} replicas made ({per}, {100 * (c1 - c0) / replicas / 60 if replicas else 0:.1f} % of one core "
      f"at one per minute); "
      f"store +{(b1 - b0) / 2**20:.0f} MiB for {changed:.0f} MiB changed ({(b1 - b0) / 2**20 / rounds:.0f} MiB per minute); "
      f"newest replica at most {max_age} s old (the RPO of a kill -9 at the worst moment)")
EOF

# The takeover: this host dies (kill -9); another daemon (its own root, host id bench-b) takes the volume over at
# once (takeover=force stands for "the lease has run out") and restores the newest replica lazily. Timed: its
# Create, its Mount, and the first MiB of a file read through the mount.
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
$convoy daemon --root "$work/root-b" --socket "$work/b.sock" --plugin-socket "$work/pb.sock" --host-id bench-b \
  --log-level error 2>"$work/daemon-b.log" &
pid=$!
for _ in $(seq 300); do [[ -S "$work/b.sock" ]] && break; sleep 0.1; done
start=$(date +%s.%N)
$convoy --socket "$work/b.sock" create data --opt "replica=vfs://$work/store" --opt "replicainterval=$interval" \
  --opt takeover=force >/dev/null
created=$(date +%s.%N)
mounted_at=$($convoy --socket "$work/b.sock" mount data)
mounted=$(date +%s.%N)
head -c 1048576 "$mounted_at/f0" | wc -c >/dev/null
read_done=$(date +%s.%N)
size_b=$(stat -c %s "$mounted_at/f0"); size_a=$(stat -c %s "$work/root/vfs/data/f0")
python3 - "$start" "$created" "$mounted" "$read_done" "$size_gib" <<PY
import sys
start, created, mounted, read = map(float, sys.argv[1:5])
print(f"takeover of the {sys.argv[5]} GiB volume by another host: create (lazy restore of the newest replica) "
      f"{created - start:.2f} s, mount {mounted - created:.2f} s, first MiB of a file read {read - mounted:.2f} s: "
      f"usable {read - start:.2f} s after the lease (f0: {$size_b} bytes there, {$size_a} here)")
PY
