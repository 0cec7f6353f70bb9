//! Sharding and merging against a real loopback lab: the merged report of N shards equals one
//! unsharded scan of the same plan (N = 1, 3, 7), and every bad merge input is refused with
//! one line and exit 3.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use secgate::lab::{self, Fake, LabServer, Pki, Site};
use serde_json::Value;
use support::{bin, secgate, secgate_env};

/// A lab of four HTTPS sites (one CA), two hosts with services, and a /30 range with one
/// service: URLs, hosts and a range.
struct Lab {
    _servers: Vec<LabServer>,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

async fn lab(base: &str) -> Lab {
    let pki = Pki::new().unwrap();
    let names = ["shop.test", "api.test", "old.test", "admin.test"];
    let sites = [
        Site::hardened(),
        Site::with_headers(&[("x-content-type-options", "nosniff")]),
        Site::legacy(),
        Site::with_headers(&[]),
    ];
    let tls = pki.server_config(&names).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let mut servers = Vec::new();
    let mut args: Vec<String> = vec!["scan".into()];
    let mut flags: Vec<String> = Vec::new();
    for (n, (name, site)) in names.iter().zip(sites).enumerate() {
        let ip = format!("{base}.{}", n + 1);
        let s = lab::serve(
            lab::bind(&format!("{ip}:0")).await.unwrap(),
            site.router(),
            Some(tls.clone()),
        );
        let port = s.addr.port();
        args.push(format!("https://{name}:{port}/"));
        flags.extend(["--resolve".into(), format!("{name}:{port}:{ip}")]);
        servers.push(s);
    }
    // Two hosts with services on the swept ports.
    for (n, port) in [(10, 2201u16), (11, 2202)] {
        let ip = format!("{base}.{n}");
        servers.push(lab::serve_fake(
            lab::bind(&format!("{ip}:{port}")).await.unwrap(),
            Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
        ));
        args.push(ip);
    }
    // A range of four addresses, one answering.
    servers.push(lab::serve_fake(
        lab::bind(&format!("{base}.21:2203")).await.unwrap(),
        Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
    ));
    args.push(format!("{base}.20/30"));
    args.extend(flags);
    args.extend(
        [
            "--ca-file",
            ca.to_str().unwrap(),
            "--timeout",
            "2",
            "--ports",
            "2201,2202,2203,2204",
            "--http-port",
            "9",
        ]
        .map(String::from),
    );
    Lab {
        _servers: servers,
        args,
        _dir: dir,
    }
}

impl Lab {
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut a = self.args.clone();
        a.extend(extra.iter().map(|s| (*s).to_string()));
        a
    }

