//! The TLS family's network work: every connection it makes, each under the per-host limit and
//! a timeout on connect, write and every read, with a byte cap on what is read.
//!
//! 1. **Survey** (in parallel): one ClientHello per protocol version (SSL 3.0 to TLS 1.3),
//!    each offering every registry suite valid for it, and one rustls handshake whose verifier
//!    captures the certificate chain. A TLS 1.0 or 1.1 hello that is refused is sent again
//!    without extensions, for stacks that refuse any hello carrying them; the version is then
//!    enumerated that way.
//! 2. **Enumeration** (in parallel, per supported version): testssl.sh's method. Offer many
//!    suites, record the one the server picks, remove it, repeat until the server refuses. The
//!    candidates are split into a few disjoint groups enumerated side by side, so the number of
//!    handshakes is about `accepted + groups` per version; when the groups are done, one more
//!    hello offers everything left, so that a refusal that was a dropped connection or a
//!    hiccup does not cut the list short. Then two hellos with the accepted suites in opposite
//!    orders tell whether the server enforces its own order (and, if it does, one more pass
//!    records that order). Alongside: the named groups (TLS 1.3 HelloRetryRequest or TLS 1.2
//!    ServerKeyExchange, again offer-pick-remove), DEFLATE compression, and the DH group sizes
//!    read from each DHE ServerKeyExchange. A server that negotiates finite-field groups (RFC
//!    7919) picks an ffdhe group because the hellos offer them, while ordinary clients get its
//!    configured group: a DHE suite answered with an RFC 7919 prime is asked once more with a
//!    hello that offers none, and the smaller prime counts.
//!
//! 3. **Vulnerability probes** (alongside the enumeration, one connection each): a hello with
//!    TLS_FALLBACK_SCSV one version below the highest; with the highest TLS ≤ 1.2 version, an
//!    overlong heartbeat and two early ChangeCipherSpecs after the server's flight (read by
//!    [`wire::parse_replies`]); and, over TLS 1.2, a renegotiation asked for after a handshake
//!    finished by [`super::tls12`].
//! 4. **ROBOT** (after the enumeration, which tells the RSA key-exchange suites): at most 7
//!    connections, see [`super::robot`].
//!
//! A connection closed without an answer is tried once more before it counts as a refusal.
//! Every distinct leaf certificate seen (rustls, survey and enumeration flights) is judged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::cert::{self, Captured, CapturedOcsp, CapturingVerifier};
use super::registry::{self, GROUPS};
use super::status::{self, Delivered};
use super::wire::{
    self, Answer, Flight, HelloSpec, KeyExchange, Progress, Reply, Version, WireError,
};
use super::{
    Accepted, CertObservation, ClientRenegotiation, EarlyCcs, Fallback, FallbackAnswer, Heartbeat,
    ProtocolState, TlsObservation,
};
use crate::engine::Cx;
use crate::engine::net;
use crate::model::{Reason, ReasonKind};

mod tickets;
mod v2;

/// What one ClientHello got back.
#[derive(Clone, Debug)]
pub enum Exchange {
    /// A parsed answer.
    Answer(Answer),
    /// The server closed or reset the connection without sending a byte.
    Closed(&'static str),
    /// No usable answer (timeout, malformed bytes, connect failure).
    Failed(Reason),
}

/// A connection whose ClientHello was answered, with its per-host permit.
pub type Conn = (
    tokio::net::TcpStream,
    Option<tokio::sync::OwnedSemaphorePermit>,
);

/// A hello answered on a connection kept open.
pub struct Kept {
    /// The answer.
    pub answer: Answer,
    /// The connection.
    pub conn: Conn,
    /// The ClientHello record sent.
    pub hello: Vec<u8>,
    /// Every byte received (the answer's records).
    pub received: Vec<u8>,
}

/// What came back after a follow-up write on an answered connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowUp {
    /// The records received, in order.
    pub replies: Vec<Reply>,
    /// How the reading ended.
    pub end: End,
}

/// How reading a follow-up answer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The caller's test said the answer was decided.
    Decided,
    /// The server closed or reset the connection.
    Closed,
    /// Nothing more came within the timeout.
    Silent,
}

/// PostgreSQL's SSLRequest (protocol 1234.5679): the server answers one byte, `S` when a TLS
/// handshake may follow on the same connection.
pub const POSTGRES_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Ask a PostgreSQL server to start TLS; an error unless it answers `S` within `timeout`.
async fn postgres_ssl_request(
    stream: &mut tokio::net::TcpStream,
    timeout: Duration,
) -> Result<(), Reason> {
    let doing = "PostgreSQL SSLRequest";
    match tokio::time::timeout(timeout, stream.write_all(&POSTGRES_SSL_REQUEST)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(net::io_reason(&e, doing)),
        Err(_) => {
            return Err(Reason::new(
                ReasonKind::Timeout,
                format!("{doing}: timed out after {}", net::secs(timeout)),
            ));
        }
    }
    let mut answer = [0u8; 1];
    match tokio::time::timeout(timeout, stream.read(&mut answer)).await {
        Ok(Ok(1)) if answer == *b"S" => Ok(()),
        Ok(Ok(1)) => Err(Reason::new(
            ReasonKind::Tls,
            format!(
                "{doing}: the server answered {:?} instead of S (no TLS)",
                char::from(answer[0])
            ),
        )),
        Ok(Ok(_)) => Err(Reason::new(
            ReasonKind::Reset,
            format!("{doing}: the server closed the connection"),
        )),
        Ok(Err(e)) => Err(net::io_reason(&e, doing)),
        Err(_) => Err(Reason::new(
            ReasonKind::Timeout,
            format!("{doing}: no answer within {}", net::secs(timeout)),
        )),
    }
}

/// Groups of candidates enumerated side by side for one TLS ≤ 1.2 version.
const CHUNKS: usize = 4;

/// Connections to one target.
pub struct Prober<'a> {
    cx: &'a Cx<'a>,
    addrs: Vec<SocketAddr>,
    pub(super) host: String,
    sni: Option<String>,
    pub(super) timeout: Duration,
    /// Send PostgreSQL's SSLRequest first on every connection (a derived target of a
    /// PostgreSQL port that answered `S`).
    postgres: bool,
    handshakes: AtomicU32,
    connected: AtomicU32,
    /// Versions refused with extensions and accepted without (set by the survey).
    intolerant: std::sync::Mutex<Vec<Version>>,
}

