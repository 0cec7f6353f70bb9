//! SSL 2.0 on the wire (the Netscape draft, `draft-hickman-netscape-ssl-00`): a CLIENT-HELLO
//! builder and a strict, bounded parser of the server's first record (SERVER-HELLO, ERROR, or a
//! TLS answer from a server that does not speak SSLv2).
//!
//! SSLv2 records have a 2-byte header whose high bit is set (length = the low 15 bits), or a
//! 3-byte header for padded (encrypted) records; a server's first record is never encrypted,
//! so only the 2-byte header is accepted. The parser checks every length against what is left, caps the record at the
//! 15-bit limit, and rejects trailing bytes inside the SERVER-HELLO. The fuzzer checks it on
//! anything (`fuzz/fuzz_targets/sslv2_server_hello.rs`).

use super::wire::Reader;
use std::fmt;

/// The SSLv2 protocol version (SSL 2.0 uses 0x0002).
pub const SSL2_VERSION: u16 = 0x0002;
/// MSG-ERROR.
pub const MSG_ERROR: u8 = 0;
/// MSG-CLIENT-HELLO.
pub const MSG_CLIENT_HELLO: u8 = 1;
/// MSG-SERVER-HELLO.
pub const MSG_SERVER_HELLO: u8 = 4;
/// SSL_CT_X509_CERTIFICATE.
pub const X509_CERTIFICATE: u8 = 1;
/// The longest record body a 2-byte header can announce.
pub const MAX_RECORD: usize = 0x7fff;
/// Most cipher specs kept from a SERVER-HELLO (there are 8 kinds in all).
pub const MAX_CIPHERS: usize = 64;

/// The SSLv2 cipher kinds (3 bytes each), as OpenSSL 0.9.8 offered them.
pub const CIPHER_KINDS: &[(u32, &str)] = &[
    (0x010080, "SSL_CK_RC4_128_WITH_MD5"),
    (0x020080, "SSL_CK_RC4_128_EXPORT40_WITH_MD5"),
    (0x030080, "SSL_CK_RC2_128_CBC_WITH_MD5"),
    (0x040080, "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5"),
    (0x050080, "SSL_CK_IDEA_128_CBC_WITH_MD5"),
    (0x060040, "SSL_CK_DES_64_CBC_WITH_MD5"),
    (0x0700c0, "SSL_CK_DES_192_EDE3_CBC_WITH_MD5"),
    (0x080080, "SSL_CK_RC4_64_WITH_MD5"),
];

/// The name of an SSLv2 cipher kind (`0x%06x` when unknown).
pub fn cipher_name(kind: u32) -> String {
    CIPHER_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or_else(|| format!("0x{kind:06x}"), |(_, n)| (*n).to_string())
}

/// A CLIENT-HELLO record offering every SSLv2 cipher kind, no session id, and `challenge`
/// (16 bytes, as most clients sent).
pub fn client_hello(challenge: &[u8; 16]) -> Vec<u8> {
    let mut body = vec![MSG_CLIENT_HELLO];
    body.extend_from_slice(&SSL2_VERSION.to_be_bytes());
    let specs = u16::try_from(CIPHER_KINDS.len() * 3).unwrap_or(0);
    body.extend_from_slice(&specs.to_be_bytes());
    body.extend_from_slice(&0u16.to_be_bytes()); // session id length
    body.extend_from_slice(&16u16.to_be_bytes()); // challenge length
    for (kind, _) in CIPHER_KINDS {
        body.extend_from_slice(kind.to_be_bytes().get(1..).unwrap_or_default());
    }
    body.extend_from_slice(challenge);
    let len = u16::try_from(body.len()).unwrap_or(0) | 0x8000;
    let mut record = len.to_be_bytes().to_vec();
    record.extend(body);
    record
}

/// Why a server's answer to the CLIENT-HELLO could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sslv2Error {
    /// The connection ended inside the record.
    Truncated,
    /// A structural error, named.
    Invalid(&'static str),
    /// More bytes than a record may have.
    TooLarge(usize),
}

impl fmt::Display for Sslv2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sslv2Error::Truncated => f.write_str("the connection ended inside an SSLv2 record"),
            Sslv2Error::Invalid(what) => write!(f, "invalid SSLv2 {what}"),
            Sslv2Error::TooLarge(n) => write!(f, "SSLv2 answer exceeds {n} bytes"),
        }
    }
}

