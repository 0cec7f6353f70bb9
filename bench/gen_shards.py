#!/usr/bin/env python3
"""Write SHARDS synthetic shard reports holding RESULTS results in all (headers-family
results on made-up targets), valid for `secgate merge`: catalogue ids, the fingerprints
secgate computes, disjoint jobs adding up to the plan's. For bench/merge.sh only; no
network is involved.

    gen_shards.py RULES_JSON OUT_DIR SHARDS RESULTS
"""
import hashlib
import json
import sys

rules_file, out, shards, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rules = [r for r in json.load(open(rules_file)) if r["family"] == "headers"]
per_target = len(rules)
targets = -(-total // per_target)


def fp(*parts):
    h = hashlib.sha256(b"secgate/v1\0" + b"\0".join(p.encode() for p in parts))
    return h.hexdigest()[:32]


plan_id = "0" * 31 + "1"
for s in range(1, shards + 1):
    mine = [t for t in range(targets) if t % shards == s - 1]
    with open(f"{out}/shard-{s}.json", "w") as f:
        f.write('{"schema_version":1,"schema_minor":3,"tool":{"name":"secgate","version":"bench"},')
        f.write('"started_at":"2026-12-03T08:00:00Z","finished_at":"2026-12-03T08:00:01Z",')
        f.write('"duration_ms":1000,"complete":true,"policy":{"min_score":95.0,"max_critical":0,"max_high":null,"max_medium":null,'
                '"max_low":null,"fail_on":null,"gate_on":"all","fail_on_stale":false,'
                '"allow_permanent_suppressions":false,"max_suppression_days":180},')
        f.write('"families":["headers"],"targets":[')
        f.write(",".join(
            json.dumps({"target": f"https://t{t}.test/", "address": "127.0.0.1:443",
                        "status": "scanned", "error": None, "requests": {"headers": 2}})
            for t in mine))
        f.write('],"results":[')
        first = True
        for t in mine:
            target = f"https://t{t}.test/"
            for n, r in enumerate(rules):
                if t * per_target + n >= total:
                    break
                fail = (t + n) % 5 == 0
                res = {
                    "rule_id": r["id"], "family": "headers", "target": target,
                    "status": "fail" if fail else "pass", "severity": r["severity"],
                    "title": r["title"], "message": "synthetic result for the merge benchmark",
                    "evidence": {"header": "x-bench: 1", "count": n},
                    "fingerprint": fp(r["id"], target),
                    "findings": [{"subject": {"kind": "target", "key": ""},
                                  "message": "synthetic finding",
                                  "evidence": {"header": "x-bench: 1"},
                                  "fingerprint": fp(r["id"], target)}] if fail else [],
                }
                f.write(("" if first else ",") + json.dumps(res, separators=(",", ":")))
                first = False
        f.write('],"summary":{},"plan_id":"%s","shard":' % plan_id)
        f.write(json.dumps({"index": s, "count": shards, "plan_jobs": targets,
                            "jobs": [{"index": t, "target": f"https://t{t}.test/", "family": "headers"}
                                     for t in mine]}))
        f.write("}\n")
