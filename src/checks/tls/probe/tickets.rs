//! The Ticketbleed probe (CVE-2016-9244), two connections at most:
//!
//! 1. a full TLS 1.2 handshake (ECDHE x25519, AES-128-GCM, finished with [`tls12`]) whose
//!    hello carries an empty SessionTicket extension; the server's NewSessionTicket is read in
//!    the clear before its ChangeCipherSpec. A ServerHello without the extension: no ticket,
//!    and no second connection.
//! 2. a hello carrying that ticket and a 1-byte session id. A server that resumes (no
//!    Certificate: a NewSessionTicket or its ChangeCipherSpec right after the ServerHello)
//!    must echo the 1-byte id (RFC 5077 §3.4); a 32-byte echo that starts with it is
//!    Ticketbleed. Only lengths leave this function, never the echoed bytes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::super::ticket_wire::{self, PlainStream, StreamEnd};
use super::super::ticketbleed::Ticketbleed;
use super::super::tls12;
use super::super::wire::{self, Version};
use super::{Prober, handshake_bytes, is_reset};
use crate::engine::net;
use crate::model::{Reason, ReasonKind};

/// Read from `stream` into `buf` and `parsed` until `done` says so or the stream ends; `Ok(false)`
/// when the server closed first. Every read is under `timeout`, the whole under `deadline`.
async fn read_until(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    parsed: &mut PlainStream,
    timeout: Duration,
    doing: &str,
    done: impl Fn(&PlainStream) -> bool,
) -> Result<bool, Reason> {
    let deadline = Instant::now() + net::request_deadline(timeout);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        parsed
            .advance(buf)
            .map_err(|e| super::wire_reason(&e, doing))?;
        if done(parsed) || parsed.end.is_some() {
            return Ok(true);
        }
        let wait = timeout.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
            Err(_) => {
                return Err(Reason::new(
                    ReasonKind::Timeout,
                    format!(
                        "{doing}: no complete answer within the timeout ({})",
                        net::secs(timeout)
                    ),
                ));
            }
            Ok(Ok(0)) => return Ok(false),
            Ok(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Ok(Err(e)) if is_reset(&e) => return Ok(false),
            Ok(Err(e)) => return Err(net::io_reason(&e, doing)),
        }
    }
}

async fn write(
    stream: &mut tokio::net::TcpStream,
    bytes: &[u8],
    timeout: Duration,
    doing: &str,
) -> Result<(), Reason> {
    match tokio::time::timeout(timeout, stream.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(net::io_reason(&e, doing)),
        Err(_) => Err(Reason::new(
            ReasonKind::Timeout,
            format!("{doing}: write timed out"),
        )),
    }
}

fn has(parsed: &PlainStream, kind: u8) -> bool {
    parsed.messages.iter().any(|(t, _)| *t == kind)
}

