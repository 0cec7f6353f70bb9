//! TLS on the wire: a ClientHello builder for every version from SSL 3.0 to TLS 1.3, and a
//! strict, bounded parser of what a server answers (ServerHello, HelloRetryRequest, the rest of
//! a TLS ≤ 1.2 flight, alerts, or garbage).
//!
//! The parser never indexes and never trusts a length: every length prefix is checked against
//! what is left (`Reader::take` uses `split_at_checked`), records and messages have size caps,
//! and trailing bytes inside a message are an error. It is incremental ([`AnswerParser`]): the
//! network code feeds it after each read and it parses each record once, so a server that
//! slices its answer into many tiny records costs linear time, not a re-parse per record. The
//! fuzzer checks it on anything, cut anywhere (`fuzz/fuzz_targets/server_flight.rs`).

use std::fmt;

/// A protocol version secgate can probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// SSL 3.0.
    Ssl3,
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 5] = [
        Version::Ssl3,
        Version::Tls10,
        Version::Tls11,
        Version::Tls12,
        Version::Tls13,
    ];

    /// The version's code point.
    pub fn wire(self) -> u16 {
        match self {
            Version::Ssl3 => 0x0300,
            Version::Tls10 => 0x0301,
            Version::Tls11 => 0x0302,
            Version::Tls12 => 0x0303,
            Version::Tls13 => 0x0304,
        }
    }

    /// The version with this code point.
    pub fn from_wire(v: u16) -> Option<Version> {
        Version::ALL.into_iter().find(|x| x.wire() == v)
    }

    /// Human name (`TLS 1.2`).
    pub fn name(self) -> &'static str {
        match self {
            Version::Ssl3 => "SSLv3",
            Version::Tls10 => "TLS 1.0",
            Version::Tls11 => "TLS 1.1",
            Version::Tls12 => "TLS 1.2",
            Version::Tls13 => "TLS 1.3",
        }
    }

    /// Evidence key of the suites accepted with this version.
    pub fn suites_key(self) -> &'static str {
        match self {
            Version::Ssl3 => "ssl3_suites",
            Version::Tls10 => "tls1_0_suites",
            Version::Tls11 => "tls1_1_suites",
            Version::Tls12 => "tls1_2_suites",
            Version::Tls13 => "tls1_3_suites",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Signalling suite value asking for secure renegotiation (RFC 5746).
pub const RENEGOTIATION_SCSV: u16 = 0x00FF;
/// Signalling suite value of a client that retries with a lower version than it supports
/// (RFC 7507); a server supporting a higher version must refuse with `inappropriate_fallback`.
pub const FALLBACK_SCSV: u16 = 0x5600;
/// The x25519 group.
pub const X25519: u16 = 29;
/// The heartbeat extension (RFC 6520).
pub const HEARTBEAT_EXTENSION: u16 = 0x000f;
/// `status_request` (RFC 6066 §8).
pub const STATUS_REQUEST_EXTENSION: u16 = 0x0005;
/// `signed_certificate_timestamp` (RFC 6962 §3.3.1).
pub const SCT_EXTENSION: u16 = 0x0012;
/// The heartbeat record content type (RFC 6520).
pub const HEARTBEAT_RECORD: u8 = 24;

/// Signature algorithms offered in TLS 1.2 and 1.3 hellos: modern first, then legacy ones so
/// that servers with old certificates still answer.
const SIGNATURE_ALGORITHMS: &[u16] = &[
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b, 0x0401,
    0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602, 0x0203, 0x0201, 0x0202, 0x0101,
];

/// What a ClientHello offers.
#[derive(Clone, Debug)]
pub struct HelloSpec<'a> {
    /// The version to negotiate (TLS 1.3 is offered through `supported_versions`).
    pub version: Version,
    /// Cipher suites, in preference order.
    pub suites: &'a [u16],
    /// Named groups (`supported_groups`).
    pub groups: &'a [u16],
    /// TLS 1.3: send an x25519 key share (else an empty list, so the server must pick a group
    /// with a HelloRetryRequest).
    pub x25519_share: bool,
    /// Server name (SNI); none for IP targets.
    pub sni: Option<&'a str>,
    /// Offer DEFLATE compression as well as none.
    pub deflate: bool,
    /// Send extensions (TLS 1.0 and later). Off for stacks that refuse any hello with
    /// extensions (SSL 3.0 hellos never have them; TLS 1.3 hellos always do).
    pub extensions: bool,
    /// Add TLS_FALLBACK_SCSV (RFC 7507): this hello is a retry below the client's best version.
    pub fallback_scsv: bool,
    /// Offer the heartbeat extension (RFC 6520), peer allowed to send.
    pub heartbeat: bool,
    /// A renegotiation hello (RFC 5746 §3.5): `renegotiation_info` carries the client's
    /// verify_data of the handshake being renegotiated, and the signalling suite is left out.
    pub renegotiation_info: Option<&'a [u8]>,
    /// Ask for a stapled OCSP response (`status_request`, RFC 6066 §8) and for Signed
    /// Certificate Timestamps (`signed_certificate_timestamp`, RFC 6962 §3.3.1).
    pub status: bool,
}

/// ClientHello messages between these sizes hang some F5 load balancers; the padding
/// extension (RFC 7685) takes them to at least 512 bytes.
const PAD_FROM: usize = 256;
/// See [`PAD_FROM`].
const PAD_TO: usize = 512;

