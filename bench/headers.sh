#!/usr/bin/env bash
# Benchmark: the headers family on N loopback HTTPS targets (default 200), each on its own
# 127.0.x.y address with its own in-process server (started by `secgate lab` in a separate
# process, so the scanner's memory is measured alone). Reports wall time and peak RSS of the
# scan over RUNS runs (default 5). Goal (issue 2): under 2 s and under 60 MB on 2 cores.
#
#   bench/headers.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
RUNS=${2:-5}
cargo build --release -q
BIN=target/release/secgate
OUT=$(mktemp -d)
trap 'kill $LAB 2>/dev/null; rm -rf "$OUT"' EXIT
"$BIN" lab --targets "$N" --profile hardened --out "$OUT" >/dev/null &
LAB=$!
for _ in $(seq 1 300); do [ -s "$OUT/secgate.toml" ] && break; sleep 0.1; done
echo "secgate $("$BIN" --version | cut -d' ' -f2), $N HTTPS targets on 127.0.x.y, $(nproc) cores"
for i in $(seq 1 "$RUNS"); do
  /usr/bin/time -f "%e %M" -o "$OUT/time" "$BIN" scan --config "$OUT/secgate.toml" --checks headers --quiet \
    --json "$OUT/r.json" || true
  read -r wall rss < "$OUT/time"
  results=$(jq '.results | length' "$OUT/r.json")
  pass=$(jq '.summary.results.pass' "$OUT/r.json")
  inconclusive=$(jq '.summary.results.inconclusive' "$OUT/r.json")
  printf 'run %d: wall %5.2f s  peak RSS %6.1f MB  results %d (pass %d, inconclusive %d)\n' \
    "$i" "$wall" "$(echo "$rss / 1024" | bc -l)" "$results" "$pass" "$inconclusive"
done
