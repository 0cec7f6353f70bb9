//! Scripted servers with flaws no TLS library here will reproduce: an SSL 2.0 responder (the
//! certificate it presents can be the key of a TLS server elsewhere: DROWN) and a TLS 1.2
//! server that issues session tickets and, resuming one, echoes a 32-byte session id padded
//! with its memory (Ticketbleed, CVE-2016-9244). Each can also turn hostile at the step its
//! probe judges (garbage, a truncated record, silence).
//!
//! Like the legacy responder in [`super::tls`], they never finish a real handshake: the
//! ticket server's ChangeCipherSpec is followed by a record that is not a valid Finished,
//! which is all a scanner's probe needs to see. Every read is bounded in size and time.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{LabServer, accept_loop};
use crate::checks::tls::sslv2_wire;

/// The longest a scripted connection is served.
const CONN_LIMIT: Duration = Duration::from_secs(10);

/// How a scripted server answers the step its probe judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// As the other settings say.
    Answer,
    /// 1 KiB of bytes that are not a valid answer.
    Garbage,
    /// Half a record, then close.
    Truncate,
    /// Nothing (until the 10-second connection limit).
    Silence,
}

/// What the SSLv2 responder does.
#[derive(Clone, Debug)]
pub struct Sslv2Lab {
    /// The cipher kinds its SERVER-HELLO lists (none: the CVE-2015-3197 shape).
    pub ciphers: Vec<u32>,
    /// The certificate it presents (DER).
    pub certificate: Vec<u8>,
    /// How it answers an SSLv2 CLIENT-HELLO.
    pub step: Step,
}

/// Serve the SSLv2 responder: an SSLv2 CLIENT-HELLO gets a SERVER-HELLO (or the hostile
/// step); anything else (a TLS ClientHello) gets a fatal TLS alert handshake_failure.
pub fn serve_sslv2(listener: TcpListener, lab: Sslv2Lab) -> LabServer {
    let lab = Arc::new(lab);
    accept_loop(listener, Some(CONN_LIMIT), move |stream| {
        let lab = lab.clone();
        async move { sslv2_conn(stream, &lab).await }
    })
}

async fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> usize {
    match tokio::time::timeout(Duration::from_secs(2), stream.read(buf)).await {
        Ok(Ok(n)) => n,
        _ => 0,
    }
}

async fn hold(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(CONN_LIMIT, stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
    }
}

fn garbage() -> Vec<u8> {
    // Not a TLS or SSLv2 record: starts with a byte no parser here accepts as a header.
    (0..1024u32)
        .map(|i| u8::try_from((i * 37 + 11) % 251).unwrap_or(0) | 0x40)
        .map(|b| b & 0x7f)
        .collect()
}

async fn sslv2_conn(mut stream: TcpStream, lab: &Sslv2Lab) {
    let mut buf = vec![0u8; 4096];
    let n = read_some(&mut stream, &mut buf).await;
    let got = buf.get(..n).unwrap_or_default();
    if !sslv2_wire::is_client_hello(got) {
        let _ = stream.write_all(&[21, 3, 1, 0, 2, 2, 40]).await;
        return;
    }
    let mut connection_id = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut connection_id);
    let hello = sslv2_wire::server_hello_record(&lab.certificate, &lab.ciphers, &connection_id);
    let bytes = match lab.step {
        Step::Answer => hello,
        Step::Garbage => garbage(),
        Step::Truncate => hello.get(..hello.len() / 2).unwrap_or_default().to_vec(),
        Step::Silence => {
            hold(&mut stream).await;
            return;
        }
    };
    let _ = stream.write_all(&bytes).await;
    let _ = stream.flush().await;
    if lab.step == Step::Answer {
        hold(&mut stream).await;
    }
}

/// What the session-ticket server does.
#[derive(Clone, Debug)]
pub struct TicketLab {
    /// Issue a session ticket (RFC 5077) when the client asks for one.
    pub tickets: bool,
    /// Ticketbleed: resuming a ticket presented with a session id shorter than 32 bytes,
    /// echo 32 bytes anyway, the client's first and then bytes of [`TICKET_MEMORY`].
    pub bleed: bool,
    /// How it answers the resumption hello.
    pub step: Step,
    /// The certificate chain it presents.
    pub chain: Vec<CertificateDer<'static>>,
}

