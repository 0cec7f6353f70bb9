//! A lab of real servers on loopback: well-configured and misconfigured web sites over HTTP
//! and HTTPS, and hostile servers that misbehave at the socket level.
//!
//! `secgate demo` scans a lab; the integration tests and benchmarks build theirs from the same
//! parts. Every server binds a loopback address only and stops when its [`LabServer`] is
//! dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub mod ocsp;
pub mod robot;
pub mod tls;
pub mod vulns;

/// A running server; dropping it stops the server and its connections.
#[derive(Debug)]
pub struct LabServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for LabServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bind a loopback address (`127.x.y.z:port` or `[::1]:port`; port 0 picks a free one).
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    let sock: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    if !sock.ip().is_loopback() {
        return Err(format!("{addr}: the lab binds loopback addresses only"));
    }
    TcpListener::bind(sock)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))
}

/// A private CA that issues lab certificates.
pub struct Pki {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pki")
    }
}

impl Pki {
    /// A new CA ("secgate lab CA").
    pub fn new() -> Result<Pki, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "secgate lab CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        Ok(Pki {
            ca_der: cert.der().clone(),
            ca_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA certificate (a trust anchor for `--ca-file`).
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The CA certificate in PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A leaf certificate for `names` (DNS names or IP literals), signed by this CA.
    pub fn leaf(
        &self,
        names: &[&str],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "secgate lab server");
        // A year, as a real server's certificate (rcgen's default runs to 4096, which fails
        // tls.cert.lifetime).
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        // Half a day past a whole year, so the `days_left` a scan reports stays 365 for
        // hours, not until the next second (tests compare the reports of scans run apart).
        params.not_after = now + time::Duration::days(365) + time::Duration::hours(12);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert.der().clone(), self.ca_der.clone()], key_der))
    }

    /// A rustls server configuration for `names`, stapling a fresh `good` OCSP response
    /// signed by this CA (as a well-run server does).
    pub fn server_config(&self, names: &[&str]) -> Result<Arc<rustls::ServerConfig>, String> {
        let (chain, key) = self.leaf(names)?;
        let leaf = chain.first().ok_or("no leaf")?;
        let staple = ocsp::response_by(
            &self.ca_der,
            self.issuer.key(),
            leaf,
            &ocsp::ResponseSpec::new(ocsp::LabStatus::Good),
            None,
        )?;
        ocsp::rustls_config_stapled(chain, key, staple)
    }
}

/// How a lab site answers CORS requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers.
    #[default]
    None,
    /// Echo any Origin back.
    Reflect {
        /// Also send `Access-Control-Allow-Credentials: true`.
        credentials: bool,
    },
    /// `Access-Control-Allow-Origin: *`.
    Wildcard {
        /// Also send `Access-Control-Allow-Credentials: true`.
        credentials: bool,
    },
}

/// What a lab web site sends.
#[derive(Clone, Debug, Default)]
pub struct Site {
    /// Headers on every response (repeat a name to send it twice).
    pub headers: Vec<(String, String)>,
    /// CORS behaviour.
    pub cors: Cors,
    /// Redirect every request to this base URL plus the request path (e.g. HTTP → HTTPS).
    pub redirect_all: Option<String>,
    /// Redirect `/` only to this location (relative or absolute).
    pub redirect_root: Option<String>,
    /// Status of content responses (default 200).
    pub status: Option<u16>,
}

impl Site {
    /// A site with these headers.
    pub fn with_headers(headers: &[(&str, &str)]) -> Site {
        Site {
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            ..Site::default()
        }
    }

    /// A site that does everything the headers family checks for.
    pub fn hardened() -> Site {
        Site::with_headers(&[
            (
                "strict-transport-security",
                "max-age=63072000; includeSubDomains; preload",
            ),
            (
                "content-security-policy",
                "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
            ),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
            (
                "set-cookie",
                "__Host-session=lab-session-value; Path=/; Secure; HttpOnly; SameSite=Lax",
            ),
            ("server", "lab"),
        ])
    }

