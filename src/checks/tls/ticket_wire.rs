//! Session tickets on the wire (RFC 5077) for the Ticketbleed probe: a ClientHello rewritten to
//! carry a session id and the SessionTicket extension, and strict, bounded parsers of what a
//! TLS 1.2 server sends in the clear (its handshake messages up to its ChangeCipherSpec, the
//! session id of its ServerHello, a NewSessionTicket).
//!
//! [`PlainStream`] is incremental like [`super::wire::AnswerParser`]: each call reads only the
//! records completed since the last, so a server that dribbles bytes costs linear time. Records
//! are framed by [`super::wire::split_record`] (its caps and checks); messages are capped at
//! [`super::wire::MAX_MESSAGE`], the stream at [`super::wire::MAX_FLIGHT`] bytes and
//! [`super::wire::MAX_RECORDS`] records. The fuzzer checks it on anything
//! (`fuzz/fuzz_targets/ticket_stream.rs`).

use super::wire::Reader;
use super::wire::{self, WireError};

/// The SessionTicket extension (RFC 5077 §3.2).
pub const SESSION_TICKET: u16 = 0x0023;
/// The padding extension (RFC 7685).
const PADDING: u16 = 0x0015;
/// Most handshake messages kept from one stream.
pub const MAX_MESSAGES: usize = 32;

fn put_u16(out: &mut Vec<u8>, v: usize) -> Option<()> {
    out.extend_from_slice(&u16::try_from(v).ok()?.to_be_bytes());
    Some(())
}

/// Rewrite a ClientHello record built by [`wire::client_hello`] to carry `session_id` (at most
/// 32 bytes) and a SessionTicket extension holding `ticket` (empty: "give me one"); padded out
/// of [256, 512) bytes again like the original. None when `hello` is not such a record.
pub fn with_ticket(hello: &[u8], session_id: &[u8], ticket: &[u8]) -> Option<Vec<u8>> {
    if session_id.len() > 32 {
        return None;
    }
    let mut r = Reader { buf: hello };
    let header = r.take(5)?;
    if header.first() != Some(&22) || r.u8()? != 1 {
        return None;
    }
    let len = r.u24()?;
    let mut b = Reader { buf: r.take(len)? };
    let version = b.take(2)?;
    let random = b.take(32)?;
    let sid = usize::from(b.u8()?);
    b.take(sid)?;
    let suites_len = usize::from(b.u16()?);
    let suites = b.take(suites_len)?;
    let comp_len = usize::from(b.u8()?);
    let comp = b.take(comp_len)?;
    let mut exts: Vec<(u16, &[u8])> = Vec::new();
    if !b.buf.is_empty() {
        let n = usize::from(b.u16()?);
        let mut e = Reader { buf: b.take(n)? };
        while !e.buf.is_empty() {
            let kind = e.u16()?;
            let n = usize::from(e.u16()?);
            let data = e.take(n)?;
            if kind != PADDING && kind != SESSION_TICKET {
                exts.push((kind, data));
            }
        }
    }
    if !b.buf.is_empty() {
        return None;
    }
    exts.push((SESSION_TICKET, ticket));
    let build = |pad: Option<usize>| -> Option<Vec<u8>> {
        let mut body = Vec::with_capacity(512 + ticket.len());
        body.extend_from_slice(version);
        body.extend_from_slice(random);
        body.push(u8::try_from(session_id.len()).ok()?);
        body.extend_from_slice(session_id);
        put_u16(&mut body, suites.len())?;
        body.extend_from_slice(suites);
        body.push(u8::try_from(comp.len()).ok()?);
        body.extend_from_slice(comp);
        let mut list = Vec::new();
        for (kind, data) in &exts {
            put_u16(&mut list, usize::from(*kind))?;
            put_u16(&mut list, data.len())?;
            list.extend_from_slice(data);
        }
        if let Some(n) = pad {
            put_u16(&mut list, usize::from(PADDING))?;
            put_u16(&mut list, n)?;
            list.extend(std::iter::repeat_n(0u8, n));
        }
        put_u16(&mut body, list.len())?;
        body.extend(list);
        Some(body)
    };
    let mut body = build(None)?;
    // Hellos of [256, 512) bytes hang some F5 load balancers (RFC 7685 §1).
    let message = 4 + body.len();
    if (256..512).contains(&message) {
        body = build(Some((512 - message).saturating_sub(4).max(1)))?;
    }
    let mut record = vec![22];
    record.extend_from_slice(header.get(1..3)?);
    put_u16(&mut record, body.len() + 4)?;
    record.push(1);
    record.extend_from_slice(u32::try_from(body.len()).ok()?.to_be_bytes().get(1..)?);
    record.extend(body);
    Some(record)
}

