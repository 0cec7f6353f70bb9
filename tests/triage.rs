//! Triage with the real binary against real loopback servers: suppressions (globs, expiry,
//! stale entries, inconclusive results), baselines (new, unchanged, updated, fixed, absent,
//! `--gate-on new`), `secgate diff`, SARIF `suppressions` and `baselineState`, fingerprint
//! stability across a restart of the lab, and every bad suppressions file is exit 2.
//!
//! Each test has loopback addresses of its own (127.0.77.x).

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

use secgate::lab::{self, Fake, Hostile, LabServer, Site};
use serde_json::Value;
use support::{Run, repo_path, secgate};

const EXPOSED: &str = "ports.exposed_datastore";
const UNAUTH: &str = "ports.unauthenticated_service";
const UNEXPECTED: &str = "ports.unexpected_open";

/// An open Memcached (two critical findings and an unexpected port) and an SSH banner (an
/// unexpected port) on `ip`.
async fn ports_lab(ip: &str) -> Vec<LabServer> {
    vec![
        lab::serve_fake(
            bind(&format!("{ip}:41211")).await,
            Fake::Memcached { open: true },
        ),
        lab::serve_fake(
            bind(&format!("{ip}:40022")).await,
            Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
        ),
    ]
}

/// Bind `addr`, waiting for a server just dropped there to let go of it (its accept loop
/// ends on the runtime, a moment after the drop).
async fn bind(addr: &str) -> tokio::net::TcpListener {
    for _ in 0..100 {
        match lab::bind(addr).await {
            Ok(l) => return l,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    lab::bind(addr).await.unwrap()
}

fn scan_ports(ip: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "scan",
        ip,
        "--checks",
        "ports",
        "--ports",
        "40022,41211",
        "--timeout",
        "1",
    ];
    args.extend(extra);
    secgate(&args)
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

fn day(offset: i64) -> String {
    secgate::suppress::fmt_date(today() + time::Duration::days(offset))
}

/// Write `text` to `name` in a fresh temp dir.
fn file(text: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn findings(run: &Run) -> Vec<Value> {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().clone())
        .collect()
}

fn result<'a>(run: &'a Run, rule: &str, target: &str) -> &'a Value {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == rule && r["target"] == target)
        .unwrap_or_else(|| panic!("no result {rule} on {target}"))
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn validate(schema_file: &str, instance: &Value) {
    let schema = load(&repo_path(schema_file));
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{schema_file}:\n{}", errors.join("\n"));
}

const REPORT_SCHEMA: &str = "reports/schema/secgate-report.v1.schema.json";
const SARIF_SCHEMA: &str = "reports/schema/sarif-schema-2.1.0.json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suppressed_critical_passes_the_gate_and_still_shows() {
    let ip = "127.0.77.1";
    let _lab = ports_lab(ip).await;
    let baseline = scan_ports(ip, &[]);
    assert_eq!(baseline.code, 1, "{}", baseline.stdout);
    assert_eq!(baseline.json()["summary"]["counts"]["critical"], 2);

    // Globs on the rule and the subject; an exact fingerprint for the SSH port.
    let ssh = result(&baseline, UNEXPECTED, ip)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"]["key"] == "tcp/40022")
        .unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let (_d, sup) = file(
        &format!(
            r#"# accepted for now
[[suppress]]
rule = "ports.{{exposed_datastore,unauthenticated_service}}"
target = "{ip}"
subject = "tcp/412*"
reason = "cache on the lab network, firewalled upstream"
owner = "platform-team"
expires = {exp}

[[suppress]]
rule = "{UNEXPECTED}"
target = "127.0.77.*"
subject = "tcp/41211"
reason = "the cache port"
expires = "{exp}"

[[suppress]]
rule = "ports.*"
target = "{ip}"
fingerprint = "{ssh}"
reason = "bastion"
expires = {exp}
"#,
            exp = day(30)
        ),
        "suppressions.toml",
    );
    let sarif_dir = tempfile::tempdir().unwrap();
    let sarif = sarif_dir.path().join("r.sarif");
    let run = scan_ports(
        ip,
        &[
            "--suppressions",
            sup.to_str().unwrap(),
            "--verbose",
            "--sarif",
            sarif.to_str().unwrap(),
            "--report",
            &format!("junit={}", sarif_dir.path().join("r.xml").display()),
            "--report",
            &format!("markdown={}", sarif_dir.path().join("r.md").display()),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // The reports people and CI read agree: a result the team accepted is not a failure.
    let xml = std::fs::read_to_string(sarif_dir.path().join("r.xml")).unwrap();
    let junit = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let cases: Vec<&quick_junit::TestCase> = junit
        .test_suites
        .iter()
        .flat_map(|s| s.test_cases.iter())
        .collect();
    let exposed_case = cases.iter().find(|c| c.name.as_str() == EXPOSED).unwrap();
    match &exposed_case.status {
        quick_junit::TestCaseStatus::Skipped { message, .. } => assert!(
            message.as_ref().is_some_and(|m| m
                .as_str()
                .starts_with("suppressed: cache on the lab network")),
            "{message:?}"
        ),
        other => panic!("a suppressed result is skipped in JUnit, not {other:?}"),
    }
    let md = std::fs::read_to_string(sarif_dir.path().join("r.md")).unwrap();
    assert!(!md.contains(&format!("`{EXPOSED}`](")), "{md}");
    let s = &run.json()["summary"];
    assert_eq!(s["counts"]["critical"], 0);
    assert_eq!(s["results"]["suppressed"], 3);
    assert_eq!(run.json()["suppressions"]["applied"], 4);
    validate(REPORT_SCHEMA, run.json());
    // Still there, with its severity and the entry that suppressed it.
    let exposed = result(&run, EXPOSED, ip);
    assert_eq!(exposed["status"], "fail");
    assert_eq!(exposed["severity"], "critical");
    assert_eq!(exposed["suppressed"], true);
    let sup_of = &exposed["findings"][0]["suppression"];
    assert_eq!(
        sup_of["reason"],
        "cache on the lab network, firewalled upstream"
    );
    assert_eq!(sup_of["owner"], "platform-team");
    assert_eq!(sup_of["expires"], day(30));
    assert_eq!(sup_of["source"], format!("{}:2", sup.display()));
    assert_eq!(
        result(&run, UNEXPECTED, ip)["findings"][1]["suppression"]["source"],
        format!("{}:10", sup.display())
    );
    // The terminal lists them as SUPPRESSED under the target, with owner and line (verbose).
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("SUPPRESSED"))
        .collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(!run.stdout.contains("FAIL  critical"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "suppressed: cache on the lab network, firewalled upstream (expires {})",
            day(30)
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("owner: platform-team · {}:2", sup.display())),
        "{}",
        run.stdout
    );
    // SARIF leaves suppressed findings out by default (GitHub ignores `suppressions`).
    let log = load(&sarif);
    validate(SARIF_SCHEMA, &log);
    assert_eq!(log["runs"][0]["results"].as_array().unwrap().len(), 0);

    // One finding left open fails the result: the SSH port counts again.
    let (_d2, partial) = file(
        &std::fs::read_to_string(&sup)
            .unwrap()
            .replace(&ssh, &"0".repeat(32)),
        "partial.toml",
    );
    let run = scan_ports(
        ip,
        &[
            "--suppressions",
            partial.to_str().unwrap(),
            "--sarif",
            sarif.to_str().unwrap(),
            "--sarif-suppressed",
            "include",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.json()["summary"]["counts"]["medium"], 1);
    assert_eq!(run.json()["summary"]["counts"]["critical"], 0);
    assert!(result(&run, UNEXPECTED, ip).get("suppressed").is_none());
    // Its stale fingerprint entry is listed with its line.
    assert_eq!(
        run.json()["suppressions"]["stale"][0]["source"],
        format!("{}:17", partial.display())
    );
    // `include`: every result carries `suppressions`, the suppressed ones accepted.
    let log = load(&sarif);
    validate(SARIF_SCHEMA, &log);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let marked: Vec<&Value> = results
        .iter()
        .map(|r| &r["suppressions"])
        .filter(|s| !s.as_array().unwrap().is_empty())
        .collect();
    assert_eq!(marked.len(), 3);
    assert_eq!(marked[0][0]["kind"], "external");
    assert_eq!(marked[0][0]["status"], "accepted");
    assert!(marked[0][0]["justification"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_expiring_and_stale_entries() {
    let ip = "127.0.77.2";
    let _lab = ports_lab(ip).await;
    let (dir, sup) = file(
        &format!(
            r#"[[suppress]]
rule = "{EXPOSED}"
target = "{ip}"
reason = "was accepted last quarter"
expires = {past}

[[suppress]]
rule = "{UNAUTH}"
target = "{ip}"
reason = "until the migration"
expires = {soon}

[[suppress]]
rule = "{UNEXPECTED}"
target = "{ip}"
reason = "both ports are known"
expires = {soon}

[[suppress]]
rule = "ports.cleartext_protocol"
target = "{ip}"
reason = "telnet was removed since"
expires = {later}
"#,
            past = day(-1),
            soon = day(5),
            later = day(100),
        ),
        "s.toml",
    );
    let s = sup.to_str().unwrap();
    let sarif = dir.path().join("r.sarif");
    let run = scan_ports(
        ip,
        &["--suppressions", s, "--sarif", sarif.to_str().unwrap()],
    );
    // SARIF says it too, in the run's properties.
    let log = load(&sarif);
    validate(SARIF_SCHEMA, &log);
    let props = &log["runs"][0]["properties"]["suppressions"];
    assert_eq!(props["expired"][0]["source"], format!("{s}:1"));
    assert_eq!(props["stale"][0]["source"], format!("{s}:19"));
    // The expired entry suppresses nothing: its critical fails the gate, and the gate names it.
    assert_eq!(run.code, 1, "{}", run.stdout);
    let j = run.json();
    validate(REPORT_SCHEMA, j);
    assert_eq!(j["summary"]["counts"]["critical"], 1);
    assert!(
        result(&run, EXPOSED, ip)["findings"][0]["suppression"].is_null(),
        "{}",
        result(&run, EXPOSED, ip)
    );
    let reasons = j["summary"]["gate"]["reasons"].as_array().unwrap();
    let want = format!(
        "suppression {s}:1 expired on {}: its 1 finding counts again",
        day(-1)
    );
    assert!(reasons.iter().any(|r| r == &want), "{reasons:?}");
    assert_eq!(j["suppressions"]["expired"][0]["source"], format!("{s}:1"));
    assert_eq!(j["suppressions"]["expired"][0]["expires"], day(-1));
    assert_eq!(j["suppressions"]["expired"][0]["findings"], 1);
    let soon: Vec<&Value> = j["suppressions"]["expiring_soon"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["source"])
        .collect();
    assert_eq!(
        soon,
        [
            &Value::from(format!("{s}:7")),
            &Value::from(format!("{s}:13"))
        ]
    );
    // The cleartext rule passed on the target: its entry is stale, a reason only on demand.
    assert_eq!(j["suppressions"]["stale"].as_array().unwrap().len(), 1);
    assert_eq!(j["suppressions"]["stale"][0]["source"], format!("{s}:19"));
    assert!(
        run.stdout.contains(&format!(
            "EXPIRED   {s}:1  {EXPOSED} on {ip} expired on {}",
            day(-1)
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("STALE     {s}:19")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("EXPIRING  {s}:7")),
        "{}",
        run.stdout
    );

    // With the entry renewed the gate passes; a stale entry fails it only when asked
    // (flag, or policy.fail_on_stale in the config).
    let renewed = std::fs::read_to_string(&sup)
        .unwrap()
        .replace(&day(-1), &day(30));
    let tidy = dir.path().join(".secgate-suppressions.toml");
    std::fs::write(&tidy, renewed).unwrap();
    let run = scan_ports(ip, &["--suppressions", tidy.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let run = scan_ports(
        ip,
        &["--suppressions", tidy.to_str().unwrap(), "--fail-on-stale"],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let reasons = run.json()["summary"]["gate"]["reasons"].to_string();
    assert!(
        reasons.contains(&format!(
            "1 stale suppression (fail_on_stale): {}:19 (ports.cleartext_protocol on {ip})",
            tidy.display()
        )),
        "{reasons}"
    );
    // From the config: the default file beside it, and policy.fail_on_stale.
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[scan]\nchecks = [\"ports\"]\ntimeout = 1\n\n[policy]\nfail_on_stale = true\n\n[[target]]\nhost = \"{ip}\"\nports = \"40022,41211\"\n"
        ),
    )
    .unwrap();
    let run = secgate(&["scan", "--config", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.json()["suppressions"]["applied"], 4);
    assert_eq!(
        run.json()["suppressions"]["file"],
        tidy.display().to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inconclusive_result_is_suppressed_only_by_fingerprint() {
    let ip = "127.0.77.3";
    let tarpit = lab::serve_hostile(
        lab::bind(&format!("{ip}:0")).await.unwrap(),
        Hostile::Tarpit,
    );
    let url = format!("https://slow.test:{}/", tarpit.addr.port());
    let resolve = format!("slow.test:{}:{ip}", tarpit.addr.port());
    let scan = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            url.as_str(),
            "--resolve",
            resolve.as_str(),
            "--checks",
            "headers",
            "--timeout",
            "1",
        ];
        args.extend(extra);
        secgate(&args)
    };
    let first = scan(&[]);
    assert_eq!(first.code, 3, "{}", first.stdout);
    let hsts = result(&first, "headers.hsts.missing", &url);
    assert_eq!(hsts["status"], "inconclusive");
    let fp = hsts["fingerprint"].as_str().unwrap();
    let inconclusive = first.json()["summary"]["results"]["inconclusive"]
        .as_u64()
        .unwrap();
    let (_d, sup) = file(
        &format!(
            r#"[[suppress]]
rule = "headers.*"
target = "{url}"
reason = "a glob never hides an undecided result"
expires = {exp}

[[suppress]]
rule = "headers.hsts.missing"
target = "https://slow.test:*/"
fingerprint = "{fp}"
reason = "HSTS is set by the CDN in front"
expires = {exp}
"#,
            exp = day(10)
        ),
        "s.toml",
    );
    let run = scan(&["--suppressions", sup.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    let j = run.json();
    validate(REPORT_SCHEMA, j);
    let hsts = result(&run, "headers.hsts.missing", &url);
    assert_eq!(hsts["suppressed"], true);
    assert_eq!(
        hsts["suppression"]["reason"],
        "HSTS is set by the CDN in front"
    );
    assert_eq!(
        j["summary"]["results"]["inconclusive"].as_u64().unwrap(),
        inconclusive - 1
    );
    assert_eq!(j["summary"]["results"]["suppressed"], 1);
    assert_eq!(j["suppressions"]["applied"], 1);
    // The glob matched no failure, but nothing was decided either: not stale.
    assert_eq!(j["suppressions"]["stale"].as_array().unwrap().len(), 0);
    for r in j["results"].as_array().unwrap() {
        if r["rule_id"] != "headers.hsts.missing" {
            assert!(r.get("suppressed").is_none(), "{r}");
        }
    }
    assert!(
        run.stdout.contains("inconclusive: ")
            && run
                .stdout
                .contains("suppressed: HSTS is set by the CDN in front"),
        "{}",
        run.stdout
    );
}

/// An HTTPS site on `ip:port` (0: any) as `name`, serving `headers`.
async fn site(
    ip: &str,
    port: u16,
    name: &str,
    pki: &lab::Pki,
    headers: &[(&str, &str)],
) -> LabServer {
    let tls = pki.server_config(&[name]).unwrap();
    lab::serve(
        bind(&format!("{ip}:{port}")).await,
        Site::with_headers(headers).router(),
        Some(tls),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_states_gate_on_new_and_diff() {
    let ip = "127.0.77.4";
    let pki = lab::Pki::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let before: &[(&str, &str)] = &[
        ("x-content-type-options", "nosniff"),
        ("server", "nginx/1.18.0"),
        (
            "content-security-policy",
            "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
        ("referrer-policy", "no-referrer"),
    ];
    // Fix HSTS, break X-Content-Type-Options, change the disclosed version.
    let after: &[(&str, &str)] = &[
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("server", "nginx/1.20.1"),
        (
            "content-security-policy",
            "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
        ("referrer-policy", "no-referrer"),
    ];
    let app = site(ip, 0, "app.test", &pki, before).await;
    let other = site(ip, 0, "other.test", &pki, before).await;
    let (pa, po) = (app.addr.port(), other.addr.port());
    let app_url = format!("https://app.test:{pa}/");
    let other_url = format!("https://other.test:{po}/");
    let flags = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--resolve",
            &format!("app.test:{pa}:{ip}"),
            "--resolve",
            &format!("other.test:{po}:{ip}"),
            "--ca-file",
            ca.to_str().unwrap(),
            "--checks",
            "headers",
            "--timeout",
            "2",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        v.extend(extra.iter().map(ToString::to_string));
        v
    };
    let old = dir.path().join("old.json");
    let mut args = vec!["scan".to_string(), app_url.clone(), other_url.clone()];
    args.extend(flags(&["--json", old.to_str().unwrap()]));
    let first = secgate(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(first.code, 1, "{}", first.stdout);
    let first = Run {
        json: Some(load(&old)),
        ..first
    };
    assert_eq!(
        result(&first, "headers.hsts.missing", &app_url)["status"],
        "fail"
    );
    assert_eq!(
        result(&first, "headers.xcto.missing", &app_url)["status"],
        "pass"
    );

    // The lab's configuration changes; the server comes back on the same port.
    drop(app);
    let _app = site(ip, pa, "app.test", &pki, after).await;
    let sarif = dir.path().join("new.sarif");
    let new = dir.path().join("new.json");
    let scan2 = |extra: &[&str]| {
        let mut args = vec!["scan".to_string(), app_url.clone()];
        args.extend(flags(&["--baseline", old.to_str().unwrap()]));
        args.extend(extra.iter().map(ToString::to_string));
        secgate(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let run = scan2(&[
        "--sarif",
        sarif.to_str().unwrap(),
        "--json",
        new.to_str().unwrap(),
    ]);
    let run = Run {
        json: Some(load(&new)),
        ..run
    };
    assert_eq!(run.code, 1, "{}", run.stdout);
    validate(REPORT_SCHEMA, run.json());
    let state = |rule: &str| result(&run, rule, &app_url)["findings"][0]["baseline_state"].clone();
    assert_eq!(state("headers.xcto.missing"), "new");
    assert_eq!(state("headers.version_disclosure"), "updated");
    assert_eq!(
        state("headers.framing.missing"),
        Value::Null,
        "framing passes via CSP"
    );
    let b = &run.json()["baseline"];
    let fixed: Vec<&str> = b["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(fixed, ["headers.hsts.missing"]);
    // The other target was not scanned again: its findings are absent, not fixed.
    let absent = b["absent"].as_array().unwrap();
    assert!(!absent.is_empty());
    assert!(
        absent.iter().all(|i| i["target"] == other_url.as_str()),
        "{absent:?}"
    );
    assert_eq!(b["counts"]["new"], 1);
    assert_eq!(b["counts"]["updated"], 1);
    assert_eq!(b["counts"]["fixed"], 1);
    let unchanged = b["counts"]["unchanged"].as_u64().unwrap();
    assert_eq!(
        unchanged + 2,
        findings(&run).len() as u64,
        "every other finding is unchanged"
    );
    assert!(run.stdout.contains("[new]"), "{}", run.stdout);
    assert!(
        run.stdout.contains("FIXED  medium    headers.hsts.missing"),
        "{}",
        run.stdout
    );
    // SARIF: baselineState on every result.
    let log = load(&sarif);
    validate(SARIF_SCHEMA, &log);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), findings(&run).len());
    assert!(results.iter().all(|r| r["baselineState"].is_string()));
    assert_eq!(
        results
            .iter()
            .filter(|r| r["baselineState"] == "new")
            .count(),
        1
    );

    // --gate-on new: only the new (low) and updated (low) findings count.
    assert_eq!(scan2(&["--fail-on", "medium"]).code, 1);
    let r = scan2(&["--fail-on", "medium", "--gate-on", "new"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let reasons = r.json()["summary"]["gate"]["reasons"].to_string();
    assert!(reasons.contains("(not gated: gate_on = new)"), "{reasons}");
    let r = scan2(&["--fail-on", "low", "--gate-on", "new"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let reasons = r.json()["summary"]["gate"]["reasons"].to_string();
    assert!(
        reasons.contains("2 new low findings (fail_on low)"),
        "{reasons}"
    );
    // --max-high names its limit.
    let r = scan2(&["--max-low", "1"]);
    let reasons = r.json()["summary"]["gate"]["reasons"].to_string();
    assert!(reasons.contains("low findings (max 1)"), "{reasons}");

    // secgate diff: new findings at or above --fail-on decide the exit code.
    let d = secgate(&["diff", old.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(
        d.stdout.contains("NEW      low       headers.xcto.missing"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("FIXED    medium    headers.hsts.missing"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("1 new (1 low), 1 updated, 1 fixed"),
        "{}",
        d.stdout
    );
    let out = dir.path().join("diff.json");
    let d = secgate(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--fail-on",
        "low",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert_eq!(d.code, 1, "{}{}", d.stdout, d.stderr);
    let dj = load(&out);
    assert_eq!(dj["failed"], true);
    assert_eq!(dj["counts"]["new"], 1);
    assert_eq!(dj["new_by_severity"]["low"], 1);
    let t = dj["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == app_url.as_str())
        .unwrap();
    assert_eq!(t["new"][0]["rule_id"], "headers.xcto.missing");
    assert_eq!(t["fixed"][0]["rule_id"], "headers.hsts.missing");
    // A report against itself: nothing new, exit 0, even at --fail-on info.
    let d = secgate(&[
        "diff",
        new.to_str().unwrap(),
        new.to_str().unwrap(),
        "--fail-on",
        "info",
    ]);
    assert_eq!(d.code, 0, "{}", d.stdout);
    // A 1.0 report (no schema_minor, no findings[]) still loads as a baseline.
    let mut v1 = load(&old);
    v1.as_object_mut().unwrap().remove("schema_minor");
    for r in v1["results"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("findings");
    }
    let v1_path = dir.path().join("v1.json");
    std::fs::write(&v1_path, v1.to_string()).unwrap();
    let d = secgate(&["diff", v1_path.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(
        d.stdout.contains("NEW      low       headers.xcto.missing"),
        "{}",
        d.stdout
    );
    // Not a report: exit 2, one line.
    let d = secgate(&["diff", ca.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(d.code, 2);
    assert_eq!(d.stderr.trim().lines().count(), 1, "{}", d.stderr);
    assert!(d.stderr.contains("OLD: "), "{}", d.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprints_survive_a_restart_of_the_lab() {
    let ip = "127.0.77.5";
    let pki = lab::Pki::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    async fn start(ip: &str, pki: &lab::Pki) -> Vec<LabServer> {
        let mut v = ports_lab(ip).await;
        v.push(lab::serve(
            bind(&format!("{ip}:44443")).await,
            Site::legacy().router(),
            Some(pki.server_config(&["shop.test"]).unwrap()),
        ));
        v.push(lab::serve(
            bind(&format!("{ip}:44080")).await,
            Site::legacy().router(),
            None,
        ));
        v
    }
    let scan = || {
        secgate(&[
            "scan",
            "https://shop.test:44443/",
            ip,
            "--resolve",
            &format!("shop.test:44443:{ip}"),
            "--http-port",
            "44080",
            "--ca-file",
            ca.to_str().unwrap(),
            "--ports",
            "40022,41211,44443,44080",
            "--checks",
            "headers,tls,ports",
            "--timeout",
            "2",
        ])
    };
    let prints = |run: &Run| -> BTreeSet<String> {
        findings(run)
            .iter()
            .map(|f| f["fingerprint"].as_str().unwrap().to_string())
            .collect()
    };
    let lab1 = start(ip, &pki).await;
    let a = scan();
    drop(lab1);
    // A new certificate (new serial, new key) on the same names and ports.
    let pki2 = lab::Pki::new().unwrap();
    std::fs::write(&ca, pki2.ca_pem()).unwrap();
    let _lab2 = start(ip, &pki2).await;
    let b = scan();
    let (pa, pb) = (prints(&a), prints(&b));
    assert!(pa.len() >= 15, "{}: {pa:?}", a.stdout);
    assert_eq!(pa, pb, "{}\n---\n{}", a.stdout, b.stdout);
    assert_eq!(findings(&a).len(), pa.len(), "fingerprints are unique");
    eprintln!(
        "fingerprints: {} of {} identical",
        pa.intersection(&pb).count(),
        pa.len()
    );
}

#[test]
fn every_bad_suppressions_file_is_exit_2_with_one_line() {
    let closed = support::closed_port("127.0.0.1").to_string();
    let target = format!("127.0.0.1:{closed}");
    let entry = |extra: &str| {
        format!(
            "[[suppress]]\nrule = \"headers.hsts.missing\"\ntarget = \"x\"\nreason = \"r\"\n{extra}"
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            entry("expires = 2020-01-01\nowner = 3\n"),
            ":6:9: suppress[0].owner: invalid type",
        ),
        (
            entry("expires = 2020-01-01\nsubjcet = \"a\"\n"),
            ":6:1: suppress[0]: unknown field `subjcet`",
        ),
        (
            "[[suppress]]\nrule = \"headers.hsts.missing\"\ntarget = \"x\"\nexpires = 2020-01-01\n"
                .into(),
            ":1:1: suppress[0]: missing key `reason`",
        ),
        (
            entry("expires = \"next week\"\n"),
            ":5:11: suppress[0].expires: 'next week' is not a date",
        ),
        (
            entry("expires = 2099-01-01\n"),
            ":5:11: suppress[0].expires: 2099-01-01 is more than 180 days away",
        ),
        (entry(""), ":1:1: suppress[0]: missing key `expires`"),
        (
            entry("expires = 2020-01-01\nfingerprint = \"abc\"\n"),
            ":6:15: suppress[0].fingerprint: expected 32 hex digits",
        ),
        (
            entry("expires = 2020-01-01\n").replace("headers.hsts.missing", "headers.hsts.mising"),
            ":2:8: suppress[0].rule: 'headers.hsts.mising' names no rule",
        ),
        ("[suppress]\nrule = 1\n".into(), ":1:1: invalid type"),
    ];
    for (text, want) in &cases {
        let (_d, path) = file(text, "s.toml");
        let run = secgate(&["scan", &target, "--suppressions", path.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{text}\n{}", run.stderr);
        let line = run.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.contains(&format!("{}{want}", path.display())),
            "{line}\nwanted: {want}"
        );
    }
    // A file that does not exist names the flag, or the config key.
    let run = secgate(&["scan", &target, "--suppressions", "/nonexistent/s.toml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--suppressions: /nonexistent/s.toml"),
        "{}",
        run.stderr
    );
    let (_d, cfg) = file(
        &format!("[scan]\nsuppressions = \"missing.toml\"\n\n[[target]]\nhost = \"{target}\"\n"),
        "secgate.toml",
    );
    let run = secgate(&["scan", "--config", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(&format!("{}:2:16: scan.suppressions: ", cfg.display())),
        "{}",
        run.stderr
    );
    // A permanent entry is allowed only by policy, and the cap is the policy's.
    let (dir, cfg) = file(
        &format!(
            "[policy]\nallow_permanent_suppressions = true\nmax_suppression_days = 3650\n\n[[target]]\nhost = \"{target}\"\n"
        ),
        "secgate.toml",
    );
    std::fs::write(
        dir.path().join(".secgate-suppressions.toml"),
        format!("{}\n{}", entry(""), entry("expires = 2035-01-01\n")),
    )
    .unwrap();
    let run = secgate(&["scan", "--config", cfg.to_str().unwrap(), "--timeout", "1"]);
    assert_ne!(run.code, 2, "{}", run.stderr);
    // `secgate validate` checks the suppressions file a scan would read.
    let run = secgate(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("secgate-suppressions.toml: OK (2 suppressions)"),
        "{}",
        run.stdout
    );
    std::fs::write(
        dir.path().join(".secgate-suppressions.toml"),
        entry("expires = 1\n"),
    )
    .unwrap();
    let run = secgate(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr
            .contains(".secgate-suppressions.toml:5:11: suppress[0].expires: '1' is not a date"),
        "{}",
        run.stderr
    );
    let (_d, cfg) = file("[policy]\ngate_on = \"newest\"\n", "secgate.toml");
    let run = secgate(&["scan", &target, "--config", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(":2:11: policy.gate_on: expected \"all\" or \"new\""),
        "{}",
        run.stderr
    );
    let run = secgate(&["scan", &target, "--fail-on", "severe"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--fail-on: unknown severity 'severe'"),
        "{}",
        run.stderr
    );
    let run = secgate(&["scan", &target, "--baseline", "/nonexistent/b.json"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--baseline: /nonexistent/b.json"),
        "{}",
        run.stderr
    );
}

/// The README's suppressions example is a valid file (judged on a fixed day, so the example's
/// dates stay within the 180-day cap).
#[test]
fn readme_suppressions_example_is_valid() {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let block = readme
        .split("<!-- suppressions example")
        .nth(1)
        .expect("marker in README")
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let s = secgate::suppress::parse(
        Path::new(".secgate-suppressions.toml"),
        block,
        &secgate::policy::Policy::default(),
        time::macros::date!(2026 - 12 - 03),
    )
    .unwrap();
    assert_eq!(s.entries.len(), 3);
    assert!(s.entries[0].covers("headers.csp.unsafe", "https://shop.example.com/"));
    assert!(s.entries[1].matches_finding(
        "ports.unexpected_open",
        "db.example.com",
        "tcp/5432",
        ""
    ));
    assert!(!s.entries[1].matches_finding(
        "ports.unexpected_open",
        "db.example.com",
        "tcp/6379",
        ""
    ));
    assert_eq!(s.entries[2].source, ".secgate-suppressions.toml:16");
}

/// A newly opened port is a new finding of `ports.unexpected_open`; the port that was already
/// open is unchanged, and `--gate-on new` holds the gate to the new one only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_opened_port_is_a_new_finding() {
    let ip = "127.0.77.6";
    let ssh = lab::serve_fake(
        bind(&format!("{ip}:40022")).await,
        Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
    );
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    let first = scan_ports(ip, &["--json", old.to_str().unwrap()]);
    assert_eq!(first.code, 1, "{}", first.stdout);
    // A second service opens.
    let _more = lab::serve_fake(
        bind(&format!("{ip}:41211")).await,
        Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
    );
    let run = scan_ports(
        ip,
        &["--baseline", old.to_str().unwrap(), "--max-medium", "0"],
    );
    let states: Vec<(String, String)> = result(&run, UNEXPECTED, ip)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["subject"]["key"].as_str().unwrap().to_string(),
                f["baseline_state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("tcp/40022".to_string(), "unchanged".to_string()),
            ("tcp/41211".to_string(), "new".to_string())
        ]
    );
    assert_eq!(run.json()["baseline"]["counts"]["new"], 1);
    assert_eq!(run.code, 1);
    let reasons = run.json()["summary"]["gate"]["reasons"].to_string();
    assert!(reasons.contains("1 medium finding (max 0)"), "{reasons}");
    // Closing the old port and gating on new findings: still one new medium.
    drop(ssh);
    let run = scan_ports(
        ip,
        &[
            "--baseline",
            old.to_str().unwrap(),
            "--max-medium",
            "0",
            "--gate-on",
            "new",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let reasons = run.json()["summary"]["gate"]["reasons"].to_string();
    assert!(
        reasons.contains("1 new medium finding (max 0)"),
        "{reasons}"
    );
    // The old port's finding is fixed: the rule was evaluated again on the target.
    assert_eq!(run.json()["baseline"]["fixed"][0]["subject"], "tcp/40022");
}