    /// A site with the classic mistakes: no HSTS, weak CSP, obsolete framing header, an
    /// insecure session cookie, a reflecting CORS policy and version banners.
    pub fn legacy() -> Site {
        let mut site = Site::with_headers(&[
            (
                "content-security-policy",
                "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
            ),
            ("x-frame-options", "ALLOW-FROM https://partner.example"),
            ("set-cookie", "sessionid=lab-session-value; Path=/"),
            ("set-cookie", "theme=dark; Path=/"),
            ("server", "nginx/1.18.0"),
            ("x-powered-by", "PHP/7.4.3"),
        ]);
        site.cors = Cors::Reflect { credentials: true };
        site
    }

    /// A plain-HTTP site that redirects everything to `https_base` (e.g. `https://a.test:8443`).
    pub fn redirect_to(https_base: &str) -> Site {
        Site {
            redirect_all: Some(https_base.trim_end_matches('/').to_string()),
            ..Site::default()
        }
    }

    /// The axum router for this site.
    pub fn router(self) -> Router {
        Router::new().fallback(answer).with_state(Arc::new(self))
    }
}

async fn answer(State(site): State<Arc<Site>>, req: Request) -> Response<Body> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut builder = Response::builder();
    let status;
    if let Some(base) = &site.redirect_all {
        status = StatusCode::MOVED_PERMANENTLY;
        builder = builder.header("location", format!("{base}{path}"));
    } else if let (Some(to), "/") = (&site.redirect_root, req.uri().path()) {
        status = StatusCode::FOUND;
        builder = builder.header("location", to.as_str());
    } else {
        status = StatusCode::from_u16(site.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
    }
    for (k, v) in &site.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            builder = builder.header(k, v);
        }
    }
    let origin = req.headers().get("origin").cloned();
    match (&site.cors, origin) {
        (Cors::Reflect { credentials }, Some(origin)) => {
            builder = builder.header("access-control-allow-origin", origin);
            if *credentials {
                builder = builder.header("access-control-allow-credentials", "true");
            }
        }
        (Cors::Wildcard { credentials }, _) => {
            builder = builder.header("access-control-allow-origin", "*");
            if *credentials {
                builder = builder.header("access-control-allow-credentials", "true");
            }
        }
        _ => {}
    }
    builder
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .body(Body::from(
            "<!doctype html><title>secgate lab</title><p>lab</p>\n",
        ))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Serve `router` on `listener`, over TLS when `tls` is given (HTTP/1.1).
pub fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> LabServer {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let router = router.clone();
            let acceptor = acceptor.clone();
            conns.spawn(async move {
                let service = hyper_util::service::TowerToHyperService::new(router);
                let http = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acceptor) => {
                        let Ok(Ok(tls)) =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                                .await
                        else {
                            return;
                        };
                        let _ = http
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                            .await;
                    }
                    None => {
                        let _ = http
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
            // Reap finished connections so the set does not grow without bound.
            while conns.try_join_next().is_some() {}
        }
    });
    LabServer { addr, task }
}

/// Servers that misbehave at the socket level, for hostile-input tests and the demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// Accepts and never sends a byte.
    Tarpit,
    /// Starts an HTTP response and then sends one byte every 200 ms, forever.
    Slowloris,
    /// Answers anything with 4 KiB of pseudo-random bytes, then closes.
    Garbage,
    /// Accepts, reads the request, and resets the connection (RST).
    Reset,
    /// Sends a status line followed by 1 MiB of header data.
    HugeHeaders,
    /// Sends a status line followed by 500 small headers.
    ManyHeaders,
}

/// Serve a hostile behaviour on `listener` (at most 64 connections held at once).
pub fn serve_hostile(listener: TcpListener, kind: Hostile) -> LabServer {
    accept_loop(listener, None, move |stream| misbehave(stream, kind))
}

