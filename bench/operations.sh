#!/usr/bin/env bash
# Issue 22's figures for operators, with the release build: the daemon's idle memory and CPU with 100 volumes and
# metrics on (scraped every 15 s, as Prometheus would), how long a scrape takes with 1,000 volumes, and how long a
# read of a lazy volume stalls across daemon restarts (3 clean, 3 kill -9) against the same reader undisturbed.
# Usage: bench/operations.sh [IDLE_SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
idle=${1:-60}
scripts/build-release convoy >/dev/null
binary=$PWD/.build/release/convoy
run=$(mktemp -d /var/tmp/convoy-ops.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
daemon_pid=""
cleanup() {
  [[ -n $daemon_pid ]] && kill -9 "$daemon_pid" 2>/dev/null || true
  pkill -9 -f "fuse-keeper --socket $run/" 2>/dev/null || true
  touch "$run/stop" 2>/dev/null || true
  grep " $run" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$run"
}
trap cleanup EXIT
echo '{}' > "$run/empty.json"
start() {
  "$binary" daemon --config-file "$run/empty.json" --root "$run/root" --socket "$run/c.sock" \
    --plugin-socket "$run/p.sock" --metrics-address "127.0.0.1:$port" --hydration-pause 30 >> "$run/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 100); do "$binary" --socket "$run/c.sock" info >/dev/null 2>&1 && return; sleep 0.1; done
  echo "the daemon did not start: $(tail -5 "$run/daemon.log")" >&2; exit 1
}
c() { "$binary" --socket "$run/c.sock" "$@"; }
scrape() { curl -sf "http://127.0.0.1:$port/metrics"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status"; }

start
for i in $(seq 1 100); do c create "v$i" >/dev/null; done
scrape >/dev/null
sleep 5
ticks0=$(cpu_ticks)
for _ in $(seq 1 $((idle / 15))); do sleep 15; scrape >/dev/null; done
ticks1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
idle_cpu=$(python3 -c "print('%.3f' % (100 * ($ticks1 - $ticks0) / $hz / $idle))")
idle_rss=$(( $(rss_kib) / 1024 ))
series=$(scrape | grep -vc '^#')

for i in $(seq 101 1000); do c create "v$i" >/dev/null; done
scrape_ms=$(python3 - "$port" <<'PY'
import statistics, sys, time, urllib.request
times = []
for _ in range(20):
    started = time.monotonic()
    urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1]).read()
    times.append(1000 * (time.monotonic() - started))
print("%.1f %.1f" % (statistics.median(times), max(times)))
PY
)
series_1000=$(scrape | grep -vc '^#')
rss_1000=$(( $(rss_kib) / 1024 ))

# A lazy volume of 40 files of 96 KiB, read in a loop with every cache dropped before each pass (scripts/read-loop).
c create origin >/dev/null
for i in $(seq 0 39); do head -c 98304 /dev/urandom > "$run/root/vfs/origin/file$i"; done
c snapshot create origin --name origin-1 >/dev/null
url=$(c backup create origin-1 --dest "vfs://$run/backups")
c create lazy --backup "$url" --lazy >/dev/null
merged=$(c mount lazy)
reader() { scripts/read-loop "$run/root/vfs/origin" "$merged" "$run/stop" "$1"; }
rm -f "$run/stop"; reader "$run/undisturbed" & reader_pid=$!
sleep 20; touch "$run/stop"; wait "$reader_pid"
rm -f "$run/stop"; reader "$run/restarts" & reader_pid=$!
sleep 2
for _ in 1 2 3; do kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; start; sleep 2; done
for _ in 1 2 3; do kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; start; sleep 2; done
touch "$run/stop"; wait "$reader_pid"
totals() { tail -1 "$1" | sed 's/DONE reads=\([0-9]*\) errors=\([0-9]*\) worst=\(.*\)/\1 \2 \3/'; }
read -r quiet_reads quiet_errors quiet_worst <<< "$(totals "$run/undisturbed")"
read -r reads errors worst <<< "$(totals "$run/restarts")"

cat <<REPORT
idle, 100 volumes, scraped every 15 s over ${idle} s: RSS ${idle_rss} MiB, CPU ${idle_cpu} % of one core, ${series} series
1,000 volumes: scrape median / max ${scrape_ms/ / ms / } ms (20 scrapes), ${series_1000} series, RSS ${rss_1000} MiB
lazy volume read undisturbed for 20 s: ${quiet_reads} reads, ${quiet_errors} errors, longest read ${quiet_worst} s
lazy volume read across 3 clean restarts and 3 kill -9: ${reads} reads, ${errors} errors, longest read ${worst} s
REPORT
