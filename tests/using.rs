//! What a new user meets around a scan: targets from a file or standard input, shell
//! completions and the manual page.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use secgate::lab::Site;
use support::{bin, closed_port};

/// `--targets-file FILE` and `--targets-file -` read one target per line, with comments;
/// a bad line is one error naming the file and line, exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_from_a_file_or_standard_input() {
    let site = support::https_site(Site::hardened()).await;
    let closed = closed_port("127.0.0.1").to_string();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets.txt");
    std::fs::write(
        &list,
        format!("# staging services\n\n  {}   # the shop\n", site.url),
    )
    .unwrap();
    let common = ["--checks", "headers", "--http-port", &closed];
    let run = site.scan(&[&["--targets-file", list.to_str().unwrap()][..], &common[..]].concat());
    // The site is named twice (argument and file): it is scanned once.
    let targets: Vec<&str> = run.json()["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [site.url.as_str()], "{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // Standard input, without a target argument.
    let report = dir.path().join("stdin.json");
    let mut child = bin()
        .args(["scan", "--targets-file", "-"])
        .args(&site.flags)
        .args(common)
        .arg("--json")
        .arg(&report)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", site.url).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["targets"][0]["target"], site.url.as_str());

    // A bad line, a missing file, an empty file: one line each, naming the flag.
    std::fs::write(&list, format!("{}\n# fine\nhttps://\n", site.url)).unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nothing yet\n\n").unwrap();
    let missing = dir.path().join("missing.txt");
    for (file, expect) in [
        (&list, format!("{}:3: ", list.display())),
        (&missing, format!("{}: ", missing.display())),
        (&empty, "names no target".to_string()),
    ] {
        let out = bin()
            .args(["scan", "--targets-file"])
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("secgate: error: --targets-file: "), "{err}");
        assert!(err.contains(&expect), "{err} should contain {expect}");
    }
}

/// `secgate completions SHELL` writes a script its shell accepts; `secgate man` a page `man`
/// renders, with every subcommand and the families' flags.
#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        // fish writes `-l checks`, the others `--checks`.
        assert!(
            script.contains("checks") && script.contains("report"),
            "{shell}"
        );
        assert!(
            script.contains("allowed-ports"),
            "{shell}: the families' flags are completed"
        );
    }
    let bash = bin().args(["completions", "bash"]).output().unwrap().stdout;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secgate.bash");
    std::fs::write(&file, &bash).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let out = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("tcsh"), "{err}");

    let page = bin().arg("man").output().unwrap();
    assert_eq!(page.status.code(), Some(0));
    let roff = String::from_utf8(page.stdout).unwrap();
    assert!(
        roff.starts_with(".ie \\n(.g .ds Aq") || roff.contains(".TH secgate 1"),
        "{}",
        &roff[..200]
    );
    if Path::new("/usr/bin/man").exists() {
        let man = dir.path().join("secgate.1");
        std::fs::write(&man, &roff).unwrap();
        let out = Command::new("man")
            .arg("-l")
            .arg(&man)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for section in [
            "SECGATE SCAN",
            "SECGATE DEMO",
            "SECGATE COMPLETIONS",
            "Exit codes:",
        ] {
            assert!(text.contains(section), "{section} in the rendered page");
        }
        assert!(
            text.contains("--report"),
            "scan's flags in the rendered page"
        );
        assert!(
            text.contains("--allowed-ports"),
            "a family's flags in the rendered page"
        );
    } else {
        println!("man is not installed: the page was generated but not rendered");
    }
}