/// Accept connections on `listener` and run `handler` on each: at most 64 at once (a
/// connection over the cap is dropped, which closes it), each for at most `limit` when given.
pub(crate) fn accept_loop<F, Fut>(
    listener: TcpListener,
    limit: Option<Duration>,
    handler: F,
) -> LabServer
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            while conns.try_join_next().is_some() {}
            if conns.len() >= 64 {
                continue;
            }
            let conn = handler(stream);
            conns.spawn(async move {
                match limit {
                    Some(limit) => {
                        let _ = tokio::time::timeout(limit, conn).await;
                    }
                    None => conn.await,
                }
            });
        }
    });
    LabServer { addr, task }
}

async fn misbehave(mut stream: TcpStream, kind: Hostile) {
    let mut buf = [0u8; 2048];
    match kind {
        Hostile::Tarpit => {
            // Hold the connection (reading, so the peer's writes do not block) for 10 minutes.
            let _ = tokio::time::timeout(Duration::from_secs(600), async {
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        std::future::pending::<()>().await;
                    }
                }
            })
            .await;
        }
        Hostile::Slowloris => {
            let _ = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
            if stream
                .write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                .await
                .is_err()
            {
                return;
            }
            for _ in 0..3000 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(b"a").await.is_err() {
                    return;
                }
            }
        }
        Hostile::Garbage => {
            let _ = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
            let mut x: u32 = 0x9e37_79b9;
            let noise: Vec<u8> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x.to_le_bytes()[0]
                })
                .collect();
            let _ = stream.write_all(&noise).await;
        }
        Hostile::Reset => {
            let _ = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Hostile::HugeHeaders => {
            let _ = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nX-Huge: ").await;
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..16 {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"\r\n\r\n").await;
        }
        Hostile::ManyHeaders => {
            let _ = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
            let mut head = String::from("HTTP/1.1 200 OK\r\n");
            for i in 0..500 {
                head.push_str(&format!("X-Pad-{i}: {i}\r\n"));
            }
            head.push_str("Content-Length: 0\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
        }
    }
}

/// Lab applications for the behaviour families: a login form, a rate-limited (or not) API, and
/// routes guarded well or badly. Each counts the requests it receives, so tests can assert
/// secgate's request budget from the server's side.
pub mod apps {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::extract::{Request, State};
    use axum::http::Response;
    use axum::routing::{any, get, post};

    /// A shared request counter.
    #[derive(Clone, Debug, Default)]
    pub struct Hits(Arc<AtomicU32>);

    impl Hits {
        /// Requests counted so far.
        pub fn get(&self) -> u32 {
            self.0.load(Ordering::SeqCst)
        }

        fn bump(&self) -> u32 {
            self.0.fetch_add(1, Ordering::SeqCst) + 1
        }
    }

    fn respond(status: u16, headers: &[(&str, String)], body: &str) -> Response<Body> {
        let mut b = Response::builder()
            .status(status)
            .header("content-type", "text/plain; charset=utf-8");
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        b.body(Body::from(body.to_string()))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }

    /// How a login form gives away whether a username exists.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Enumeration {
        /// It does not: same status, same message, same work.
        None,
        /// Unknown users get 404, wrong passwords 401.
        Status,
        /// Same status, different message.
        Body,
        /// Same answer, but only existing users pay for a (simulated) 120 ms password hash.
        Timing,
    }

    /// A login form's behaviour.
    #[derive(Clone, Debug)]
    pub struct Login {
        /// The one account.
        pub username: String,
        /// Its password.
        pub password: String,
        /// Lock the account after this many consecutive failures.
        pub lockout_after: Option<u32>,
        /// A locked account answers exactly like a wrong password (silent lockout).
        pub silent_lockout: bool,
        /// Enumeration behaviour.
        pub enumeration: Enumeration,
        /// Random extra delay on every answer, up to this many milliseconds.
        pub jitter_ms: u64,
        /// Throttle all logins to this many per second (429 with Retry-After).
        pub throttle_per_sec: Option<u32>,
        /// The failed-login message (e.g. one that mentions locked accounts on every answer).
        pub failure_message: String,
        /// Add a fresh request id to every answer.
        pub request_id: bool,
        /// The session cookie lacks Secure, HttpOnly and SameSite.
        pub insecure_cookie: bool,
    }

    impl Login {
        /// A form for `username` / `password` with no defences and no leaks.
        pub fn new(username: &str, password: &str) -> Login {
            Login {
                username: username.into(),
                password: password.into(),
                lockout_after: None,
                silent_lockout: false,
                enumeration: Enumeration::None,
                jitter_ms: 0,
                throttle_per_sec: None,
                failure_message: "Invalid username or password".into(),
                request_id: false,
                insecure_cookie: false,
            }
        }
    }

    struct LoginState {
        cfg: Login,
        failures: Mutex<HashMap<String, u32>>,
        throttle: Option<crate::engine::Pacer>,
        hits: Hits,
        seed: AtomicU32,
    }

    /// The login app: `POST /login` (form fields `username`, `password`) and `GET /login`.
    /// Returns the router, the request counter, and a probe of the account's failure count.
    pub fn login(cfg: Login) -> (Router, Hits, impl Fn() -> u32 + Clone) {
        let hits = Hits::default();
        let throttle = cfg.throttle_per_sec.map(|n| {
            let quota = governor::Quota::per_second(
                std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN),
            );
            governor::RateLimiter::direct(quota)
        });
        let state = Arc::new(LoginState {
            cfg,
            failures: Mutex::new(HashMap::new()),
            throttle,
            hits: hits.clone(),
            seed: AtomicU32::new(0x2545_f491),
        });
        let probe_state = state.clone();
        let failures = move || {
            let user = probe_state.cfg.username.clone();
            probe_state
                .failures
                .lock()
                .map(|f| f.get(&user).copied().unwrap_or(0))
                .unwrap_or(0)
        };
        let router = Router::new()
            .route("/login", post(login_post).get(login_page))
            .with_state(state);
        (router, hits, failures)
    }

    async fn login_page(State(st): State<Arc<LoginState>>) -> Response<Body> {
        st.hits.bump();
        respond(
            200,
            &[],
            "<form method=post><input name=username><input name=password></form>",
        )
    }

    async fn login_post(State(st): State<Arc<LoginState>>, body: Bytes) -> Response<Body> {
        st.hits.bump();
        if st.cfg.jitter_ms > 0 {
            // xorshift: cheap, deterministic noise for the jittery server.
            let mut x = st.seed.fetch_add(0x9e37_79b9, Ordering::Relaxed) | 1;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            tokio::time::sleep(Duration::from_millis(u64::from(x) % (st.cfg.jitter_ms + 1))).await;
        }
        if st.throttle.as_ref().is_some_and(|t| t.check().is_err()) {
            return respond(429, &[("retry-after", "1".into())], "Too many requests");
        }
        let fields: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        let user = fields.get("username").cloned().unwrap_or_default();
        let pass = fields.get("password").cloned().unwrap_or_default();
        let id = st.hits.get();
        let with_id = |text: &str| {
            if st.cfg.request_id {
                format!(
                    "{text} (request {:06x})",
                    id.wrapping_mul(2_654_435_761) & 0xff_ffff
                )
            } else {
                text.to_string()
            }
        };
        let generic = with_id(&st.cfg.failure_message);
        let generic = generic.as_str();
        if user != st.cfg.username {
            return match st.cfg.enumeration {
                Enumeration::Status => respond(404, &[], "No such user"),
                Enumeration::Body => respond(401, &[], "No such user"),
                Enumeration::None | Enumeration::Timing => respond(401, &[], generic),
            };
        }
        let failures = st
            .failures
            .lock()
            .map(|f| f.get(&user).copied().unwrap_or(0))
            .unwrap_or(0);
        if st.cfg.lockout_after.is_some_and(|n| failures >= n) {
            if let Ok(mut f) = st.failures.lock() {
                *f.entry(user).or_default() += 1;
            }
            return if st.cfg.silent_lockout {
                respond(401, &[], generic)
            } else {
                respond(423, &[], "Account locked: too many failed attempts")
            };
        }
        if st.cfg.enumeration == Enumeration::Timing {
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
        if pass == st.cfg.password {
            if let Ok(mut f) = st.failures.lock() {
                f.remove(&user);
            }
            let cookie = if st.cfg.insecure_cookie {
                "session=lab-login-session; Path=/"
            } else {
                "session=lab-login-session; Path=/; Secure; HttpOnly; SameSite=Lax"
            };
            return respond(
                302,
                &[
                    ("location", "/account".into()),
                    ("set-cookie", cookie.into()),
                ],
                "",
            );
        }
        if let Ok(mut f) = st.failures.lock() {
            *f.entry(user).or_default() += 1;
        }
        respond(401, &[], generic)
    }

    /// How an API route limits requests.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Limit {
        /// Never.
        None,
        /// A token bucket of `per_sec` per second (burst `per_sec`); excess gets 429, with
        /// Retry-After when `retry_after`.
        PerSecond {
            /// Requests per second.
            per_sec: u32,
            /// Send Retry-After with the 429.
            retry_after: bool,
        },
        /// Advertises `X-RateLimit-Limit` / `-Remaining` for `limit` requests; enforces it
        /// (429 after) when `enforced`.
        Advertised {
            /// Requests allowed.
            limit: u32,
            /// Whether the limit is enforced.
            enforced: bool,
        },
    }

    /// An API app: `GET /api/items` under `limit`.
    pub fn api(limit: Limit) -> (Router, Hits) {
        let hits = Hits::default();
        let bucket = match limit {
            Limit::PerSecond { per_sec, .. } => {
                let n = std::num::NonZeroU32::new(per_sec).unwrap_or(std::num::NonZeroU32::MIN);
                Some(Arc::new(governor::RateLimiter::direct(
                    governor::Quota::per_second(n),
                )))
            }
            _ => None,
        };
        let h = hits.clone();
        let router = Router::new().route(
            "/api/items",
            get(move || {
                let n = h.bump();
                let bucket = bucket.clone();
                async move {
                    match limit {
                        Limit::None => respond(200, &[], "[]"),
                        Limit::PerSecond { retry_after, .. } => {
                            if bucket.is_some_and(|b| b.check().is_err()) {
                                let ra = if retry_after {
                                    vec![("retry-after", "1".to_string())]
                                } else {
                                    Vec::new()
                                };
                                respond(429, &ra, "slow down")
                            } else {
                                respond(200, &[], "[]")
                            }
                        }
                        Limit::Advertised { limit, enforced } => {
                            let remaining = limit.saturating_sub(n);
                            let headers = [
                                ("x-ratelimit-limit", limit.to_string()),
                                ("x-ratelimit-remaining", remaining.to_string()),
                            ];
                            if enforced && n > limit {
                                respond(429, &[("retry-after", "60".into())], "limit reached")
                            } else {
                                respond(200, &headers, "[]")
                            }
                        }
                    }
                }
            }),
        );
        (router, hits)
    }

    /// How a route guards itself.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Guard {
        /// Every method needs `Authorization: Bearer lab-token`.
        Proper,
        /// No guard at all.
        None,
        /// Only GET is checked (the classic per-method rule).
        GetOnly,
        /// The guard is skipped when a method-override header is present.
        OverrideBypass,
    }

    /// A guarded route: any method on `/admin`.
    pub fn protected(guard: Guard) -> (Router, Hits) {
        let hits = Hits::default();
        let h = hits.clone();
        let router = Router::new().route(
            "/admin",
            any(move |req: Request| {
                h.bump();
                async move {
                    let authorised = req
                        .headers()
                        .get("authorization")
                        .is_some_and(|v| v.as_bytes() == b"Bearer lab-token");
                    let overridden = req.headers().contains_key("x-http-method-override");
                    let checked = match guard {
                        Guard::Proper => true,
                        Guard::None => false,
                        Guard::GetOnly => req.method() == axum::http::Method::GET,
                        Guard::OverrideBypass => !overridden,
                    };
                    if checked && !authorised {
                        respond(
                            401,
                            &[("www-authenticate", "Bearer realm=\"lab\"".into())],
                            "login required",
                        )
                    } else {
                        respond(200, &[], "admin panel")
                    }
                }
            }),
        );
        (router, hits)
    }
}
/// A fake network service for the ports family: real TCP listeners that speak just enough of a
/// protocol to be identified, for tests and the demo (Redis itself is the real Debian server in
/// the tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fake {
    /// Send these bytes on connect, then hold the connection (reading) for up to a minute.
    Banner(Vec<u8>),
    /// Memcached's text protocol: `version` and, when `open`, `stats`.
    Memcached {
        /// Answer `stats` (no SASL); otherwise answer `ERROR`.
        open: bool,
    },
    /// PostgreSQL: answer an SSLRequest with `N`.
    Postgres,
    /// MongoDB as mongod reads its socket: a 16-byte header first (so a shorter line probe gets
    /// no answer), an HTTP request answered with mongod's plain-text hint, an invalid message
    /// length closes the connection, and any other message gets an OP_MSG reply to its id.
    Mongo,
    /// Elasticsearch's HTTP API: cluster information, or, when `auth`, the 401 of its security
    /// realm as Elasticsearch 8 sends it (no `X-elastic-product` header, elastic#73434).
    Elasticsearch {
        /// Require authentication.
        auth: bool,
    },
}

