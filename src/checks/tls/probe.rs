//! The TLS family's network work: every connection it makes, each under the per-host limit and
//! a timeout on connect, write and every read, with a byte cap on what is read.
//!
//! 1. **Survey** (in parallel): one ClientHello per protocol version (SSL 3.0 to TLS 1.3),
//!    each offering every registry suite valid for it, and one rustls handshake whose verifier
//!    captures the certificate chain.
//! 2. **Enumeration** (in parallel, per supported version): testssl.sh's method. Offer many
//!    suites, record the one the server picks, remove it, repeat until the server refuses. The
//!    candidates are split into a few disjoint groups enumerated side by side, so the number of
//!    handshakes is about `accepted + groups` per version. Then two hellos with the accepted
//!    suites in opposite orders tell whether the server enforces its own order (and, if it does,
//!    one more pass records that order). Alongside: the named groups (TLS 1.3 HelloRetryRequest
//!    or TLS 1.2 ServerKeyExchange, again offer-pick-remove), DEFLATE compression, and the DH
//!    group sizes read from each DHE ServerKeyExchange.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::cert::{self, Captured, CapturingVerifier};
use super::registry::{self, GROUPS};
use super::wire::{self, Answer, Flight, HelloSpec, KeyExchange, Progress, Version, WireError};
use super::{Accepted, ProtocolState, TlsObservation};
use crate::engine::net;
use crate::engine::{ScanCx, ScanTarget};
use crate::model::{Reason, ReasonKind};

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

/// Groups of candidates enumerated side by side for one TLS ≤ 1.2 version.
const CHUNKS: usize = 4;

/// Connections to one target.
pub struct Prober<'a> {
    cx: &'a ScanCx,
    addrs: Vec<SocketAddr>,
    host_key: String,
    host: String,
    sni: Option<String>,
    timeout: Duration,
    handshakes: AtomicU32,
    connected: AtomicU32,
}