/// A parsed SERVER-HELLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// SESSION-ID-HIT.
    pub session_id_hit: bool,
    /// CERTIFICATE-TYPE (1: X.509).
    pub certificate_type: u8,
    /// SERVER-VERSION.
    pub version: u16,
    /// The certificate (DER for X.509; empty when none was sent).
    pub certificate: Vec<u8>,
    /// The cipher kinds the server offers (at most [`MAX_CIPHERS`]).
    pub ciphers: Vec<u32>,
    /// CONNECTION-ID length (16 to 32 bytes; the bytes themselves are not kept).
    pub connection_id_len: usize,
}

/// What a server answered to an SSLv2 CLIENT-HELLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sslv2Answer {
    /// A SERVER-HELLO: the server speaks SSLv2.
    Hello(ServerHello),
    /// MSG-ERROR with this error code (1 no cipher, 2 no certificate...).
    Error(u16),
    /// A TLS record (an alert, most likely): a server that does not speak SSLv2 and says so.
    Tls {
        /// Its content type.
        kind: u8,
        /// For an alert, its description.
        alert: Option<u8>,
    },
}

/// The verdict on the bytes so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sslv2Progress {
    /// More bytes are needed.
    NeedMore,
    /// The answer is complete.
    Done(Sslv2Answer),
}

/// Parse what a server sent after the CLIENT-HELLO (every byte so far; `at_eof`: the peer
/// closed, so an incomplete record is [`Sslv2Error::Truncated`]).
pub fn parse_answer(buf: &[u8], at_eof: bool) -> Result<Sslv2Progress, Sslv2Error> {
    let need_more = || {
        if at_eof {
            Err(Sslv2Error::Truncated)
        } else {
            Ok(Sslv2Progress::NeedMore)
        }
    };
    if buf.len() > MAX_RECORD + 3 {
        return Err(Sslv2Error::TooLarge(MAX_RECORD + 3));
    }
    let mut r = Reader { buf };
    let Some(first) = r.u8() else {
        return need_more();
    };
    // A TLS record: type 20 to 23 and a 3.x version (a 3-byte SSLv2 header never starts so:
    // its second byte would announce a record longer than any SERVER-HELLO this client asks for).
    if (20..=23).contains(&first) {
        match buf.get(1) {
            None => return need_more(),
            Some(3) => {
                if buf.len() < 5 {
                    return need_more();
                }
                let alert = match (first, buf.get(6)) {
                    (21, Some(d)) => Some(*d),
                    (21, None) => return need_more(),
                    _ => None,
                };
                return Ok(Sslv2Progress::Done(Sslv2Answer::Tls { kind: first, alert }));
            }
            Some(_) => {}
        }
    }
    // The first record of a server is never encrypted, so it never needs padding: a 2-byte
    // header (high bit set) is the only one accepted here.
    if first & 0x80 == 0 {
        return Err(Sslv2Error::Invalid("record header (neither SSLv2 nor TLS)"));
    }
    let Some(lo) = r.u8() else {
        return need_more();
    };
    let len = usize::from(first & 0x7f) << 8 | usize::from(lo);
    if len == 0 {
        return Err(Sslv2Error::Invalid("record: empty"));
    }
    let Some(body) = r.take(len) else {
        return need_more();
    };
    let mut m = Reader { buf: body };
    match m.u8() {
        Some(MSG_SERVER_HELLO) => {
            parse_server_hello(m).map(|h| Sslv2Progress::Done(Sslv2Answer::Hello(h)))
        }
        Some(MSG_ERROR) => {
            let code = m.u16().ok_or(Sslv2Error::Invalid("ERROR message"))?;
            if !m.buf.is_empty() {
                return Err(Sslv2Error::Invalid("ERROR message length"));
            }
            Ok(Sslv2Progress::Done(Sslv2Answer::Error(code)))
        }
        _ => Err(Sslv2Error::Invalid(
            "message type (neither SERVER-HELLO nor ERROR)",
        )),
    }
}