/// Serve a fake service on `listener` (at most 64 connections held at once, a minute each).
pub fn serve_fake(listener: TcpListener, fake: Fake) -> LabServer {
    let fake = Arc::new(fake);
    accept_loop(listener, Some(Duration::from_secs(60)), move |stream| {
        let fake = fake.clone();
        async move { speak(stream, &fake).await }
    })
}

async fn speak(mut stream: TcpStream, fake: &Fake) {
    if let Fake::Mongo = fake {
        return speak_mongo(stream).await;
    }
    let mut buf = [0u8; 2048];
    if let Fake::Banner(banner) = fake
        && stream.write_all(banner).await.is_err()
    {
        return;
    }
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let request = buf.get(..n).unwrap_or_default();
        let reply: Vec<u8> = match fake {
            Fake::Banner(_) => continue,
            Fake::Memcached { open } => {
                if request.starts_with(b"version") {
                    b"VERSION 1.6.21\r\n".to_vec()
                } else if request.starts_with(b"stats") && *open {
                    b"STAT pid 4242\r\nSTAT uptime 10\r\nSTAT curr_items 3\r\nEND\r\n".to_vec()
                } else {
                    b"ERROR\r\n".to_vec()
                }
            }
            Fake::Postgres => {
                if request == [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f] {
                    b"N".to_vec()
                } else {
                    return;
                }
            }
            Fake::Mongo => return,
            Fake::Elasticsearch { auth } => {
                if !request.starts_with(b"GET ") {
                    return;
                }
                let (head, body) = if *auth {
                    (
                        "401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"security\", charset=\"UTF-8\"\r\nWWW-Authenticate: ApiKey",
                        concat!(
                            "{\"error\":{\"root_cause\":[{\"type\":\"security_exception\",",
                            "\"reason\":\"missing authentication credentials for REST request [/]\",",
                            "\"header\":{\"WWW-Authenticate\":[\"Basic realm=\\\"security\\\", charset=\\\"UTF-8\\\"\",\"ApiKey\"]}}],",
                            "\"type\":\"security_exception\",",
                            "\"reason\":\"missing authentication credentials for REST request [/]\",",
                            "\"header\":{\"WWW-Authenticate\":[\"Basic realm=\\\"security\\\", charset=\\\"UTF-8\\\"\",\"ApiKey\"]}},",
                            "\"status\":401}"
                        ),
                    )
                } else {
                    (
                        "200 OK\r\nX-elastic-product: Elasticsearch",
                        "{\"name\":\"lab\",\"cluster_name\":\"lab\",\"cluster_uuid\":\"x\",\"tagline\":\"You Know, for Search\"}",
                    )
                };
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 {head}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                return;
            }
        };
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// [`Fake::Mongo`]: read a 16-byte message header, then answer as mongod does.
async fn speak_mongo(mut stream: TcpStream) {
    let mut head = [0u8; 16];
    loop {
        if stream.read_exact(&mut head).await.is_err() {
            return;
        }
        if head.starts_with(b"GET ") {
            let body = "It looks like you are trying to access MongoDB over HTTP on the native driver port.\r\n";
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
            return;
        }
        let [l0, l1, l2, l3, i0, i1, i2, i3, ..] = head;
        let len = i32::from_le_bytes([l0, l1, l2, l3]);
        // mongod's limit on a message: 48 MB; the fake reads at most 64 KiB.
        let Some(rest) = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_sub(16))
            .filter(|r| *r <= 64 * 1024)
        else {
            return;
        };
        let mut body = vec![0u8; rest];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut reply = Vec::new();
        reply.extend_from_slice(&21i32.to_le_bytes());
        reply.extend_from_slice(&7i32.to_le_bytes());
        reply.extend_from_slice(&[i0, i1, i2, i3]);
        reply.extend_from_slice(&2013i32.to_le_bytes());
        reply.extend_from_slice(&[0, 0, 0, 0, 0]);
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// A port that drops connection attempts: a listener whose accept queue (backlog 0) is filled by
/// one connection that is never accepted, so the kernel drops further SYNs, as a firewall
/// would. Keep it alive while scanning.
#[derive(Debug)]
pub struct Filtered {
    /// Where it "listens".
    pub addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<std::net::TcpStream>,
}

/// Start a [`Filtered`] port on a loopback address (`127.x.y.z:port`, port 0 picks one).
pub async fn filtered(addr: &str) -> Result<Filtered, String> {
    let sock: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    if !sock.ip().is_loopback() {
        return Err(format!("{addr}: the lab binds loopback addresses only"));
    }
    let socket = if sock.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    socket.bind(sock).map_err(|e| format!("bind {addr}: {e}"))?;
    let listener = socket.listen(0).map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // Fill the queue: each connect either completes (queued) or times out (queue full).
    let mut fillers = Vec::new();
    for _ in 0..4 {
        match std::net::TcpStream::connect_timeout(&local, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    Ok(Filtered {
        addr: local,
        _listener: listener,
        _fillers: fillers,
    })
}

/// One DNS record of a lab zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rec {
    /// An IPv4 address.
    A(std::net::Ipv4Addr),
    /// A CNAME to this name.
    Cname(String),
    /// One TXT string.
    Txt(String),
    /// A CAA `issue` record for this CA domain.
    CaaIssue(String),
    /// A DNSKEY record (opaque key material: the lab does not sign).
    Dnskey,
    /// A DS record (an opaque digest). In DNS the DS of `shop.test` lives in the parent zone;
    /// the lab has no delegations, so it is served from the zone that lists it, which is what
    /// a resolver returns either way.
    Ds,
}

/// A zone served by the lab's DNS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// The zone apex, e.g. `shop.test`.
    pub origin: String,
    /// Records: owner name (absolute, without the final dot) and data.
    pub records: Vec<(String, Rec)>,
}

/// Serve `zones` over UDP and TCP on a loopback address (port 0 picks one free for both) with
/// hickory's in-memory authoritative server. Names outside every zone are refused.
pub async fn serve_dns(ip: &str, zones: &[Zone]) -> Result<LabServer, String> {
    serve_dns_with(ip, zones, &[]).await
}

/// The lab's DNS request handler: SERVFAIL for every name in a broken zone (as a resolver
/// answers for a lame delegation), the catalog for the rest.
struct LabDns {
    catalog: hickory_server::zone_handler::Catalog,
    broken: Vec<hickory_server::proto::rr::LowerName>,
}

#[async_trait::async_trait]
impl hickory_server::server::RequestHandler for LabDns {
    async fn handle_request<
        R: hickory_server::server::ResponseHandler,
        T: hickory_server::net::runtime::Time,
    >(
        &self,
        request: &hickory_server::server::Request,
        mut response_handle: R,
    ) -> hickory_server::server::ResponseInfo {
        use hickory_server::proto::op::{Header, ResponseCode};
        use hickory_server::zone_handler::MessageResponseBuilder;
        let broken = request
            .request_info()
            .is_ok_and(|info| self.broken.iter().any(|z| z.zone_of(info.query.name())));
        if !broken {
            return self
                .catalog
                .handle_request::<R, T>(request, response_handle)
                .await;
        }
        let response = MessageResponseBuilder::new(&request.queries, None)
            .error_msg(&request.metadata, ResponseCode::ServFail);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                let mut metadata = request.metadata;
                metadata.response_code = ResponseCode::ServFail;
                Header {
                    metadata,
                    counts: Default::default(),
                }
                .into()
            }
        }
    }
}

