//! All network I/O of the checks goes through here: connects, TLS client configuration, and
//! HTTP requests, each with a timeout, a size cap and an error mapped to a [`Reason`].
//!
//! HTTP requests never follow redirects on their own (the headers family follows them by hand,
//! within the scan's scope, to record each hop), never use a proxy from the environment, and
//! never read a response body unless asked, and then only up to a cap.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use url::Url;

use crate::model::{Reason, ReasonKind};

/// The most headers an HTTP/1 response may carry before it is rejected as too large.
pub const MAX_RESPONSE_HEADERS: usize = 128;

/// The User-Agent secgate sends.
pub const USER_AGENT: &str = concat!("secgate/", env!("CARGO_PKG_VERSION"));

/// Connect to the first address that accepts within `timeout` each.
pub async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Reason> {
    let mut last = Reason::new(ReasonKind::Dns, "no address to connect to");
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = io_reason(&e, &format!("connect to {addr}")),
            Err(_) => {
                last = Reason::new(
                    ReasonKind::Timeout,
                    format!("connect to {addr} timed out after {}", secs(timeout)),
                )
            }
        }
    }
    Err(last)
}

/// Map an I/O error to a reason, prefixed with what was being done.
pub fn io_reason(e: &std::io::Error, doing: &str) -> Reason {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => ReasonKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ReasonKind::Reset
        }
        K::TimedOut | K::WouldBlock => ReasonKind::Timeout,
        K::InvalidData => ReasonKind::Malformed,
        _ => ReasonKind::Io,
    };
    Reason::new(kind, format!("{doing}: {e}"))
}

/// Render a duration in seconds for messages (`5s`, `0.5s`).
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// Certificate failures seen with `--insecure`: server name → why verification failed.
pub type CertFailures = std::sync::Mutex<std::collections::HashMap<String, String>>;

/// The TLS client configuration shared by every HTTP client of a scan: Mozilla's roots
/// (webpki-roots) plus `--ca-file` anchors. With `insecure`, a failed verification does not stop
/// the connection but is recorded in `failures` (browsers ignore HSTS on such a connection,
/// so the headers family needs to know).
pub fn tls_config(
    extra_roots: &[CertificateDer<'static>],
    insecure: bool,
    failures: Arc<CertFailures>,
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(http_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions();
    // The provider's default protocol versions are always valid.
    let Ok(builder) = builder else {
        unreachable_config()
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        // Unparseable anchors were rejected when the CA file was read.
        let _ = roots.add(cert.clone());
    }
    let roots = Arc::new(roots);
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build();
    let mut config = match verifier {
        Ok(inner) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ScanVerifier {
                inner,
                pinned: extra_roots.to_vec(),
                insecure,
                failures,
            }))
            .with_no_client_auth(),
        Err(_) => builder.with_root_certificates(roots).with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The crypto of the HTTP families' connections: aws-lc-rs with every default group and suite,
/// but the cheapest first. The headers, auth and ratelimit families judge what a server answers,
/// not how it negotiates (the tls family does, with its own hellos), so their clients offer an
/// X25519 key share alone (a server that wants another group asks for it with a
/// HelloRetryRequest) and AES-128-GCM first. The default order sends an X25519MLKEM768 share as
/// well, whose key generation and decapsulation cost more than the rest of the client's side of
/// the handshake: at a few thousand targets that was a tenth of the scan's CPU.
fn http_provider() -> rustls::crypto::CryptoProvider {
    use rustls::NamedGroup;
    use rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    // Stable sorts: the rest keep the provider's order.
    provider.kx_groups.sort_by_key(|g| match g.name() {
        NamedGroup::X25519 => 0,
        NamedGroup::secp256r1 => 1,
        _ => 2,
    });
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != TLS13_AES_128_GCM_SHA256.suite());
    provider
}

#[allow(clippy::panic, reason = "aws-lc-rs always supports TLS 1.2 and 1.3")]
fn unreachable_config() -> ! {
    panic!("the aws-lc-rs provider rejected its own default protocol versions")
}

/// Read trust anchors from a PEM file; errors name the file.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: invalid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no CERTIFICATE block found", path.display()));
    }
    let mut probe = rustls::RootCertStore::empty();
    for cert in &certs {
        probe
            .add(cert.clone())
            .map_err(|e| format!("{}: unusable certificate: {e}", path.display()))?;
    }
    Ok(certs)
}

