//! The JUnit, Markdown and HTML writers, on real scans: the demo lab's reports (JUnit parsed by
//! quick-junit's own reader with its counts checked against the JSON report; the HTML page
//! opened in Debian's headless Chromium, its DOM read for the verdict and every failing rule
//! id, a screenshot kept under `target/`), a site whose banner is hostile markup, the
//! Markdown page's size cap, `--github`, and the verdict on stderr under `--json -`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use quick_junit::{NonSuccessKind, TestCaseStatus};
use secgate::lab::Site;
use serde_json::Value;
use support::{bin, closed_port};

/// Debian's `chromium`, which scripts/test installs. Absent means the test cannot do its job:
/// it fails, loudly, rather than skipping.
const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(args: &[&str], page: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the HTML report is tested in a real browser; install Debian's \
         `chromium` (scripts/test does) and rerun"
    );
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            // Containers often have a small /dev/shm.
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn dump_dom(page: &Path) -> String {
    chromium(&["--dump-dom"], page)
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn junit(path: &Path) -> quick_junit::Report {
    let xml = std::fs::read_to_string(path).unwrap();
    quick_junit::Report::deserialize_from_str(&xml)
        .unwrap_or_else(|e| panic!("{} does not parse as JUnit: {e}\n{xml}", path.display()))
}

fn count(json: &Value, status: &str) -> usize {
    json["summary"]["results"][status].as_u64().unwrap() as usize
}

/// The JUnit report says what the JSON report says: one suite per target, one case per
/// result, failures/errors/skipped equal to fail/inconclusive/skipped.
fn junit_matches_json(j: &quick_junit::Report, json: &Value) {
    let results = json["results"].as_array().unwrap();
    assert_eq!(j.tests, results.len());
    assert_eq!(j.failures, count(json, "fail"));
    assert_eq!(j.errors, count(json, "inconclusive"));
    assert_eq!(j.skipped, count(json, "skipped"));
    let targets: Vec<&str> = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    let suites: Vec<&str> = j.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(suites, targets);
    for suite in &j.test_suites {
        let mine: BTreeMap<&str, &Value> = results
            .iter()
            .filter(|r| r["target"] == suite.name.as_str())
            .map(|r| (r["rule_id"].as_str().unwrap(), r))
            .collect();
        assert_eq!(suite.tests, mine.len(), "suite {}", suite.name.as_str());
        let names: BTreeSet<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names.len(),
            suite.test_cases.len(),
            "names unique per suite"
        );
        for case in &suite.test_cases {
            let r = mine[case.name.as_str()];
            assert_eq!(
                case.classname.as_ref().unwrap().as_str(),
                r["family"].as_str().unwrap()
            );
            let severity = case
                .properties
                .iter()
                .find(|p| p.name.as_str() == "severity")
                .unwrap();
            assert_eq!(severity.value.as_str(), r["severity"].as_str().unwrap());
            match (&case.status, r["status"].as_str().unwrap()) {
                (TestCaseStatus::Success { .. }, "pass") => {}
                (
                    TestCaseStatus::NonSuccess {
                        kind: NonSuccessKind::Failure,
                        message,
                        ty,
                        description,
                        ..
                    },
                    "fail",
                ) => {
                    assert_eq!(message.as_ref().unwrap().as_str(), r["message"]);
                    assert_eq!(ty.as_ref().unwrap().as_str(), r["severity"]);
                    let body = description.as_ref().unwrap().as_str();
                    for f in r["findings"].as_array().unwrap() {
                        assert!(body.contains(f["message"].as_str().unwrap()), "{body}");
                    }
                }
                (
                    TestCaseStatus::NonSuccess {
                        kind: NonSuccessKind::Error,
                        message,
                        ..
                    },
                    "inconclusive",
                ) => assert_eq!(
                    message.as_ref().unwrap().as_str(),
                    r["reason"]["detail"].as_str().unwrap()
                ),
                (TestCaseStatus::Skipped { .. }, "skipped") => {}
                (status, json_status) => {
                    panic!(
                        "{}: JUnit {status:?} for a {json_status} result",
                        case.name.as_str()
                    )
                }
            }
        }
    }
}

