//! Certificate status rules against real servers on loopback: rustls servers stapling
//! responses made by the lab OCSP signer (good, revoked, expired, delegated, forged...), Debian's
//! `openssl s_server` stapling a response made by `openssl ocsp` and serving SCTs in the TLS
//! extension, lab certificates with and without must-staple and embedded SCTs, and hostile
//! servers (a garbage or truncated staple, silence).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secgate::lab::ocsp::{self, LabStatus, Responder, ResponseSpec};
use secgate::lab::tls::{self, LeafSpec, TlsPki};
use secgate::lab::{self, Hostile, LabServer, Site};
use serde_json::Value;
use support::{OpensslServer, Run, secgate};

const PASS: &str = "pass";
const FAIL: &str = "fail";
const SKIP: &str = "skipped";
const UNDECIDED: &str = "inconclusive";

/// The rules this file is about, in the order of [`status`]'s tuple.
const RULES: [&str; 5] = [
    "tls.cert.revoked",
    "tls.ocsp.must_staple_missing",
    "tls.ocsp.stapled_invalid",
    "tls.ocsp.no_stapling",
    "tls.ct.missing",
];

fn statuses(run: &Run, target: &str) -> BTreeMap<String, String> {
    run.statuses(Some(target))
        .into_iter()
        .filter(|(k, _)| RULES.contains(&k.as_str()))
        .collect()
}

/// `revoked, must_staple_missing, stapled_invalid, no_stapling, ct.missing`.
fn expect(s: [&str; 5]) -> BTreeMap<String, String> {
    RULES
        .iter()
        .zip(s)
        .map(|(r, s)| ((*r).to_string(), s.to_string()))
        .collect()
}

fn result<'a>(run: &'a Run, target: &str, rule: &str) -> &'a Value {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == target && r["rule_id"] == rule)
        .unwrap_or_else(|| panic!("no {rule} for {target}"))
}

fn message(run: &Run, target: &str, rule: &str) -> String {
    result(run, target, rule)["message"]
        .as_str()
        .unwrap()
        .to_string()
}

type ChainKey = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

struct Named {
    name: &'static str,
    server: LabServer,
}

impl Named {
    fn url(&self) -> String {
        format!("https://{}:{}/", self.name, self.server.addr.port())
    }
}

/// A rustls site for `name` presenting `chain_key`, stapling `staple` if given.
async fn site(name: &'static str, chain_key: ChainKey, staple: Option<Vec<u8>>) -> Named {
    let (chain, key) = chain_key;
    let config = match staple {
        Some(s) => ocsp::rustls_config_stapled(chain, key, s).unwrap(),
        None => tls::rustls_config(chain, key).unwrap(),
    };
    let server = lab::serve(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Site::hardened().router(),
        Some(config),
    );
    Named { name, server }
}