/// What the Ticketbleed server's memory holds: tests check that reports never show it.
pub const TICKET_MEMORY: &[u8] = b"secgate-ticket-memory-31-bytes!";

/// The tickets it issues start so.
const TICKET_PREFIX: &[u8] = b"secgate-lab-ticket:";

/// Serve the session-ticket server: TLS 1.2 only, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or
/// its ECDSA twin over x25519.
pub fn serve_tickets(listener: TcpListener, lab: TicketLab) -> LabServer {
    let lab = Arc::new(lab);
    accept_loop(listener, Some(CONN_LIMIT), move |stream| {
        let lab = lab.clone();
        async move { ticket_conn(stream, &lab).await }
    })
}

fn record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 3];
    r.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(
        u32::try_from(body.len())
            .unwrap_or(0)
            .to_be_bytes()
            .get(1..)
            .unwrap_or_default(),
    );
    m.extend_from_slice(body);
    m
}

fn be16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// What the ticket server reads from a ClientHello.
struct Hello {
    version: u16,
    session_id: Vec<u8>,
    suites: Vec<u16>,
    ticket: Option<Vec<u8>>,
    tls13: bool,
}

/// Read one TLS record (at most 16 KiB) from `stream`.
async fn read_record(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(3), stream.read_exact(&mut head))
        .await
        .ok()?
        .ok()?;
    let len = usize::from(be16(head.get(3..)?)?);
    if len > 16 * 1024 {
        return None;
    }
    let mut body = vec![0u8; len];
    tokio::time::timeout(Duration::from_secs(3), stream.read_exact(&mut body))
        .await
        .ok()?
        .ok()?;
    Some((*head.first()?, body))
}

fn parse_hello(body: &[u8]) -> Option<Hello> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = body.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    if take(4)?.first() != Some(&1) {
        return None;
    }
    let version = be16(take(2)?)?;
    take(32)?;
    let n = usize::from(*take(1)?.first()?);
    let session_id = take(n)?.to_vec();
    let n = usize::from(be16(take(2)?)?);
    let suites = take(n)?.chunks(2).filter_map(be16).collect();
    let n = usize::from(*take(1)?.first()?);
    take(n)?;
    let mut hello = Hello {
        version,
        session_id,
        suites,
        ticket: None,
        tls13: false,
    };
    let Some(n) = take(2).and_then(be16) else {
        return Some(hello);
    };
    let exts = take(usize::from(n))?;
    let mut e = 0usize;
    while let (Some(kind), Some(n)) = (
        exts.get(e..e + 2).and_then(be16),
        exts.get(e + 2..e + 4).and_then(be16),
    ) {
        let data = exts.get(e + 4..e + 4 + usize::from(n))?;
        match kind {
            0x0023 => hello.ticket = Some(data.to_vec()),
            0x002b => hello.tls13 = data.get(1..)?.chunks(2).any(|v| v == [3, 4]),
            _ => {}
        }
        e += 4 + usize::from(n);
    }
    Some(hello)
}

fn server_hello(session_id: &[u8], suite: u16, ticket_ext: bool) -> Vec<u8> {
    let mut b = vec![3, 3];
    let mut random = [0u8; 32];
    let _ = aws_lc_rs::rand::fill(&mut random);
    b.extend_from_slice(&random);
    b.push(u8::try_from(session_id.len()).unwrap_or(0));
    b.extend_from_slice(session_id);
    b.extend_from_slice(&suite.to_be_bytes());
    b.push(0);
    let mut exts = vec![0xff, 0x01, 0, 1, 0];
    if ticket_ext {
        exts.extend_from_slice(&[0, 0x23, 0, 0]);
    }
    b.extend_from_slice(&u16::try_from(exts.len()).unwrap_or(0).to_be_bytes());
    b.extend(exts);
    message(2, &b)
}