/// How a server's plaintext handshake stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// A ChangeCipherSpec: what follows is encrypted.
    ChangeCipherSpec,
    /// An alert.
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// The alert description.
        description: u8,
    },
}

/// A server's plaintext handshake messages, read incrementally up to its ChangeCipherSpec or
/// an alert.
#[derive(Clone, Debug, Default)]
pub struct PlainStream {
    at: usize,
    records: usize,
    pending: Vec<u8>,
    /// Complete handshake messages, in order: type and body (the bodies of ServerHello,
    /// ServerKeyExchange and NewSessionTicket only; others are kept empty).
    pub messages: Vec<(u8, Vec<u8>)>,
    /// Set once the stream ended.
    pub end: Option<StreamEnd>,
}

impl PlainStream {
    /// A stream with nothing read yet.
    pub fn new() -> PlainStream {
        PlainStream::default()
    }

    /// Parse what `buf` (every byte received so far, grown between calls) adds. After `end`
    /// is set nothing more is read.
    pub fn advance(&mut self, buf: &[u8]) -> Result<(), WireError> {
        if buf.len() > wire::MAX_FLIGHT {
            return Err(WireError::FlightTooLarge(wire::MAX_FLIGHT));
        }
        while self.end.is_none() {
            let Some((kind, body, used)) =
                wire::split_record(buf.get(self.at..).unwrap_or_default())?
            else {
                break;
            };
            self.at += used;
            self.records += 1;
            if self.records > wire::MAX_RECORDS {
                return Err(WireError::Invalid("answer: too many records"));
            }
            if body.is_empty() {
                return Err(WireError::Invalid("record: empty fragment"));
            }
            match kind {
                22 => {
                    self.pending.extend_from_slice(body);
                    self.messages()?;
                }
                20 => {
                    if body != [1] {
                        return Err(WireError::Invalid("ChangeCipherSpec"));
                    }
                    if !self.pending.is_empty() {
                        return Err(WireError::Invalid(
                            "ChangeCipherSpec inside a handshake message",
                        ));
                    }
                    self.end = Some(StreamEnd::ChangeCipherSpec);
                }
                21 => {
                    let mut a = Reader { buf: body };
                    let (Some(level), Some(description), true) = (a.u8(), a.u8(), a.buf.is_empty())
                    else {
                        return Err(WireError::Invalid("alert length"));
                    };
                    self.end = Some(StreamEnd::Alert { level, description });
                }
                _ => return Err(WireError::Invalid("record type before ChangeCipherSpec")),
            }
        }
        Ok(())
    }

    fn messages(&mut self) -> Result<(), WireError> {
        let mut r = Reader { buf: &self.pending };
        let mut consumed = 0usize;
        loop {
            let mut peek = Reader { buf: r.buf };
            let (Some(t), Some(n)) = (peek.u8(), peek.u24()) else {
                break;
            };
            if n > wire::MAX_MESSAGE {
                return Err(WireError::MessageTooLarge(n));
            }
            let Some(body) = peek.take(n) else {
                break;
            };
            r = peek;
            consumed += 4 + n;
            if self.messages.len() >= MAX_MESSAGES {
                return Err(WireError::Invalid("answer: too many handshake messages"));
            }
            let keep = if matches!(t, 2 | 4 | 12) {
                body.to_vec()
            } else {
                Vec::new()
            };
            self.messages.push((t, keep));
        }
        self.pending.drain(..consumed.min(self.pending.len()));
        Ok(())
    }
}