/// Failing rule ids of a JSON report.
fn failing_rules(json: &Value) -> BTreeSet<String> {
    json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["rule_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn demo_reports_in_junit_markdown_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let out = bin()
        .args(["demo", "-q", "--json"])
        .arg(p("demo.json"))
        .arg("--report")
        .arg(format!("junit={}", p("demo.xml").display()))
        .arg("--report")
        .arg(format!("markdown={}", p("demo.md").display()))
        .arg("--report")
        .arg(format!("html={}", p("demo.html").display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = load(&p("demo.json"));
    let failing = failing_rules(&json);
    assert!(failing.len() > 20, "the demo lab fails many rules");

    junit_matches_json(&junit(&p("demo.xml")), &json);

    // Markdown: the verdict first, every failing rule, the inconclusive results with reasons.
    let md = std::fs::read_to_string(p("demo.md")).unwrap();
    assert!(
        md.starts_with("## secgate: gate ❌ FAILED\n"),
        "{}",
        &md[..200]
    );
    for id in &failing {
        assert!(
            md.contains(&format!("[`{id}`](#rule-")),
            "{id} in the Markdown"
        );
        assert!(
            md.contains(&format!("<summary><code>{id}</code>")),
            "{id} documented"
        );
    }
    assert!(md.contains(&format!(
        "### Inconclusive ({})",
        count(&json, "inconclusive")
    )));
    assert!(md.contains("timeout: "), "reasons are shown");

    // HTML: small, self-contained, and read by a real browser.
    let html = std::fs::read_to_string(p("demo.html")).unwrap();
    assert!(html.len() < 300_000, "demo HTML is {} bytes", html.len());
    assert!(
        !html.contains("src=") && !html.contains("<link"),
        "self-contained"
    );
    assert!(
        html.contains(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        )
    );

    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let page = artifacts.join("secgate-demo-report.html");
    std::fs::write(&page, &html).unwrap();
    let dom = dump_dom(&page);
    assert!(
        dom.contains("<span id=\"gate\">FAILED</span>"),
        "verdict in the DOM"
    );
    for id in &failing {
        assert!(
            dom.contains(&format!("<code>{id}</code>")),
            "{id} in the DOM"
        );
        assert!(
            dom.contains(&format!("<section class=\"rule\" id=\"rule-{id}\">")),
            "{id}'s documentation in the DOM"
        );
    }
    // The script ran, so the page's CSP allowed exactly its own script.
    assert!(dom.contains("data-enhanced=\"yes\""), "script blocked?");
    assert!(dom.contains(&format!(" of {} shown", json_findings(&json))));

    let shot = artifacts.join("secgate-demo-report.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &[
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,800",
        ],
        &page,
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 800));
    println!("screenshot kept at {}", shot.display());
}

fn json_findings(json: &Value) -> usize {
    json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["findings"].as_array().unwrap().len())
        .sum()
}

/// Markup in a header value (here a version banner) stays text in every writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_in_a_header_value_is_shown_as_text() {
    const HOSTILE: &str = "PHP/7.4.3 <script>document.documentElement.setAttribute('data-pwned','yes')</script>]]></failure><x a=\"&amp;'\">| [x](javascript:alert(1)) *";
    let mut site = Site::legacy();
    site.headers.retain(|(k, _)| k != "x-powered-by");
    site.headers.push(("x-powered-by".into(), HOSTILE.into()));
    let site = support::https_site(site).await;
    let closed = closed_port("127.0.0.1").to_string();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let reports = [
        format!("junit={}", p("r.xml").display()),
        format!("markdown={}", p("r.md").display()),
        format!("html={}", p("r.html").display()),
    ];
    let run = site.scan(&[
        "--checks",
        "headers",
        "--http-port",
        &closed,
        "--report",
        &reports[0],
        "--report",
        &reports[1],
        "--report",
        &reports[2],
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let disclosure = run.result("headers.version_disclosure");
    assert!(disclosure["message"].as_str().unwrap().contains(HOSTILE));

    // JUnit: still well-formed, and the banner survives as text.
    let j = junit(&p("r.xml"));
    junit_matches_json(&j, run.json());
    let case = j.test_suites[0]
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "headers.version_disclosure")
        .unwrap();
    let TestCaseStatus::NonSuccess {
        message,
        description,
        ..
    } = &case.status
    else {
        panic!("not a failure: {case:?}");
    };
    assert!(message.as_ref().unwrap().as_str().contains(HOSTILE));
    assert!(description.as_ref().unwrap().as_str().contains(HOSTILE));

    // Markdown: no tag, no link, no cell border from the target.
    let md = std::fs::read_to_string(p("r.md")).unwrap();
    assert!(!md.contains("<script") && !md.contains("<x a="), "{md}");
    assert!(md.contains("&lt;script&gt;document"));
    assert!(md.contains("\\| \\[x\\](javascript\\:alert(1)) \\*"));

    // HTML: the raw page holds no tag of the target's, and the browser shows it as text.
    let html = std::fs::read_to_string(p("r.html")).unwrap();
    assert!(!html.contains("<script>document") && !html.contains("<x a="));
    let page = dir.path().join("r.html");
    let dom = dump_dom(&page);
    assert!(
        !dom.contains("data-pwned=\"yes\""),
        "the target's script ran"
    );
    assert!(
        dom.contains("x-powered-by: PHP/7.4.3 &lt;script&gt;document.documentElement.setAttribute('data-pwned','yes')&lt;/script&gt;]]&gt;&lt;/failure&gt;&lt;x a=\"&amp;amp;'\"&gt;"),
        "the banner is text in the DOM"
    );
}

