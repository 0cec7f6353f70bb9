//! The TLS family against real servers on loopback: in-process rustls servers with rcgen chains
//! for the certificate cases, Debian's `openssl s_server` for protocols and cipher suites (the
//! test knows exactly which suites each accepts), the lab's scripted legacy responder for what
//! OpenSSL 3 no longer does (SSL 3.0, compression, no secure renegotiation), and hostile
//! servers.

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
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use secgate::lab::tls::{
    self, Afterwards, BadRecord, LabCa, LabHeartbeat, LeafSpec, Legacy, TlsPki,
};
use secgate::lab::{self, Hostile, LabServer, Site};
use serde_json::Value;
use support::{OpensslServer, Run, secgate};

const PASS: &str = "pass";
const FAIL: &str = "fail";
const SKIP: &str = "skipped";

/// `rule -> status` for every tls rule of `target`.
fn tls_statuses(run: &Run, target: &str) -> BTreeMap<String, String> {
    run.statuses(Some(target))
        .into_iter()
        .filter(|(k, _)| k.starts_with("tls."))
        .collect()
}

/// Every tls rule has `default`, then overrides; the `tls.profile.*` rules are skipped (no
/// profile sets their lists; tests/profiles.rs judges them). With `pass`, the certificate
/// status rules are what these servers give: nothing stapled (tests/tls_status.rs staples),
/// and no CT judgement for lab chains (untrusted or under a `--ca-file` root).
fn all_tls(default: &str, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = secgate::checks::tls::RULE_IDS
        .iter()
        .map(|id| {
            let status = if id.starts_with("tls.profile.") {
                SKIP
            } else if default == PASS && *id == "tls.ocsp.no_stapling" {
                FAIL
            } else if default == PASS
                && [
                    "tls.cert.revoked",
                    "tls.ocsp.must_staple_missing",
                    "tls.ocsp.stapled_invalid",
                    "tls.ct.missing",
                ]
                .contains(id)
            {
                SKIP
            } else {
                default
            };
            ((*id).to_string(), status.to_string())
        })
        .collect();
    for (k, v) in overrides {
        assert!(m.contains_key(*k), "unknown rule {k}");
        m.insert((*k).to_string(), (*v).to_string());
    }
    m
}

fn result<'a>(run: &'a Run, target: &str, rule: &str) -> &'a Value {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == target && r["rule_id"] == rule)
        .unwrap_or_else(|| panic!("no {rule} for {target}"))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Certificate cases: rustls servers with rcgen chains, all scanned in one run.

struct Named {
    name: &'static str,
    server: LabServer,
}

impl Named {
    fn url(&self) -> String {
        format!("https://{}:{}/", self.name, self.server.addr.port())
    }
    fn resolve(&self) -> String {
        format!("{}:{}:127.0.0.1", self.name, self.server.addr.port())
    }
}

async fn rustls_site(
    name: &'static str,
    chain_key: (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
) -> Named {
    let config = tls::rustls_config(chain_key.0, chain_key.1).unwrap();
    let server = lab::serve(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Site::hardened().router(),
        Some(config),
    );
    Named { name, server }
}

/// openssl in a temp dir: `openssl ARGS...`, panicking with its stderr on failure.
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

fn pem_certs(path: &Path) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn pem_key(path: &Path) -> rustls::pki_types::PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path).unwrap()
}