/// Build a ClientHello record. `random` fills the random, the TLS 1.3 session id and the key
/// share (it needs 96 bytes of randomness; the probe never completes a handshake).
pub fn client_hello(spec: &HelloSpec<'_>, random: &[u8; 96]) -> Vec<u8> {
    let (rand, rest) = random.split_at(32);
    let (session, share) = rest.split_at(32);
    let tls13 = spec.version == Version::Tls13;
    let legacy_version = if tls13 { 0x0303 } else { spec.version.wire() };

    let mut body = Vec::with_capacity(1024);
    put_u16(&mut body, legacy_version);
    body.extend_from_slice(rand);
    if tls13 {
        body.push(32);
        body.extend_from_slice(session);
    } else {
        body.push(0);
    }
    with_u16_len(&mut body, |b| {
        for s in spec.suites {
            put_u16(b, *s);
        }
        if !tls13 && spec.renegotiation_info.is_none() {
            put_u16(b, RENEGOTIATION_SCSV);
        }
        if spec.fallback_scsv {
            put_u16(b, FALLBACK_SCSV);
        }
    });
    if spec.deflate {
        body.extend_from_slice(&[2, 1, 0]);
    } else {
        body.extend_from_slice(&[1, 0]);
    }
    if spec.version != Version::Ssl3 && (spec.extensions || tls13) {
        let before = body.len();
        with_u16_len(&mut body, |ext| {
            if let Some(name) = spec.sni {
                extension(ext, 0x0000, |e| {
                    with_u16_len(e, |list| {
                        list.push(0);
                        with_u16_len(list, |n| n.extend_from_slice(name.as_bytes()));
                    });
                });
            }
            if !spec.groups.is_empty() {
                extension(ext, 0x000a, |e| {
                    with_u16_len(e, |list| {
                        for g in spec.groups {
                            put_u16(list, *g);
                        }
                    });
                });
            }
            extension(ext, 0x000b, |e| e.extend_from_slice(&[1, 0]));
            if spec.version >= Version::Tls12 {
                extension(ext, 0x000d, |e| {
                    with_u16_len(e, |list| {
                        for a in SIGNATURE_ALGORITHMS {
                            put_u16(list, *a);
                        }
                    });
                });
            }
            extension(ext, 0x0017, |_| {});
            if spec.heartbeat {
                extension(ext, HEARTBEAT_EXTENSION, |e| e.push(1));
            }
            if spec.status {
                // status_type ocsp, no responder ids, no request extensions.
                extension(ext, STATUS_REQUEST_EXTENSION, |e| {
                    e.extend_from_slice(&[1, 0, 0, 0, 0]);
                });
                extension(ext, SCT_EXTENSION, |_| {});
            }
            if let Some(verify) = spec.renegotiation_info {
                extension(ext, 0xff01, |e| {
                    e.push(u8::try_from(verify.len()).unwrap_or(0));
                    e.extend_from_slice(verify);
                });
            }
            if tls13 {
                extension(ext, 0x002b, |e| e.extend_from_slice(&[2, 0x03, 0x04]));
                extension(ext, 0x002d, |e| e.extend_from_slice(&[1, 1]));
                extension(ext, 0x0033, |e| {
                    with_u16_len(e, |shares| {
                        if spec.x25519_share {
                            put_u16(shares, X25519);
                            with_u16_len(shares, |k| k.extend_from_slice(share));
                        }
                    });
                });
            }
        });
        // The handshake message is 4 + body bytes long; pad it out of [256, 512).
        let length = 4 + body.len();
        if (PAD_FROM..PAD_TO).contains(&length) {
            let pad = (PAD_TO - length)
                .checked_sub(4)
                .filter(|n| *n > 0)
                .unwrap_or(1);
            let mut exts = body.split_off(before + 2);
            body.truncate(before);
            extension(&mut exts, 0x0015, |e| {
                e.extend(std::iter::repeat_n(0u8, pad))
            });
            with_u16_len(&mut body, |b| b.extend_from_slice(&exts));
        }
    }

    let mut handshake = Vec::with_capacity(body.len() + 4);
    handshake.push(1);
    put_u24(&mut handshake, body.len());
    handshake.extend_from_slice(&body);

    let mut record = Vec::with_capacity(handshake.len() + 5);
    record.push(22);
    put_u16(
        &mut record,
        if spec.version == Version::Ssl3 {
            0x0300
        } else {
            0x0301
        },
    );
    with_u16_len(&mut record, |r| r.extend_from_slice(&handshake));
    record
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u24(out: &mut Vec<u8>, v: usize) {
    let b = (v as u32).to_be_bytes();
    out.extend_from_slice(b.get(1..).unwrap_or_default());
}

/// Write a two-byte length prefix for whatever `f` appends.
fn with_u16_len(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    f(out);
    let len = u16::try_from(out.len() - at - 2).unwrap_or(u16::MAX);
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

fn extension(out: &mut Vec<u8>, kind: u16, f: impl FnOnce(&mut Vec<u8>)) {
    put_u16(out, kind);
    with_u16_len(out, f);
}

/// Why a server's answer could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The first byte is not a TLS record type: not a TLS server (e.g. plain HTTP) or garbage.
    NotTls(u8),
    /// A record header carries a version that is not 3.x.
    BadRecordVersion(u16),
    /// A record longer than TLS allows (2^14 + 2048 bytes).
    RecordTooLarge(usize),
    /// A handshake message longer than the cap.
    MessageTooLarge(usize),
    /// More bytes than the whole flight may take.
    FlightTooLarge(usize),
    /// The connection ended inside a record or before a complete answer.
    Truncated,
    /// A structural error, named.
    Invalid(&'static str),
    /// A handshake message that may not come first.
    UnexpectedMessage(u8),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::NotTls(b) => write!(f, "not a TLS answer (first byte 0x{b:02x})"),
            WireError::BadRecordVersion(v) => write!(f, "record version 0x{v:04x} is not TLS"),
            WireError::RecordTooLarge(n) => write!(f, "record of {n} bytes exceeds the TLS limit"),
            WireError::MessageTooLarge(n) => {
                write!(f, "handshake message of {n} bytes exceeds the cap")
            }
            WireError::FlightTooLarge(n) => write!(f, "answer exceeds {n} bytes"),
            WireError::Truncated => f.write_str("the connection ended inside a record (truncated)"),
            WireError::Invalid(what) => write!(f, "invalid {what}"),
            WireError::UnexpectedMessage(t) => {
                write!(
                    f,
                    "unexpected handshake message type {t} before ServerHello"
                )
            }
        }
    }
}

/// Longest record body TLS allows (ciphertext limit).
pub const MAX_RECORD: usize = 16384 + 2048;
/// Longest handshake message accepted (a certificate chain of a few dozen certificates).
pub const MAX_MESSAGE: usize = 128 * 1024;
/// Most bytes read for one answer.
pub const MAX_FLIGHT: usize = 256 * 1024;
/// Most records in one answer (a real flight has a handful; tiny records only cost time).
pub const MAX_RECORDS: usize = 256;
/// Most certificates kept from a Certificate message.
pub const MAX_CERTS: usize = 16;

/// `SHA-256("HelloRetryRequest")`: the random of a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// The first seven bytes of the last eight of a downgrading TLS 1.3 server's random
/// (RFC 8446 §4.1.3); the eighth is 1 (TLS 1.2) or 0 (older).
const DOWNGRADE_SENTINEL: [u8; 7] = *b"DOWNGRD";