/// `--json -` puts the report on stdout; the verdict still reaches the CI log, on stderr.
/// `--github` appends the Markdown summary to $GITHUB_STEP_SUMMARY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_on_stdout_keeps_the_verdict_on_stderr_and_github_appends_a_summary() {
    let site = support::https_site(Site::legacy()).await;
    let closed = closed_port("127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step_summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let mut args: Vec<String> = vec!["scan".into(), site.url.clone()];
    args.extend(site.flags.iter().cloned());
    args.extend(
        [
            "--checks",
            "headers",
            "--http-port",
            &closed.to_string(),
            "--json",
            "-",
            "--github",
        ]
        .map(String::from),
    );
    let out = bin()
        .args(&args)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("Score "), "{stderr}");
    assert!(lines[0].contains(&format!(
        "{} inconclusive · {} passed",
        count(&json, "inconclusive"),
        count(&json, "pass")
    )));
    assert!(lines[1].starts_with("Gate FAILED: "), "{stderr}");

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n## secgate: gate ❌ FAILED\n"),
        "{md}"
    );
    for id in failing_rules(&json) {
        assert!(md.contains(&format!("[`{id}`]")), "{id}");
    }

    // Without the variable, --github says so once and writes nothing else.
    let out = bin()
        .args(&args)
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("secgate: note: --github: GITHUB_STEP_SUMMARY is not set"),
        "{stderr}"
    );
}

/// A sweep of a large range can fail with thousands of findings; GitHub refuses a step summary
/// over 1 MiB, so the page is cut, and says how much it left out.
#[test]
fn markdown_stays_under_one_mebibyte_for_5000_findings() {
    use secgate::model::{Evidence, Outcome, Severity, Status, Subject};
    let plan = secgate::plan::ScanPlan::new(Vec::new(), &secgate::family_options());
    let now = time::OffsetDateTime::now_utc();
    let mut outcomes = Vec::new();
    for host in 0..50 {
        let target = format!("10.0.{host}.0/24");
        let mut o = Outcome {
            rule_id: "ports.unexpected_open",
            family: "ports",
            target: target.clone(),
            status: Status::Fail,
            severity: Severity::Medium,
            title: "Unexpected open port",
            message: "100 open ports not in allowed_ports".into(),
            evidence: Evidence::none(),
            reason: None,
            fingerprint: secgate::model::fingerprint("ports.unexpected_open", &target),
            findings: Vec::new(),
            subjects: Vec::new(),
            suppressed: false,
            suppression: None,
        };
        for port in 0..100u16 {
            let addr = std::net::SocketAddr::from(([10, 0, host, 7], 8000 + port));
            o.finding(
                Subject::address_port(addr),
                format!("open port not in allowed_ports: {addr} with a banner that is rather long, like the ones real services send <b>"),
                Evidence::none().text("banner", "x".repeat(200)),
            );
        }
        outcomes.push(o);
    }
    let result = secgate::model::ScanResult {
        started_at: now,
        finished_at: now,
        complete: true,
        targets: Vec::new(),
        outcomes,
    };
    let triaged = secgate::triage::triage(result);
    let summary = secgate::summarise::summarise(&triaged.result.outcomes, &[], true, &plan.policy);
    let mut report = secgate::report::ScanReport::build(&plan, triaged, summary);
    secgate::report::escape::sanitize(&mut report);
    let md = secgate::report::markdown::render(&report);
    assert!(md.len() < 1 << 20, "{} bytes", md.len());
    assert!(
        md.len() > 900_000,
        "the budget is used, not wasted: {} bytes",
        md.len()
    );
    assert!(md.contains("### Findings (5000)"));
    let shown = md.matches("| [`ports.unexpected_open`]").count();
    let note = md
        .lines()
        .find(|l| l.contains("more findings are not shown"))
        .expect("a truncation note");
    let left: usize = note
        .trim_start_matches('_')
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(shown + left, 5000, "{note}");
    assert!(!md.contains("<b>"), "target text is escaped");
    assert!(
        md.contains("<summary><code>ports.unexpected_open</code>"),
        "the rule is documented: {}",
        &md[md.len() - 600..]
    );
}