/// What the Ticketbleed probe reads from a ServerHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloIds {
    /// The legacy version field.
    pub version: u16,
    /// The session id echoed or assigned (the probe keeps only its length and whether it
    /// starts with the client's bytes: the rest may be the server's memory).
    pub session_id: Vec<u8>,
    /// The chosen cipher suite.
    pub suite: u16,
    /// Extension types, in order.
    pub extensions: Vec<u16>,
}

/// Parse a ServerHello body for its session id and extension types (strict: lengths checked,
/// no trailing bytes, a session id of at most 32 bytes, no duplicate extension).
pub fn parse_server_hello(msg: &[u8]) -> Result<HelloIds, WireError> {
    let bad = WireError::Invalid;
    let mut r = Reader { buf: msg };
    let version = r.u16().ok_or(bad("ServerHello version"))?;
    r.take(32).ok_or(bad("ServerHello random"))?;
    let n = usize::from(r.u8().ok_or(bad("ServerHello session id"))?);
    if n > 32 {
        return Err(bad("ServerHello session id length"));
    }
    let session_id = r.take(n).ok_or(bad("ServerHello session id"))?.to_vec();
    let suite = r.u16().ok_or(bad("ServerHello cipher suite"))?;
    r.u8().ok_or(bad("ServerHello compression"))?;
    let mut extensions = Vec::new();
    if !r.buf.is_empty() {
        let n = usize::from(r.u16().ok_or(bad("extensions length"))?);
        let mut e = Reader {
            buf: r.take(n).ok_or(bad("extensions length"))?,
        };
        let mut seen = std::collections::HashSet::new();
        while !e.buf.is_empty() {
            let kind = e.u16().ok_or(bad("extension"))?;
            let n = usize::from(e.u16().ok_or(bad("extension length"))?);
            e.take(n).ok_or(bad("extension length"))?;
            if !seen.insert(kind) {
                return Err(bad("duplicate extension"));
            }
            extensions.push(kind);
        }
    }
    if !r.buf.is_empty() {
        return Err(bad("ServerHello trailing bytes"));
    }
    Ok(HelloIds {
        version,
        session_id,
        suite,
        extensions,
    })
}

/// The ticket of a NewSessionTicket body (RFC 5077 §3.3: lifetime hint, then the ticket).
pub fn parse_new_session_ticket(msg: &[u8]) -> Result<Vec<u8>, WireError> {
    let bad = WireError::Invalid;
    let mut r = Reader { buf: msg };
    r.take(4).ok_or(bad("NewSessionTicket lifetime"))?;
    let n = usize::from(r.u16().ok_or(bad("NewSessionTicket length"))?);
    let ticket = r.take(n).ok_or(bad("NewSessionTicket ticket"))?;
    if !r.buf.is_empty() {
        return Err(bad("NewSessionTicket trailing bytes"));
    }
    Ok(ticket.to_vec())
}

#[cfg(test)]
mod tests {
    use super::super::wire::tests::{message, record, server_hello};
    use super::super::wire::{HelloSpec, Version, client_hello};
    use super::*;

    fn hello() -> Vec<u8> {
        let spec = HelloSpec {
            version: Version::Tls12,
            suites: &[0xC02B, 0xC02F],
            groups: &[29],
            x25519_share: false,
            sni: Some("app.test"),
            deflate: false,
            extensions: true,
            fallback_scsv: false,
            heartbeat: false,
            renegotiation_info: None,
            status: false,
        };
        client_hello(&spec, &[3; 96])
    }

    /// Session id and SessionTicket extension data of a ClientHello record.
    fn ids(rec: &[u8]) -> (Vec<u8>, Option<Vec<u8>>, usize) {
        let mut r = Reader { buf: &rec[5..] };
        assert_eq!(r.u8(), Some(1));
        let len = r.u24().unwrap();
        assert_eq!(len + 9, rec.len());
        r.take(34).unwrap();
        let n = usize::from(r.u8().unwrap());
        let sid = r.take(n).unwrap().to_vec();
        let n = usize::from(r.u16().unwrap());
        r.take(n).unwrap();
        let n = usize::from(r.u8().unwrap());
        r.take(n).unwrap();
        let n = usize::from(r.u16().unwrap());
        let mut e = Reader {
            buf: r.take(n).unwrap(),
        };
        assert!(r.buf.is_empty());
        let mut ticket = None;
        while !e.buf.is_empty() {
            let k = e.u16().unwrap();
            let n = usize::from(e.u16().unwrap());
            let d = e.take(n).unwrap();
            if k == SESSION_TICKET {
                ticket = Some(d.to_vec());
            }
        }
        (sid, ticket, len + 4)
    }