/// A parsed ServerHello or HelloRetryRequest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// The negotiated version (`supported_versions` if present, else the legacy field).
    pub version: u16,
    /// Whether this is a HelloRetryRequest.
    pub retry: bool,
    /// The chosen cipher suite.
    pub suite: u16,
    /// The chosen compression method (0 none, 1 DEFLATE).
    pub compression: u8,
    /// Whether the server sent `renegotiation_info` (secure renegotiation, RFC 5746).
    pub renegotiation_info: bool,
    /// TLS 1.3: the group of the server's key share (or the HRR's selected group).
    pub group: Option<u16>,
    /// Extension types, in order.
    pub extensions: Vec<u16>,
    /// The random ends with the TLS 1.3 downgrade sentinel (RFC 8446 §4.1.3): a server that
    /// supports TLS 1.3 negotiating TLS 1.2 (`DOWNGRD\x01`) or TLS 1.1 and below (`DOWNGRD\x00`).
    pub downgrade_sentinel: bool,
    /// The server random.
    pub random: [u8; 32],
    /// The body of a `signed_certificate_timestamp` extension (a TLS-encoded SCT list).
    pub sct_list: Option<Vec<u8>>,
}

/// A server's answer to a ClientHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// It accepted: a ServerHello (and, for TLS ≤ 1.2 when asked, the rest of its flight).
    Hello(Flight),
    /// It refused with an alert.
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// The alert description (40 handshake_failure, 70 protocol_version...).
        description: u8,
    },
}

/// A ServerHello and what followed it in the same flight (TLS ≤ 1.2 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flight {
    /// The ServerHello.
    pub hello: ServerHello,
    /// Certificates of a Certificate message, leaf first (DER).
    pub certificates: Vec<Vec<u8>>,
    /// The body of a ServerKeyExchange message.
    pub server_key_exchange: Option<Vec<u8>>,
    /// Whether ServerHelloDone was seen.
    pub complete: bool,
    /// The body of a CertificateStatus message (RFC 6066 §8: a stapled OCSP response), as
    /// sent.
    pub certificate_status: Option<Vec<u8>>,
}

/// The parser's verdict on the bytes so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More bytes are needed.
    NeedMore,
    /// The answer is complete.
    Done(Answer),
}

/// A cursor over untrusted bytes, in the manner of rustls's `codec::Reader`.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (out, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        Some(out)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    pub(super) fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(
            usize::from(*b.first()?) << 16 | usize::from(*b.get(1)?) << 8 | usize::from(*b.get(2)?),
        )
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

/// Parse the bytes a server sent after a ClientHello, in one go.
///
/// `full_flight`: for TLS ≤ 1.2, read on to ServerHelloDone to collect the certificates and
/// key exchange; else stop at the ServerHello. `at_eof`: the peer closed the connection, so
/// an incomplete answer is final (a ServerHello without the rest of its flight is still an
/// answer; anything less is [`WireError::Truncated`]).
pub fn parse_answer(buf: &[u8], full_flight: bool, at_eof: bool) -> Result<Progress, WireError> {
    AnswerParser::new(full_flight).advance(buf, at_eof)
}

/// The same parser as [`parse_answer`], fed as bytes arrive: it keeps its place, so each call
/// reads only the records completed since the previous one and never parses a message twice.
/// The work is linear in the size of the answer however the server slices it into records
/// (the network code calls it after every read).
#[derive(Clone, Debug)]
pub struct AnswerParser {
    /// See [`parse_answer`].
    full_flight: bool,
    /// Offset of the next record header in the bytes received.
    at: usize,
    /// Records parsed so far.
    records: usize,
    /// Handshake bytes received and not yet parsed into messages (at most one partial message).
    pending: Vec<u8>,
    /// The ServerHello and what followed it, once seen.
    flight: Option<Flight>,
}

impl AnswerParser {
    /// A parser for one answer.
    pub fn new(full_flight: bool) -> AnswerParser {
        AnswerParser {
            full_flight,
            at: 0,
            records: 0,
            pending: Vec::new(),
            flight: None,
        }
    }

    /// Parse what `buf` (every byte received so far: each call passes the same bytes, grown)
    /// adds to the previous calls. After `Done` or an error the answer is over.
    pub fn advance(&mut self, buf: &[u8], at_eof: bool) -> Result<Progress, WireError> {
        if buf.len() > MAX_FLIGHT {
            return Err(WireError::FlightTooLarge(MAX_FLIGHT));
        }
        loop {
            let mut records = Reader::new(buf.get(self.at..).unwrap_or_default());
            if records.remaining() < 5 {
                if self.records == 0 {
                    // Check the type byte early so garbage fails fast.
                    if let Some(t) = records
                        .buf
                        .first()
                        .copied()
                        .filter(|t| !(20..=23).contains(t))
                    {
                        return Err(WireError::NotTls(t));
                    }
                }
                break;
            }
            let (Some(kind), Some(version), Some(len)) =
                (records.u8(), records.u16(), records.u16())
            else {
                break;
            };
            if !(20..=23).contains(&kind) {
                return Err(WireError::NotTls(kind));
            }
            if version >> 8 != 3 {
                return Err(WireError::BadRecordVersion(version));
            }
            let len = usize::from(len);
            if len > MAX_RECORD {
                return Err(WireError::RecordTooLarge(len));
            }
            let Some(body) = records.take(len) else {
                break;
            };
            self.at += 5 + len;
            self.records += 1;
            if self.records > MAX_RECORDS {
                return Err(WireError::Invalid("answer: too many records"));
            }
            if body.is_empty() && kind != 23 {
                // RFC 5246 §6.2.1: no zero-length handshake, alert or ChangeCipherSpec
                // fragments (a stream of them only costs the reader time).
                return Err(WireError::Invalid("record: empty fragment"));
            }
            match kind {
                21 => {
                    let mut a = Reader::new(body);
                    let (Some(level), Some(description)) = (a.u8(), a.u8()) else {
                        return Err(WireError::Invalid("alert"));
                    };
                    if let Some(f) = self.flight.take() {
                        // An alert in the middle of a flight ends it.
                        return Ok(Progress::Done(Answer::Hello(f)));
                    }
                    if a.remaining() != 0 {
                        return Err(WireError::Invalid("alert length"));
                    }
                    if level == 1 && description != 0 {
                        continue; // a warning (e.g. unrecognized_name) before the ServerHello
                    }
                    return Ok(Progress::Done(Answer::Alert { level, description }));
                }
                22 => {
                    self.pending.extend_from_slice(body);
                    if let Some(answer) = self.messages()? {
                        return Ok(Progress::Done(answer));
                    }
                }
                20 => {} // ChangeCipherSpec (TLS 1.3 middlebox compatibility)
                _ => {
                    // Application data: encrypted, so only legal after a TLS 1.3 ServerHello,
                    // which returns before getting here.
                    return match self.flight.take() {
                        Some(f) => Ok(Progress::Done(Answer::Hello(f))),
                        None => Err(WireError::Invalid("application data before ServerHello")),
                    };
                }
            }
        }
        if at_eof {
            return match self.flight.take() {
                Some(f) => Ok(Progress::Done(Answer::Hello(f))),
                None => Err(WireError::Truncated),
            };
        }
        Ok(Progress::NeedMore)
    }

