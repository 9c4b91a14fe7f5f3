# Sourced by the benchmarks against restic on bench/make-data.py's data set (backup-vs-restic.sh,
# forget-cost.sh): restic installed, convoy's release build, the data set for $scale generated once under
# $BENCH_DIR (default /var/tmp/convoy-bench), and a fresh daemon in $work/$1 answering `c ARGS...`.
# Sets work, run, convoy, sock, pid; the daemon is stopped when the script exits.
command -v restic >/dev/null || { apt-get install -y -qq restic >/dev/null; }
scripts/build-release convoy 2>&1 | tail -1 >&2

work=${BENCH_DIR:-/var/tmp/convoy-bench}
mkdir -p "$work"
if [[ ! -f "$work/data-$scale.done" ]]; then
  rm -rf "$work/data"
  python3 bench/make-data.py "$work/data" "$scale"
  touch "$work/data-$scale.done"
fi
run="$work/$1"
rm -rf "$run" && mkdir -p "$run"
convoy=.build/release/convoy
sock="$run/c.sock"
$convoy daemon --root "$run/root" --socket "$sock" --plugin-socket "$run/p.sock" --log-level error 2>"$run/daemon.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 300); do [[ -S "$sock" ]] && break; sleep 0.1; done
c() { $convoy "$@" --socket "$sock"; }