fn parse_server_hello(mut m: Reader<'_>) -> Result<ServerHello, Sslv2Error> {
    let bad = Sslv2Error::Invalid;
    let hit = m.u8().ok_or(bad("SERVER-HELLO session id hit"))?;
    let certificate_type = m.u8().ok_or(bad("SERVER-HELLO certificate type"))?;
    let version = m.u16().ok_or(bad("SERVER-HELLO version"))?;
    let cert_len = usize::from(m.u16().ok_or(bad("SERVER-HELLO certificate length"))?);
    let specs_len = usize::from(m.u16().ok_or(bad("SERVER-HELLO cipher specs length"))?);
    let conn_len = usize::from(m.u16().ok_or(bad("SERVER-HELLO connection id length"))?);
    if hit > 1 {
        return Err(bad("SERVER-HELLO session id hit"));
    }
    if version != SSL2_VERSION {
        return Err(bad("SERVER-HELLO version"));
    }
    if specs_len % 3 != 0 {
        return Err(bad("SERVER-HELLO cipher specs length"));
    }
    if !(16..=32).contains(&conn_len) {
        return Err(bad("SERVER-HELLO connection id length"));
    }
    let certificate = m.take(cert_len).ok_or(bad("SERVER-HELLO certificate"))?;
    let specs = m.take(specs_len).ok_or(bad("SERVER-HELLO cipher specs"))?;
    m.take(conn_len).ok_or(bad("SERVER-HELLO connection id"))?;
    if !m.buf.is_empty() {
        return Err(bad("SERVER-HELLO trailing bytes"));
    }
    let mut ciphers = Vec::new();
    for spec in specs.chunks_exact(3).take(MAX_CIPHERS) {
        let (Some(a), Some(b), Some(c)) = (spec.first(), spec.get(1), spec.get(2)) else {
            continue;
        };
        let kind = u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c);
        if !ciphers.contains(&kind) {
            ciphers.push(kind);
        }
    }
    Ok(ServerHello {
        session_id_hit: hit == 1,
        certificate_type,
        version,
        certificate: certificate.to_vec(),
        ciphers,
        connection_id_len: conn_len,
    })
}

/// A SERVER-HELLO record (for the lab and the tests).
pub fn server_hello_record(certificate: &[u8], ciphers: &[u32], connection_id: &[u8]) -> Vec<u8> {
    let mut body = vec![MSG_SERVER_HELLO, 0, X509_CERTIFICATE];
    body.extend_from_slice(&SSL2_VERSION.to_be_bytes());
    let n = |x: usize| u16::try_from(x).unwrap_or(0).to_be_bytes();
    body.extend_from_slice(&n(certificate.len()));
    body.extend_from_slice(&n(ciphers.len() * 3));
    body.extend_from_slice(&n(connection_id.len()));
    body.extend_from_slice(certificate);
    for c in ciphers {
        body.extend_from_slice(c.to_be_bytes().get(1..).unwrap_or_default());
    }
    body.extend_from_slice(connection_id);
    let len = u16::try_from(body.len() & MAX_RECORD).unwrap_or(0) | 0x8000;
    let mut record = len.to_be_bytes().to_vec();
    record.extend(body);
    record
}