    /// Parse the complete handshake messages pending; the answer when they end it.
    fn messages(&mut self) -> Result<Option<Answer>, WireError> {
        let mut messages = Reader::new(&self.pending);
        let mut consumed = 0usize;
        let mut answer = None;
        while messages.remaining() >= 4 {
            let (Some(t), Some(n)) = (messages.u8(), messages.u24()) else {
                break;
            };
            if n > MAX_MESSAGE {
                return Err(WireError::MessageTooLarge(n));
            }
            let Some(msg) = messages.take(n) else {
                break;
            };
            consumed += 4 + n;
            match (&mut self.flight, t) {
                (None, 0) => {} // HelloRequest: ignore
                (None, 2) => {
                    let hello = parse_server_hello(msg)?;
                    let stop = !self.full_flight
                        || hello.retry
                        || hello.version >= Version::Tls13.wire()
                        || hello.version < Version::Ssl3.wire();
                    let f = Flight {
                        hello,
                        certificates: Vec::new(),
                        server_key_exchange: None,
                        complete: false,
                        certificate_status: None,
                    };
                    if stop {
                        answer = Some(Answer::Hello(f));
                        break;
                    }
                    self.flight = Some(f);
                }
                (None, other) => return Err(WireError::UnexpectedMessage(other)),
                (Some(f), 11) => f.certificates = parse_certificates(msg)?,
                (Some(f), 12) => f.server_key_exchange = Some(msg.to_vec()),
                (Some(f), 22) => f.certificate_status = Some(msg.to_vec()),
                (Some(f), 14) => {
                    if !msg.is_empty() {
                        return Err(WireError::Invalid("ServerHelloDone"));
                    }
                    f.complete = true;
                    answer = self.flight.take().map(Answer::Hello);
                    break;
                }
                (Some(_), _) => {} // CertificateRequest...: not needed
            }
        }
        self.pending.drain(..consumed.min(self.pending.len()));
        Ok(answer)
    }
}

fn parse_server_hello(msg: &[u8]) -> Result<ServerHello, WireError> {
    let bad = WireError::Invalid;
    let mut r = Reader::new(msg);
    let legacy = r.u16().ok_or(bad("ServerHello version"))?;
    let random = r.take(32).ok_or(bad("ServerHello random"))?;
    let sid_len = usize::from(r.u8().ok_or(bad("ServerHello session id"))?);
    if sid_len > 32 {
        return Err(bad("ServerHello session id length"));
    }
    r.take(sid_len).ok_or(bad("ServerHello session id"))?;
    let suite = r.u16().ok_or(bad("ServerHello cipher suite"))?;
    let compression = r.u8().ok_or(bad("ServerHello compression"))?;
    let mut hello = ServerHello {
        version: legacy,
        retry: random == HRR_RANDOM,
        suite,
        compression,
        renegotiation_info: false,
        group: None,
        extensions: Vec::new(),
        random: random.try_into().unwrap_or([0; 32]),
        sct_list: None,
        downgrade_sentinel: random
            .get(24..31)
            .is_some_and(|tail| tail == DOWNGRADE_SENTINEL)
            && random.get(31).is_some_and(|b| *b <= 1),
    };
    if r.remaining() > 0 {
        let len = usize::from(r.u16().ok_or(bad("extensions length"))?);
        let mut exts = Reader::new(r.take(len).ok_or(bad("extensions length"))?);
        // A set, not a scan of the list: a hostile ServerHello may carry 16k extensions.
        let mut seen = std::collections::HashSet::new();
        while exts.remaining() > 0 {
            let kind = exts.u16().ok_or(bad("extension"))?;
            let n = usize::from(exts.u16().ok_or(bad("extension length"))?);
            let data = exts.take(n).ok_or(bad("extension length"))?;
            if !seen.insert(kind) {
                return Err(bad("duplicate extension"));
            }
            hello.extensions.push(kind);
            let mut d = Reader::new(data);
            match kind {
                0xff01 => {
                    // RFC 5746 §3.4: on an initial handshake, renegotiated_connection is empty.
                    if d.u8() != Some(0) {
                        return Err(bad(
                            "renegotiation_info (renegotiated_connection must be empty on an initial handshake)",
                        ));
                    }
                    hello.renegotiation_info = true;
                }
                0x002b => hello.version = d.u16().ok_or(bad("supported_versions"))?,
                SCT_EXTENSION => hello.sct_list = Some(d.rest().to_vec()),
                0x0033 => {
                    hello.group = Some(d.u16().ok_or(bad("key_share"))?);
                    d.rest();
                }
                _ => {
                    d.rest();
                }
            }
            if d.remaining() != 0 {
                return Err(bad("extension body"));
            }
        }
    }
    if r.remaining() != 0 {
        return Err(bad("ServerHello trailing bytes"));
    }
    if Version::from_wire(hello.version).is_none() {
        return Err(bad("ServerHello version"));
    }
    Ok(hello)
}

fn parse_certificates(msg: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
    let bad = WireError::Invalid;
    let mut r = Reader::new(msg);
    let len = r.u24().ok_or(bad("Certificate list"))?;
    let mut list = Reader::new(r.take(len).ok_or(bad("Certificate list length"))?);
    if r.remaining() != 0 {
        return Err(bad("Certificate trailing bytes"));
    }
    let mut out = Vec::new();
    while list.remaining() > 0 {
        let n = list.u24().ok_or(bad("certificate length"))?;
        let der = list.take(n).ok_or(bad("certificate length"))?;
        if out.len() < MAX_CERTS {
            out.push(der.to_vec());
        }
    }
    Ok(out)
}

/// What a TLS ≤ 1.2 ServerKeyExchange reveals about the key exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyExchange {
    /// Finite-field Diffie-Hellman with a prime of this many bits.
    Dh {
        /// Bit length of p.
        prime_bits: u32,
        /// The RFC 7919 group (`ffdhe2048` = 256 ...) when p is one of its primes: a server
        /// that negotiates groups (RFC 7919) chose it because the hello offered it.
        ffdhe: Option<u16>,
    },
    /// Elliptic-curve Diffie-Hellman on a named group.
    Ecdh {
        /// The group.
        group: u16,
    },
    /// Explicit curve parameters (deprecated).
    ExplicitCurve,
}

/// The layout of a ServerKeyExchange, by key exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkeLayout {
    /// `dh_p, dh_g, dh_Ys, signature` (DHE_RSA, DHE_DSS, DH_anon).
    Dh,
    /// `curve_type, named_curve, public, signature` (ECDHE_*, ECDH_anon).
    Ecdh,
    /// `psk_identity_hint`, then the DH parameters (DHE_PSK, RFC 4279 §3).
    DhPsk,
    /// `psk_identity_hint`, then the ECDH parameters (ECDHE_PSK, RFC 5489 §2).
    EcdhPsk,
}

