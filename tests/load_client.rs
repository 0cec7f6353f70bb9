//! The load generator's client side against real servers on loopback (hyper in this process,
//! over tokio-rustls): HTTP/2 over TLS (ALPN h2) and prior-knowledge h2c with multiplexed
//! streams, TLS session resumption counted by the server, source addresses spread over
//! 127.0.0.0/8 or taken from `source_range`, and the usage errors of nonsense options.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use secgate::lab;
use support::{Run, secgate};

/// One load run at a time: they measure, and the machine has two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a server saw.
#[derive(Default)]
struct Seen {
    /// TCP connections accepted.
    accepted: AtomicU64,
    /// TLS handshakes completed, and of those resumed.
    handshakes: AtomicU64,
    resumed: AtomicU64,
    /// Requests by protocol version.
    h1: AtomicU64,
    h2: AtomicU64,
    /// Peer addresses.
    peers: Mutex<BTreeSet<IpAddr>>,
}

struct Server {
    port: u16,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A hyper server (HTTP/1.1 and HTTP/2, `auto`) on 127.0.0.1, over TLS offering `alpn` when
/// given; every 100th request gets a 500 when `fail_some`.
async fn serve(alpn: Option<&[&[u8]]>, fail_some: bool) -> Server {
    let listener = lab::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = alpn.map(|alpn| {
        let pki = lab::Pki::new().unwrap();
        let config = pki.server_config(&["127.0.0.1"]).unwrap();
        let mut config = (*config).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            s.accepted.fetch_add(1, Ordering::Relaxed);
            s.peers.lock().unwrap().insert(peer.ip());
            let (s, acceptor) = (s.clone(), acceptor.clone());
            tokio::spawn(async move {
                let s2 = s.clone();
                let n = Arc::new(AtomicU64::new(0));
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let s = s2.clone();
                    let k = n.fetch_add(1, Ordering::Relaxed);
                    async move {
                        if req.version() == hyper::Version::HTTP_2 {
                            s.h2.fetch_add(1, Ordering::Relaxed)
                        } else {
                            s.h1.fetch_add(1, Ordering::Relaxed)
                        };
                        let all = s.h1.load(Ordering::Relaxed) + s.h2.load(Ordering::Relaxed);
                        let status = if fail_some && all % 100 == 0 && k > 0 {
                            500
                        } else {
                            200
                        };
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from_static(b"ok")))
                                .unwrap(),
                        )
                    }
                });
                let http = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                match acceptor {
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        s.handshakes.fetch_add(1, Ordering::Relaxed);
                        if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
                        {
                            s.resumed.fetch_add(1, Ordering::Relaxed);
                        }
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
        }
    });
    Server { port, seen, task }
}

/// Scan `url` from a config whose target opts in with `load = { KEYS }`.
async fn load_scan(url: &str, keys: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!("[[target]]\nurl = \"{url}\"\nload = {{ {keys} }}\n"),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    tokio::task::spawn_blocking(move || {
        let run = secgate(&["scan", "--config", &cfg, "--checks", "load", "--insecure"]);
        drop(dir);
        run
    })
    .await
    .unwrap()
}

fn status(run: &Run, id: &str) -> String {
    run.result(id)["status"].as_str().unwrap().to_string()
}

