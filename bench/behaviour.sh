#!/usr/bin/env bash
# Benchmark: the behaviour families (auth, ratelimit) with their default budgets against two
# loopback HTTPS sites of the lab (one careless, one careful). Reports the wall time of each
# family and of both, and the request counts the servers saw per route.
#
#   bench/behaviour.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
BIN=$(pwd)/target/release/secgate
OUT=$(mktemp -d)
LAB=
trap '[ -n "$LAB" ] && kill $LAB 2>/dev/null; rm -rf "$OUT"' EXIT
export SECGATE_BENCH_PASSWORD=demo-correct-horse

run() { # CHECKS
  "$BIN" lab --profile behaviour --out "$OUT/lab" > "$OUT/lab.log" &
  LAB=$!
  for _ in $(seq 1 100); do [ -s "$OUT/lab/secgate.toml" ] && break; sleep 0.1; done
  "$BIN" scan --config "$OUT/lab/secgate.toml" --checks "$1" --quiet --json "$OUT/r.json" || true
  kill -INT $LAB; wait $LAB || true; LAB=
  rm -f "$OUT/lab/secgate.toml"
  printf '%-15s wall %6.2f s  results: %s\n' "$1" "$(jq '.duration_ms / 1000' "$OUT/r.json")" \
    "$(jq -r '[.results[] | "\(.target | split("//")[1] | split(".")[0]) \(.rule_id)=\(.status)"] | join(", ")' "$OUT/r.json")"
  grep '^requests' "$OUT/lab.log" | sed 's/^/    /'
}
run ratelimit
run auth
run auth,ratelimit