/// The first 12 bytes shared by every RFC 7919 prime (64 one bits, then the bits of e); the
/// last 8 are all ones. RFC 3526 MODP primes continue with the bits of pi (`C9 0F DA A2`).
const FFDHE_PREFIX: [u8; 12] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xAD, 0xF8, 0x54, 0x58,
];

/// The RFC 7919 group whose prime `p` (big-endian, no leading zeros) is, if any.
fn ffdhe_group(p: &[u8]) -> Option<u16> {
    let group = match p.len() {
        256 => 256,
        384 => 257,
        512 => 258,
        768 => 259,
        1024 => 260,
        _ => return None,
    };
    (p.starts_with(&FFDHE_PREFIX) && p.ends_with(&[0xFF; 8])).then_some(group)
}

/// Read the DH prime size or the curve from a ServerKeyExchange body laid out as `layout`.
pub fn parse_key_exchange(body: &[u8], layout: SkeLayout) -> Result<KeyExchange, WireError> {
    let mut r = Reader::new(body);
    if matches!(layout, SkeLayout::DhPsk | SkeLayout::EcdhPsk) {
        let n = usize::from(r.u16().ok_or(WireError::Invalid("PSK identity hint"))?);
        r.take(n).ok_or(WireError::Invalid("PSK identity hint"))?;
    }
    if matches!(layout, SkeLayout::Dh | SkeLayout::DhPsk) {
        let n = usize::from(r.u16().ok_or(WireError::Invalid("DH parameters"))?);
        let p = r.take(n).ok_or(WireError::Invalid("DH prime"))?;
        let p = p
            .iter()
            .position(|b| *b != 0)
            .and_then(|pos| p.get(pos..))
            .unwrap_or_default();
        let Some(top) = p.first() else {
            return Err(WireError::Invalid("DH prime"));
        };
        let bytes = u32::try_from(p.len()).unwrap_or(u32::MAX);
        let bits = bytes
            .saturating_sub(1)
            .saturating_mul(8)
            .saturating_add(8 - top.leading_zeros());
        return Ok(KeyExchange::Dh {
            prime_bits: bits,
            ffdhe: ffdhe_group(p),
        });
    }
    match r.u8().ok_or(WireError::Invalid("ECDH parameters"))? {
        3 => Ok(KeyExchange::Ecdh {
            group: r.u16().ok_or(WireError::Invalid("ECDH named curve"))?,
        }),
        1 | 2 => Ok(KeyExchange::ExplicitCurve),
        _ => Err(WireError::Invalid("ECDH curve type")),
    }
}

/// A record a server sent after its first flight, reduced to what a vulnerability probe
/// judges: never the bytes of a heartbeat response, which may be the server's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An alert.
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// The alert description.
        description: u8,
    },
    /// A heartbeat message (RFC 6520).
    Heartbeat {
        /// 1 request, 2 response.
        kind: u8,
        /// The payload length the message claims.
        payload_length: u16,
        /// Bytes of the record after the message type and length: payload and padding.
        body_len: usize,
    },
    /// Any other record (ChangeCipherSpec, handshake, application data), by content type.
    Other {
        /// The content type.
        kind: u8,
        /// The record body length.
        len: usize,
    },
}

/// Most bytes read after the first flight (a heartbeat response to the probe's 4 KiB claim,
/// with room for alerts).
pub const MAX_REPLIES: usize = 64 * 1024;

/// The complete records in `buf` (bytes a server sent after its first flight), and how many
/// bytes they take; an incomplete record at the end is left for the next read. Strict like the
/// hello parser: known content types (20 to 24), 3.x record versions, the TLS record size
/// limit, at most [`MAX_RECORDS`] records and [`MAX_REPLIES`] bytes.
pub fn parse_replies(buf: &[u8]) -> Result<(Vec<Reply>, usize), WireError> {
    if buf.len() > MAX_REPLIES {
        return Err(WireError::FlightTooLarge(MAX_REPLIES));
    }
    let mut out = Vec::new();
    let mut used = 0usize;
    while let Some((kind, body, n)) = split_record(buf.get(used..).unwrap_or_default())? {
        used += n;
        if out.len() >= MAX_RECORDS {
            return Err(WireError::Invalid("answer: too many records"));
        }
        let mut b = Reader::new(body);
        out.push(match kind {
            21 => {
                let (Some(level), Some(description), 0) = (b.u8(), b.u8(), b.remaining()) else {
                    return Err(WireError::Invalid("alert length"));
                };
                Reply::Alert { level, description }
            }
            HEARTBEAT_RECORD => {
                let (Some(kind), Some(payload_length)) = (b.u8(), b.u16()) else {
                    return Err(WireError::Invalid("heartbeat message"));
                };
                Reply::Heartbeat {
                    kind,
                    payload_length,
                    body_len: b.remaining(),
                }
            }
            kind => Reply::Other {
                kind,
                len: body.len(),
            },
        });
    }
    Ok((out, used))
}

/// A record: content type, body, and the bytes it takes with its header.
pub type Record<'a> = (u8, &'a [u8], usize);

/// The first record of `buf`: its content type, its body and the bytes it takes; none while
/// it is incomplete. Strict: content types 20 to 24, a 3.x version, at most [`MAX_RECORD`]
/// bytes (checked as soon as the header is there).
pub fn split_record(buf: &[u8]) -> Result<Option<Record<'_>>, WireError> {
    let mut r = Reader::new(buf);
    if let Some(t) = r.buf.first().copied().filter(|t| !(20..=24).contains(t)) {
        return Err(WireError::NotTls(t));
    }
    let (Some(kind), Some(version), Some(len)) = (r.u8(), r.u16(), r.u16()) else {
        return Ok(None);
    };
    if version >> 8 != 3 {
        return Err(WireError::BadRecordVersion(version));
    }
    let len = usize::from(len);
    if len > MAX_RECORD {
        return Err(WireError::RecordTooLarge(len));
    }
    Ok(r.take(len).map(|body| (kind, body, 5 + len)))
}

