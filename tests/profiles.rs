//! Policy profiles: the shipped ones parse and name only catalogue rules, `secgate profiles`
//! and `explain --profile` show them, and a scan of a real `openssl s_server` on loopback is
//! judged against Mozilla's lists (`--profile`, `--profile-file`, `policy.profile`), with the
//! profile recorded in the report. Bad names and bad profile files exit 2 naming the flag or
//! `file:line:column`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use secgate::model::Severity;
use serde_json::Value;
use support::{OpensslServer, Run, secgate};

fn result<'a>(run: &'a Run, rule: &str) -> &'a Value {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == rule)
        .unwrap_or_else(|| panic!("no {rule}\n{}\n{}", run.stdout, run.stderr))
}

fn scan(target: &str, extra: &[&str]) -> Run {
    let mut args = vec!["scan", target, "--checks", "tls", "--timeout", "3"];
    args.extend_from_slice(extra);
    secgate(&args)
}

/// The acceptance case of the profiles: a TLS 1.2 + 1.3 server whose only TLS 1.2 suite is
/// ECDHE-RSA-AES128-GCM-SHA256 fails Mozilla modern's suite and protocol rules (modern is TLS
/// 1.3 only) and passes intermediate's, which lists that suite; a team's own profile that
/// extends intermediate with a narrower list fails it again, at the severity it gives.
#[test]
fn mozilla_modern_and_intermediate_against_openssl_s_server() {
    let dir = support::rsa_material();
    let server = OpensslServer::with_key(
        dir.path(),
        "cert.pem",
        "key.pem",
        &["-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
    );
    let target = server.target();

    let modern = scan(&target, &["--profile", "mozilla-modern"]);
    let suites = result(&modern, "tls.profile.suites");
    assert_eq!(suites["status"], "fail", "{suites}");
    assert_eq!(
        suites["message"],
        "suites outside mozilla-modern 6.0 accepted: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (TLS 1.2)"
    );
    assert_eq!(
        suites["evidence"]["outside_profile"],
        serde_json::json!(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (TLS 1.2)"])
    );
    let protocols = result(&modern, "tls.profile.protocols");
    assert_eq!(protocols["status"], "fail", "{protocols}");
    assert_eq!(
        protocols["message"],
        "versions outside mozilla-modern 6.0 accepted: TLS 1.2 (it allows only TLS 1.3)"
    );
    // An RSA certificate is outside modern (ECDSA only), and 365 days is over its 90.
    assert_eq!(result(&modern, "tls.profile.key_type")["status"], "fail");
    assert_eq!(
        result(&modern, "tls.profile.cert_lifetime")["status"],
        "fail"
    );
    assert_eq!(
        result(&modern, "tls.profile.server_order")["status"],
        "skipped"
    );
    // The report records the profile: JSON policy, terminal header.
    assert_eq!(
        modern.json()["policy"]["profile"],
        serde_json::json!({"name": "mozilla-modern", "version": "6.0"})
    );
    assert_eq!(modern.json()["schema_minor"], 8);
    let header = modern.stdout.lines().next().unwrap_or_default();
    assert!(header.ends_with("· profile mozilla-modern 6.0"), "{header}");
    assert_eq!(modern.code, 1, "{}", modern.stdout);

    let mid = scan(&target, &["--profile", "mozilla-intermediate"]);
    for rule in [
        "tls.profile.suites",
        "tls.profile.protocols",
        "tls.profile.key_type",
        "tls.profile.cert_signature",
        "tls.profile.cert_lifetime",
    ] {
        let r = result(&mid, rule);
        assert_eq!(r["status"], "pass", "{rule}: {r}\n{}", mid.stdout);
    }
    assert_eq!(
        mid.json()["policy"]["profile"],
        serde_json::json!({"name": "mozilla-intermediate", "version": "6.0"})
    );
    // The catalogue's own rules are judged as without a profile; intermediate raises CBC.
    assert_eq!(result(&mid, "tls.cipher.cbc")["severity"], "medium");
    assert_eq!(result(&mid, "tls.cipher.weak")["status"], "pass");

    // mozilla-old disables the rules for what it allows on purpose; RSA-2048 with
    // sha256WithRSAEncryption is its certificate, and one TLS 1.2 suite has no order to impose.
    let old = scan(&target, &["--profile", "mozilla-old"]);
    let tls10 = result(&old, "tls.protocol.tls10");
    assert_eq!(tls10["status"], "skipped");
    assert_eq!(tls10["message"], "disabled by the profile mozilla-old 5.7");
    for rule in [
        "tls.profile.key_type",
        "tls.profile.cert_signature",
        "tls.profile.server_order",
        "tls.profile.suites",
        "tls.profile.protocols",
    ] {
        let r = result(&old, rule);
        assert_eq!(r["status"], "pass", "{rule}: {r}");
    }

    // Without a profile the profile rules are skipped, and the header names none.
    let plain = scan(&target, &[]);
    assert_eq!(result(&plain, "tls.profile.suites")["status"], "skipped");
    assert!(
        result(&plain, "tls.profile.suites")["message"]
            .as_str()
            .unwrap()
            .starts_with("the profile default 1 sets no cipher suite lists"),
    );
    assert!(!plain.stdout.lines().next().unwrap().contains("profile"));

    // A team's own profile, from a file and from the config.
    let own = dir.path().join("acme.toml");
    std::fs::write(
        &own,
        "name = \"acme-tls\"\nversion = \"2026-12\"\nextends = \"mozilla-intermediate\"\n\n[rules.\"tls.profile.suites\"]\nseverity = \"high\"\n\n[tls]\nsuites = [\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"]\n",
    )
    .unwrap();
    let run = scan(&target, &["--profile-file", own.to_str().unwrap()]);
    let suites = result(&run, "tls.profile.suites");
    assert_eq!(suites["status"], "fail", "{suites}");
    assert_eq!(suites["severity"], "high");
    assert_eq!(
        run.json()["policy"]["profile"],
        serde_json::json!({"name": "acme-tls", "version": "2026-12"})
    );
    // Inherited from intermediate: protocols.
    assert_eq!(result(&run, "tls.profile.protocols")["status"], "pass");

    let config = dir.path().join("secgate.toml");
    std::fs::write(
        &config,
        "[policy]\nprofile = \"mozilla-intermediate@5.7\"\n",
    )
    .unwrap();
    let valid = secgate(&["validate", config.to_str().unwrap()]);
    assert_eq!(valid.code, 0, "{}", valid.stderr);
    assert!(
        valid.stdout.contains(
            "profile: mozilla-intermediate 5.7 (Mozilla Server Side TLS 5.7 intermediate"
        ),
        "{}",
        valid.stdout
    );
    let run = scan(&target, &["--config", config.to_str().unwrap()]);
    assert_eq!(
        run.json()["policy"]["profile"],
        serde_json::json!({"name": "mozilla-intermediate", "version": "5.7"})
    );
    assert_eq!(result(&run, "tls.profile.suites")["status"], "pass");
    // SARIF records it in the run's properties.
    let sarif = dir.path().join("r.sarif");
    let run = scan(
        &target,
        &[
            "--profile",
            "mozilla-modern@5.7",
            "--sarif",
            sarif.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1);
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(
        log["runs"][0]["properties"]["profile"],
        serde_json::json!({"name": "mozilla-modern", "version": "5.7"})
    );
}

#[test]
fn unknown_profiles_and_bad_profile_files_exit_2_naming_the_place() {
    let run = secgate(&["scan", "127.0.0.1:1", "--profile", "mozilla-ancient"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        "secgate: error: --profile: unknown profile 'mozilla-ancient' (known: default, strict, mozilla-modern (6.0, 5.7), mozilla-intermediate (6.0, 5.7), mozilla-old)"
    );
    let run = secgate(&["scan", "127.0.0.1:1", "--profile", "mozilla-old@6.0"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--profile: profile 'mozilla-old' has no version '6.0' (versions: 5.7)"),
        "{}",
        run.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("secgate.toml");
    std::fs::write(&config, "[policy]\nmin_score = 90\nprofile = \"nope\"\n").unwrap();
    let run = secgate(&["scan", "127.0.0.1:1", "--config", config.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(&format!(
            "{}:3:11: policy.profile: unknown profile 'nope' (known: default, strict",
            config.display()
        )),
        "{}",
        run.stderr
    );
    let run = secgate(&["validate", config.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stdout);

    // An unknown key in a profile file, and a suite name that is not IANA's.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n\n[tls]\nciphers = []\n").unwrap();
    let run = secgate(&[
        "scan",
        "127.0.0.1:1",
        "--profile-file",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2);
    let line = run.stderr.trim();
    assert!(
        line.starts_with(&format!("secgate: error: {}:4:1: ", bad.display()))
            && line.contains("ciphers"),
        "{line}"
    );
    std::fs::write(
        &bad,
        "name = \"x\"\n[tls]\nsuites = [\"ECDHE-RSA-AES128-GCM-SHA256\"]\n",
    )
    .unwrap();
    let run = secgate(&["explain", "--profile-file", bad.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "secgate: error: {}:3:11: tls.suites: 'ECDHE-RSA-AES128-GCM-SHA256' is not the IANA name of a TLS 1.2 or older cipher suite",
            bad.display()
        )
    );
    std::fs::write(
        &bad,
        "name = \"x\"\n[rules.\"tls.nope\"]\nenabled = false\n",
    )
    .unwrap();
    let run = secgate(&[
        "scan",
        "127.0.0.1:1",
        "--profile-file",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(":2:8: rules: 'tls.nope' is not a rule id"),
        "{}",
        run.stderr
    );
    let run = secgate(&[
        "scan",
        "127.0.0.1:1",
        "--profile-file",
        "/nonexistent/p.toml",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("secgate: error: --profile-file: /nonexistent/p.toml: "),
        "{}",
        run.stderr
    );
}

#[test]
fn profiles_lists_them_and_explain_shows_what_one_changes() {
    let run = secgate(&["profiles"]);
    assert_eq!(run.code, 0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("VERSION  DESCRIPTION"));
    for (name, version) in [
        ("default", "1"),
        ("strict", "1"),
        ("mozilla-modern", "6.0"),
        ("mozilla-intermediate", "6.0"),
        ("mozilla-modern", "5.7"),
        ("mozilla-intermediate", "5.7"),
        ("mozilla-old", "5.7"),
    ] {
        assert!(
            lines.iter().any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.first() == Some(&name) && cols.get(1) == Some(&version)
            }),
            "{name} {version}:\n{}",
            run.stdout
        );
    }
    let json = secgate(&["profiles", "--json"]);
    let rows: Value = serde_json::from_str(&json.stdout).unwrap();
    let newest: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["newest"] == true)
        .map(|r| r["spec"].as_str().unwrap())
        .collect();
    assert_eq!(
        newest,
        [
            "default@1",
            "strict@1",
            "mozilla-modern@6.0",
            "mozilla-intermediate@6.0",
            "mozilla-old@5.7"
        ]
    );

    let strict = secgate(&["explain", "--profile", "strict"]);
    assert_eq!(strict.code, 0, "{}", strict.stderr);
    let out = &strict.stdout;
    assert!(out.starts_with("strict 1\n"), "{out}");
    for line in [
        "  headers.xcto.missing                low -> medium",
        "  headers.hsts.no_include_subdomains  info -> medium",
        "  dns.dnssec.unsigned                 info -> medium",
        "  headers.hsts.short                  max-age at least 31536000 s (365 days)",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?}\n{out}");
    }
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with("load.")),
        "load is not hardening: {out}"
    );

    let old = secgate(&["explain", "--profile", "mozilla-old"]);
    assert!(
        old.stdout
            .contains("  tls.protocol.tls10             skipped under this profile"),
        "{}",
        old.stdout
    );
    assert!(
        old.stdout
            .contains("Source: https://ssl-config.mozilla.org/guidelines/5.7.json")
    );

    // One rule under a profile.
    let one = secgate(&[
        "explain",
        "headers.hsts.short",
        "--profile",
        "mozilla-intermediate",
    ]);
    assert!(
        one.stdout.ends_with(
            "\nUnder the profile mozilla-intermediate 6.0\n  severity low (as in the catalogue)\n  requires max-age at least 63072000 s (730 days)\n"
        ),
        "{}",
        one.stdout
    );
    let missing = secgate(&["explain"]);
    assert_eq!(missing.code, 2);
}

/// The README's example of a team's own profile parses, and means what its comments say.
#[test]
fn the_readme_profile_example_parses() {
    let readme = std::fs::read_to_string(support::repo_path("README.md")).unwrap();
    let after = readme
        .split("<!-- profile example: parsed by tests/profiles.rs -->")
        .nth(1)
        .expect("the README has the profile example");
    let block = after
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let p = secgate::profile::parse(block).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(p.label(), "acme-tls 2026-12");
    assert_eq!(p.extends.as_deref(), Some("mozilla-intermediate@6.0"));
    assert!(!p.enabled("tls.cert.expiring_soon"));
    assert_eq!(
        p.severity("headers.csp.no_base_uri", Severity::Low),
        Severity::Medium
    );
    assert_eq!(p.tls.rsa_min_bits, Some(3072));
    assert_eq!(p.headers.hsts_min_max_age, Some(31_536_000));
}

/// Each shipped profile parses, names only rule ids of the catalogue, cites its source, and
/// strict leaves no hardening rule under medium.
#[test]
fn every_shipped_profile_parses_and_names_only_catalogue_rules() {
    assert_eq!(secgate::profile::load_error(), None);
    let all = secgate::profile::builtins();
    assert_eq!(all.len(), secgate::profile::SOURCES.len());
    for (file, text) in secgate::profile::SOURCES {
        let p = secgate::profile::parse(text).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        for id in p.rules.keys() {
            assert!(secgate::catalogue::get(id).is_some(), "{file}: {id}");
        }
        for (id, _) in p.parameters() {
            assert!(secgate::catalogue::get(id).is_some(), "{file}: {id}");
        }
        let source = p.source.clone().unwrap_or_default();
        assert!(!source.is_empty() && !p.description.is_empty(), "{file}");
        if p.name.starts_with("mozilla-") {
            let version = p.version.clone().unwrap();
            assert_eq!(
                source,
                format!("https://ssl-config.mozilla.org/guidelines/{version}.json"),
                "{file}"
            );
            assert!(text.contains(&source), "{file} cites its source");
            assert_eq!(p.headers.hsts_min_max_age, Some(63_072_000), "{file}");
        }
    }
    let strict = secgate::profile::resolve("strict").unwrap();
    for rule in secgate::catalogue::all() {
        let sev = strict.severity(&rule.id, rule.severity);
        if rule.family == "load" {
            assert_eq!(sev, rule.severity, "{}", rule.id);
        } else {
            assert!(sev >= Severity::Medium, "{} is {sev} under strict", rule.id);
        }
    }
    // What each version states: 6.0 dropped DHE and added X25519MLKEM768.
    let v6 = secgate::profile::resolve("mozilla-intermediate").unwrap();
    let v57 = secgate::profile::resolve("mozilla-intermediate@5.7").unwrap();
    let has_dhe = |p: &secgate::profile::Profile| {
        p.tls
            .suites
            .as_ref()
            .unwrap()
            .iter()
            .any(|c| secgate::checks::tls::registry::suite_name(*c).starts_with("TLS_DHE_"))
    };
    assert!(!has_dhe(&v6) && has_dhe(&v57));
    assert_eq!(v6.tls.groups.as_ref().unwrap().first(), Some(&0x11EC));
    assert!(!v57.tls.groups.as_ref().unwrap().contains(&0x11EC));
    assert_eq!(v6.tls.suites.as_ref().unwrap().len(), 6);
    assert_eq!(v57.tls.suites.as_ref().unwrap().len(), 9);
    let old = secgate::profile::resolve("mozilla-old").unwrap();
    assert_eq!(old.tls.suites.as_ref().unwrap().len(), 26);
    assert_eq!(old.tls.server_order, Some(true));
    let modern = secgate::profile::resolve("mozilla-modern").unwrap();
    assert_eq!(modern.tls.max_cert_lifetime_days, Some(90));
    assert_eq!(modern.tls.suites.as_deref(), Some(&[][..]));
}

/// The headers family reads the profile's HSTS max-age: a one-year policy passes the
/// catalogue's 180 days and strict's year, and fails Mozilla's two years; strict raises the
/// low rules a real site fails to medium.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hsts_max_age_comes_from_the_profile() {
    let site = support::https_site(secgate::lab::Site::with_headers(&[(
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    )]))
    .await;
    let short = |run: &Run| result(run, "headers.hsts.short").clone();
    let plain = site.scan(&["--checks", "headers"]);
    assert_eq!(short(&plain)["status"], "pass", "{}", plain.stdout);
    assert_eq!(result(&plain, "headers.xcto.missing")["severity"], "low");

    let strict = site.scan(&["--checks", "headers", "--profile", "strict"]);
    assert_eq!(short(&strict)["status"], "pass");
    assert_eq!(short(&strict)["severity"], "medium");
    let xcto = result(&strict, "headers.xcto.missing");
    assert_eq!(xcto["status"], "fail");
    assert_eq!(xcto["severity"], "medium");
    assert_eq!(
        strict.json()["summary"]["counts"]["low"],
        0,
        "{}",
        strict.stdout
    );

    let md = site.server.addr.port().to_string() + ".md";
    let md = plain.dir.path().join(md);
    let report = format!("markdown={}", md.display());
    let mid = site.scan(&[
        "--checks",
        "headers",
        "--profile",
        "mozilla-intermediate",
        "--report",
        &report,
    ]);
    let summary = std::fs::read_to_string(&md).unwrap();
    assert!(
        summary.contains(", profile mozilla\\-intermediate 6\\.0 ·")
            || summary.contains(", profile mozilla-intermediate 6.0 ·"),
        "{summary}"
    );
    let s = short(&mid);
    assert_eq!(s["status"], "fail", "{s}");
    assert_eq!(
        s["message"],
        "HSTS max-age is 31536000 s (365 days), under the 63072000 s (730 days) the profile mozilla-intermediate 6.0 requires"
    );
}