impl<'a> Prober<'a> {
    /// A prober for `target` on `port`.
    pub fn new(cx: &'a Cx<'a>, port: u16) -> Prober<'a> {
        let target = cx.target();
        let host = target.target.host();
        let sni = target.target.ip_literal().is_none().then(|| host.clone());
        Prober {
            cx,
            addrs: target
                .addrs
                .iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect(),
            host,
            sni,
            timeout: cx.settings().timeout,
            postgres: target.target.postgres_tls,
            handshakes: AtomicU32::new(0),
            connected: AtomicU32::new(0),
            intolerant: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// One TCP connection to the target's TLS port, through the scan's facade (the per-host
    /// permit, held as long as the returned permit lives, pacing, the request budget).
    pub async fn connect(
        &self,
    ) -> Result<
        (
            tokio::net::TcpStream,
            Option<tokio::sync::OwnedSemaphorePermit>,
        ),
        Reason,
    > {
        let (mut stream, permit) = self.cx.connect(&self.host, &self.addrs).await?;
        if self.postgres {
            postgres_ssl_request(&mut stream, self.timeout).await?;
        }
        Ok((stream, permit))
    }

    fn intolerant(&self, version: Version) -> bool {
        match self.intolerant.lock() {
            Ok(v) => v.contains(&version),
            Err(poisoned) => poisoned.into_inner().contains(&version),
        }
    }

    pub(super) fn spec<'s>(
        &'s self,
        version: Version,
        suites: &'s [u16],
        groups: &'s [u16],
    ) -> HelloSpec<'s> {
        HelloSpec {
            version,
            suites,
            groups,
            x25519_share: true,
            sni: self.sni.as_deref(),
            deflate: false,
            extensions: !self.intolerant(version),
            fallback_scsv: false,
            heartbeat: false,
            renegotiation_info: None,
            status: false,
        }
    }

    /// Send one ClientHello and read the answer. `full`: read a TLS ≤ 1.2 flight to its end.
    /// A connection closed without a byte is tried once more (a server that drops one
    /// connection must not cut an enumeration short); closed twice is a refusal.
    pub async fn exchange(&self, spec: &HelloSpec<'_>, full: bool) -> Exchange {
        match self.exchange_once(spec, full).await {
            Exchange::Closed(_) => self.exchange_once(spec, full).await,
            other => other,
        }
    }

    async fn exchange_once(&self, spec: &HelloSpec<'_>, full: bool) -> Exchange {
        match self.hello_kept(spec, full).await {
            Ok(kept) => Exchange::Answer(kept.answer),
            Err(other) => other,
        }
    }

    /// Send one ClientHello and read the answer, keeping the connection open for what the
    /// caller sends next (see [`Prober::follow_up`]); the error is what [`Prober::exchange`]
    /// would have returned.
    pub(super) async fn hello_kept(
        &self,
        spec: &HelloSpec<'_>,
        full: bool,
    ) -> Result<Kept, Exchange> {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        let mut random = [0u8; 96];
        if aws_lc_rs::rand::fill(&mut random).is_err() {
            return Err(Exchange::Failed(Reason::new(
                ReasonKind::Bug,
                "no randomness",
            )));
        }
        let hello = wire::client_hello(spec, &random);
        let deadline = Instant::now() + net::request_deadline(self.timeout);
        let (permit, mut stream) = match self.connect().await {
            Ok(s) => net::permit_first(s),
            Err(r) => return Err(Exchange::Failed(r)),
        };
        self.connected.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        match tokio::time::timeout(self.timeout, stream.write_all(&hello)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if is_reset(&e) => return Err(Exchange::Closed("reset the connection")),
            Ok(Err(e)) => return Err(Exchange::Failed(net::io_reason(&e, &self.doing(spec)))),
            Err(_) => return Err(Exchange::Failed(self.timed_out(spec))),
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        // Incremental: each read costs the records it completes, not a parse of all so far.
        let mut parser = wire::AnswerParser::new(full);
        loop {
            let wait = self
                .timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let read = tokio::time::timeout(wait, stream.read(&mut chunk)).await;
            let (bytes, eof) = match read {
                Err(_) => return Err(Exchange::Failed(self.timed_out(spec))),
                Ok(Ok(0)) => (0, true),
                Ok(Ok(n)) => (n, false),
                Ok(Err(e)) if is_reset(&e) => (0, true),
                Ok(Err(e)) => return Err(Exchange::Failed(net::io_reason(&e, &self.doing(spec)))),
            };
            if eof && buf.is_empty() {
                return Err(Exchange::Closed("closed the connection"));
            }
            buf.extend_from_slice(chunk.get(..bytes).unwrap_or_default());
            if buf.len() > wire::MAX_FLIGHT {
                return Err(Exchange::Failed(wire_reason(
                    &WireError::FlightTooLarge(wire::MAX_FLIGHT),
                    &self.doing(spec),
                )));
            }
            match parser.advance(&buf, eof) {
                Ok(Progress::Done(answer)) => {
                    return Ok(Kept {
                        answer,
                        conn: (stream, permit),
                        hello,
                        received: buf,
                    });
                }
                Ok(Progress::NeedMore) if !eof => {}
                Ok(Progress::NeedMore) => {
                    return Err(Exchange::Failed(wire_reason(
                        &WireError::Truncated,
                        &self.doing(spec),
                    )));
                }
                Err(e) => return Err(Exchange::Failed(wire_reason(&e, &self.doing(spec)))),
            }
        }
    }

    /// Write `bytes` on a connection whose hello was answered, and read the records that come
    /// back until `enough` says the answer is decided, the server closes, the timeout passes or
    /// [`wire::MAX_REPLIES`] bytes arrived. `doing` names the step for reasons.
    pub async fn follow_up(
        &self,
        conn: Conn,
        bytes: &[u8],
        doing: &str,
        enough: impl Fn(&[Reply]) -> bool,
    ) -> Result<FollowUp, Reason> {
        let (_permit, mut stream) = crate::engine::net::permit_first(conn);
        let deadline = Instant::now() + net::request_deadline(self.timeout);
        match tokio::time::timeout(self.timeout, stream.write_all(bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if is_reset(&e) => {
                return Ok(FollowUp {
                    replies: Vec::new(),
                    end: End::Closed,
                });
            }
            Ok(Err(e)) => return Err(net::io_reason(&e, doing)),
            Err(_) => {
                return Err(Reason::new(
                    ReasonKind::Timeout,
                    format!("{doing}: write timed out"),
                ));
            }
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        let mut replies = Vec::new();
        let mut total = 0usize;
        loop {
            let wait = self
                .timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let (bytes, eof) = match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
                Err(_) => {
                    return Ok(FollowUp {
                        replies,
                        end: End::Silent,
                    });
                }
                Ok(Ok(0)) => (0, true),
                Ok(Ok(n)) => (n, false),
                Ok(Err(e)) if is_reset(&e) => (0, true),
                Ok(Err(e)) => return Err(net::io_reason(&e, doing)),
            };
            total += bytes;
            if total > wire::MAX_REPLIES {
                return Err(wire_reason(
                    &WireError::FlightTooLarge(wire::MAX_REPLIES),
                    doing,
                ));
            }
            buf.extend_from_slice(chunk.get(..bytes).unwrap_or_default());
            let (more, used) = wire::parse_replies(&buf).map_err(|e| wire_reason(&e, doing))?;
            replies.extend(more);
            buf.drain(..used.min(buf.len()));
            if enough(&replies) {
                return Ok(FollowUp {
                    replies,
                    end: End::Decided,
                });
            }
            if eof {
                if !buf.is_empty() {
                    return Err(wire_reason(&WireError::Truncated, doing));
                }
                return Ok(FollowUp {
                    replies,
                    end: End::Closed,
                });
            }
        }
    }

    fn doing(&self, spec: &HelloSpec<'_>) -> String {
        format!(
            "{} ClientHello to {}",
            spec.version,
            self.addrs
                .first()
                .map_or_else(String::new, ToString::to_string)
        )
    }

    fn timed_out(&self, spec: &HelloSpec<'_>) -> Reason {
        Reason::new(
            ReasonKind::Timeout,
            format!(
                "{}: no complete answer within the timeout ({})",
                self.doing(spec),
                net::secs(self.timeout)
            ),
        )
    }

    /// One full rustls handshake (TLS 1.2/1.3) that captures the presented chain and the
    /// stapled OCSP response (rustls always asks for one).
    async fn rustls_chain(&self) -> Result<(Vec<CertificateDer<'static>>, Delivered), Reason> {
        let captured: Captured = Arc::default();
        let ocsp: CapturedOcsp = Arc::default();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Reason::new(ReasonKind::Bug, e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(
                CapturingVerifier::new(captured.clone()).with_ocsp(ocsp.clone()),
            ))
            .with_no_client_auth();
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| Reason::new(ReasonKind::Bug, format!("{}: {e}", self.host)))?;
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        let (_permit, stream) = crate::engine::net::permit_first(self.connect().await?);
        self.connected.fetch_add(1, Ordering::Relaxed);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let outcome = tokio::time::timeout(self.timeout, connector.connect(name, stream)).await;
        let chain = match captured.lock() {
            Ok(mut c) => c.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(chain) = chain {
            let staple = match ocsp.lock() {
                Ok(mut s) => s.take(),
                Err(poisoned) => poisoned.into_inner().take(),
            };
            return Ok((
                chain,
                Delivered {
                    asked_staple: true,
                    staple,
                    sct_extension: None,
                },
            ));
        }
        let doing = format!("TLS handshake with {}", self.host);
        Err(match outcome {
            Err(_) => Reason::new(
                ReasonKind::Timeout,
                format!("{doing} timed out after {}", net::secs(self.timeout)),
            ),
            Ok(Err(e)) => match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(tls) => Reason::new(ReasonKind::Tls, format!("{doing} failed: {tls}")),
                None => net::io_reason(&e, &doing),
            },
            Ok(Ok(_)) => Reason::new(ReasonKind::Bug, format!("{doing}: no certificate captured")),
        })
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof
    )
}