async fn ticket_conn(mut stream: TcpStream, lab: &TicketLab) {
    let _ = stream.set_nodelay(true);
    let Some((22, body)) = read_record(&mut stream).await else {
        return;
    };
    let Some(hello) = parse_hello(&body) else {
        let _ = stream.write_all(&record(21, &[2, 50])).await;
        return;
    };
    if hello.version < 0x0303 && !hello.tls13 {
        let _ = stream.write_all(&record(21, &[2, 70])).await;
        return;
    }
    let Some(suite) = [0xC02F, 0xC02B]
        .into_iter()
        .find(|s| hello.suites.contains(s))
    else {
        let _ = stream.write_all(&record(21, &[2, 40])).await;
        return;
    };
    let ours = hello
        .ticket
        .as_deref()
        .is_some_and(|t| t.starts_with(TICKET_PREFIX));
    if ours {
        // Resumption: the abbreviated handshake.
        let mut sid = hello.session_id.clone();
        if lab.bleed && sid.len() < 32 {
            sid.extend(TICKET_MEMORY.iter().take(32 - sid.len()));
        }
        let mut flight = record(22, &server_hello(&sid, suite, false));
        flight.extend(record(20, &[1]));
        flight.extend(record(22, &[0xEE; 40]));
        let bytes = match lab.step {
            Step::Answer => flight,
            Step::Garbage => garbage(),
            Step::Truncate => flight.get(..20).unwrap_or_default().to_vec(),
            Step::Silence => {
                hold(&mut stream).await;
                return;
            }
        };
        let _ = stream.write_all(&bytes).await;
        if lab.step == Step::Answer {
            hold(&mut stream).await;
        }
        return;
    }
    // A full handshake: ServerHello, Certificate, ServerKeyExchange (x25519; the signature is
    // not a real one), ServerHelloDone.
    let issue = lab.tickets && hello.ticket.is_some();
    let mut fresh = [0u8; 32];
    let _ = aws_lc_rs::rand::fill(&mut fresh);
    let mut hs = server_hello(&fresh, suite, issue);
    let mut list = Vec::new();
    for c in &lab.chain {
        list.extend_from_slice(
            u32::try_from(c.len())
                .unwrap_or(0)
                .to_be_bytes()
                .get(1..)
                .unwrap_or_default(),
        );
        list.extend_from_slice(c.as_ref());
    }
    let mut certs = u32::try_from(list.len())
        .unwrap_or(0)
        .to_be_bytes()
        .get(1..)
        .unwrap_or_default()
        .to_vec();
    certs.extend(list);
    hs.extend(message(11, &certs));
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let Ok(private) =
        aws_lc_rs::agreement::EphemeralPrivateKey::generate(&aws_lc_rs::agreement::X25519, &rng)
    else {
        return;
    };
    let Ok(public) = private.compute_public_key() else {
        return;
    };
    let mut ske = vec![3, 0, 29, 32];
    ske.extend_from_slice(public.as_ref());
    ske.extend_from_slice(&[4, 3, 0, 64]);
    ske.extend([0u8; 64]);
    hs.extend(message(12, &ske));
    hs.extend(message(14, &[]));
    if stream.write_all(&record(22, &hs)).await.is_err() {
        return;
    }
    // The client's ClientKeyExchange, ChangeCipherSpec and Finished; anything else is refused.
    match read_record(&mut stream).await {
        Some((22, body)) if body.first() == Some(&16) => {}
        Some(_) => {
            let _ = stream.write_all(&record(21, &[2, 10])).await;
            return;
        }
        None => return,
    }
    if !matches!(read_record(&mut stream).await, Some((20, _))) {
        return;
    }
    if read_record(&mut stream).await.is_none() {
        return;
    }
    let mut out = Vec::new();
    if issue {
        let mut ticket = TICKET_PREFIX.to_vec();
        ticket.extend([0x5A; 45]);
        let mut nst = 300u32.to_be_bytes().to_vec();
        nst.extend_from_slice(&u16::try_from(ticket.len()).unwrap_or(0).to_be_bytes());
        nst.extend(ticket);
        out.extend(record(22, &message(4, &nst)));
    }
    out.extend(record(20, &[1]));
    out.extend(record(22, &[0xEE; 40]));
    let _ = stream.write_all(&out).await;
    hold(&mut stream).await;
}