impl<'a> Prober<'a> {
    /// A prober for `target` on `port`.
    pub fn new(cx: &'a ScanCx, target: &ScanTarget, port: u16) -> Prober<'a> {
        let host = target.target.host();
        let sni = target.target.ip_literal().is_none().then(|| host.clone());
        Prober {
            cx,
            addrs: target
                .addrs
                .iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect(),
            host_key: cx.host_key(&host),
            host,
            sni,
            timeout: cx.settings.timeout,
            handshakes: AtomicU32::new(0),
            connected: AtomicU32::new(0),
        }
    }

    fn spec<'s>(&'s self, version: Version, suites: &'s [u16], groups: &'s [u16]) -> HelloSpec<'s> {
        HelloSpec {
            version,
            suites,
            groups,
            x25519_share: true,
            sni: self.sni.as_deref(),
            deflate: false,
            extensions: true,
        }
    }

    /// Send one ClientHello and read the answer. `full`: read a TLS ≤ 1.2 flight to its end.
    pub async fn exchange(&self, spec: &HelloSpec<'_>, full: bool) -> Exchange {
        let _permit = self.cx.limits.connection(&self.host_key).await;
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        let mut random = [0u8; 96];
        if aws_lc_rs::rand::fill(&mut random).is_err() {
            return Exchange::Failed(Reason::new(ReasonKind::Bug, "no randomness"));
        }
        let hello = wire::client_hello(spec, &random);
        let deadline = Instant::now() + net::request_deadline(self.timeout);
        let mut stream = match net::connect(&self.addrs, self.timeout).await {
            Ok(s) => s,
            Err(r) => return Exchange::Failed(r),
        };
        self.connected.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        match tokio::time::timeout(self.timeout, stream.write_all(&hello)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if is_reset(&e) => return Exchange::Closed("reset the connection"),
            Ok(Err(e)) => return Exchange::Failed(net::io_reason(&e, &self.doing(spec))),
            Err(_) => return Exchange::Failed(self.timed_out(spec)),
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
                Err(_) => return Exchange::Failed(self.timed_out(spec)),
                Ok(Ok(0)) => (0, true),
                Ok(Ok(n)) => (n, false),
                Ok(Err(e)) if is_reset(&e) => (0, true),
                Ok(Err(e)) => return Exchange::Failed(net::io_reason(&e, &self.doing(spec))),
            };
            if eof && buf.is_empty() {
                return Exchange::Closed("closed the connection");
            }
            buf.extend_from_slice(chunk.get(..bytes).unwrap_or_default());
            if buf.len() > wire::MAX_FLIGHT {
                return Exchange::Failed(wire_reason(
                    &WireError::FlightTooLarge(wire::MAX_FLIGHT),
                    &self.doing(spec),
                ));
            }
            match parser.advance(&buf, eof) {
                Ok(Progress::Done(answer)) => return Exchange::Answer(answer),
                Ok(Progress::NeedMore) if !eof => {}
                Ok(Progress::NeedMore) => {
                    return Exchange::Failed(wire_reason(&WireError::Truncated, &self.doing(spec)));
                }
                Err(e) => return Exchange::Failed(wire_reason(&e, &self.doing(spec))),
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

    /// One full rustls handshake (TLS 1.2/1.3) that captures the presented chain.
    async fn rustls_chain(&self) -> Result<Vec<CertificateDer<'static>>, Reason> {
        let captured: Captured = Arc::default();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Reason::new(ReasonKind::Bug, e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CapturingVerifier::new(captured.clone())))
            .with_no_client_auth();
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| Reason::new(ReasonKind::Bug, format!("{}: {e}", self.host)))?;
        let _permit = self.cx.limits.connection(&self.host_key).await;
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        let stream = net::connect(&self.addrs, self.timeout).await?;
        self.connected.fetch_add(1, Ordering::Relaxed);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let outcome = tokio::time::timeout(self.timeout, connector.connect(name, stream)).await;
        let chain = match captured.lock() {
            Ok(mut c) => c.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(chain) = chain {
            return Ok(chain);
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

fn wire_reason(e: &WireError, doing: &str) -> Reason {
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
pub async fn observe(cx: &ScanCx, target: &ScanTarget, port: u16, now: i64) -> TlsObservation {
    let p = Prober::new(cx, target, port);
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
        async move { (v, p.exchange(&p.spec(v, suites, groups), true).await) }
    }));
    let (surveys, rustls_chain) = futures::join!(surveys, p.rustls_chain());
    let surveys: BTreeMap<Version, Exchange> = surveys.into_iter().collect();
    let mut protocols: BTreeMap<Version, ProtocolState> = surveys
        .iter()
        .map(|(v, ex)| (*v, version_state(*v, ex)))
        .collect();
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

    // The certificate: from rustls, else from a TLS ≤ 1.2 flight.
    let chain: Result<(Vec<CertificateDer<'static>>, String), Reason> = match rustls_chain {
        Ok(c) => Ok((c, "rustls handshake".to_string())),
        Err(reason) => supported
            .iter()
            .rev()
            .find_map(|v| match surveys.get(v) {
                Some(Exchange::Answer(Answer::Hello(f))) if !f.certificates.is_empty() => Some((
                    f.certificates
                        .iter()
                        .map(|d| CertificateDer::from(d.clone()))
                        .collect(),
                    format!("{v} handshake"),
                )),
                _ => None,
            })
            .ok_or(reason),
    };
    let cert = chain.and_then(|(chain, source)| {
        cert::judge_chain(chain, source, &p.host, now, &cx.settings.ca_certs)
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
    let (enumerations, compression, groups) = futures::join!(enumerations, compression, groups);
    let mut suites: BTreeMap<Version, Result<Accepted, Reason>> = BTreeMap::new();
    let mut dh_bits: BTreeMap<u16, u32> = BTreeMap::new();
    let mut curves_seen: Vec<u16> = Vec::new();
    for (v, result) in enumerations {
        if let Ok(found) = &result {
            for (suite, kx) in &found.1 {
                match kx {
                    KeyExchange::Dh { prime_bits, .. } => {
                        let e = dh_bits.entry(*suite).or_insert(*prime_bits);
                        *e = (*e).min(*prime_bits);
                    }
                    KeyExchange::Ecdh { group } if !curves_seen.contains(group) => {
                        curves_seen.push(*group);
                    }
                    _ => {}
                }
            }
        }
        suites.insert(v, result.map(|(a, _)| a));
    }

    let renegotiation = legacy_flight.map(|f| Ok(f.hello.renegotiation_info));
    TlsObservation {
        host: p.host.clone(),
        port,
        now,
        expiry_days: cx.settings.cert_expiry_days,
        cert,
        protocols,
        protocols_error,
        suites,
        groups,
        dh_bits,
        compression,
        renegotiation,
        handshakes: p.handshakes.load(Ordering::Relaxed),
        connected: p.connected.load(Ordering::Relaxed),
    }
}

type Found = (Accepted, Vec<(u16, KeyExchange)>);

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
    let mut picked: Vec<u16> = Vec::new();
    let mut kex: Vec<(u16, KeyExchange)> = Vec::new();
    for run in runs {
        let (order, k) = run?;
        picked.extend(order);
        kex.extend(k);
    }
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
            let (order, _) = offer_pick_remove(p, version, picked, groups).await?;
            if order.len() == accepted.suites.len() {
                accepted.suites = order;
            }
        }
    }
    Ok((accepted, kex))
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
/// picks in order and the key exchange seen with each (TLS ≤ 1.2).
async fn offer_pick_remove(
    p: &Prober<'_>,
    version: Version,
    mut remaining: Vec<u16>,
    groups: &[u16],
) -> Result<(Vec<u16>, Vec<(u16, KeyExchange)>), Reason> {
    let mut order = Vec::new();
    let mut kex = Vec::new();
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
            kex.push((suite, k));
        }
        order.push(suite);
        remaining.retain(|c| *c != suite);
    }
    Ok((order, kex))
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
