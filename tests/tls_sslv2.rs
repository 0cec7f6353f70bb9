//! SSLv2, DROWN and Ticketbleed against real servers on loopback: the lab's scripted SSLv2
//! responder (with and without cipher specs, presenting the RSA certificate a real `openssl
//! s_server` serves over TLS: DROWN), its session-ticket server (issuing tickets, and echoing a
//! padded 32-byte session id on resumption: Ticketbleed), Debian's `openssl s_server` for the
//! good cases (OpenSSL 3 has no SSLv2 and resumes tickets as RFC 5077 says), and hostile
//! variants of each (garbage, a truncated record, silence).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secgate::checks::tls::sslv2_wire;
use secgate::lab::tls::{LeafSpec, TlsPki};
use secgate::lab::vulns::{self, Sslv2Lab, Step, TicketLab};
use secgate::lab::{self, LabServer};
use serde_json::Value;
use support::{OpensslServer, Run, secgate};

const SSLV2: &str = "tls.protocol.sslv2";
const DROWN: &str = "tls.vuln.drown";
const TICKETBLEED: &str = "tls.vuln.ticketbleed";

fn result<'a>(run: &'a Run, target: &str, rule: &str) -> &'a Value {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == target && r["rule_id"] == rule)
        .unwrap_or_else(|| panic!("no {rule} for {target}: {}", run.stderr))
}

fn status(run: &Run, target: &str, rule: &str) -> String {
    result(run, target, rule)["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three RSA-2048 certificates for 127.0.0.1, each with its own key: `NAME.pem`, `NAME.key`.
fn material() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["shared", "other", "v2only"] {
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "365",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
        );
    }
    dir
}

