//! The behaviour families (`ratelimit`, `auth`) against real servers on loopback: lab apps
//! (axum, governor), JWT apps verifying with the `jsonwebtoken` library, and Debian's nginx
//! (`limit_req`, `auth_basic`). Each rule meets a server where it must fire and one where it
//! must not, and the servers count the requests they receive.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::Duration;

use secgate::lab::apps::{self, Enumeration, Guard, Limit, Login};
use support::{HttpsSite, Run, closed_port, https_router_at, secgate, secgate_env};

const PW_ENV: &str = "SECGATE_TEST_PASSWORD";
const PASSWORD: &str = "correct-horse-battery-staple";
const TOKEN_ENV: &str = "SECGATE_TEST_TOKEN";
const EXPIRED_ENV: &str = "SECGATE_TEST_EXPIRED_TOKEN";

fn statuses(run: &support::Run, family: &str) -> BTreeMap<String, String> {
    run.statuses(None)
        .into_iter()
        .filter(|(k, _)| k.starts_with(family))
        .collect()
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    support::expect(pairs)
}

async fn site(router: axum::Router) -> HttpsSite {
    https_router_at("127.0.0.1", "app.test", router).await
}

fn closed() -> String {
    closed_port("127.0.0.1").to_string()
}

const LOGIN_ENDPOINT: &str = r#"
[[target.endpoint]]
name = "login"
role = "login"
path = "/login"
username = "alice"
password_env = "SECGATE_TEST_PASSWORD"
"#;

// ---------------------------------------------------------------- rate limiting

