//! Discovery chaining against real loopback servers: what the port sweep finds (HTTPS, HTTP, a
//! TLS-wrapped datastore, PostgreSQL offering TLS) is audited by the TLS and headers families
//! in the same scan, as derived targets with their parent recorded in every report; a derived
//! target never reaches an address the plan does not cover; `--no-chain` and `scan.chain`
//! control it; and `scan HOST:PORT` allows its own port and audits it.
//!
//! Addresses: 127.0.91.x to 127.0.96.x belong to this file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use secgate::lab::{self, LabServer, Pki, Site};
use serde_json::Value;
use support::secgate;

/// Run `secgate ARGS` off the runtime (the lab servers run on it).
async fn scan(args: &[&str]) -> support::Run {
    let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        secgate(&a)
    })
    .await
    .unwrap()
}

/// Targets of a report with their parent (`None` for the plan's own).
fn targets(json: &Value) -> Vec<(String, Option<String>)> {
    json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap().to_string(),
                t["parent"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The families with results on `target`, and whether any of them is decided (not all
/// inconclusive or skipped).
fn families_on(json: &Value, target: &str) -> (Vec<String>, usize) {
    let mut families = Vec::new();
    let mut decided = 0;
    for r in json["results"].as_array().unwrap() {
        if r["target"] != target {
            continue;
        }
        let f = r["family"].as_str().unwrap().to_string();
        if !families.contains(&f) {
            families.push(f);
        }
        if r["status"] == "pass" || r["status"] == "fail" {
            decided += 1;
        }
    }
    (families, decided)
}

/// An HTTPS site (lab CA, certificate for `ip`) and a plain-HTTP site on `ip`.
async fn https_and_http(ip: &str, pki: &Pki) -> (LabServer, LabServer) {
    let tls = pki.server_config(&[ip]).unwrap();
    let https = lab::serve(
        lab::bind(&format!("{ip}:0")).await.unwrap(),
        Site::hardened().router(),
        Some(tls),
    );
    let http = lab::serve(
        lab::bind(&format!("{ip}:0")).await.unwrap(),
        Site::with_headers(&[("server", "lab/1.2")]).router(),
        None,
    );
    (https, http)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swept_host_gets_tls_and_headers_on_what_it_serves_and_no_chain_removes_them() {
    let ip = "127.0.91.1";
    let pki = Pki::new().unwrap();
    let (https, http) = https_and_http(ip, &pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let ports = format!("{},{}", https.addr.port(), http.addr.port());
    let base = [
        "scan",
        ip,
        "--ports",
        &ports,
        "--timeout",
        "2",
        "--ca-file",
        ca.to_str().unwrap(),
        "--http-port",
        "9",
    ];
    let run = scan(&base).await;
    let json = run.json();
    let https_id = format!("https://{ip}:{}/", https.addr.port());
    let http_id = format!("http://{ip}:{}/", http.addr.port());
    // Derived targets follow their parent, by port.
    let mut derived = [
        (https.addr.port(), https_id.clone()),
        (http.addr.port(), http_id.clone()),
    ];
    derived.sort();
    let mut expected = vec![(ip.to_string(), None)];
    expected.extend(
        derived
            .iter()
            .map(|(_, id)| (id.clone(), Some(ip.to_string()))),
    );
    assert_eq!(targets(json), expected, "{}", run.stdout);
    let (fams, decided) = families_on(json, &https_id);
    assert_eq!(fams, ["headers", "tls"], "{}", run.stdout);
    assert!(
        decided > 10,
        "the TLS and headers families judged the HTTPS port"
    );
    assert_eq!(
        support::Run::statuses(&run, Some(&https_id))["tls.cert.untrusted"],
        "pass",
        "the lab CA is trusted with --ca-file"
    );
    let (fams, decided) = families_on(json, &http_id);
    assert_eq!(fams, ["headers"]);
    assert!(decided > 0);
    // The version banner of the plain-HTTP site is a finding, found through the host.
    assert_eq!(
        run.statuses(Some(&http_id))["headers.version_disclosure"],
        "fail"
    );
    // The parent records what it chained.
    let parent = &json["targets"][0];
    let chained: Vec<(&str, &Value)> = parent["chain"]["chained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["target"].as_str().unwrap(), &c["families"]))
        .collect();
    let families = |id: &str| {
        chained
            .iter()
            .find(|(t, _)| *t == id)
            .map(|(_, f)| (*f).clone())
    };
    assert_eq!(chained.len(), 2);
    assert_eq!(
        families(&https_id),
        Some(serde_json::json!(["tls", "headers"]))
    );
    assert_eq!(families(&http_id), Some(serde_json::json!(["headers"])));
    assert!(
        run.stdout.contains(&format!(
            "{https_id}  ({ip}:{})  found through {ip}",
            https.addr.port()
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("CHAINED"), "{}", run.stdout);
    // Derived requests are counted on the derived target.
    let https_entry = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == https_id.as_str())
        .unwrap();
    assert!(https_entry["requests"]["tls"].as_u64().unwrap() > 0);

    // --no-chain: the sweep alone.
    let mut args = base.to_vec();
    args.push("--no-chain");
    let run = scan(&args).await;
    assert_eq!(targets(run.json()), [(ip.to_string(), None)]);
    let on: Vec<&str> = run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert!(on.iter().all(|t| *t == ip), "{on:?}");
    let not = &run.json()["targets"][0]["chain"]["not_chained"];
    assert!(
        not.as_array()
            .unwrap()
            .iter()
            .all(|n| n["reason"].as_str().unwrap().contains("chaining is off")),
        "{not}"
    );
    drop((https, http));
}

/// A listener that counts the connections it accepts.
async fn counting(addr: &str) -> (std::net::SocketAddr, Arc<AtomicU32>) {
    let listener = lab::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::Relaxed);
            drop(s);
        }
    });
    (local, hits)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_derived_target_never_reaches_an_address_outside_the_plan() {
    // The plan: the range 127.0.92.0/30. A service in it redirects to 127.0.93.9, which
    // the plan does not cover: that server must see no connection at all.
    let (outside, hits) = counting("127.0.93.9:0").await;
    let redirect = lab::serve(
        lab::bind("127.0.92.1:0").await.unwrap(),
        Site::redirect_to(&format!("http://{outside}")).router(),
        None,
    );
    let ports = format!("{},{}", redirect.addr.port(), outside.port());
    let run = scan(&[
        "scan",
        "127.0.92.0/30",
        "--ports",
        &ports,
        "--timeout",
        "2",
        "--http-port",
        "9",
    ])
    .await;
    let derived = format!("http://127.0.92.1:{}/", redirect.addr.port());
    assert_eq!(
        targets(run.json()),
        [
            ("127.0.92.0/30".to_string(), None),
            (derived.clone(), Some("127.0.92.0/30".to_string())),
        ],
        "{}",
        run.stdout
    );
    let (fams, _) = families_on(run.json(), &derived);
    assert_eq!(fams, ["headers"]);
    assert_eq!(
        hits.load(Ordering::Relaxed),
        0,
        "an address outside the plan was contacted"
    );
    // Every report names the parent of a finding on the derived target.
    assert!(
        run.stdout.contains("found through 127.0.92.0/30"),
        "{}",
        run.stdout
    );
    drop(redirect);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_report_names_the_parent_of_a_derived_target() {
    let ip = "127.0.94.1";
    let http = lab::serve(
        lab::bind(&format!("{ip}:0")).await.unwrap(),
        Site::with_headers(&[("server", "lab/1.2")]).router(),
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (sarif, junit, md, html) = (path("r.sarif"), path("r.xml"), path("r.md"), path("r.html"));
    let ports = http.addr.port().to_string();
    let reports = [
        format!("sarif={sarif}"),
        format!("junit={junit}"),
        format!("markdown={md}"),
        format!("html={html}"),
    ];
    let mut args = vec![
        "scan",
        "127.0.94.0/31",
        "--ports",
        &ports,
        "--timeout",
        "2",
        "--http-port",
        "9",
    ];
    for r in &reports {
        args.extend(["--report", r.as_str()]);
    }
    let run = scan(&args).await;
    let derived = format!("http://{ip}:{ports}/");
    assert_eq!(
        run.json()["targets"][1]["parent"],
        "127.0.94.0/31",
        "{}",
        run.stdout
    );
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let sarif: Value = serde_json::from_str(&read(&sarif)).unwrap();
    let on_derived: Vec<&Value> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == derived.as_str()
        })
        .collect();
    assert!(!on_derived.is_empty(), "a finding on the derived target");
    for r in on_derived {
        assert_eq!(r["properties"]["parent"], "127.0.94.0/31");
        assert!(
            r["message"]["text"]
                .as_str()
                .unwrap()
                .contains("found through 127.0.94.0/31")
        );
    }
    assert!(read(&junit).contains(r#"<property name="parent" value="127.0.94.0/31"/>"#));
    let md = read(&md);
    assert!(
        md.contains(&format!("{ip}\\:{ports}/ (found through 127.0.94.0/31)")),
        "{md}"
    );
    assert!(md.contains("### Discovered services"), "{md}");
    let html = read(&html);
    assert!(html.contains("found through <code>127.0.94.0/31</code>"));
    drop(http);
}

#[tokio::test(flavor = "multi_thread")]
async fn scanning_host_port_allows_that_port_and_audits_it() {
    let ip = "127.0.95.1";
    let pki = Pki::new().unwrap();
    let https = lab::serve(
        lab::bind(&format!("{ip}:0")).await.unwrap(),
        Site::hardened().router(),
        Some(pki.server_config(&[ip]).unwrap()),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let target = format!("{ip}:{}", https.addr.port());
    let run = scan(&[
        "scan",
        &target,
        "--timeout",
        "2",
        "--ca-file",
        ca.to_str().unwrap(),
        "--http-port",
        "9",
    ])
    .await;
    let statuses = run.statuses(Some(&target));
    assert_eq!(statuses["ports.unexpected_open"], "pass", "{}", run.stdout);
    assert!(
        !run.stdout.contains("not in allowed_ports"),
        "{}",
        run.stdout
    );
    let derived = format!("https://{target}/");
    let (fams, decided) = families_on(run.json(), &derived);
    assert_eq!(fams, ["headers", "tls"], "{}", run.stdout);
    assert!(decided > 10);
    assert_eq!(run.json()["targets"][1]["parent"], target.as_str());
    drop(https);
}

/// PostgreSQL offering TLS: answers SSLRequest with `S`, then speaks TLS on the connection
/// (as postgres with `ssl = on` does); anything else closes the connection.
fn serve_postgres_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
) -> LabServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 8];
                let read =
                    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut req))
                        .await;
                if !matches!(read, Ok(Ok(_))) || req != [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f] {
                    return;
                }
                if s.write_all(b"S").await.is_err() {
                    return;
                }
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), acceptor.accept(s))
                    .await;
            });
        }
    });
    LabServer::from_task(addr, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_offering_tls_gets_the_tls_family_after_sslrequest() {
    let ip = "127.0.96.1";
    let pki = Pki::new().unwrap();
    let pg = serve_postgres_tls(
        lab::bind(&format!("{ip}:5432")).await.unwrap(),
        pki.server_config(&[ip]).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let run = scan(&[
        "scan",
        ip,
        "--ports",
        "5432",
        "--timeout",
        "2",
        "--ca-file",
        ca.to_str().unwrap(),
    ])
    .await;
    let derived = format!("{ip}:5432");
    assert_eq!(
        targets(run.json()),
        [
            (ip.to_string(), None),
            (derived.clone(), Some(ip.to_string()))
        ],
        "{}",
        run.stdout
    );
    let statuses = run.statuses(Some(&derived));
    assert_eq!(statuses["tls.protocol.no_tls13"], "pass", "{}", run.stdout);
    assert_eq!(statuses["tls.cert.untrusted"], "pass", "{}", run.stdout);
    drop(pg);
}