    #[test]
    fn a_hello_gets_a_session_id_and_a_ticket_and_stays_out_of_the_f5_range() {
        let base = hello();
        let (sid, ticket, _) = ids(&with_ticket(&base, &[], &[]).unwrap());
        assert!(sid.is_empty());
        assert_eq!(ticket, Some(Vec::new()));
        for n in [0usize, 1, 100, 200, 300, 1000] {
            let t = vec![0xAB; n];
            let rec = with_ticket(&base, &[0x42], &t).unwrap();
            let (sid, ticket, len) = ids(&rec);
            assert_eq!(sid, vec![0x42]);
            assert_eq!(ticket, Some(t));
            assert!(!(256..512).contains(&len), "{n}: {len}");
        }
        assert!(with_ticket(&base, &[0; 33], &[]).is_none());
        assert!(with_ticket(b"HTTP/1.1", &[], &[]).is_none());
    }

    #[test]
    fn reads_a_plain_stream_to_its_change_cipher_spec() {
        let sh = server_hello(0x0303, 0xC02F, &[(SESSION_TICKET, &[])]);
        let mut nst = vec![0, 0, 1, 44, 0, 3];
        nst.extend([7, 8, 9]);
        let mut bytes = record(22, &[message(2, &sh), message(11, &[0, 0, 0])].concat());
        bytes.extend(record(22, &message(4, &nst)));
        bytes.extend(record(20, &[1]));
        bytes.extend(record(22, &[0xEE; 40]));
        let mut s = PlainStream::new();
        for end in 1..=bytes.len() {
            s.advance(&bytes[..end]).unwrap();
        }
        assert_eq!(s.end, Some(StreamEnd::ChangeCipherSpec));
        let types: Vec<u8> = s.messages.iter().map(|(t, _)| *t).collect();
        assert_eq!(types, vec![2, 11, 4]);
        assert_eq!(
            parse_new_session_ticket(&s.messages[2].1),
            Ok(vec![7, 8, 9])
        );
        let h = parse_server_hello(&s.messages[0].1).unwrap();
        assert_eq!(h.extensions, vec![SESSION_TICKET]);
        assert!(h.session_id.is_empty());
    }

    #[test]
    fn hostile_streams_are_refused() {
        let mut s = PlainStream::new();
        assert_eq!(s.advance(b"HTTP/1.1"), Err(WireError::NotTls(b'H')));
        let mut s = PlainStream::new();
        assert_eq!(
            s.advance(&record(23, &[1])),
            Err(WireError::Invalid("record type before ChangeCipherSpec"))
        );
        let mut s = PlainStream::new();
        assert_eq!(
            s.advance(&record(22, &[2, 0x7f, 0xff, 0xff])),
            Err(WireError::MessageTooLarge(0x7fffff))
        );
        let many: Vec<u8> = (0..40).flat_map(|_| record(22, &message(0, &[]))).collect();
        let mut s = PlainStream::new();
        assert_eq!(
            s.advance(&many),
            Err(WireError::Invalid("answer: too many handshake messages"))
        );
        let mut s = PlainStream::new();
        assert_eq!(
            s.advance(&record(20, &[1, 1])),
            Err(WireError::Invalid("ChangeCipherSpec"))
        );
        let mut bad = server_hello(0x0303, 0xC02F, &[]);
        bad[34] = 33;
        assert_eq!(
            parse_server_hello(&bad),
            Err(WireError::Invalid("ServerHello session id length"))
        );
        assert!(parse_new_session_ticket(&[0, 0, 0, 0, 0, 5, 1]).is_err());
        assert!(parse_new_session_ticket(&[0, 0, 0, 0, 0, 1, 1, 2]).is_err());
    }
}