/// The scan's certificate verifier: webpki against the roots, plus two allowances.
/// - A leaf that is itself one of the `--ca-file` certificates is pinned: accepted when its
///   name matches, even when webpki refuses it (a self-signed certificate made with
///   `openssl req -x509` is a CA, and webpki will not take a CA as an end entity). The TLS
///   family judges such a leaf as trusted too, so the families agree.
/// - With `--insecure`, a failed verification is recorded and the connection proceeds.
///
/// Handshake signatures are always checked, so the connection is at least to the holder of
/// the presented key.
#[derive(Debug)]
struct ScanVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    insecure: bool,
    failures: Arc<CertFailures>,
}

impl ScanVerifier {
    fn pinned_and_named(&self, end_entity: &CertificateDer<'_>, name: &ServerName<'_>) -> bool {
        self.pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
            && rustls::server::ParsedCertificate::try_from(end_entity)
                .and_then(|cert| rustls::client::verify_server_name(&cert, name))
                .is_ok()
    }
}

impl ServerCertVerifier for ScanVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(_) if self.pinned_and_named(end_entity, server_name) => {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) if self.insecure => {
                let name = server_name.to_str().to_ascii_lowercase();
                if let Ok(mut map) = self.failures.lock() {
                    map.insert(name, e.to_string());
                }
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The longest one request may take from connect to the end of the response head: three
/// timeouts (connect, TLS handshake, response), so a server that trickles bytes slower than
/// the read timeout cannot hold a request open forever.
pub fn request_deadline(timeout: Duration) -> Duration {
    timeout.saturating_mul(3)
}

/// One HTTP response head (the body is not read).
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The URL requested.
    pub url: Url,
    /// Status code.
    pub status: u16,
    /// Response headers (all values, in order).
    pub headers: HeaderMap,
}

/// Why a request failed, and whether it failed before the TCP connection was established.
#[derive(Clone, Debug)]
pub struct FetchError {
    /// The reason.
    pub reason: Reason,
    /// True when no TCP connection was made (refused, unreachable, connect timeout).
    pub before_connect: bool,
}

/// Send one request and return the response head, or why it failed.
pub async fn fetch(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &Url,
    headers: HeaderMap,
    timeout: Duration,
) -> Result<HttpResponse, FetchError> {
    let request = client.request(method, url.clone()).headers(headers).send();
    // reqwest enforces the same deadline; this outer one guards against any await it misses.
    let outer = request_deadline(timeout) + Duration::from_millis(250);
    match tokio::time::timeout(outer, request).await {
        Ok(Ok(resp)) => Ok(HttpResponse {
            url: url.clone(),
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
        }),
        Ok(Err(e)) => Err(FetchError {
            before_connect: e.is_connect() && !has_tls_error(&e),
            reason: classify(&e, url, timeout),
        }),
        Err(_) => Err(FetchError {
            before_connect: false,
            reason: Reason::new(
                ReasonKind::Timeout,
                format!("{url}: no complete response within {}", secs(outer)),
            ),
        }),
    }
}

fn has_tls_error(e: &reqwest::Error) -> bool {
    chain(e).any(|s| s.downcast_ref::<rustls::Error>().is_some())
}

/// The error and its causes. Unlike `source()` alone, this steps *into* an `io::Error` that
/// wraps another error (its `source()` skips the wrapped error, which is where tokio-rustls
/// puts a handshake failure). Bounded, in case of a cyclic chain.
fn chain<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = Some(e);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
        Some(current)
    })
    .take(32)
}

