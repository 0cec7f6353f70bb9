#!/usr/bin/env bash
# Benchmark: the load family's generator against wrk (Debian package `wrk`), in one run, on
# the same loopback nginx (Debian `nginx-light`: `return 200`, keep-alive), over HTTP and HTTPS.
#
#  1. Throughput: wrk's closed-loop maximum (`wrk -t2 -cC -d10s`) against secgate asked for
#     the same rate, C = 64 and 256 connections; reports the ratio of secgate's achieved rate
#     to wrk's. secgate's hard ceiling is 20,000/s per target, so a rate above it is split
#     over K targets (the same nginx on 127.0.0.1 to 127.0.0.K, K = rate / 20,000 rounded
#     up), which run at once, with the C connections split between them: the same total
#     rate and connections as wrk's, from one secgate process.
#  2. Accuracy: at a rate all hold (RATE, default 2000/s, 16 connections), secgate's corrected
#     p50/p90/p95/p99 against oha's (`oha -q RATE --latency-correction`, when `oha` is on PATH
#     or OHA names it: `cargo install oha`) and wrk's paced by a Lua `delay()` script;
#     reports secgate / peer per percentile. Against nginx on loopback the answers take
#     ~0.1 ms, so the tools differ by their own client paths; the same again behind
#     bench/delay_server.py (python3, a fixed DELAY_MS, default 2 ms, at SLOW_RATE, default
#     500/s), where the server's latency dominates and the percentiles should agree.
#  3. secgate's peak RSS (GNU time) in the 256-connection run.
#  4. Concurrency: HOLD (default 10,000) keep-alive connections held for HOLD_SECS (default
#     30) against the same nginx over HTTP: how many were held, and secgate's peak RSS (the
#     goal: all held, under 200 MB).
#
#   bench/load.sh                 # needs: nginx, wrk, openssl, jq, /usr/bin/time
#   RATE=5000 DURATION=10 bench/load.sh
#   ONLY=hold HOLD=10000 HOLD_SECS=30 BIN=/tmp/secgate bench/load.sh
# Every socket is on 127.0.0.1. Both tools share the 2 cores with nginx (1 worker).
set -euo pipefail
cd "$(dirname "$0")/.."
for p in nginx wrk openssl jq /usr/bin/time; do
  command -v "$p" >/dev/null || { echo "bench/load.sh: needs $p (apt-get install nginx-light wrk openssl jq time)" >&2; exit 2; }
done
RATE=${RATE:-2000}
DELAY_MS=${DELAY_MS:-2}
SLOW_RATE=${SLOW_RATE:-500}
OHA=${OHA:-$(command -v oha || true)}
DURATION=${DURATION:-10}
HOLD=${HOLD:-10000}
HOLD_SECS=${HOLD_SECS:-30}
ONLY=${ONLY:-all}   # all | throughput | hold
# BIN=PATH: benchmark that binary (e.g. a copy of an earlier build) instead of building one.
if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=$(pwd)/target/release/secgate
fi
DIR=$(mktemp -d)
NGINX=
SLOW=
trap '[ -n "$NGINX" ] && kill "$NGINX" 2>/dev/null; [ -n "$SLOW" ] && kill "$SLOW" 2>/dev/null; rm -rf "$DIR"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=$(port); HTTPS=$(port)
LISTEN=
for i in 1 2 3 4 5 6 7 8; do LISTEN="$LISTEN listen 127.0.0.$i:$HTTP; listen 127.0.0.$i:$HTTPS ssl;"; done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
cat > "$DIR/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/error.log;
worker_rlimit_nofile 40000;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $DIR; proxy_temp_path $DIR; fastcgi_temp_path $DIR; uwsgi_temp_path $DIR; scgi_temp_path $DIR;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {
    $LISTEN
    ssl_certificate $DIR/cert.pem;
    ssl_certificate_key $DIR/key.pem;
    location / { return 200 "ok\n"; }
  }
}
EOF
nginx -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log" &
NGINX=$!
sleep 0.5