pub(super) fn wire_reason(e: &WireError, doing: &str) -> Reason {
    let kind = match e {
        WireError::RecordTooLarge(_)
        | WireError::MessageTooLarge(_)
        | WireError::FlightTooLarge(_) => ReasonKind::TooLarge,
        _ => ReasonKind::Malformed,
    };
    Reason::new(kind, format!("{doing}: {e}"))
}

/// The answer to a version probe, judged.
fn version_state(version: Version, ex: &Exchange) -> ProtocolState {
    match ex {
        Exchange::Answer(Answer::Hello(f)) if f.hello.version == version.wire() => {
            ProtocolState::Supported
        }
        Exchange::Answer(Answer::Hello(f)) => ProtocolState::Refused(format!(
            "answered with {} instead",
            Version::from_wire(f.hello.version).map_or("another version", Version::name)
        )),
        Exchange::Answer(Answer::Alert { description, .. }) => {
            ProtocolState::Refused(format!("alert {}", wire::alert_name(*description)))
        }
        Exchange::Closed(how) => ProtocolState::Refused((*how).to_string()),
        Exchange::Failed(r) => ProtocolState::Unknown(r.clone()),
    }
}

/// Probe everything the rules need.
pub async fn observe(cx: &Cx<'_>, port: u16, now: i64) -> TlsObservation {
    let p = Prober::new(cx, port);
    let all_groups: Vec<u16> = GROUPS.iter().map(|(c, _)| *c).collect();
    let candidates: BTreeMap<Version, Vec<u16>> = Version::ALL
        .into_iter()
        .map(|v| (v, registry::candidates(v)))
        .collect();

    // 1. Survey.
    let surveys = futures::future::join_all(Version::ALL.into_iter().map(|v| {
        let p = &p;
        let suites = candidates.get(&v).map_or(&[][..], Vec::as_slice);
        let groups = &all_groups;
        async move {
            let mut spec = p.spec(v, suites, groups);
            // A staple and SCTs come in the plaintext flight of TLS 1.0 to 1.2.
            spec.status = v != Version::Ssl3 && v <= Version::Tls12;
            (v, p.exchange(&spec, true).await)
        }
    }));
    let (surveys, rustls_chain) = futures::join!(surveys, p.rustls_chain());
    let mut surveys: BTreeMap<Version, Exchange> = surveys.into_iter().collect();
    let mut protocols: BTreeMap<Version, ProtocolState> = surveys
        .iter()
        .map(|(v, ex)| (*v, version_state(*v, ex)))
        .collect();
    // Extension-intolerant stacks: a refused TLS 1.0 or 1.1, once more without extensions.
    let retries = futures::future::join_all(
        [Version::Tls10, Version::Tls11]
            .into_iter()
            .filter(|v| matches!(protocols.get(v), Some(ProtocolState::Refused(_))))
            .map(|v| {
                let p = &p;
                let suites = candidates.get(&v).map_or(&[][..], Vec::as_slice);
                let groups = &all_groups;
                async move {
                    let mut spec = p.spec(v, suites, groups);
                    spec.extensions = false;
                    (v, p.exchange(&spec, true).await)
                }
            }),
    )
    .await;
    for (v, ex) in retries {
        if version_state(v, &ex) == ProtocolState::Supported {
            match p.intolerant.lock() {
                Ok(mut list) => list.push(v),
                Err(poisoned) => poisoned.into_inner().push(v),
            }
            protocols.insert(v, ProtocolState::Supported);
            surveys.insert(v, ex);
        }
    }
    let answered = surveys.values().any(|ex| matches!(ex, Exchange::Answer(_)));
    let protocols_error = if answered {
        None
    } else {
        let reason = surveys
            .values()
            .find_map(|ex| match ex {
                Exchange::Failed(r) => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_else(|| {
                Reason::new(
                    ReasonKind::Reset,
                    format!(
                        "{}:{port} closed the connection after every ClientHello without answering",
                        p.host
                    ),
                )
            });
        for state in protocols.values_mut() {
            *state = ProtocolState::Unknown(reason.clone());
        }
        Some(reason)
    };
    let supported: Vec<Version> = protocols
        .iter()
        .filter(|(_, s)| matches!(s, ProtocolState::Supported))
        .map(|(v, _)| *v)
        .collect();
    let legacy_top = supported
        .iter()
        .rev()
        .copied()
        .find(|v| *v <= Version::Tls12);
    let legacy_flight: Option<&Flight> = legacy_top.and_then(|v| match surveys.get(&v) {
        Some(Exchange::Answer(Answer::Hello(f))) => Some(f),
        _ => None,
    });

    // 2. Enumeration, groups and compression, side by side.
    let enumerations = futures::future::join_all(supported.iter().map(|v| {
        let p = &p;
        let cands = candidates.get(v).cloned().unwrap_or_default();
        let groups = &all_groups;
        async move { (*v, enumerate(p, *v, cands, groups).await) }
    }));
    let compression = async {
        let v = legacy_top?;
        let suites = candidates.get(&v).cloned().unwrap_or_default();
        let mut spec = p.spec(v, &suites, &all_groups);
        spec.deflate = true;
        Some(match p.exchange(&spec, false).await {
            Exchange::Answer(Answer::Hello(f)) => Ok(f.hello.compression == 1),
            Exchange::Answer(Answer::Alert { .. }) | Exchange::Closed(_) => Ok(false),
            Exchange::Failed(r) => Err(r),
        })
    };
    let groups = enumerate_groups(&p, &supported, &all_groups);
    let fallback = probe_fallback(&p, &supported, &all_groups);
    let heartbeat = async {
        let v = legacy_top?;
        Some(probe_heartbleed(&p, v, &all_groups).await)
    };
    let early_ccs = async {
        let v = legacy_top?;
        Some(probe_early_ccs(&p, v, &all_groups).await)
    };
    let client_renegotiation = async {
        Some(match legacy_top? {
            Version::Tls12 => probe_client_renegotiation(&p).await,
            v => Err(Reason::new(
                ReasonKind::Tls,
                format!(
                    "the renegotiation probe speaks TLS 1.2 only, and the server's best version up to TLS 1.2 is {v}"
                ),
            )),
        })
    };
    let sslv2 = v2::probe_sslv2(&p);
    let ticketbleed = async {
        Some(match legacy_top? {
            Version::Tls12 => tickets::probe_ticketbleed(&p).await,
            v => Err(Reason::new(
                ReasonKind::Tls,
                format!(
                    "the Ticketbleed probe speaks TLS 1.2 only, and the server's best version up to TLS 1.2 is {v}"
                ),
            )),
        })
    };
    let (
        (enumerations, compression, groups, fallback, heartbeat, early_ccs, client_renegotiation),
        (sslv2, ticketbleed),
    ) = futures::join!(
        async {
            futures::join!(
                enumerations,
                compression,
                groups,
                fallback,
                heartbeat,
                early_ccs,
                client_renegotiation
            )
        },
        async { futures::join!(sslv2, ticketbleed) }
    );
    let mut suites: BTreeMap<Version, Result<Accepted, Reason>> = BTreeMap::new();
    let mut dh_bits: BTreeMap<u16, u32> = BTreeMap::new();
    let mut dh_error = None;
    let mut chains = Chains::default();
    // The certificate a modern client gets first, then those of the TLS ≤ 1.2 flights.
    let rustls_error = match rustls_chain {
        Ok((c, delivered)) => {
            chains.add(c, delivered, || "rustls handshake".to_string());
            None
        }
        Err(r) => Some(r),
    };
    for v in supported.iter().rev() {
        if let Some(Exchange::Answer(Answer::Hello(f))) = surveys.get(v) {
            // The hello asked for a staple and SCTs unless it went without extensions.
            let asked = *v != Version::Ssl3 && *v <= Version::Tls12 && !p.intolerant(*v);
            let delivered = if asked {
                Delivered {
                    asked_staple: true,
                    staple: f.certificate_status.as_deref().and_then(stapled_response),
                    sct_extension: Some(f.hello.sct_list.clone()),
                }
            } else {
                Delivered::default()
            };
            chains.add_der(&f.certificates, delivered, || format!("{v} handshake"));
        }
    }
    for (v, result) in enumerations {
        if let Ok(found) = &result {
            for (suite, kx) in &found.kex {
                if let KeyExchange::Dh { prime_bits, .. } = kx {
                    let e = dh_bits.entry(*suite).or_insert(*prime_bits);
                    *e = (*e).min(*prime_bits);
                }
            }
            for (suite, der) in &found.chains {
                chains.add_der(der, Delivered::default(), || {
                    format!("{v} handshake ({})", registry::suite_name(*suite))
                });
            }
            if dh_error.is_none() {
                dh_error = found.dh_error.clone();
            }
        }
        suites.insert(v, result.map(|f| f.accepted));
    }
    // Every leaf's key (DROWN), or none when one does not parse: a partial list could pass.
    let keys: Vec<String> = chains
        .list
        .iter()
        .map(|(chain, ..)| chain.first().and_then(|l| super::drown::spki_sha256(l)))
        .collect::<Option<Vec<String>>>()
        .map(|mut keys| {
            keys.sort_unstable();
            keys.dedup();
            keys
        })
        .unwrap_or_default();
    // 4. ROBOT, once the RSA key-exchange suites are known.
    let robot = super::robot::probe(&p, &suites, &all_groups).await;
    let ct_private_ca = cx.options::<super::options::TlsOptions>().ct_private_ca;
    let certs: Vec<Result<CertObservation, Reason>> = if chains.list.is_empty() {
        vec![Err(rustls_error.unwrap_or_else(|| {
            Reason::new(ReasonKind::Bug, "no certificate captured")
        }))]
    } else {
        chains
            .list
            .into_iter()
            .map(|(chain, source, delivered)| {
                let roots = &cx.settings().ca_certs;
                let der = chain.clone();
                cert::judge_chain(chain, source, &p.host, now, roots).map(|mut c| {
                    c.status = status::gather(
                        &der,
                        &c.chain,
                        &c.trust,
                        delivered,
                        roots,
                        now,
                        ct_private_ca,
                    );
                    c
                })
            })
            .collect()
    };

    let renegotiation = legacy_flight.map(|f| Ok(f.hello.renegotiation_info));
    TlsObservation {
        host: p.host.clone(),
        port,
        now,
        expiry_days: cx.options::<super::options::TlsOptions>().cert_expiry_days,
        profile: cx.settings().profile.clone(),
        certs,
        protocols,
        protocols_error,
        suites,
        groups,
        dh_bits,
        dh_error,
        compression,
        renegotiation,
        fallback,
        heartbeat,
        early_ccs,
        client_renegotiation,
        sslv2,
        ticketbleed,
        keys,
        robot,
        handshakes: p.handshakes.load(Ordering::Relaxed),
        connected: p.connected.load(Ordering::Relaxed),
    }
}

/// Most distinct certificate chains judged for one target.
const MAX_CHAINS: usize = 8;

/// The distinct chains seen, by leaf, in the order they were first seen.
#[derive(Default)]
struct Chains {
    /// Each chain, where it was first seen, and what the handshakes with its leaf delivered
    /// besides (a staple, SCTs).
    list: Vec<(Vec<CertificateDer<'static>>, String, Delivered)>,
}

impl Chains {
    fn add(
        &mut self,
        chain: Vec<CertificateDer<'static>>,
        delivered: Delivered,
        source: impl FnOnce() -> String,
    ) {
        let Some(leaf) = chain.first() else {
            return;
        };
        let seen = self
            .list
            .iter()
            .position(|(c, _, _)| c.first().is_some_and(|l| l.as_ref() == leaf.as_ref()));
        if let Some((_, _, d)) = seen.and_then(|i| self.list.get_mut(i)) {
            d.merge(delivered);
        } else if seen.is_none() && self.list.len() < MAX_CHAINS {
            self.list.push((chain, source(), delivered));
        }
    }

    fn add_der(
        &mut self,
        chain: &[Vec<u8>],
        delivered: Delivered,
        source: impl FnOnce() -> String,
    ) {
        if chain.is_empty() {
            return;
        }
        self.add(
            chain
                .iter()
                .map(|d| CertificateDer::from(d.clone()))
                .collect(),
            delivered,
            source,
        );
    }
}

/// The OCSP response of a CertificateStatus message body (RFC 6066 §8: `status_type` ocsp,
/// then a u24-length response), kept as sent when the framing is wrong so that the response
/// judgement reports it (none for an empty response).
fn stapled_response(body: &[u8]) -> Option<Vec<u8>> {
    match body {
        [1, a, b, c, rest @ ..]
            if usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c) == rest.len() =>
        {
            (!rest.is_empty()).then(|| rest.to_vec())
        }
        other => Some(other.to_vec()),
    }
}

/// What the enumeration of one version found.
struct Found {
    accepted: Accepted,
    /// The key exchange seen with each accepted suite (TLS ≤ 1.2; a DHE suite may appear twice:
    /// with and without the RFC 7919 groups offered).
    kex: Vec<(u16, KeyExchange)>,
    /// The distinct certificate chains of the flights, with a suite that got each.
    chains: Vec<(u16, Vec<Vec<u8>>)>,
    /// Why a DH group size could not be checked.
    dh_error: Option<Reason>,
}

/// What one offer-pick-remove run found.
#[derive(Default)]
struct Run {
    /// The suites picked, in order.
    order: Vec<u16>,
    kex: Vec<(u16, KeyExchange)>,
    chains: Vec<(u16, Vec<Vec<u8>>)>,
    /// What the server refused.
    remaining: Vec<u16>,
}

impl Run {
    fn absorb(&mut self, other: Run) {
        self.order.extend(other.order);
        self.kex.extend(other.kex);
        for (suite, chain) in other.chains {
            add_chain(&mut self.chains, suite, chain);
        }
        self.remaining.extend(other.remaining);
    }
}

fn add_chain(chains: &mut Vec<(u16, Vec<Vec<u8>>)>, suite: u16, chain: Vec<Vec<u8>>) {
    let leaf = chain.first();
    if leaf.is_some() && chains.len() < MAX_CHAINS && !chains.iter().any(|(_, c)| c.first() == leaf)
    {
        chains.push((suite, chain));
    }
}

/// Every suite `version` accepts, and whether the server imposes its order.
async fn enumerate(
    p: &Prober<'_>,
    version: Version,
    candidates: Vec<u16>,
    groups: &[u16],
) -> Result<Found, Reason> {
    let chunks = if version == Version::Tls13 { 1 } else { CHUNKS };
    let mut parts: Vec<Vec<u16>> = vec![Vec::new(); chunks];
    for (i, c) in candidates.into_iter().enumerate() {
        if let Some(part) = parts.get_mut(i % chunks) {
            part.push(c);
        }
    }
    let runs = futures::future::join_all(
        parts
            .into_iter()
            .map(|part| offer_pick_remove(p, version, part, groups)),
    )
    .await;
    let mut all = Run::default();
    for run in runs {
        all.absorb(run?);
    }
    // Confirm the refusals: offer everything left at once until a fresh connection refuses it
    // straight away (bounded: a round that goes on picks a suite).
    while !all.remaining.is_empty() {
        let left = std::mem::take(&mut all.remaining);
        let run = offer_pick_remove(p, version, left, groups).await?;
        let picked = !run.order.is_empty();
        all.absorb(run);
        if !picked {
            break;
        }
    }
    let dh_error = if version == Version::Tls13 {
        None
    } else {
        plain_dh(p, version, groups, &mut all.kex).await
    };
    let Run {
        order: picked,
        kex,
        chains,
        ..
    } = all;
    let mut picked = picked;
    picked.sort_unstable();
    let mut accepted = Accepted {
        suites: picked.clone(),
        server_order: None,
    };
    if picked.len() >= 2 {
        let reversed: Vec<u16> = picked.iter().rev().copied().collect();
        let first = pick(p, version, &picked, groups).await?;
        let second = pick(p, version, &reversed, groups).await?;
        let enforced = first.is_some() && first == second;
        accepted.server_order = Some(enforced);
        if enforced {
            let run = offer_pick_remove(p, version, picked, groups).await?;
            if run.order.len() == accepted.suites.len() {
                accepted.suites = run.order;
            }
        }
    }
    Ok(Found {
        accepted,
        kex,
        chains,
        dh_error,
    })
}

/// The DHE suites whose group must be asked for again without the RFC 7919 groups offered:
/// those answered with an RFC 7919 prime (a server that negotiates groups may have picked it
/// only because the hello offered it; any other prime is the server's own choice).
pub fn needs_plain_dh(kex: &[(u16, KeyExchange)]) -> Vec<u16> {
    let mut out: Vec<u16> = kex
        .iter()
        .filter(|(_, k)| matches!(k, KeyExchange::Dh { ffdhe: Some(_), .. }))
        .map(|(s, _)| *s)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// For each suite of [`needs_plain_dh`], one hello offering it with the named groups minus the
/// finite-field ones; the key exchange seen is added to `kex` (the smaller prime counts).
async fn plain_dh(
    p: &Prober<'_>,
    version: Version,
    groups: &[u16],
    kex: &mut Vec<(u16, KeyExchange)>,
) -> Option<Reason> {
    let no_ffdhe: Vec<u16> = groups
        .iter()
        .copied()
        .filter(|g| !registry::is_ffdhe(*g))
        .collect();
    let asks = needs_plain_dh(kex);
    let answers = futures::future::join_all(asks.iter().map(|suite| {
        let no_ffdhe = &no_ffdhe;
        async move {
            let offered = [*suite];
            let ex = p.exchange(&p.spec(version, &offered, no_ffdhe), true).await;
            (*suite, ex)
        }
    }))
    .await;
    let mut error = None;
    for (suite, ex) in answers {
        match ex {
            Exchange::Answer(Answer::Hello(f)) if f.hello.suite == suite => {
                if let (Some(layout), Some(body)) = (
                    registry::suite(suite).and_then(registry::Suite::ske_layout),
                    &f.server_key_exchange,
                ) && let Ok(k) = wire::parse_key_exchange(body, layout)
                {
                    kex.push((suite, k));
                }
            }
            // Refused without the RFC 7919 groups: such clients get no DHE at all.
            Exchange::Answer(_) | Exchange::Closed(_) => {}
            Exchange::Failed(r) => {
                error.get_or_insert(r);
            }
        }
    }
    error
}

/// The suite the server picks from `offered`, if it accepts one.
async fn pick(
    p: &Prober<'_>,
    version: Version,
    offered: &[u16],
    groups: &[u16],
) -> Result<Option<u16>, Reason> {
    match p.exchange(&p.spec(version, offered, groups), false).await {
        Exchange::Answer(Answer::Hello(f)) if offered.contains(&f.hello.suite) => {
            Ok(Some(f.hello.suite))
        }
        Exchange::Failed(r) => Err(r),
        _ => Ok(None),
    }
}

/// Offer `remaining`, record the pick, remove it, repeat until the server refuses. Returns the
/// picks in order, the key exchange seen with each and the certificate chains (TLS ≤ 1.2), and
/// what was refused.
async fn offer_pick_remove(
    p: &Prober<'_>,
    version: Version,
    mut remaining: Vec<u16>,
    groups: &[u16],
) -> Result<Run, Reason> {
    let mut run = Run::default();
    let full = version != Version::Tls13;
    // Bounded: each round removes one suite.
    while !remaining.is_empty() {
        let ex = p.exchange(&p.spec(version, &remaining, groups), full).await;
        let flight = match ex {
            Exchange::Answer(Answer::Hello(f)) => f,
            Exchange::Answer(Answer::Alert { .. }) | Exchange::Closed(_) => break,
            Exchange::Failed(r) => return Err(r),
        };
        let expected = if version == Version::Tls13 {
            flight.hello.version == 0x0304
        } else {
            flight.hello.version == version.wire()
        };
        if !expected || !remaining.contains(&flight.hello.suite) {
            // A suite that was not offered, or another version: not an acceptance.
            break;
        }
        let suite = flight.hello.suite;
        if let (Some(layout), Some(body)) = (
            registry::suite(suite).and_then(registry::Suite::ske_layout),
            &flight.server_key_exchange,
        ) && let Ok(k) = wire::parse_key_exchange(body, layout)
        {
            run.kex.push((suite, k));
        }
        add_chain(&mut run.chains, suite, flight.certificates);
        run.order.push(suite);
        remaining.retain(|c| *c != suite);
    }
    run.remaining = remaining;
    Ok(run)
}

/// The named groups the server accepts: through HelloRetryRequest with TLS 1.3, else through
/// the ServerKeyExchange of ECDHE suites with the highest TLS ≤ 1.2 version. Offer the groups,
/// record the one the server selects, remove it, repeat.
async fn enumerate_groups(
    p: &Prober<'_>,
    supported: &[Version],
    all: &[u16],
) -> Option<Result<Vec<u16>, Reason>> {
    let (version, offered_suites, mut remaining): (Version, Vec<u16>, Vec<u16>) =
        if supported.contains(&Version::Tls13) {
            (
                Version::Tls13,
                registry::candidates(Version::Tls13),
                all.to_vec(),
            )
        } else {
            let v = supported
                .iter()
                .rev()
                .copied()
                .find(|v| *v <= Version::Tls12)?;
            let ecdhe: Vec<u16> = registry::candidates(v)
                .into_iter()
                .filter(|s| registry::suite(*s).is_some_and(registry::Suite::is_ecdhe))
                .collect();
            let curves = all
                .iter()
                .copied()
                .filter(|g| registry::is_ec_curve(*g))
                .collect();
            (v, ecdhe, curves)
        };
    let mut found = Vec::new();
    while !remaining.is_empty() {
        let mut spec = p.spec(version, &offered_suites, &remaining);
        spec.x25519_share = false;
        let full = version != Version::Tls13;
        let group = match p.exchange(&spec, full).await {
            Exchange::Answer(Answer::Hello(f)) => {
                if version == Version::Tls13 {
                    f.hello.group
                } else {
                    let layout = registry::suite(f.hello.suite)
                        .and_then(registry::Suite::ske_layout)
                        .unwrap_or(wire::SkeLayout::Ecdh);
                    match f
                        .server_key_exchange
                        .as_deref()
                        .map(|b| wire::parse_key_exchange(b, layout))
                    {
                        Some(Ok(KeyExchange::Ecdh { group })) => Some(group),
                        _ => None,
                    }
                }
            }
            Exchange::Answer(Answer::Alert { .. }) | Exchange::Closed(_) => None,
            Exchange::Failed(r) => return Some(Err(r)),
        };
        match group {
            Some(g) if remaining.contains(&g) => {
                found.push(g);
                remaining.retain(|x| *x != g);
            }
            _ => break,
        }
    }
    Some(Ok(found))
}

/// TLS_FALLBACK_SCSV (RFC 7507): one hello at the second-highest accepted version carrying
/// the signal; none with fewer than two versions accepted.
async fn probe_fallback(
    p: &Prober<'_>,
    supported: &[Version],
    groups: &[u16],
) -> Option<Result<Fallback, Reason>> {
    let (&higher, below) = supported.split_last()?;
    let &lower = below.last()?;
    let suites = registry::candidates(lower);
    let mut spec = p.spec(lower, &suites, groups);
    spec.fallback_scsv = true;
    let answer = match p.exchange(&spec, false).await {
        Exchange::Answer(Answer::Hello(f)) if f.hello.version == lower.wire() => {
            if f.hello.downgrade_sentinel && higher == Version::Tls13 {
                FallbackAnswer::Sentinel
            } else {
                FallbackAnswer::Accepted
            }
        }
        Exchange::Answer(Answer::Hello(f)) => FallbackAnswer::Refused(format!(
            "answered with {} instead",
            Version::from_wire(f.hello.version).map_or("another version", Version::name)
        )),
        Exchange::Answer(Answer::Alert { description, .. }) => {
            FallbackAnswer::Refused(format!("alert {}", wire::alert_name(description)))
        }
        Exchange::Closed(how) => FallbackAnswer::Refused(how.to_string()),
        Exchange::Failed(r) => return Some(Err(r)),
    };
    Some(Ok(Fallback {
        lower,
        higher,
        answer,
    }))
}

/// The payload length a heartbeat probe claims while sending none: a few kilobytes, never
/// more (RFC 6520 allows up to 2^14).
pub const HEARTBEAT_CLAIM: u16 = 4096;

/// A hello at `version` that the server must answer, on a connection kept open; what `Err`
/// holds is why the probe cannot go on.
async fn answered(
    p: &Prober<'_>,
    spec: &HelloSpec<'_>,
    what: &str,
) -> Result<Result<(Flight, Conn), Reason>, Reason> {
    Ok(match p.hello_kept(spec, true).await {
        Ok(Kept {
            answer: Answer::Hello(f),
            conn,
            ..
        }) => Ok((f, conn)),
        Ok(Kept {
            answer: Answer::Alert { description, .. },
            ..
        }) => Err(Reason::new(
            ReasonKind::Tls,
            format!(
                "{what}: {} refused with alert {} a hello it accepts otherwise",
                p.host,
                wire::alert_name(description)
            ),
        )),
        Err(Exchange::Closed(how)) => Err(Reason::new(
            ReasonKind::Reset,
            format!(
                "{what}: {} {how} after a hello it accepts otherwise",
                p.host
            ),
        )),
        Err(Exchange::Failed(r)) => return Err(r),
        Err(Exchange::Answer(_)) => return Err(Reason::new(ReasonKind::Bug, what.to_string())),
    })
}

/// Heartbleed (CVE-2014-0160): a hello offering the heartbeat extension; when the server
/// takes it up, after its flight a heartbeat request claiming [`HEARTBEAT_CLAIM`] bytes of
/// payload and carrying none, then a close_notify (so that a server that rightly discards the
/// request closes instead of leaving the probe to its timeout). One connection.
async fn probe_heartbleed(
    p: &Prober<'_>,
    version: Version,
    groups: &[u16],
) -> Result<Heartbeat, Reason> {
    let suites = registry::candidates(version);
    let mut spec = p.spec(version, &suites, groups);
    spec.heartbeat = true;
    let (flight, conn) = match answered(p, &spec, "heartbeat probe").await? {
        Ok(ok) => ok,
        Err(refused) => return Ok(Heartbeat::Ignored(refused.detail)),
    };
    if !flight.hello.extensions.contains(&wire::HEARTBEAT_EXTENSION) {
        return Ok(Heartbeat::NotSupported);
    }
    let [hi, lo] = flight.hello.version.to_be_bytes();
    let [claim_hi, claim_lo] = HEARTBEAT_CLAIM.to_be_bytes();
    let mut bytes = vec![wire::HEARTBEAT_RECORD, hi, lo, 0, 3, 1, claim_hi, claim_lo];
    bytes.extend_from_slice(&[21, hi, lo, 0, 2, 1, 0]);
    let doing = format!("heartbeat request to {}", p.host);
    let got = p
        .follow_up(conn, &bytes, &doing, |r| {
            r.iter()
                .any(|x| matches!(x, Reply::Heartbeat { kind: 2, .. } | Reply::Alert { .. }))
        })
        .await?;
    for reply in &got.replies {
        match reply {
            Reply::Heartbeat {
                kind: 2, body_len, ..
            } if *body_len > 0 => {
                return Ok(Heartbeat::Leaked {
                    claimed: HEARTBEAT_CLAIM,
                    returned: *body_len,
                });
            }
            Reply::Alert { description, .. } => {
                return Ok(Heartbeat::Ignored(format!(
                    "alert {}",
                    wire::alert_name(*description)
                )));
            }
            _ => {}
        }
    }
    match got.end {
        // A server that rightly discards the request still closes after the close_notify.
        End::Silent => Err(Reason::new(
            ReasonKind::Timeout,
            format!(
                "{doing}: no answer to the heartbeat or the close_notify after it within the timeout ({})",
                net::secs(p.timeout)
            ),
        )),
        // Decided without a leak: an empty heartbeat response.
        End::Decided => Ok(Heartbeat::Ignored("an empty heartbeat response".into())),
        End::Closed => Ok(Heartbeat::Ignored("the connection was closed".into())),
    }
}

/// CCS injection (CVE-2014-0224): after the server's flight, two ChangeCipherSpec records and
/// no key exchange. A server that refuses the first says so (unexpected_message) or closes; one
/// that accepted it has switched keys and fails to decrypt the second (bad_record_mac). One
/// connection.
async fn probe_early_ccs(
    p: &Prober<'_>,
    version: Version,
    groups: &[u16],
) -> Result<EarlyCcs, Reason> {
    let suites = registry::candidates(version);
    let spec = p.spec(version, &suites, groups);
    let (flight, conn) = answered(p, &spec, "early ChangeCipherSpec probe").await??;
    let [hi, lo] = flight.hello.version.to_be_bytes();
    let ccs = [20, hi, lo, 0, 1, 1];
    let doing = format!("early ChangeCipherSpec to {}", p.host);
    let got = p
        .follow_up(conn, &[ccs, ccs].concat(), &doing, |r| {
            r.iter()
                .any(|x| !matches!(x, Reply::Other { kind: 20, .. }))
        })
        .await?;
    let first = got
        .replies
        .iter()
        .find(|x| !matches!(x, Reply::Other { kind: 20, .. }));
    match (first, got.end) {
        (Some(Reply::Alert { description, .. }), _) if matches!(description, 20 | 21) => {
            Ok(EarlyCcs::Accepted(format!(
                "it answered the second one with alert {}, so it had switched keys",
                wire::alert_name(*description)
            )))
        }
        (Some(Reply::Alert { description, .. }), _) => Ok(EarlyCcs::Refused(format!(
            "alert {}",
            wire::alert_name(*description)
        ))),
        (Some(Reply::Heartbeat { .. }), _) => Ok(EarlyCcs::Accepted(
            "it went on with a heartbeat record".to_string(),
        )),
        (Some(Reply::Other { kind, .. }), _) => Ok(EarlyCcs::Accepted(format!(
            "it went on with a record of type {kind}"
        ))),
        (None, End::Silent) => Err(Reason::new(
            ReasonKind::Timeout,
            format!(
                "{doing}: no answer within the timeout ({})",
                net::secs(p.timeout)
            ),
        )),
        (None, _) => Ok(EarlyCcs::Refused("it closed the connection".to_string())),
    }
}

/// Read one whole record (type 20 to 23, a 3.x version, at most [`wire::MAX_RECORD`] bytes)
/// from `stream`, keeping what follows it in `buf`; none when the server closes.
async fn read_record(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    timeout: Duration,
    doing: &str,
) -> Result<Option<(u8, Vec<u8>)>, Reason> {
    let mut chunk = vec![0u8; 16 * 1024];
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((kind, body, used)) =
            wire::split_record(buf).map_err(|e| wire_reason(&e, doing))?
        {
            let body = body.to_vec();
            buf.drain(..used);
            return Ok(Some((kind, body)));
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
            Err(_) => {
                return Err(Reason::new(
                    ReasonKind::Timeout,
                    format!(
                        "{doing}: no answer within the timeout ({})",
                        net::secs(timeout)
                    ),
                ));
            }
            Ok(Ok(0)) => {
                return if buf.is_empty() {
                    Ok(None)
                } else {
                    Err(wire_reason(&WireError::Truncated, doing))
                };
            }
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Ok(Err(e)) if is_reset(&e) => return Ok(None),
            Ok(Err(e)) => return Err(net::io_reason(&e, doing)),
        }
    }
}

/// The handshake messages of a server's answer (the bodies of its handshake records; the
/// answer parser has checked the records already).
fn handshake_bytes(received: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Ok(Some((kind, body, used))) =
        wire::split_record(received.get(at..).unwrap_or_default())
    {
        if kind == 22 {
            out.extend_from_slice(body);
        }
        at += used;
    }
    out
}

/// Client-initiated renegotiation: one TLS 1.2 handshake finished with [`super::tls12`]
/// (ECDHE x25519, AES-128-GCM), then one protected ClientHello carrying the Finished
/// verify_data (RFC 5746). A ServerHello back is an acceptance; an alert (no_renegotiation)
/// or a close a refusal. One connection, one attempt.
async fn probe_client_renegotiation(p: &Prober<'_>) -> Result<ClientRenegotiation, Reason> {
    use super::tls12;
    use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
    let doing = format!("renegotiation probe to {}", p.host);
    let cannot = |why: &str| Reason::new(ReasonKind::Tls, format!("{doing}: {why}"));
    let groups = [wire::X25519];
    let spec = p.spec(Version::Tls12, &tls12::SUITES, &groups);
    let kept = match p.hello_kept(&spec, true).await {
        Ok(k) => k,
        Err(Exchange::Failed(r)) => return Err(r),
        Err(_) => {
            return Err(cannot(
                "the server refuses ECDHE x25519 with AES-128-GCM, the only handshake the probe can finish",
            ));
        }
    };
    let Answer::Hello(flight) = &kept.answer else {
        return Err(cannot(
            "the server refuses ECDHE x25519 with AES-128-GCM, the only handshake the probe can finish",
        ));
    };
    let share = flight
        .server_key_exchange
        .as_deref()
        .and_then(tls12::x25519_share);
    let (true, true, Some(share)) = (
        flight.complete && flight.hello.version == Version::Tls12.wire(),
        tls12::SUITES.contains(&flight.hello.suite),
        share,
    ) else {
        return Err(cannot(
            "the server did not answer with a TLS 1.2 ECDHE x25519 AES-128-GCM flight, the only handshake the probe can finish",
        ));
    };
    let client_random = kept.hello.get(11..43).unwrap_or_default().to_vec();
    let mut transcript = kept.hello.get(5..).unwrap_or_default().to_vec();
    transcript.extend(handshake_bytes(&kept.received));
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let bug = |what: &str| Reason::new(ReasonKind::Bug, format!("{doing}: {what}"));
    let private = EphemeralPrivateKey::generate(&X25519, &rng).map_err(|_| bug("key"))?;
    let public = private.compute_public_key().map_err(|_| bug("key"))?;
    let premaster =
        agreement::agree_ephemeral(private, UnparsedPublicKey::new(&X25519, share), (), |k| {
            Ok(k.to_vec())
        })
        .map_err(|()| cannot("the server's x25519 share is invalid"))?;
    let mut cke = vec![16, 0, 0, 33, 32];
    cke.extend_from_slice(public.as_ref());
    transcript.extend_from_slice(&cke);
    let ems = flight.hello.extensions.contains(&0x0017);
    let mut keys = tls12::keys(
        &premaster,
        ems,
        &transcript,
        &client_random,
        &flight.hello.random,
    )
    .ok_or_else(|| bug("keys"))?;
    let verify = tls12::verify_data(&keys.master, b"client finished", &transcript);
    let mut finished = vec![20, 0, 0, 12];
    finished.extend_from_slice(&verify);
    let mut out = vec![22, 3, 3, 0, 37];
    out.extend_from_slice(&cke);
    out.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
    out.extend(keys.client.seal(22, &finished).ok_or_else(|| bug("seal"))?);
    transcript.extend_from_slice(&finished);
    let (_permit, mut stream) = crate::engine::net::permit_first(kept.conn);
    let io = |e: std::io::Error| net::io_reason(&e, &doing);
    match tokio::time::timeout(p.timeout, stream.write_all(&out)).await {
        Ok(r) => r.map_err(io)?,
        Err(_) => {
            return Err(Reason::new(
                ReasonKind::Timeout,
                format!("{doing}: write timed out"),
            ));
        }
    }
    // The server's ChangeCipherSpec and Finished.
    let mut buf = Vec::new();
    let mut done = false;
    for _ in 0..4 {
        match read_record(&mut stream, &mut buf, p.timeout, &doing).await? {
            Some((20, _)) => {}
            Some((22, body)) => {
                let plain = keys.server.open(22, &body).ok_or_else(|| {
                    cannot("the server's Finished does not decrypt: the handshake failed")
                })?;
                let expected = tls12::verify_data(&keys.master, b"server finished", &transcript);
                if plain.get(..4) != Some(&[20, 0, 0, 12][..])
                    || plain.get(4..) != Some(&expected[..])
                {
                    return Err(cannot("the server's Finished does not verify"));
                }
                done = true;
                break;
            }
            Some((21, body)) => {
                return Err(cannot(&format!(
                    "the server ended the handshake with alert {}",
                    wire::alert_name(body.get(1).copied().unwrap_or(0))
                )));
            }
            Some(_) => return Err(cannot("unexpected record before the server's Finished")),
            None => {
                return Err(cannot(
                    "the server closed the connection during the handshake",
                ));
            }
        }
    }
    if !done {
        return Err(cannot("no Finished from the server"));
    }
    // The renegotiation hello, protected.
    let mut random = [0u8; 96];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| bug("randomness"))?;
    let mut again = p.spec(Version::Tls12, &tls12::SUITES, &groups);
    again.renegotiation_info = Some(&verify);
    let hello = wire::client_hello(&again, &random);
    let record = keys
        .client
        .seal(22, hello.get(5..).unwrap_or_default())
        .ok_or_else(|| bug("seal"))?;
    match tokio::time::timeout(p.timeout, stream.write_all(&record)).await {
        Ok(r) => r.map_err(io)?,
        Err(_) => {
            return Err(Reason::new(
                ReasonKind::Timeout,
                format!("{doing}: write timed out"),
            ));
        }
    }
    for _ in 0..8 {
        let Some((kind, body)) = read_record(&mut stream, &mut buf, p.timeout, &doing).await?
        else {
            return Ok(ClientRenegotiation::Refused(
                "it closed the connection".into(),
            ));
        };
        let Some(plain) = keys.server.open(kind, &body) else {
            return Err(cannot(
                "the server's answer to the renegotiation does not decrypt",
            ));
        };
        match (kind, plain.first(), plain.get(1)) {
            (22, Some(2), _) => return Ok(ClientRenegotiation::Accepted),
            (22, Some(0), _) => {} // HelloRequest
            (21, Some(level), Some(description)) => {
                return Ok(ClientRenegotiation::Refused(format!(
                    "{} alert {}",
                    if *level == 1 { "warning" } else { "fatal" },
                    wire::alert_name(*description)
                )));
            }
            (23, _, _) => {} // application data (an HTTP server's own output)
            _ => return Err(cannot("unexpected answer to the renegotiation")),
        }
    }
    Err(cannot("no answer to the renegotiation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rfc7919_primes_are_asked_again() {
        let dh = |bits, ffdhe| KeyExchange::Dh {
            prime_bits: bits,
            ffdhe,
        };
        let kex = [
            (0x009E, dh(2048, Some(256))),
            (0x009E, dh(2048, Some(256))),
            (0x0033, dh(1024, None)),
            (0x0067, dh(3072, Some(257))),
            (0xC02F, KeyExchange::Ecdh { group: 29 }),
        ];
        assert_eq!(needs_plain_dh(&kex), vec![0x0067, 0x009E]);
        assert!(needs_plain_dh(&[(0x0033, dh(2048, None))]).is_empty());
    }
}