/// [`serve_dns`], and every name in or under `servfail` (e.g. `broken.test`) answered with
/// SERVFAIL.
pub async fn serve_dns_with(
    ip: &str,
    zones: &[Zone],
    servfail: &[&str],
) -> Result<LabServer, String> {
    use hickory_server::proto::rr::rdata::{A, CAA, CNAME, NULL, SOA, TXT};
    use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
    use hickory_server::store::in_memory::InMemoryZoneHandler;
    use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

    let ip: std::net::IpAddr = ip.parse().map_err(|e| format!("{ip}: {e}"))?;
    if !ip.is_loopback() {
        return Err(format!("{ip}: the lab binds loopback addresses only"));
    }
    let name = |n: &str| {
        Name::from_ascii(format!("{}.", n.trim_end_matches('.'))).map_err(|e| format!("{n}: {e}"))
    };
    let mut catalog = Catalog::new();
    for zone in zones {
        let origin = name(&zone.origin)?;
        let mut handler =
            InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::empty(
                origin.clone(),
                ZoneType::Primary,
                AxfrPolicy::Deny,
            );
        let soa = SOA::new(
            name(&format!("ns.{}", zone.origin))?,
            name(&format!("hostmaster.{}", zone.origin))?,
            1,
            3600,
            600,
            86_400,
            60,
        );
        handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
        for (owner, rec) in &zone.records {
            let data = match rec {
                Rec::A(v4) => RData::A(A(*v4)),
                Rec::Cname(target) => RData::CNAME(CNAME(name(target)?)),
                Rec::Txt(t) => RData::TXT(TXT::new(vec![t.clone()])),
                Rec::CaaIssue(ca) => {
                    let issuer = Name::from_ascii(ca).map_err(|e| format!("{ca}: {e}"))?;
                    RData::CAA(CAA::new_issue(false, Some(issuer), Vec::new()))
                }
                Rec::Dnskey => RData::Unknown {
                    code: RecordType::DNSKEY,
                    rdata: NULL::with(vec![1, 1, 3, 13, 0x5e, 0xc6, 0xa7, 0xe0]),
                },
                Rec::Ds => RData::Unknown {
                    code: RecordType::DS,
                    rdata: NULL::with(vec![0x5e, 0xc6, 13, 2, 0xab, 0xcd, 0xef, 0x01]),
                },
            };
            handler.upsert_mut(Record::from_rdata(name(owner)?, 60, data), 1);
        }
        let handler: Arc<dyn ZoneHandler> = Arc::new(handler);
        catalog.upsert(LowerName::from(origin), vec![handler]);
    }
    // The same port for UDP and TCP: pick a UDP port, then try TCP on it.
    let mut bound = None;
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| format!("bind {ip}: {e}"))?;
        let addr = udp.local_addr().map_err(|e| e.to_string())?;
        if let Ok(tcp) = TcpListener::bind(addr).await {
            bound = Some((udp, tcp, addr));
            break;
        }
    }
    let (udp, tcp, addr) =
        bound.ok_or_else(|| format!("no free port on {ip} for both UDP and TCP"))?;
    let broken = servfail
        .iter()
        .map(|z| name(z).map(LowerName::from))
        .collect::<Result<Vec<_>, _>>()?;
    let mut server = hickory_server::Server::new(LabDns { catalog, broken });
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 4096);
    let task = tokio::spawn(async move {
        let _ = server.block_until_done().await;
    });
    Ok(LabServer { addr, task })
}
