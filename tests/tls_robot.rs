//! `tls.vuln.robot` against real servers on loopback: the lab's scripted RSA key-exchange
//! servers (src/lab/robot.rs), which decrypt the ClientKeyExchange with their key and answer
//! with each oracle shape, Debian's `openssl s_server` with RSA key exchange (no oracle), a
//! rustls server (no RSA key exchange: skipped), and servers that turn hostile after the
//! ClientKeyExchange.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use secgate::lab::robot::{RobotOracle, RobotServer, serve_robot};
use secgate::lab::tls::{self, LeafSpec, TlsPki};
use secgate::lab::{self, Site};
use serde_json::Value;
use support::{OpensslServer, Run, secgate};

const ROBOT: &str = "tls.vuln.robot";

fn robot<'a>(run: &'a Run, target: &str) -> &'a Value {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == target && r["rule_id"] == ROBOT)
        .unwrap_or_else(|| panic!("no {ROBOT} for {target}:\n{}", run.stdout))
}

async fn robot_lab(oracle: RobotOracle) -> RobotServer {
    serve_robot(
        lab::bind("127.0.0.1:0").await.unwrap(),
        oracle,
        &["127.0.0.1"],
    )
    .unwrap()
}

fn target(s: &RobotServer) -> String {
    format!("127.0.0.1:{}", s.server.addr.port())
}

fn evidence(r: &Value, key: &str) -> String {
    let ev = &r["evidence"];
    let v = &ev[key];
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no evidence {key}: {r}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_oracle_shape_is_told_apart_and_good_servers_pass_or_are_skipped() {
    let uniform = robot_lab(RobotOracle::Uniform).await;
    let strong = robot_lab(RobotOracle::Strong).await;
    let weak = robot_lab(RobotOracle::Weak).await;
    let noisy = robot_lab(RobotOracle::Noisy).await;
    let dir = support::rsa_material();
    let openssl = OpensslServer::with_key(
        dir.path(),
        "cert.pem",
        "key.pem",
        &["-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0", "-www"],
    );
    let pki = TlsPki::new().unwrap();
    let (chain, key) = pki.leaf(&LeafSpec::new(&["127.0.0.1"])).unwrap();
    let rustls = lab::serve(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Site::hardened().router(),
        Some(tls::rustls_config(chain, key).unwrap()),
    );
    let rustls_target = format!("127.0.0.1:{}", rustls.addr.port());
    let targets = [
        target(&uniform),
        target(&strong),
        target(&weak),
        target(&noisy),
        openssl.target(),
        rustls_target.clone(),
    ];
    let mut args = vec!["scan"];
    args.extend(targets.iter().map(String::as_str));
    args.extend(["--checks", "tls", "--timeout", "3"]);
    let run = secgate(&args);

    // (a) Uniform: no oracle.
    let r = robot(&run, &targets[0]);
    assert_eq!(r["status"], "pass", "{r}");
    assert_eq!(evidence(r, "oracle"), "none");
    assert_eq!(
        evidence(r, "wrong_version"),
        "fatal alert bad_record_mac, then connection closed"
    );
    assert_eq!(uniform.key_exchanges.load(Ordering::SeqCst), 5);

    // (b) A different alert for a bad prefix or a missing separator: strong, critical.
    let r = robot(&run, &targets[1]);
    assert_eq!(r["status"], "fail", "{r}");
    assert_eq!(r["severity"], "critical", "{r}");
    assert_eq!(evidence(r, "oracle"), "strong");
    assert_eq!(
        evidence(r, "wrong_first_bytes"),
        "fatal alert decrypt_error, then connection closed"
    );
    assert_eq!(
        evidence(r, "no_zero_separator"),
        "fatal alert decrypt_error, then connection closed"
    );
    assert_eq!(
        evidence(r, "correct_padding"),
        "fatal alert bad_record_mac, then connection closed"
    );
    assert!(r["message"].as_str().unwrap().contains("strong"), "{r}");
    // Two answers of 2 and 3: the less common one is confirmed once.
    assert_eq!(strong.key_exchanges.load(Ordering::SeqCst), 6);

    // (c) Only the wrong version is told apart (a close instead of an alert): weak, high.
    let r = robot(&run, &targets[2]);
    assert_eq!(r["status"], "fail", "{r}");
    assert_eq!(r["severity"], "high", "{r}");
    assert_eq!(evidence(r, "oracle"), "weak");
    assert_eq!(evidence(r, "wrong_version"), "connection closed");
    assert_eq!(weak.key_exchanges.load(Ordering::SeqCst), 6);

    // An answer that does not repeat: inconclusive, never a pass or a guess.
    let r = robot(&run, &targets[3]);
    assert_eq!(r["status"], "inconclusive", "{r}");
    let detail = r["reason"]["detail"].as_str().unwrap();
    assert!(detail.contains("noisy"), "{detail}");
    assert_eq!(noisy.key_exchanges.load(Ordering::SeqCst), 6);

    // OpenSSL 3 with RSA key exchange answers every variant alike.
    let r = robot(&run, &targets[4]);
    assert_eq!(r["status"], "pass", "{r}");
    assert_eq!(evidence(r, "version"), "TLS 1.2");

    // rustls has no RSA key exchange.
    let r = robot(&run, &rustls_target);
    assert_eq!(r["status"], "skipped", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("no RSA key-exchange suite"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncation_and_silence_after_the_key_exchange_are_inconclusive() {
    let garbage = robot_lab(RobotOracle::Garbage).await;
    let truncate = robot_lab(RobotOracle::Truncate).await;
    let silence = robot_lab(RobotOracle::Silence).await;
    let targets = [target(&garbage), target(&truncate), target(&silence)];
    let mut args = vec!["scan"];
    args.extend(targets.iter().map(String::as_str));
    args.extend(["--checks", "tls", "--timeout", "1"]);
    let start = Instant::now();
    let run = secgate(&args);
    // A hang guard, not a performance figure: every read is bounded by the timeout.
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    for (t, kind, words) in [
        (&targets[0], "malformed", "not a TLS answer"),
        (&targets[1], "malformed", "truncated"),
        (
            &targets[2],
            "timeout",
            "no ClientKeyExchange variant got any answer",
        ),
    ] {
        let r = robot(&run, t);
        assert_eq!(r["status"], "inconclusive", "{t}: {r}");
        assert_eq!(r["reason"]["kind"], kind, "{t}: {r}");
        let detail = r["reason"]["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{t}: {detail}");
    }
    // The probe gave up on the first round: no repeats.
    assert_eq!(garbage.key_exchanges.load(Ordering::SeqCst), 5);
    assert_eq!(silence.key_exchanges.load(Ordering::SeqCst), 5);
}
