//! The engine and the fetch logic against servers built to stress them: the per-host limit seen
//! from the server, a redirect chain that breaks half-way, an HTTPS-to-HTTP downgrade, and a
//! CORS probe that never gets an answer.

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
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::Response;
use secgate::lab::{self, Site};
use support::{all_headers, closed_port, https_router_at, secgate};

fn reply(status: u16, headers: &[(&str, &str)]) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from("ok")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_host_limit_holds_at_the_server() {
    // Every request takes 150 ms; the server records how many it served at once.
    let active = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let (a, p) = (active.clone(), peak.clone());
    let router = Router::new().fallback(move || {
        let (a, p) = (a.clone(), p.clone());
        async move {
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(150)).await;
            a.fetch_sub(1, Ordering::SeqCst);
            reply(200, &[])
        }
    });
    let server = lab::serve(lab::bind("127.0.0.1:0").await.unwrap(), router, None);
    let port = server.addr.port();
    let urls: Vec<String> = (0..10)
        .map(|i| format!("http://127.0.0.1:{port}/p{i}"))
        .collect();
    let mut args: Vec<&str> = vec![
        "scan",
        "--checks",
        "headers",
        "--per-host",
        "2",
        "--concurrency",
        "16",
    ];
    args.extend(urls.iter().map(String::as_str));
    let run = secgate(&args);
    assert_eq!(run.json()["targets"].as_array().unwrap().len(), 10);
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "at most --per-host requests at once, and it was used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_that_breaks_half_way_never_passes() {
    // `/` sets an insecure session cookie and redirects to `/next`, which never answers.
    let router = Router::new()
        .route(
            "/",
            axum::routing::get(|| async {
                reply(
                    302,
                    &[("location", "/next"), ("set-cookie", "sid=1; Path=/")],
                )
            }),
        )
        .route(
            "/next",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                reply(200, &[])
            }),
        );
    let server = lab::serve(lab::bind("127.0.0.1:0").await.unwrap(), router, None);
    let url = format!("http://127.0.0.1:{}/", server.addr.port());
    let run = secgate(&["scan", &url, "--timeout", "1"]);
    let s = run.statuses(None);
    // What was seen can fail; what was not seen cannot pass.
    assert_eq!(s["headers.cookie.insecure"], "fail");
    assert_eq!(s["headers.cookie.no_httponly"], "fail");
    for id in [
        "headers.version_disclosure",
        "headers.csp.missing",
        "headers.xcto.missing",
        "headers.cors.reflect_credentials",
    ] {
        assert_eq!(s[id], "inconclusive", "{id}");
    }
    assert_eq!(
        run.result("headers.csp.missing")["reason"]["kind"],
        "timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_to_http_downgrade_fails_the_redirect_rule() {
    let plain = lab::serve(
        lab::bind("127.0.0.1:0").await.unwrap(),
        Site::hardened().router(),
        None,
    );
    let mut site = Site::hardened();
    site.redirect_root = Some(format!("http://app.test:{}/home", plain.addr.port()));
    let s = https_router_at("127.0.0.1", "app.test", site.router()).await;
    let run = s.scan(&["--http-port", &closed_port("127.0.0.1").to_string()]);
    let r = run.result("http.no_https_redirect");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("redirects from HTTPS to plain HTTP"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_cors_probe_is_inconclusive() {
    // Requests carrying an Origin header hang; the others are answered like a hardened site.
    let hardened = Site::hardened().router();
    let router = Router::new().fallback(move |req: Request| {
        let hardened = hardened.clone();
        async move {
            if req.headers().contains_key("origin") {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            tower::ServiceExt::oneshot(hardened, req).await.unwrap()
        }
    });
    let s = https_router_at("127.0.0.1", "app.test", router).await;
    let run = s.scan(&[
        "--checks",
        "headers",
        "--http-port",
        &closed_port("127.0.0.1").to_string(),
    ]);
    let want = all_headers(
        "pass",
        &[
            ("headers.cors.reflect_credentials", "inconclusive"),
            ("headers.cors.wildcard_credentials", "inconclusive"),
        ],
    );
    assert_eq!(run.statuses(None), want);
    assert_eq!(
        run.code, 3,
        "nothing failed; only the CORS probe is undecided"
    );
}
