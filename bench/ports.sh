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
# 3. Sweep + identification of every port of 127.0.79.1, which runs seven real services on
#    their well-known ports: SSH, FTP and MySQL greetings (small Python servers that speak
#    first, as sshd, vsftpd and mysqld do), PostgreSQL 15 (a throwaway cluster), redis-server,
#    and nginx serving HTTP on 80 and HTTPS on 443. Timed with hyperfine, interleaved:
#      secgate scan 127.0.79.1 --checks ports --ports all   (sweep + identification)
#      nmap -sT -p- -T4 127.0.79.1                          (nmap's bare sweep)
#      nmap -sT -sV -p- -T4 127.0.79.1                      (nmap's sweep + version detection)
#    secgate's service names must be exactly: ftp ssh http tls mysql postgresql redis.
#
# Goals (issue 4): identical open sets; secgate >= 1.5x faster than nmap and faster than
# RustScan; secgate peak memory < 50 MB. Issue 14: sweep + identification under 0.5x the time
# of `nmap -sT -p- -T4` and under 1/12 of `nmap -sT -sV -p-`.
#
#   bench/ports.sh [RUNS]        (SECTIONS="ident" runs only section 3)
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

SECTIONS=${SECTIONS:-sweep range ident}
if [[ " $SECTIONS " == *" sweep "* ]]; then
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
fi

if [[ " $SECTIONS " == *" range "* ]]; then
echo "top1000 over 127.0.78.0/24 (256 addresses x 1000 ports):"
for i in $(seq 1 "$RUNS"); do
  /usr/bin/time -f "%e %M" -o "$OUT/time" "$BIN" scan 127.0.78.0/24 --checks ports --ports top1000 \
    --allowed-ports 1 --timeout 1 --quiet --json "$OUT/r.json" || true
  read -r wall rss < <(tail -n 1 "$OUT/time")
  printf '  run %d: wall %5.2f s  peak RSS %6.1f MB  open: %s\n' "$i" "$wall" "$(echo "$rss / 1024" | bc -l)" \
    "$(jq -r '[.results[] | select(.rule_id=="ports.unexpected_open") | .evidence.ports[]] | join(", ")' "$OUT/r.json")"
done
fi

if [[ " $SECTIONS " == *" ident "* ]]; then
IDENT=127.0.79.1
command -v hyperfine >/dev/null || { echo "hyperfine missing"; exit 1; }
# Greetings of the services that speak first.
python3 - "$IDENT" > "$OUT/greeters.log" 2>&1 <<'PY' &
import selectors, socket, struct, sys
ip = sys.argv[1]
mysql_payload = b"\x0a" + b"8.0.36\x00" + struct.pack("<I", 8) + b"abcdefgh\x00" + b"\xff\xf7\x21\x02\x00\xff\x81\x15" + b"\x00" * 10 + b"ijklmnopqrst\x00" + b"mysql_native_password\x00"
greet = {
    22: b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    21: b"220 (vsFTPd 3.0.3)\r\n",
    3306: struct.pack("<I", len(mysql_payload))[:3] + b"\x00" + mysql_payload,
}
sel = selectors.DefaultSelector()
for port in greet:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port)); s.listen(128); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, port)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept(); c.sendall(greet[key.data]); c.close()
        except OSError:
            pass
PY
GREETERS=$!
# redis-server, nginx (HTTP and HTTPS), PostgreSQL: real programs on their own ports.
redis-server --bind "$IDENT" --port 6379 --save '' --appendonly no --daemonize no > "$OUT/redis.log" 2>&1 &
REDIS=$!
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$OUT/key.pem" -out "$OUT/cert.pem" -days 30 \
  -subj "/CN=bench.test" -addext "subjectAltName=IP:$IDENT" >/dev/null 2>&1
mkdir -p "$OUT/nginx"
cat > "$OUT/nginx.conf" <<NGX
daemon off; worker_processes 1; pid $OUT/nginx.pid; error_log $OUT/nginx/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $OUT/nginx; proxy_temp_path $OUT/nginx;
  fastcgi_temp_path $OUT/nginx; uwsgi_temp_path $OUT/nginx; scgi_temp_path $OUT/nginx;
  server { listen $IDENT:80; location / { return 200 "bench\n"; } }
  server { listen $IDENT:443 ssl; ssl_certificate $OUT/cert.pem; ssl_certificate_key $OUT/key.pem;
           location / { return 200 "bench\n"; } } }
