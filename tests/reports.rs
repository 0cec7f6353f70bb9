//! Report writers: snapshots of the terminal, JSON and SARIF output of one fixed scenario
//! (volatile fields redacted), and schema validation of the JSON and SARIF reports.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::path::Path;
use std::process::Stdio;

use secgate::lab::{self, Hostile, LabServer, Pki, Site};
use serde_json::Value;
use support::{bin, closed_port, repo_path};

/// The scenario: a legacy shop (with a plain-HTTP side that serves content), a hardened API,
/// a tarpit, and an unreachable target, declared in a config file.
struct Scenario {
    _servers: Vec<LabServer>,
    dir: tempfile::TempDir,
}

async fn scenario() -> Scenario {
    let pki = Pki::new().unwrap();
    let tls = pki
        .server_config(&["shop.test", "api.test", "slow.test"])
        .unwrap();
    let shop = lab::serve(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Site::legacy().router(),
        Some(tls.clone()),
    );
    let shop_http = lab::serve(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Site::legacy().router(),
        None,
    );
    let api = lab::serve(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Site::hardened().router(),
        Some(tls),
    );
    let slow = lab::serve_hostile(lab::bind("127.0.0.1:0").await.unwrap(), Hostile::Tarpit);
    let closed = closed_port("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).unwrap();
    let (s, h, a, w) = (
        shop.addr.port(),
        shop_http.addr.port(),
        api.addr.port(),
        slow.addr.port(),
    );
    let config = format!(
        r#"# report snapshot scenario
[scan]
ca_file = "ca.pem"
timeout = 1
http_port = {closed}
resolve = ["shop.test:{s}:127.0.0.1", "api.test:{a}:127.0.0.1", "slow.test:{w}:127.0.0.1"]

[[target]]
url = "https://shop.test:{s}/"
http_port = {h}
checks = ["headers"]

[[target]]
url = "https://api.test:{a}/"
checks = ["headers"]

[[target]]
url = "https://slow.test:{w}/"
checks = ["headers"]

[[target]]
host = "127.0.0.1:{closed}"
"#
    );
    std::fs::write(dir.path().join("secgate.toml"), config).unwrap();
    Scenario {
        _servers: vec![shop, shop_http, api, slow],
        dir,
    }
}

/// Run the scenario from its directory (so the config path is relative, as in a repository).
fn run_scenario(dir: &Path, extra: &[&str]) -> (i32, String) {
    let out = bin()
        .current_dir(dir)
        .args([
            "scan",
            "--config",
            "secgate.toml",
            "--json",
            "report.json",
            "--sarif",
            "report.sarif",
            "--no-color",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn redactions() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (r#""duration_ms": \d+"#, r#""duration_ms": "[MS]""#),
        (r"[0-9a-f]{32}", "[FINGERPRINT]"),
        (r"(127\.0\.0\.1|\.test):\d{2,5}", "$1:[PORT]"),
        (r"port \d{2,5}", "port [PORT]"),
        (r#""port": \d+"#, r#""port": "[PORT]""#),
        (r"secgate \d+\.\d+\.\d+", "secgate [VERSION]"),
        (
            r#""(version|semanticVersion)": "\d+\.\d+\.\d+""#,
            r#""$1": "[VERSION]""#,
        ),
    ]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_and_schemas() {
    let sc = scenario().await;
    let (code, stdout) = run_scenario(sc.dir.path(), &["--verbose"]);
    assert_eq!(code, 1, "{stdout}");
    let json = load(&sc.dir.path().join("report.json"));
    let sarif = load(&sc.dir.path().join("report.sarif"));

    validate("reports/schema/secgate-report.v1.schema.json", &json);
    validate("reports/schema/sarif-schema-2.1.0.json", &sarif);

    // SARIF results point at the config line that declares their target.
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "secgate.toml");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert_eq!(
            loc["region"]["startLine"], 9,
            "the shop's `url =` line: {r}"
        );
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            sarif["runs"][0]["tool"]["driver"]["rules"][idx]["id"],
            r["ruleId"]
        );
    }
    // One SARIF result per finding (a failed result has one per failed subject).
    let findings: usize = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(results.len(), findings);
    assert!(results.len() >= json["summary"]["results"]["fail"].as_u64().unwrap() as usize);

    insta::with_settings!({ filters => redactions() }, {
        insta::assert_snapshot!("terminal_verbose", stdout);
        // The files as written, so the snapshots also pin field order.
        insta::assert_snapshot!("json", std::fs::read_to_string(sc.dir.path().join("report.json")).unwrap());
        insta::assert_snapshot!("sarif", std::fs::read_to_string(sc.dir.path().join("report.sarif")).unwrap());
    });

    // The default terminal view (findings and undecided results only).
    let (_, stdout) = run_scenario(sc.dir.path(), &[]);
    insta::with_settings!({ filters => redactions() }, {
        insta::assert_snapshot!("terminal", stdout);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarif_for_command_line_targets_uses_the_url() {
    let site = support::https_site(Site::legacy()).await;
    let closed = closed_port("127.0.0.1").to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sarif");
    let run = site.scan(&["--http-port", &closed, "--sarif", path.to_str().unwrap()]);
    let sarif = load(&path);
    validate("reports/schema/sarif-schema-2.1.0.json", &sarif);
    let r = &sarif["runs"][0]["results"][0];
    assert_eq!(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        site.url
    );
    assert_eq!(run.code, 1);
}

#[test]
fn severity_mapping_in_sarif_is_pinned() {
    // Each catalogue rule's SARIF level and security-severity follow one table.
    let log = secgate::report::sarif::log(&empty_report());
    let rules = log.runs[0].tool.driver.rules.as_ref().unwrap();
    assert_eq!(rules.len(), secgate::catalogue::all().len());
    for (rule, doc) in rules.iter().zip(secgate::catalogue::all()) {
        let v = serde_json::to_value(rule).unwrap();
        assert_eq!(
            v["defaultConfiguration"]["level"],
            doc.severity.sarif_level()
        );
        match doc.severity.security_severity() {
            Some(s) => assert_eq!(v["properties"]["security-severity"], s),
            None => assert!(v["properties"].get("security-severity").is_none()),
        }
        assert!(
            v["properties"]["tags"]
                .as_array()
                .unwrap()
                .contains(&Value::from("security"))
        );
    }
}

fn empty_report() -> secgate::report::ScanReport {
    let plan = secgate::plan::ScanPlan::new(Vec::new(), &secgate::family_options());
    let now = time::OffsetDateTime::now_utc();
    let result = secgate::model::ScanResult {
        started_at: now,
        finished_at: now,
        complete: true,
        targets: Vec::new(),
        outcomes: Vec::new(),
    };
    let summary = secgate::summarise::summarise(&[], &[], true, &plan.policy);
    secgate::report::ScanReport::build(&plan, secgate::triage::triage(result), summary)
}
