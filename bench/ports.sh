#!/usr/bin/env bash
# Benchmark: the ports family's TCP connect sweep against nmap and RustScan, on loopback only.
#
# 1. A full sweep of all 65,535 ports of 127.0.77.1, which has a known set of open ports
#    (listeners started here that send a short banner and close, plus anything the machine
#    already listens on for 0.0.0.0), with:
#      secgate scan 127.0.77.1 --checks ports --ports all        (sweep + service identification)
#      nmap -sT -p- -T4 127.0.77.1                               (Debian's nmap, installed here)
#      rustscan -a 127.0.77.1 -r 1-65535 -g                      (when `cargo install rustscan`
#                                                                 works, into bench/.rustscan)
#    Each is run RUNS times in the same run of this script; wall time and peak RSS are measured
#    with /usr/bin/time, and every tool's open-port set must equal the expected set.
# 2. secgate sweeping top1000 over the /24 127.0.78.0/24 (256 addresses, 256,000 connects).
#
# Goals (issue 4): identical open sets; secgate >= 1.5x faster than nmap and faster than
# RustScan; secgate peak memory < 50 MB.
#
#   bench/ports.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
ADDR=127.0.77.1
RANGE_ADDRS="127.0.78.5 127.0.78.77 127.0.78.200"
OPEN_PORTS="22 80 443 3306 6379 8080 9200 27017 40000 55555 65535"

if ! command -v nmap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nmap >/dev/null
fi
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
RUSTSCAN=bench/.rustscan/bin/rustscan
if [ ! -x "$RUSTSCAN" ]; then
  cargo install rustscan --locked --root bench/.rustscan -q || echo "rustscan: cargo install failed; skipped"
fi
cargo build --release -q
BIN=target/release/secgate
OUT=$(mktemp -d)

# Listeners: accept, send a one-line banner, close (so identification does not wait).
python3 - "$ADDR" "$OPEN_PORTS" "$RANGE_ADDRS" > "$OUT/listeners.log" 2>&1 <<'PY' &
import selectors, socket, sys
addr, ports, range_addrs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
sel = selectors.DefaultSelector()
def listen(a, p):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, int(p))); s.listen(1024); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
for p in ports: listen(addr, p)
for a in range_addrs:
    for p in ("22", "443", "8080"): listen(a, p)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept(); c.sendall(b"SSH-2.0-bench\r\n"); c.close()
        except OSError:
            pass
PY
LISTENERS=$!
trap 'kill $LISTENERS 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 1 100); do grep -q ready "$OUT/listeners.log" 2>/dev/null && break; sleep 0.1; done

# Expected: our listeners plus whatever listens on 0.0.0.0 / * (seen by any loopback address).
expected=$( (for p in $OPEN_PORTS; do echo "$p"; done
  ss -ltnH | awk '{print $4}' | grep -E '^(0\.0\.0\.0|\*):' | sed 's/.*://') | sort -n -u | tr '\n' ' ')
echo "secgate $("$BIN" --version | cut -d' ' -f2), $(nproc) cores, open-files limit $(ulimit -n)"
echo "expected open ports on $ADDR: $expected"

secgate_ports() { jq -r '.results[] | select(.rule_id=="ports.unexpected_open") | .evidence.ports[]' "$1" \
  | sed 's/^[^ ]*:\([0-9]*\) .*/\1/' | sort -n | tr '\n' ' '; }
nmap_ports() { grep -o '[0-9]*/open/tcp' "$1" | cut -d/ -f1 | sort -n | tr '\n' ' '; }
rustscan_ports() { grep -o '\[.*\]' "$1" | tr -d '[]' | tr ',' '\n' | sort -n | tr '\n' ' '; }

declare -A total
run() { # name, parser, output file, command...
  local name=$1 parse=$2 out=$3; shift 3
  /usr/bin/time -f "%e %M" -o "$OUT/time" "$@" > "$OUT/stdout" 2>&1 || true
  read -r wall rss < <(tail -n 1 "$OUT/time")
  local got; got=$($parse "$out")
  local same=yes; [ "$got" = "$expected" ] || same="NO (got: $got)"
  printf '  %-9s wall %6.2f s  peak RSS %7.1f MB  identical open set: %s\n' "$name" "$wall" "$(echo "$rss / 1024" | bc -l)" "$same"
  total[$name]=$(echo "${total[$name]:-0} + $wall" | bc -l)
}

echo "full sweep of 65,535 ports of $ADDR, $RUNS runs (interleaved):"
for i in $(seq 1 "$RUNS"); do
  echo " run $i"
  run secgate secgate_ports "$OUT/s.json" "$BIN" scan "$ADDR" --checks ports --ports all \
    --allowed-ports 1 --timeout 1 --quiet --json "$OUT/s.json"
  run nmap nmap_ports "$OUT/n.gnmap" nmap -sT -p- -T4 "$ADDR" -oG "$OUT/n.gnmap"
  if [ -x "$RUSTSCAN" ]; then
    run rustscan rustscan_ports "$OUT/stdout" "$RUSTSCAN" -a "$ADDR" -r 1-65535 -g
  fi
done
echo "mean wall time over $RUNS runs:"
for t in secgate nmap rustscan; do
  [ -n "${total[$t]:-}" ] && printf '  %-9s %6.3f s\n' "$t" "$(echo "${total[$t]} / $RUNS" | bc -l)"
done
printf '  nmap / secgate     = %.2fx\n' "$(echo "${total[nmap]} / ${total[secgate]}" | bc -l)"
[ -n "${total[rustscan]:-}" ] && printf '  rustscan / secgate = %.2fx\n' "$(echo "${total[rustscan]} / ${total[secgate]}" | bc -l)"

echo "top1000 over 127.0.78.0/24 (256 addresses x 1000 ports):"
for i in $(seq 1 "$RUNS"); do
  /usr/bin/time -f "%e %M" -o "$OUT/time" "$BIN" scan 127.0.78.0/24 --checks ports --ports top1000 \
    --allowed-ports 1 --timeout 1 --quiet --json "$OUT/r.json" || true
  read -r wall rss < <(tail -n 1 "$OUT/time")
  printf '  run %d: wall %5.2f s  peak RSS %6.1f MB  open: %s\n' "$i" "$wall" "$(echo "$rss / 1024" | bc -l)" \
    "$(jq -r '[.results[] | select(.rule_id=="ports.unexpected_open") | .evidence.ports[]] | join(", ")' "$OUT/r.json")"
done
