//! The command line as a user meets it: help, exit codes 0/1/2/3/130, bad input, rules,
//! explain, validate, and the README's config example.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::time::Duration;

use secgate::lab::{Hostile, Site};
use support::{bin, closed_port, hostile_at, https_site, repo_path, secgate};

/// A usage error: exit 2, nothing on stdout, exactly one line on stderr naming `needle`.
fn assert_usage_error(run: &support::Run, needle: &str) {
    assert_eq!(
        run.code, 2,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(needle),
        "{:?} not in {}",
        needle,
        run.stderr
    );
}

#[test]
fn help_documents_the_exit_codes() {
    for args in [&["--help"][..], &["scan", "--help"]] {
        let run = secgate(args);
        assert_eq!(run.code, 0);
        for code in [
            "0    gate passed",
            "1    gate failed",
            "2    usage",
            "3    gate not decided",
            "130  interrupted",
        ] {
            assert!(
                run.stdout.contains(code),
                "{code} missing from {}",
                run.stdout
            );
        }
    }
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    assert_usage_error(
        &secgate(&["scan", "htp://example.test/"]),
        "TARGET: 'htp://example.test/': unsupported scheme 'htp'",
    );
    assert_usage_error(&secgate(&["scan", "https://exa mple.test/"]), "TARGET:");
    assert_usage_error(
        &secgate(&["scan", "example.test:70000"]),
        "invalid port '70000'",
    );
    assert_usage_error(
        &secgate(&["scan", "example.test", "--checks", "headers,nope"]),
        "--checks: unknown family 'nope' (available: headers, ",
    );
    assert_usage_error(&secgate(&["scan"]), "TARGET: no target given");
    assert_usage_error(
        &secgate(&["scan", "example.test", "--timeout", "0"]),
        "--timeout: must be between",
    );
    assert_usage_error(
        &secgate(&["scan", "example.test", "--concurrency", "0"]),
        "--concurrency: must be between 1 and 4096",
    );
    assert_usage_error(
        &secgate(&["scan", "example.test", "--min-score", "101"]),
        "--min-score: must be between 0 and 100",
    );
    assert_usage_error(
        &secgate(&["scan", "example.test", "--resolve", "nonsense"]),
        "--resolve: 'nonsense': expected HOST:PORT:ADDR",
    );
    assert_usage_error(
        &secgate(&["scan", "example.test", "--ca-file", "/nonexistent/ca.pem"]),
        "--ca-file: /nonexistent/ca.pem",
    );
    assert_usage_error(
        &secgate(&["scan", "example.test", "--json", "/nonexistent/dir/r.json"]),
        "--json: directory /nonexistent/dir does not exist",
    );
    assert_usage_error(
        &secgate(&["explain", "headers.nope"]),
        "RULE_ID: unknown rule 'headers.nope'; did you mean one of: headers.hsts.missing",
    );
    assert_usage_error(
        &secgate(&["rules", "--family", "nope"]),
        "--family: unknown family 'nope'",
    );
    // A negative number is a value, not a flag: our own range check names the flag.
    assert_usage_error(
        &secgate(&["scan", "example.test", "--min-score", "-1"]),
        "--min-score: must be between 0 and 100, got -1",
    );
    assert_usage_error(
        &secgate(&["scan", "example.test", "--cert-expiry-days", "-5"]),
        "--cert-expiry-days: must be between 0 and 3650, got -5",
    );
    // A password in a URL is refused without being repeated.
    let run = secgate(&["scan", "https://admin:Hunter2Pw@127.0.0.1:1/"]);
    assert_usage_error(
        &run,
        "TARGET: 'https://[REDACTED]@127.0.0.1:1/': credentials in the URL are not accepted",
    );
    assert!(!run.stderr.contains("Hunter2Pw") && !run.stdout.contains("Hunter2Pw"));
    assert_usage_error(
        &secgate(&["scan", "--config", "/nonexistent.toml"]),
        "--config: /nonexistent.toml: No such file",
    );
    // clap's own errors are one line too, naming the flag.
    assert_usage_error(
        &secgate(&["scan", "example.test", "--timeout", "soon"]),
        "invalid value 'soon' for '--timeout <SECS>'",
    );
    assert_usage_error(
        &secgate(&["scan", "example.test", "--bogus"]),
        "unexpected argument '--bogus'",
    );
}