fn api_endpoint(max: u32, rps: u32) -> String {
    format!(
        "[[target.endpoint]]\nname = \"items\"\nrole = \"api\"\npath = \"/api/items\"\nmax_requests = {max}\nrps = {rps}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_api_fails_and_the_burst_stays_within_its_budget() {
    let (router, hits) = apps::api(Limit::None);
    let s = site(router).await;
    let run = s.scan_config(&api_endpoint(60, 100), &["--checks", "ratelimit"], &[]);
    assert_eq!(
        statuses(&run, "ratelimit"),
        expect(&[
            ("ratelimit.missing", "fail"),
            ("ratelimit.auth_missing", "skipped"),
            ("ratelimit.no_retry_after", "skipped")
        ])
    );
    assert_eq!(hits.get(), 60, "the server must see exactly max_requests");
    let r = run.result("ratelimit.missing");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("no rate limit on items: 60 requests"),
        "{r}"
    );
    assert!(
        r["evidence"]["bursts"][0]
            .as_str()
            .unwrap()
            .contains("200×60"),
        "{r}"
    );
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_bucket_limit_is_found_and_the_burst_stops() {
    let (router, hits) = apps::api(Limit::PerSecond {
        per_sec: 10,
        retry_after: true,
    });
    let s = site(router).await;
    let run = s.scan_config(&api_endpoint(200, 100), &["--checks", "ratelimit"], &[]);
    assert_eq!(
        statuses(&run, "ratelimit"),
        expect(&[
            ("ratelimit.missing", "pass"),
            ("ratelimit.auth_missing", "skipped"),
            ("ratelimit.no_retry_after", "pass")
        ])
    );
    // 10 allowed, then refused: the burst stops there (at most per_host = 8 more in flight).
    let seen = hits.get();
    assert!(
        seen < 40,
        "the burst must stop at the limit; the server saw {seen}"
    );
    let line = run.result("ratelimit.missing")["evidence"]["bursts"][0]
        .as_str()
        .unwrap()
        .to_string();
    let at: u32 = line
        .split("limited at request ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Requests are in flight side by side, so the server may spend its 10 tokens on requests
    // sent after the first refused one: the refusal comes by request 20 at the latest, after
    // 10 to 20 requests were served (the bucket plus its refill during the burst).
    assert!((1..=20).contains(&at), "{line}");
    let served: u32 = line
        .split("200×")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!((10..=20).contains(&served), "{line}");
    let msg = run.result("ratelimit.missing")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("items limited at request") && msg.contains("429"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_retry_after_is_flagged() {
    let (router, _) = apps::api(Limit::PerSecond {
        per_sec: 5,
        retry_after: false,
    });
    let s = site(router).await;
    let run = s.scan_config(&api_endpoint(100, 100), &["--checks", "ratelimit"], &[]);
    let st = statuses(&run, "ratelimit");
    assert_eq!(st["ratelimit.missing"], "pass");
    assert_eq!(st["ratelimit.no_retry_after"], "fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_limits_must_be_enforced() {
    let (router, hits) = apps::api(Limit::Advertised {
        limit: 20,
        enforced: false,
    });
    let s = site(router).await;
    let run = s.scan_config(&api_endpoint(60, 100), &["--checks", "ratelimit"], &[]);
    assert_eq!(statuses(&run, "ratelimit")["ratelimit.missing"], "fail");
    assert!(
        run.result("ratelimit.missing")["evidence"]["bursts"][0]
            .as_str()
            .unwrap()
            .contains("advertised remaining reached 0 at request")
    );
    assert!(
        hits.get() < 60,
        "the burst stops once non-enforcement is clear"
    );

    let (router, _) = apps::api(Limit::Advertised {
        limit: 20,
        enforced: true,
    });
    let s = site(router).await;
    let run = s.scan_config(&api_endpoint(60, 100), &["--checks", "ratelimit"], &[]);
    assert_eq!(statuses(&run, "ratelimit")["ratelimit.missing"], "pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_bursts_use_an_unknown_user_and_never_lock_the_account() {
    let (router, hits, failures) = apps::login(Login::new("alice", PASSWORD));
    let s = site(router).await;
    let cfg = format!("{LOGIN_ENDPOINT}max_requests = 40\nrps = 100\n");
    let run = s.scan_config(&cfg, &["--checks", "ratelimit"], &[(PW_ENV, PASSWORD)]);
    assert_eq!(
        statuses(&run, "ratelimit")["ratelimit.auth_missing"],
        "fail"
    );
    assert_eq!(hits.get(), 40);
    assert_eq!(failures(), 0, "the burst must not touch the test account");

    let mut throttled = Login::new("alice", PASSWORD);
    throttled.throttle_per_sec = Some(5);
    let (router, _, _) = apps::login(throttled);
    let s = site(router).await;
    let run = s.scan_config(&cfg, &["--checks", "ratelimit"], &[(PW_ENV, PASSWORD)]);
    assert_eq!(
        statuses(&run, "ratelimit")["ratelimit.auth_missing"],
        "pass"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rps_caps_the_whole_scan() {
    let (router, _) = apps::api(Limit::None);
    let s = site(router).await;
    let run = s.scan_config(
        &api_endpoint(20, 100),
        &["--checks", "ratelimit", "--max-rps", "10"],
        &[],
    );
    let line = run.result("ratelimit.missing")["evidence"]["bursts"][0]
        .as_str()
        .unwrap()
        .to_string();
    // "items: 20 requests in S s (R/s)": at 10 per second, 20 requests take at least ~1.9 s.
    let secs: f64 = line
        .split(" requests in ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= 1.8, "{line}");
    // 20 requests at 10/s all served prove nothing about a limit between 10/s and 100/s.
    let r = run.result("ratelimit.missing");
    assert_eq!(r["status"], "inconclusive", "{r}");
    assert_eq!(r["reason"]["kind"], "budget", "{r}");
    let detail = r["reason"]["detail"].as_str().unwrap();
    for part in [
        "items: the burst ran at",
        "below the 100/s it needs",
        "--max-rps 10",
        "raise --max-rps to at least 100",
    ] {
        assert!(detail.contains(part), "{part} in {detail}");
    }
    assert_eq!(run.code, 3, "{}", run.stderr);

    // A limit under the cap is still found: the cap slows the burst, it does not hide a 429.
    let (router, _) = apps::api(Limit::PerSecond {
        per_sec: 5,
        retry_after: true,
    });
    let s = site(router).await;
    let run = s.scan_config(
        &api_endpoint(40, 100),
        &["--checks", "ratelimit", "--max-rps", "20"],
        &[],
    );
    assert_eq!(
        run.result("ratelimit.missing")["status"],
        "pass",
        "{}",
        run.stdout
    );
}

// ---------------------------------------------------------------- login: lockout, enumeration

/// Scan a login app over HTTPS with the auth family; return the run and the server's counters.
async fn scan_login(cfg: Login, extra_toml: &str) -> (support::Run, u32, u32) {
    let (router, hits, failures) = apps::login(cfg);
    let s = site(router).await;
    let closed = closed();
    let run = s.scan_config(
        &format!("{LOGIN_ENDPOINT}{extra_toml}"),
        &["--checks", "auth", "--http-port", &closed],
        &[(PW_ENV, PASSWORD)],
    );
    (run, hits.get(), failures())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lockout_is_found_with_an_exact_request_count() {
    let (run, hits, _) = scan_login(Login::new("alice", PASSWORD), "").await;
    assert_eq!(
        statuses(&run, "auth."),
        expect(&[
            ("auth.unprotected", "skipped"),
            ("auth.verb_tampering", "skipped"),
            ("auth.cleartext_credentials", "pass"),
            ("auth.no_lockout", "fail"),
            ("auth.user_enumeration", "pass"),
            ("auth.jwt.alg_none", "skipped"),
            ("auth.jwt.signature_not_verified", "skipped"),
            ("auth.jwt.weak_secret", "skipped"),
            ("auth.jwt.expired_accepted", "skipped"),
        ])
    );
    // 1 real login + 2 x 10 samples + 3 real logins between them (every 3 failures of the
    // test account) + 10 failed logins + 1 real login after.
    assert_eq!(hits, 35);
    let msg = run.result("auth.no_lockout")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("20 failed logins for alice") && msg.contains("still logs in"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visible_lockout_passes() {
    let mut cfg = Login::new("alice", PASSWORD);
    cfg.lockout_after = Some(5);
    let (run, hits, _) = scan_login(cfg, "").await;
    let st = statuses(&run, "auth.");
    assert_eq!(st["auth.no_lockout"], "pass");
    // Real logins between the samples keep the account from locking while sampling, so the
    // enumeration test gets all its samples.
    assert_eq!(
        st["auth.user_enumeration"],
        "pass",
        "{}",
        run.result("auth.user_enumeration")
    );
    assert!(
        run.result("auth.no_lockout")["message"]
            .as_str()
            .unwrap()
            .contains("status 423")
    );
    // 1 + 20 samples + 3 resets; sampling ends with 1 failure on the counter, so 4 more
    // lock the account and the 5th attempt is answered 423; no login after a hard signal.
    assert_eq!(hits, 1 + 20 + 3 + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_lockout_is_found_by_the_real_password() {
    let mut cfg = Login::new("alice", PASSWORD);
    cfg.lockout_after = Some(3);
    cfg.silent_lockout = true;
    let (run, _, _) = scan_login(cfg, "").await;
    assert_eq!(statuses(&run, "auth.")["auth.no_lockout"], "pass");
    assert!(
        run.result("auth.no_lockout")["message"]
            .as_str()
            .unwrap()
            .contains("the account is locked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_enumeration_by_status_body_and_timing() {
    for (kind, needle) in [
        (Enumeration::Status, "status differs"),
        (Enumeration::Body, "response body differs"),
        (Enumeration::Timing, "response time differs"),
    ] {
        let mut cfg = Login::new("alice", PASSWORD);
        cfg.enumeration = kind;
        let (run, _, _) = scan_login(cfg, "").await;
        let r = run.result("auth.user_enumeration");
        assert_eq!(r["status"], "fail", "{kind:?}: {r}");
        assert!(
            r["message"].as_str().unwrap().contains(needle),
            "{kind:?}: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jittery_server_is_not_an_enumeration_finding() {
    // Both answers are delayed by random noise of up to 40 ms, and differ by nothing else.
    for _ in 0..2 {
        let mut cfg = Login::new("alice", PASSWORD);
        cfg.jitter_ms = 40;
        let (run, _, _) = scan_login(cfg, "samples = 15\n").await;
        let r = run.result("auth.user_enumeration");
        assert_eq!(r["status"], "pass", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_make_the_login_tests_inconclusive() {
    let (router, _, _) = apps::login(Login::new("alice", PASSWORD));
    let s = site(router).await;
    let run = s.scan_config(
        LOGIN_ENDPOINT,
        &["--checks", "auth", "--http-port", &closed()],
        &[(PW_ENV, "not-the-password")],
    );
    for id in ["auth.no_lockout", "auth.user_enumeration"] {
        let r = run.result(id);
        assert_eq!(r["status"], "inconclusive", "{r}");
        assert!(
            r["reason"]["detail"]
                .as_str()
                .unwrap()
                .contains("did not log in"),
            "{r}"
        );
    }
}

// ---------------------------------------------------------------- protected routes

async fn scan_guard(guard: Guard) -> (support::Run, u32) {
    let (router, hits) = apps::protected(guard);
    let s = site(router).await;
    let toml = "[[target.endpoint]]\nname = \"admin\"\nrole = \"protected\"\npath = \"/admin\"\n";
    let run = s.scan_config(toml, &["--checks", "auth", "--http-port", &closed()], &[]);
    (run, hits.get())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_routes() {
    let (run, hits) = scan_guard(Guard::Proper).await;
    let st = statuses(&run, "auth.");
    assert_eq!(
        (
            st["auth.unprotected"].as_str(),
            st["auth.verb_tampering"].as_str()
        ),
        ("pass", "pass")
    );
    assert_eq!(hits, 6, "1 anonymous GET + 5 verb probes");

    let (run, hits) = scan_guard(Guard::None).await;
    let st = statuses(&run, "auth.");
    assert_eq!(
        (
            st["auth.unprotected"].as_str(),
            st["auth.verb_tampering"].as_str()
        ),
        ("fail", "skipped")
    );
    assert_eq!(hits, 1);
    assert_eq!(run.result("auth.unprotected")["severity"], "critical");

    let (run, _) = scan_guard(Guard::GetOnly).await;
    let r = run.result("auth.verb_tampering");
    assert_eq!(r["status"], "fail");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.contains("HEAD (200)") && msg.contains("SECGATE") && msg.contains("POST (200)"),
        "{msg}"
    );

    let (run, _) = scan_guard(Guard::OverrideBypass).await;
    let r = run.result("auth.verb_tampering");
    assert_eq!(r["status"], "fail");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("X-HTTP-Method-Override"),
        "{r}"
    );
}

// ---------------------------------------------------------------- cleartext

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_over_plain_http() {
    let (router, _, _) = apps::login(Login::new("alice", PASSWORD));
    let s = site(router).await;
    // The same app also listens on plain HTTP: the login form is served there.
    let (plain_router, _, _) = apps::login(Login::new("alice", PASSWORD));
    let plain = secgate::lab::serve(
        secgate::lab::bind("127.0.0.1:0").await.unwrap(),
        plain_router,
        None,
    );
    let port = plain.addr.port().to_string();
    let run = s.scan_config(
        LOGIN_ENDPOINT,
        &["--checks", "auth", "--http-port", &port],
        &[(PW_ENV, PASSWORD)],
    );
    let r = run.result("auth.cleartext_credentials");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("login route http://app.test"),
        "{r}"
    );

    // A plain-HTTP side that redirects to HTTPS is fine.
    let redirect = secgate::lab::serve(
        secgate::lab::bind("127.0.0.1:0").await.unwrap(),
        secgate::lab::Site::redirect_to(&format!("https://app.test:{}", s.port())).router(),
        None,
    );
    let port = redirect.addr.port().to_string();
    let run = s.scan_config(
        LOGIN_ENDPOINT,
        &["--checks", "auth", "--http-port", &port],
        &[(PW_ENV, PASSWORD)],
    );
    assert_eq!(run.result("auth.cleartext_credentials")["status"], "pass");
}

// ---------------------------------------------------------------- nginx

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's nginx on 127.0.0.1: `/api/` under `limit_req` (5 r/s, burst 5, status 429) and
/// `/private/` under `auth_basic`, over plain HTTP.
fn nginx() -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for d in ["www/api", "www/private", "www/plain503", "tmp"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(p.join("www/api/items"), "[]\n").unwrap();
    std::fs::write(p.join("www/plain503/items"), "[]\n").unwrap();
    std::fs::write(p.join("www/private/index.html"), "secret\n").unwrap();
    std::fs::write(p.join("htpasswd"), "alice:{PLAIN}wonderland\n").unwrap();
    let port = closed_port("127.0.0.1");
    let prefix = p.display();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {prefix}/nginx.pid; error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/tmp/body; proxy_temp_path {prefix}/tmp/proxy; fastcgi_temp_path {prefix}/tmp/fcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi; scgi_temp_path {prefix}/tmp/scgi;
  limit_req_zone $binary_remote_addr zone=api:1m rate=5r/s;
  limit_req_zone $binary_remote_addr zone=api2:1m rate=5r/s;
  server {{
    listen 127.0.0.1:{port};
    root {prefix}/www;
    location /api/ {{ limit_req zone=api burst=5 nodelay; limit_req_status 429; }}
    location /plain503/ {{ limit_req zone=api2 burst=5 nodelay; }}
    location /private/ {{ auth_basic \"secgate test\"; auth_basic_user_file {prefix}/htpasswd; }}
  }}
}}
"
    );
    std::fs::write(p.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .args([
            "-p",
            &prefix.to_string(),
            "-c",
            &format!("{prefix}/nginx.conf"),
        ])
        .spawn()
        .expect("nginx must be installed (apt-get install nginx-light); .ci/run installs it");
    let nginx = Nginx {
        child,
        port,
        _dir: dir,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    nginx
}

#[test]
fn nginx_limit_req_and_basic_auth_over_plain_http() {
    let ngx = nginx();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[target]]\nurl = \"http://127.0.0.1:{}/\"\n{}\n[[target.endpoint]]\nname = \"private\"\nrole = \"protected\"\npath = \"/private/\"\n",
            ngx.port,
            api_endpoint(100, 100)
        ),
    )
    .unwrap();
    let run = secgate(&[
        "scan",
        "--config",
        cfg.to_str().unwrap(),
        "--checks",
        "auth,ratelimit",
        "--timeout",
        "2",
    ]);
    let st = run.statuses(None);
    assert_eq!(
        st["ratelimit.missing"],
        "pass",
        "{}",
        run.result("ratelimit.missing")
    );
    // nginx's limit_req sends no Retry-After.
    assert_eq!(st["ratelimit.no_retry_after"], "fail");
    assert_eq!(st["auth.unprotected"], "pass");
    assert_eq!(
        st["auth.verb_tampering"],
        "pass",
        "{}",
        run.result("auth.verb_tampering")
    );
    let r = run.result("auth.cleartext_credentials");
    assert_eq!(r["status"], "fail");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("WWW-Authenticate: Basic"),
        "{r}"
    );
    assert_eq!(r["severity"], "critical");

    // nginx's default limit_req status is 503 (no Retry-After): still a limit, not "served".
    let cfg503 = dir.path().join("plain503.toml");
    std::fs::write(
        &cfg503,
        format!(
            "[[target]]\nurl = \"http://127.0.0.1:{}/\"\n[[target.endpoint]]\nname = \"items\"\nrole = \"api\"\npath = \"/plain503/items\"\nmax_requests = 100\nrps = 100\n",
            ngx.port
        ),
    )
    .unwrap();
    let run = secgate(&[
        "scan",
        "--config",
        cfg503.to_str().unwrap(),
        "--checks",
        "ratelimit",
        "--timeout",
        "2",
    ]);
    let r = run.result("ratelimit.missing");
    assert_eq!(r["status"], "pass", "{r}");
    assert!(r["message"].as_str().unwrap().contains("503"), "{r}");
}

// ---------------------------------------------------------------- JWT

mod jwt_app {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::Response;
    use axum::routing::get;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
    use serde_json::{Value, json};

    /// How the app checks tokens.
    #[derive(Clone, Copy, Debug)]
    pub enum Mode {
        /// Verifies signature and expiry with a strong secret.
        Secure,
        /// Accepts `alg: none` (a vulnerable hand-rolled check), verifies everything else.
        AcceptsNone,
        /// Decodes without verifying the signature.
        NoVerify,
        /// Verifies with the weak secret "your-256-bit-secret", expiry included.
        WeakSecret,
        /// Verifies with the weak secret but does not check expiry.
        WeakNoExpiry,
    }

    pub const STRONG: &str = "0f4c9e2b7a1d8e6f3b5a9c7d1e2f4a6b8c0d2e4f6a8b0c2d";
    pub const WEAK: &str = "your-256-bit-secret";

    pub fn secret(mode: Mode) -> &'static str {
        match mode {
            Mode::WeakSecret | Mode::WeakNoExpiry => WEAK,
            _ => STRONG,
        }
    }

    pub fn mint(mode: Mode, exp_offset: i64) -> String {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let claims = json!({"sub": "alice", "role": "user", "exp": now + exp_offset, "iat": now});
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret(mode).as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn check(mode: Mode, token: &str) -> bool {
        let key = DecodingKey::from_secret(secret(mode).as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        match mode {
            Mode::AcceptsNone => {
                let alg = token
                    .split('.')
                    .next()
                    .and_then(|h| {
                        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h)
                            .ok()
                    })
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .and_then(|v| v["alg"].as_str().map(str::to_lowercase));
                if alg.as_deref() == Some("none") {
                    return true;
                }
            }
            Mode::NoVerify => {
                return jsonwebtoken::dangerous::insecure_decode::<Value>(token).is_ok();
            }
            Mode::WeakNoExpiry => validation.validate_exp = false,
            Mode::Secure | Mode::WeakSecret => {}
        }
        jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
    }

    pub fn router(mode: Mode) -> Router {
        Router::new().route(
            "/api/me",
            get(move |req: Request| async move {
                let token = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("");
                let (status, body) = if !token.is_empty() && check(mode, token) {
                    (200, "{\"sub\":\"alice\"}")
                } else {
                    (401, "unauthorised")
                };
                Response::builder()
                    .status(status)
                    .body(Body::from(body))
                    .unwrap()
            }),
        )
    }
}

const JWT_ENDPOINT: &str = "[[target.endpoint]]\nname = \"me\"\nrole = \"jwt\"\npath = \"/api/me\"\ntoken_env = \"SECGATE_TEST_TOKEN\"\n";

async fn scan_jwt(mode: jwt_app::Mode, expired_env: bool) -> support::Run {
    let s = site(jwt_app::router(mode)).await;
    let token = jwt_app::mint(mode, 3600);
    let expired = jwt_app::mint(mode, -3600);
    let mut toml = JWT_ENDPOINT.to_string();
    let mut env = vec![(TOKEN_ENV, token.as_str())];
    if expired_env {
        toml.push_str("expired_token_env = \"SECGATE_TEST_EXPIRED_TOKEN\"\n");
        env.push((EXPIRED_ENV, expired.as_str()));
    }
    let run = s.scan_config(&toml, &["--checks", "auth", "--http-port", &closed()], &env);
    // Tokens are credentials: never in a report.
    let json = run.json().to_string();
    assert!(
        !json.contains(&token) && !run.stdout.contains(&token),
        "the token leaked"
    );
    assert!(!json.contains(jwt_app::WEAK), "the cracked secret leaked");
    run
}

fn jwt_statuses(run: &support::Run) -> [String; 4] {
    [
        "auth.jwt.alg_none",
        "auth.jwt.signature_not_verified",
        "auth.jwt.weak_secret",
        "auth.jwt.expired_accepted",
    ]
    .map(|id| run.result(id)["status"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_secure_app_passes() {
    use jwt_app::Mode;
    let run = scan_jwt(Mode::Secure, true).await;
    assert_eq!(jwt_statuses(&run), ["pass", "pass", "pass", "pass"]);
    assert_eq!(run.result("auth.unprotected")["status"], "pass");
    // Without an expired token and without the secret, expiry cannot be tested.
    let run = scan_jwt(Mode::Secure, false).await;
    assert_eq!(jwt_statuses(&run), ["pass", "pass", "pass", "skipped"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_vulnerable_apps_fail() {
    use jwt_app::Mode;
    assert_eq!(
        jwt_statuses(&scan_jwt(Mode::AcceptsNone, true).await),
        ["fail", "pass", "pass", "pass"]
    );
    assert_eq!(
        jwt_statuses(&scan_jwt(Mode::NoVerify, true).await),
        ["pass", "fail", "pass", "fail"]
    );
    let run = scan_jwt(Mode::WeakSecret, false).await;
    assert_eq!(jwt_statuses(&run), ["pass", "pass", "fail", "pass"]);
    let msg = run.result("auth.jwt.weak_secret")["message"]
        .as_str()
        .unwrap()
        .to_string();
    // Neither the secret nor its line in the public wordlist: both would identify it.
    assert!(
        msg.contains("wordlist of weak secrets") && !msg.contains("line"),
        "{msg}"
    );
    // The cracked secret forges an expired token, which this app still accepts.
    assert_eq!(
        jwt_statuses(&scan_jwt(Mode::WeakNoExpiry, false).await),
        ["pass", "pass", "fail", "fail"]
    );
}

// ---------------------------------------------------------------- config and secrets

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secrets_and_ceilings_are_usage_errors() {
    let (router, _, _) = apps::login(Login::new("alice", PASSWORD));
    let s = site(router).await;
    let run = s.scan_config(LOGIN_ENDPOINT, &[], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("secgate.toml:")
            && run.stderr.contains(":16: target[0].endpoint[0](login).password_env: environment variable SECGATE_TEST_PASSWORD is not set"),
        "{}",
        run.stderr
    );
    let run = s.scan_config(
        &format!("{LOGIN_ENDPOINT}attempts = 500\n"),
        &[],
        &[(PW_ENV, PASSWORD)],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("attempts: must be between 1 and 50, got 500 (hard ceiling)"),
        "{}",
        run.stderr
    );
    let run = s.scan_config(
        &format!("{LOGIN_ENDPOINT}samples = 5\n"),
        &[],
        &[(PW_ENV, PASSWORD)],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(
            "samples: must be between 7 and 30, got 5 (the timing test needs 7 per class)"
        ),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_reports() {
    // A server that echoes the API key it receives into its rate-limit policy header, which
    // secgate records as evidence: the key must be scrubbed before anything reads the answer.
    const KEY: &str = "sk-live-0123456789abcdef";
    let left = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(1000));
    let router = axum::Router::new().route(
        "/api/items",
        axum::routing::get(move |req: axum::extract::Request| {
            let left = left.clone();
            async move {
                let key = req
                    .headers()
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let remaining = left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) - 1;
                axum::http::Response::builder()
                    .header("x-ratelimit-limit", "1000")
                    .header("x-ratelimit-remaining", remaining.to_string())
                    .header("x-ratelimit-policy", format!("1000;w=60;key={key}"))
                    .body(axum::body::Body::from("[]"))
                    .unwrap()
            }
        }),
    );
    let s = site(router).await;
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("r.sarif");
    let toml = format!(
        "{}header_env = {{ \"X-Api-Key\" = \"SECGATE_TEST_API_KEY\" }}\n",
        api_endpoint(5, 100)
    );
    let run = s.scan_config(
        &toml,
        &[
            "--checks",
            "ratelimit",
            "--sarif",
            sarif.to_str().unwrap(),
            "--verbose",
        ],
        &[("SECGATE_TEST_API_KEY", KEY)],
    );
    let r = run.result("ratelimit.missing");
    assert_eq!(r["status"], "pass", "an advertised limit: {r}");
    let evidence = r["evidence"].to_string();
    assert!(evidence.contains("key=[REDACTED]"), "{evidence}");
    let sarif = std::fs::read_to_string(&sarif).unwrap();
    for text in [
        run.json().to_string(),
        run.stdout.clone(),
        run.stderr.clone(),
        sarif,
    ] {
        assert!(!text.contains(KEY), "the API key leaked");
    }
}

#[test]
fn unused_env_helper_keeps_compiling() {
    // secgate_env is used above through HttpsSite::scan_config; this keeps the import honest.
    let run = secgate_env(&["rules", "--family", "auth"], &[("SECGATE_UNUSED", "1")]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("auth.jwt.alg_none"));
}

// ---------------------------------------------------------------- review cases

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_the_same_path_with_a_slash_is_followed() {
    // `/open` redirects to `/open/`, which serves the page to anyone; `/admin` redirects to
    // the login page.
    let router = axum::Router::new()
        .route(
            "/open",
            axum::routing::get(|| async {
                axum::http::Response::builder()
                    .status(301)
                    .header("location", "/open/")
                    .body(axum::body::Body::empty())
                    .unwrap()
            }),
        )
        .route("/open/", axum::routing::get(|| async { "the secret page" }))
        .route(
            "/admin",
            axum::routing::get(|| async {
                axum::http::Response::builder()
                    .status(302)
                    .header("location", "/login?next=/admin")
                    .body(axum::body::Body::empty())
                    .unwrap()
            }),
        )
        .route(
            "/gone",
            axum::routing::get(|| async {
                axum::http::Response::builder()
                    .status(404)
                    .body(axum::body::Body::empty())
                    .unwrap()
            }),
        );
    let s = site(router).await;
    let toml = |path: &str| {
        format!("[[target.endpoint]]\nname = \"r\"\nrole = \"protected\"\npath = \"{path}\"\n")
    };
    let closed = closed();
    let run = s.scan_config(
        &toml("/open"),
        &["--checks", "auth", "--http-port", &closed],
        &[],
    );
    assert_eq!(
        run.result("auth.unprotected")["status"],
        "fail",
        "{}",
        run.result("auth.unprotected")
    );
    let run = s.scan_config(
        &toml("/admin"),
        &["--checks", "auth", "--http-port", &closed],
        &[],
    );
    assert_eq!(run.result("auth.unprotected")["status"], "pass");
    // A 404 says nothing about access control.
    let run = s.scan_config(
        &toml("/gone"),
        &["--checks", "auth", "--http-port", &closed],
        &[],
    );
    assert_eq!(run.result("auth.unprotected")["status"], "inconclusive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_words_on_every_page_are_not_a_lockout() {
    let mut cfg = Login::new("alice", PASSWORD);
    cfg.failure_message = "Invalid username or password. <a href=/help>Account locked?</a> <script src=captcha.js></script>".into();
    let (run, _, _) = scan_login(cfg, "").await;
    let r = run.result("auth.no_lockout");
    assert_eq!(r["status"], "fail", "{r}");
    assert_eq!(run.result("auth.user_enumeration")["status"], "pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_in_answers_are_not_an_enumeration_finding() {
    let mut cfg = Login::new("alice", PASSWORD);
    cfg.request_id = true;
    let (run, _, _) = scan_login(cfg, "").await;
    let r = run.result("auth.user_enumeration");
    assert_eq!(r["status"], "pass", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_is_tested_from_seven_samples() {
    let mut cfg = Login::new("alice", PASSWORD);
    cfg.enumeration = Enumeration::Timing;
    let (run, _, _) = scan_login(cfg, "samples = 7\n").await;
    let r = run.result("auth.user_enumeration");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("response time differs"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_rate_limit_headers_are_not_a_limit() {
    let h = apps::Hits::default();
    let router = axum::Router::new().route(
        "/api/items",
        axum::routing::get(|| async {
            axum::http::Response::builder()
                .header("x-ratelimit-limit", "10")
                .header("x-ratelimit-remaining", "10")
                .body(axum::body::Body::from("[]"))
                .unwrap()
        }),
    );
    drop(h);
    let s = site(router).await;
    let run = s.scan_config(&api_endpoint(60, 100), &["--checks", "ratelimit"], &[]);
    assert_eq!(
        run.result("ratelimit.missing")["status"],
        "fail",
        "{}",
        run.result("ratelimit.missing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dropped_connection_is_not_a_limit() {
    // A plain HTTP/1.1 server that answers every connection but drops the 10th unanswered.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut n = 0u32;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            n += 1;
            let drop_it = n == 10;
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                // Read the request; answer it unless this is the connection to drop.
                if matches!(stream.read(&mut buf).await, Ok(n) if n > 0) && !drop_it {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]",
                        )
                        .await;
                }
            });
        }
    });
    let run = ratelimit_scan_of_plain_http(port, 40);
    server.abort();
    let r = run.result("ratelimit.missing");
    assert_eq!(
        r["status"], "fail",
        "one dropped connection is noise, not a limit: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_session_cookie_is_judged_by_the_headers_family() {
    let mut cfg = Login::new("alice", PASSWORD);
    cfg.insecure_cookie = true;
    let (router, _, _) = apps::login(cfg);
    let s = site(router.merge(secgate::lab::Site::hardened().router())).await;
    // The hardened site's own cookie is fine; the one the login sets is not.
    let run = s.scan_config(
        LOGIN_ENDPOINT,
        &["--checks", "headers", "--http-port", &closed()],
        &[(PW_ENV, PASSWORD)],
    );
    let r = run.result("headers.cookie.insecure");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(r["message"].as_str().unwrap().contains("session"), "{r}");
    assert!(
        !run.json().to_string().contains("lab-login-session"),
        "cookie values never reach reports"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_route_is_also_tried_with_get() {
    // The route guards POST (its configured method) but serves GET to anyone.
    let router = axum::Router::new().route(
        "/export",
        axum::routing::post(|| async {
            axum::http::Response::builder()
                .status(401)
                .body(axum::body::Body::empty())
                .unwrap()
        })
        .get(|| async { "all the data" }),
    );
    let s = site(router).await;
    let toml = "[[target.endpoint]]\nname = \"export\"\nrole = \"protected\"\nmethod = \"POST\"\npath = \"/export\"\n";
    let run = s.scan_config(toml, &["--checks", "auth", "--http-port", &closed()], &[]);
    let r = run.result("auth.verb_tampering");
    assert_eq!(r["status"], "fail", "{r}");
    assert!(r["message"].as_str().unwrap().contains("GET (200)"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_secret_is_found_even_when_the_route_refuses_the_token() {
    use jwt_app::Mode;
    // The route verifies with the strong secret; the configured token was signed with a weak one.
    let s = site(jwt_app::router(Mode::Secure)).await;
    let token = jwt_app::mint(Mode::WeakSecret, 3600);
    let run = s.scan_config(
        JWT_ENDPOINT,
        &["--checks", "auth", "--http-port", &closed()],
        &[(TOKEN_ENV, &token)],
    );
    assert_eq!(run.result("auth.jwt.weak_secret")["status"], "fail");
    assert_eq!(run.result("auth.jwt.alg_none")["status"], "inconclusive");
}

#[test]
fn unsafe_endpoint_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "path = \"//evil.test/x\"",
            "path: must be a path on the target's own origin",
        ),
        (
            "path = \"/x\"\nmethod = \"DELETE\"",
            "method: DELETE is not allowed",
        ),
        (
            "path = \"/x\"\nbody = '{\"user\": \"bob\", \"pw\": \"{{password}}\"}'",
            "must contain {{username}} and {{password}} exactly once",
        ),
        (
            "path = \"/x\"\ntoken_env = \"T\"",
            "`token_env/token_file` does not apply to a login endpoint",
        ),
        (
            "path = \"/x\"\nsuccess_status = [401]\nfailure_status = [401]",
            "status 401 is in both success_status and failure_status",
        ),
    ];
    for (extra, needle) in cases {
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            format!("[[target]]\nurl = \"https://a.test/\"\n[[target.endpoint]]\nname = \"login\"\nrole = \"login\"\nusername = \"alice\"\npassword_env = \"P\"\n{extra}\n"),
        )
        .unwrap();
        let run = secgate(&["validate", cfg.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{extra}");
        assert!(run.stderr.contains(needle), "{extra}: {}", run.stderr);
    }
    // The same route twice, and bursts over the per-target ceiling.
    let cfg = dir.path().join("dup.toml");
    std::fs::write(
        &cfg,
        "[[target]]\nurl = \"https://a.test/\"\n[[target.endpoint]]\nname = \"a\"\nrole = \"api\"\npath = \"/x\"\n[[target.endpoint]]\nname = \"b\"\nrole = \"api\"\npath = \"/x\"\n",
    )
    .unwrap();
    assert!(
        secgate(&["validate", cfg.to_str().unwrap()])
            .stderr
            .contains("the same route (GET /x) is already configured")
    );
    let many: String = (0..3)
        .map(|i| format!("[[target.endpoint]]\nname = \"e{i}\"\nrole = \"api\"\npath = \"/x{i}\"\nmax_requests = 500\n"))
        .collect();
    std::fs::write(
        &cfg,
        format!("[[target]]\nurl = \"https://a.test/\"\n{many}"),
    )
    .unwrap();
    assert!(
        secgate(&["validate", cfg.to_str().unwrap()])
            .stderr
            .contains("add up to 1500 requests, over the hard ceiling of 1000")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_refused_mid_burst_are_a_limit() {
    // A server that answers 15 connections, then closes its listening socket (a firewall or
    // fail2ban-style block): every later connect is refused.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        for _ in 0..15 {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                if matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]",
                        )
                        .await;
                }
            });
        }
        drop(listener);
    });
    let run = ratelimit_scan_of_plain_http(port, 60);
    server.abort();
    let r = run.result("ratelimit.missing");
    assert_eq!(r["status"], "pass", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("connections refused mid-burst"),
        "{r}"
    );
}

/// The ratelimit family alone against `http://127.0.0.1:PORT/` with an API endpoint of
/// `max` requests at 100/s.
fn ratelimit_scan_of_plain_http(port: u16, max: u32) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[target]]\nurl = \"http://127.0.0.1:{port}/\"\n{}",
            api_endpoint(max, 100)
        ),
    )
    .unwrap();
    secgate(&[
        "scan",
        "--config",
        cfg.to_str().unwrap(),
        "--checks",
        "ratelimit",
        "--timeout",
        "2",
    ])
}
