//! The dns family and the scan's resolver against a real DNS server on loopback: hickory's
//! authoritative server, in process, serving test zones on 127.0.50.1 (UDP and TCP). Every
//! query goes there through `--dns-server`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use secgate::lab::{self, LabServer, Rec, Site, Zone};
use serde_json::json;
use support::{expect, https_site_at, secgate};

const DANGLING: &str = "dns.dangling_cname";
const CAA: &str = "dns.caa.missing";
const SPF: &str = "dns.spf.missing";
const DMARC: &str = "dns.dmarc.missing";
const DMARC_WEAK: &str = "dns.dmarc.weak";
const DNSSEC: &str = "dns.dnssec.unsigned";

fn rec(name: &str, r: Rec) -> (String, Rec) {
    (name.to_string(), r)
}

/// `shop.test`: signed (a DNSKEY and a DS), CAA, SPF, DMARC p=reject, a CNAME that resolves,
/// one that dangles into `cloud.test`, a loop, one into a zone that fails (`broken.test`,
/// SERVFAIL) and one into a zone nobody serves (REFUSED); `legacy.test`: none of that, DMARC
/// p=none; `island.test`: a DNSKEY without DS; `case.test`: `v=dmarc1`; `multi.test`: two
/// DMARC records; `org.test`: p=reject but sp=none for its subdomains.
async fn dns_lab() -> (LabServer, String) {
    let web = "127.0.50.10".parse().unwrap();
    let zones = [
        Zone {
            origin: "shop.test".into(),
            records: vec![
                rec("shop.test", Rec::A(web)),
                rec("shop.test", Rec::CaaIssue("letsencrypt.org".into())),
                rec("shop.test", Rec::Txt("v=spf1 mx -all".into())),
                rec("shop.test", Rec::Txt("google-site-verification=abc".into())),
                rec("shop.test", Rec::Dnskey),
                rec("shop.test", Rec::Ds),
                rec(
                    "_dmarc.shop.test",
                    Rec::Txt("v=DMARC1; p=reject; rua=mailto:d@shop.test".into()),
                ),
                rec("www.shop.test", Rec::Cname("app.shop.test".into())),
                rec("app.shop.test", Rec::A(web)),
                rec("old.shop.test", Rec::Cname("gone.cloud.test".into())),
                rec("loop1.shop.test", Rec::Cname("loop2.shop.test".into())),
                rec("loop2.shop.test", Rec::Cname("loop1.shop.test".into())),
                rec("cdn.shop.test", Rec::Cname("edge.broken.test".into())),
                rec("lame.shop.test", Rec::Cname("shop.nowhere.test".into())),
            ],
        },
        Zone {
            origin: "island.test".into(),
            records: vec![
                rec("island.test", Rec::A("127.0.50.12".parse().unwrap())),
                rec("island.test", Rec::Dnskey),
            ],
        },
        Zone {
            origin: "case.test".into(),
            records: vec![rec(
                "_dmarc.case.test",
                Rec::Txt("v=dmarc1; p=reject".into()),
            )],
        },
        Zone {
            origin: "multi.test".into(),
            records: vec![
                rec("_dmarc.multi.test", Rec::Txt("v=DMARC1; p=reject".into())),
                rec("_dmarc.multi.test", Rec::Txt("v=DMARC1; p=none".into())),
            ],
        },
        Zone {
            origin: "org.test".into(),
            records: vec![rec(
                "_dmarc.org.test",
                Rec::Txt("v=DMARC1; p=reject; sp=none".into()),
            )],
        },
        Zone {
            origin: "legacy.test".into(),
            records: vec![
                rec("legacy.test", Rec::A("127.0.50.11".parse().unwrap())),
                rec("_dmarc.legacy.test", Rec::Txt("v=DMARC1; p=none".into())),
            ],
        },
        Zone {
            origin: "cloud.test".into(),
            records: vec![],
        },
    ];
    let server = lab::serve_dns_with("127.0.50.1", &zones, &["broken.test"])
        .await
        .unwrap();
    let addr = server.addr.to_string();
    (server, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_kept_zone_passes() {
    let (_dns, server) = dns_lab().await;
    let run = secgate(&[
        "scan",
        "shop.test",
        "--checks",
        "dns",
        "--dns-server",
        &server,
        "--mail-domain",
        "shop.test",
        "--timeout",
        "2",
    ]);
    assert_eq!(
        run.statuses(None),
        expect(&[
            (DANGLING, "pass"),
            (CAA, "pass"),
            (SPF, "pass"),
            (DMARC, "pass"),
            (DMARC_WEAK, "pass"),
            (DNSSEC, "pass"),
        ]),
        "{}",
        run.stdout
    );
    // The target resolved through the test's server, not the system's.
    assert_eq!(run.json()["targets"][0]["address"], "127.0.50.10");
    assert_eq!(run.result(CAA)["evidence"]["found_at"], "shop.test");
    assert_eq!(
        run.result(CAA)["evidence"]["caa"],
        json!(["0 issue \"letsencrypt.org\""])
    );
    assert_eq!(
        run.result(SPF)["evidence"]["spf"],
        json!(["shop.test: v=spf1 mx -all"])
    );
    assert_eq!(
        run.result(DNSSEC)["evidence"],
        json!({"zone": "shop.test", "dnskeys": 1, "ds": 1})
    );
    assert_eq!(
        run.result(DMARC)["evidence"]["dmarc"],
        json!(["shop.test: v=DMARC1; p=reject; rua=mailto:d@shop.test (at _dmarc.shop.test)"])
    );
    assert_eq!(run.code, 0, "{}", run.stdout);

    // A CNAME that resolves; CAA and the zone are found by climbing to the parent.
    let run = secgate(&[
        "scan",
        "www.shop.test",
        "--checks",
        "dns",
        "--dns-server",
        &server,
        "--timeout",
        "2",
    ]);
    assert_eq!(run.result(DANGLING)["status"], "pass");
    assert_eq!(
        run.result(DANGLING)["message"],
        "www.shop.test is a CNAME to app.shop.test, which resolves"
    );
    assert_eq!(run.result(CAA)["evidence"]["found_at"], "shop.test");
    assert_eq!(run.result(DNSSEC)["evidence"]["zone"], "shop.test");
    // No mail domain configured: SPF and DMARC are not judged.
    for id in [SPF, DMARC, DMARC_WEAK] {
        assert_eq!(run.result(id)["status"], "skipped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neglected_zone_fails() {
    let (_dns, server) = dns_lab().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[scan]\nchecks = [\"dns\"]\ndns_server = \"{server}\"\ntimeout = 2\n\n[[target]]\nhost = \"legacy.test\"\nmail_domains = [\"legacy.test\"]\n"
        ),
    )
    .unwrap();
    let run = secgate(&["scan", "--config", cfg.to_str().unwrap()]);
    assert_eq!(
        run.statuses(None),
        expect(&[
            (DANGLING, "pass"),
            (CAA, "fail"),
            (SPF, "fail"),
            (DMARC, "pass"),
            (DMARC_WEAK, "fail"),
            (DNSSEC, "fail"),
        ]),
        "{}",
        run.stdout
    );
    assert_eq!(run.result(SPF)["message"], "legacy.test: no SPF record");
    assert_eq!(
        run.result(DMARC_WEAK)["message"],
        "DMARC policy only monitors: legacy.test: p=none"
    );
    assert_eq!(
        run.result(DNSSEC)["message"],
        "the zone legacy.test publishes no DNSKEY: it is not signed with DNSSEC"
    );
    assert_eq!(run.code, 1);

    // A mail domain without any DMARC record.
    let run = secgate(&[
        "scan",
        "shop.test",
        "--checks",
        "dns",
        "--dns-server",
        &server,
        "--mail-domain",
        "cloud.test",
        "--timeout",
        "2",
    ]);
    assert_eq!(run.result(DMARC)["status"], "fail");
    assert_eq!(
        run.result(DMARC)["message"],
        "cloud.test: no DMARC record at _dmarc.cloud.test"
    );
    assert_eq!(run.result(DMARC_WEAK)["status"], "skipped");
}

fn dns_scan(server: &str, name: &str, mail: &[&str]) -> support::Run {
    let mut args = vec![
        "scan",
        name,
        "--checks",
        "dns",
        "--dns-server",
        server,
        "--timeout",
        "2",
    ];
    for m in mail {
        args.extend(["--mail-domain", m]);
    }
    secgate(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmarc_follows_rfc_7489() {
    let (_dns, server) = dns_lab().await;
    // `v=dmarc1` is not a DMARC record (DMARC1 is case-sensitive): discarded, so missing.
    let run = dns_scan(&server, "shop.test", &["case.test"]);
    assert_eq!(
        (
            run.result(DMARC)["status"].as_str(),
            run.result(DMARC_WEAK)["status"].as_str()
        ),
        (Some("fail"), Some("skipped"))
    );
    assert_eq!(
        run.result(DMARC)["message"],
        "case.test: no DMARC record at _dmarc.case.test (discarded: \"v=dmarc1; p=reject\": v=DMARC1 must be the first tag, DMARC1 in capitals)"
    );
    // Two records: no policy at all (§6.6.3).
    let run = dns_scan(&server, "shop.test", &["multi.test"]);
    assert_eq!(run.result(DMARC)["status"], "fail");
    assert_eq!(
        run.result(DMARC)["message"],
        "multi.test: 2 DMARC records at _dmarc.multi.test (RFC 7489 §6.6.3: more than one means no policy)"
    );
    // A subdomain without its own record is covered by its organisational domain's.
    let run = dns_scan(&server, "shop.test", &["mail.shop.test"]);
    assert_eq!(
        (
            run.result(DMARC)["status"].as_str(),
            run.result(DMARC_WEAK)["status"].as_str()
        ),
        (Some("pass"), Some("pass")),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.result(DMARC)["evidence"]["dmarc"],
        json!([
            "mail.shop.test: v=DMARC1; p=reject; rua=mailto:d@shop.test (at _dmarc.shop.test (organisational domain))"
        ])
    );
    // ...and judged by its sp= when there is one.
    let run = dns_scan(&server, "shop.test", &["news.org.test"]);
    assert_eq!(run.result(DMARC)["status"], "pass");
    assert_eq!(run.result(DMARC_WEAK)["status"], "fail");
    assert_eq!(
        run.result(DMARC_WEAK)["message"],
        "DMARC policy only monitors: news.org.test: sp=none"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_without_a_ds_are_an_island() {
    let (_dns, server) = dns_lab().await;
    let run = dns_scan(&server, "island.test", &[]);
    assert_eq!(run.result(DNSSEC)["status"], "fail");
    assert_eq!(
        run.result(DNSSEC)["message"],
        "the zone island.test publishes 1 DNSKEY record but its parent has no DS record for it: an island of security that validators treat as unsigned"
    );
    assert_eq!(
        run.result(DNSSEC)["evidence"],
        json!({"zone": "island.test", "dnskeys": 1, "ds": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_chains_that_do_not_end_well() {
    let (_dns, server) = dns_lab().await;
    // A loop: inconclusive, saying so.
    let run = dns_scan(&server, "loop1.shop.test", &[]);
    let r = run.result(DANGLING);
    assert_eq!(r["status"], "inconclusive", "{}", run.stdout);
    assert_eq!(
        r["reason"]["detail"],
        "loop1.shop.test: the CNAME chain loops: loop1.shop.test -> loop2.shop.test -> loop1.shop.test"
    );
    // SERVFAIL at the target: inconclusive, with its own message and the chain.
    let run = dns_scan(&server, "cdn.shop.test", &[]);
    let r = run.result(DANGLING);
    assert_eq!(r["status"], "inconclusive", "{}", run.stdout);
    assert_eq!(
        r["reason"]["detail"],
        "cdn.shop.test is a CNAME to edge.broken.test, which fails to resolve (SERVFAIL): a lame delegation (the takeover pattern), a DNSSEC failure or an outage; check the delegation of its zone"
    );
    assert_eq!(r["evidence"]["cname_chain"], json!(["edge.broken.test"]));
    // REFUSED at the target: nobody serves its zone.
    let run = dns_scan(&server, "lame.shop.test", &[]);
    let r = run.result(DANGLING);
    assert_eq!(r["status"], "fail", "{}", run.stdout);
    assert_eq!(
        r["message"],
        "lame.shop.test is a CNAME to shop.nowhere.test, for which the DNS server refuses to answer (REFUSED): nobody serves its zone (lame or deleted delegation, the takeover pattern)"
    );
}

/// Without --dns-server, a target name goes to the resolver as given, so resolv.conf's
/// `search` list and `ndots` apply as they did with getaddrinfo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_resolution_applies_the_search_list() {
    use secgate::engine::dns::Dns;
    let (_dns, server) = dns_lab().await;
    let addr: std::net::SocketAddr = server.parse().unwrap();
    let timeout = std::time::Duration::from_secs(2);
    let system_like = Dns::with_search(addr, &["shop.test"], 1, timeout);
    let found = system_like.lookup_ip("app", 443).await.unwrap();
    assert_eq!(found, vec!["127.0.50.10:443".parse().unwrap()]);
    // A name with a dot still goes out as is first.
    let found = system_like.lookup_ip("app.shop.test", 80).await.unwrap();
    assert_eq!(found, vec!["127.0.50.10:80".parse().unwrap()]);
    // --dns-server: names are absolute, no search list.
    let pinned = Dns::new(Some(addr), timeout);
    assert!(pinned.lookup_ip("app", 443).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_cname_is_found_although_the_name_does_not_resolve() {
    let (_dns, server) = dns_lab().await;
    let run = secgate(&[
        "scan",
        "old.shop.test",
        "--dns-server",
        &server,
        "--timeout",
        "2",
    ]);
    let target = &run.json()["targets"][0];
    assert_eq!(target["status"], "unreachable");
    assert_eq!(target["error"]["kind"], "dns");
    // Only the dns family runs on a name that does not resolve.
    assert_eq!(run.json()["families"], json!(["dns"]), "{}", run.stdout);
    let r = run.result(DANGLING);
    assert_eq!(r["status"], "fail");
    assert_eq!(
        r["message"],
        "old.shop.test is a CNAME to gone.cloud.test, which does not exist (NXDOMAIN)"
    );
    assert_eq!(r["evidence"]["cname_chain"], json!(["gone.cloud.test"]));
    assert_eq!(run.result(CAA)["status"], "pass");
    assert_eq!(run.code, 1, "{}", run.stdout);
    // The terminal report shows the finding under the unreachable target.
    assert!(run.stdout.contains("UNREACHABLE"), "{}", run.stdout);
    assert!(run.stdout.contains("dns.dangling_cname"), "{}", run.stdout);

    // A name that does not exist at all (no CNAME either) has nothing to judge.
    let run = secgate(&[
        "scan",
        "nothing.shop.test",
        "--dns-server",
        &server,
        "--timeout",
        "2",
    ]);
    assert_eq!(run.result(DANGLING)["status"], "inconclusive");
    assert_eq!(
        run.result(DANGLING)["reason"]["detail"],
        format!("nothing.shop.test does not exist (NXDOMAIN from {server})")
    );
    assert_eq!(run.code, 3, "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_server_resolves_targets_for_every_family() {
    let (_dns, server) = dns_lab().await;
    // An HTTPS site on the address the zone gives www.shop.test (through its CNAME).
    let site = https_site_at("127.0.50.10", "www.shop.test", Site::hardened()).await;
    let url = format!("https://www.shop.test:{}/", site.port());
    let ca = &site.flags[3]; // --ca-file PATH
    let closed = support::closed_port("127.0.50.10").to_string();
    let run = secgate(&[
        "scan",
        &url,
        "--dns-server",
        &server,
        "--ca-file",
        ca,
        "--http-port",
        &closed,
        "--timeout",
        "2",
    ]);
    assert_eq!(
        run.json()["targets"][0]["address"],
        format!("127.0.50.10:{}", site.port()),
        "{}",
        run.stdout
    );
    assert_eq!(run.json()["families"], json!(["headers", "tls", "dns"]));
    let headers = run.statuses(None);
    assert!(
        headers
            .iter()
            // The tls.profile.* rules are skipped without a profile (tests/profiles.rs).
            .filter(|(id, _)| {
                (id.starts_with("headers.") || id.starts_with("tls."))
                    && !id.starts_with("tls.profile.")
            })
            // Skipped by design on a rustls lab site under a private CA: no RSA key exchange
            // (ROBOT), no must-staple certificate, a `--ca-file` CA (CT).
            .all(|(id, s)| s == "pass"
                || ([
                    "tls.vuln.robot",
                    "tls.ocsp.must_staple_missing",
                    "tls.ct.missing"
                ]
                .contains(&id.as_str())
                    && s == "skipped")),
        "{headers:?}"
    );
    assert_eq!(run.result(DANGLING)["status"], "pass");

    // A name pinned with --resolve is not looked up: the dns family does not apply to it.
    let mut args = vec![
        "scan",
        url.as_str(),
        "--http-port",
        closed.as_str(),
        "--dns-server",
        server.as_str(),
    ];
    args.extend(site.flags.iter().map(String::as_str));
    let run = secgate(&args);
    assert_eq!(
        run.json()["families"],
        json!(["headers", "tls"]),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_dns_arguments_exit_2_naming_the_flag() {
    for (args, needle) in [
        (
            vec!["scan", "a.test", "--dns-server", "nope"],
            "--dns-server: 'nope': expected ADDR:PORT",
        ),
        (
            vec!["scan", "a.test", "--dns-server", "127.0.0.1:0"],
            "--dns-server: '127.0.0.1:0': port must be 1-65535",
        ),
        (
            vec!["scan", "a.test", "--mail-domain", "not a domain"],
            "--mail-domain: 'not a domain' is not a domain name",
        ),
    ] {
        let run = secgate(&args);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1);
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in {}",
            run.stderr
        );
    }
}
