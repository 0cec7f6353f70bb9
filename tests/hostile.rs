//! Hostile and broken targets: every one ends within its timeout as `inconclusive` with the
//! right reason, never a crash, a hang or a pass.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::time::{Duration, Instant};

use secgate::lab::{Hostile, Pki, Site};
use support::{closed_port, hostile_at, secgate};

/// Scan `url` with a 1 s timeout; return the run and how long it took.
fn scan(url: &str, extra: &[&str]) -> (support::Run, Duration) {
    let start = Instant::now();
    let mut args = vec!["scan", url, "--timeout", "1", "--http-port", "9"];
    args.extend(extra);
    let run = secgate(&args);
    (run, start.elapsed())
}

/// Every rule is inconclusive with `kind`; the gate is undecided (exit 3).
fn assert_all_inconclusive(run: &support::Run, kind: &str) {
    let results = run.json()["results"].as_array().unwrap();
    assert_eq!(results.len(), secgate::checks::headers::RULE_IDS.len());
    for r in results {
        assert_eq!(r["status"], "inconclusive", "{r}");
        assert_eq!(r["reason"]["kind"], kind, "{r}");
    }
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.json()["summary"]["gate"]["verdict"], "undecided");
}

// Bound on a whole run with --timeout 1: a safety net against hangs, not a performance claim.
const HANG: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tarpit_times_out() {
    let s = hostile_at("127.0.0.1", Hostile::Tarpit).await;
    let (run, took) = scan(&format!("http://127.0.0.1:{}/", s.addr.port()), &[]);
    assert_all_inconclusive(&run, "timeout");
    assert!(took < HANG, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_at_the_request_deadline() {
    let s = hostile_at("127.0.0.1", Hostile::Slowloris).await;
    let (run, took) = scan(&format!("http://127.0.0.1:{}/", s.addr.port()), &[]);
    assert_all_inconclusive(&run, "timeout");
    assert!(took < HANG, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_malformed() {
    let s = hostile_at("127.0.0.1", Hostile::Garbage).await;
    let (run, _) = scan(&format!("http://127.0.0.1:{}/", s.addr.port()), &[]);
    assert_all_inconclusive(&run, "malformed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_is_reported() {
    let s = hostile_at("127.0.0.1", Hostile::Reset).await;
    let (run, _) = scan(&format!("http://127.0.0.1:{}/", s.addr.port()), &[]);
    assert_all_inconclusive(&run, "reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_numerous_headers_are_too_large() {
    for kind in [Hostile::HugeHeaders, Hostile::ManyHeaders] {
        let s = hostile_at("127.0.0.1", kind).await;
        let (run, _) = scan(&format!("http://127.0.0.1:{}/", s.addr.port()), &[]);
        assert_all_inconclusive(&run, "too_large");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_garbage_server_fails_the_handshake() {
    let s = hostile_at("127.0.0.1", Hostile::Garbage).await;
    let (run, _) = scan(&format!("https://127.0.0.1:{}/", s.addr.port()), &[]);
    let results = run.json()["results"].as_array().unwrap();
    for r in results
        .iter()
        // The TLS family reads the garbage itself (tests/tls.rs): malformed, not a handshake error.
        .filter(|r| r["family"] == "headers" && r["rule_id"] != "http.no_https_redirect")
    {
        assert_eq!(r["reason"]["kind"], "tls", "{r}");
    }
    assert_eq!(run.code, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_tarpit_times_out() {
    let s = hostile_at("127.0.0.1", Hostile::Tarpit).await;
    let (run, took) = scan(&format!("https://127.0.0.1:{}/", s.addr.port()), &[]);
    assert_eq!(
        run.result("headers.csp.missing")["reason"]["kind"],
        "timeout"
    );
    assert!(took < HANG, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_gets_one_target_level_status() {
    let port = closed_port("127.0.0.1");
    let (run, _) = scan(&format!("https://127.0.0.1:{port}/"), &[]);
    let t = &run.json()["targets"][0];
    assert_eq!(t["status"], "unreachable");
    assert_eq!(t["error"]["kind"], "refused");
    assert_eq!(run.json()["results"].as_array().unwrap().len(), 0);
    assert_eq!(run.code, 3);
    let reasons = run.json()["summary"]["gate"]["reasons"].to_string();
    assert!(reasons.contains("1 target unreachable"), "{reasons}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_name_is_unreachable() {
    let (run, _) = scan("https://does-not-exist.invalid/", &[]);
    assert_eq!(run.json()["targets"][0]["status"], "unreachable");
    assert!(matches!(
        run.json()["targets"][0]["error"]["kind"].as_str(),
        Some("dns" | "timeout")
    ));
    assert_eq!(run.code, 3);
}

/// TLS rules a rustls lab site under a private CA skips: no RSA key exchange, no must-staple
/// certificate, a `--ca-file` CA (CT is judged for public CAs).
const SKIPPED_ON_LAB_TLS: [&str; 3] = [
    "tls.vuln.robot",
    "tls.ocsp.must_staple_missing",
    "tls.ct.missing",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_target_does_not_stall_the_others() {
    let tarpit = hostile_at("127.0.0.1", Hostile::Tarpit).await;
    let pki = Pki::new().unwrap();
    let good = secgate::lab::serve(
        secgate::lab::bind("127.0.0.1:0").await.unwrap(),
        Site::hardened().router(),
        Some(pki.server_config(&["127.0.0.1"]).unwrap()),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let good_url = format!("https://127.0.0.1:{}/", good.addr.port());
    let (run, took) = scan(
        &format!("http://127.0.0.1:{}/", tarpit.addr.port()),
        &[&good_url, "--ca-file", ca.to_str().unwrap()],
    );
    let good_results = run.statuses(Some(&good_url));
    // The tls.profile.* rules are skipped without a profile (tests/profiles.rs).
    assert!(
        good_results
            .iter()
            .filter(|(id, _)| !id.starts_with("tls.profile."))
            // Skipped by design here: no RSA key exchange (ROBOT), no must-staple certificate,
            // a private CA (CT).
            .all(|(id, s)| s == "pass"
                || (SKIPPED_ON_LAB_TLS.contains(&id.as_str()) && s == "skipped")),
        "{good_results:?}"
    );
    assert!(took < HANG);
    assert_eq!(
        run.code, 3,
        "the tarpit's inconclusive results alone keep the gate undecided"
    );
}