/// The name of an alert description, for messages.
pub fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        47 => "illegal_parameter",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        120 => "no_application_protocol",
        _ => "alert",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A handshake record holding `messages`.
    pub fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    pub fn message(t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t];
        put_u24(&mut m, body.len());
        m.extend_from_slice(body);
        m
    }

    /// A ServerHello body.
    pub fn server_hello(version: u16, suite: u16, exts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        put_u16(&mut b, version);
        b.extend_from_slice(&[7; 32]);
        b.push(0);
        put_u16(&mut b, suite);
        b.push(0);
        with_u16_len(&mut b, |e| {
            for (k, v) in exts {
                extension(e, *k, |d| d.extend_from_slice(v));
            }
        });
        b
    }

    #[test]
    fn builds_well_formed_hellos() {
        let suites = [0xC02F, 0x002F];
        for version in Version::ALL {
            let spec = HelloSpec {
                version,
                suites: &suites,
                groups: &[29, 23],
                x25519_share: true,
                sni: Some("app.test"),
                deflate: false,
                extensions: true,
                fallback_scsv: false,
                heartbeat: false,
                renegotiation_info: None,
                status: false,
            };
            let rec = client_hello(&spec, &[1; 96]);
            let mut r = Reader::new(&rec);
            assert_eq!(r.u8(), Some(22));
            r.u16().unwrap();
            let len = usize::from(r.u16().unwrap());
            assert_eq!(len, r.remaining());
            assert_eq!(r.u8(), Some(1));
            assert_eq!(r.u24(), Some(len - 4));
            let legacy = r.u16().unwrap();
            assert_eq!(legacy, version.wire().min(0x0303));
            r.take(32).unwrap();
            let sid = usize::from(r.u8().unwrap());
            r.take(sid).unwrap();
            let n = usize::from(r.u16().unwrap());
            let offered = r.take(n).unwrap();
            let has_scsv = offered.chunks(2).any(|c| c == [0x00, 0xFF]);
            assert_eq!(has_scsv, version != Version::Tls13);
            assert_eq!(r.u8(), Some(1));
            r.u8().unwrap();
            if version == Version::Ssl3 {
                assert_eq!(r.remaining(), 0, "no extensions in SSLv3 hellos");
            } else {
                let n = usize::from(r.u16().unwrap());
                assert_eq!(n, r.remaining());
                let exts = rec.windows(4).any(|w| w == [0x00, 0x2b, 0x00, 0x03]);
                assert_eq!(exts, version == Version::Tls13);
            }
        }
    }

    /// The handshake message length of a hello and whether it carries extension `kind`.
    fn hello_facts(rec: &[u8], kind: u16) -> (usize, bool) {
        let len = usize::from(u16::from_be_bytes([rec[3], rec[4]]));
        let mut r = Reader::new(&rec[5 + 4 + 34..]);
        let sid = usize::from(r.u8().unwrap());
        r.take(sid).unwrap();
        let n = usize::from(r.u16().unwrap());
        r.take(n).unwrap();
        let n = usize::from(r.u8().unwrap());
        r.take(n).unwrap();
        let mut found = false;
        if r.remaining() > 0 {
            let n = usize::from(r.u16().unwrap());
            let mut exts = Reader::new(r.take(n).unwrap());
            while exts.remaining() > 0 {
                let k = exts.u16().unwrap();
                let n = usize::from(exts.u16().unwrap());
                exts.take(n).unwrap();
                found |= k == kind;
            }
        }
        assert_eq!(r.remaining(), 0);
        (len, found)
    }

    #[test]
    fn hellos_between_256_and_511_bytes_are_padded_to_512() {
        let all: Vec<u16> = (1..=400).collect();
        for version in [Version::Tls10, Version::Tls12, Version::Tls13] {
            for n in 0..all.len() {
                let spec = HelloSpec {
                    version,
                    suites: &all[..n],
                    groups: &[29, 23],
                    x25519_share: true,
                    sni: Some("app.test"),
                    deflate: false,
                    extensions: true,
                    fallback_scsv: false,
                    heartbeat: false,
                    renegotiation_info: None,
                    status: false,
                };
                let rec = client_hello(&spec, &[1; 96]);
                let (len, padded) = hello_facts(&rec, 0x0015);
                assert!(!(256..512).contains(&len), "{version} {n} suites: {len}");
                assert_eq!(rec.len(), len + 5);
                if padded {
                    assert!(len <= 512 + 4, "{version} {n}: padded to {len}");
                }
            }
        }
        // Without extensions (an extension-intolerant stack) there is no padding either.
        let spec = HelloSpec {
            version: Version::Tls10,
            suites: &all[..150],
            groups: &[29],
            x25519_share: false,
            sni: Some("app.test"),
            deflate: false,
            extensions: false,
            fallback_scsv: false,
            heartbeat: false,
            renegotiation_info: None,
            status: false,
        };
        let rec = client_hello(&spec, &[1; 96]);
        let (len, _) = hello_facts(&rec, 0x0015);
        assert_eq!(len, 4 + 2 + 32 + 1 + 2 + 2 * 151 + 2, "no extension block");
    }

    #[test]
    fn parses_a_tls12_flight() {
        let hello = server_hello(0x0303, 0xC02F, &[(0xff01, &[0])]);
        let mut certs = Vec::new();
        put_u24(&mut certs, 6);
        put_u24(&mut certs, 3);
        certs.extend_from_slice(&[1, 2, 3]);
        let ske = [3, 0, 23, 65];
        let mut hs = message(2, &hello);
        hs.extend(message(11, &certs));
        hs.extend(message(12, &ske));
        // Split the messages over two records, and the second record over two reads.
        let (a, b) = hs.split_at(hello.len() + 6);
        let mut bytes = record(22, a);
        let mut tail = record(22, b);
        tail.extend(record(22, &message(14, &[])));
        assert_eq!(parse_answer(&bytes, true, false), Ok(Progress::NeedMore));
        bytes.extend_from_slice(&tail[..3]);
        assert_eq!(parse_answer(&bytes, true, false), Ok(Progress::NeedMore));
        bytes.extend_from_slice(&tail[3..]);
        let Ok(Progress::Done(Answer::Hello(f))) = parse_answer(&bytes, true, false) else {
            panic!("no flight")
        };
        assert_eq!(f.hello.suite, 0xC02F);
        assert!(f.hello.renegotiation_info && f.complete);
        assert_eq!(f.certificates, vec![vec![1, 2, 3]]);
        assert_eq!(
            parse_key_exchange(f.server_key_exchange.as_ref().unwrap(), SkeLayout::Ecdh),
            Ok(KeyExchange::Ecdh { group: 23 })
        );
        // Stopping at the ServerHello needs only the first record.
        let Ok(Progress::Done(Answer::Hello(f))) =
            parse_answer(&record(22, &message(2, &hello)), false, false)
        else {
            panic!()
        };
        assert!(!f.complete);
    }

    #[test]
    fn recognises_tls13_and_retry() {
        let sh = server_hello(
            0x0303,
            0x1301,
            &[(0x002b, &[3, 4]), (0x0033, &[0, 29, 0, 1, 9])],
        );
        let Ok(Progress::Done(Answer::Hello(f))) =
            parse_answer(&record(22, &message(2, &sh)), true, false)
        else {
            panic!()
        };
        assert_eq!(
            (f.hello.version, f.hello.group, f.hello.retry),
            (0x0304, Some(29), false)
        );
        let mut hrr = server_hello(0x0303, 0x1302, &[(0x002b, &[3, 4]), (0x0033, &[0, 24])]);
        hrr.get_mut(2..34).unwrap().copy_from_slice(&HRR_RANDOM);
        let Ok(Progress::Done(Answer::Hello(f))) =
            parse_answer(&record(22, &message(2, &hrr)), true, false)
        else {
            panic!()
        };
        assert!(f.hello.retry);
        assert_eq!(f.hello.group, Some(24));
    }

    #[test]
    fn alerts_and_hostile_bytes() {
        assert_eq!(
            parse_answer(&record(21, &[2, 40]), true, false),
            Ok(Progress::Done(Answer::Alert {
                level: 2,
                description: 40
            }))
        );
        // A warning before the ServerHello is skipped.
        let mut bytes = record(21, &[1, 112]);
        bytes.extend(record(21, &[2, 70]));
        assert_eq!(
            parse_answer(&bytes, true, false),
            Ok(Progress::Done(Answer::Alert {
                level: 2,
                description: 70
            }))
        );
        assert_eq!(
            parse_answer(b"HTTP/1.1 400", true, false),
            Err(WireError::NotTls(b'H'))
        );
        assert_eq!(
            parse_answer(&[0x16, 0x03], true, false),
            Ok(Progress::NeedMore)
        );
        assert_eq!(
            parse_answer(&[0x16, 0x03], true, true),
            Err(WireError::Truncated)
        );
        assert_eq!(
            parse_answer(&[0x16, 0x03, 0x03, 0xff, 0xff], true, false),
            Err(WireError::RecordTooLarge(0xffff))
        );
        assert_eq!(
            parse_answer(&[0x16, 0x05, 0x03, 0x00, 0x01, 0], true, false),
            Err(WireError::BadRecordVersion(0x0503))
        );
        // A message length over the cap is refused before its bytes arrive.
        assert_eq!(
            parse_answer(&record(22, &[2, 0x7f, 0xff, 0xff]), true, false),
            Err(WireError::MessageTooLarge(0x7fffff))
        );
        // A ServerHello with a lying extension length.
        let mut sh = server_hello(0x0303, 0xC02F, &[(0xff01, &[0])]);
        let n = sh.len();
        sh[n - 3] = 9;
        assert!(matches!(
            parse_answer(&record(22, &message(2, &sh)), true, false),
            Err(WireError::Invalid(_))
        ));
        assert_eq!(
            parse_answer(&record(22, &message(11, &[0, 0, 0])), true, false),
            Err(WireError::UnexpectedMessage(11))
        );
    }

    /// A TLS 1.2 flight: ServerHello, Certificate, ServerKeyExchange, ServerHelloDone, each in
    /// its own record.
    fn flight12() -> Vec<u8> {
        let mut certs = Vec::new();
        put_u24(&mut certs, 6);
        put_u24(&mut certs, 3);
        certs.extend_from_slice(&[1, 2, 3]);
        let mut bytes = record(
            22,
            &message(2, &server_hello(0x0303, 0xC02F, &[(0xff01, &[0])])),
        );
        bytes.extend(record(22, &message(11, &certs)));
        bytes.extend(record(22, &message(12, &[3, 0, 23, 65])));
        bytes.extend(record(22, &message(14, &[])));
        bytes
    }

    #[test]
    fn the_incremental_parser_agrees_with_the_one_shot_parser_at_every_split() {
        let bytes = flight12();
        let whole = parse_answer(&bytes, true, false);
        assert!(matches!(whole, Ok(Progress::Done(Answer::Hello(_)))));
        // Fed one byte at a time, and in two pieces cut anywhere.
        let mut p = AnswerParser::new(true);
        let mut last = Ok(Progress::NeedMore);
        for end in 1..=bytes.len() {
            last = p.advance(&bytes[..end], false);
            if end < bytes.len() {
                assert_eq!(last, Ok(Progress::NeedMore), "at {end}");
            }
        }
        assert_eq!(last, whole);
        for cut in 0..bytes.len() {
            let mut p = AnswerParser::new(true);
            assert_eq!(p.advance(&bytes[..cut], false), Ok(Progress::NeedMore));
            assert_eq!(p.advance(&bytes, false), whole, "cut at {cut}");
        }
        // A message split over many one-byte records.
        let sh = message(2, &server_hello(0x0303, 0xC02F, &[]));
        let split: Vec<u8> = sh.iter().flat_map(|b| record(22, &[*b])).collect();
        let Ok(Progress::Done(Answer::Hello(f))) = parse_answer(&split, false, false) else {
            panic!()
        };
        assert_eq!(f.hello.suite, 0xC02F);
    }

    #[test]
    fn replies_keep_lengths_not_bytes() {
        let mut bytes = record(24, &[2, 0x10, 0x00, 0xAA, 0xBB, 0xCC]);
        bytes.extend(record(21, &[2, 10]));
        bytes.extend(record(20, &[1]));
        bytes.extend(&record(21, &[1, 0])[..4]);
        let (replies, used) = parse_replies(&bytes).unwrap();
        assert_eq!(
            replies,
            vec![
                Reply::Heartbeat {
                    kind: 2,
                    payload_length: 0x1000,
                    body_len: 3
                },
                Reply::Alert {
                    level: 2,
                    description: 10
                },
                Reply::Other { kind: 20, len: 1 },
            ]
        );
        assert_eq!(used, bytes.len() - 4, "the cut record waits");
        assert_eq!(parse_replies(b"HTTP/1.1"), Err(WireError::NotTls(b'H')));
        assert_eq!(
            parse_replies(&record(21, &[2, 10, 0])),
            Err(WireError::Invalid("alert length"))
        );
        assert_eq!(
            parse_replies(&record(24, &[2, 0])),
            Err(WireError::Invalid("heartbeat message"))
        );
        assert_eq!(
            parse_replies(&[24, 3, 3, 0xff, 0xff]),
            Err(WireError::RecordTooLarge(0xffff))
        );
        assert_eq!(
            parse_replies(&[24, 4, 3, 0, 0]),
            Err(WireError::BadRecordVersion(0x0403))
        );
        let many: Vec<u8> = (0..300).flat_map(|_| record(20, &[1])).collect();
        assert_eq!(
            parse_replies(&many),
            Err(WireError::Invalid("answer: too many records"))
        );
    }

    #[test]
    fn the_downgrade_sentinel_is_recognised() {
        for (tail, want) in [
            (*b"DOWNGRD\x01", true),
            (*b"DOWNGRD\x00", true),
            (*b"DOWNGRD\x02", false),
            ([7; 8], false),
        ] {
            let mut sh = server_hello(0x0303, 0xC02F, &[]);
            sh[2 + 24..2 + 32].copy_from_slice(&tail);
            let Ok(Progress::Done(Answer::Hello(f))) =
                parse_answer(&record(22, &message(2, &sh)), false, false)
            else {
                panic!()
            };
            assert_eq!(f.hello.downgrade_sentinel, want, "{tail:?}");
        }
    }

    #[test]
    fn fallback_and_heartbeat_hellos() {
        let spec = HelloSpec {
            version: Version::Tls12,
            suites: &[0xC02F],
            groups: &[29],
            x25519_share: false,
            sni: None,
            deflate: false,
            extensions: true,
            fallback_scsv: true,
            heartbeat: true,
            renegotiation_info: None,
            status: false,
        };
        let rec = client_hello(&spec, &[1; 96]);
        let (_, hb) = hello_facts(&rec, HEARTBEAT_EXTENSION);
        assert!(hb);
        assert!(rec.windows(2).any(|w| w == FALLBACK_SCSV.to_be_bytes()));
    }

    #[test]
    fn record_limits() {
        // RFC 5246 §6.2.1: no zero-length handshake, alert or ChangeCipherSpec fragments.
        for kind in [20, 21, 22] {
            assert_eq!(
                parse_answer(&record(kind, &[]), true, false),
                Err(WireError::Invalid("record: empty fragment")),
                "type {kind}"
            );
        }
        let hello = record(22, &message(2, &server_hello(0x0303, 0xC02F, &[])));
        let mut bytes = hello.clone();
        bytes.extend(record(22, &[]));
        assert_eq!(
            parse_answer(&bytes, true, false),
            Err(WireError::Invalid("record: empty fragment"))
        );
        // Tiny records are bounded in number.
        let mut many = hello;
        many.extend((0..300).flat_map(|_| record(22, &message(0, &[]))));
        assert_eq!(
            parse_answer(&many, true, false),
            Err(WireError::Invalid("answer: too many records"))
        );
    }

    #[test]
    fn a_server_hello_with_thousands_of_extensions_is_read_once() {
        let exts: Vec<(u16, &[u8])> = (0x1000u16..0x1000 + 16_000).map(|k| (k, &[][..])).collect();
        let sh = message(2, &server_hello(0x0303, 0xC02F, &exts));
        let bytes: Vec<u8> = sh.chunks(16_384).flat_map(|c| record(22, c)).collect();
        let Ok(Progress::Done(Answer::Hello(f))) = parse_answer(&bytes, false, false) else {
            panic!()
        };
        assert_eq!(f.hello.extensions.len(), 16_000);
        // The same with one repeated extension.
        let mut exts = exts;
        exts.push((0x1000, &[]));
        let sh = message(2, &server_hello(0x0303, 0xC02F, &exts));
        let bytes: Vec<u8> = sh.chunks(16_384).flat_map(|c| record(22, c)).collect();
        assert_eq!(
            parse_answer(&bytes, false, false),
            Err(WireError::Invalid("duplicate extension"))
        );
    }

    #[test]
    fn renegotiation_info_must_be_empty_on_an_initial_handshake() {
        for (data, ok) in [(&[0u8][..], true), (&[1, 7][..], false), (&[][..], false)] {
            let sh = record(
                22,
                &message(2, &server_hello(0x0303, 0xC02F, &[(0xff01, data)])),
            );
            let got = parse_answer(&sh, false, false);
            assert_eq!(got.is_ok(), ok, "{data:?}: {got:?}");
        }
    }

    fn dh_params(p: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        with_u16_len(&mut body, |b| b.extend_from_slice(p));
        with_u16_len(&mut body, |b| b.push(2));
        with_u16_len(&mut body, |b| b.push(5));
        body
    }

    #[test]
    fn dh_prime_bits() {
        let mut p = vec![0, 0x81];
        p.extend([0u8; 127]);
        assert_eq!(
            parse_key_exchange(&dh_params(&p), SkeLayout::Dh),
            Ok(KeyExchange::Dh {
                prime_bits: 1024,
                ffdhe: None
            })
        );
        assert!(parse_key_exchange(&[0, 5, 1], SkeLayout::Dh).is_err());
        assert!(parse_key_exchange(&[0, 1, 0], SkeLayout::Dh).is_err());
        assert!(parse_key_exchange(&[9], SkeLayout::Ecdh).is_err());
        // An RFC 7919 prime is recognised (its shape: 64 ones, the bits of e, 64 ones).
        let mut ffdhe = FFDHE_PREFIX.to_vec();
        ffdhe.resize(256 - 8, 0x5A);
        ffdhe.extend([0xFF; 8]);
        assert_eq!(
            parse_key_exchange(&dh_params(&ffdhe), SkeLayout::Dh),
            Ok(KeyExchange::Dh {
                prime_bits: 2048,
                ffdhe: Some(256)
            })
        );
        // The RFC 3526 MODP prime of the same size is not.
        let mut modp = vec![0xFF; 8];
        modp.extend([0xC9, 0x0F, 0xDA, 0xA2]);
        modp.resize(256 - 8, 0x5A);
        modp.extend([0xFF; 8]);
        assert_eq!(
            parse_key_exchange(&dh_params(&modp), SkeLayout::Dh),
            Ok(KeyExchange::Dh {
                prime_bits: 2048,
                ffdhe: None
            })
        );
    }

    #[test]
    fn psk_key_exchanges_start_with_the_identity_hint() {
        // A 300-byte hint whose bytes would read as a 2400-bit "prime" (RFC 4279 §3).
        let mut p = vec![0x81];
        p.extend([0u8; 127]);
        let mut body = Vec::new();
        with_u16_len(&mut body, |b| b.extend([0xEE; 300]));
        body.extend(dh_params(&p));
        assert_eq!(
            parse_key_exchange(&body, SkeLayout::DhPsk),
            Ok(KeyExchange::Dh {
                prime_bits: 1024,
                ffdhe: None
            })
        );
        assert!(matches!(
            parse_key_exchange(&body, SkeLayout::Dh),
            Ok(KeyExchange::Dh {
                prime_bits: 2400,
                ..
            })
        ));
        // ECDHE_PSK (RFC 5489): an empty hint, then the curve.
        assert_eq!(
            parse_key_exchange(&[0, 0, 3, 0, 29, 32], SkeLayout::EcdhPsk),
            Ok(KeyExchange::Ecdh { group: 29 })
        );
        assert!(parse_key_exchange(&[0, 9, 1], SkeLayout::EcdhPsk).is_err());
    }
}