/// An RSA-2048 leaf for `name` signed with SHA-1 by the CA in `{ca}.pem`/`{ca}.key` (rcgen
/// cannot sign with SHA-1): the leaf alone, and its key.
fn sha1_leaf(
    dir: &Path,
    name: &str,
    ca: &str,
) -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let (key, csr, pem, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext), format!("subjectAltName=DNS:{name}\n")).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-sha1",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ],
    );
    (pem_certs(&dir.join(pem)), pem_key(&dir.join(key)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_cases() {
    let pki = TlsPki::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // SHA-1: rcgen cannot sign with SHA-1, so openssl makes this one (self-signed, trusted
    // through --ca-file so that only the signature is wrong).
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-sha1",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "sha1.key",
            "-out",
            "sha1.pem",
            "-days",
            "365",
            "-subj",
            "/CN=sha1.test",
            "-addext",
            "subjectAltName=DNS:sha1.test",
        ],
    );
    let sha1_chain = pem_certs(&dir.path().join("sha1.pem"));
    let sha1_key = pem_key(&dir.path().join("sha1.key"));
    std::fs::write(
        dir.path().join("ca.pem"),
        format!(
            "{}{}",
            pki.root_pem(),
            std::fs::read_to_string(dir.path().join("sha1.pem")).unwrap()
        ),
    )
    .unwrap();

    // SHA-1 leaves issued by a CA: the lab intermediate (a trusted chain refused for its hash
    // only) and a private CA the server sends along (untrusted and weakly signed: both rules).
    std::fs::write(dir.path().join("int.pem"), pki.intermediate().pem()).unwrap();
    std::fs::write(dir.path().join("int.key"), pki.intermediate().key_pem()).unwrap();
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "private-ca.key",
            "-out",
            "private-ca.pem",
            "-days",
            "365",
            "-subj",
            "/CN=private CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let sha1_int = sha1_leaf(dir.path(), "sha1int.test", "int");
    let (mut sha1_private, sha1_private_key) = sha1_leaf(dir.path(), "sha1priv.test", "private-ca");
    sha1_private.extend(pem_certs(&dir.path().join("private-ca.pem")));
    // root → lab intermediate → int2 → leaf, sent as leaf + int2: the lab intermediate is
    // missing, and int2 says where a public CA publishes it (never fetched).
    let int2 = LabCa::published(
        "int2",
        pki.intermediate(),
        "http://crt.ca.example.com/intermediate.der",
    )
    .unwrap();
    let (mut deep, deep_key) = int2.leaf(&LeafSpec::new(&["deep.test"])).unwrap();
    deep.push(int2.der());
    // A private CA done right: leaf + intermediate sent, the root (not given) never sent.
    let private_root = LabCa::new("private root", None, -30, 3650).unwrap();
    let private_int = LabCa::new("private intermediate", Some(&private_root), -30, 365).unwrap();
    let (mut private, private_key) = private_int.leaf(&LeafSpec::new(&["private.test"])).unwrap();
    private.push(private_int.der());
    // root → expired intermediate → leaf, sent whole.
    let old_int = LabCa::new("old intermediate", Some(pki.root()), -400, -3).unwrap();
    let (mut old, old_key) = old_int.leaf(&LeafSpec::new(&["oldint.test"])).unwrap();
    old.push(old_int.der());

    let spec = |names: &[&str]| LeafSpec::new(names);
    let sites = vec![
        rustls_site("good.test", pki.leaf(&spec(&["good.test"])).unwrap()).await,
        rustls_site(
            "expired.test",
            pki.leaf(&LeafSpec {
                not_before_days: -400,
                not_after_days: -5,
                ..spec(&["expired.test"])
            })
            .unwrap(),
        )
        .await,
        rustls_site(
            "early.test",
            pki.leaf(&LeafSpec {
                not_before_days: 10,
                not_after_days: 400,
                ..spec(&["early.test"])
            })
            .unwrap(),
        )
        .await,
        rustls_site("wrong.test", pki.leaf(&spec(&["other.test"])).unwrap()).await,
        rustls_site("self.test", tls::self_signed(&["self.test"]).unwrap()).await,
        rustls_site(
            "partial.test",
            pki.leaf(&LeafSpec {
                send_intermediate: false,
                ..spec(&["partial.test"])
            })
            .unwrap(),
        )
        .await,
        rustls_site(
            "soon.test",
            pki.leaf(&LeafSpec {
                not_after_days: 5,
                ..spec(&["soon.test"])
            })
            .unwrap(),
        )
        .await,
        rustls_site(
            "nosan.test",
            pki.leaf(&LeafSpec {
                san: false,
                ..spec(&["nosan.test"])
            })
            .unwrap(),
        )
        .await,
        rustls_site(
            "long.test",
            pki.leaf(&LeafSpec {
                not_after_days: 800,
                ..spec(&["long.test"])
            })
            .unwrap(),
        )
        .await,
        rustls_site("sha1.test", (sha1_chain, sha1_key)).await,
        rustls_site("sha1int.test", {
            let (mut chain, key) = sha1_int;
            chain.push(pki.intermediate().der());
            (chain, key)
        })
        .await,
        rustls_site("sha1priv.test", (sha1_private, sha1_private_key)).await,
        rustls_site("deep.test", (deep, deep_key)).await,
        rustls_site("private.test", (private, private_key)).await,
        rustls_site("oldint.test", (old, old_key)).await,
    ];
    let mut args: Vec<String> = vec!["scan".into()];
    args.extend(sites.iter().map(Named::url));
    for s in &sites {
        args.push("--resolve".into());
        args.push(s.resolve());
    }
    args.extend(strs(&["--checks", "tls", "--timeout", "3", "--ca-file"]));
    args.push(dir.path().join("ca.pem").to_string_lossy().into_owned());
    let run = secgate(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let url = |n: &str| sites.iter().find(|s| s.name == n).unwrap().url();

    // Only the certificate differs between these servers: protocol and cipher rules pass.
    let expect = |name: &str, overrides: &[(&str, &str)]| {
        assert_eq!(
            tls_statuses(&run, &url(name)),
            all_tls(PASS, &[&[("tls.vuln.robot", SKIP)], overrides].concat()),
            "{name}:\n{}",
            run.stdout
        );
    };
    expect("good.test", &[]);
    expect(
        "expired.test",
        &[("tls.cert.expired", FAIL), ("tls.cert.expiring_soon", SKIP)],
    );
    expect("early.test", &[("tls.cert.not_yet_valid", FAIL)]);
    expect("wrong.test", &[("tls.cert.hostname_mismatch", FAIL)]);
    expect("self.test", &[("tls.cert.untrusted", FAIL)]);
    // The leaf alone: no path to a root, and a missing intermediate is the likely cause.
    expect(
        "partial.test",
        &[
            ("tls.cert.incomplete_chain", FAIL),
            ("tls.cert.untrusted", FAIL),
        ],
    );
    // A complete chain under a root nobody gave: untrusted only.
    expect("private.test", &[("tls.cert.untrusted", FAIL)]);
    assert_eq!(
        result(&run, &url("private.test"), "tls.cert.untrusted")["message"],
        "no path to a trusted root: the chain stops at 'CN=private intermediate', whose issuer 'CN=private root' is neither sent nor trusted (for a private CA, give its root with --ca-file)"
    );
    expect("soon.test", &[("tls.cert.expiring_soon", FAIL)]);
    expect("long.test", &[("tls.cert.lifetime", FAIL)]);
    let long = result(&run, &url("long.test"), "tls.cert.lifetime");
    assert_eq!(long["evidence"]["lifetime_days"], 801);
    assert!(
        long["message"]
            .as_str()
            .unwrap()
            .starts_with("the leaf (CN=long.test) is valid for more than 398 days (801 days: "),
        "{long}"
    );
    assert_eq!(
        result(&run, &url("good.test"), "tls.cert.lifetime")["evidence"]["lifetime_days"],
        366
    );
    expect("nosan.test", &[("tls.cert.no_san", FAIL)]);
    expect("sha1.test", &[("tls.cert.weak_signature", FAIL)]);
    expect(
        "sha1int.test",
        &[
            ("tls.cert.weak_signature", FAIL),
            ("tls.cert.untrusted", SKIP),
        ],
    );
    expect(
        "sha1priv.test",
        &[
            ("tls.cert.weak_signature", FAIL),
            ("tls.cert.untrusted", FAIL),
        ],
    );
    expect(
        "deep.test",
        &[
            ("tls.cert.incomplete_chain", FAIL),
            ("tls.cert.untrusted", FAIL),
        ],
    );
    expect(
        "oldint.test",
        &[
            ("tls.cert.expired", FAIL),
            ("tls.cert.expiring_soon", SKIP),
            ("tls.cert.untrusted", SKIP),
        ],
    );

    // Evidence a person needs.
    let good = result(&run, &url("good.test"), "tls.cert.untrusted");
    let ev = &good["evidence"];
    assert_eq!(ev["subject"], "CN=good.test");
    assert_eq!(ev["issuer"], "CN=secgate lab intermediate");
    assert_eq!(names(&ev["sans"]), vec!["DNS:good.test"]);
    assert_eq!(ev["key"], "EC 256 (prime256v1)");
    assert_eq!(ev["signature_algorithm"], "ecdsa-with-SHA256");
    assert_eq!(
        names(&ev["chain"]),
        vec![
            "CN=good.test (issuer: CN=secgate lab intermediate)",
            "CN=secgate lab intermediate (issuer: CN=secgate lab root)"
        ]
    );
    assert_eq!(ev["sha256"].as_str().unwrap().len(), 64);
    assert!(ev["days_left"].as_i64().unwrap() >= 363);
    assert_eq!(ev["source"], "rustls handshake");

    let expired = result(&run, &url("expired.test"), "tls.cert.expired");
    assert!(
        expired["message"]
            .as_str()
            .unwrap()
            .starts_with("the leaf (CN=expired.test) expired on "),
        "{expired}"
    );
    let soon = result(&run, &url("soon.test"), "tls.cert.expiring_soon");
    assert!(
        (4..=5).contains(&soon["evidence"]["days_left"].as_i64().unwrap()),
        "{soon}"
    );
    assert_eq!(soon["evidence"]["threshold_days"], 30);
    assert_eq!(
        result(&run, &url("wrong.test"), "tls.cert.hostname_mismatch")["message"],
        "the certificate is not valid for wrong.test (names: DNS:other.test)"
    );
    assert_eq!(
        result(&run, &url("partial.test"), "tls.cert.incomplete_chain")["evidence"]["missing_issuer"],
        "CN=secgate lab intermediate"
    );
    assert_eq!(
        result(&run, &url("sha1.test"), "tls.cert.weak_signature")["message"],
        "broken signature hash: CN=sha1.test: sha1WithRSAEncryption"
    );
    assert_eq!(
        result(&run, &url("sha1int.test"), "tls.cert.weak_signature")["message"],
        "broken signature hash: CN=sha1int.test: ecdsa-with-SHA1"
    );
    assert_eq!(
        result(&run, &url("sha1priv.test"), "tls.cert.weak_signature")["message"],
        "broken signature hash: CN=sha1priv.test: sha1WithRSAEncryption"
    );
    assert_eq!(
        result(&run, &url("sha1priv.test"), "tls.cert.untrusted")["message"],
        "the chain ends at 'CN=private CA', which is not a trusted root"
    );
    let deep = result(&run, &url("deep.test"), "tls.cert.incomplete_chain");
    assert_eq!(
        deep["message"],
        "the chain stops at 'CN=int2': its issuer 'CN=secgate lab intermediate' is not sent, and its certificate says the issuer is published at http://crt.ca.example.com/intermediate.der: an intermediate of a public CA is missing"
    );
    assert_eq!(deep["evidence"]["presented"], 2);
    let old = result(&run, &url("oldint.test"), "tls.cert.expired");
    assert!(
        old["message"]
            .as_str()
            .unwrap()
            .starts_with("intermediate 1 (CN=old intermediate) expired on "),
        "{old}"
    );
    assert_eq!(run.code, 1);

    // The threshold is configurable: 3 days makes the 5-day certificate acceptable.
    let run = secgate(&[
        "scan",
        &url("soon.test"),
        "--resolve",
        &sites[6].resolve(),
        "--checks",
        "tls",
        "--cert-expiry-days",
        "3",
        "--ca-file",
        dir.path().join("ca.pem").to_str().unwrap(),
    ]);
    assert_eq!(
        tls_statuses(&run, &url("soon.test")),
        all_tls(PASS, &[("tls.vuln.robot", SKIP)])
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
}

// ---------------------------------------------------------------------------------------------
// Protocols and cipher suites: Debian's openssl s_server.

/// The 1024-bit MODP group of RFC 2409 (Oakley group 2) as OpenSSL DH parameters: generating a
/// 1024-bit safe prime takes seconds, and a well-known weak group is what servers really use.
const OAKLEY_GROUP_2: &str = "-----BEGIN DH PARAMETERS-----
MIGHAoGBAP//////////yQ/aoiFowjTExmKLgNwc0SkCTgiKZ8x0Agu+pjsTmyJR
Sgh5jjQE3e+VGbPNOkMbMCsKbfJfFDdP4TVtbVHCReSFtXZiXn7G9ExC6aY37WsL
/1y29Aa37e44a/taiZ+lrp8kEXxLH+ZJKGZR7OZTgf//////////AgEC
-----END DH PARAMETERS-----
";

/// An RSA-2048 certificate for 127.0.0.1, a 1024-bit one, an EC P-256 one, and 1024-bit DH
/// parameters.
fn openssl_material() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    openssl(
        p,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "365",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    openssl(
        p,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            "key1024.pem",
            "-out",
            "cert1024.pem",
            "-days",
            "365",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    openssl(
        p,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ec.key",
            "-out",
            "ec.pem",
            "-days",
            "365",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    std::fs::write(p.join("dh1024.pem"), OAKLEY_GROUP_2).unwrap();
    dir
}

/// `openssl req -x509` makes a CA certificate (basicConstraints CA:TRUE). Served as the leaf and
/// given with --ca-file, it is pinned: the HTTP client of the headers family accepts it as the
/// tls family does, so the two agree. A server whose only suite the HTTP client cannot speak
/// leaves the headers family inconclusive with a reason a reader can act on.
#[test]
fn a_pinned_self_signed_ca_leaf_and_an_unspeakable_suite() {
    let dir = openssl_material();
    let p = dir.path();
    let pinned = OpensslServer::with_key(p, "cert.pem", "key.pem", &["-www"]);
    let cbc_only = OpensslServer::with_key(
        p,
        "cert.pem",
        "key.pem",
        &["-www", "-tls1_2", "-cipher", "AES128-SHA"],
    );
    let ca_file = p.join("cert.pem").to_string_lossy().into_owned();
    let urls = [pinned.target(), cbc_only.target()].map(|t| format!("https://{t}/"));
    let run = secgate(&[
        "scan",
        &urls[0],
        &urls[1],
        "--checks",
        "headers,tls",
        "--timeout",
        "3",
        "--ca-file",
        &ca_file,
    ]);
    let out = &run.stdout;
    let pinned_results = run.statuses(Some(&urls[0]));
    assert_eq!(pinned_results["tls.cert.untrusted"], PASS, "{out}");
    // s_server -www sends a status page without any security header.
    assert_eq!(pinned_results["headers.hsts.missing"], FAIL, "{out}");
    assert_eq!(pinned_results["headers.xcto.missing"], FAIL, "{out}");
    assert!(
        !pinned_results.values().any(|s| s == "inconclusive"),
        "{pinned_results:?}\n{out}"
    );

    let cbc = result(&run, &urls[1], "headers.hsts.missing");
    assert_eq!(cbc["status"], "inconclusive", "{cbc}");
    let reason = cbc["message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("accepts none of the suites secgate's HTTP client offers"),
        "{reason}"
    );
    assert_eq!(
        result(&run, &urls[1], "tls.cipher.no_forward_secrecy")["status"],
        FAIL
    );
    assert_eq!(
        names(&result(&run, &urls[1], "tls.cipher.weak")["evidence"]["preference"]),
        strs(&["TLS 1.2: one suite"])
    );
}

fn suite_list(run: &Run, target: &str, key: &str) -> Vec<String> {
    names(&result(run, target, "tls.cipher.weak")["evidence"][key])
}

#[test]
fn protocols_and_suites_with_openssl_s_server() {
    let dir = openssl_material();
    let p = dir.path();
    let s = |args: &[&str]| OpensslServer::with_key(p, "cert.pem", "key.pem", args);
    let tls10 = s(&[
        "-tls1",
        "-cipher",
        "AES128-SHA:DHE-RSA-AES256-SHA:@SECLEVEL=0",
    ]);
    // Debian's OpenSSL 3 has no 3DES or RC4 suites left (the legacy responder below covers
    // them); a NULL suite is its weak suite.
    let tls11 = s(&[
        "-tls1_1",
        "-cipher",
        "ECDHE-RSA-NULL-SHA:AES256-SHA:@SECLEVEL=0",
    ]);
    let tls12 = s(&[
        "-no_tls1_3",
        "-cipher",
        "AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA",
    ]);
    let modern = s(&["-tls1_3"]);
    let pref = s(&[
        "-no_tls1_3",
        "-serverpref",
        "-cipher",
        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256",
    ]);
    let dh = s(&[
        "-no_tls1_3",
        "-dhparam",
        "dh1024.pem",
        "-cipher",
        "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
    ]);
    let small_key = OpensslServer::with_key(
        p,
        "cert1024.pem",
        "key1024.pem",
        &["-cipher", "DEFAULT:@SECLEVEL=0"],
    );
    // Two certificates, chosen by the suite: ECDSA P-256 and RSA-1024 (testssl.sh's "Server
    // Certificate #1/#2").
    let dual = OpensslServer::with_key(
        p,
        "ec.pem",
        "ec.key",
        &[
            "-dcert",
            "cert1024.pem",
            "-dkey",
            "key1024.pem",
            "-no_tls1",
            "-no_tls1_1",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
        ],
    );
    // DHE_PSK's ServerKeyExchange starts with the PSK identity hint: 256 bytes with the top bit
    // set here, which read as the prime would be a "2048-bit" group.
    let hint = "é".repeat(128);
    let psk = s(&[
        "-tls1_2",
        "-psk",
        "0102030405",
        "-psk_hint",
        &hint,
        "-dhparam",
        "dh1024.pem",
        "-cipher",
        "ECDHE-RSA-AES128-GCM-SHA256:DHE-PSK-AES128-GCM-SHA256:ECDHE-PSK-AES128-CBC-SHA256:@SECLEVEL=0",
    ]);
    let servers = [
        &tls10, &tls11, &tls12, &modern, &pref, &dh, &small_key, &dual, &psk,
    ];

    let mut args: Vec<String> = vec!["scan".into()];
    args.extend(servers.iter().map(|s| s.target()));
    args.extend(strs(&["--checks", "tls", "--timeout", "3", "--ca-file"]));
    args.push(p.join("cert.pem").to_string_lossy().into_owned());
    let run = secgate(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = &run.stdout;

    // TLS 1.0 only, two suites.
    let t = tls10.target();
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.protocol.tls10", FAIL),
                ("tls.protocol.no_tls13", FAIL),
                ("tls.protocol.no_modern", FAIL),
                ("tls.cipher.no_forward_secrecy", FAIL),
                ("tls.fallback_scsv.missing", SKIP),
                ("tls.renegotiation.client_initiated", "inconclusive"),
                ("tls.vuln.ticketbleed", "inconclusive"),
            ]
        ),
        "{out}"
    );
    assert_eq!(
        suite_list(&run, &t, "tls1_0_suites"),
        strs(&[
            "TLS_RSA_WITH_AES_128_CBC_SHA",
            "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"
        ])
    );
    assert_eq!(
        result(&run, &t, "tls.cert.untrusted")["evidence"]["source"],
        "TLS 1.0 handshake"
    );
    assert!(
        result(&run, &t, "tls.cipher.weak")["evidence"]
            .get("tls1_2_suites")
            .is_none()
    );

    // TLS 1.1 with a NULL suite and a static-RSA one.
    let t = tls11.target();
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.protocol.tls11", FAIL),
                ("tls.protocol.no_tls13", FAIL),
                ("tls.protocol.no_modern", FAIL),
                ("tls.cipher.weak", FAIL),
                ("tls.cipher.no_forward_secrecy", FAIL),
                ("tls.fallback_scsv.missing", SKIP),
                ("tls.renegotiation.client_initiated", "inconclusive"),
                ("tls.vuln.ticketbleed", "inconclusive"),
            ]
        ),
        "{out}"
    );
    assert_eq!(
        suite_list(&run, &t, "tls1_1_suites"),
        strs(&[
            "TLS_RSA_WITH_AES_256_CBC_SHA",
            "TLS_ECDHE_RSA_WITH_NULL_SHA"
        ])
    );
    assert_eq!(
        result(&run, &t, "tls.cipher.weak")["message"],
        "weak cipher suites accepted: TLS_ECDHE_RSA_WITH_NULL_SHA (NULL, TLS 1.1)"
    );

    // TLS 1.2 only: a static-RSA suite and a CBC suite.
    let t = tls12.target();
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.protocol.no_tls13", FAIL),
                ("tls.cipher.no_forward_secrecy", FAIL),
                ("tls.cipher.cbc", FAIL),
                ("tls.fallback_scsv.missing", SKIP),
                ("tls.renegotiation.client_initiated", "inconclusive"),
                ("tls.vuln.ticketbleed", "inconclusive"),
            ]
        ),
        "{out}"
    );
    assert_eq!(
        suite_list(&run, &t, "tls1_2_suites"),
        strs(&[
            "TLS_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
        ])
    );

    // Modern only: TLS 1.3 with OpenSSL's three default suites.
    let t = modern.target();
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.fallback_scsv.missing", SKIP),
                ("tls.vuln.robot", SKIP)
            ]
        ),
        "{out}"
    );
    assert_eq!(
        result(&run, &t, "tls.fallback_scsv.missing")["message"],
        "the server accepts only TLS 1.3: there is no lower version to fall back to"
    );
    assert_eq!(
        sorted(suite_list(&run, &t, "tls1_3_suites")),
        strs(&[
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256"
        ])
    );
    let groups = names(&result(&run, &t, "tls.kex.weak_dh")["evidence"]["groups"]);
    for g in ["x25519", "secp256r1", "secp384r1", "x448", "ffdhe2048"] {
        assert!(groups.contains(&g.to_string()), "{groups:?}");
    }
    assert_eq!(
        result(&run, &t, "tls.compression")["message"],
        "only TLS 1.3 is accepted, which has no compression"
    );

    // Server preference: the order is the server's, and it is reported.
    let t = pref.target();
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.vuln.robot", SKIP),
                ("tls.protocol.no_tls13", FAIL),
                ("tls.fallback_scsv.missing", SKIP),
            ]
        ),
        "{out}"
    );
    assert_eq!(
        suite_list(&run, &t, "tls1_2_suites"),
        strs(&[
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        ])
    );
    assert_eq!(
        names(&result(&run, &t, "tls.cipher.weak")["evidence"]["preference"]),
        strs(&["TLS 1.2: server"])
    );

    // 1024-bit DHE.
    let t = dh.target();
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.vuln.robot", SKIP),
                ("tls.protocol.no_tls13", FAIL),
                ("tls.kex.weak_dh", FAIL),
                ("tls.fallback_scsv.missing", SKIP),
                ("tls.renegotiation.client_initiated", "inconclusive"),
                ("tls.vuln.ticketbleed", "inconclusive"),
            ]
        ),
        "{out}"
    );
    assert_eq!(
        result(&run, &t, "tls.kex.weak_dh")["message"],
        "finite-field DH groups under 2048 bits: TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 (1024-bit)"
    );

    // PSK key exchanges: the real prime is read after the hint.
    let t = psk.target();
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.vuln.robot", SKIP),
                ("tls.protocol.no_tls13", FAIL),
                ("tls.kex.weak_dh", FAIL),
                ("tls.cipher.cbc", FAIL),
                ("tls.fallback_scsv.missing", SKIP),
            ]
        ),
        "{out}"
    );
    assert_eq!(
        result(&run, &t, "tls.kex.weak_dh")["message"],
        "finite-field DH groups under 2048 bits: TLS_DHE_PSK_WITH_AES_128_GCM_SHA256 (1024-bit)"
    );
    assert_eq!(
        suite_list(&run, &t, "tls1_2_suites"),
        strs(&[
            "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"
        ])
    );

    // An RSA-1024 certificate (served by OpenSSL: aws-lc refuses to sign with such a key).
    let t = small_key.target();
    let weak_key = result(&run, &t, "tls.cert.weak_key");
    assert_eq!(weak_key["status"], FAIL, "{out}");
    assert_eq!(weak_key["message"], "weak key: CN=127.0.0.1: RSA 1024");
    // OpenSSL 3 with RSA key exchange has no padding oracle, with a 1024-bit key too.
    let robot = result(&run, &t, "tls.vuln.robot");
    assert_eq!(robot["status"], PASS, "{out}");
    assert_eq!(robot["evidence"]["oracle"], "none", "{robot}");
    // A self-signed certificate not given as an anchor is untrusted.
    assert_eq!(result(&run, &t, "tls.cert.untrusted")["status"], FAIL);

    // Both certificates of the dual server are judged: the RSA-1024 one fails weak_key, and the
    // evidence says which certificate it is.
    let t = dual.target();
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.cert.weak_key", FAIL),
                ("tls.cert.untrusted", FAIL),
                ("tls.vuln.robot", SKIP),
            ]
        ),
        "{out}"
    );
    // rustls (ECDSA first) gets the EC certificate; an ECDHE-RSA suite the RSA one.
    let weak_key = result(&run, &t, "tls.cert.weak_key");
    assert_eq!(
        weak_key["message"],
        "certificate #2 of 2 (RSA 1024): weak key: CN=127.0.0.1: RSA 1024"
    );
    let ev = &weak_key["evidence"];
    assert_eq!(
        (&ev["key"], &ev["certificate"]),
        (&"RSA 1024".into(), &"#2 of 2".into())
    );
    let certs = names(&ev["certificates"]);
    assert_eq!(certs.len(), 2, "{certs:?}");
    assert!(
        certs[0].starts_with("#1: CN=127.0.0.1, EC 256 (prime256v1), sha256 ")
            && certs[0].ends_with(" (rustls handshake)"),
        "{certs:?}"
    );
    assert!(
        certs[1].starts_with("#2: CN=127.0.0.1, RSA 1024, sha256 ")
            && certs[1].ends_with(" (TLS 1.2 handshake (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256))"),
        "{certs:?}"
    );
    assert_eq!(
        result(&run, &t, "tls.cert.untrusted")["message"],
        "all 2 certificates: the certificate is self-signed and not a trusted root"
    );
    assert_eq!(run.code, 1);
}