    fn run(&self, extra: &[&str]) -> support::Run {
        let a = self.args(extra);
        secgate(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Run shards 1..=n into `dir`, returning their paths.
    fn shards(&self, n: u32, dir: &Path) -> Vec<PathBuf> {
        self.shards_with(n, dir, &[])
    }

    /// [`Lab::shards`] with extra scan flags.
    fn shards_with(&self, n: u32, dir: &Path, extra: &[&str]) -> Vec<PathBuf> {
        (1..=n)
            .map(|i| {
                let path = dir.join(format!("shard-{i}.json"));
                let spec = format!("{i}/{n}");
                let mut flags = vec!["--shard", &spec, "--json", path.to_str().unwrap(), "-q"];
                flags.extend(extra);
                let run = self.run(&flags);
                assert_eq!(run.code, 0, "shard {spec}: {}", run.stderr);
                path
            })
            .collect()
    }
}

fn merge(files: &[PathBuf], out: &Path) -> support::Run {
    let mut args: Vec<&str> = vec!["merge", "-q", "--json", out.to_str().unwrap()];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    let mut run = secgate(&args);
    run.json = std::fs::read_to_string(out)
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap());
    run
}

/// What must be equal between a merged and an unsharded report: everything but timings
/// (started/finished, durations) and request counts.
fn essence(report: &Value) -> Value {
    let mut r = report.clone();
    let o = r.as_object_mut().unwrap();
    for k in [
        "started_at",
        "finished_at",
        "duration_ms",
        "plan_id",
        "shard",
    ] {
        o.remove(k);
    }
    for t in o["targets"].as_array_mut().unwrap() {
        let t = t.as_object_mut().unwrap();
        t.remove("requests");
        t.remove("backoff");
    }
    r
}

fn validate_report(instance: &Value) {
    let schema = read(&support::repo_path(
        "reports/schema/secgate-report.v1.schema.json",
    ));
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema:\n{}", errors.join("\n"));
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_shards_equal_one_unsharded_scan() {
    let lab = lab("127.0.71").await;
    let whole = lab.run(&[]);
    assert_eq!(whole.code, 1, "the lab fails the gate: {}", whole.stderr);
    let whole_json = whole.json().clone();
    let results = whole_json["results"].as_array().unwrap();
    let targets: BTreeSet<&str> = results
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets.len(),
        7,
        "URLs, hosts and the range all have results: {targets:?}"
    );
    assert!(whole_json["summary"]["counts"].is_object());

    let dir = tempfile::tempdir().unwrap();
    let mut plan_ids = BTreeSet::new();
    for n in [1u32, 3, 7] {
        let sub = dir.path().join(format!("n{n}"));
        std::fs::create_dir(&sub).unwrap();
        let files = lab.shards(n, &sub);
        // Every job in exactly one shard; shards are balanced by cost, so none is empty here.
        let mut jobs = Vec::new();
        for f in &files {
            let s = read(f);
            assert_eq!(s["shard"]["count"], n);
            plan_ids.insert(s["plan_id"].as_str().unwrap().to_string());
            jobs.extend(s["shard"]["jobs"].as_array().unwrap().iter().cloned());
            validate_report(&s);
        }
        let total = read(&files[0])["shard"]["plan_jobs"].as_u64().unwrap();
        let distinct: BTreeSet<String> = jobs.iter().map(|j| j.to_string()).collect();
        assert_eq!(jobs.len() as u64, total, "n={n}");
        assert_eq!(distinct.len(), jobs.len(), "n={n}: a job in two shards");

        let out = sub.join("merged.json");
        let merged = merge(&files, &out);
        assert_eq!(merged.code, whole.code, "n={n}: {}", merged.stderr);
        let m = merged.json();
        validate_report(m);
        assert_eq!(
            essence(m),
            essence(&whole_json),
            "n={n}: merged report differs from the unsharded scan"
        );
    }
    assert_eq!(plan_ids.len(), 1, "one plan, whatever the shard count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_exits_0_unless_asked_to_gate() {
    let lab = lab("127.0.72").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.json");
    let a = lab.args(&["--json", out.to_str().unwrap(), "-q"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let run = secgate_env(&a, &[("SECGATE_SHARD", "1/1")]);
    assert_eq!(
        run.code, 0,
        "a shard that ran exits 0 though its findings fail the gate"
    );
    assert_eq!(read(&out)["shard"]["index"], 1);
    let gated = lab.run(&["--shard", "1/1", "--gate", "-q"]);
    assert_eq!(gated.code, 1, "--gate applies the gate to the shard");
    // Kubernetes: 0-based JOB_COMPLETION_INDEX with --shards; GitLab: 1-based.
    let out2 = dir.path().join("k.json");
    let a = lab.args(&[
        "--shard-from-env",
        "--shards",
        "2",
        "--json",
        out2.to_str().unwrap(),
        "-q",
    ]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let k8s = secgate_env(&a, &[("JOB_COMPLETION_INDEX", "1")]);
    assert_eq!(k8s.code, 0, "{}", k8s.stderr);
    assert_eq!(
        read(&out2)["shard"],
        serde_json::json!({
            "index": 2, "count": 2,
            "plan_jobs": read(&out2)["shard"]["plan_jobs"],
            "jobs": read(&out2)["shard"]["jobs"],
        })
    );
}

#[test]
fn bad_shard_arguments_are_usage_errors_naming_the_flag() {
    for (args, env, flag) in [
        (vec!["--shard", "0/3"], vec![], "--shard"),
        (vec!["--shard", "4/3"], vec![], "--shard"),
        (vec!["--shard", "x"], vec![], "--shard"),
        (
            vec!["--shard-from-env"],
            vec![("JOB_COMPLETION_INDEX", "0")],
            "--shards",
        ),
        (vec!["--shard-from-env"], vec![], "--shard-from-env"),
        (vec!["--shards", "3"], vec![], "--shards"),
        (vec!["--gate"], vec![], "--gate"),
        (vec![], vec![("SECGATE_SHARD", "9/2")], "SECGATE_SHARD"),
    ] {
        let mut a = vec!["scan", "127.0.0.1"];
        a.extend(&args);
        let run = secgate_env(&a, &env);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(flag), "{args:?}: {}", run.stderr);
    }
}

/// Run `merge FILES` and return (exit code, the one stderr line).
fn merge_err(files: &[&Path]) -> (i32, String) {
    let out = bin()
        .arg("merge")
        .arg("-q")
        .args(files)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    eprintln!("merge: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_merge_input_is_refused_with_one_line() {
    let lab = lab("127.0.73").await;
    let dir = tempfile::tempdir().unwrap();
    let files = lab.shards(3, dir.path());
    let (a, b, c) = (&files[0], &files[1], &files[2]);
    let p = |name: &str| dir.path().join(name);

    let (code, line) = merge_err(&[a, c]);
    assert_eq!(code, 3);
    assert!(line.contains("shard 2/3 is missing"), "{line}");

    let (code, line) = merge_err(&[a, b, b, c]);
    assert_eq!(code, 3);
    assert!(
        line.contains("given twice") && line.contains("shard-2.json"),
        "{line}"
    );

    // Another plan: the same lab with another policy.
    let other = p("other.json");
    let run = lab.run(&[
        "--shard",
        "2/3",
        "--min-score",
        "50",
        "--json",
        other.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (code, line) = merge_err(&[a, &other, c]);
    assert_eq!(code, 3);
    assert!(
        line.contains("other.json") && line.contains("another plan"),
        "{line}"
    );

    // Another policy that the plan's identity does not hash: the merge gates with one.
    let lax = p("lax.json");
    let run = lab.run(&[
        "--shard",
        "2/3",
        "--max-high",
        "50",
        "--json",
        lax.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (code, line) = merge_err(&[a, &lax, c]);
    assert_eq!(code, 3);
    assert!(
        line.contains("lax.json") && line.contains("another policy"),
        "{line}"
    );

    // Truncated JSON.
    let text = std::fs::read_to_string(b).unwrap();
    std::fs::write(p("trunc.json"), &text[..text.len() / 2]).unwrap();
    let (code, line) = merge_err(&[a, &p("trunc.json"), c]);
    assert_eq!(code, 3);
    assert!(
        line.contains("trunc.json") && line.contains("truncated"),
        "{line}"
    );

    // Incomplete (interrupted) shard.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["complete"] = Value::Bool(false);
    std::fs::write(p("cut.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("cut.json"), c]);
    assert_eq!(code, 3);
    assert!(
        line.contains("cut.json") && line.contains("incomplete"),
        "{line}"
    );

    // A job dropped from a shard's list (with its results): the plan's jobs do not add up.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let job = v["shard"]["jobs"].as_array_mut().unwrap().pop().unwrap();
    let results = v["results"].as_array_mut().unwrap();
    results.retain(|r| !(r["target"] == job["target"] && r["family"] == job["family"]));
    std::fs::write(p("short.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("short.json"), c]);
    assert_eq!(code, 3);
    assert!(line.contains("jobs"), "{line}");

    // A result copied from another shard: not this shard's job (and a duplicate).
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let foreign = read(a)["results"][0].clone();
    v["results"].as_array_mut().unwrap().push(foreign);
    std::fs::write(p("dup.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("dup.json"), c]);
    assert_eq!(code, 3);
    assert!(
        line.contains("dup.json") && line.contains("not one of the shard's jobs"),
        "{line}"
    );

    // A result duplicated inside its own shard.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let again = v["results"][0].clone();
    v["results"].as_array_mut().unwrap().push(again);
    std::fs::write(p("twice.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("twice.json"), c]);
    assert_eq!(code, 3);
    assert!(line.contains("duplicate result"), "{line}");

    // A tampered fingerprint, an unknown rule, an ordinary (unsharded) report, garbage.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["results"][0]["fingerprint"] = Value::String("00".into());
    std::fs::write(p("fp.json"), v.to_string()).unwrap();
    assert_eq!(merge_err(&[a, &p("fp.json"), c]).0, 3);
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["results"][0]["rule_id"] = Value::String("evil.rule".into());
    std::fs::write(p("rule.json"), v.to_string()).unwrap();
    assert!(
        merge_err(&[a, &p("rule.json"), c])
            .1
            .contains("unknown rule")
    );
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("shard");
    std::fs::write(p("plain.json"), v.to_string()).unwrap();
    assert!(
        merge_err(&[&p("plain.json")])
            .1
            .contains("not a shard report")
    );
    std::fs::write(p("bin.json"), [0xffu8, 0, 1, 2]).unwrap();
    assert_eq!(merge_err(&[&p("bin.json")]).0, 3);

    // And the good set still merges (the gate fails on the lab's findings).
    let out = p("merged.json");
    assert_eq!(merge(&files, &out).code, 1);
    // The JSON report streamed from the shard files (only JSON asked for) is byte for byte
    // the one written from the results in memory (another format asked for too).
    let (both, junit) = (p("both.json"), p("merged.xml"));
    let run = bin()
        .args(["merge", "-q", "--json", both.to_str().unwrap()])
        .arg(format!("--report=junit={}", junit.to_str().unwrap()))
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&both).unwrap(),
        "streamed and in-memory merged reports differ"
    );
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<testsuite")
    );
    // To standard output as well, with the verdict on standard error.
    let run = bin()
        .args(["merge", "--json", "-"])
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stdout, std::fs::read(&out).unwrap());
    assert!(String::from_utf8_lossy(&run.stderr).contains("Gate FAILED"));
    // A file that does not exist is a usage error.
    let (code, line) = merge_err(&[a, &p("nope.json"), c]);
    assert_eq!(code, 2, "{line}");
}

/// What each shard's triage suppressed stays suppressed in the merge: the merged gate and
/// counts are those of one scan with the same suppressions file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressions_survive_the_merge() {
    let lab = lab("127.0.74").await;
    let dir = tempfile::tempdir().unwrap();
    let sup = dir.path().join("suppressions.toml");
    let expires = (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string();
    std::fs::write(
        &sup,
        format!(
            "[[suppress]]\nrule = \"ports.unexpected_open\"\ntarget = \"*\"\nreason = \"bastion SSH on the lab\"\nexpires = \"{expires}\"\n"
        ),
    )
    .unwrap();
    let flags = ["--suppressions", sup.to_str().unwrap()];
    let whole = lab.run(&flags);
    let whole_json = whole.json().clone();
    assert!(
        whole_json["summary"]["results"]["suppressed"]
            .as_u64()
            .unwrap()
            >= 2,
        "{}",
        whole_json["summary"]
    );
    let files = lab.shards_with(3, dir.path(), &flags);
    let merged = merge(&files, &dir.path().join("merged.json"));
    assert_eq!(merged.code, whole.code, "{}", merged.stderr);
    let m = merged.json();
    assert_eq!(m["summary"]["results"], whole_json["summary"]["results"]);
    assert_eq!(m["summary"]["counts"], whole_json["summary"]["counts"]);
    assert_eq!(m["summary"]["score"], whole_json["summary"]["score"]);
    let open = |r: &Value| {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["rule_id"] == "ports.unexpected_open" && o["status"] == "fail")
            .all(|o| o["suppressed"] == true)
    };
    assert!(
        open(m),
        "merged: every unexpected_open result stays suppressed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_under_a_profile_merge_like_one_scan_and_views_must_agree() {
    let lab = lab("127.0.76").await;
    // `strict` raises severities: the merge checks them against the profile, not the catalogue.
    let whole = lab.run(&["--profile", "strict", "--compliance", "pci-dss"]);
    assert_eq!(whole.code, 1, "{}", whole.stderr);
    let whole_json = whole.json().clone();
    assert_eq!(whole_json["policy"]["profile"]["name"], "strict");
    let dir = tempfile::tempdir().unwrap();
    let files = lab.shards_with(
        3,
        dir.path(),
        &["--profile", "strict", "--compliance", "pci-dss"],
    );
    let out = dir.path().join("merged.json");
    let merged = merge(&files, &out);
    assert_eq!(merged.code, whole.code, "{}", merged.stderr);
    assert_eq!(essence(merged.json()), essence(&whole_json));

    // One shard run without the compliance view: refused, in one line, whatever the order.
    let odd = dir.path().join("odd");
    std::fs::create_dir(&odd).unwrap();
    let plain = lab.shards_with(3, &odd, &["--profile", "strict"]);
    let mixed = [plain[0].clone(), files[1].clone(), files[2].clone()];
    let run = merge(&mixed, &dir.path().join("mixed.json"));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("other compliance views") && run.stderr.lines().count() == 1,
        "{}",
        run.stderr
    );
}

/// A /26 range (64 addresses, otherwise unused) with real services on three of them, one an
/// HTTP site the sweep chains to the headers family, and one HTTPS URL beside it: the range's
/// sweep is by far the biggest job, so a sharded scan cuts it into address slices.
struct RangeLab {
    _servers: Vec<LabServer>,
    args: Vec<String>,
}

const RANGE_PORTS: &str = "23301-23304";

async fn range_lab(base: &str) -> RangeLab {
    let mut servers = Vec::new();
    for (host, port) in [(5, 23301u16), (40, 23302)] {
        servers.push(lab::serve_fake(
            lab::bind(&format!("{base}.{host}:{port}")).await.unwrap(),
            Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
        ));
    }
    servers.push(lab::serve(
        lab::bind(&format!("{base}.20:23304")).await.unwrap(),
        Site::with_headers(&[]).router(),
        None,
    ));
    let site = lab::serve(
        lab::bind(&format!("{base}.70:0")).await.unwrap(),
        Site::with_headers(&[]).router(),
        None,
    );
    let url = format!("http://{}/", site.addr);
    servers.push(site);
    let args = [
        "scan",
        &format!("{base}.0/26"),
        &url,
        "--timeout",
        "2",
        "--ports",
        RANGE_PORTS,
        "--http-port",
        "9",
    ]
    .map(String::from)
    .to_vec();
    RangeLab {
        _servers: servers,
        args,
    }
}

impl RangeLab {
    fn run(&self, extra: &[&str]) -> support::Run {
        let mut a: Vec<&str> = self.args.iter().map(String::as_str).collect();
        a.extend(extra);
        secgate(&a)
    }

    /// The same lab scanned over another port list: another plan.
    fn with_ports(&self, ports: &str) -> RangeLab {
        let mut args = self.args.clone();
        if let Some(n) = args.iter().position(|a| a == RANGE_PORTS) {
            args[n] = ports.to_string();
        }
        RangeLab {
            _servers: Vec::new(),
            args,
        }
    }

    fn shards(&self, n: u32, dir: &Path, extra: &[&str]) -> Vec<PathBuf> {
        (1..=n)
            .map(|i| {
                let path = dir.join(format!("shard-{i}.json"));
                let spec = format!("{i}/{n}");
                let mut flags = vec!["--shard", &spec, "--json", path.to_str().unwrap(), "-q"];
                flags.extend(extra);
                let run = self.run(&flags);
                assert_eq!(run.code, 0, "shard {spec}: {}", run.stderr);
                path
            })
            .collect()
    }
}

/// The slice jobs of a set of shard files: (shard, slice object), of every target.
fn slice_jobs(files: &[PathBuf]) -> Vec<(usize, Value)> {
    slice_jobs_of(files, None)
}

/// The slice jobs of one target (every target: `None`).
fn slice_jobs_of(files: &[PathBuf], target: Option<&str>) -> Vec<(usize, Value)> {
    let mut out = Vec::new();
    for (n, f) in files.iter().enumerate() {
        for j in read(f)["shard"]["jobs"].as_array().unwrap() {
            if let Some(s) = j.get("slice")
                && target.is_none_or(|t| j["target"] == t)
            {
                out.push((n, s.clone()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_is_swept_in_address_slices_and_merges_like_one_scan() {
    let base = "127.0.133";
    let lab = range_lab(base).await;
    let whole = lab.run(&[]);
    let whole_json = whole.json().clone();
    let range = format!("{base}.0/26");
    let open: Vec<&str> = whole_json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"] == range.as_str() && r["rule_id"] == "ports.unexpected_open")
        .flat_map(|r| r["findings"].as_array().unwrap())
        .map(|f| f["subject"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(open.len(), 3, "three services in the range: {open:?}");
    let derived: Vec<&Value> = whole_json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["parent"] == range.as_str())
        .collect();
    assert_eq!(derived.len(), 1, "the HTTP site in the range is chained");

    let dir = tempfile::tempdir().unwrap();
    for n in [1u32, 3, 7] {
        let sub = dir.path().join(format!("n{n}"));
        std::fs::create_dir(&sub).unwrap();
        let files = lab.shards(n, &sub, &[]);
        let slices = slice_jobs(&files);
        if n == 1 {
            assert!(
                slices.is_empty(),
                "one shard: nothing to balance, nothing cut"
            );
        } else {
            // At least 4 slices per shard's share were asked for; each address block once.
            let count = slices[0].1["count"].as_u64().unwrap();
            assert!(count >= u64::from(n) * 2, "n={n}: {count} slices");
            assert_eq!(
                slices.len() as u64,
                count,
                "n={n}: every slice in one shard"
            );
            let mut covered = vec![0u32; 64];
            let mut per_shard = vec![0u64; n as usize];
            for (shard, s) in &slices {
                let a = s["addresses"].as_array().unwrap();
                let (lo, hi) = (a[0].as_u64().unwrap(), a[1].as_u64().unwrap());
                assert_eq!(s["ports"], serde_json::json!([0, 4]));
                for x in lo..hi {
                    covered[x as usize] += 1;
                }
                per_shard[*shard] += hi - lo;
            }
            assert!(covered.iter().all(|c| *c == 1), "n={n}: {covered:?}");
            // Balanced: no shard sweeps more than its share of the range plus one slice.
            let slice_size = 64 / count;
            for l in &per_shard {
                assert!(*l <= 64 / u64::from(n) + slice_size, "n={n}: {per_shard:?}");
            }
            // The sweeps' own accounting: every (address, port) pair swept once in all.
            let mut pairs = 0;
            for f in &files {
                for s in read(f)["slices"].as_array().into_iter().flatten() {
                    let o = &s["observation"];
                    let settled = o["open"].as_array().unwrap().len() as u64
                        + o["closed"].as_u64().unwrap()
                        + o["filtered"].as_u64().unwrap();
                    assert_eq!(settled, o["jobs"].as_u64().unwrap(), "{s}");
                    pairs += settled;
                }
                // A sliced range has no ports results of its own in a shard.
                let own = read(f)["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["target"] == range.as_str() && r["family"] == "ports");
                assert!(!own, "n={n}: a shard judged a slice on its own");
            }
            assert_eq!(pairs, 64 * 4, "n={n}");
        }
        let merged = merge(&files, &sub.join("merged.json"));
        assert_eq!(merged.code, whole.code, "n={n}: {}", merged.stderr);
        let m = merged.json();
        validate_report(m);
        for f in &files {
            validate_report(&read(f));
        }
        assert_eq!(
            essence(m),
            essence(&whole_json),
            "n={n}: merged report differs from the unsharded scan"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressions_of_a_sliced_range_survive_the_merge() {
    let base = "127.0.134";
    let lab = range_lab(base).await;
    let dir = tempfile::tempdir().unwrap();
    let sup = dir.path().join("suppressions.toml");
    let expires = (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string();
    std::fs::write(
        &sup,
        format!(
            "[[suppress]]\nrule = \"ports.unexpected_open\"\ntarget = \"{base}.0/26\"\nsubject = \"{base}.5/tcp/23301\"\nreason = \"lab bastion\"\nexpires = \"{expires}\"\n"
        ),
    )
    .unwrap();
    let flags = ["--suppressions", sup.to_str().unwrap()];
    let whole = lab.run(&flags);
    let whole_json = whole.json().clone();
    let files = lab.shards(3, dir.path(), &flags);
    assert!(!slice_jobs(&files).is_empty());
    let merged = merge(&files, &dir.path().join("merged.json"));
    assert_eq!(merged.code, whole.code, "{}", merged.stderr);
    let m = merged.json();
    assert_eq!(m["summary"], whole_json["summary"]);
    assert_eq!(m["results"], whole_json["results"]);
    let marked = m["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap())
        .filter(|f| f["suppression"].is_object())
        .count();
    assert_eq!(marked, 1, "the one suppressed finding stays suppressed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_slices_are_refused_with_one_line() {
    let base = "127.0.135";
    let lab = range_lab(base).await;
    let dir = tempfile::tempdir().unwrap();
    let files = lab.shards(3, dir.path(), &[]);
    let p = |name: &str| dir.path().join(name);
    let (a, b, c) = (&files[0], &files[1], &files[2]);
    let text = std::fs::read_to_string(b).unwrap();
    let sliced = |v: &Value| -> (usize, Value) {
        let jobs = v["shard"]["jobs"].as_array().unwrap();
        let n = jobs.iter().position(|j| j.get("slice").is_some()).unwrap();
        (n, jobs[n].clone())
    };

    // A missing slice: its job and its observation dropped from the shard.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let (n, job) = sliced(&v);
    v["shard"]["jobs"].as_array_mut().unwrap().remove(n);
    v["slices"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["slice"] != job["slice"]);
    std::fs::write(p("missing.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("missing.json"), c]);
    assert_eq!(code, 3);
    let label = format!("slice {}/{}", job["slice"]["index"], job["slice"]["count"]);
    assert!(line.contains(&label) && line.contains("missing"), "{line}");

    // A duplicated slice: shard 1's first slice (job and observation) also in shard 2.
    let first: Value = read(a);
    let (_, dup_job) = sliced(&first);
    let dup_obs = first["slices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slice"] == dup_job["slice"])
        .unwrap()
        .clone();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["shard"]["jobs"]
        .as_array_mut()
        .unwrap()
        .push(dup_job.clone());
    v["slices"].as_array_mut().unwrap().push(dup_obs.clone());
    std::fs::write(p("dup.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("dup.json"), c]);
    assert_eq!(code, 3);
    assert!(
        line.contains("dup.json") && line.contains("also in"),
        "{line}"
    );

    // A slice of another plan (another port list), put in place of one of this plan's.
    let odir = p("other");
    std::fs::create_dir(&odir).unwrap();
    let other = lab.with_ports("23301-23305").shards(3, &odir, &[]);
    let o2 = read(&other[1]);
    let (_, foreign_job) = sliced(&o2);
    let foreign_obs = o2["slices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slice"] == foreign_job["slice"])
        .unwrap()
        .clone();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let (n, mine) = sliced(&v);
    v["shard"]["jobs"][n] = foreign_job;
    let obs = v["slices"].as_array_mut().unwrap();
    let at = obs
        .iter()
        .position(|s| s["slice"] == mine["slice"])
        .unwrap();
    obs[at] = foreign_obs;
    std::fs::write(p("foreign.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("foreign.json"), c]);
    assert_eq!(code, 3);
    assert!(
        line.contains("foreign.json") && line.contains("another plan"),
        "{line}"
    );

    // A slice whose addresses were widened to overlap its neighbour's.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let (n, _) = sliced(&v);
    let end = v["shard"]["jobs"][n]["slice"]["addresses"][1]
        .as_u64()
        .unwrap();
    v["shard"]["jobs"][n]["slice"]["addresses"][1] = (end + 1).into();
    std::fs::write(p("wide.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("wide.json"), c]);
    assert_eq!(code, 3);
    assert!(line.contains("not the slice its count names"), "{line}");

    // An observation claiming an open port outside its slice.
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let s0 = &mut v["slices"][0];
    let lo = s0["slice"]["addresses"][1].as_u64().unwrap();
    let port = serde_json::json!({
        "addr": format!("{base}.{}:23301", (lo + 1) % 64),
        "service": "ssh", "note": "x", "incomplete": false
    });
    s0["observation"]["open"].as_array_mut().unwrap().push(port);
    // One closed pair fewer, so the counts still add up: only the address gives it away.
    let closed = s0["observation"]["closed"].as_u64().unwrap();
    s0["observation"]["closed"] = (closed - 1).into();
    std::fs::write(p("outside.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("outside.json"), c]);
    assert_eq!(code, 3);
    assert!(line.contains("outside the slice"), "{line}");

    // A slice job whose observation is gone (the sweep did not finish).
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["slices"].as_array_mut().unwrap().remove(0);
    std::fs::write(p("silent.json"), v.to_string()).unwrap();
    let (code, line) = merge_err(&[a, &p("silent.json"), c]);
    assert_eq!(code, 3);
    assert!(line.contains("recorded no observation"), "{line}");

    // The good set still merges.
    assert_eq!(merge(&files, &p("merged.json")).code, lab.run(&[]).code);
}

/// A single host swept over a long port list (over 1,024 ports, as `--ports all` is): with
/// shards, its port list is cut into runs, each swept by one shard, and the merge judges the
/// joined runs once. (Not `all` itself: on a shared machine, other processes listen on the
/// wildcard address somewhere in 1-65535; this list stays below the ephemeral ports.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_port_list_is_cut_into_port_runs_and_merges_like_one_scan() {
    let ip = "127.0.136.1";
    let mut servers = Vec::new();
    for port in [21001u16, 23311] {
        servers.push(lab::serve_fake(
            lab::bind(&format!("{ip}:{port}")).await.unwrap(),
            Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
        ));
    }
    let site = lab::serve(
        lab::bind("127.0.136.2:0").await.unwrap(),
        Site::with_headers(&[]).router(),
        None,
    );
    let url = format!("http://{}/", site.addr);
    servers.push(site);
    let lab = RangeLab {
        _servers: servers,
        args: [
            "scan",
            ip,
            &url,
            "--checks",
            "ports,headers",
            "--timeout",
            "2",
            "--ports",
            "21000-23400",
            "--http-port",
            "9",
        ]
        .map(String::from)
        .to_vec(),
    };
    let whole = lab.run(&[]);
    let whole_json = whole.json().clone();
    let open = whole_json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == ip && r["rule_id"] == "ports.unexpected_open")
        .unwrap();
    assert_eq!(open["findings"].as_array().unwrap().len(), 2, "{open}");
    let dir = tempfile::tempdir().unwrap();
    let files = lab.shards(3, dir.path(), &[]);
    // The URL's host is swept too (a ports job of its own, sliced alike).
    let slices = slice_jobs_of(&files, Some(ip));
    assert!(slices.len() >= 6, "{} port runs", slices.len());
    let mut runs: Vec<(u64, u64)> = slices
        .iter()
        .map(|(_, s)| {
            assert_eq!(
                s["addresses"],
                serde_json::json!([0, 1]),
                "every address of the host"
            );
            (
                s["ports"][0].as_u64().unwrap(),
                s["ports"][1].as_u64().unwrap(),
            )
        })
        .collect();
    runs.sort_unstable();
    assert_eq!(runs.first().unwrap().0, 0);
    assert_eq!(runs.last().unwrap().1, 2401);
    assert!(
        runs.windows(2).all(|w| w[0].1 == w[1].0),
        "runs tile the list: {runs:?}"
    );
    let merged = merge(&files, &dir.path().join("merged.json"));
    assert_eq!(merged.code, whole.code, "{}", merged.stderr);
    assert_eq!(essence(merged.json()), essence(&whole_json));
}
