//! The headers family against real HTTP and HTTPS servers on loopback, one scenario per test,
//! asserting the exact status of every rule.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use secgate::lab::{Cors, Site};
use support::{all_headers, closed_port, http_site_at, https_site, https_site_at, secgate};

const PASS: &str = "pass";
const FAIL: &str = "fail";
const SKIP: &str = "skipped";
const INCONCLUSIVE: &str = "inconclusive";

/// Flags that point the plain-HTTP probe at a port where nothing listens.
fn no_plain_http() -> Vec<String> {
    vec![
        "--checks".into(),
        "headers".into(),
        "--http-port".into(),
        closed_port("127.0.0.1").to_string(),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardened_site_passes_every_rule_and_the_gate() {
    let site = https_site(Site::hardened()).await;
    let run = site.scan(&args(&no_plain_http()));
    assert_eq!(run.statuses(None), all_headers(PASS, &[]), "{}", run.stdout);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["summary"]["score"], 100.0);
    assert_eq!(run.json()["targets"][0]["status"], "scanned");
    // Not compressed: nothing for BREACH to measure.
    let breach = run.result("http.compression.breach");
    assert_eq!(
        breach["evidence"]["content-encoding"], "identity",
        "{breach}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_site_misses_every_header() {
    let site = https_site(Site::default()).await;
    let run = site.scan(&args(&no_plain_http()));
    let want = all_headers(
        PASS,
        &[
            ("headers.hsts.missing", FAIL),
            ("headers.hsts.short", SKIP),
            ("headers.hsts.no_include_subdomains", SKIP),
            ("headers.csp.missing", FAIL),
            ("headers.csp.unsafe", SKIP),
            ("headers.csp.no_object_src", SKIP),
            ("headers.csp.no_base_uri", SKIP),
            ("headers.xcto.missing", FAIL),
            ("headers.framing.missing", FAIL),
            ("headers.referrer.missing", FAIL),
            ("headers.cookie.insecure", SKIP),
            ("headers.cookie.no_httponly", SKIP),
            ("headers.cookie.no_samesite", SKIP),
        ],
    );
    assert_eq!(run.statuses(None), want);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.result("headers.cookie.insecure")["message"],
        "no cookies are set"
    );
    // Weights: hsts 2 + csp 2 + xcto 1 + framing 2 + referrer 0 failed; cors 5 + 1, version 1,
    // redirect 2, breach 2 passed: 11 / 18.
    assert_eq!(run.json()["summary"]["score"], 61.11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_site_has_the_classic_findings() {
    let plain = http_site_at("127.0.0.1", Site::legacy()).await;
    let site = https_site(Site::legacy()).await;
    let port = plain.addr.port().to_string();
    let run = site.scan(&["--checks", "headers", "--http-port", &port]);
    let want = all_headers(
        FAIL,
        &[
            ("headers.hsts.short", SKIP),
            ("headers.hsts.no_include_subdomains", SKIP),
            ("headers.csp.missing", PASS),
            ("headers.cors.wildcard_credentials", PASS),
            // The lab does not compress.
            ("http.compression.breach", PASS),
        ],
    );
    assert_eq!(run.statuses(None), want);
    assert_eq!(run.code, 1);

    let csp = run.result("headers.csp.unsafe");
    assert_eq!(
        csp["evidence"]["unsafe_sources"],
        serde_json::json!(["'unsafe-inline'", "'unsafe-eval'"])
    );
    let cookie = run.result("headers.cookie.insecure");
    assert_eq!(
        cookie["message"],
        "session cookie without Secure: sessionid"
    );
    // The cookie's value never reaches the report.
    assert!(!run.json().to_string().contains("lab-session-value"));
    let cors = run.result("headers.cors.reflect_credentials");
    assert_eq!(cors["evidence"]["access-control-allow-credentials"], "true");
    let version = run.result("headers.version_disclosure");
    assert_eq!(
        version["evidence"]["banners"],
        serde_json::json!(["server: nginx/1.18.0", "x-powered-by: PHP/7.4.3"])
    );
    let redirect = run.result("http.no_https_redirect");
    assert_eq!(redirect["evidence"]["status"], 200);
    assert_eq!(
        run.result("headers.framing.missing")["evidence"]["x-frame-options"],
        serde_json::json!(["ALLOW-FROM https://partner.example"])
    );
}

/// The hardened site with some headers replaced (`Some`) or removed (`None`).
fn hardened_with(changes: &[(&str, Option<&str>)]) -> Site {
    let mut site = Site::hardened();
    for (name, value) in changes {
        site.headers.retain(|(k, _)| k != name);
        if let Some(v) = value {
            site.headers.push(((*name).to_string(), (*v).to_string()));
        }
    }
    site
}

/// Scan `site` (plain HTTP closed) and compare every rule: all pass but `overrides`.
async fn assert_exact(site: Site, overrides: &[(&str, &str)]) -> support::Run {
    let run = https_site(site).await.scan(&args(&no_plain_http()));
    assert_eq!(
        run.statuses(None),
        all_headers(PASS, overrides),
        "{}",
        run.stdout
    );
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_short_and_without_subdomains() {
    let hsts = "strict-transport-security";
    assert_exact(
        hardened_with(&[(hsts, Some("max-age=86400"))]),
        &[
            ("headers.hsts.short", FAIL),
            ("headers.hsts.no_include_subdomains", FAIL),
        ],
    )
    .await;
    let skipped = [
        ("headers.hsts.short", SKIP),
        ("headers.hsts.no_include_subdomains", SKIP),
    ];
    for bad in [
        "max-age=abc",
        "max-age=0; includeSubDomains",
        "max-age=63072000; includeSubDomains; foo bar",
    ] {
        let mut want = vec![("headers.hsts.missing", FAIL)];
        want.extend(skipped);
        let run = assert_exact(hardened_with(&[(hsts, Some(bad))]), &want).await;
        let msg = run.result("headers.hsts.missing")["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.contains("invalid") || msg.contains("max-age=0"),
            "{bad}: {msg}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csp_variants() {
    let csp = "content-security-policy";
    // A nonce makes browsers ignore 'unsafe-inline' (CSP2+): the policy is safe.
    assert_exact(
        hardened_with(&[(
            csp,
            Some("script-src 'nonce-abc123' 'strict-dynamic' 'unsafe-inline' https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
        )]),
        &[],
    )
    .await;
    // Report-Only blocks nothing.
    let run = assert_exact(
        hardened_with(&[
            (csp, None),
            (
                "content-security-policy-report-only",
                Some("default-src 'self'"),
            ),
        ]),
        &[
            ("headers.csp.missing", FAIL),
            ("headers.csp.unsafe", SKIP),
            ("headers.csp.no_object_src", SKIP),
            ("headers.csp.no_base_uri", SKIP),
        ],
    )
    .await;
    assert!(
        run.result("headers.csp.missing")["message"]
            .as_str()
            .unwrap()
            .contains("Report-Only")
    );
    // Wildcards and data: in default-src; no base-uri.
    assert_exact(
        hardened_with(&[(csp, Some("default-src * data:; frame-ancestors 'self'"))]),
        &[
            ("headers.csp.unsafe", FAIL),
            ("headers.csp.no_object_src", FAIL),
            ("headers.csp.no_base_uri", FAIL),
        ],
    )
    .await;
    // An empty nonce from a template does not cancel 'unsafe-inline'; script-src-attr counts.
    let run = assert_exact(
        hardened_with(&[(
            csp,
            Some("default-src 'self'; script-src 'self' 'unsafe-inline' 'nonce-'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"),
        )]),
        &[("headers.csp.unsafe", FAIL)],
    )
    .await;
    assert_eq!(
        run.result("headers.csp.unsafe")["evidence"]["unsafe_sources"],
        serde_json::json!(["'unsafe-inline'"])
    );
    assert_exact(
        hardened_with(&[(
            csp,
            Some("default-src 'self'; script-src-attr 'unsafe-inline'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"),
        )]),
        &[("headers.csp.unsafe", FAIL)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_by_frame_ancestors_or_xfo() {
    let csp = "content-security-policy";
    let xfo = "x-frame-options";
    let policy = "default-src 'self'; object-src 'none'; base-uri 'self'";
    // frame-ancestors alone.
    assert_exact(
        hardened_with(&[
            (xfo, None),
            (csp, Some(&format!("{policy}; frame-ancestors 'self'"))),
        ]),
        &[],
    )
    .await;
    // X-Frame-Options alone.
    assert_exact(
        hardened_with(&[(xfo, Some("SAMEORIGIN")), (csp, Some(policy))]),
        &[],
    )
    .await;
    // A permissive frame-ancestors overrides X-Frame-Options: DENY in browsers.
    let run = assert_exact(
        hardened_with(&[
            (xfo, Some("DENY")),
            (
                csp,
                Some(&format!("{policy}; frame-ancestors https://*:443")),
            ),
        ]),
        &[("headers.framing.missing", FAIL)],
    )
    .await;
    assert!(
        run.result("headers.framing.missing")["message"]
            .as_str()
            .unwrap()
            .contains("ignored")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_judged_per_attribute() {
    let mut site = hardened_with(&[("set-cookie", None)]);
    for c in [
        "PHPSESSID=x; Path=/; Secure; HttpOnly",
        "auth_token=y; Secure; SameSite=Strict",
        "old_session=; Max-Age=0",
        "theme=dark",
        "XSRF-TOKEN=z; Secure; SameSite=Strict",
    ] {
        site.headers.push(("set-cookie".into(), c.into()));
    }
    let run = assert_exact(
        site,
        &[
            ("headers.cookie.no_httponly", FAIL),
            ("headers.cookie.no_samesite", FAIL),
        ],
    )
    .await;
    assert_eq!(
        run.result("headers.cookie.no_httponly")["message"],
        "session cookie without HttpOnly: auth_token"
    );
    assert_eq!(
        run.result("headers.cookie.no_samesite")["message"],
        "session cookie without SameSite=Strict or Lax: PHPSESSID"
    );
    assert_eq!(
        run.result("headers.cookie.insecure")["evidence"]["cookies"],
        serde_json::json!(["PHPSESSID", "auth_token"])
    );

    let mut prefs = hardened_with(&[("set-cookie", Some("lang=en"))]);
    prefs
        .headers
        .push(("set-cookie".into(), "accessibility=large".into()));
    let run = assert_exact(
        prefs,
        &[
            ("headers.cookie.insecure", SKIP),
            ("headers.cookie.no_httponly", SKIP),
            ("headers.cookie.no_samesite", SKIP),
        ],
    )
    .await;
    assert!(
        run.result("headers.cookie.insecure")["message"]
            .as_str()
            .unwrap()
            .contains("lang, accessibility")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_policies() {
    let mut wildcard = Site::hardened();
    wildcard.cors = Cors::Wildcard { credentials: true };
    assert_exact(wildcard, &[("headers.cors.wildcard_credentials", FAIL)]).await;

    let mut reflect_public = Site::hardened();
    reflect_public.cors = Cors::Reflect { credentials: false };
    assert_exact(reflect_public, &[]).await;

    let mut reflect = Site::hardened();
    reflect.cors = Cors::Reflect { credentials: true };
    let run = assert_exact(reflect, &[("headers.cors.reflect_credentials", FAIL)]).await;
    assert_eq!(
        run.result("headers.cors.reflect_credentials")["evidence"]["origin_sent"],
        "https://secgate-cors-probe.invalid"
    );
    // One high finding out of 17 rules: the gate fails.
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_banners() {
    let mut quiet = Site::hardened();
    quiet
        .headers
        .push(("x-powered-by".into(), "Express".into()));
    assert_exact(quiet, &[]).await;
    let mut loud = Site::hardened();
    loud.headers
        .push(("x-aspnet-version".into(), "4.0.30319".into()));
    let run = assert_exact(loud, &[("headers.version_disclosure", FAIL)]).await;
    assert_eq!(
        run.result("headers.version_disclosure")["evidence"]["banners"],
        serde_json::json!(["x-aspnet-version: 4.0.30319"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_must_redirect_to_https() {
    let site = https_site(Site::hardened()).await;
    let https_base = format!("https://app.test:{}", site.port());

    let good = http_site_at("127.0.0.1", Site::redirect_to(&https_base)).await;
    let run = site.scan(&[
        "--checks",
        "headers",
        "--http-port",
        &good.addr.port().to_string(),
    ]);
    assert_eq!(run.statuses(None)["http.no_https_redirect"], PASS);
    assert_eq!(
        run.result("http.no_https_redirect")["evidence"]["location"],
        format!("{https_base}/")
    );
    assert_eq!(run.code, 0);

    let http_first = http_site_at(
        "127.0.0.1",
        Site::redirect_to(&format!("http://app.test:{}", site.port())),
    )
    .await;
    let run = site.scan(&[
        "--checks",
        "headers",
        "--http-port",
        &http_first.addr.port().to_string(),
    ]);
    assert_eq!(run.statuses(None)["http.no_https_redirect"], FAIL);

    let content = http_site_at("127.0.0.1", Site::hardened()).await;
    let run = site.scan(&[
        "--checks",
        "headers",
        "--http-port",
        &content.addr.port().to_string(),
    ]);
    assert_eq!(run.statuses(None)["http.no_https_redirect"], FAIL);
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_target_is_judged_itself() {
    let server = http_site_at("127.0.0.1", Site::hardened()).await;
    let url = format!("http://127.0.0.1:{}/", server.addr.port());
    let run = secgate(&["scan", "--checks", "headers", &url, "--timeout", "2"]);
    let s = run.statuses(None);
    assert_eq!(s["http.no_https_redirect"], FAIL);
    for id in [
        "headers.hsts.missing",
        "headers.hsts.short",
        "headers.hsts.no_include_subdomains",
    ] {
        assert_eq!(s[id], SKIP, "{id}");
    }
    assert_eq!(s["headers.csp.missing"], PASS);
    // BREACH attacks TLS: nothing to judge on a plain-HTTP target.
    assert_eq!(s["http.compression.breach"], SKIP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_within_scope_only() {
    // `/` redirects to `/home` on the same host: content rules judge `/home`, HSTS the first hop.
    let mut site = Site::hardened();
    site.redirect_root = Some("/home".into());
    let in_scope = https_site(site).await;
    let run = in_scope.scan(&args(&no_plain_http()));
    assert_eq!(run.statuses(None), all_headers(PASS, &[]));

    // A redirect to a host that is not a target is not followed: content rules are inconclusive.
    let mut away = Site::hardened();
    away.redirect_root = Some("https://elsewhere.test/".into());
    let out_of_scope = https_site(away).await;
    let run = out_of_scope.scan(&args(&no_plain_http()));
    let s = run.statuses(None);
    for id in [
        "headers.csp.missing",
        "headers.xcto.missing",
        "headers.framing.missing",
        "headers.referrer.missing",
        "headers.cors.reflect_credentials",
    ] {
        assert_eq!(s[id], INCONCLUSIVE, "{id}");
    }
    assert_eq!(s["headers.hsts.missing"], PASS);
    let reason = &run.result("headers.csp.missing")["reason"];
    assert_eq!(reason["kind"], "redirect");
    assert!(
        reason["detail"]
            .as_str()
            .unwrap()
            .contains("elsewhere.test")
    );
    assert_eq!(run.code, 3, "only inconclusive results stop this gate");

    // A redirect loop ends after --max-redirects.
    let mut looping = Site::hardened();
    looping.redirect_root = Some("/".into());
    let run = https_site(looping).await.scan(&[
        "--checks",
        "headers",
        "--max-redirects",
        "2",
        "--http-port",
        &closed_port("127.0.0.1").to_string(),
    ]);
    assert_eq!(
        run.result("headers.csp.missing")["reason"]["kind"],
        "redirect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_another_target_is_followed() {
    let other = https_site_at("127.0.0.2", "www.app.test", Site::hardened()).await;
    let away = Site {
        redirect_root: Some(other.url.clone()),
        ..Site::default()
    };
    // Same CA for both: build the first site with the second's PKI by scanning with both CAs.
    let first = https_site_at("127.0.0.3", "app.test", away).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(
        &bundle,
        format!("{}{}", first.pki.ca_pem(), other.pki.ca_pem()),
    )
    .unwrap();
    let closed = closed_port("127.0.0.3");
    let run = secgate(&[
        "scan",
        "--checks",
        "headers",
        &first.url,
        &other.url,
        "--resolve",
        &format!("app.test:{}:127.0.0.3", first.port()),
        "--resolve",
        &format!("www.app.test:{}:127.0.0.2", other.port()),
        "--ca-file",
        bundle.to_str().unwrap(),
        "--http-port",
        &closed.to_string(),
        "--timeout",
        "2",
    ]);
    let s = run.statuses(Some(&first.url));
    // HSTS is judged on app.test's own redirect (none), content headers on www.app.test.
    assert_eq!(s["headers.hsts.missing"], FAIL);
    assert_eq!(s["headers.csp.missing"], PASS);
    assert_eq!(s["headers.cookie.insecure"], PASS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_trust_is_required_unless_insecure() {
    let site = https_site(Site::hardened()).await;
    let resolve = format!("app.test:{}:127.0.0.1", site.port());
    let closed = closed_port("127.0.0.1").to_string();
    // Without the lab CA the certificate is untrusted: no header can be judged.
    let run = secgate(&[
        "scan",
        "--checks",
        "headers",
        &site.url,
        "--resolve",
        &resolve,
        "--http-port",
        &closed,
        "--timeout",
        "2",
    ]);
    let r = run.result("headers.csp.missing");
    assert_eq!(r["status"], INCONCLUSIVE);
    assert_eq!(r["reason"]["kind"], "tls");
    assert!(
        r["reason"]["detail"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{r}"
    );
    assert_eq!(run.code, 3);
    // --insecure judges the headers anyway, but browsers ignore HSTS sent with an untrusted
    // certificate (RFC 6797 §8.1), so HSTS fails with the reason.
    let run = secgate(&[
        "scan",
        "--checks",
        "headers",
        &site.url,
        "--resolve",
        &resolve,
        "--http-port",
        &closed,
        "--insecure",
    ]);
    assert_eq!(
        run.statuses(None),
        all_headers(
            PASS,
            &[
                ("headers.hsts.missing", FAIL),
                ("headers.hsts.short", SKIP),
                ("headers.hsts.no_include_subdomains", SKIP),
            ]
        )
    );
    let msg = run.result("headers.hsts.missing")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("certificate is not trusted") && msg.contains("UnknownIssuer"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_host_without_a_web_service_is_skipped_not_undecided() {
    // Nothing listens on 127.0.0.61:443: the host has no web service to judge.
    let run = secgate(&[
        "scan",
        "127.0.0.61",
        "--checks",
        "headers",
        "--timeout",
        "1",
    ]);
    let want = all_headers(SKIP, &[]);
    assert_eq!(run.statuses(None), want);
    assert!(
        run.result("headers.csp.missing")["message"]
            .as_str()
            .unwrap()
            .starts_with("no web service")
    );
    // An explicit URL is different: the user said there is a web service.
    let run = secgate(&[
        "scan",
        "https://127.0.0.61/",
        "--checks",
        "headers",
        "--timeout",
        "1",
    ]);
    assert_eq!(run.json()["targets"][0]["status"], "unreachable");
}

// ---------------------------------------------------------------------------------------------
// http.compression.breach: real compressing servers (tower-http's gzip layer) and hostile ones.

const BREACH: &str = "http.compression.breach";

/// The hardened site's headers, without its session cookie.
fn hardened_headers_without_cookie() -> Vec<(String, String)> {
    hardened_with(&[("set-cookie", None)]).headers
}

/// A page that echoes the query string's `q` (as a search page does), with every hardened
/// header but no cookie, served through tower-http's gzip compression.
fn reflecting_gzip_router() -> axum::Router {
    use axum::response::IntoResponse;
    let handler = |req: axum::extract::Request| async move {
        let q = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("q=")))
            .unwrap_or("")
            .to_string();
        let mut resp = axum::response::Html(format!(
            "<!doctype html><title>search</title><p>You searched for: {q}</p>\n"
        ))
        .into_response();
        for (k, v) in hardened_headers_without_cookie() {
            resp.headers_mut().append(
                axum::http::HeaderName::try_from(k).unwrap(),
                axum::http::HeaderValue::try_from(v).unwrap(),
            );
        }
        resp
    };
    axum::Router::new()
        .fallback(handler)
        .layer(tower_http::compression::CompressionLayer::new())
}

fn no_plain_http_run(site: &support::HttpsSite) -> support::Run {
    site.scan(&args(&no_plain_http()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breach_a_gzip_page_that_reflects_the_query_fails() {
    let site = support::https_router_at("127.0.0.1", "app.test", reflecting_gzip_router()).await;
    let run = no_plain_http_run(&site);
    // No cookie at all: the cookie rules have nothing to judge; everything else passes.
    let want = all_headers(
        PASS,
        &[
            ("headers.cookie.insecure", SKIP),
            ("headers.cookie.no_httponly", SKIP),
            ("headers.cookie.no_samesite", SKIP),
            (BREACH, FAIL),
        ],
    );
    assert_eq!(run.statuses(None), want, "{}", run.stdout);
    let r = run.result(BREACH);
    let ev = &r["evidence"];
    assert_eq!(ev["content-encoding"], serde_json::json!(["gzip"]), "{r}");
    assert_eq!(ev["reflects_input"], true);
    assert_eq!(ev["secret_cookies"], serde_json::json!([]));
    assert_eq!(r["severity"], "medium");
    // The marker is random; reports name it MARKER so that scans of one service agree.
    assert_eq!(ev["url"], format!("{}?q=MARKER", site.url), "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("reflects the query string"),
        "{r}"
    );
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breach_a_compressed_static_page_passes_unless_it_sets_a_secret() {
    use tower_http::compression::CompressionLayer;
    // The hardened site, compressed: its session cookie is a secret in a compressed page.
    let router = Site::hardened().router().layer(CompressionLayer::new());
    let site = support::https_router_at("127.0.0.1", "app.test", router).await;
    let run = no_plain_http_run(&site);
    assert_eq!(
        run.statuses(None),
        all_headers(PASS, &[(BREACH, FAIL)]),
        "{}",
        run.stdout
    );
    let r = run.result(BREACH);
    assert_eq!(
        r["evidence"]["secret_cookies"],
        serde_json::json!(["__Host-session"])
    );
    assert_eq!(r["evidence"]["reflects_input"], false);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("carries secrets (cookie __Host-session)"),
        "{r}"
    );
    assert!(!run.json().to_string().contains("lab-session-value"));

    // The same page without a cookie: compressed, but nothing to recover.
    let plain = Site {
        headers: hardened_headers_without_cookie(),
        ..Site::default()
    };
    let router = plain.router().layer(CompressionLayer::new());
    let site = support::https_router_at("127.0.0.1", "app.test", router).await;
    let run = no_plain_http_run(&site);
    let want = all_headers(
        PASS,
        &[
            ("headers.cookie.insecure", SKIP),
            ("headers.cookie.no_httponly", SKIP),
            ("headers.cookie.no_samesite", SKIP),
        ],
    );
    assert_eq!(run.statuses(None), want, "{}", run.stdout);
    let r = run.result(BREACH);
    assert_eq!(
        r["evidence"]["content-encoding"],
        serde_json::json!(["gzip"])
    );
    assert_eq!(r["evidence"]["reflects_input"], false);
    assert!(
        r["evidence"]["note"]
            .as_str()
            .unwrap()
            .contains("BREACH needs both"),
        "{r}"
    );
    assert_eq!(run.code, 0);
}

/// How the hostile server answers the BREACH request (the one with `q=` in the query); every
/// other request gets the hardened site's page (without its cookie).
#[derive(Clone, Copy, Debug)]
enum BreachHostile {
    /// `Content-Encoding: gzip` on bytes that are not gzip.
    Garbage,
    /// A real gzip stream of 16 MiB of zeros (16 KiB on the wire): a bomb past the decode cap.
    Bomb,
    /// The head, then silence.
    Silence,
    /// Part of a gzip body, then the connection breaks.
    Truncated,
}

fn breach_hostile_router(kind: BreachHostile) -> axum::Router {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..16 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = bytes::Bytes::from(e.finish().unwrap());
    let page = Site {
        headers: hardened_headers_without_cookie(),
        ..Site::default()
    }
    .router();
    let handler = move |req: axum::extract::Request| {
        let bomb = bomb.clone();
        let page = page.clone();
        async move {
            use tower::ServiceExt;
            let probe = req.uri().query().is_some_and(|q| q.contains("q="));
            let mut resp = page.oneshot(req).await.unwrap();
            if !probe {
                return resp;
            }
            let body = match kind {
                BreachHostile::Garbage => axum::body::Body::from("\x00\x01not gzip at all\x7f"),
                BreachHostile::Bomb => axum::body::Body::from(bomb),
                BreachHostile::Silence => {
                    axum::body::Body::from_stream(futures::stream::pending::<
                        Result<bytes::Bytes, std::io::Error>,
                    >())
                }
                BreachHostile::Truncated => {
                    let head = bomb.slice(..1024);
                    axum::body::Body::from_stream(futures::stream::iter([
                        Ok(head),
                        Err(std::io::Error::other("cut")),
                    ]))
                }
            };
            resp.headers_mut().insert(
                "content-encoding",
                axum::http::HeaderValue::from_static("gzip"),
            );
            resp.headers_mut().remove("content-length");
            *resp.body_mut() = body;
            resp
        }
    };
    axum::Router::new().fallback(handler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breach_hostile_answers_are_inconclusive_and_bounded() {
    for (kind, reason, words) in [
        (BreachHostile::Garbage, "malformed", "not valid gzip data"),
        (
            BreachHostile::Bomb,
            "too_large",
            "decompresses to more than 4096 KiB",
        ),
        (BreachHostile::Silence, "timeout", "timed out"),
        (BreachHostile::Truncated, "reset", "peer closed connection"),
    ] {
        let site =
            support::https_router_at("127.0.0.1", "app.test", breach_hostile_router(kind)).await;
        let run = no_plain_http_run(&site);
        // The other rules judged the normal page; only BREACH is undecided.
        let want = all_headers(
            PASS,
            &[
                ("headers.cookie.insecure", SKIP),
                ("headers.cookie.no_httponly", SKIP),
                ("headers.cookie.no_samesite", SKIP),
                (BREACH, INCONCLUSIVE),
            ],
        );
        assert_eq!(run.statuses(None), want, "{kind:?}: {}", run.stdout);
        let r = run.result(BREACH);
        assert_eq!(r["reason"]["kind"], reason, "{kind:?}: {r}");
        assert!(
            r["message"].as_str().unwrap().contains(words),
            "{kind:?}: {r}"
        );
        assert_eq!(run.code, 3, "{kind:?}: {}", run.stdout);
    }
}