/// `--color always|never|auto` beside NO_COLOR: the flag wins over the variable, and auto
/// never colours a pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn color_flag_beside_no_color() {
    let site = support::https_site(Site::legacy()).await;
    let closed = closed_port("127.0.0.1").to_string();
    let scan = |color: &str, no_color_env: bool| {
        let mut cmd = bin();
        cmd.args(["scan", &site.url])
            .args(&site.flags)
            .args([
                "--checks",
                "headers",
                "--http-port",
                &closed,
                "--color",
                color,
            ])
            .stdin(Stdio::null());
        if no_color_env {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stdout).unwrap()
    };
    let ansi = "\x1b[";
    assert!(scan("always", false).contains(ansi));
    assert!(
        scan("always", true).contains(ansi),
        "the flag wins over NO_COLOR"
    );
    assert!(!scan("never", false).contains(ansi));
    assert!(!scan("auto", false).contains(ansi), "stdout is a pipe");
    let out = bin()
        .args(["scan", "x.test", "--color", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--color"));
}

/// The `run:` script of the step with `id: NAME` in action.yml.
fn action_step(yml: &str, id: &str) -> String {
    let lines: Vec<&str> = yml.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == format!("id: {id}"))
        .unwrap_or_else(|| panic!("no step {id}"));
    let run = at
        + lines[at..]
            .iter()
            .position(|l| l.trim() == "run: |")
            .unwrap();
    let indent = lines[run].len() - lines[run].trim_start().len() + 2;
    lines[run + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The GitHub Action's scan and gate steps, run for real with bash against a loopback site:
/// the reports named in `reports`, the SARIF, the job summary, and the gate's exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_action_scan_step_runs_and_gates() {
    let yml = std::fs::read_to_string(support::repo_path("action.yml")).unwrap();
    assert!(yml.contains("using: composite"));
    let site = support::https_site(Site::legacy()).await;
    let closed = closed_port("127.0.0.1").to_string();
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("github_output");
    let summary = dir.path().join("step_summary");
    let mut args = site.flags.clone();
    args.extend(["--http-port".to_string(), closed]);
    let scan = Command::new("bash")
        .arg("-c")
        .arg(action_step(&yml, "scan"))
        .current_dir(dir.path())
        .env("SECGATE", env!("CARGO_BIN_EXE_secgate"))
        .env("TARGETS", format!("{}\n", site.url))
        .env("CONFIG", "")
        .env("CHECKS", "headers")
        .env("MIN_SCORE", "")
        .env("MAX_CRITICAL", "")
        .env("SARIF", "out.sarif")
        .env("REPORTS", "junit=out.xml\nhtml=out.html\n")
        .env("SUMMARY", "true")
        .env("ARGS", args.join(" "))
        .env("GITHUB_OUTPUT", &out_file)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        scan.status.success(),
        "the step itself succeeds: {}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let outputs = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(outputs.trim(), "exit-code=1", "{outputs}");
    for f in ["out.sarif", "out.xml", "out.html"] {
        assert!(dir.path().join(f).is_file(), "{f} written");
    }
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## secgate: gate ❌ FAILED"), "{md}");

    for (code, ok) in [("0", true), ("1", false), ("3", false)] {
        let gate = Command::new("bash")
            .arg("-c")
            .arg(action_step(&yml, "gate"))
            .env("CODE", code)
            .output()
            .unwrap();
        assert_eq!(gate.status.success(), ok, "gate step with {code}");
        if !ok {
            assert_eq!(gate.status.code().unwrap().to_string(), code);
        }
    }
}

/// `--progress always` draws targets done / total and the running family on stderr, even into
/// a pipe; `auto` draws nothing into a pipe, and `--quiet` nothing at all. stdout is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_on_stderr() {
    let site = support::https_site(Site::hardened()).await;
    let closed = closed_port("127.0.0.1").to_string();
    let scan = |extra: &[&str]| {
        let out = bin()
            .args(["scan", &site.url])
            .args(&site.flags)
            .args(["--checks", "headers,tls", "--http-port", &closed])
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (stdout, stderr) = scan(&["--progress", "always"]);
    // The last frame may be skipped by the refresh rate; the total is drawn.
    assert!(
        stderr.contains("targets 0/1 · ") || stderr.contains("targets 1/1 · "),
        "{stderr:?}"
    );
    assert!(
        stderr.contains(&format!("headers on {}", site.url))
            || stderr.contains(&format!("tls on {}", site.url)),
        "{stderr:?}"
    );
    assert!(stdout.contains("Gate PASSED"), "{stdout}");
    assert!(!stdout.contains("targets "));
    let (_, stderr) = scan(&["--progress", "auto"]);
    assert!(stderr.is_empty(), "{stderr:?}");
    let (stdout, stderr) = scan(&["--progress", "always", "--quiet"]);
    assert!(stderr.is_empty() && stdout.is_empty(), "{stderr:?}");
}

/// The child's stderr, and whether it shows a panic.
fn panicked(stderr: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stderr);
    text.contains("panicked") || text.contains("RUST_BACKTRACE")
}