/// Report files: `/dev/null` and a FIFO are written in place and stay what they are; a
/// symlink planted at the old predictable temp name (`PATH.json.tmp`) is never followed, and
/// no temp file is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_never_replace_devices_fifos_or_follow_planted_links() {
    use std::os::unix::fs::FileTypeExt;
    let site = support::https_site(Site::hardened()).await;
    let closed = closed_port("127.0.0.1").to_string();
    let scan = |extra: &[&str]| {
        let out = bin()
            .args(["scan", &site.url])
            .args(&site.flags)
            .args(["--checks", "headers", "--http-port", &closed, "-q"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    scan(&["--json", "/dev/null", "--report", "html=/dev/null"]);
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(meta.file_type().is_char_device(), "/dev/null was replaced");

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    scan(&["--json", fifo.to_str().unwrap()]);
    let json: Value = serde_json::from_str(&reader.join().unwrap()).expect("JSON through the FIFO");
    assert_eq!(json["summary"]["gate"]["verdict"], "passed");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let report = dir.path().join("report.json");
    std::os::unix::fs::symlink(&victim, dir.path().join("report.json.tmp")).unwrap();
    scan(&["--json", report.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(&report).unwrap().is_file());
    load(&report);
    // Written again over the existing file: replaced, still one file, nothing left over.
    scan(&["--json", report.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["report.fifo", "report.json", "report.json.tmp", "victim"]
    );

    // A symlink the user names is followed to its file, which is replaced.
    let named = dir.path().join("latest.json");
    std::os::unix::fs::symlink(&report, &named).unwrap();
    std::fs::write(&report, "old\n").unwrap();
    scan(&["--json", named.to_str().unwrap()]);
    assert!(
        std::fs::symlink_metadata(&named)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    load(&report);
}

/// `secgate diff --json PATH` goes through the same report writer: `/dev/null` and a FIFO are
/// written in place; a file hard-linked to another is replaced, never written through (the
/// other name keeps its bytes); a new file is owner-only like every report; a symlink planted
/// at the old predictable temp name is never followed; nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_json_uses_the_report_writer() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let site = support::https_site(Site::hardened()).await;
    let closed = closed_port("127.0.0.1").to_string();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("scan.json");
    let out = bin()
        .args(["scan", &site.url])
        .args(&site.flags)
        .args([
            "--checks",
            "headers",
            "--http-port",
            &closed,
            "-q",
            "--json",
        ])
        .arg(&report)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let diff = |path: &Path| {
        let out = bin()
            .arg("diff")
            .arg(&report)
            .arg(&report)
            .arg("--json")
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    diff(Path::new("/dev/null"));
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(meta.file_type().is_char_device(), "/dev/null was replaced");

    let fifo = dir.path().join("diff.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    diff(&fifo);
    let json: Value = serde_json::from_str(&reader.join().unwrap()).expect("JSON through the FIFO");
    assert_eq!(json["failed"], false);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // A new file: owner-only, as the other reports.
    let path = dir.path().join("diff.json");
    std::os::unix::fs::symlink(dir.path().join("victim"), dir.path().join("diff.json.tmp"))
        .unwrap();
    diff(&path);
    assert_eq!(load(&path)["counts"]["new"], 0);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !dir.path().join("victim").exists(),
        "followed the planted link"
    );

    // An existing name hard-linked to another file: the name is replaced, the other file
    // keeps its bytes (std::fs::write would have truncated and rewritten both).
    std::fs::remove_file(&path).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::hard_link(&victim, &path).unwrap();
    diff(&path);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_ne!(
        std::fs::metadata(&victim).unwrap().ino(),
        std::fs::metadata(&path).unwrap().ino()
    );
    load(&path);

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "diff.fifo",
            "diff.json",
            "diff.json.tmp",
            "scan.json",
            "victim"
        ]
    );
}