// ---------------------------------------------------------------------------------------------
// What OpenSSL 3 will not do: the lab's scripted legacy responder.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_server_ssl3_rc4_compression_and_no_secure_renegotiation() {
    let pki = TlsPki::new().unwrap();
    let (chain, _) = pki.leaf(&LeafSpec::new(&["old.test"])).unwrap();
    let bad = tls::serve_legacy(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Legacy::ancient(chain.clone()),
    );
    // The same server without the two flaws, for the passing side.
    let fixed = tls::serve_legacy(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Legacy {
            versions: vec![0x0303],
            suites: vec![0xC02F],
            compression: false,
            secure_renegotiation: true,
            dh_bits: 2048,
            rfc7919: false,
            extension_intolerant: false,
            fallback_scsv: true,
            heartbeat: LabHeartbeat::Absent,
            early_ccs: false,
            afterwards: Afterwards::Answer,
            chain,
        },
    );
    // RFC 7919: ffdhe2048 for a hello that offers it, its 1024-bit group for any other (what
    // ordinary clients get).
    let ffdhe = tls::serve_legacy(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Legacy {
            versions: vec![0x0303],
            suites: vec![0x009E],
            compression: false,
            secure_renegotiation: true,
            dh_bits: 1024,
            rfc7919: true,
            extension_intolerant: false,
            fallback_scsv: true,
            heartbeat: LabHeartbeat::Absent,
            early_ccs: false,
            afterwards: Afterwards::Answer,
            chain: pki.leaf(&LeafSpec::new(&["ffdhe.test"])).unwrap().0,
        },
    );
    // An old stack that refuses any hello with extensions.
    let picky = tls::serve_legacy(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Legacy {
            versions: vec![0x0301],
            suites: vec![0x002F, 0x0033],
            compression: false,
            secure_renegotiation: true,
            dh_bits: 2048,
            rfc7919: false,
            extension_intolerant: true,
            fallback_scsv: true,
            heartbeat: LabHeartbeat::Absent,
            early_ccs: false,
            afterwards: Afterwards::Answer,
            chain: pki.leaf(&LeafSpec::new(&["picky.test"])).unwrap().0,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.pem"), pki.root_pem()).unwrap();
    let (b, f) = (bad.addr.port(), fixed.addr.port());
    let (d, k) = (ffdhe.addr.port(), picky.addr.port());
    let run = secgate(&[
        "scan",
        &format!("old.test:{b}"),
        &format!("new.test:{f}"),
        &format!("ffdhe.test:{d}"),
        &format!("picky.test:{k}"),
        "--resolve",
        &format!("old.test:{b}:127.0.0.1"),
        "--resolve",
        &format!("new.test:{f}:127.0.0.1"),
        "--resolve",
        &format!("ffdhe.test:{d}:127.0.0.1"),
        "--resolve",
        &format!("picky.test:{k}:127.0.0.1"),
        "--checks",
        "tls",
        "--ca-file",
        dir.path().join("root.pem").to_str().unwrap(),
    ]);
    let t = format!("old.test:{b}");
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.vuln.robot", SKIP),
                ("tls.protocol.sslv3", FAIL),
                ("tls.protocol.tls10", FAIL),
                ("tls.protocol.no_tls13", FAIL),
                ("tls.protocol.no_modern", FAIL),
                ("tls.cipher.weak", FAIL),
                ("tls.cipher.no_forward_secrecy", FAIL),
                ("tls.kex.weak_dh", FAIL),
                ("tls.compression", FAIL),
                ("tls.renegotiation.insecure", FAIL),
                ("tls.fallback_scsv.missing", FAIL),
                ("tls.renegotiation.client_initiated", "inconclusive"),
                ("tls.vuln.ticketbleed", "inconclusive"),
            ]
        ),
        "{}",
        run.stdout
    );
    // It picks RSA key exchange with an EC certificate: no RSA decryption, nothing to probe.
    assert!(
        result(&run, &t, "tls.vuln.robot")["message"]
            .as_str()
            .unwrap()
            .contains("key is not RSA"),
        "{}",
        run.stdout
    );
    let order = [
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    ];
    assert_eq!(
        result(&run, &t, "tls.fallback_scsv.missing")["message"],
        "a ClientHello for SSLv3 with TLS_FALLBACK_SCSV was accepted although the server supports TLS 1.0: a forced downgrade succeeds"
    );
    assert_eq!(suite_list(&run, &t, "ssl3_suites"), strs(&order));
    assert_eq!(suite_list(&run, &t, "tls1_0_suites"), strs(&order));
    assert_eq!(
        names(&result(&run, &t, "tls.cipher.weak")["evidence"]["preference"]),
        strs(&["SSLv3: server", "TLS 1.0: server"])
    );
    assert_eq!(
        result(&run, &t, "tls.cert.untrusted")["evidence"]["source"],
        "TLS 1.0 handshake"
    );
    let t = format!("new.test:{f}");
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.vuln.robot", SKIP),
                ("tls.protocol.no_tls13", FAIL),
                ("tls.cert.hostname_mismatch", FAIL),
                ("tls.fallback_scsv.missing", SKIP),
                ("tls.renegotiation.client_initiated", "inconclusive"),
                ("tls.vuln.ticketbleed", "inconclusive"),
            ]
        ),
        "{}",
        run.stdout
    );
    // The hellos offer ffdhe2048 and get it; the one without finite-field groups gets the
    // 1024-bit group, and that is what counts.
    let t = format!("ffdhe.test:{d}");
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.vuln.robot", SKIP),
                ("tls.protocol.no_tls13", FAIL),
                ("tls.kex.weak_dh", FAIL),
                ("tls.fallback_scsv.missing", SKIP),
                ("tls.renegotiation.client_initiated", "inconclusive"),
                ("tls.vuln.ticketbleed", "inconclusive"),
            ]
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        result(&run, &t, "tls.kex.weak_dh")["message"],
        "finite-field DH groups under 2048 bits: TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 (1024-bit)"
    );
    // Extension intolerance: TLS 1.0 is found, and enumerated, with hellos without extensions.
    let t = format!("picky.test:{k}");
    assert_eq!(
        tls_statuses(&run, &t),
        all_tls(
            PASS,
            &[
                ("tls.vuln.robot", SKIP),
                ("tls.protocol.tls10", FAIL),
                // Hellos without extensions cannot ask for a staple.
                ("tls.ocsp.no_stapling", SKIP),
                ("tls.protocol.no_tls13", FAIL),
                ("tls.protocol.no_modern", FAIL),
                ("tls.cipher.no_forward_secrecy", FAIL),
                ("tls.fallback_scsv.missing", SKIP),
                ("tls.renegotiation.client_initiated", "inconclusive"),
                ("tls.vuln.ticketbleed", "inconclusive"),
            ]
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        suite_list(&run, &t, "tls1_0_suites"),
        strs(&[
            "TLS_RSA_WITH_AES_128_CBC_SHA",
            "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Named vulnerabilities: the lab's scripted responder with each flaw (Debian's OpenSSL 3 has
// none of them), the same responder without it, openssl s_server for the sound side, and
// responders that turn hostile after their flight.

/// A TLS 1.1 + 1.2 responder with none of the flaws; tests switch one on.
fn sound(chain: Vec<rustls::pki_types::CertificateDer<'static>>) -> Legacy {
    Legacy {
        versions: vec![0x0302, 0x0303],
        suites: vec![0xC02F, 0x002F],
        compression: false,
        secure_renegotiation: true,
        dh_bits: 2048,
        rfc7919: false,
        extension_intolerant: false,
        fallback_scsv: true,
        heartbeat: LabHeartbeat::Patched,
        early_ccs: false,
        afterwards: Afterwards::Answer,
        chain,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbleed_ccs_injection_and_fallback_scsv() {
    let pki = TlsPki::new().unwrap();
    let (chain, _) = pki.leaf(&LeafSpec::new(&["vuln.test"])).unwrap();
    let serve =
        |l: Legacy| async move { tls::serve_legacy(lab::bind("127.0.0.1:0").await.unwrap(), l) };
    let bleeding = serve(Legacy {
        heartbeat: LabHeartbeat::Bleeding,
        ..sound(chain.clone())
    })
    .await;
    let ccs = serve(Legacy {
        heartbeat: LabHeartbeat::Absent,
        early_ccs: true,
        ..sound(chain.clone())
    })
    .await;
    let no_scsv = serve(Legacy {
        fallback_scsv: false,
        ..sound(chain.clone())
    })
    .await;
    let fine = serve(sound(chain.clone())).await;
    let garbage = serve(Legacy {
        afterwards: Afterwards::Garbage,
        ..sound(chain.clone())
    })
    .await;
    let truncate = serve(Legacy {
        afterwards: Afterwards::Truncate,
        ..sound(chain.clone())
    })
    .await;
    let silence = serve(Legacy {
        afterwards: Afterwards::Silence,
        ..sound(chain.clone())
    })
    .await;
    let dir = openssl_material();
    let openssl = OpensslServer::with_key(dir.path(), "cert.pem", "key.pem", &[]);
    // -www: the server reads what the client sends after the handshake (without it, s_server
    // closes once its standard input, here empty, ends).
    let reneg_refused = OpensslServer::with_key(dir.path(), "cert.pem", "key.pem", &["-www"]);
    let reneg_allowed = OpensslServer::with_key(
        dir.path(),
        "cert.pem",
        "key.pem",
        &["-client_renegotiation", "-www"],
    );
    let lab_servers = [
        &bleeding, &ccs, &no_scsv, &fine, &garbage, &truncate, &silence,
    ];
    let mut targets: Vec<String> = lab_servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.addr.port()))
        .collect();
    targets.push(openssl.target());
    targets.push(reneg_refused.target());
    targets.push(reneg_allowed.target());
    let mut args = vec!["scan"];
    args.extend(targets.iter().map(String::as_str));
    args.extend(["--checks", "tls", "--timeout", "2"]);
    let start = Instant::now();
    let run = secgate(&args);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let out = &run.stdout;
    let rules = [
        "tls.fallback_scsv.missing",
        "tls.vuln.heartbleed",
        "tls.vuln.ccs_injection",
    ];
    let got = |t: &str| -> Vec<String> {
        rules
            .iter()
            .map(|r| result(&run, t, r)["status"].as_str().unwrap().to_string())
            .collect()
    };
    let [
        bleeding,
        ccs,
        no_scsv,
        fine,
        garbage,
        truncate,
        silence,
        openssl,
        reneg_refused,
        reneg_allowed,
    ] = &targets[..]
    else {
        unreachable!()
    };

    // Heartbleed: 4096 bytes claimed, none sent; the answer's length is reported, never its
    // bytes.
    assert_eq!(got(bleeding), strs(&[PASS, FAIL, PASS]), "{out}");
    let hb = result(&run, bleeding, "tls.vuln.heartbleed");
    assert_eq!(
        hb["message"],
        "the server answered a heartbeat that carried no payload but claimed 4096 bytes with 4112 bytes of its memory (Heartbleed)"
    );
    assert_eq!(hb["evidence"]["bytes_returned"], 4112);
    let report = run.json().to_string();
    let secret = std::str::from_utf8(tls::LAB_SECRET).unwrap().trim();
    for text in [out, &run.stderr, &report] {
        assert!(!text.contains("secgate-lab-secret"), "leaked bytes shown");
        assert!(!text.contains(secret), "leaked bytes shown");
    }

    // CCS injection: the second ChangeCipherSpec fails to decrypt.
    assert_eq!(got(ccs), strs(&[PASS, PASS, FAIL]), "{out}");
    assert_eq!(
        result(&run, ccs, "tls.vuln.ccs_injection")["message"],
        "the server accepted a ChangeCipherSpec before the key exchange: it answered the second one with alert bad_record_mac, so it had switched keys"
    );
    assert_eq!(
        result(&run, ccs, "tls.vuln.heartbleed")["message"],
        "the server does not take up the heartbeat extension"
    );

    // No TLS_FALLBACK_SCSV: the TLS 1.1 retry is served.
    assert_eq!(got(no_scsv), strs(&[FAIL, PASS, PASS]), "{out}");
    assert_eq!(
        result(&run, no_scsv, "tls.fallback_scsv.missing")["message"],
        "a ClientHello for TLS 1.1 with TLS_FALLBACK_SCSV was accepted although the server supports TLS 1.2: a forced downgrade succeeds"
    );

    // The sound responder: heartbeats done right (the overlong one discarded), early CCS
    // refused, the fallback refused.
    assert_eq!(got(fine), strs(&[PASS, PASS, PASS]), "{out}");
    assert_eq!(
        result(&run, fine, "tls.vuln.heartbleed")["message"],
        "an overlong heartbeat request got no heartbeat back (the connection was closed)"
    );
    assert_eq!(
        result(&run, fine, "tls.fallback_scsv.missing")["message"],
        "a ClientHello for TLS 1.1 with TLS_FALLBACK_SCSV was refused (alert inappropriate_fallback): the server supports TLS 1.2"
    );

    // Debian's OpenSSL 3: no heartbeats, the early CCS refused, the fallback refused.
    assert_eq!(got(openssl), strs(&[PASS, PASS, PASS]), "{out}");
    assert_eq!(
        result(&run, openssl, "tls.fallback_scsv.missing")["message"],
        "a ClientHello for TLS 1.2 with TLS_FALLBACK_SCSV was refused (alert inappropriate_fallback): the server supports TLS 1.3"
    );
    assert_eq!(
        result(&run, openssl, "tls.vuln.ccs_injection")["message"],
        "the server refused an early ChangeCipherSpec (alert unexpected_message)"
    );

    // Client-initiated renegotiation, with Debian's OpenSSL 3 both ways: refused by default,
    // accepted with -client_renegotiation. The lab responder cannot finish a handshake.
    let reneg = "tls.renegotiation.client_initiated";
    assert_eq!(result(&run, reneg_refused, reneg)["status"], PASS, "{out}");
    assert_eq!(
        result(&run, reneg_refused, reneg)["message"],
        "the server refuses client-initiated renegotiation (warning alert no_renegotiation)"
    );
    assert_eq!(result(&run, reneg_allowed, reneg)["status"], FAIL, "{out}");
    assert_eq!(
        result(&run, reneg_allowed, reneg)["message"],
        "the server accepts a renegotiation the client asks for (TLS 1.2): a cheap way to make it do full handshakes"
    );
    // The other new rules pass on both.
    for t in [reneg_refused, reneg_allowed] {
        assert_eq!(got(t), strs(&[PASS, PASS, PASS]), "{out}");
    }
    let r = result(&run, fine, reneg);
    assert_eq!(r["status"], "inconclusive", "{r}");
    assert!(
        r["reason"]["detail"]
            .as_str()
            .unwrap()
            .contains("the only handshake the probe can finish"),
        "{r}"
    );

    // Hostile after the flight: undecided, with the reason.
    for (t, kind, detail) in [
        (garbage, "malformed", "not a TLS answer"),
        (truncate, "malformed", "truncated"),
        (silence, "timeout", "within the timeout"),
    ] {
        for rule in ["tls.vuln.heartbleed", "tls.vuln.ccs_injection"] {
            let r = result(&run, t, rule);
            assert_eq!(r["status"], "inconclusive", "{t} {rule}: {r}");
            assert_eq!(r["reason"]["kind"], kind, "{t} {rule}: {r}");
            let d = r["reason"]["detail"].as_str().unwrap();
            assert!(d.contains(detail), "{t} {rule}: {d}");
        }
    }
    assert_eq!(run.code, 1, "{out}");
}

// ---------------------------------------------------------------------------------------------
// Servers that misbehave on some connections only: a relay in front of openssl s_server that
// reads each ClientHello and forwards it, drops the connection, or answers garbage.

/// What the relay does with one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Forward,
    Drop,
    Garble,
}

/// The parts of a ClientHello the relay decides on.
struct SeenHello {
    /// `client_version` of the handshake (0x0301 for a TLS 1.0 hello).
    version: u16,
    suites: Vec<u16>,
}

fn seen_hello(rec: &[u8]) -> Option<SeenHello> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*rec.get(at)?, *rec.get(at + 1)?]));
    let version = be16(9)?;
    let sid = usize::from(*rec.get(43)?);
    let n = usize::from(be16(44 + sid)?);
    let suites = (0..n / 2).filter_map(|i| be16(46 + sid + 2 * i)).collect();
    Some(SeenHello { version, suites })
}

