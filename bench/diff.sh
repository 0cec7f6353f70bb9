#!/usr/bin/env bash
# Benchmark: `secgate diff` of a report of N results (default 10,000) against itself and against
# a copy with a tenth of its findings changed. The report is generated (python3) from the rule
# catalogue: 200 targets, every result failed with 1-3 findings, real fingerprints' shape.
# Reports wall time and peak RSS over RUNS runs (default 5). Goal (issue 10): under 1 s.
#
#   bench/diff.sh [N] [RUNS]          BIN=target/debug/secgate bench/diff.sh  (skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
RUNS=${2:-5}
if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=target/release/secgate
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$BIN" rules --json > "$OUT/rules.json"
python3 - "$N" "$OUT" <<'PY'
import hashlib, json, sys
n, out = int(sys.argv[1]), sys.argv[2]
rules = json.load(open(f"{out}/rules.json"))
def fp(*parts):
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
results = []
for i in range(n):
    rule = rules[i % len(rules)]
    target = f"https://site{i // len(rules)}.test:8443/"
    findings = [{
        "subject": {"kind": "port", "key": f"tcp/{1000 + k}"},
        "message": f"finding {k} of {rule['id']}",
        "evidence": {"ports": [f"tcp/{1000 + k}", "ssh"], "n": k},
        "fingerprint": fp(rule["id"], target, str(k)),
        "suppression": None,
    } for k in range(1 + i % 3)]
    results.append({
        "rule_id": rule["id"], "family": rule["family"], "target": target, "status": "fail",
        "severity": rule["severity"], "title": rule["title"], "message": "m", "evidence": {},
        "fingerprint": fp(rule["id"], target), "findings": findings,
    })
report = {"schema_version": 1, "schema_minor": 2, "results": results}
json.dump(report, open(f"{out}/a.json", "w"))
# A tenth of the findings change identity (new in b, fixed from a), another tenth their evidence.
for i, r in enumerate(results):
    if i % 10 == 0:
        r["findings"][0]["fingerprint"] = fp("changed", str(i))
    elif i % 10 == 1:
        r["findings"][0]["evidence"]["n"] = -1
json.dump(report, open(f"{out}/b.json", "w"))
print(f"{n} results, {sum(len(r['findings']) for r in results)} findings, "
      f"{__import__('os').path.getsize(f'{out}/a.json') // 1024} KiB")
PY
echo "secgate $("$BIN" --version | cut -d' ' -f2) ($BIN), $(nproc) cores"
for pair in "a.json a.json" "a.json b.json"; do
  set -- $pair
  for i in $(seq 1 "$RUNS"); do
    code=0
    /usr/bin/time -f "%e %M %U %S" -o "$OUT/time" "$BIN" diff "$OUT/$1" "$OUT/$2" --fail-on info \
      --json "$OUT/d.json" >/dev/null || code=$?
    read -r wall rss user sys < <(tail -n 1 "$OUT/time")
    printf 'diff %s %s run %d: wall %5.2f s  cpu %5.2f s  peak RSS %6.1f MB  exit %d  %s\n' "$1" "$2" "$i" \
      "$wall" "$(echo "$user + $sys" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$code" "$(jq -c .counts "$OUT/d.json")"
  done
done