/// A TLS failure of the HTTP client, in words a reader can act on, with rustls's own name
/// for it in parentheses.
pub fn tls_in_words(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C};
    let words = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => "the certificate has expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "the certificate is not valid yet",
            C::UnknownIssuer => {
                "the certificate is not issued by a trusted CA (give a private CA with --ca-file)"
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the certificate is not valid for this host name"
            }
            C::BadSignature
            | C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                "the certificate's signature is invalid or uses a refused algorithm (SHA-1, MD5)"
            }
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "the certificate is not for TLS servers (extended key usage)"
            }
            C::Other(o) if format!("{o:?}").contains("CaUsedAsEndEntity") => {
                "the server certificate is a CA certificate (basicConstraints CA:TRUE), which \
                 clients refuse as a server certificate; give that very certificate with \
                 --ca-file to pin it"
            }
            _ => "the certificate is not accepted",
        },
        rustls::Error::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity) => {
            "the server refused the handshake: it likely accepts none of the suites secgate's \
             HTTP client offers (TLS 1.3, or TLS 1.2 with ECDHE and AES-GCM or ChaCha20); the \
             tls family lists what it accepts"
        }
        rustls::Error::AlertReceived(A::ProtocolVersion) => {
            "the server accepts neither TLS 1.2 nor TLS 1.3, the versions secgate's HTTP client \
             speaks; the tls family lists what it accepts"
        }
        rustls::Error::PeerIncompatible(_) => {
            "the server's TLS settings are incompatible with secgate's HTTP client (TLS 1.2 with \
             ECDHE and AEAD suites, or TLS 1.3); the tls family lists what it accepts"
        }
        _ => return e.to_string(),
    };
    format!("{words} ({e})")
}

/// Map a reqwest error to a reason by walking its source chain.
pub fn classify(e: &reqwest::Error, url: &Url, timeout: Duration) -> Reason {
    // The most specific cause wins: TLS, then HTTP parsing, then timeouts, then socket errors.
    if let Some(tls) = chain(e).find_map(|s| s.downcast_ref::<rustls::Error>()) {
        return Reason::new(
            ReasonKind::Tls,
            format!("{url}: TLS handshake failed: {}", tls_in_words(tls)),
        );
    }
    if let Some(h) = chain(e).find_map(|s| s.downcast_ref::<hyper::Error>()) {
        if h.is_parse_too_large() {
            return Reason::new(
                ReasonKind::TooLarge,
                format!(
                    "{url}: response head too large (over {MAX_RESPONSE_HEADERS} headers or the size cap)"
                ),
            );
        }
        if h.is_parse() || h.is_parse_status() {
            return Reason::new(
                ReasonKind::Malformed,
                format!("{url}: not a valid HTTP response: {h}"),
            );
        }
        if h.is_incomplete_message() {
            return Reason::new(
                ReasonKind::Reset,
                format!("{url}: connection closed before a complete response"),
            );
        }
    }
    if e.is_timeout() {
        // A plain-HTTP URL has no handshake to blame.
        let what = if e.is_connect() {
            "connection"
        } else if url.scheme() == "https" {
            "TLS handshake or response"
        } else {
            "response"
        };
        return Reason::new(
            ReasonKind::Timeout,
            format!(
                "{url}: timed out waiting for the {what} (timeout {})",
                secs(timeout)
            ),
        );
    }
    let io = chain(e)
        .filter_map(|s| s.downcast_ref::<std::io::Error>())
        .last();
    if let Some(io) = io.filter(|io| io.kind() != std::io::ErrorKind::TimedOut) {
        return io_reason(io, url.as_str());
    }
    let detail = chain(e)
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    Reason::new(ReasonKind::Io, format!("{url}: {detail}"))
}

/// One HTTP exchange whose body was read, up to a cap.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, at most the cap.
    pub body: Vec<u8>,
    /// True when the body was longer than the cap (the rest was not read).
    pub truncated: bool,
    /// Time from sending the request to the response head.
    pub elapsed: Duration,
}

/// The default cap on response bodies read by the behaviour probes.
pub const BODY_CAP: usize = 64 * 1024;