#[test]
fn bad_config_files_exit_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[scan]\ntimeout = 5\nconcurency = 3\n",
            "bad.toml:3:1: unknown field `concurency`",
        ),
        (
            "[scan]\ntimeout = \"5\"\n",
            "bad.toml:2:11: scan.timeout: expected a number",
        ),
        (
            "[scan]\nconcurrency = \"x\"\n",
            "bad.toml:2:15: scan.concurrency: invalid type: string \"x\", expected an integer",
        ),
        ("[scan\n", "bad.toml:1:"),
        (
            "[[target]]\nurl = \"https://a.test/\"\nport = 1\n",
            "bad.toml:3:1: unknown field `port`",
        ),
        (
            "[[target]]\nurl = \"notaurl\"\n",
            "bad.toml:2:7: target[0].url: 'notaurl' is not a URL",
        ),
        (
            "[policy]\nmin_score = 120\n",
            "bad.toml:2:13: policy.min_score: must be between 0 and 100",
        ),
        (
            "[scan]\nca_file = \"missing.pem\"\n",
            "bad.toml:2:11: scan.ca_file:",
        ),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap();
        assert_usage_error(&secgate(&["validate", p]), needle);
        assert_usage_error(&secgate(&["scan", "--config", p]), needle);
    }
    assert_usage_error(
        &secgate(&["validate", "/nonexistent.toml"]),
        "/nonexistent.toml: No such file",
    );
}