/// `secgate demo | head -1`: the reader leaves after one line; demo ends quietly with exit 0.
/// A scan whose stdout is closed still writes its report files and exits with the gate's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_quietly() {
    use std::io::BufRead;
    let mut child = bin()
        .arg("demo")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
        // `head -1` exits here: the pipe's read end is closed.
    }
    assert!(first.starts_with("Started a lab of"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert!(
        !panicked(&out.stderr),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A scan whose gate fails (legacy site: exit 1), stdout closed before it writes a byte.
    let site = support::https_site(Site::legacy()).await;
    let closed = closed_port("127.0.0.1").to_string();
    let dir = tempfile::tempdir().unwrap();
    for to_stdout in [false, true] {
        let report = dir.path().join(format!("closed-{to_stdout}.json"));
        let mut cmd = bin();
        cmd.args(["scan", &site.url])
            .args(&site.flags)
            .args(["--checks", "headers", "--http-port", &closed])
            .arg("--sarif")
            .arg(&report);
        if to_stdout {
            // The JSON report itself goes to the closed stdout.
            cmd.args(["--json", "-"]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!panicked(&out.stderr), "{err}");
        assert!(!err.contains("error"), "{err}");
        assert_eq!(out.status.code(), Some(1), "{err}");
        let sarif: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        if to_stdout {
            assert!(
                err.contains("Gate FAILED"),
                "the verdict still reaches stderr: {err}"
            );
        }
    }
    // The smaller commands too.
    for args in [&["rules"][..], &["explain", "tls.cert.expired"][..]] {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(!panicked(&out.stderr), "{args:?}");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
}

/// Secrets are read only for the endpoints of the families that run: `--checks tls` on a
/// config whose login password variable is unset scans; `--checks auth` refuses, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_only_for_families_that_run() {
    let site = support::https_site(Site::hardened()).await;
    let closed = closed_port("127.0.0.1").to_string();
    let endpoint = "[[target.endpoint]]\nname = \"login\"\nrole = \"login\"\npath = \"/login\"\nusername = \"alice\"\npassword_env = \"SECGATE_TEST_UNSET_PASSWORD\"\n";
    let run = site.scan_config(endpoint, &["--checks", "tls", "--http-port", &closed], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(run.statuses(None).keys().all(|r| r.starts_with("tls.")));
    for checks in ["auth", "headers", "ratelimit"] {
        let run = site.scan_config(endpoint, &["--checks", checks, "--http-port", &closed], &[]);
        assert_eq!(run.code, 2, "{checks}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("password_env: environment variable SECGATE_TEST_UNSET_PASSWORD"),
            "{checks}: {}",
            run.stderr
        );
    }
}

/// `--checks auth,ratelimit` on a command-line target says once that these families need
/// `[[target.endpoint]]` tables, and where the README shows them; `--mail-domain` with no
/// target the dns family runs on says the domain is not checked.
#[test]
fn families_that_cannot_run_say_so_once() {
    let closed = closed_port("127.0.93.1").to_string();
    let out = bin()
        .args([
            "scan",
            "127.0.93.1",
            "127.0.93.2",
            "--checks",
            "auth,ratelimit",
        ])
        .args(["--ports", &closed, "--timeout", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let notes: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("secgate: note:"))
        .collect();
    assert_eq!(notes.len(), 1, "{err}");
    for part in [
        "auth, ratelimit",
        "[[target.endpoint]]",
        "127.0.93.1, 127.0.93.2 name none",
        "12 rules",
        "README, \"Configuration\"",
    ] {
        assert!(notes[0].contains(part), "{part} in {}", notes[0]);
    }
    assert_eq!(out.status.code(), Some(3), "nothing was evaluated");

    let out = bin()
        .args([
            "scan",
            "127.0.93.1",
            "--checks",
            "ports",
            "--ports",
            &closed,
        ])
        .args(["--timeout", "1", "--mail-domain", "example.org", "-q"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("secgate: note: --mail-domain (mail_domains): example.org is not checked"),
        "{err}"
    );
    let out = bin()
        .args(["scan", "127.0.93.1", "--mail-domain", "bad..domain"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("secgate: error: --mail-domain: "));
}

/// The smaller rough edges: each gives one clear line naming the flag or key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rough_edges_of_the_first_hour() {
    // `rules --family` takes a list, as `--checks` does.
    let out = bin()
        .args(["rules", "--family", "tls,dns", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rules: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let families: std::collections::BTreeSet<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["family"].as_str().unwrap())
        .collect();
    assert_eq!(families.into_iter().collect::<Vec<_>>(), ["dns", "tls"]);
    let out = bin()
        .args(["rules", "--family", "tls,nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("secgate: error: --family: unknown family 'nope'")
    );

    // `explain` does not care about case.
    let out = bin()
        .args(["explain", "TLS.CERT.EXPIRED"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tls.cert.expired"));

    // Config mistakes name their key.
    let dir = tempfile::tempdir().unwrap();
    for (text, expect) in [
        (
            "[scan]\ntimeout = 99999999999999999999999\n",
            ":2:11: scan.timeout: 99999999999999999999999 is out of range",
        ),
        (
            "[scan]\nmax_requests = 99999999999999999999\n",
            ":2:16: scan.max_requests: 99999999999999999999 is out of range",
        ),
        (
            "[[target.endpoint]]\nname = \"login\"\n\n[[target]]\nurl = \"https://a.test/\"\n",
            ":1:3: target.endpoint: [[target.endpoint]] must come after the [[target]] it belongs to",
        ),
        (
            "[target]\nurl = \"https://a.test/\"\n",
            ":1:1: target: write [[target]] (an array of tables), not [target]",
        ),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let out = bin().arg("validate").arg(&file).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expect), "{err} should contain {expect}");
        assert!(
            !err.contains("i128") && !err.contains("expected a sequence"),
            "{err}"
        );
    }

    // A tarpit on a plain-HTTP port: no TLS handshake to blame.
    let tarpit = support::hostile_at("127.0.93.3", secgate::lab::Hostile::Tarpit).await;
    let url = format!("http://127.0.93.3:{}/", tarpit.addr.port());
    let run = support::secgate(&["scan", &url, "--checks", "headers", "--timeout", "1"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let reasons: Vec<&str> = run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reason"]["detail"].as_str())
        .collect();
    assert!(!reasons.is_empty());
    for r in &reasons {
        assert!(!r.contains("TLS"), "{r}");
    }
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("timed out waiting for the response")),
        "{reasons:?}"
    );
}

/// A host where nothing answers on any swept port is `no service found` (exit 3), never a
/// pass at 100 %; a target with `expect_closed = true` passes.
#[test]
fn a_host_with_nothing_open_is_no_service_found() {
    let ports: Vec<String> = (0..3)
        .map(|_| closed_port("127.0.93.4").to_string())
        .collect();
    let ports = ports.join(",");
    let run = support::secgate(&["scan", "127.0.93.4", "--ports", &ports, "--timeout", "1"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let json = run.json();
    let reasons: Vec<&str> = json["summary"]["gate"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"no service found on 127.0.93.4"),
        "{reasons:?}"
    );
    assert_ne!(json["summary"]["score"], 100.0);
    let r = run.result("ports.unexpected_open");
    assert_eq!(r["status"], "inconclusive");
    assert_eq!(r["reason"]["kind"], "no_service");
    assert!(
        r["reason"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("no service found: none of the 3 swept ports"),
        "{r}"
    );
    assert!(run.stdout.contains("no service found"), "{}", run.stdout);
    // The report with the new reason kind validates against the schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(support::repo_path(
            "reports/schema/secgate-report.v1.schema.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // The same host, said to be closed.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!("[[target]]\nhost = \"127.0.93.4\"\nports = \"{ports}\"\nexpect_closed = true\n"),
    )
    .unwrap();
    let run = support::secgate(&["scan", "--config", cfg.to_str().unwrap(), "--timeout", "1"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.result("ports.unexpected_open")["status"], "pass");
    std::fs::write(
        &cfg,
        "[[target]]\nhost = \"127.0.93.4\"\nexpect_closed = \"yes\"\n",
    )
    .unwrap();
    let run = support::secgate(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(":3:17: target[0].expect_closed: invalid type"),
        "{}",
        run.stderr
    );
}

/// A small HTTP proxy on loopback for the `--proxy` test: `CONNECT host:port` opens a tunnel,
/// an absolute-form request (`GET http://host:port/...`) is forwarded. Every host is reached
/// at the one loopback address it is given (its own "hosts file": the scan's names are made up). Request heads
/// are capped at 8 KiB, every wait is bounded, and it counts what it served.
struct TestProxy {
    url: String,
    tunnels: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    forwards: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestProxy {
    async fn start(ip: &str, upstream: std::net::IpAddr) -> TestProxy {
        use std::sync::Arc;
        use std::sync::atomic::AtomicUsize;
        let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let tunnels = Arc::new(AtomicUsize::new(0));
        let forwards = Arc::new(AtomicUsize::new(0));
        let (t, f) = (tunnels.clone(), forwards.clone());
        let task = tokio::spawn(async move {
            // Bounded: at most 500 connections over the test's life.
            for _ in 0..500 {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (t, f) = (t.clone(), f.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(30),
                        Self::serve(client, upstream, t, f),
                    )
                    .await;
                });
            }
        });
        TestProxy {
            url,
            tunnels,
            forwards,
            task,
        }
    }

    async fn serve(
        mut client: tokio::net::TcpStream,
        upstream_ip: std::net::IpAddr,
        tunnels: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        forwards: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> std::io::Result<()> {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const CAP: usize = 8192;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() > CAP {
                return client.write_all(b"HTTP/1.1 431 Too Large\r\n\r\n").await;
            }
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), client.read(&mut buf))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            if n == 0 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let mut parts = line.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let authority = if method == "CONNECT" {
            target.to_string()
        } else {
            let rest = target.strip_prefix("http://").unwrap_or("");
            rest.split('/').next().unwrap_or("").to_string()
        };
        let Some(port) = authority
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
        else {
            return client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        };
        let Ok(mut upstream) = tokio::net::TcpStream::connect((upstream_ip, port)).await else {
            return client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                .await;
        };
        if method == "CONNECT" {
            tunnels.fetch_add(1, Ordering::SeqCst);
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
        } else {
            forwards.fetch_add(1, Ordering::SeqCst);
            upstream.write_all(&head).await?;
        }
        tokio::io::copy_bidirectional(&mut client, &mut upstream)
            .await
            .map(|_| ())
    }

    fn counts(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering;
        (
            self.tunnels.load(Ordering::SeqCst),
            self.forwards.load(Ordering::SeqCst),
        )
    }
}

/// `--proxy URL`: the headers family's requests go through the proxy (a CONNECT tunnel for
/// https://, a proxy request for http://) and judge the same; without `--proxy`, HTTPS_PROXY /
/// HTTP_PROXY / ALL_PROXY in the environment are ignored; `--proxy env` reads them. A bad
/// URL is exit 2 naming `--proxy`, without the credentials it carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_for_the_http_families() {
    let site = support::https_site_at("127.0.93.5", "app.test", Site::legacy()).await;
    let http = support::http_site_at("127.0.93.5", Site::legacy()).await;
    let http_port = http.addr.port().to_string();
    let proxy = TestProxy::start("127.0.93.6", "127.0.93.5".parse().unwrap()).await;
    let headers_only = |run: &support::Run| {
        run.statuses(None)
            .into_iter()
            .filter(|(k, _)| k.starts_with("headers."))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let common = ["--checks", "headers", "--http-port", &http_port];
    let env = [
        ("HTTPS_PROXY", proxy.url.as_str()),
        ("HTTP_PROXY", proxy.url.as_str()),
        ("ALL_PROXY", proxy.url.as_str()),
        ("https_proxy", proxy.url.as_str()),
        ("http_proxy", proxy.url.as_str()),
    ];
    let scan = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args: Vec<&str> = vec!["scan", &site.url];
        args.extend(site.flags.iter().map(String::as_str));
        args.extend(common);
        args.extend(extra);
        support::secgate_env(&args, env)
    };

    // Without --proxy, with every proxy variable pointing at it: nothing goes through it.
    let direct = scan(&[], &env);
    assert_eq!(direct.code, 1, "{}", direct.stderr);
    assert_eq!(
        proxy.counts(),
        (0, 0),
        "the environment's proxy must be ignored"
    );

    let via = scan(&["--proxy", &proxy.url], &[]);
    assert_eq!(via.code, 1, "{}", via.stderr);
    let (tunnels, forwards) = proxy.counts();
    assert!(
        tunnels >= 1,
        "the HTTPS requests went through CONNECT tunnels"
    );
    assert!(forwards >= 1, "the plain-HTTP probe went through the proxy");
    assert_eq!(
        headers_only(&via),
        headers_only(&direct),
        "the same judgement either way"
    );
    assert_eq!(
        via.result("http.no_https_redirect")["status"],
        direct.result("http.no_https_redirect")["status"]
    );

    // `--proxy env` reads the variables.
    let via_env = scan(&["--proxy", "env"], &env);
    assert_eq!(via_env.code, 1, "{}", via_env.stderr);
    assert!(proxy.counts().0 > tunnels, "--proxy env uses HTTPS_PROXY");
    assert_eq!(headers_only(&via_env), headers_only(&direct));

    // `--proxy env` with nothing set says so, and connects directly.
    let before = proxy.counts();
    let mut cmd = bin();
    cmd.args(["scan", &site.url])
        .args(&site.flags)
        .args(common)
        .args(["--proxy", "env", "-q"])
        .stdin(Stdio::null());
    for (k, _) in env
        .iter()
        .chain(&[("all_proxy", ""), ("NO_PROXY", ""), ("no_proxy", "")])
    {
        cmd.env_remove(k);
    }
    let none = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("secgate: note: --proxy env: none of HTTPS_PROXY"),
        "{err}"
    );
    assert_eq!(proxy.counts(), before);

    for (bad, expect) in [
        ("socks5://127.0.0.1:1080", "only HTTP proxies are supported"),
        ("http://user:s3cret@[::1", "is not a proxy URL"),
        ("http://127.0.0.1:3128/path", "no path or query"),
        ("nonsense", "is not a proxy URL"),
    ] {
        let run = scan(&["--proxy", bad], &[]);
        assert_eq!(run.code, 2, "{bad}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with("secgate: error: --proxy: "),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(expect), "{}", run.stderr);
        assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    }
}

/// For a port sweep the progress line shows (address, port) pairs done and open so far.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_of_a_sweep() {
    // An open port that never speaks keeps identification busy long enough to be drawn.
    let tarpit = support::hostile_at("127.0.93.7", secgate::lab::Hostile::Tarpit).await;
    let ports = format!(
        "{},{},{}",
        tarpit.addr.port(),
        closed_port("127.0.93.7"),
        closed_port("127.0.93.7")
    );
    let out = bin()
        .args(["scan", "127.0.93.7", "--checks", "ports", "--ports", &ports])
        .args(["--timeout", "1", "--progress", "always"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ports on 127.0.93.7: 3/3 swept, 1 open"),
        "{stderr:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("swept,"));
    // Not a TTY and not asked: nothing.
    let out = bin()
        .args(["scan", "127.0.93.7", "--checks", "ports", "--ports", &ports])
        .args(["--timeout", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The load family's connections tunnel through `--proxy` too (CONNECT), and ignore the
/// environment's proxy without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_family_tunnels_through_the_proxy() {
    let site = support::https_site_at("127.0.93.8", "app.test", Site::hardened()).await;
    let proxy = TestProxy::start("127.0.93.9", "127.0.93.8".parse().unwrap()).await;
    let keys = "rate = 20, duration = 1, warmup = 0, idle = 0, connections = 2";
    let toml = format!("load = {{ {keys} }}\n");
    let env = [
        ("HTTPS_PROXY", proxy.url.as_str()),
        ("ALL_PROXY", proxy.url.as_str()),
    ];
    let run = tokio::task::block_in_place(|| site.scan_config(&toml, &["--checks", "load"], &env));
    // Timing rules may be inconclusive on a loaded machine; a failure would mean lost requests.
    assert_ne!(
        run.result("load.throughput")["status"],
        "fail",
        "{}",
        run.stdout
    );
    assert_eq!(proxy.counts(), (0, 0), "the environment's proxy is ignored");

    let run = tokio::task::block_in_place(|| {
        site.scan_config(&toml, &["--checks", "load", "--proxy", &proxy.url], &[])
    });
    let r = run.result("load.throughput");
    assert_ne!(r["status"], "fail", "{r}");
    assert_ne!(
        run.result("load.error_rate")["status"],
        "fail",
        "{}",
        run.stdout
    );
    let (tunnels, forwards) = proxy.counts();
    assert!(
        (2..=8).contains(&tunnels),
        "one tunnel per connection: {tunnels}"
    );
    assert_eq!(forwards, 0);
    assert!(
        run.json()["targets"][0]["requests"]["load"]
            .as_u64()
            .unwrap()
            >= 20
    );
}