fn der(dir: &Path, name: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(dir.join(name))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

fn target(s: &LabServer) -> String {
    format!("127.0.0.1:{}", s.addr.port())
}

async fn sslv2(ciphers: &[u32], certificate: Vec<u8>, step: Step) -> LabServer {
    vulns::serve_sslv2(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Sslv2Lab {
            ciphers: ciphers.to_vec(),
            certificate,
            step,
        },
    )
}

async fn tickets(tickets: bool, bleed: bool, step: Step) -> LabServer {
    let pki = TlsPki::new().unwrap();
    let (chain, _) = pki.leaf(&LeafSpec::new(&["127.0.0.1"])).unwrap();
    vulns::serve_tickets(
        lab::bind("127.0.0.1:0").await.unwrap(),
        TicketLab {
            tickets,
            bleed,
            step,
            chain,
        },
    )
}

fn scan(targets: &[String], extra: &[&str]) -> Run {
    let mut args = vec!["scan"];
    args.extend(targets.iter().map(String::as_str));
    args.extend(["--checks", "tls", "--timeout", "2"]);
    args.extend(extra);
    secgate(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslv2_drown_and_ticketbleed_fail_on_servers_that_have_them_and_pass_on_openssl() {
    let dir = material();
    let p = dir.path();
    let rc4 = [0x010080, 0x0700c0];
    // The SSLv2 responder presents the certificate (and so the key) that s_server serves.
    let v2 = sslv2(&rc4, der(p, "shared.pem"), Step::Answer).await;
    let v2_empty = sslv2(&[], der(p, "v2only.pem"), Step::Answer).await;
    let victim = OpensslServer::with_key(p, "shared.pem", "shared.key", &[]);
    let clean = OpensslServer::with_key(p, "other.pem", "other.key", &[]);
    let bleeding = tickets(true, true, Step::Answer).await;
    let sound = tickets(true, false, Step::Answer).await;
    let no_tickets = tickets(false, false, Step::Answer).await;
    let [v2, v2_empty, victim, clean, bleeding, sound, no_tickets] = [
        target(&v2),
        target(&v2_empty),
        victim.target(),
        clean.target(),
        target(&bleeding),
        target(&sound),
        target(&no_tickets),
    ];
    let all = [
        v2.clone(),
        v2_empty.clone(),
        victim.clone(),
        clean.clone(),
        bleeding.clone(),
        sound.clone(),
        no_tickets.clone(),
    ];
    let run = scan(&all, &[]);
    let out = format!("{}\n{}", run.stdout, run.stderr);

    // SSLv2: a SERVER-HELLO fails, with its ciphers, or with none (CVE-2015-3197).
    let r = result(&run, &v2, SSLV2);
    assert_eq!(r["status"], "fail", "{out}");
    assert_eq!(
        r["message"],
        "the server accepts SSLv2 and offers 2 SSLv2 ciphers: SSL_CK_RC4_128_WITH_MD5, SSL_CK_DES_192_EDE3_CBC_WITH_MD5"
    );
    let shared_key = r["evidence"]["sslv2_spki_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(shared_key.len(), 64);
    let r = result(&run, &v2_empty, SSLV2);
    assert_eq!(r["status"], "fail");
    assert!(
        r["message"].as_str().unwrap().contains("lists no cipher")
            && r["message"].as_str().unwrap().contains("CVE-2015-3197"),
        "{r}"
    );
    assert_eq!(r["evidence"]["sslv2_ciphers"], serde_json::json!([]));
    for t in [&victim, &clean, &bleeding, &sound, &no_tickets] {
        assert_eq!(status(&run, t, SSLV2), "pass", "{t}: {out}");
    }
    assert!(
        result(&run, &victim, SSLV2)["message"]
            .as_str()
            .unwrap()
            .starts_with("the server refuses SSLv2 ("),
    );

    // DROWN: s_server never speaks SSLv2, but its key is served over SSLv2 by the responder.
    let r = result(&run, &victim, DROWN);
    assert_eq!(r["status"], "fail", "{r}");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.contains(&v2) && message.contains("DROWN"),
        "{message}"
    );
    assert!(!message.contains(&v2_empty), "{message}");
    assert_eq!(
        r["evidence"]["spki_sha256"],
        serde_json::json!([shared_key])
    );
    assert_eq!(r["findings"].as_array().unwrap().len(), 1);
    for t in [&clean, &bleeding, &sound, &no_tickets] {
        let r = result(&run, t, DROWN);
        assert_eq!(r["status"], "pass", "{t}: {r}");
        assert_eq!(
            r["message"],
            "no endpoint of the scan (7 in all) serves this server's TLS key over SSLv2"
        );
    }
    // The SSLv2 responders accept no TLS version: nothing for DROWN to decrypt there.
    for t in [&v2, &v2_empty] {
        assert_eq!(status(&run, t, DROWN), "skipped", "{t}");
    }

    // Ticketbleed: 31 bytes of memory after the 1-byte session id; only lengths reported.
    let r = result(&run, &bleeding, TICKETBLEED);
    assert_eq!(r["status"], "fail", "{r}");
    assert_eq!(
        r["message"],
        "the server resumed a session ticket sent with a 1-byte session id and echoed a 32-byte session id: the 31 extra bytes are its memory (Ticketbleed)"
    );
    assert_eq!(r["evidence"]["session_id_returned"], 32);
    let report = run.json().to_string();
    let memory = std::str::from_utf8(vulns::TICKET_MEMORY).unwrap();
    for text in [&run.stdout, &run.stderr, &report] {
        assert!(!text.contains(&memory[..12]), "echoed bytes shown");
    }
    let r = result(&run, &sound, TICKETBLEED);
    assert_eq!(r["status"], "pass", "{r}");
    assert_eq!(
        r["message"],
        "the server resumed a session ticket and echoed a 1-byte session id for the 1-byte one sent"
    );
    assert_eq!(
        result(&run, &no_tickets, TICKETBLEED)["message"],
        "the server issues no session ticket (TLS 1.2), which Ticketbleed needs"
    );
    // OpenSSL 3 issues a ticket and, resuming it, echoes the 1-byte session id.
    for t in [&victim, &clean] {
        let r = result(&run, t, TICKETBLEED);
        assert_eq!(r["status"], "pass", "{t}: {r}");
        assert_eq!(r["evidence"]["session_id_returned"], 1, "{r}");
    }
    assert_eq!(run.code, 1, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sslv2_and_ticket_servers_are_inconclusive_within_the_timeout() {
    let dir = material();
    let p = dir.path();
    let cert = der(p, "v2only.pem");
    let mut servers = Vec::new();
    for step in [Step::Garbage, Step::Truncate, Step::Silence] {
        servers.push(sslv2(&[0x010080], cert.clone(), step).await);
    }
    for step in [Step::Garbage, Step::Truncate, Step::Silence] {
        servers.push(tickets(true, true, step).await);
    }
    let clean = OpensslServer::with_key(p, "other.pem", "other.key", &[]);
    let mut targets: Vec<String> = servers.iter().map(target).collect();
    targets.push(clean.target());
    let started = Instant::now();
    let run = scan(&targets, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let out = format!("{}\n{}", run.stdout, run.stderr);
    let reasons = |t: &str, rule: &str| -> String {
        let r = result(&run, t, rule);
        assert_eq!(r["status"], "inconclusive", "{t} {rule}: {r}\n{out}");
        r["reason"]["detail"].as_str().unwrap().to_string()
    };
    let garbage = reasons(&targets[0], SSLV2);
    assert!(garbage.contains("SSLv2 CLIENT-HELLO to"), "{garbage}");
    assert!(
        reasons(&targets[1], SSLV2).contains("ended inside an SSLv2 record"),
        "truncated"
    );
    assert!(reasons(&targets[2], SSLV2).contains("within the timeout"));
    assert!(
        reasons(&targets[3], TICKETBLEED).contains("not a TLS answer"),
        "garbage"
    );
    assert!(reasons(&targets[4], TICKETBLEED).contains("truncated"));
    assert!(reasons(&targets[5], TICKETBLEED).contains("within the timeout"));
    // A server whose SSLv2 answer is unknown might serve any key over SSLv2: nobody passes DROWN.
    let detail = reasons(&targets[6], DROWN);
    assert!(
        detail.contains("may serve this key over SSLv2")
            && targets[..3].iter().any(|t| detail.contains(t.as_str())),
        "{detail}"
    );
    assert_eq!(status(&run, &targets[6], SSLV2), "pass");
    assert_ne!(run.code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_never_passes_drown_and_the_merge_joins_the_shards() {
    let dir = material();
    let p = dir.path();
    let clean = OpensslServer::with_key(p, "other.pem", "other.key", &[]);
    let victim = OpensslServer::with_key(p, "shared.pem", "shared.key", &[]);
    let v2 = sslv2(&[0x010080], der(p, "shared.pem"), Step::Answer).await;
    let targets = [clean.target(), victim.target(), target(&v2)];
    let out = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut seen = 0;
    for (n, shard) in ["1/2", "2/2"].into_iter().enumerate() {
        let file = out.path().join(format!("shard{n}.json"));
        let run = scan(
            &targets,
            &["--shard", shard, "--json", file.to_str().unwrap()],
        );
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        files.push(file);
        for r in report["results"].as_array().unwrap() {
            if r["rule_id"] != DROWN || r["status"] == "skipped" {
                continue;
            }
            seen += 1;
            // The victim may fail in the shard that also audits the SSLv2 server; nothing passes.
            assert_ne!(r["status"], "pass", "{r}\n{}", run.stderr);
            if r["status"] == "inconclusive" {
                assert!(
                    r["reason"]["detail"]
                        .as_str()
                        .unwrap()
                        .contains("one shard of a scan"),
                    "{r}"
                );
            }
        }
    }
    assert_eq!(seen, 2, "the two TLS endpoints");
    // Merged: decided across the shards, as one scan decides it.
    let merged_path = out.path().join("merged.json");
    let mut args = vec!["merge", "-q", "--json", merged_path.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let merged = secgate(&args);
    let merged: Value = serde_json::from_str(
        &std::fs::read_to_string(&merged_path).unwrap_or_else(|e| panic!("{e}: {}", merged.stderr)),
    )
    .unwrap();
    let whole = scan(&targets, &[]);
    for t in &targets[..2] {
        let m = merged["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == t.as_str() && r["rule_id"] == DROWN)
            .unwrap();
        let w = result(&whole, t, DROWN);
        assert_eq!(m["status"], w["status"], "{t}");
        assert_eq!(m["message"], w["message"], "{t}");
        assert_eq!(m["findings"], w["findings"], "{t}");
    }
    assert_eq!(status(&whole, &targets[0], DROWN), "pass");
    assert_eq!(status(&whole, &targets[1], DROWN), "fail");
    assert_eq!(merged["summary"], whole.json()["summary"]);
}

#[test]
fn the_client_hello_is_what_an_sslv2_server_expects() {
    let hello = sslv2_wire::client_hello(&[1; 16]);
    assert!(sslv2_wire::is_client_hello(&hello));
    assert_eq!(hello.len(), 2 + 9 + 24 + 16);
}
