//! The pipeline's seams, end to end against real loopback servers: per-subject findings and
//! their fingerprints, one escaping step for what a target sent, the `--max-requests` ceiling
//! and the host-wide back-off, counted by the server that received the requests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secgate::lab::{self, Fake, LabServer};
use serde_json::Value;
use support::secgate;

const UNEXPECTED: &str = "ports.unexpected_open";

async fn fake(addr: &str, f: Fake) -> LabServer {
    lab::serve_fake(lab::bind(addr).await.unwrap(), f)
}

fn results<'a>(run: &'a support::Run, rule: &str) -> Vec<&'a Value> {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rule_id"] == rule)
        .collect()
}

/// `(subject key, fingerprint)` of every finding of the one result of `rule`.
fn findings(run: &support::Run, rule: &str) -> Vec<(String, String)> {
    let list = results(run, rule);
    assert_eq!(list.len(), 1, "one result per rule and target: {list:?}");
    list[0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings: {}", list[0]))
        .iter()
        .map(|f| {
            (
                f["subject"]["key"].as_str().unwrap().to_string(),
                f["fingerprint"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_open_ports_are_one_result_with_seven_findings() {
    let ip = "127.0.46.1";
    let ports: Vec<u16> = (2001..=2007).collect();
    let mut servers = Vec::new();
    for p in &ports {
        servers.push(
            fake(
                &format!("{ip}:{p}"),
                Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
            )
            .await,
        );
    }
    let scan = || {
        secgate(&[
            "scan",
            ip,
            "--checks",
            "ports",
            "--ports",
            "2000-2010",
            "--timeout",
            "1",
        ])
    };
    let first = scan();
    let second = scan();
    let one = results(&first, UNEXPECTED);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["status"], "fail", "{}", first.stdout);
    let a = findings(&first, UNEXPECTED);
    let b = findings(&second, UNEXPECTED);
    assert_eq!(a.len(), 7, "{a:?}");
    let subjects: Vec<String> = a.iter().map(|(s, _)| s.clone()).collect();
    let want: Vec<String> = ports.iter().map(|p| format!("tcp/{p}")).collect();
    assert_eq!(subjects, want);
    let distinct: BTreeSet<&String> = a.iter().map(|(_, f)| f).collect();
    assert_eq!(distinct.len(), 7, "seven distinct fingerprints: {a:?}");
    assert_eq!(a, b, "fingerprints are stable across scans");
    for f in one[0]["findings"].as_array().unwrap() {
        assert_eq!(f["subject"]["kind"], "port");
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .starts_with("open port not in allowed_ports: 127.0.46.1:200"),
            "{f}"
        );
    }
    // The score counts results, not findings: one failed medium control among four, as
    // before the split (the same score with one open port or seven).
    assert_eq!(first.json()["summary"], second.json()["summary"]);
    let score = first.json()["summary"]["score"].as_f64().unwrap();
    servers.truncate(1);
    let single = scan();
    assert_eq!(findings(&single, UNEXPECTED).len(), 1);
    assert_eq!(single.json()["summary"]["score"].as_f64().unwrap(), score);
    // The ports family's options also come from `[checks.ports]` in the config file.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[scan]\nchecks = [\"ports\"]\ntimeout = 1\n\n[checks.ports]\nports = \"2000-2010\"\nallowed_ports = [2001]\n\n[[target]]\nhost = \"{ip}\"\n"
        ),
    )
    .unwrap();
    let run = secgate(&["scan", "--config", cfg.to_str().unwrap()]);
    assert_eq!(
        results(&run, UNEXPECTED)[0]["status"],
        "pass",
        "{}",
        run.stdout
    );
    assert_eq!(
        results(&run, UNEXPECTED)[0]["evidence"]["ports_scanned"],
        11,
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_banner_cannot_drive_the_terminal() {
    let ip = "127.0.46.2";
    let _ftp = fake(
        &format!("{ip}:2121"),
        Fake::Banner("220 \x1b[2J\u{202e}evil FTP ready\r\n".as_bytes().to_vec()),
    )
    .await;
    // A web server whose Server header carries a bidi override (HTTP allows the bytes).
    let router = axum::Router::new().fallback(|| async {
        axum::http::Response::builder()
            .header(
                "server",
                axum::http::HeaderValue::from_bytes("nginx/1.2.3 \u{202e}txt.exe".as_bytes())
                    .unwrap(),
            )
            .body(axum::body::Body::from("ok"))
            .unwrap()
    });
    let _web = lab::serve(
        lab::bind(&format!("{ip}:8080")).await.unwrap(),
        router,
        None,
    );
    let run = secgate(&[
        "scan",
        ip,
        &format!("http://{ip}:8080/"),
        "--checks",
        "ports,headers",
        "--ports",
        "2121",
        "--timeout",
        "2",
        "--verbose",
    ]);
    assert!(
        run.stdout.contains(r"220 \u{1b}[2J\u{202e}evil FTP ready"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(r"\u{202e}txt.exe"), "{}", run.stdout);
    for bad in ['\x1b', '\u{202e}'] {
        assert!(!run.stdout.contains(bad), "raw {bad:?} in {}", run.stdout);
        assert!(!run.stderr.contains(bad), "raw {bad:?} in {}", run.stderr);
    }
}

/// A plain-HTTP server that records when each request arrived, and answers the first `limited`
/// requests with `429` and `Retry-After: 1`.
async fn counting(ip: &str, limited: usize) -> (LabServer, Arc<Mutex<Vec<Instant>>>) {
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = seen.clone();
    let router = axum::Router::new().fallback(move || {
        let log = log.clone();
        async move {
            let n = {
                let mut l = log.lock().unwrap();
                l.push(Instant::now());
                l.len()
            };
            let b = axum::http::Response::builder();
            let b = if n <= limited {
                b.status(429).header("retry-after", "1")
            } else {
                b.status(200)
            };
            b.header("content-type", "text/html")
                .body(axum::body::Body::from("<html>ok</html>"))
                .unwrap()
        }
    });
    let server = lab::serve(lab::bind(&format!("{ip}:0")).await.unwrap(), router, None);
    (server, seen)
}

fn requests_sent(run: &support::Run) -> u64 {
    run.json()["targets"][0]["requests"]
        .as_object()
        .unwrap_or_else(|| panic!("no requests in {}", run.json()["targets"]))
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_caps_what_the_server_receives() {
    let (server, seen) = counting("127.0.46.3", 0).await;
    let url = format!("http://{}/", server.addr);
    let free = secgate(&["scan", &url, "--checks", "headers", "--timeout", "2"]);
    let uncapped = seen.lock().unwrap().len();
    assert!(uncapped > 1, "the headers family sends several requests");
    assert_eq!(requests_sent(&free), uncapped as u64);
    assert_eq!(
        free.json()["targets"][0]["requests"]["headers"],
        uncapped as u64
    );

    seen.lock().unwrap().clear();
    let capped = secgate(&[
        "scan",
        &url,
        "--checks",
        "headers",
        "--timeout",
        "2",
        "--max-requests",
        "1",
    ]);
    assert_eq!(seen.lock().unwrap().len(), 1, "{}", capped.stdout);
    assert_eq!(requests_sent(&capped), 1);
    let refused: Vec<&Value> = capped.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "inconclusive" && r["reason"]["kind"] == "budget")
        .collect();
    assert!(!refused.is_empty(), "{}", capped.stdout);
    assert!(
        refused[0]["reason"]["detail"]
            .as_str()
            .unwrap()
            .contains("--max-requests 1"),
        "{}",
        refused[0]
    );
    // Never a pass bought by not asking: what went unasked is not passed.
    assert_ne!(capped.code, 0, "{}", capped.stdout);

    let bad = secgate(&["scan", &url, "--max-requests", "0"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--max-requests"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_slows_every_later_request_to_that_host() {
    let (server, seen) = counting("127.0.46.4", 1).await;
    let url = format!("http://{}/", server.addr);
    let run = secgate(&["scan", &url, "--checks", "headers", "--timeout", "3"]);
    let times = seen.lock().unwrap().clone();
    assert!(times.len() >= 2, "{} requests; {}", times.len(), run.stdout);
    // Retry-After: 1 on the first answer: nothing reached the host for a second after it.
    let gap = times[1].duration_since(times[0]);
    assert!(
        gap >= Duration::from_millis(950),
        "second request after {gap:?}"
    );
    let backoff = &run.json()["targets"][0]["backoff"];
    assert!(backoff["events"].as_u64().unwrap() >= 1, "{backoff}");
    assert!(backoff["waited_ms"].as_u64().unwrap() >= 950, "{backoff}");
    assert_eq!(requests_sent(&run), times.len() as u64);
}