NGX
nginx -c "$OUT/nginx.conf" > "$OUT/nginx.out" 2>&1 &
NGINX=$!
PGDATA="$OUT/pg"; mkdir -p "$PGDATA"; chown postgres "$PGDATA" "$OUT"
su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/initdb -D $PGDATA -A trust" > "$OUT/initdb.log" 2>&1
su postgres -s /bin/sh -c "exec /usr/lib/postgresql/15/bin/postgres -D $PGDATA -h $IDENT -p 5432 -k $PGDATA" > "$OUT/pg.log" 2>&1 &
PG=$!
trap 'kill $LISTENERS $GREETERS $REDIS $NGINX 2>/dev/null; pkill -P $PG 2>/dev/null; kill $PG 2>/dev/null; sleep 0.5; rm -rf "$OUT"' EXIT
for _ in $(seq 1 100); do
  n=$(ss -ltnH "src $IDENT" | wc -l); [ "$n" -ge 7 ] && break; sleep 0.1
done
echo "services on $IDENT: $(ss -ltnH "src $IDENT" | awk '{print $4}' | sed 's/.*://' | sort -n | tr '\n' ' ')"
# Ports other programs of this machine listen on for every address (0.0.0.0) are not this
# host's services: they are left out of the port range of all three tools alike.
extra=$(ss -ltnH | awk '{print $4}' | grep -E '^(0\.0\.0\.0|\*):' | sed 's/.*://' | sort -n -u | tr '\n' ' ')
range=$(python3 -c 'import sys
skip = sorted(int(p) for p in sys.argv[1:])
out, lo = [], 1
for p in skip + [65536]:
    if p > lo: out.append(f"{lo}-{p-1}" if p - 1 > lo else str(lo))
    lo = p + 1
print(",".join(out))' $extra)
[ -n "$extra" ] && echo "left out of the range (other programs on 0.0.0.0): $extra"
"$BIN" scan "$IDENT" --checks ports --ports "$range" --allowed-ports 1 --timeout 1 --quiet --json "$OUT/i.json" || true
names=$(jq -r '.results[] | select(.rule_id=="ports.unexpected_open") | .evidence.ports[]' "$OUT/i.json" \
  | sed 's/^[^ ]*:\([0-9]*\) \([a-z]*\).*/\1 \2/' | sort -n | tr '\n' ',')
want="21 ftp,22 ssh,80 http,443 tls,3306 mysql,5432 postgresql,6379 redis,"
echo "secgate's services: $names"
[ "$names" = "$want" ] && echo "  identical service names: yes" || echo "  identical service names: NO (want $want)"
hyperfine -N -i --warmup 1 --runs "$RUNS" --export-json "$OUT/h.json" \
  -n secgate "$BIN scan $IDENT --checks ports --ports $range --allowed-ports 1 --timeout 1 --quiet --json $OUT/h-s.json" \
  -n nmap "nmap -sT -p $range -T4 $IDENT -oG $OUT/h-n.gnmap" \
  -n nmap-sV "nmap -sT -sV -p $range -T4 $IDENT -oG $OUT/h-v.gnmap" 2>&1 | grep -v '^ *$' || true
mean() { jq -r --arg n "$1" '.results[] | select(.command==$n) | .mean' "$OUT/h.json"; }
s=$(mean secgate); n=$(mean nmap); v=$(mean nmap-sV)
printf '  secgate / nmap -sT -p- -T4    = %.3f (goal < 0.5)\n' "$(echo "$s / $n" | bc -l)"
printf '  secgate / nmap -sT -sV -p-    = %.4f (goal < %.4f = 1/12)\n' "$(echo "$s / $v" | bc -l)" "$(echo "1 / 12" | bc -l)"
echo "  nmap -sV's services: $(grep -o '[0-9]*/open/tcp//[^/]*' "$OUT/h-v.gnmap" | sed 's|/open/tcp//| |' | tr '\n' ',')"
fi
