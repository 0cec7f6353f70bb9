//! Compliance views: the framework files agree with the catalogue's mappings, and
//! `--compliance` reads real scans right (the demo lab, a hardened rustls server, a tarpit).
//!
//! Loopback addresses of this file: 127.0.81.1 (hardened site), 127.0.81.2 (tarpit), 127.0.81.3
//! (legacy site).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::collections::{BTreeSet, HashSet};
use std::process::Stdio;

use secgate::catalogue::{self, Lifecycle};
use secgate::compliance;
use secgate::lab::{Hostile, Site};
use serde_json::Value;
use support::{bin, repo_path, secgate};

fn load(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn validate(instance: &Value) {
    let schema = load(&repo_path("reports/schema/secgate-report.v1.schema.json"));
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// The view of `framework` in a JSON report.
fn view<'a>(json: &'a Value, framework: &str) -> &'a Value {
    json["compliance"]
        .as_array()
        .expect("a compliance array")
        .iter()
        .find(|v| v["framework"] == framework)
        .unwrap_or_else(|| panic!("no {framework} view"))
}

/// A requirement of a view.
fn req<'a>(view: &'a Value, id: &str) -> &'a Value {
    view["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no requirement {id}"))
}

/// The targets on which `rule` failed, in a requirement of a view.
fn failed_on(req: &Value, rule: &str) -> Vec<String> {
    let r = req["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == rule)
        .unwrap_or_else(|| panic!("{rule} does not evidence {}", req["id"]));
    r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "fail")
        .map(|t| t["target"].as_str().unwrap().to_string())
        .collect()
}

/// The terminal table's row of a requirement: its status word(s).
fn row_status(stdout: &str, header: &str, id: &str) -> String {
    let table = stdout
        .split_once(header)
        .unwrap_or_else(|| panic!("no '{header}' in:\n{stdout}"))
        .1;
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .unwrap_or_else(|| panic!("no row {id} under '{header}'"));
    let rest = line.trim_start().strip_prefix(id).unwrap().trim_start();
    rest.split("  ").next().unwrap().trim().to_string()
}