/// See the module documentation.
pub(in super::super) async fn probe_ticketbleed(p: &Prober<'_>) -> Result<Ticketbleed, Reason> {
    use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
    let doing = format!("Ticketbleed probe to {}", p.host);
    let cannot = |why: &str| Reason::new(ReasonKind::Tls, format!("{doing}: {why}"));
    let bug = |what: &str| Reason::new(ReasonKind::Bug, format!("{doing}: {what}"));
    let groups = [wire::X25519];
    let spec = p.spec(Version::Tls12, &tls12::SUITES, &groups);
    let mut random = [0u8; 96];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| bug("randomness"))?;
    let base = wire::client_hello(&spec, &random);
    let hello = ticket_wire::with_ticket(&base, &[], &[]).ok_or_else(|| bug("hello"))?;

    // 1. The full handshake.
    p.handshakes.fetch_add(1, Ordering::Relaxed);
    let (permit, mut stream) = crate::engine::net::permit_first(p.connect().await?);
    p.connected.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    write(&mut stream, &hello, p.timeout, &doing).await?;
    let mut buf = Vec::new();
    let mut parsed = PlainStream::new();
    let whole = read_until(&mut stream, &mut buf, &mut parsed, p.timeout, &doing, |s| {
        has(s, 14)
    })
    .await?;
    let refused =
        "the server refuses ECDHE x25519 with AES-128-GCM, the only handshake the probe can finish";
    if let Some(StreamEnd::Alert { .. }) = parsed.end {
        return Err(cannot(refused));
    }
    if !whole || !has(&parsed, 14) {
        return Err(Reason::new(
            ReasonKind::Malformed,
            format!("{doing}: the server's flight ended before ServerHelloDone"),
        ));
    }
    let body = |kind: u8| {
        parsed
            .messages
            .iter()
            .find(|(t, _)| *t == kind)
            .map(|(_, b)| b.as_slice())
    };
    let server_hello = ticket_wire::parse_server_hello(body(2).unwrap_or_default())
        .map_err(|e| super::wire_reason(&e, &doing))?;
    let share = body(12).and_then(tls12::x25519_share);
    let (true, true, Some(share)) = (
        server_hello.version == Version::Tls12.wire(),
        tls12::SUITES.contains(&server_hello.suite),
        share,
    ) else {
        return Err(cannot(
            "the server did not answer with a TLS 1.2 ECDHE x25519 AES-128-GCM flight, the only handshake the probe can finish",
        ));
    };
    if !server_hello
        .extensions
        .contains(&ticket_wire::SESSION_TICKET)
    {
        return Ok(Ticketbleed::NoTicket);
    }
    // The server random, for the key schedule.
    let server_random = body(2)
        .and_then(|b| b.get(2..34))
        .ok_or_else(|| bug("random"))?
        .to_vec();
    let client_random = hello.get(11..43).unwrap_or_default().to_vec();
    let mut transcript = hello.get(5..).unwrap_or_default().to_vec();
    transcript.extend(handshake_bytes(&buf));
    let rng = aws_lc_rs::rand::SystemRandom::new();
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
    let ems = server_hello.extensions.contains(&0x0017);
    let mut keys = tls12::keys(&premaster, ems, &transcript, &client_random, &server_random)
        .ok_or_else(|| bug("keys"))?;
    let verify = tls12::verify_data(&keys.master, b"client finished", &transcript);
    let mut finished = vec![20, 0, 0, 12];
    finished.extend_from_slice(&verify);
    let mut out = vec![22, 3, 3, 0, 37];
    out.extend_from_slice(&cke);
    out.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
    out.extend(keys.client.seal(22, &finished).ok_or_else(|| bug("seal"))?);
    write(&mut stream, &out, p.timeout, &doing).await?;
    let whole = read_until(&mut stream, &mut buf, &mut parsed, p.timeout, &doing, |s| {
        has(s, 4)
    })
    .await?;
    let ticket = match parsed.messages.iter().find(|(t, _)| *t == 4) {
        Some((_, b)) => {
            ticket_wire::parse_new_session_ticket(b).map_err(|e| super::wire_reason(&e, &doing))?
        }
        None => match (whole, parsed.end) {
            (true, Some(StreamEnd::ChangeCipherSpec)) => return Ok(Ticketbleed::NoTicket),
            (true, Some(StreamEnd::Alert { description, .. })) => {
                return Err(cannot(&format!(
                    "the server ended the handshake with alert {}",
                    wire::alert_name(description)
                )));
            }
            _ => {
                return Err(cannot(
                    "the server closed the connection before its NewSessionTicket",
                ));
            }
        },
    };
    drop((stream, permit));
    if ticket.is_empty() {
        return Ok(Ticketbleed::NoTicket);
    }

    // 2. Resumption with a 1-byte session id.
    let mut id = [0u8; 1];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| bug("randomness"))?;
    aws_lc_rs::rand::fill(&mut random).map_err(|_| bug("randomness"))?;
    let base = wire::client_hello(&spec, &random);
    let hello = ticket_wire::with_ticket(&base, &id, &ticket).ok_or_else(|| bug("hello"))?;
    p.handshakes.fetch_add(1, Ordering::Relaxed);
    let (_permit, mut stream) = crate::engine::net::permit_first(p.connect().await?);
    p.connected.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    write(&mut stream, &hello, p.timeout, &doing).await?;
    let mut buf = Vec::new();
    let mut parsed = PlainStream::new();
    let whole = read_until(&mut stream, &mut buf, &mut parsed, p.timeout, &doing, |s| {
        s.messages.len() >= 2
    })
    .await?;
    let Some((2, sh)) = parsed.messages.first() else {
        return match parsed.end {
            Some(StreamEnd::Alert { description, .. }) => Ok(Ticketbleed::NotResumed(format!(
                "alert {} to the resumption",
                wire::alert_name(description)
            ))),
            _ if parsed.messages.is_empty() && !whole && buf.is_empty() => Ok(
                Ticketbleed::NotResumed("it closed the connection on the resumption".into()),
            ),
            _ if parsed.messages.is_empty() => {
                Err(super::wire_reason(&wire::WireError::Truncated, &doing))
            }
            _ => Err(Reason::new(
                ReasonKind::Malformed,
                format!("{doing}: the answer to the resumption does not start with a ServerHello"),
            )),
        };
    };
    let resumed =
        ticket_wire::parse_server_hello(sh).map_err(|e| super::wire_reason(&e, &doing))?;
    if resumed.version != Version::Tls12.wire() {
        return Err(cannot(
            "the server answered the resumption with another version",
        ));
    }
    let next = parsed.messages.get(1).map(|(t, _)| *t);
    match (next, parsed.end) {
        (Some(11 | 12 | 14), _) => Ok(Ticketbleed::NotResumed("a full handshake".into())),
        (Some(4), _) | (None, Some(StreamEnd::ChangeCipherSpec)) => Ok(Ticketbleed::Resumed {
            sent: id.len(),
            returned: resumed.session_id.len(),
            echoes_ours: resumed.session_id.starts_with(&id),
        }),
        (None, Some(StreamEnd::Alert { description, .. })) => Ok(Ticketbleed::NotResumed(format!(
            "alert {} after its ServerHello",
            wire::alert_name(description)
        ))),
        (Some(other), _) => Err(Reason::new(
            ReasonKind::Malformed,
            format!("{doing}: unexpected handshake message {other} after the ServerHello"),
        )),
        (None, None) => Err(super::wire_reason(&wire::WireError::Truncated, &doing)),
    }
}
