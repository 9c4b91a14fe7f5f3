#!/usr/bin/env bash
# S3 benchmark, convoy against restic 0.14's own s3 backend, both on one moto server on loopback (they pay the
# same server cost): a backup to s3:// and RUNS restores from it, with the requests each sent per GiB of data.
# Data (deterministic, ~550 MB): 2,000 small files of 4-256 KiB (half text, half random) and 4 x 64 MiB random.
# Usage: bench/s3-vs-restic.sh [RUNS] [CONVOY_DAEMON_FLAGS...]   (RUNS restores each; default 3)
#        CONVOY_BIN=path/to/convoy bench/s3-vs-restic.sh ...     (another build, e.g. the code before a change)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
runs=${1:-3}
shift || true
command -v restic >/dev/null || { apt-get install -y -qq restic >/dev/null; }
[[ -n ${CONVOY_BIN:-} ]] || scripts/build-release convoy 2>&1 | tail -1 >&2

work=${BENCH_DIR:-/var/tmp/convoy-bench}
data="$work/s3-data"
if [[ ! -f "$data.done" ]]; then
  rm -rf "$data"
  python3 bench/make-data.py "$data" s3
  touch "$data.done"
fi

run="$work/s3"
rm -rf "$run" && mkdir -p "$run"
scripts/moto-server start "$run/moto" >&2
source "$run/moto/env"
endpoint=$CONVOY_TEST_S3_ENDPOINT
convoy=${CONVOY_BIN:-.build/release/convoy}
sock="$run/c.sock"
AWS_ENDPOINT_URL=$endpoint $convoy daemon --root "$run/root" --socket "$sock" --plugin-socket "$run/p.sock" \
  --log-level error "$@" 2>"$run/daemon.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; scripts/moto-server stop "$run/moto"' EXIT
for _ in $(seq 300); do [[ -S "$sock" ]] && break; sleep 0.1; done
c() { $convoy "$@" --socket "$sock"; }
python3 - "$endpoint" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
for bucket in ("convoy-bench", "restic-bench"):
    s3.create_bucket(Bucket=bucket)
PY

drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
log="$run/moto/moto.log"
moto_pid=$(<"$run/moto/moto.pid")
mark() { wc -l < "$log"; }
# CPU seconds a process has used; the daemon's peak RSS since the last reset (clear_refs 5 resets it), in MiB.
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
reset_peak() { echo 5 > "/proc/$pid/clear_refs"; }
peak() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
# Starts a step: marks the server's log and takes both CPU counters.
begin() { drop; reset_peak; m=$(mark); c0=$(cpu "$pid"); s0=$(cpu "$moto_pid"); t0=$(now); }
# Ends it: NAME SECONDS CLIENT_CPU requests... then daemon CPU, server CPU and the daemon's peak RSS.
finish() {
  local t1 c1 s1
  t1=$(now); c1=$(cpu "$pid"); s1=$(cpu "$moto_pid")
  echo "$1 $(echo "$t1 - $t0" | bc) ${2:-0} $(requests "$m") $(echo "$c1 - $c0" | bc)" \
    "$(echo "$s1 - $s0" | bc) $(peak)" >> "$results"
}
# Requests in the server's log after line $1, by kind: "LIST GET PUT HEAD POST DELETE".
requests() {
  tail -n +"$(($1 + 1))" "$log" | python3 -c '
import re, sys
kinds = dict.fromkeys(["LIST", "GET", "PUT", "HEAD", "POST", "DELETE"], 0)
for line in sys.stdin:
    m = re.search(r"\"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP", line)
    if not m or "/moto-api" in m.group(2):
        continue
    method, target = m.groups()
    path, _, query = target.partition("?")
    bucket_level = path.strip("/").count("/") == 0
    kinds["LIST" if method == "GET" and bucket_level else method] += 1
print(" ".join(str(v) for v in kinds.values()))'
}

c create bench >/dev/null
volume="$run/root/vfs/bench"
cp -a "$data/." "$volume/"
bytes=$(du -sb --apparent-size "$volume" | cut -f1)
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$run/restic-cache"
repo="s3:$endpoint/restic-bench/repo"
restic init --repo "$repo" --repository-version 2 >/dev/null

results="$run/results"
: > "$results"
timed() { /usr/bin/time -f "%U %S" -o "$run/time" "$@"; restic_cpu=$(awk '{print $1 + $2}' "$run/time"); }
begin
c snapshot create bench --name full >/dev/null
url=$(c backup create full --dest "s3://convoy-bench@us-east-1/convoy")
finish convoy-backup
begin
timed restic backup --repo "$repo" --quiet "$volume"
finish restic-backup "$restic_cpu"
# The same volume straight to a store of its own, without a snapshot (data written once).
begin
c backup create --volume bench --dest "s3://convoy-bench@us-east-1/direct" >/dev/null
finish convoy-direct

for i in $(seq "$runs"); do
  begin
  c create "restored-$i" --backup "$url" >/dev/null
  finish convoy-restore
  diff -r "$volume" "$run/root/vfs/restored-$i" >/dev/null || { echo "convoy restore $i differs" >&2; exit 1; }
  c delete "restored-$i" >/dev/null
  begin
  timed restic restore latest --repo "$repo" --target "$run/restic-restore-$i" --quiet
  sync  # convoy syncs a restored volume before it reports it ready
  finish restic-restore "$restic_cpu"
  diff -r "$volume" "$run/restic-restore-$i$volume" >/dev/null || { echo "restic restore $i differs" >&2; exit 1; }
  rm -rf "$run/restic-restore-$i"
done
echo "both restores identical to the source in every run" >&2

python3 - "$bytes" "$results" <<'PY'
import sys
size = int(sys.argv[1]); mb = size / 1e6; gib = size / 2**30
rows = [line.split() for line in open(sys.argv[2])]
KINDS = ["LIST", "GET", "PUT", "HEAD", "POST", "DELETE"]
def fmt(row):
    seconds = float(row[1])
    kinds = dict(zip(KINDS, (int(x) for x in row[3:9])))
    per_gib = ", ".join(f"{k} {v / gib:,.0f}" for k, v in kinds.items() if v)
    daemon_cpu, server_cpu, peak = float(row[9]), float(row[10]), int(row[11])
    return seconds, f"{seconds:.2f} s, {mb / seconds:,.0f} MB/s", per_gib, daemon_cpu, server_cpu, peak, float(row[2])
print(f"data: {mb:,.0f} MB on one moto server on loopback; page cache dropped before each step")
print()
print("| step | convoy | requests per GiB | CPU s: convoy / moto | convoy peak RSS | restic 0.14 (s3 backend) "
      "| requests per GiB | CPU s: restic / moto | convoy / restic speed |")
print("|---|---|---|---|---|---|---|---|---|")
convoy = [r for r in rows if r[0].startswith("convoy") and r[0] != "convoy-direct"]
restic = [r for r in rows if r[0].startswith("restic")]
pairs = [(c[0].split("-")[1], c, r) for c, r in zip(convoy, restic)]
direct = [r for r in rows if r[0] == "convoy-direct"]
if direct and restic:
    pairs.insert(1, ("backup --volume (no snapshot)", direct[0], restic[0]))
for step, c, r in pairs:
    cs, ct, cr, cd, cm, cp, _ = fmt(c)
    rs, rt, rr, _, rm, _, rc = fmt(r)
    print(f"| {step} | {ct} | {cr} | {cd:.1f} / {cm:.1f} | {cp} MiB | {rt} | {rr} | {rc:.1f} / {rm:.1f} "
          f"| {rs / cs:.2f}x |")
PY