/// A relay in front of `to` that reads each connection's first record (the ClientHello) and
/// lets `decide` forward it, drop the connection, or answer with bytes that are not TLS.
async fn hello_relay(
    to: std::net::SocketAddr,
    decide: impl Fn(&SeenHello) -> Act + Send + Sync + 'static,
) -> LabServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = lab::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let decide = Arc::new(decide);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let decide = decide.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = 0;
                // One record, bounded by the buffer and by time.
                let read = tokio::time::timeout(Duration::from_secs(3), async {
                    loop {
                        let n = inbound.read(&mut buf[got..]).await.unwrap_or(0);
                        if n == 0 {
                            return false;
                        }
                        got += n;
                        let need = buf
                            .get(3..5)
                            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])) + 5);
                        if need.is_some_and(|n| got >= n) || got == buf.len() {
                            return true;
                        }
                    }
                })
                .await;
                if read != Ok(true) {
                    return;
                }
                let act = seen_hello(&buf[..got]).map_or(Act::Forward, |h| decide(&h));
                match act {
                    Act::Drop => {}
                    Act::Garble => {
                        let _ = inbound.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                    }
                    Act::Forward => {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                            return;
                        };
                        if outbound.write_all(&buf[..got]).await.is_ok() {
                            let _ = tokio::time::timeout(
                                Duration::from_secs(10),
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound),
                            )
                            .await;
                        }
                    }
                }
            });
        }
    });
    LabServer::from_task(addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_an_unknown_version_never_pass() {
    let dir = openssl_material();
    let p = dir.path();
    // TLS 1.2 with a weak suite (NULL) that a truncated enumeration would miss.
    let server = OpensslServer::with_key(
        p,
        "cert.pem",
        "key.pem",
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:ECDHE-RSA-NULL-SHA:@SECLEVEL=0",
        ],
    );
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
    // Drop the first one (then two) enumeration hellos that offer the NULL suite: a chunk of
    // the TLS 1.2 candidates (a TLS 1.2 hello of at most 200 suites, some of them not ECDHE,
    // so neither the survey nor the groups' hellos; 0x00FF is the renegotiation signal).
    let dropper = |times: usize| {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let decide = move |h: &SeenHello| {
            let chunk = h.version == 0x0303
                && h.suites.contains(&0xC010)
                && h.suites.len() <= 200
                && h.suites.iter().any(|s| *s < 0xC000 && *s != 0x00FF);
            if chunk && d.fetch_add(1, Ordering::SeqCst) < times {
                Act::Drop
            } else {
                Act::Forward
            }
        };
        (decide, dropped)
    };
    let (once, dropped_once) = dropper(1);
    let (twice, dropped_twice) = dropper(2);
    let once = hello_relay(upstream, once).await;
    let twice = hello_relay(upstream, twice).await;
    // Drop the TLS 1.2 survey hello (every candidate suite) once.
    let survey_dropped = Arc::new(AtomicUsize::new(0));
    let d = survey_dropped.clone();
    let survey = hello_relay(upstream, move |h: &SeenHello| {
        if h.version == 0x0303 && h.suites.len() > 300 && d.fetch_add(1, Ordering::SeqCst) < 1 {
            Act::Drop
        } else {
            Act::Forward
        }
    })
    .await;
    // A modern server behind a relay that garbles TLS 1.0 hellos only: that version is
    // unknown while the others answer.
    let modern = OpensslServer::with_key(
        p,
        "cert.pem",
        "key.pem",
        &["-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
    );
    let garbler = hello_relay(
        std::net::SocketAddr::from(([127, 0, 0, 1], modern.port)),
        |h: &SeenHello| {
            if h.version == 0x0301 {
                Act::Garble
            } else {
                Act::Forward
            }
        },
    )
    .await;
    let targets: Vec<String> = [&once, &twice, &survey, &garbler]
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.addr.port()))
        .collect();
    let mut args = vec!["scan"];
    args.extend(targets.iter().map(String::as_str));
    let ca = p.join("cert.pem");
    args.extend([
        "--checks",
        "tls",
        "--timeout",
        "3",
        "--ca-file",
        ca.to_str().unwrap(),
    ]);
    let run = secgate(&args);
    let out = &run.stdout;

    for t in &targets[..3] {
        assert_eq!(
            tls_statuses(&run, t),
            all_tls(
                PASS,
                &[
                    ("tls.protocol.no_tls13", FAIL),
                    ("tls.cipher.weak", FAIL),
                    ("tls.cipher.no_forward_secrecy", FAIL),
                    ("tls.cipher.cbc", FAIL),
                    ("tls.fallback_scsv.missing", SKIP),
                ]
            ),
            "{t}: {out}"
        );
        assert_eq!(
            suite_list(&run, t, "tls1_2_suites"),
            strs(&[
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "TLS_ECDHE_RSA_WITH_NULL_SHA",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ]),
            "{t}"
        );
    }
    // The relays did drop what they were told to, and nothing more was asked of them than a
    // retry and a confirming hello.
    assert!(dropped_once.load(Ordering::SeqCst) >= 1);
    assert!(dropped_twice.load(Ordering::SeqCst) >= 2);
    assert!(survey_dropped.load(Ordering::SeqCst) >= 1);

    let t = &targets[3];
    let undecided = [
        "tls.protocol.tls10",
        "tls.cipher.weak",
        "tls.cipher.no_forward_secrecy",
        "tls.cipher.cbc",
        "tls.kex.weak_dh",
        "tls.compression",
        "tls.renegotiation.insecure",
        "tls.vuln.heartbleed",
        "tls.vuln.ccs_injection",
        "tls.renegotiation.client_initiated",
        "tls.vuln.ticketbleed",
        "tls.vuln.robot",
    ];
    let overrides: Vec<(&str, &str)> = undecided.iter().map(|r| (*r, "inconclusive")).collect();
    assert_eq!(tls_statuses(&run, t), all_tls(PASS, &overrides), "{out}");
    for rule in undecided {
        let r = result(&run, t, rule);
        assert_eq!(r["reason"]["kind"], "malformed", "{rule}: {r}");
        assert!(
            r["reason"]["detail"]
                .as_str()
                .unwrap()
                .starts_with("TLS 1.0 ClientHello to "),
            "{rule}: {r}"
        );
    }
    // Undecided, never passed: the gate fails, on the findings (1: the unstapled servers' low
    // findings now weigh in too) or on the undecided results (3); never 0.
    assert!(matches!(run.code, 1 | 3), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Politeness: at most `per_host` connections at once.

/// A TCP relay in front of `to` that records the most client connections open at once. A
/// connection counts from its accept (plus 5 ms, so that the close of the connection it replaces
/// is seen first) until the client closes its side; each is held 30 ms before it is relayed, so
/// that connections over the limit would overlap.
async fn counting_relay(to: std::net::SocketAddr) -> (LabServer, Arc<AtomicUsize>) {
    let listener = lab::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peak = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let p = peak.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                continue;
            };
            let (open, peak) = (open.clone(), p.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                let Ok(outbound) = tokio::net::TcpStream::connect(to).await else {
                    open.fetch_sub(1, Ordering::SeqCst);
                    return;
                };
                let (mut ri, mut wi) = inbound.into_split();
                let (mut ro, mut wo) = outbound.into_split();
                let up = async {
                    let _ = tokio::io::copy(&mut ri, &mut wo).await;
                    open.fetch_sub(1, Ordering::SeqCst);
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut wo).await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut ro, &mut wi).await;
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut wi).await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (LabServer::from_task(addr, task), peak)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_host_are_limited() {
    let pki = TlsPki::new().unwrap();
    let (chain, _) = pki.leaf(&LeafSpec::new(&["127.0.0.1"])).unwrap();
    let mut legacy = Legacy::ancient(chain);
    legacy.versions = vec![0x0301, 0x0302, 0x0303];
    let server = tls::serve_legacy(lab::bind("127.0.0.1:0").await.unwrap(), legacy);
    for (flag, limit) in [(None, 8usize), (Some("2"), 2)] {
        let (relay, peak) = counting_relay(server.addr).await;
        let target = format!("127.0.0.1:{}", relay.addr.port());
        let mut args = vec!["scan", &target, "--checks", "tls"];
        if let Some(n) = flag {
            args.extend(["--per-host", n]);
        }
        let run = secgate(&args);
        assert_eq!(
            result(&run, &target, "tls.protocol.tls10")["status"],
            FAIL,
            "{}",
            run.stdout
        );
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= limit, "{peak} connections at once, limit {limit}");
        assert!(peak >= 2, "the probes run in parallel ({peak})");
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile servers: inconclusive within the timeout, never a pass, never a hang.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_are_inconclusive_within_the_timeout() {
    let tarpit = lab::serve_hostile(lab::bind("127.0.0.1:0").await.unwrap(), Hostile::Tarpit);
    let garbage = lab::serve_hostile(lab::bind("127.0.0.1:0").await.unwrap(), Hostile::Garbage);
    let reset = lab::serve_hostile(lab::bind("127.0.0.1:0").await.unwrap(), Hostile::Reset);
    let oversized = tls::serve_bad_records(
        lab::bind("127.0.0.1:0").await.unwrap(),
        BadRecord::Oversized,
    );
    let truncated = tls::serve_bad_records(
        lab::bind("127.0.0.1:0").await.unwrap(),
        BadRecord::Truncated,
    );
    let flood = tls::serve_bad_records(
        lab::bind("127.0.0.1:0").await.unwrap(),
        BadRecord::ExtensionFlood,
    );
    let cases = [
        (&tarpit, "timeout"),
        (&garbage, "malformed"),
        (&reset, "reset"),
        (&oversized, "too_large"),
        (&truncated, "malformed"),
        (&flood, "malformed"),
    ];
    let targets: Vec<String> = cases
        .iter()
        .map(|(s, _)| format!("127.0.0.1:{}", s.addr.port()))
        .collect();
    let mut args = vec!["scan"];
    args.extend(targets.iter().map(String::as_str));
    // Under a profile, so that the tls.profile.* rules are judged too (intermediate lets
    // clients choose the order: tls.profile.server_order does not apply).
    args.extend([
        "--checks",
        "tls",
        "--timeout",
        "1",
        "--profile",
        "mozilla-intermediate",
    ]);
    let start = Instant::now();
    let run = secgate(&args);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(run.code, 3, "{}", run.stdout);
    for ((_, kind), target) in cases.iter().zip(&targets) {
        for (rule, status) in tls_statuses(&run, target) {
            if rule == "tls.profile.server_order" {
                assert_eq!(status, SKIP);
                continue;
            }
            assert_eq!(status, "inconclusive", "{target} {rule}:\n{}", run.stdout);
            let r = result(&run, target, &rule);
            if rule.starts_with("tls.protocol") || rule.starts_with("tls.cipher") {
                assert_eq!(r["reason"]["kind"], *kind, "{target} {rule}: {r}");
            }
        }
    }
    let detail = result(&run, &targets[3], "tls.protocol.tls10")["reason"]["detail"].to_string();
    assert!(detail.contains("exceeds the TLS limit"), "{detail}");
    let detail = result(&run, &targets[4], "tls.protocol.tls10")["reason"]["detail"].to_string();
    assert!(detail.contains("truncated"), "{detail}");
    let detail = result(&run, &targets[5], "tls.protocol.tls10")["reason"]["detail"].to_string();
    assert!(detail.contains("too many records"), "{detail}");
}

// ---------------------------------------------------------------------------------------------
// Reports stay valid with TLS evidence.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_reports_validate_against_the_schemas() {
    let pki = TlsPki::new().unwrap();
    let site = rustls_site(
        "soon.test",
        pki.leaf(&LeafSpec {
            not_after_days: 5,
            ..LeafSpec::new(&["soon.test"])
        })
        .unwrap(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("r.sarif");
    let run = secgate(&[
        "scan",
        &site.url(),
        "--resolve",
        &site.resolve(),
        "--checks",
        "tls",
        "--sarif",
        sarif.to_str().unwrap(),
    ]);
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    for (schema, doc) in [
        ("reports/schema/secgate-report.v1.schema.json", run.json()),
        ("reports/schema/sarif-schema-2.1.0.json", &sarif),
    ] {
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(support::repo_path(schema)).unwrap())
                .unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
    let ids: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    // Without --ca-file the chain (leaf + lab intermediate) has no path to a trusted root; it
    // is complete as sent.
    assert!(
        ids.contains(&"tls.cert.untrusted")
            && !ids.contains(&"tls.cert.incomplete_chain")
            && ids.contains(&"tls.cert.expiring_soon"),
        "{ids:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The demo shows the TLS family.

#[test]
fn demo_shows_tls_findings() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("demo.json");
    let run = secgate(&["demo", "--no-color", "--json", json.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let status = |host: &str, rule: &str| {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"].as_str().unwrap().starts_with(host) && r["rule_id"] == rule)
            .map(|r| r["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {rule} for {host}"))
    };
    assert_eq!(status("https://expired.lab.test", "tls.cert.expired"), FAIL);
    for rule in [
        "tls.protocol.sslv3",
        "tls.cipher.weak",
        "tls.compression",
        "tls.renegotiation.insecure",
        "tls.kex.weak_dh",
    ] {
        assert_eq!(status("https://legacy.lab.test", rule), FAIL, "{rule}");
    }
    // The hardened API passes the TLS family too.
    assert_eq!(status("https://api.lab.test", "tls.cipher.weak"), PASS);
    assert_eq!(status("https://api.lab.test", "tls.cert.untrusted"), PASS);
    assert!(run.stdout.contains("tls.cert.expired"), "{}", run.stdout);
}

#[test]
fn cert_expiry_days_is_validated_as_flag_and_key() {
    let run = secgate(&["scan", "a.test", "--cert-expiry-days", "4000"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--cert-expiry-days: must be between 0 and 3650, got 4000"),
        "{}",
        run.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(&cfg, "[scan]\ncert_expiry_days = 5000\n").unwrap();
    let run = secgate(&["validate", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("secgate.toml:2:20: scan.cert_expiry_days: must be between 0 and 3650"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bare_host_without_tls_is_skipped_but_an_explicit_port_is_not() {
    // Nothing listens on 127.0.0.62:443: the bare host has no TLS service to judge.
    let run = secgate(&["scan", "127.0.0.62", "--checks", "tls", "--timeout", "1"]);
    assert_eq!(
        tls_statuses(&run, "127.0.0.62"),
        all_tls(SKIP, &[]),
        "{}",
        run.stdout
    );
    let msg = result(&run, "127.0.0.62", "tls.protocol.tls10")["message"].to_string();
    assert!(msg.contains("no TLS service on port 443"), "{msg}");
    // A port given explicitly says there is a service: unreachable, never skipped.
    let run = secgate(&[
        "scan",
        "127.0.0.62:443",
        "--checks",
        "tls",
        "--timeout",
        "1",
    ]);
    assert_eq!(run.json()["targets"][0]["status"], "unreachable");
    assert_eq!(run.code, 3);
}