#[test]
fn framework_files_and_catalogue_mappings_agree() {
    assert_eq!(compliance::load_error(), None);
    assert_eq!(catalogue::load_error(), None);
    let frameworks = compliance::all();
    assert_eq!(
        compliance::names(),
        ["pci-dss", "asvs", "nist-800-52"],
        "the frameworks the README names"
    );

    // Every file under checks/compliance/ is embedded, once.
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo_path("checks/compliance"))
        .unwrap()
        .map(|e| {
            format!(
                "checks/compliance/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    let embedded: BTreeSet<String> = compliance::SOURCES
        .iter()
        .map(|(f, _)| (*f).to_string())
        .collect();
    assert_eq!(on_disk, embedded);

    let mut tags = HashSet::new();
    for f in frameworks {
        let i = &f.info;
        assert!(
            !i.version.is_empty() && i.source.contains(&i.version),
            "{}: the source cites the version",
            f.file
        );
        assert!(
            i.source.contains("https://"),
            "{}: the source says where to get it",
            f.file
        );
        assert!(tags.insert(i.tag.clone()), "{}: tag prefix reused", f.file);
        let mut ids = HashSet::new();
        for r in &f.requirements {
            assert!(
                ids.insert(r.id.as_str()),
                "{}: {} listed twice",
                f.file,
                r.id
            );
            assert!(
                r.id.split('.').all(|n| n.parse::<u32>().is_ok()),
                "{}: {} is not a dotted number",
                f.file,
                r.id
            );
            assert!(
                !r.title.trim().is_empty() && r.title.len() <= 200,
                "{}: {} title",
                f.file,
                r.id
            );
            let rules = f.rules_of(&r.id);
            let reason = r.reason.as_deref().map(str::trim).unwrap_or_default();
            if r.assessable {
                assert!(
                    !rules.is_empty(),
                    "{}: {} is neither evidenced by a rule nor marked assessable = false",
                    f.file,
                    r.id
                );
            } else {
                assert!(
                    !reason.is_empty(),
                    "{}: {} is not assessable without a reason",
                    f.file,
                    r.id
                );
                assert!(
                    rules.is_empty(),
                    "{}: {} is not assessable but rules evidence it: {rules:?}",
                    f.file,
                    r.id
                );
            }
            if !r.met_from_outside {
                assert!(
                    !reason.is_empty(),
                    "{}: {} met_from_outside = false without a reason",
                    f.file,
                    r.id
                );
            }
            for rule in rules {
                let doc = catalogue::get(rule).unwrap();
                assert_eq!(
                    doc.status,
                    Lifecycle::Stable,
                    "{rule} is removed but still evidences {}",
                    r.id
                );
            }
            if i.previous.is_none() {
                assert!(
                    r.v4.is_empty(),
                    "{}: {} has previous-version ids without `previous`",
                    f.file,
                    r.id
                );
            }
            for v4 in &r.v4 {
                assert!(
                    v4.split('.').count() == 3 && v4.split('.').all(|n| n.parse::<u32>().is_ok()),
                    "{}: {} v4 id {v4}",
                    f.file,
                    r.id
                );
            }
        }
    }

    // Every id a catalogue rule names exists in the framework file it names.
    let mut mapped = 0;
    for rule in catalogue::all() {
        for (framework, ids) in &rule.compliance {
            let f = compliance::get(framework)
                .unwrap_or_else(|| panic!("{}: unknown framework '{framework}'", rule.id));
            assert!(!ids.is_empty(), "{}: empty list for {framework}", rule.id);
            for id in ids {
                assert!(
                    f.requirement(id).is_some(),
                    "{}: {framework} {id} is not in {}",
                    rule.id,
                    f.file
                );
                mapped += 1;
            }
            assert_eq!(
                ids.iter().collect::<HashSet<_>>().len(),
                ids.len(),
                "{}: repeated id",
                rule.id
            );
        }
    }
    assert!(mapped > 50, "{mapped} mappings");

    // The named PCI DSS requirements are there, 11.3.2 with the ASV caveat.
    let pci = compliance::get("pci-dss").unwrap();
    for id in [
        "2.2.5", "2.2.7", "4.2.1", "6.4.1", "6.4.2", "8.3.4", "11.3.2",
    ] {
        assert!(pci.requirement(id).is_some(), "PCI DSS {id}");
    }
    let asv = pci.requirement("11.3.2").unwrap();
    assert!(!asv.assessable);
    assert!(
        asv.reason
            .as_deref()
            .unwrap()
            .contains("Approved Scanning Vendor")
    );
    assert!(pci.rules_of("4.2.1").contains(&"tls.protocol.sslv3"));
    assert_eq!(pci.rules_of("8.3.4"), ["auth.no_lockout"]);

    // SARIF: every rule carries its requirement tags, and stays within the 10 tags GitHub shows.
    let report = {
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
    };
    let log = secgate::report::sarif::log(&report);
    let rules = log.runs[0].tool.driver.rules.as_ref().unwrap();
    for rule in rules {
        let v = serde_json::to_value(rule).unwrap();
        let tags: Vec<&str> = v["properties"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(
            tags.len() <= 10,
            "{}: {} tags (GitHub shows 10)",
            rule.id,
            tags.len()
        );
        for tag in compliance::tags_of(&rule.id) {
            assert!(tags.contains(&tag.as_str()), "{}: no tag {tag}", rule.id);
        }
    }
    assert!(compliance::tags_of("tls.protocol.sslv3").contains(&"PCI-DSS-4.0.1:4.2.1".to_string()));
}

#[test]
fn demo_lab_fails_pci_dss_4_2_1_and_8_3_4() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("demo.json");
    let out = bin()
        .args(["demo", "--no-color", "--compliance", "pci-dss", "--json"])
        .arg(&json_path)
        .arg("--report")
        .arg(format!("html={}", dir.path().join("demo.html").display()))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = load(&json_path);
    validate(&json);
    assert_eq!(json["schema_minor"], 8);
    let pci = view(&json, "pci-dss");
    assert_eq!(pci["version"], "4.0.1");

    // 4.2.1: not met, because of the legacy TLS server (SSL 3.0, RC4).
    let r421 = req(pci, "4.2.1");
    assert_eq!(r421["status"], "not_met", "{r421:#}");
    let legacy = failed_on(r421, "tls.protocol.sslv3");
    assert_eq!(legacy.len(), 1, "{legacy:?}");
    assert!(legacy[0].contains("legacy.lab.test"), "{legacy:?}");
    assert!(failed_on(r421, "tls.cipher.weak")[0].contains("legacy.lab.test"));
    assert!(r421["reason"].as_str().unwrap().contains("legacy.lab.test"));

    // 8.3.4: not met, because of the careless login of the shop (the API's login locks out).
    let r834 = req(pci, "8.3.4");
    assert_eq!(r834["status"], "not_met", "{r834:#}");
    let shop = failed_on(r834, "auth.no_lockout");
    assert_eq!(shop.len(), 1, "{shop:?}");
    assert!(shop[0].contains("shop.lab.test"), "{shop:?}");
    let lockout = &r834["rules"][0];
    assert_eq!(
        lockout["counts"]["pass"], 1,
        "the hardened API locks out: {lockout:#}"
    );

    // 11.3.2: never assessed, with the ASV caveat.
    let asv = req(pci, "11.3.2");
    assert_eq!(asv["status"], "not_assessed");
    assert!(
        asv["reason"]
            .as_str()
            .unwrap()
            .contains("Approved Scanning Vendor")
    );
    assert!(
        pci["note"]
            .as_str()
            .unwrap()
            .contains("not an Approved Scanning Vendor")
    );

    // Counts add up to the requirements listed.
    let c = &pci["counts"];
    let total = c["met"].as_u64().unwrap()
        + c["not_met"].as_u64().unwrap()
        + c["not_assessed"].as_u64().unwrap();
    assert_eq!(
        total as usize,
        pci["requirements"].as_array().unwrap().len()
    );

    // The HTML page has the table, the status of 4.2.1 next to its id.
    let html = std::fs::read_to_string(dir.path().join("demo.html")).unwrap();
    let section = html
        .split_once("id=\"compliance-pci-dss\"")
        .expect("a compliance section")
        .1;
    let row = section.split_once("<strong>4.2.1</strong>").unwrap().1;
    let row = row.split_once("</tr>").unwrap().0;
    assert!(row.contains("class=\"req req-not-met\">not met<"), "{row}");

    // The terminal table says the same.
    let header = "Compliance view: PCI DSS 4.0.1";
    assert_eq!(row_status(&stdout, header, "4.2.1"), "NOT MET");
    assert_eq!(row_status(&stdout, header, "8.3.4"), "NOT MET");
    assert_eq!(row_status(&stdout, header, "11.3.2"), "not assessed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hardened_tls_server_meets_4_2_1_and_what_was_not_run_is_not_assessed() {
    let site = support::https_site_at("127.0.81.1", "pay.test", Site::hardened()).await;
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("r.sarif");
    let md = dir.path().join("r.md");
    let run = site.scan(&[
        "--checks",
        "tls",
        "--compliance",
        "pci-dss",
        "--compliance",
        "nist-800-52,asvs",
        "--sarif",
        sarif.to_str().unwrap(),
        "--report",
        &format!("markdown={}", md.display()),
    ]);
    let json = run.json();
    validate(json);
    let scan_code = run.code;
    let frameworks: Vec<&str> = json["compliance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["framework"].as_str().unwrap())
        .collect();
    assert_eq!(
        frameworks,
        ["pci-dss", "nist-800-52", "asvs"],
        "in the order asked"
    );
    let pci = view(json, "pci-dss");

    // Met: every TLS rule of 4.2.1 ran and passed on the rustls server.
    let r421 = req(pci, "4.2.1");
    assert_eq!(r421["status"], "met", "{r421:#}\n{}", run.stdout);
    assert!(r421["caveat"].as_str().unwrap().contains("revocation"));
    for rule in r421["rules"].as_array().unwrap() {
        assert_eq!(rule["counts"]["fail"], 0, "{rule:#}");
        assert_eq!(rule["counts"]["inconclusive"], 0, "{rule:#}");
    }
    assert!(
        r421["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["counts"]["pass"] == 1)
    );
    assert_eq!(req(view(json, "nist-800-52"), "3.7")["status"], "met");

    // Not assessed: the auth family did not run (8.3.4), the ASV requirement (11.3.2), and
    // a requirement passing rules cannot show (6.3.3: no Heartbleed is not every patch).
    let r834 = req(pci, "8.3.4");
    assert_eq!(r834["status"], "not_assessed");
    assert!(
        r834["reason"]
            .as_str()
            .unwrap()
            .contains("no rule that evidences it ran")
    );
    assert_eq!(r834["rules"][0]["targets"], Value::Array(Vec::new()));
    assert_eq!(req(pci, "11.3.2")["status"], "not_assessed");
    let r633 = req(pci, "6.3.3");
    assert_eq!(r633["status"], "not_assessed");
    assert!(
        r633["reason"]
            .as_str()
            .unwrap()
            .starts_with("no failure (4 results passed)"),
        "{r633:#}"
    );
    assert!(r633.get("caveat").is_none());

    // ASVS carries the 4.0.3 ids from OWASP's mapping.
    let r1211 = req(view(json, "asvs"), "12.1.1");
    assert_eq!(r1211["v4"], serde_json::json!(["9.1.3"]));
    assert_eq!(r1211["status"], "met");

    let header = "Compliance view: PCI DSS 4.0.1";
    assert_eq!(row_status(&run.stdout, header, "4.2.1"), "MET");
    assert_eq!(row_status(&run.stdout, header, "8.3.4"), "not assessed");
    assert!(
        run.stdout
            .contains("Compliance view: NIST SP 800-52 Rev. 2")
    );

    // SARIF rules carry the requirement tags; Markdown has a section per view.
    let sarif = load(&sarif);
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let sslv3 = rules
        .iter()
        .find(|r| r["id"] == "tls.protocol.sslv3")
        .unwrap();
    let tags = sslv3["properties"]["tags"].as_array().unwrap();
    for tag in [
        "PCI-DSS-4.0.1:4.2.1",
        "ASVS-5.0.0:12.1.1",
        "NIST-SP-800-52r2:3.1",
    ] {
        assert!(tags.contains(&Value::from(tag)), "{tags:?}");
    }
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("### Compliance: PCI DSS 4.0.1 ("), "{md}");
    assert!(md.contains("| **4.2.1** "));

    // A shard report carries the view, and the merge computes it again over all shards.
    let shard = site.scan(&[
        "--checks",
        "tls",
        "--compliance",
        "pci-dss",
        "--shard",
        "1/1",
    ]);
    assert_eq!(req(view(shard.json(), "pci-dss"), "4.2.1")["status"], "met");
    let merged = dir.path().join("merged.json");
    let run = secgate(&[
        "merge",
        "-q",
        "--json",
        merged.to_str().unwrap(),
        shard.dir.path().join("report.json").to_str().unwrap(),
    ]);
    assert_eq!(
        run.code, scan_code,
        "the merge gates as the scan: {}",
        run.stderr
    );
    let merged = load(&merged);
    validate(&merged);
    assert_eq!(req(view(&merged, "pci-dss"), "4.2.1")["status"], "met");
    assert_eq!(merged["compliance"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suppressed_failure_leaves_its_requirement_not_assessed() {
    let site = support::https_site_at("127.0.81.3", "legacy.test", Site::legacy()).await;
    let closed = support::closed_port("127.0.81.3").to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accepted.toml");
    std::fs::write(
        &file,
        format!(
            "[[suppress]]\nrule = \"headers.xcto.missing\"\ntarget = \"{}\"\nreason = \"legacy pages, replaced in Q1\"\nexpires = {}\n",
            site.url,
            (time::OffsetDateTime::now_utc().date() + time::Duration::days(30))
        ),
    )
    .unwrap();
    let args = [
        "--checks",
        "headers",
        "--http-port",
        &closed,
        "--compliance",
        "asvs",
    ];
    let plain = site.scan(&args);
    let asvs = view(plain.json(), "asvs");
    assert_eq!(
        req(asvs, "3.4.4")["status"],
        "not_met",
        "{:#}",
        req(asvs, "3.4.4")
    );

    let mut with = args.to_vec();
    with.extend(["--suppressions", file.to_str().unwrap()]);
    let run = site.scan(&with);
    let r = req(view(run.json(), "asvs"), "3.4.4");
    assert_eq!(r["status"], "not_assessed", "{r:#}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("1 failure is suppressed"),
        "{r:#}"
    );
    assert_eq!(r["rules"][0]["counts"]["suppressed"], 1);
    assert_eq!(r["rules"][0]["targets"][0]["suppressed"], true);
    // Other failures still count.
    assert_eq!(req(view(run.json(), "asvs"), "3.3.1")["status"], "not_met");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecided_tls_server_leaves_4_2_1_not_assessed_and_the_config_asks_for_views() {
    let tarpit = support::hostile_at("127.0.81.2", Hostile::Tarpit).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[scan]\ntimeout = 1\n\n[policy]\ncompliance = [\"pci-dss\"]\n\n[[target]]\nurl = \"https://127.0.81.2:{}/\"\nchecks = [\"tls\"]\n",
            tarpit.addr.port()
        ),
    )
    .unwrap();
    let run = secgate(&["scan", "--config", cfg.to_str().unwrap()]);
    let json = run.json();
    let r421 = req(view(json, "pci-dss"), "4.2.1");
    assert_eq!(r421["status"], "not_assessed", "{r421:#}");
    assert!(
        r421["reason"]
            .as_str()
            .unwrap()
            .contains("could not be decided (0 passed)"),
        "{r421:#}"
    );
    assert_eq!(run.code, 3, "{}", run.stdout);
}

#[test]
fn an_unknown_framework_is_a_usage_error() {
    let run = secgate(&[
        "scan",
        "https://127.0.0.1:1/",
        "--compliance",
        "pci-dss,sox",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("--compliance"), "{line}");
    assert!(
        line.contains("'sox'") && line.contains("pci-dss, asvs, nist-800-52"),
        "{line}"
    );

    let run = secgate(&["scan", "https://127.0.0.1:1/", "--compliance", " , "]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--compliance: no framework given"),
        "{}",
        run.stderr
    );

    let run = secgate(&["demo", "--compliance", "iso27001"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--compliance"), "{}", run.stderr);

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(&cfg, "[policy]\ncompliance = [\"asvs\", \"hipaa\"]\n\n[[target]]\nurl = \"https://127.0.0.1:1/\"\n").unwrap();
    for cmd in ["scan", "validate"] {
        let args: Vec<&str> = if cmd == "scan" {
            vec!["scan", "--config", cfg.to_str().unwrap()]
        } else {
            vec!["validate", cfg.to_str().unwrap()]
        };
        let run = secgate(&args);
        assert_eq!(run.code, 2, "{cmd}: {}", run.stderr);
        assert!(
            run.stderr.contains("secgate.toml:2:"),
            "{cmd}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("policy.compliance: unknown framework 'hipaa'"),
            "{cmd}: {}",
            run.stderr
        );
    }
}

#[test]
fn explain_shows_the_requirements_a_rule_evidences() {
    let run = secgate(&["explain", "auth.no_lockout"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("Requirements it evidences (--compliance)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("PCI DSS 4.0.1 8.3.4:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("OWASP ASVS 5.0.0 6.3.1 (v4.0.3: 2.2.1):"),
        "{}",
        run.stdout
    );

    let run = secgate(&["explain", "auth.no_lockout", "--json"]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["compliance"]["pci-dss"], serde_json::json!(["8.3.4"]));

    // A rule that evidences nothing has no such section.
    let run = secgate(&["explain", "dns.caa.missing"]);
    assert!(!run.stdout.contains("Requirements it evidences"));
}
