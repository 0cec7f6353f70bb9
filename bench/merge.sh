#!/usr/bin/env bash
# Benchmark: `secgate merge` of SHARDS synthetic shard reports (default 100) holding RESULTS
# results in all (default 1,000,000), written by bench/gen_shards.py (no network). Reports
# wall time and peak RSS of the merge (writing the merged JSON report) over RUNS runs.
# Goal (issue 13): under 10 s and under 500 MB.
#
# Measured 2026-12-03 at commit 0717c6c, release build, 2 cores shared (load average ~4), the
# merge alone on the 100 files bench/gen_shards.py writes (364 MB, 1,000,000 results, exit 1):
#   secgate merge --quiet --json merged.json shard-*.json
#   run 1: wall 21.53 s, peak RSS 867 MB; run 2: wall 17.58 s, peak RSS 867 MB
# It MISSES the goal: the merge holds every result in memory (about 870 bytes each) before
# summarising and writing; a streaming merge is not written yet.
#
#   bench/merge.sh [SHARDS] [RESULTS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARDS=${1:-100}
RESULTS=${2:-1000000}
RUNS=${3:-3}
cargo build --release -q
BIN=target/release/secgate
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$BIN" rules --json > "$OUT/rules.json"
python3 bench/gen_shards.py "$OUT/rules.json" "$OUT" "$SHARDS" "$RESULTS"
echo "secgate $("$BIN" --version | cut -d' ' -f2), $SHARDS shards, $RESULTS results, $(du -sh "$OUT" | cut -f1) of shard files, $(nproc) cores"
for i in $(seq 1 "$RUNS"); do
  code=0
  /usr/bin/time -f "%e %M" -o "$OUT/time" "$BIN" merge --quiet --json "$OUT/merged.json" "$OUT"/shard-*.json || code=$?
  read -r wall rss < <(tail -n 1 "$OUT/time")  # time prefixes a line on a non-zero exit
  merged=$(jq '.results | length' "$OUT/merged.json")
  printf 'run %d: wall %5.2f s  peak RSS %6.1f MB  exit %d  merged results %d\n' \
    "$i" "$wall" "$(echo "$rss / 1024" | bc -l)" "$code" "$merged"
done