fn busy(run: &Run, id: &str) -> bool {
    run.result(id)["reason"]["detail"]
        .as_str()
        .is_some_and(|d| d.contains("could not keep its schedule"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_multiplexes_streams_and_resumes_sessions() {
    let _one = SERIAL.lock().await;
    let s = serve(Some(&[b"h2", b"http/1.1"]), false).await;
    // 4,000 requests on 2 connections × 8 streams, then 60 new connections held for 1 s.
    let keys = "rate = 1000, duration = 3, warmup = 1, idle = 0, connections = 2, http2 = true, streams = 8, hold_connections = 60, hold = 1";
    let run = load_scan(&format!("https://127.0.0.1:{}/", s.port), keys).await;
    let seen = &s.seen;
    // Every load request went over HTTP/2 (the one HTTP/1.1 request is secgate's
    // connectivity check, which offers http/1.1 alone).
    assert_eq!(
        seen.h2.load(Ordering::Relaxed),
        4000 + 60 * 2,
        "{}",
        run.stdout
    );
    assert!(seen.h1.load(Ordering::Relaxed) <= 1);
    // Multiplexed: the steady phase's 16 workers shared 2 connections.
    let r = run.result("load.error_rate");
    assert_eq!(status(&run, "load.error_rate"), "pass", "{r}");
    assert_eq!(r["evidence"]["connections_opened"], 0, "{r}");
    let warm = seen.accepted.load(Ordering::Relaxed);
    assert!(warm <= 1 + 2 + 60, "{warm} connections accepted");
    if !busy(&run, "load.latency_p95") {
        assert_eq!(
            status(&run, "load.latency_p95"),
            "pass",
            "{}",
            run.result("load.latency_p95")
        );
    }
    // Session resumption: the hold phase's new connections resumed what earlier ones got.
    let c = run.result("load.concurrency");
    assert_eq!(status(&run, "load.concurrency"), "pass", "{c}");
    let (handshakes, resumed) = (
        seen.handshakes.load(Ordering::Relaxed),
        seen.resumed.load(Ordering::Relaxed),
    );
    let reported = c["evidence"]["tls_resumed"].as_u64().unwrap();
    eprintln!(
        "TLS handshakes {handshakes}, resumed {resumed}; the hold phase reported {reported} of 60 resumed"
    );
    // The steady phase's connections resumed nothing (they were opened at once, before any
    // ticket came); the hold phase's did, and what secgate reports is what the server counted.
    assert!(reported > 0, "{c}");
    assert_eq!(reported, resumed, "{c}");
    assert!(handshakes >= 60, "{handshakes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_and_the_error_rule() {
    let _one = SERIAL.lock().await;
    let s = serve(None, true).await;
    let keys = "rate = 1000, duration = 3, warmup = 0, idle = 0, connections = 2, http2 = true, streams = 4";
    let run = load_scan(&format!("http://127.0.0.1:{}/", s.port), keys).await;
    assert_eq!(s.seen.h2.load(Ordering::Relaxed), 3000);
    // 1 % of 500s fails a 0.1 % threshold, over HTTP/2 as over HTTP/1.1.
    let r = run.result("load.error_rate");
    assert_eq!(status(&run, "load.error_rate"), "fail", "{r}");
    assert!(
        r["evidence"]["errors_by_kind"][0]
            .as_str()
            .unwrap()
            .starts_with("status_5xx="),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_asked_of_a_server_without_it_is_an_error_never_a_pass() {
    let _one = SERIAL.lock().await;
    let s = serve(Some(&[b"http/1.1"]), false).await;
    let keys = "rate = 100, duration = 1, warmup = 0, idle = 0, connections = 1, http2 = true, abort_on_fail = false";
    let run = load_scan(&format!("https://127.0.0.1:{}/", s.port), keys).await;
    assert_eq!(s.seen.h2.load(Ordering::Relaxed), 0);
    let r = run.result("load.error_rate");
    assert_ne!(status(&run, "load.error_rate"), "pass", "{r}");
    assert!(
        r["evidence"]["errors_by_kind"][0]
            .as_str()
            .unwrap()
            .starts_with("protocol="),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_addresses_spread_over_loopback_or_come_from_the_range() {
    let _one = SERIAL.lock().await;
    let keys = "rate = 200, duration = 1, warmup = 0, idle = 0, connections = 16";
    let s = serve(None, false).await;
    load_scan(&format!("http://127.0.0.1:{}/", s.port), keys).await;
    let peers = s.seen.peers.lock().unwrap().clone();
    // 16 connections from 127.0.0.1 to 127.0.0.16 (and the connectivity check's).
    assert!(peers.len() >= 16, "{peers:?}");
    assert!(peers.iter().all(|p| p.is_loopback()), "{peers:?}");
    let s = serve(None, false).await;
    let keys = format!("{keys}, source_range = \"127.0.0.100/30\"");
    load_scan(&format!("http://127.0.0.1:{}/", s.port), &keys).await;
    let peers = s.seen.peers.lock().unwrap().clone();
    let range: BTreeSet<IpAddr> = ["127.0.0.101", "127.0.0.102"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    // The connectivity check's connection comes from the kernel's choice.
    let from_range: BTreeSet<IpAddr> = peers.intersection(&range).copied().collect();
    assert_eq!(from_range, range, "{peers:?}");
    assert!(peers.len() <= 3, "{peers:?}");
}

#[test]
fn nonsense_client_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    for (keys, says) in [
        ("streams = 4", "set http2 = true"),
        ("http2 = true, streams = 1000", "between"),
        (
            "http2 = true, connections = 10000, streams = 10",
            "connections × streams",
        ),
        ("source_range = \"nonsense\"", "not a CIDR range"),
        ("source_range = \"10.0.0.0/8\"", "more than 65536"),
        (
            "source_range = \"192.0.2.0/30\"",
            "not a range of this machine's addresses",
        ),
        ("http2 = \"yes\"", "target[0].load"),
    ] {
        std::fs::write(
            &cfg,
            format!("[[target]]\nurl = \"http://127.0.0.1:9/\"\nload = {{ {keys} }}\n"),
        )
        .unwrap();
        let run = secgate(&["validate", cfg.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{keys}: {}", run.stderr);
        let line = run.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains("target[0].load"), "{keys}: {line}");
        assert!(line.contains(says), "{keys}: {line}");
    }
}

/// How the raw server of [`raw_server`] answers every request.
#[derive(Clone, Copy)]
enum Answer {
    /// Chunked body with a chunk extension and a trailer, keep-alive.
    Chunked,
    /// `100 Continue`, then a 200 with a length.
    Continue,
    /// A 200 with `Connection: close`, then the close.
    Close,
    /// HTTP/1.0 with no length: the body runs to the close.
    Http10,
    /// Claims a 2 MB body (over the 1 MB cap).
    Huge,
    /// Not HTTP.
    Garbage,
    /// Headers without end (past the 64 KB head cap).
    EndlessHead,
    /// Closes halfway through the body.
    CutBody,
    /// `Transfer-Encoding` and `Content-Length` both.
    Smuggle,
    /// A chunk-size line without digits after the first chunk (not the last chunk).
    SizelessChunk,
}

/// A server on 127.0.0.1 written with nothing but a socket, so that it can answer what a
/// proper HTTP library never would; counts connections and requests.
async fn raw_server(answer: Answer) -> Server {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = lab::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            s.accepted.fetch_add(1, Ordering::Relaxed);
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request head (the load requests are GETs without a body).
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    s.h1.fetch_add(1, Ordering::Relaxed);
                    let reply: Vec<u8> = match answer {
                        Answer::Chunked => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n".to_vec(),
                        Answer::Continue => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                        Answer::Close => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec(),
                        Answer::Http10 => b"HTTP/1.0 200 OK\r\n\r\nthe body runs to the close".to_vec(),
                        Answer::Huge => {
                            let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\n".to_vec();
                            r.resize(r.len() + 65536, b'x');
                            r
                        }
                        Answer::Garbage => b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n".to_vec(),
                        Answer::EndlessHead => {
                            let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
                            while r.len() < 80 * 1024 {
                                r.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
                            }
                            r
                        }
                        Answer::CutBody => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part".to_vec(),
                        Answer::Smuggle => b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
                        Answer::SizelessChunk => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n;ext\r\n\r\n".to_vec(),
                    };
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                    if matches!(
                        answer,
                        Answer::Close | Answer::Http10 | Answer::CutBody | Answer::Garbage
                    ) {
                        return;
                    }
                    if matches!(answer, Answer::EndlessHead | Answer::Huge) {
                        // Keep the connection open (the client gives up at its cap).
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(5),
                            stream.read(&mut chunk),
                        )
                        .await;
                        return;
                    }
                }
            });
        }
    });
    Server { port, seen, task }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_answers_of_every_framing_and_hostile_ones() {
    let _one = SERIAL.lock().await;
    let keys =
        "rate = 100, duration = 1, warmup = 0, idle = 0, connections = 2, abort_on_fail = false";
    // Well-formed answers: every request succeeds; connections are kept unless the answer
    // says otherwise.
    let closing = format!("{keys}, headers = {{ Connection = \"close\" }}");
    for (answer, keys, reused) in [
        (Answer::Chunked, keys, true),
        (Answer::Continue, keys, true),
        (Answer::Close, keys, false),
        (Answer::Http10, keys, false),
        // The template's own `Connection: close`: a new connection for each request.
        (Answer::Chunked, closing.as_str(), false),
    ] {
        let s = raw_server(answer).await;
        let run = load_scan(&format!("http://127.0.0.1:{}/", s.port), keys).await;
        let r = run.result("load.error_rate");
        let requests = s.seen.h1.load(Ordering::Relaxed);
        let accepted = s.seen.accepted.load(Ordering::Relaxed);
        assert_eq!(
            r["evidence"]["errors_by_kind"],
            serde_json::json!([]),
            "{r}"
        );
        assert_eq!(requests, 100, "{r}");
        if reused {
            // 2 workers (and the connectivity check's connect).
            assert!(
                accepted <= 3,
                "{accepted} connections for {requests} requests"
            );
        } else {
            assert!(
                accepted >= 100,
                "{accepted} connections for {requests} requests"
            );
        }
    }
    // Hostile answers: each request fails with its kind, never a pass, never a hang.
    for (answer, kind) in [
        (Answer::Huge, "too_large"),
        (Answer::Garbage, "malformed"),
        (Answer::EndlessHead, "too_large"),
        (Answer::CutBody, "reset"),
        (Answer::Smuggle, "malformed"),
        (Answer::SizelessChunk, "malformed"),
    ] {
        let s = raw_server(answer).await;
        let started = std::time::Instant::now();
        let run = load_scan(&format!("http://127.0.0.1:{}/", s.port), keys).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        let r = run.result("load.error_rate");
        assert_eq!(status(&run, "load.error_rate"), "fail", "{r}");
        let kinds = r["evidence"]["errors_by_kind"].as_array().unwrap();
        assert_eq!(kinds.len(), 1, "{r}");
        assert!(
            kinds[0].as_str().unwrap().starts_with(&format!("{kind}=")),
            "{kind}: {r}"
        );
    }
}