/// Send one request with an optional body and read the response body up to `body_cap` bytes,
/// all within the request deadline.
pub async fn exchange(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Duration,
    body_cap: usize,
) -> Result<Exchange, FetchError> {
    let deadline = request_deadline(timeout) + Duration::from_millis(250);
    let started = tokio::time::Instant::now();
    let mut request = client.request(method, url.clone()).headers(headers);
    if let Some(body) = body {
        request = request.body(body);
    }
    let work = async {
        let mut resp = request.send().await.map_err(|e| FetchError {
            before_connect: e.is_connect() && !has_tls_error(&e),
            reason: classify(&e, url, timeout),
        })?;
        let elapsed = started.elapsed();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        let mut truncated = false;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = body_cap.saturating_sub(body.len());
                    body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                    if chunk.len() > room {
                        truncated = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(FetchError {
                        before_connect: false,
                        reason: classify(&e, url, timeout),
                    });
                }
            }
        }
        Ok(Exchange {
            status,
            headers,
            body,
            truncated,
            elapsed,
        })
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(result) => result,
        Err(_) => Err(FetchError {
            before_connect: false,
            reason: Reason::new(
                ReasonKind::Timeout,
                format!("{url}: no complete response within {}", secs(deadline)),
            ),
        }),
    }
}

impl Exchange {
    /// The Location header, as text.
    pub fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
    }

    /// Replace every occurrence of each secret (4 bytes or longer) in the body and in header
    /// values with `[REDACTED]`, before anything else reads the answer: a server that echoes a
    /// credential back cannot get it into evidence, whole or cut.
    pub fn scrub(&mut self, secrets: &[&str]) {
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
        if secrets.is_empty() {
            return;
        }
        for s in &secrets {
            self.body = replace_bytes(&self.body, s.as_bytes(), b"[REDACTED]");
        }
        let mut cleaned = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let mut bytes = value.as_bytes().to_vec();
            for s in &secrets {
                bytes = replace_bytes(&bytes, s.as_bytes(), b"[REDACTED]");
            }
            if let Ok(v) = reqwest::header::HeaderValue::from_bytes(&bytes) {
                cleaned.append(name.clone(), v);
            }
        }
        self.headers = cleaned;
    }
}

/// `haystack` with every `needle` replaced (byte-wise, left to right, non-overlapping).
fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(with);
            rest = rest.get(needle.len()..).unwrap_or_default();
        } else {
            out.extend_from_slice(rest.get(..1).unwrap_or_default());
            rest = rest.get(1..).unwrap_or_default();
        }
    }
    out
}

/// A `(connection, permit)` pair as `(permit, connection)`, for `let (_permit, stream) = …`:
/// bindings are dropped in reverse order, so the permit, bound first, is released only after
/// the connection is closed, and the per-host limit never sees one connection too many.
pub fn permit_first<S, P>((stream, permit): (S, P)) -> (P, S) {
    (permit, stream)
}

#[cfg(test)]
mod exchange_tests {
    use super::*;

    #[test]
    fn the_http_clients_offer_x25519_and_aes_128_first_and_keep_every_group() {
        let p = http_provider();
        let names: Vec<rustls::NamedGroup> = p.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(names.first(), Some(&rustls::NamedGroup::X25519));
        assert!(
            names.contains(&rustls::NamedGroup::X25519MLKEM768),
            "{names:?}"
        );
        assert_eq!(
            p.kx_groups.len(),
            rustls::crypto::aws_lc_rs::default_provider()
                .kx_groups
                .len()
        );
        assert_eq!(
            p.cipher_suites
                .first()
                .map(rustls::SupportedCipherSuite::suite),
            Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
        );
    }

    #[test]
    fn scrubs_secrets_from_bodies_and_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-echo",
            reqwest::header::HeaderValue::from_static("key=sk-live-123456; other"),
        );
        let mut ex = Exchange {
            status: 200,
            headers,
            body: b"you sent sk-live-123456 and sk-live-123456".to_vec(),
            truncated: false,
            elapsed: Duration::ZERO,
        };
        ex.scrub(&["sk-live-123456", "abc"]);
        assert_eq!(ex.body, b"you sent [REDACTED] and [REDACTED]");
        assert_eq!(ex.headers["x-echo"], "key=[REDACTED]; other");
    }
}
