//! The SSLv2 probe: one connection, one CLIENT-HELLO ([`sslv2_wire::client_hello`]), the
//! server's first record read under the timeout and capped at the SSLv2 record limit.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::super::drown::spki_sha256;
use super::super::sslv2::Sslv2;
use super::super::sslv2_wire::{self, Sslv2Answer, Sslv2Progress};
use super::super::wire;
use super::{Prober, is_reset};
use crate::engine::net;
use crate::model::{Reason, ReasonKind};

/// Send an SSLv2 CLIENT-HELLO offering every SSLv2 cipher kind and read the answer. A
/// connection closed without a byte is tried once more, as [`Prober::exchange`] does: one
/// dropped connection is not a refusal.
pub(in super::super) async fn probe_sslv2(p: &Prober<'_>) -> Result<Sslv2, Reason> {
    match probe_once(p).await {
        Ok(Sslv2::Refused(how)) if how == CLOSED => probe_once(p).await,
        other => other,
    }
}

const CLOSED: &str = "closed the connection";

async fn probe_once(p: &Prober<'_>) -> Result<Sslv2, Reason> {
    let doing = format!(
        "SSLv2 CLIENT-HELLO to {}",
        p.addrs
            .first()
            .map_or_else(|| p.host.clone(), ToString::to_string)
    );
    let timed_out = || {
        Reason::new(
            ReasonKind::Timeout,
            format!(
                "{doing}: no complete answer within the timeout ({})",
                net::secs(p.timeout)
            ),
        )
    };
    let mut challenge = [0u8; 16];
    aws_lc_rs::rand::fill(&mut challenge)
        .map_err(|_| Reason::new(ReasonKind::Bug, "no randomness"))?;
    let hello = sslv2_wire::client_hello(&challenge);
    p.handshakes.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + net::request_deadline(p.timeout);
    let (_permit, mut stream) = crate::engine::net::permit_first(p.connect().await?);
    p.connected.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(p.timeout, stream.write_all(&hello)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if is_reset(&e) => return Ok(Sslv2::Refused("reset the connection".into())),
        Ok(Err(e)) => return Err(net::io_reason(&e, &doing)),
        Err(_) => return Err(timed_out()),
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 8 * 1024];
    loop {
        let wait = p
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let (n, eof) = match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
            Err(_) => return Err(timed_out()),
            Ok(Ok(0)) => (0, true),
            Ok(Ok(n)) => (n, false),
            Ok(Err(e)) if is_reset(&e) => (0, true),
            Ok(Err(e)) => return Err(net::io_reason(&e, &doing)),
        };
        if eof && buf.is_empty() {
            return Ok(Sslv2::Refused(CLOSED.into()));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let malformed = |e: sslv2_wire::Sslv2Error| {
            let kind = match e {
                sslv2_wire::Sslv2Error::TooLarge(_) => ReasonKind::TooLarge,
                _ => ReasonKind::Malformed,
            };
            Reason::new(kind, format!("{doing}: {e}"))
        };
        match sslv2_wire::parse_answer(&buf, eof).map_err(malformed)? {
            Sslv2Progress::NeedMore => {}
            Sslv2Progress::Done(Sslv2Answer::Hello(h)) => {
                let key = match (h.certificate_type, h.certificate.is_empty()) {
                    (_, true) => Err("the SERVER-HELLO carries no certificate".to_string()),
                    (sslv2_wire::X509_CERTIFICATE, false) => spki_sha256(&h.certificate)
                        .ok_or_else(|| "its SSLv2 certificate does not parse".to_string()),
                    (t, false) => Err(format!("certificate type {t} is not X.509")),
                };
                return Ok(Sslv2::Accepted {
                    ciphers: h.ciphers,
                    key,
                });
            }
            Sslv2Progress::Done(Sslv2Answer::Error(code)) => {
                return Ok(Sslv2::Refused(format!("SSLv2 ERROR {code}")));
            }
            Sslv2Progress::Done(Sslv2Answer::Tls { alert: Some(d), .. }) => {
                return Ok(Sslv2::Refused(format!("TLS alert {}", wire::alert_name(d))));
            }
            Sslv2Progress::Done(Sslv2Answer::Tls { kind, .. }) => {
                return Ok(Sslv2::Refused(format!("a TLS record of type {kind}")));
            }
        }
    }
}