/// The README's complete config example is `reports/examples/secgate.toml`, and it validates
/// as shipped: in place, with nothing planted next to it (no CA file, no secrets set).
#[test]
fn readme_config_example_is_valid() {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let after = readme
        .split("<!-- config-example -->")
        .nth(1)
        .expect("marker in README");
    let block = after
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let shipped = repo_path("reports/examples/secgate.toml");
    assert_eq!(
        std::fs::read_to_string(&shipped).unwrap(),
        block,
        "the README block and reports/examples/secgate.toml must be the same text"
    );
    let run = secgate(&["validate", shipped.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("OK (4 targets, families: all that apply)"),
        "{}",
        run.stdout
    );
    // Every top-level key the config accepts appears in the example.
    for key in [
        "checks",
        "timeout",
        "concurrency",
        "per_host",
        "max_redirects",
        "http_port",
        "cert_expiry_days",
        "ca_file",
        "insecure",
        "resolve",
        "min_score",
        "max_critical",
        "url",
        "host",
        "name",
        "role",
        "method",
        "path",
        "headers",
        "header_env",
        "body_format",
        "username",
        "username_field",
        "password_field",
        "password_env",
        "success_status",
        "success_contains",
        "failure_status",
        "failure_contains",
        "success_location",
        "failure_location",
        "token_env",
        "expired_token_env",
        "max_requests",
        "rps",
        "attempts",
        "samples",
        "ports",
        "allowed_ports",
        "port_concurrency",
        "dns_server",
        "allow_large_range",
        "mail_domains",
        "suppressions",
        "max_high",
        "gate_on",
        "fail_on_stale",
        "allow_permanent_suppressions",
        "max_suppression_days",
        "expect_closed",
    ] {
        assert!(
            block.contains(&format!("{key} =")),
            "README example lacks {key}"
        );
    }
}

#[test]
fn rules_and_explain() {
    let run = secgate(&["rules"]);
    assert_eq!(run.code, 0);
    for rule in secgate::catalogue::all() {
        assert!(run.stdout.contains(&rule.id), "{} missing", rule.id);
    }
    assert!(run.stdout.contains("headers.cookie.insecure") && run.stdout.contains("high"));

    let run = secgate(&["explain", "headers.hsts.missing"]);
    assert_eq!(run.code, 0);
    for section in [
        "What it checks",
        "Why it matters",
        "How to fix it",
        "References",
        "rfc6797",
        "CWE-319",
    ] {
        assert!(
            run.stdout.contains(section),
            "{section} missing from {}",
            run.stdout
        );
    }
    let run = secgate(&["explain", "headers.hsts.missing", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["severity"], "medium");
    assert_eq!(v["family"], "headers");
    let run = secgate(&["rules", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), secgate::catalogue::all().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_gate() {
    let closed = closed_port("127.0.0.1").to_string();
    let good = https_site(Site::hardened()).await;
    assert_eq!(good.scan(&["--http-port", &closed]).code, 0);
    let bad = https_site(Site::legacy()).await;
    assert_eq!(bad.scan(&["--http-port", &closed]).code, 1);
    // The same findings pass a lenient gate.
    assert_eq!(
        bad.scan(&["--http-port", &closed, "--min-score", "0"]).code,
        0
    );
    // Unreachable: undecided.
    assert_eq!(
        secgate(&["scan", &format!("https://127.0.0.1:{closed}/")]).code,
        3
    );
    // A passing target plus an unreachable one: still undecided, never a pass.
    let run = secgate(&[
        "scan",
        &good.url,
        &format!("https://127.0.0.1:{closed}/"),
        &good.flags[0],
        &good.flags[1],
        &good.flags[2],
        &good.flags[3],
        "--http-port",
        &closed,
    ]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.json()["summary"]["score"], 100.0);
    // --quiet prints nothing.
    let run = good.scan(&["--http-port", &closed, "--quiet"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_scan_and_still_writes_reports() {
    let tarpit = hostile_at("127.0.0.1", Hostile::Tarpit).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let sarif = dir.path().join("r.sarif");
    let mut child = bin()
        .args([
            "scan",
            &format!("http://127.0.0.1:{}/", tarpit.addr.port()),
            "--timeout",
            "60",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--sarif")
        .arg(&sarif)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Give it time to connect and hang on the tarpit, then interrupt.
    let code = interrupt_after(&mut child, Duration::from_millis(1500));
    assert_eq!(code, Some(130));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["complete"], false);
    assert_eq!(report["targets"][0]["status"], "interrupted");
    assert_eq!(report["summary"]["gate"]["verdict"], "undecided");
    let r = &report["results"][0];
    assert_eq!(r["reason"]["kind"], "interrupted", "{r}");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(out.contains("INTERRUPTED"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_targets_and_flags_merge() {
    let site = https_site(Site::hardened()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, site.pki.ca_pem()).unwrap();
    let closed = closed_port("127.0.0.1");
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[scan]\nca_file = \"ca.pem\"\ntimeout = 2\nhttp_port = {closed}\n\n[policy]\nmin_score = 99\n\n[[target]]\nurl = \"{}\"\nresolve = [\"app.test:{}:127.0.0.1\"]\n",
            site.url,
            site.port()
        ),
    )
    .unwrap();
    let run = secgate(&["scan", "--config", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["policy"]["min_score"], 99.0);
    // A flag overrides the file.
    let run = secgate(&[
        "scan",
        "--config",
        cfg.to_str().unwrap(),
        "--min-score",
        "50",
    ]);
    assert_eq!(run.json()["policy"]["min_score"], 50.0);
    let run = secgate(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(
        run.stdout.trim(),
        format!("{}: OK (1 target, families: all that apply)", cfg.display())
    );
}

#[test]
fn demo_runs_the_lab_end_to_end() {
    let run = secgate(&["demo", "--no-color"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("shop.lab.test")
            && run.stdout.contains("headers.cors.reflect_credentials")
    );
    assert!(run.stdout.contains("Gate FAILED"), "{}", run.stdout);
    assert!(
        run.stdout.contains("could not be decided"),
        "the tarpit must show as undecided: {}",
        run.stdout
    );
}

/// `validate` lints a config where its secrets may be absent: it passes, and says what a scan
/// there would refuse, with the file position of the key.
#[test]
fn validate_notes_secrets_a_scan_would_miss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.toml");
    std::fs::write(
        &path,
        "[[target]]\nurl = \"https://127.0.0.1:9/\"\n[[target.endpoint]]\nname = \"login\"\nrole = \"login\"\npath = \"/login\"\nusername = \"alice\"\npassword_env = \"SECGATE_TEST_NEVER_SET\"\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let run = secgate(&["validate", p]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "note: {p}:8:16: target[0].endpoint[0](login).password_env: environment variable SECGATE_TEST_NEVER_SET is not set here"
        )),
        "{}",
        run.stdout
    );
    assert_usage_error(
        &secgate(&["scan", "--config", p]),
        &format!(
            "{p}:8:16: target[0].endpoint[0](login).password_env: environment variable SECGATE_TEST_NEVER_SET is not set"
        ),
    );
}

/// `secgate demo` interrupted exits 130 like `scan`, with its report marked incomplete.
#[test]
fn ctrl_c_stops_the_demo_with_130() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("demo.json");
    let mut child = bin()
        .args(["demo", "--quiet", "--json"])
        .arg(&json)
        .spawn()
        .unwrap();
    // The demo scans for about five seconds (its slow target and its throttled login).
    let code = interrupt_after(&mut child, Duration::from_millis(2000));
    assert_eq!(code, Some(130));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["complete"], false);
}

/// `--json -` writes the JSON report on standard output instead of the terminal report.
#[test]
fn a_report_can_go_to_standard_output() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    let run = secgate(&["scan", &target, "--timeout", "1", "--json", "-"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["targets"][0]["target"], target);
    assert!(!std::path::Path::new("-").exists());
    assert_usage_error(
        &secgate(&["scan", &target, "--json", "-", "--sarif", "-"]),
        "--sarif: only one report can go to standard output",
    );
}

/// Send SIGINT to `child` after `delay`; its exit code, within 20 s.
fn interrupt_after(child: &mut std::process::Child, delay: Duration) -> Option<i32> {
    std::thread::sleep(delay);
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "secgate did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The README states only what exists: the families it lists are the families `--checks`
/// takes (load included), every command of its table runs, and every flag of its `scan`
/// table is a flag of `secgate scan`.
#[test]
fn readme_states_only_what_exists() {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let listed: Vec<&str> = readme
        .split("Check families today:")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("- **")?.split("**").next())
        .collect();
    let mut families = secgate::checks::family_names();
    families.sort_unstable();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, families, "README's family list");
    for family in &listed {
        let run = secgate(&["rules", "--family", family]);
        assert_eq!(run.code, 0, "{family}: {}", run.stderr);
        // `--checks FAMILY` is accepted (the plan fails later for want of a target only).
        let run = secgate(&["scan", "--checks", family]);
        assert_eq!(run.code, 2);
        assert!(
            run.stderr.contains("no target given"),
            "{family}: {}",
            run.stderr
        );
    }

    let commands: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `secgate ")?.split([' ', '`']).next())
        .collect();
    assert!(commands.len() >= 9, "{commands:?}");
    for command in &commands {
        let run = secgate(&[command, "--help"]);
        assert_eq!(run.code, 0, "secgate {command} --help: {}", run.stderr);
    }

    let help = secgate(&["scan", "--help"]).stdout;
    let table = readme
        .split("`scan` flags (the config file sets the same things; flags win):")
        .nth(1)
        .unwrap()
        .trim_start()
        .split("\n\n")
        .next()
        .unwrap();
    let mut flags = 0;
    for row in table.lines().filter(|l| l.starts_with("| `-")) {
        let cell = row.split('|').nth(1).unwrap();
        for flag in cell
            .split('`')
            .filter_map(|p| p.split_whitespace().next())
            .filter(|f| f.starts_with("--"))
        {
            flags += 1;
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "README names {flag}, which `secgate scan` does not take"
            );
        }
    }
    assert!(flags > 30, "{flags} flags read from the table");
}