/// Whether `rec` starts with an SSLv2 CLIENT-HELLO (2-byte header, message type 1, version 2):
/// the lab's check of what a client sent.
pub fn is_client_hello(rec: &[u8]) -> bool {
    matches!(
        (rec.first(), rec.get(2), rec.get(3), rec.get(4)),
        (Some(h), Some(&MSG_CLIENT_HELLO), Some(0), Some(2)) if h & 0x80 != 0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_client_hello_the_parser_of_a_server_would_accept() {
        let rec = client_hello(&[7; 16]);
        assert!(is_client_hello(&rec));
        let len = usize::from(u16::from_be_bytes([rec[0], rec[1]]) & 0x7fff);
        assert_eq!(len, rec.len() - 2);
        assert_eq!(&rec[5..7], &[0, 24], "8 cipher specs");
        assert_eq!(&rec[7..9], &[0, 0], "no session id");
        assert_eq!(&rec[9..11], &[0, 16], "16-byte challenge");
        assert_eq!(&rec[11..14], &[1, 0, 0x80]);
        assert_eq!(&rec[rec.len() - 16..], &[7; 16]);
    }

    #[test]
    fn parses_a_server_hello_with_and_without_ciphers() {
        let rec = server_hello_record(&[0x30, 3, 1, 2, 3], &[0x010080, 0x0700c0], &[9; 16]);
        let Ok(Sslv2Progress::Done(Sslv2Answer::Hello(h))) = parse_answer(&rec, false) else {
            panic!()
        };
        assert_eq!(h.certificate, vec![0x30, 3, 1, 2, 3]);
        assert_eq!(h.ciphers, vec![0x010080, 0x0700c0]);
        assert_eq!(h.connection_id_len, 16);
        assert_eq!(
            cipher_name(h.ciphers[1]),
            "SSL_CK_DES_192_EDE3_CBC_WITH_MD5"
        );
        let rec = server_hello_record(&[0x30, 0], &[], &[9; 32]);
        let Ok(Sslv2Progress::Done(Sslv2Answer::Hello(h))) = parse_answer(&rec, false) else {
            panic!()
        };
        assert!(h.ciphers.is_empty());
        // Fed short, it waits; closed short, it is truncated.
        for cut in 0..rec.len() {
            assert_eq!(
                parse_answer(&rec[..cut], false),
                Ok(Sslv2Progress::NeedMore)
            );
            assert_eq!(parse_answer(&rec[..cut], true), Err(Sslv2Error::Truncated));
        }
    }

    #[test]
    fn an_error_message_and_headers_that_are_not_sslv2() {
        // MSG-ERROR 1 (no cipher).
        assert_eq!(
            parse_answer(&[0x80, 0x03, 0, 0, 1], false),
            Ok(Sslv2Progress::Done(Sslv2Answer::Error(1)))
        );
        assert_eq!(
            parse_answer(&[0x80, 0x04, 0, 0, 1, 9], false),
            Err(Sslv2Error::Invalid("ERROR message length"))
        );
        // A 3-byte header (padding: only for encrypted records, never a server's first).
        assert_eq!(
            parse_answer(&[0x00, 0x03, 0x00, 0, 0, 1], false),
            Err(Sslv2Error::Invalid("record header (neither SSLv2 nor TLS)"))
        );
    }

    #[test]
    fn tls_answers_and_hostile_bytes() {
        assert_eq!(
            parse_answer(&[21, 3, 1, 0, 2, 2, 40], false),
            Ok(Sslv2Progress::Done(Sslv2Answer::Tls {
                kind: 21,
                alert: Some(40)
            }))
        );
        assert_eq!(
            parse_answer(&[21, 3, 1, 0, 2], false),
            Ok(Sslv2Progress::NeedMore)
        );
        // Closed before the alert's description (found by the fuzz target's EOF property).
        assert_eq!(
            parse_answer(&[21, 3, 1, 0, 2], true),
            Err(Sslv2Error::Truncated)
        );
        assert_eq!(
            parse_answer(b"HTTP/1.1 400 Bad Request\r\n", false),
            Err(Sslv2Error::Invalid("record header (neither SSLv2 nor TLS)"))
        );
        assert_eq!(
            parse_answer(&[0x80, 0x01, 0x02], false),
            Err(Sslv2Error::Invalid(
                "message type (neither SERVER-HELLO nor ERROR)"
            ))
        );
        assert_eq!(
            parse_answer(&[0x80, 0x00], false),
            Err(Sslv2Error::Invalid("record: empty"))
        );
        // A lying certificate length.
        let mut rec = server_hello_record(&[1, 2, 3], &[0x010080], &[9; 16]);
        rec[7] = 0x7f;
        assert_eq!(
            parse_answer(&rec, false),
            Err(Sslv2Error::Invalid("SERVER-HELLO certificate"))
        );
        // Trailing bytes, a bad connection id, a bad version.
        let mut rec = server_hello_record(&[1], &[], &[9; 16]);
        rec.push(0);
        rec[1] += 1;
        assert_eq!(
            parse_answer(&rec, false),
            Err(Sslv2Error::Invalid("SERVER-HELLO trailing bytes"))
        );
        let rec = server_hello_record(&[1], &[], &[9; 8]);
        assert_eq!(
            parse_answer(&rec, false),
            Err(Sslv2Error::Invalid("SERVER-HELLO connection id length"))
        );
        let mut rec = server_hello_record(&[1], &[], &[9; 16]);
        rec[6] = 3;
        assert_eq!(
            parse_answer(&rec, false),
            Err(Sslv2Error::Invalid("SERVER-HELLO version"))
        );
        assert_eq!(
            parse_answer(&vec![0x80; MAX_RECORD + 10], false),
            Err(Sslv2Error::TooLarge(MAX_RECORD + 3))
        );
    }
}