cat > "$DIR/pace.lua" <<'EOF'
-- Constant rate per connection (wrk's delay() hook, in ms), then the percentiles wrk measured.
local rate = tonumber(os.getenv("RATE"))
local conns = tonumber(os.getenv("CONNS"))
function delay() return 1000 * conns / rate end
function done(summary, latency, requests)
  io.write(string.format("WRK %d %d %d %d %.1f\n", latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), summary.requests / (summary.duration / 1e6)))
end
EOF
cat > "$DIR/max.lua" <<'EOF'
function done(summary, latency, requests)
  io.write(string.format("WRK %d %d %d %d %.1f\n", latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), summary.requests / (summary.duration / 1e6)))
end
EOF

secgate() { # SCHEME PORT RATE CONNS -> "achieved p50 p90 p95 p99 lag_p95 dropped rss_kb k" (µs;
  # achieved and dropped summed over the K targets, the percentiles the first target's, lag
  # the largest of the workers' schedule lag and the heartbeat's)
  local k conns
  k=$(awk -v r="$3" 'BEGIN { k = int((r + 19999) / 20000); if (k < 1) k = 1; if (k > 8) k = 8; print k }')
  conns=$(( ($4 + k - 1) / k ))
  : > "$DIR/secgate.toml"
  for i in $(seq 1 "$k"); do
    cat >> "$DIR/secgate.toml" <<EOF
[[target]]
url = "$1://127.0.0.$i:$2/"
load = { rate = $(awk -v r="$3" -v k="$k" 'BEGIN { printf "%.0f", r / k }'), duration = $DURATION, warmup = 2, idle = 0, connections = $conns, abort_on_fail = false }
EOF
  done
  /usr/bin/time -f "%M" -o "$DIR/rss" "$BIN" scan --config "$DIR/secgate.toml" --checks load --insecure \
    --quiet --json "$DIR/r.json" || true
  jq -r --arg rss "$(tail -n 1 "$DIR/rss")" '[.results[] | select(.rule_id == "load.throughput") | .evidence] as $all
    | $all[0] as $e | ($e.latency_us | map(split("=") | {(.[0]): .[1]}) | add) as $l
    | "\($all | map(.achieved_per_s | tonumber) | add) \($l.p50) \($l.p90) \($l.p95) \($l.p99) \($all | map([.schedule_lag_p95_us, .heartbeat_lag_p95_us] | max) | max) \($all | map(.dropped_iterations) | add) \($rss) \($all | length)"' "$DIR/r.json"
}
wrk_run() { # URL CONNS [SCRIPT [RATE]] -> "p50 p90 p95 p99 rps" (µs)
  RATE=${4:-$RATE} CONNS=$2 wrk -t2 -c"$2" -d"${DURATION}s" -s "$DIR/${3:-max}.lua" "$1" | awk '/^WRK/ {print $2, $3, $4, $5, $6}'
}
oha_run() { # URL RATE CONNS -> "p50 p90 p95 p99 rps" (µs)
  "$OHA" -z "${DURATION}s" -q "$2" --latency-correction -c "$3" --no-tui --insecure --output-format json "$1" \
    | jq -r '.latencyPercentiles | [.p50, .p90, .p95, .p99] | map(. * 1e6 | floor | tostring) | join(" ")' \
    | awk -v r="$2" '{ print $1, $2, $3, $4, r }'
}
accuracy() { # LABEL SCHEME PORT RATE: secgate against oha and paced wrk, 16 connections
  local url="$2://127.0.0.1:$3/"
  echo "== $1: accuracy at $4/s, 16 connections (secgate corrected, oha --latency-correction, wrk paced by delay())"
  read -r ach s50 s90 s95 s99 lag dropped _ _ < <(secgate "$2" "$3" "$4" 16)
  printf '  secgate  %8s/s  p50 %6s  p90 %6s  p95 %6s  p99 %6s µs  (lag p95 %s µs, dropped %s)\n' "$ach" "$s50" "$s90" "$s95" "$s99" "$lag" "$dropped"
  if [ -n "$OHA" ]; then
    read -r o50 o90 o95 o99 _ < <(oha_run "$url" "$4" 16)
    printf '  oha                 p50 %6s  p90 %6s  p95 %6s  p99 %6s µs   ratio secgate/oha: p50 %s  p90 %s  p95 %s  p99 %s\n' \
      "$o50" "$o90" "$o95" "$o99" "$(ratio "$s50" "$o50")" "$(ratio "$s90" "$o90")" "$(ratio "$s95" "$o95")" "$(ratio "$s99" "$o99")"
  fi
  read -r w50 w90 w95 w99 wrps < <(wrk_run "$url" 16 pace "$4")
  printf '  wrk      %8.0f/s  p50 %6s  p90 %6s  p95 %6s  p99 %6s µs   ratio secgate/wrk: p50 %s  p90 %s  p95 %s  p99 %s\n' \
    "$wrps" "$w50" "$w90" "$w95" "$w99" "$(ratio "$s50" "$w50")" "$(ratio "$s90" "$w90")" "$(ratio "$s95" "$w95")" "$(ratio "$s99" "$w99")"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo "secgate load benchmark: nginx on 127.0.0.1 (1 worker), ${DURATION}s runs, $(nproc) cores"
[ "$ONLY" = hold ] || for scheme in http https; do
  if [ $scheme = http ]; then URL="http://127.0.0.1:$HTTP/"; else URL="https://127.0.0.1:$HTTPS/"; fi
  echo
  if [ $scheme = http ]; then PORT=$HTTP; else PORT=$HTTPS; fi
  echo "== $scheme: throughput ceiling (wrk closed loop vs secgate open model at wrk's rate, split over targets of at most 20000/s)"
  for c in 64 256; do
    read -r _ _ _ _ wrps < <(wrk_run "$URL" $c)
    want=$(awk -v r="$wrps" 'BEGIN { print int(r) }')
    read -r ach p50 _ p95 p99 lag dropped rss k < <(secgate $scheme "$PORT" "$want" $c)
    printf '  c=%-3s  wrk %8.0f/s   secgate asked %6s/s over %s targets, achieved %8s/s (p50 %s µs, p99 %s µs, lag p95 %s µs, dropped %s, peak RSS %s KB)   ratio secgate/wrk %s\n' \
      $c "$wrps" "$want" "$k" "$ach" "$p50" "$p99" "$lag" "$dropped" "$rss" "$(ratio "$ach" "$wrps")"
  done
  accuracy "$scheme (nginx)" $scheme "$PORT" "$RATE"
done
if [ "$ONLY" != hold ]; then
  SLOWPORT=$(port)
  python3 bench/delay_server.py "$SLOWPORT" "$DELAY_MS" &
  SLOW=$!
  sleep 0.5
  echo
  accuracy "http (a server answering after ${DELAY_MS} ms)" http "$SLOWPORT" "$SLOW_RATE"
fi

[ "$ONLY" = throughput ] && exit 0
echo
echo "== http: $HOLD keep-alive connections held for ${HOLD_SECS}s (one request on each every 4 s at most)"
cat > "$DIR/hold.toml" <<EOF
[[target]]
url = "http://127.0.0.1:$HTTP/"
load = { rate = 10, duration = 1, warmup = 0, idle = 0, connections = 1, hold_connections = $HOLD, hold = $HOLD_SECS, abort_on_fail = false }
EOF
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$DIR/rss" "$BIN" scan --config "$DIR/hold.toml" --checks load --quiet --json "$DIR/h.json" || true
wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
jq -r --arg rss "$(tail -n 1 "$DIR/rss")" --arg wall "$wall" '.results[] | select(.rule_id == "load.concurrency") | .evidence as $e
  | "  \(.status): wanted \($e.wanted), opened \($e.opened), held \($e.held) for \($e.hold_ms) ms from \($e.source_addresses) source addresses, errors \($e.errors_by_kind); secgate peak RSS \($rss) KB (\(($rss | tonumber) / 1024 | floor) MB), wall \($wall) s"' "$DIR/h.json"