fn scan(sites: &[&Named], extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec!["scan".into()];
    args.extend(sites.iter().map(|s| s.url()));
    for s in sites {
        args.push("--resolve".into());
        args.push(format!("{}:{}:127.0.0.1", s.name, s.server.addr.port()));
    }
    args.extend(["--checks", "tls", "--timeout", "3"].map(String::from));
    args.extend(extra.iter().map(|s| (*s).to_string()));
    secgate(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread")]
async fn stapled_responses_must_staple_and_embedded_scts() {
    let pki = TlsPki::new().unwrap();
    let int = pki.intermediate();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.root_pem()).unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(&cfg, "[checks.tls]\nct_private_ca = true\n").unwrap();

    let leaf = |name: &str, extensions: Vec<rcgen::CustomExtension>| -> ChainKey {
        pki.leaf(&LeafSpec {
            extensions,
            ..LeafSpec::new(&[name])
        })
        .unwrap()
    };
    let spec = ResponseSpec::new;
    // A site whose staple is made by `make` from its leaf.
    macro_rules! stapled {
        ($name:literal, $ext:expr, $make:expr) => {{
            let ck = leaf($name, $ext);
            let make: &dyn Fn(&CertificateDer<'static>) -> Vec<u8> = &$make;
            let staple = make(&ck.0[0]);
            site($name, ck, Some(staple)).await
        }};
    }
    let responder = Responder::new("secgate lab OCSP responder", int, true).unwrap();
    let rogue = Responder::new("rogue responder", int, false).unwrap();
    let sign = |l: &CertificateDer<'static>, s: ResponseSpec, r: Option<&Responder>| {
        ocsp::response(int, l, &s, r).unwrap()
    };
    let sct = || vec![ocsp::embedded_scts(2)];

    let sites = vec![
        stapled!("good.test", sct(), |l| sign(l, spec(LabStatus::Good), None)),
        stapled!("revoked.test", sct(), |l| sign(
            l,
            spec(LabStatus::Revoked(Some(1))),
            None
        )),
        stapled!("expired.test", sct(), |l| sign(
            l,
            ResponseSpec {
                this_update_days: -10,
                next_update_days: Some(-3),
                ..spec(LabStatus::Good)
            },
            None
        )),
        stapled!("delegated.test", sct(), |l| sign(
            l,
            spec(LabStatus::Good),
            Some(&responder)
        )),
        stapled!("rogue.test", sct(), |l| sign(
            l,
            spec(LabStatus::Good),
            Some(&rogue)
        )),
        stapled!("forged.test", sct(), |l| sign(
            l,
            ResponseSpec {
                bad_signature: true,
                ..spec(LabStatus::Good)
            },
            None
        )),
        stapled!("other.test", sct(), |l| sign(
            l,
            ResponseSpec {
                other_serial: true,
                ..spec(LabStatus::Good)
            },
            None
        )),
        stapled!("unknown.test", sct(), |l| sign(
            l,
            spec(LabStatus::Unknown),
            None
        )),
        site("none.test", leaf("none.test", sct()), None).await,
        site(
            "muststaple.test",
            leaf(
                "muststaple.test",
                vec![ocsp::must_staple(), ocsp::embedded_scts(1)],
            ),
            None,
        )
        .await,
        stapled!(
            "muststapled.test",
            vec![ocsp::must_staple(), ocsp::embedded_scts(1)],
            |l| sign(l, spec(LabStatus::Good), None)
        ),
        stapled!(
            "mustexpired.test",
            vec![ocsp::must_staple(), ocsp::embedded_scts(1)],
            |l| sign(
                l,
                ResponseSpec {
                    this_update_days: -10,
                    next_update_days: Some(-3),
                    ..spec(LabStatus::Good)
                },
                None
            )
        ),
        stapled!("garbage.test", sct(), |_| {
            b"\x30\x82\xff\xffnot an OCSP response".to_vec()
        }),
        stapled!("truncated.test", sct(), |l| {
            let full = sign(l, spec(LabStatus::Good), None);
            full[..full.len() / 2].to_vec()
        }),
        stapled!("nosct.test", vec![], |l| sign(
            l,
            spec(LabStatus::Good),
            None
        )),
        stapled!("ocspsct.test", vec![], |l| sign(
            l,
            ResponseSpec {
                scts: 3,
                ..spec(LabStatus::Good)
            },
            None
        )),
    ];
    let refs: Vec<&Named> = sites.iter().collect();
    let run = scan(
        &refs,
        &[
            "--ca-file",
            ca.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let url = |n: &str| sites.iter().find(|s| s.name == n).unwrap().url();
    let check = |name: &str, want: [&str; 5]| {
        assert_eq!(
            statuses(&run, &url(name)),
            expect(want),
            "{name}:\n{}",
            run.stdout
        );
    };

    check("good.test", [PASS, SKIP, PASS, PASS, PASS]);
    let good = result(&run, &url("good.test"), "tls.ocsp.stapled_invalid");
    assert!(
        good["message"]
            .as_str()
            .unwrap()
            .starts_with("the stapled OCSP response is valid: for this certificate, signed by the issuer (CN=secgate lab intermediate), thisUpdate "),
        "{good}"
    );
    assert_eq!(good["evidence"]["ocsp_status"], "good");
    assert_eq!(
        message(&run, &url("good.test"), "tls.ct.missing"),
        "2 SCTs delivered (2 in the certificate, 0 in the TLS extension, 0 in the stapled OCSP response); their log signatures are not verified"
    );

    check("revoked.test", [FAIL, SKIP, PASS, PASS, PASS]);
    let revoked = result(&run, &url("revoked.test"), "tls.cert.revoked");
    assert_eq!(revoked["severity"], "critical");
    let m = revoked["message"].as_str().unwrap();
    assert!(
        m.starts_with("the certificate CN=revoked.test is revoked: the stapled OCSP response, signed by the issuer (CN=secgate lab intermediate), says revoked at ")
            && m.ends_with("(keyCompromise)"),
        "{m}"
    );

    check("expired.test", [SKIP, SKIP, FAIL, PASS, PASS]);
    assert!(
        message(&run, &url("expired.test"), "tls.ocsp.stapled_invalid")
            .starts_with("the stapled response expired: nextUpdate was "),
    );

    check("delegated.test", [PASS, SKIP, PASS, PASS, PASS]);
    assert!(
        message(&run, &url("delegated.test"), "tls.cert.revoked")
            .contains("signed by delegated responder CN=secgate lab OCSP responder")
    );

    check("rogue.test", [SKIP, SKIP, FAIL, PASS, PASS]);
    assert_eq!(
        message(&run, &url("rogue.test"), "tls.ocsp.stapled_invalid"),
        "the stapled response is signed by CN=rogue responder, a certificate the issuer (CN=secgate lab intermediate) did not delegate to sign OCSP responses (issued by it, with id-kp-OCSPSigning)"
    );

    check("forged.test", [SKIP, SKIP, FAIL, PASS, PASS]);
    assert_eq!(
        message(&run, &url("forged.test"), "tls.ocsp.stapled_invalid"),
        "the stapled response's signature does not verify with the key of the issuer (CN=secgate lab intermediate)"
    );

    check("other.test", [SKIP, SKIP, FAIL, PASS, PASS]);
    assert!(
        message(&run, &url("other.test"), "tls.ocsp.stapled_invalid")
            .starts_with("the stapled response is for another certificate: it names serial ")
    );

    check("unknown.test", [SKIP, SKIP, FAIL, PASS, PASS]);
    check("none.test", [SKIP, SKIP, SKIP, FAIL, PASS]);
    assert_eq!(
        message(&run, &url("none.test"), "tls.ocsp.no_stapling"),
        "the server staples no OCSP response (the handshake asked with status_request)"
    );

    check("muststaple.test", [SKIP, FAIL, SKIP, FAIL, PASS]);
    let must = result(
        &run,
        &url("muststaple.test"),
        "tls.ocsp.must_staple_missing",
    );
    assert_eq!(must["severity"], "high");
    assert_eq!(must["evidence"]["must_staple"], "yes");
    check("muststapled.test", [PASS, PASS, PASS, PASS, PASS]);
    check("mustexpired.test", [SKIP, FAIL, FAIL, PASS, PASS]);

    // Hostile staples: a clear finding, never a panic or a pass.
    check("garbage.test", [SKIP, SKIP, FAIL, PASS, PASS]);
    assert!(
        message(&run, &url("garbage.test"), "tls.ocsp.stapled_invalid")
            .starts_with("the stapled response cannot be read: malformed OCSPResponse"),
    );
    check("truncated.test", [SKIP, SKIP, FAIL, PASS, PASS]);
    assert!(
        message(&run, &url("truncated.test"), "tls.ocsp.stapled_invalid")
            .starts_with("the stapled response cannot be read: "),
    );

    // SCTs: none anywhere fails; SCTs in the stapled response count.
    check("nosct.test", [PASS, SKIP, PASS, PASS, FAIL]);
    let nosct = result(&run, &url("nosct.test"), "tls.ct.missing");
    assert_eq!(nosct["severity"], "low");
    assert_eq!(nosct["evidence"]["scts_tls_extension"], 0);
    check("ocspsct.test", [PASS, SKIP, PASS, PASS, PASS]);
    assert!(
        message(&run, &url("ocspsct.test"), "tls.ct.missing")
            .starts_with("3 SCTs delivered (0 in the certificate, 0 in the TLS extension, 3 in the stapled OCSP response)")
    );

    // The status rules make no connection of their own.
    let handshakes =
        result(&run, &url("good.test"), "tls.cipher.weak")["evidence"]["handshakes"].clone();
    assert!(handshakes.as_i64().unwrap() > 0, "{handshakes}");
    let plain = scan(&[&sites[8]], &["--ca-file", ca.to_str().unwrap()]);
    assert_eq!(
        result(&plain, &url("none.test"), "tls.cipher.weak")["evidence"]["handshakes"],
        handshakes
    );
    // Without ct_private_ca, a chain under a --ca-file root is a private PKI: CT is skipped.
    assert_eq!(statuses(&plain, &url("none.test"))["tls.ct.missing"], SKIP);
    assert!(
        message(&plain, &url("none.test"), "tls.ct.missing")
            .starts_with("the chain anchors in a --ca-file CA")
    );
    // Without --ca-file the chain is untrusted, and the staple is still checked against the
    // intermediate the server sends.
    let untrusted = scan(&[&sites[1]], &[]);
    assert_eq!(
        statuses(&untrusted, &url("revoked.test")),
        expect([FAIL, SKIP, PASS, PASS, SKIP])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_leaves_the_status_rules_undecided() {
    let tarpit = lab::serve_hostile(lab::bind("127.0.0.1:0").await.unwrap(), Hostile::Tarpit);
    let target = format!("127.0.0.1:{}", tarpit.addr.port());
    let run = secgate(&["scan", &target, "--checks", "tls", "--timeout", "1"]);
    assert_eq!(
        statuses(&run, &target),
        expect([UNDECIDED; 5]),
        "{}",
        run.stdout
    );
    assert_eq!(
        result(&run, &target, "tls.cert.revoked")["reason"]["kind"],
        "timeout"
    );
}

// ---------------------------------------------------------------------------------------------
// Debian's OpenSSL: `openssl ocsp` makes the responses, `openssl s_server` staples them and
// serves SCTs in the TLS extension.

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

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A lab leaf for `name` (no SCT extension) as PEM files in `dir`: `NAME.pem`, `NAME.key`;
/// the intermediate as `int.pem`/`int.key`. Returns the leaf's serial in hex.
fn openssl_leaf(pki: &TlsPki, dir: &Path, name: &str) -> String {
    let (chain, key) = pki.leaf(&LeafSpec::new(&[name])).unwrap();
    std::fs::write(
        dir.join(format!("{name}.pem")),
        pem("CERTIFICATE", &chain[0]),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{name}.key")),
        pem("PRIVATE KEY", key.secret_der()),
    )
    .unwrap();
    std::fs::write(dir.join("int.pem"), pki.intermediate().pem()).unwrap();
    std::fs::write(dir.join("int.key"), pki.intermediate().key_pem()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    cert.raw_serial()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// `openssl ocsp` as a responder (index file, the intermediate signing) for `name`'s leaf.
fn openssl_response(dir: &Path, name: &str, index_line: &str) -> String {
    let index = format!("{name}.index");
    std::fs::write(dir.join(&index), format!("{index_line}\n")).unwrap();
    let req = format!("{name}.req");
    let resp = format!("{name}.resp");
    let cert = format!("{name}.pem");
    openssl(
        dir,
        &[
            "ocsp",
            "-issuer",
            "int.pem",
            "-cert",
            &cert,
            "-reqout",
            &req,
            "-no_nonce",
        ],
    );
    openssl(
        dir,
        &[
            "ocsp", "-index", &index, "-rsigner", "int.pem", "-rkey", "int.key", "-CA", "int.pem",
            "-reqin", &req, "-respout", &resp, "-ndays", "7",
        ],
    );
    resp
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_s_server_staples_openssl_made_responses_and_serves_scts() {
    let pki = TlsPki::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ca.pem"), pki.root_pem()).unwrap();
    std::fs::write(d.join("cfg.toml"), "[checks.tls]\nct_private_ca = true\n").unwrap();

    // good.test: a good response, and two SCTs in the TLS extension (serverinfo: type 18,
    // length, the SCT list).
    let serial = openssl_leaf(&pki, d, "good.test");
    let good = openssl_response(
        d,
        "good.test",
        &format!("V\t301231235959Z\t\t{serial}\tunknown\t/CN=good.test"),
    );
    let list = ocsp::sct_list(2);
    let mut info = vec![0, 18];
    info.extend((list.len() as u16).to_be_bytes());
    info.extend(&list);
    std::fs::write(d.join("sct.pem"), pem("SERVERINFO FOR CT", &info)).unwrap();
    // revoked.test: revoked (keyCompromise).
    let serial = openssl_leaf(&pki, d, "revoked.test");
    let revoked = openssl_response(
        d,
        "revoked.test",
        &format!(
            "R\t301231235959Z\t250101000000Z,keyCompromise\t{serial}\tunknown\t/CN=revoked.test"
        ),
    );
    let good_server = OpensslServer::start(
        d,
        &[
            "-cert",
            "good.test.pem",
            "-key",
            "good.test.key",
            "-cert_chain",
            "int.pem",
            "-status_file",
            &good,
            "-serverinfo",
            "sct.pem",
        ],
    );
    let revoked_server = OpensslServer::start(
        d,
        &[
            "-cert",
            "revoked.test.pem",
            "-key",
            "revoked.test.key",
            "-cert_chain",
            "int.pem",
            "-status_file",
            &revoked,
        ],
    );
    let g = format!("https://good.test:{}/", good_server.port);
    let r = format!("https://revoked.test:{}/", revoked_server.port);
    let run = secgate(&[
        "scan",
        &g,
        &r,
        "--resolve",
        &format!("good.test:{}:127.0.0.1", good_server.port),
        "--resolve",
        &format!("revoked.test:{}:127.0.0.1", revoked_server.port),
        "--checks",
        "tls",
        "--timeout",
        "3",
        "--ca-file",
        d.join("ca.pem").to_str().unwrap(),
        "--config",
        d.join("cfg.toml").to_str().unwrap(),
    ]);
    assert_eq!(
        statuses(&run, &g),
        expect([PASS, SKIP, PASS, PASS, PASS]),
        "{}",
        run.stdout
    );
    assert_eq!(
        message(&run, &g, "tls.ct.missing"),
        "2 SCTs delivered (0 in the certificate, 2 in the TLS extension, 0 in the stapled OCSP response); their log signatures are not verified"
    );
    assert_eq!(
        statuses(&run, &r),
        expect([FAIL, SKIP, PASS, PASS, FAIL]),
        "{}",
        run.stdout
    );
    assert!(
        message(&run, &r, "tls.cert.revoked")
            .ends_with("says revoked at 2025-01-01T00:00:00Z (keyCompromise)"),
        "{}",
        message(&run, &r, "tls.cert.revoked")
    );
}

#[test]
fn ct_private_ca_must_be_a_boolean() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(&cfg, "[checks.tls]\nct_private_ca = \"yes\"\n").unwrap();
    let run = secgate(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("secgate.toml:2:17: checks.tls.ct_private_ca: invalid type: string \"yes\", expected a boolean"),
        "{}",
        run.stderr
    );
}
