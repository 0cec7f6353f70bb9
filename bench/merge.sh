#!/usr/bin/env bash
# Benchmark: `secgate merge` of SHARDS synthetic shard reports (default 100) holding RESULTS
# results in all (default 1,000,000), written by bench/gen_shards.py (no network). Reports
# wall time and peak RSS of the merge (writing the merged JSON report) over RUNS runs.
# Goal (issue 13): under 10 s and under 500 MB.
#
# The merge streams (src/merge.rs): one shard file in memory at a time while it is checked
# and tallied, then each result read again from its file as the JSON report is written, so
# memory stays flat however many results there are. Wall time on this shared machine is
# mostly waiting for a core, so the CPU time (user + sys) is printed as well.
#
# Measured 2026-12-03, release build, 2 cores shared with other builds (load average 4 to
# 8.5 during the runs), 100 files of 364 MB, 1,000,000 results, exit 1:
#   secgate merge --quiet --json merged.json shard-*.json
#   before (6e8542b, whole shards parsed into memory): wall 41.4-54.1 s, CPU 14.6 s, peak RSS 1,080 MB
#   after, `bench/merge.sh 100 1000000 2`:             wall 6.9 s and 25.9 s, CPU 8.9-9.0 s, peak RSS 132 MB
#   after, the command above, 3 runs by hand:          wall 13.2-15.7 s, CPU 7.7-8.3 s, peak RSS 137 MB
#   after, `bench/merge.sh 100 1000000 3` on the same machine idle (load average 0.5-0.8):
#                                                      wall 4.7-5.8 s, CPU 6.0-7.4 s, peak RSS 143 MB
#   with address slices (7c3d4e3..), `bench/merge.sh 100 1000000 3`, load average 11.9-12.3
#   (the shard files carry no slices; their format is unchanged):
#                                                      wall 24.9-26.2 s, CPU 8.2-8.4 s, peak RSS 147 MB
# Both goals are met on an idle machine (under 10 s, under 500 MB); under load a run waits
# for a core.
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
  /usr/bin/time -f "%e %M %U %S" -o "$OUT/time" "$BIN" merge --quiet --json "$OUT/merged.json" "$OUT"/shard-*.json || code=$?
  read -r wall rss user sys < <(tail -n 1 "$OUT/time")  # time prefixes a line on a non-zero exit
  merged=$(jq '.results | length' "$OUT/merged.json")
  printf 'run %d: wall %5.2f s  CPU %5.2f s  peak RSS %6.1f MB  exit %d  merged results %d  (load %s)\n' \
    "$i" "$wall" "$(echo "$user + $sys" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$code" "$merged" "$(cut -d' ' -f1 /proc/loadavg)"
done
