#!/usr/bin/env bash
# Benchmark: a full TLS audit (certificate, every protocol version, full cipher-suite
# enumeration, groups, compression, renegotiation) of one `openssl s_server` endpoint on
# loopback, by secgate and by sslyze (the peer the issue names), in the same run against the
# same endpoint. Prints both wall times (median of RUNS), the ratio, whether the two tools
# found the same accepted suites per protocol, and how many TCP connections each tool opens to
# the endpoint for one audit, counted by a relay in front of s_server (not by the tools
# themselves: one extra run of each goes through it; the timed runs go to s_server directly).
# Goals: identical sets and secgate >= 10x (issues 3 and 15); issue 15's probes may add at most
# 15 connections per endpoint.
#
#   bench/tls.sh [RUNS]
#
# sslyze is installed with pip into bench/.venv (gitignored) on first use; it is never a test
# dependency. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
command -v openssl >/dev/null || { echo "needs openssl (apt-get install openssl)"; exit 2; }
if [ ! -x bench/.venv/bin/sslyze ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q sslyze
fi
cargo build --release -q
BIN=target/release/secgate
OUT=$(mktemp -d)
SERVER=
RELAY=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; [ -n "$RELAY" ] && kill $RELAY 2>/dev/null; rm -rf "$OUT"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$OUT/key.pem" -out "$OUT/cert.pem" \
  -days 365 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# A server with many suites over TLS 1.0 to 1.3 (OpenSSL's whole list at security level 0).
openssl s_server -accept "127.0.0.1:$PORT" -cert "$OUT/cert.pem" -key "$OUT/key.pem" -quiet \
  -min_protocol TLSv1 -cipher 'ALL:@SECLEVEL=0' >/dev/null 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

# The counting relay: every TCP connection accepted on RPORT is one line in conns.log, then
# piped to s_server (both directions, until either side closes). Loopback only.
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: > "$OUT/conns.log"
python3 - "$RPORT" "$PORT" "$OUT/conns.log" 2>"$OUT/relay.err" <<'PY' &
import asyncio, sys
rport, port, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.write_eof()  # pass a half-close on
    except (ConnectionError, OSError):
        w.close()
LIVE = set()  # asyncio holds tasks weakly: keep every connection's task until it ends
async def handle(cr, cw):
    task = asyncio.current_task()
    LIVE.add(task)
    task.add_done_callback(LIVE.discard)
    with open(log, "a") as f:
        f.write("c\n")
    try:
        ur, uw = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    except (OSError, asyncio.TimeoutError):
        cw.close()
        return
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
    cw.close()
    uw.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", rport)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
RELAY=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$RPORT") 2>/dev/null && break; sleep 0.05; done
sleep 0.2
: > "$OUT/conns.log"
conns() { wc -l < "$OUT/conns.log" | tr -d ' '; }

ms() { date +%s%N | cut -b1-13; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "endpoint: openssl s_server ($(openssl version | cut -d' ' -f1-2)) on 127.0.0.1:$PORT, TLS 1.0-1.3, 'ALL:@SECLEVEL=0'"
echo "secgate $("$BIN" --version | cut -d' ' -f2) vs sslyze $(bench/.venv/bin/python -c 'from sslyze.__version__ import __version__; print(__version__)'), $RUNS runs each, $(nproc) cores"

: > "$OUT/secgate.ms"
for _ in $(seq 1 "$RUNS"); do
  t0=$(ms)
  "$BIN" scan "127.0.0.1:$PORT" --checks tls --ca-file "$OUT/cert.pem" --quiet --json "$OUT/secgate.json" || true
  echo $(( $(ms) - t0 )) >> "$OUT/secgate.ms"
done
: > "$OUT/sslyze.ms"
for _ in $(seq 1 "$RUNS"); do
  t0=$(ms)
  bench/.venv/bin/sslyze "127.0.0.1:$PORT" --quiet --json_out "$OUT/sslyze.json" \
    --certinfo --certinfo_ca_file "$OUT/cert.pem" --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 \
    --elliptic_curves --compression --reneg >/dev/null 2>&1 || true
  echo $(( $(ms) - t0 )) >> "$OUT/sslyze.ms"
done

# One audit of each through the relay, to count connections.
"$BIN" scan "127.0.0.1:$RPORT" --checks tls --ca-file "$OUT/cert.pem" --quiet --json "$OUT/relay.json" || true
sleep 0.5
S_CONNS=$(conns)
bench/.venv/bin/sslyze "127.0.0.1:$RPORT" --quiet --json_out "$OUT/relay-sslyze.json" \
  --certinfo --certinfo_ca_file "$OUT/cert.pem" --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 \
  --elliptic_curves --compression --reneg >/dev/null 2>&1 || true
sleep 0.5
P_CONNS=$(( $(conns) - S_CONNS ))

S=$(median < "$OUT/secgate.ms")
P=$(median < "$OUT/sslyze.ms")
python3 - "$OUT/secgate.json" "$OUT/sslyze.json" "$S" "$P" "$PORT" "$S_CONNS" "$P_CONNS" <<'PY'
import json, subprocess, sys
ours, theirs, s_ms, p_ms, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
s_conns, p_conns = int(sys.argv[6]), int(sys.argv[7])

def openssl_accepts(iana_name, flag):
    """Ask openssl s_client whether the server accepts one suite (the referee for suites that
    only one tool reports)."""
    names = subprocess.run(["openssl", "ciphers", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                           capture_output=True, text=True).stdout.splitlines()
    ossl = {n.split()[0]: n.split()[2] for n in names if " - " in n}
    if iana_name not in ossl:
        return None
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", flag, "-cipher",
                        ossl[iana_name] + ":@SECLEVEL=0"], input="", capture_output=True, text=True,
                       timeout=10)
    return "Cipher is " + ossl[iana_name] in r.stdout
keys = [("ssl3_suites", "ssl_3_0_cipher_suites", "SSLv3", "-ssl3"),
        ("tls1_0_suites", "tls_1_0_cipher_suites", "TLS 1.0", "-tls1"),
        ("tls1_1_suites", "tls_1_1_cipher_suites", "TLS 1.1", "-tls1_1"),
        ("tls1_2_suites", "tls_1_2_cipher_suites", "TLS 1.2", "-tls1_2"),
        ("tls1_3_suites", "tls_1_3_cipher_suites", "TLS 1.3", "-tls1_3")]
report = json.load(open(ours))
ev = next(r["evidence"] for r in report["results"] if r["rule_id"] == "tls.cipher.weak")
handshakes = ev.get("handshakes")
scan = json.load(open(theirs))["server_scan_results"][0]["scan_result"]
same = True
for ours_key, their_key, label, flag in keys:
    a = set(ev.get(ours_key) or [])
    res = scan[their_key]["result"]
    b = {c["cipher_suite"]["name"] for c in res["accepted_cipher_suites"]}
    tested = b | {c["cipher_suite"]["name"] for c in res["rejected_cipher_suites"]}
    # Compare on the suites sslyze tests; what it does not test is checked with openssl s_client.
    status = "identical" if a & tested == b else "DIFFERENT"
    same &= a & tested == b
    print(f"  {label:8} secgate {len(a):3}  sslyze {len(b):3}  {status} (sslyze tests {len(tested)} suites)")
    if a & tested != b:
        print(f"    only secgate: {sorted(a & tested - b)}\n    only sslyze:  {sorted(b - a)}")
    for extra in sorted(a - tested):
        verdict = openssl_accepts(extra, flag)
        same &= verdict is True
        print(f"    + {extra}: sslyze does not test it; openssl s_client {flag}: "
              + {True: "accepted (secgate is right)", False: "REFUSED", None: "unknown to openssl"}[verdict])
print(f"connections per audit (counted by the relay): secgate {s_conns} (its own count of suite "
      f"handshakes: {handshakes})   sslyze {p_conns}")
print(f"secgate: {s_ms} ms   sslyze: {p_ms} ms   ratio: {p_ms / max(s_ms, 1):.1f}x (median of each tool's runs)")
print("accepted-suite sets: " + ("identical on every suite sslyze tests; extra suites confirmed by openssl"
                                 if same else "DIFFERENT"))
sys.exit(0 if same else 1)
PY
