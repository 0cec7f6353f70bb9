//! OCSP responses (RFC 6960) as a server staples them (RFC 6066 `status_request`): a strict,
//! bounded reader of `OCSPResponse` / `BasicOCSPResponse`, and the judgement of a stapled
//! response for the leaf it came with: the `SingleResponse` whose `CertID` names the leaf
//! (issuer name and key hash, serial), its `certStatus`, `thisUpdate`/`nextUpdate`, and the
//! signature, made by the issuer itself or by a responder certificate the issuer delegated
//! (`id-kp-OCSPSigning`). Nothing here touches the network: secgate never fetches an OCSP or
//! CRL URL.
//!
//! The TLV layer is asn1-rs's DER parser (already in the tree through x509-parser: definite
//! lengths, bounded by the input); on top of it every element is checked for its exact
//! identifier byte, minimal length encoding and no trailing bytes, so that the reader accepts
//! DER only. Certificates inside a response are read by x509-parser, signatures checked by
//! the verification algorithms of rustls's aws-lc-rs provider (the ones webpki uses).

use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm};
use x509_parser::asn1_rs::{Any, FromDer};
use x509_parser::prelude::X509Certificate;

/// Longest stapled response read (a TLS handshake message may be 16 MiB; real staples are a
/// few kilobytes, a response with a delegated responder certificate under 4 KiB).
pub const MAX_RESPONSE: usize = 64 * 1024;
/// Most `SingleResponse` entries read from one response.
pub const MAX_SINGLE: usize = 64;
/// Most certificates read from one response's `certs`.
pub const MAX_CERTS: usize = 8;
/// Most extensions read from one extension list.
const MAX_EXTENSIONS: usize = 32;
/// Tolerated clock skew for a `thisUpdate` in the future, in seconds.
pub const SKEW: i64 = 300;

/// Why a response could not be read.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// Longer than [`MAX_RESPONSE`].
    #[error("the response is {0} bytes long (at most {MAX_RESPONSE} are read)")]
    TooLarge(usize),
    /// Not the DER the field needs (the field is named).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Bytes after the element (named).
    #[error("trailing bytes after {0}")]
    Trailing(&'static str),
    /// More entries than the reader accepts (the list is named).
    #[error("too many entries in {0}")]
    TooMany(&'static str),
    /// `responseStatus` is not `successful` (the status is named).
    #[error("responseStatus is {0}, not successful")]
    Unsuccessful(&'static str),
    /// `responseType` is not `id-pkix-ocsp-basic`.
    #[error("responseType is not id-pkix-ocsp-basic")]
    NotBasic,
}

type Result<T> = std::result::Result<T, OcspError>;

/// A cursor over DER elements: each `take` checks the identifier byte and the length encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Der<'a> {
    buf: &'a [u8],
}

impl<'a> Der<'a> {
    /// A cursor over `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Der<'a> {
        Der { buf }
    }

    /// Nothing left.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Whether the next element has identifier byte `id`.
    pub(crate) fn next_is(&self, id: u8) -> bool {
        self.buf.first() == Some(&id)
    }

    /// The next element, which must have identifier byte `id`: (the whole element, its
    /// content).
    pub(crate) fn take_tlv(&mut self, id: u8, what: &'static str) -> Result<(&'a [u8], &'a [u8])> {
        if !self.next_is(id) {
            return Err(OcspError::Malformed(what));
        }
        let (rest, any) = Any::from_der(self.buf).map_err(|_| OcspError::Malformed(what))?;
        let whole_len = self.buf.len() - rest.len();
        let data = any.data;
        // DER: the shortest length encoding (X.690 §10.1).
        let header = whole_len
            .checked_sub(data.len())
            .ok_or(OcspError::Malformed(what))?;
        if header != 1 + length_octets(data.len()) {
            return Err(OcspError::Malformed(what));
        }
        let whole = self
            .buf
            .get(..whole_len)
            .ok_or(OcspError::Malformed(what))?;
        self.buf = rest;
        Ok((whole, data))
    }

    /// The content of the next element, which must have identifier byte `id`.
    pub(crate) fn take(&mut self, id: u8, what: &'static str) -> Result<&'a [u8]> {
        self.take_tlv(id, what).map(|(_, data)| data)
    }

    /// The content of the next element if it has identifier byte `id`.
    pub(crate) fn optional(&mut self, id: u8, what: &'static str) -> Result<Option<&'a [u8]>> {
        if self.next_is(id) {
            self.take(id, what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless everything was read.
    pub(crate) fn end(&self, what: &'static str) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(OcspError::Trailing(what))
        }
    }
}

/// Octets a DER length takes (the identifier excluded).
fn length_octets(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    }
}

/// id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1).
const OID_BASIC: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// The embedded SCT list in an OCSP single extension (RFC 6962 §3.3, 1.3.6.1.4.1.11129.2.4.5).
const OID_SCT_OCSP: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xD6, 0x79, 0x02, 0x04, 0x05];
/// SHA-1 (1.3.14.3.2.26), the usual CertID hash.
const OID_SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
/// SHA-1's AlgorithmIdentifier content without parameters (for `byKey`).
const SHA1_ALG: &[u8] = &[0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A];
/// SHA-256, SHA-384, SHA-512 (2.16.840.1.101.3.4.2.1/2/3).
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

/// Who signed a response, as the response says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponderId<'a> {
    /// `byName`: the DER of the responder's subject name.
    ByName(&'a [u8]),
    /// `byKey`: SHA-1 of the responder's public key (the BIT STRING's bytes).
    ByKey(&'a [u8]),
}

/// `certStatus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// `good`.
    Good,
    /// `revoked`: when (Unix seconds), and the CRLReason code if given.
    Revoked {
        /// `revocationTime`.
        at: i64,
        /// `revocationReason` (RFC 5280 CRLReason).
        reason: Option<u8>,
    },
    /// `unknown`: the responder does not know the certificate.
    Unknown,
}

/// One `SingleResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleResponse<'a> {
    /// `CertID.hashAlgorithm`: the AlgorithmIdentifier's content.
    pub hash_algorithm: &'a [u8],
    /// `CertID.issuerNameHash`.
    pub issuer_name_hash: &'a [u8],
    /// `CertID.issuerKeyHash`.
    pub issuer_key_hash: &'a [u8],
    /// `CertID.serialNumber`: the INTEGER's content.
    pub serial: &'a [u8],
    /// `certStatus`.
    pub status: CertStatus,
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds.
    pub next_update: Option<i64>,
    /// SCTs in its `singleExtensions` (RFC 6962 §3.3).
    pub scts: usize,
}

/// A parsed `BasicOCSPResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspResponse<'a> {
    /// The signed bytes: the whole `tbsResponseData` element.
    pub tbs: &'a [u8],
    /// `responderID`.
    pub responder: ResponderId<'a>,
    /// `producedAt`, Unix seconds.
    pub produced_at: i64,
    /// `responses`.
    pub responses: Vec<SingleResponse<'a>>,
    /// `signatureAlgorithm`: the AlgorithmIdentifier's content.
    pub signature_algorithm: &'a [u8],
    /// `signature`: the BIT STRING's bytes.
    pub signature: &'a [u8],
    /// `certs`: each certificate's DER.
    pub certs: Vec<&'a [u8]>,
}

/// Read an `OCSPResponse` that must be `successful` and of type `id-pkix-ocsp-basic`. Never
/// panics on any input (a fuzz target checks this).
pub fn parse(der: &[u8]) -> Result<OcspResponse<'_>> {
    if der.len() > MAX_RESPONSE {
        return Err(OcspError::TooLarge(der.len()));
    }
    let mut top = Der::new(der);
    let body = top.take(0x30, "OCSPResponse")?;
    top.end("OCSPResponse")?;
    let mut r = Der::new(body);
    let status = r.take(0x0A, "responseStatus")?;
    match status {
        [0] => {}
        [s] => return Err(OcspError::Unsuccessful(response_status_name(*s))),
        _ => return Err(OcspError::Malformed("responseStatus")),
    }
    let bytes = r.take(0xA0, "responseBytes")?;
    r.end("OCSPResponse")?;
    let mut wrapper = Der::new(bytes);
    let rb = wrapper.take(0x30, "ResponseBytes")?;
    wrapper.end("responseBytes")?;
    let mut rb = Der::new(rb);
    if rb.take(0x06, "responseType")? != OID_BASIC {
        return Err(OcspError::NotBasic);
    }
    let basic = rb.take(0x04, "response")?;
    rb.end("ResponseBytes")?;
    parse_basic(basic)
}

/// RFC 6960 §4.2.1 names.
fn response_status_name(s: u8) -> &'static str {
    match s {
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "an unassigned value",
    }
}

fn parse_basic(der: &[u8]) -> Result<OcspResponse<'_>> {
    let mut outer = Der::new(der);
    let body = outer.take(0x30, "BasicOCSPResponse")?;
    outer.end("BasicOCSPResponse")?;
    let mut b = Der::new(body);
    let (tbs, tbs_body) = b.take_tlv(0x30, "tbsResponseData")?;
    let signature_algorithm = b.take(0x30, "signatureAlgorithm")?;
    let signature = bit_string(b.take(0x03, "signature")?, "signature")?;
    let mut certs = Vec::new();
    if let Some(list) = b.optional(0xA0, "certs")? {
        let mut wrapper = Der::new(list);
        let mut seq = Der::new(wrapper.take(0x30, "certs")?);
        wrapper.end("certs")?;
        while !seq.is_empty() {
            if certs.len() == MAX_CERTS {
                return Err(OcspError::TooMany("certs"));
            }
            let (cert, _) = seq.take_tlv(0x30, "certs")?;
            certs.push(cert);
        }
    }
    b.end("BasicOCSPResponse")?;

    let mut t = Der::new(tbs_body);
    if let Some(v) = t.optional(0xA0, "version")? {
        // DER leaves the default (v1) out; accept it written out, nothing else.
        let mut v = Der::new(v);
        if v.take(0x02, "version")? != [0] {
            return Err(OcspError::Malformed("version (only v1 exists)"));
        }
        v.end("version")?;
    }
    let responder = if let Some(name) = t.optional(0xA1, "responderID byName")? {
        let mut n = Der::new(name);
        let (whole, _) = n.take_tlv(0x30, "responderID byName")?;
        n.end("responderID byName")?;
        ResponderId::ByName(whole)
    } else {
        let key = t.take(0xA2, "responderID")?;
        let mut k = Der::new(key);
        let hash = k.take(0x04, "responderID byKey")?;
        k.end("responderID byKey")?;
        if hash.len() != 20 {
            return Err(OcspError::Malformed("responderID byKey (a SHA-1 hash)"));
        }
        ResponderId::ByKey(hash)
    };
    let produced_at = generalized_time(t.take(0x18, "producedAt")?, "producedAt")?;
    let mut list = Der::new(t.take(0x30, "responses")?);
    let mut responses = Vec::new();
    while !list.is_empty() {
        if responses.len() == MAX_SINGLE {
            return Err(OcspError::TooMany("responses"));
        }
        responses.push(parse_single(list.take(0x30, "SingleResponse")?)?);
    }
    if let Some(ext) = t.optional(0xA1, "responseExtensions")? {
        extensions(ext, "responseExtensions")?;
    }
    t.end("tbsResponseData")?;
    Ok(OcspResponse {
        tbs,
        responder,
        produced_at,
        responses,
        signature_algorithm,
        signature,
        certs,
    })
}

fn parse_single(der: &[u8]) -> Result<SingleResponse<'_>> {
    let mut s = Der::new(der);
    let mut id = Der::new(s.take(0x30, "CertID")?);
    let hash_algorithm = id.take(0x30, "CertID hashAlgorithm")?;
    let issuer_name_hash = id.take(0x04, "CertID issuerNameHash")?;
    let issuer_key_hash = id.take(0x04, "CertID issuerKeyHash")?;
    let serial = id.take(0x02, "CertID serialNumber")?;
    id.end("CertID")?;
    if serial.is_empty() {
        return Err(OcspError::Malformed("CertID serialNumber"));
    }
    let status = if let Some(good) = s.optional(0x80, "certStatus good")? {
        if !good.is_empty() {
            return Err(OcspError::Malformed("certStatus good"));
        }
        CertStatus::Good
    } else if let Some(revoked) = s.optional(0xA1, "certStatus revoked")? {
        let mut r = Der::new(revoked);
        let at = generalized_time(r.take(0x18, "revocationTime")?, "revocationTime")?;
        let reason = match r.optional(0xA0, "revocationReason")? {
            Some(reason) => {
                let mut e = Der::new(reason);
                let code = match e.take(0x0A, "revocationReason")? {
                    [c] => *c,
                    _ => return Err(OcspError::Malformed("revocationReason")),
                };
                e.end("revocationReason")?;
                Some(code)
            }
            None => None,
        };
        r.end("RevokedInfo")?;
        CertStatus::Revoked { at, reason }
    } else {
        let unknown = s.take(0x82, "certStatus")?;
        if !unknown.is_empty() {
            return Err(OcspError::Malformed("certStatus unknown"));
        }
        CertStatus::Unknown
    };
    let this_update = generalized_time(s.take(0x18, "thisUpdate")?, "thisUpdate")?;
    let next_update = match s.optional(0xA0, "nextUpdate")? {
        Some(n) => {
            let mut n = Der::new(n);
            let t = generalized_time(n.take(0x18, "nextUpdate")?, "nextUpdate")?;
            n.end("nextUpdate")?;
            Some(t)
        }
        None => None,
    };
    let mut scts = 0;
    if let Some(ext) = s.optional(0xA1, "singleExtensions")? {
        for (oid, value) in extensions(ext, "singleExtensions")? {
            if oid == OID_SCT_OCSP {
                // extnValue holds an OCTET STRING that holds the TLS-encoded list.
                let mut v = Der::new(value);
                let list = v.take(0x04, "SCT list")?;
                v.end("SCT list")?;
                scts = count_sct_list(list).map_err(|_| OcspError::Malformed("SCT list"))?;
            }
        }
    }
    s.end("SingleResponse")?;
    Ok(SingleResponse {
        hash_algorithm,
        issuer_name_hash,
        issuer_key_hash,
        serial,
        status,
        this_update,
        next_update,
        scts,
    })
}

/// An `[n] EXPLICIT Extensions` body: (extnID content, extnValue content) of each.
fn extensions<'a>(der: &'a [u8], what: &'static str) -> Result<Vec<(&'a [u8], &'a [u8])>> {
    let mut wrapper = Der::new(der);
    let mut list = Der::new(wrapper.take(0x30, what)?);
    wrapper.end(what)?;
    let mut out = Vec::new();
    while !list.is_empty() {
        if out.len() == MAX_EXTENSIONS {
            return Err(OcspError::TooMany(what));
        }
        let mut e = Der::new(list.take(0x30, what)?);
        let oid = e.take(0x06, what)?;
        if let Some(critical) = e.optional(0x01, what)? {
            // DER: a BOOLEAN is 0x00 or 0xFF, and the default (FALSE) is left out.
            if critical != [0xFF] {
                return Err(OcspError::Malformed(what));
            }
        }
        let value = e.take(0x04, what)?;
        e.end(what)?;
        out.push((oid, value));
    }
    Ok(out)
}

/// A BIT STRING's bytes (no unused bits allowed: signatures and keys are whole bytes).
fn bit_string<'a>(data: &'a [u8], what: &'static str) -> Result<&'a [u8]> {
    match data.split_first() {
        Some((0, bits)) => Ok(bits),
        _ => Err(OcspError::Malformed(what)),
    }
}

/// A DER GeneralizedTime (`YYYYMMDDHHMMSSZ`, RFC 5280 §4.1.2.5.2) as Unix seconds.
fn generalized_time(data: &[u8], what: &'static str) -> Result<i64> {
    let bad = OcspError::Malformed(what);
    let (digits, z) = data.split_at_checked(14).ok_or(bad.clone())?;
    if z != b"Z" || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    let num = |from: usize, len: usize| -> Option<u32> {
        digits
            .get(from..from + len)?
            .iter()
            .try_fold(0u32, |acc, d| Some(acc * 10 + u32::from(d - b'0')))
    };
    let field = |from, len| num(from, len).ok_or(bad.clone());
    let year = i32::try_from(field(0, 4)?).map_err(|_| bad.clone())?;
    let month = time::Month::try_from(u8::try_from(field(4, 2)?).map_err(|_| bad.clone())?)
        .map_err(|_| bad.clone())?;
    let small = |v: u32| u8::try_from(v).map_err(|_| bad.clone());
    let date = time::Date::from_calendar_date(year, month, small(field(6, 2)?)?)
        .map_err(|_| bad.clone())?;
    let t = time::Time::from_hms(
        small(field(8, 2)?)?,
        small(field(10, 2)?)?,
        small(field(12, 2)?)?,
    )
    .map_err(|_| bad.clone())?;
    Ok(time::PrimitiveDateTime::new(date, t)
        .assume_utc()
        .unix_timestamp())
}

/// Count the SCTs of a TLS-encoded `SignedCertificateTimestampList` (RFC 6962 §3.3): a u16
/// length, then u16-length-prefixed, non-empty SCTs. Their signatures are not checked.
pub fn count_sct_list(list: &[u8]) -> std::result::Result<usize, &'static str> {
    let (len, mut rest) = list.split_at_checked(2).ok_or("SCT list: no length")?;
    let len = usize::from(u16::from_be_bytes([
        *len.first().ok_or("SCT list")?,
        *len.get(1).ok_or("SCT list")?,
    ]));
    if len != rest.len() {
        return Err("SCT list: the length does not match");
    }
    let mut n = 0;
    while !rest.is_empty() {
        let (l, tail) = rest.split_at_checked(2).ok_or("SCT list: truncated")?;
        let l = usize::from(u16::from_be_bytes([
            *l.first().ok_or("SCT list")?,
            *l.get(1).ok_or("SCT list")?,
        ]));
        if l == 0 {
            return Err("SCT list: an empty SCT");
        }
        let (_, tail) = tail.split_at_checked(l).ok_or("SCT list: truncated SCT")?;
        rest = tail;
        n += 1;
    }
    if n == 0 {
        return Err("SCT list: empty");
    }
    Ok(n)
}

/// A certificate's outer structure: (the whole tbsCertificate, signatureAlgorithm content,
/// signature bytes).
fn cert_parts(der: &[u8]) -> Result<(&[u8], &[u8], &[u8])> {
    let mut outer = Der::new(der);
    let mut c = Der::new(outer.take(0x30, "Certificate")?);
    outer.end("Certificate")?;
    let (tbs, _) = c.take_tlv(0x30, "tbsCertificate")?;
    let alg = c.take(0x30, "Certificate signatureAlgorithm")?;
    let sig = bit_string(
        c.take(0x03, "Certificate signature")?,
        "Certificate signature",
    )?;
    c.end("Certificate")?;
    Ok((tbs, alg, sig))
}

/// Verify `signature` over `message` with `spki` (a whole SubjectPublicKeyInfo) under the
/// signature algorithm whose AlgorithmIdentifier content is `alg`.
pub fn verify_signature(spki: &[u8], alg: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok((key_alg, key)) = spki_parts(spki) else {
        return false;
    };
    let algs: &[&dyn SignatureVerificationAlgorithm] =
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .all;
    algs.iter()
        .filter(|a| {
            a.signature_alg_id().as_ref() == alg && a.public_key_alg_id().as_ref() == key_alg
        })
        .any(|a| a.verify_signature(key, message, signature).is_ok())
}

/// A SubjectPublicKeyInfo: (algorithm content, key bytes).
fn spki_parts(spki: &[u8]) -> Result<(&[u8], &[u8])> {
    let mut outer = Der::new(spki);
    let mut s = Der::new(outer.take(0x30, "SubjectPublicKeyInfo")?);
    outer.end("SubjectPublicKeyInfo")?;
    let alg = s.take(0x30, "SubjectPublicKeyInfo algorithm")?;
    let key = bit_string(s.take(0x03, "subjectPublicKey")?, "subjectPublicKey")?;
    s.end("SubjectPublicKeyInfo")?;
    Ok((alg, key))
}

/// Whether `issuer` signed `cert` (both DER).
fn signed_by(cert: &[u8], issuer: &X509Certificate<'_>) -> bool {
    cert_parts(cert)
        .is_ok_and(|(tbs, alg, sig)| verify_signature(issuer.public_key().raw, alg, tbs, sig))
}

/// `hash(data)` for a CertID hash algorithm (AlgorithmIdentifier content: the OID, then NULL
/// or no parameters); none for another algorithm.
fn cert_id_hash(alg: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let mut a = Der::new(alg);
    let oid = a.take(0x06, "hashAlgorithm").ok()?;
    if !a.is_empty() && (!a.take(0x05, "hashAlgorithm").ok()?.is_empty() || !a.is_empty()) {
        return None;
    }
    use aws_lc_rs::digest;
    let algorithm = match oid {
        OID_SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        OID_SHA256 => &digest::SHA256,
        OID_SHA384 => &digest::SHA384,
        OID_SHA512 => &digest::SHA512,
        _ => return None,
    };
    Some(digest::digest(algorithm, data).as_ref().to_vec())
}

/// What a stapled response says about the leaf, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Staple {
    /// A valid response for the leaf: `good` or `revoked`.
    Valid(Verified),
    /// Not usable: unreadable, not successful, for another certificate, badly signed, signed
    /// by a responder the issuer did not delegate, expired or not yet valid, or `unknown`.
    Invalid(String),
    /// It cannot be checked: the leaf's issuer certificate is neither sent nor a `--ca-file`
    /// CA (the detail says which).
    Unverifiable(String),
}

/// The facts of a valid stapled response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// `good` or `revoked` (never `unknown`: that is invalid).
    pub status: CertStatus,
    /// `thisUpdate`.
    pub this_update: i64,
    /// `nextUpdate`.
    pub next_update: Option<i64>,
    /// `producedAt`.
    pub produced_at: i64,
    /// Who signed it: `the issuer (NAME)` or `delegated responder NAME`.
    pub signer: String,
    /// SCTs in the leaf's SingleResponse.
    pub scts: usize,
}

/// RFC 5280 §5.3.1 CRLReason names.
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "an unassigned reason",
    }
}

/// Judge a stapled response for `chain`'s leaf at `now`. The issuer is looked for in the
/// chain, then among `extra_roots` (`--ca-file`). Never panics on any input (a fuzz target
/// checks this).
pub fn judge_staple(
    staple: &[u8],
    chain: &[CertificateDer<'_>],
    extra_roots: &[CertificateDer<'_>],
    now: i64,
) -> Staple {
    let response = match parse(staple) {
        Ok(r) => r,
        Err(e) => return Staple::Invalid(format!("the stapled response cannot be read: {e}")),
    };
    let Some(Ok((_, leaf))) = chain.first().map(|d| X509Certificate::from_der(d)) else {
        return Staple::Unverifiable("the leaf certificate cannot be read".into());
    };
    let leaf_der = chain.first().map_or(&[][..], |d| d.as_ref());
    // The issuer: a certificate named as the leaf's issuer whose key signed the leaf.
    let issuer = chain
        .iter()
        .skip(1)
        .chain(extra_roots.iter())
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .find(|c| c.subject().as_raw() == leaf.issuer().as_raw() && signed_by(leaf_der, c));
    let Some(issuer) = issuer else {
        return Staple::Unverifiable(format!(
            "the leaf's issuer ({}) is neither sent by the server nor a --ca-file CA, so the stapled response's signature cannot be checked",
            leaf.issuer()
        ));
    };
    let issuer_key = &issuer.public_key().subject_public_key.data;
    let serial = leaf.raw_serial();
    let mut other_serials = Vec::new();
    let single = response.responses.iter().find(|s| {
        let names = cert_id_hash(s.hash_algorithm, issuer.subject().as_raw());
        let keys = cert_id_hash(s.hash_algorithm, issuer_key);
        let ours = names.as_deref() == Some(s.issuer_name_hash)
            && keys.as_deref() == Some(s.issuer_key_hash)
            && s.serial == serial;
        if !ours {
            other_serials.push(hex(s.serial));
        }
        ours
    });
    let Some(single) = single else {
        return Staple::Invalid(format!(
            "the stapled response is for another certificate: it names serial {} and the leaf's serial is {} (issuer {})",
            if other_serials.is_empty() {
                "nothing".to_string()
            } else {
                other_serials.join(", ")
            },
            hex(serial),
            issuer.subject()
        ));
    };
    // The signer: the issuer itself, or a responder certificate the issuer delegated.
    let names_issuer = match response.responder {
        ResponderId::ByName(n) => n == issuer.subject().as_raw(),
        ResponderId::ByKey(k) => cert_id_hash(SHA1_ALG, issuer_key).as_deref() == Some(k),
    };
    let signer_spki;
    let signer = if names_issuer {
        signer_spki = issuer.tbs_certificate.subject_pki.raw;
        format!("the issuer ({})", issuer.subject())
    } else {
        let found = response.certs.iter().find_map(|der| {
            let (_, c) = X509Certificate::from_der(der).ok()?;
            let key = &c.public_key().subject_public_key.data;
            let named = match response.responder {
                ResponderId::ByName(n) => n == c.subject().as_raw(),
                ResponderId::ByKey(k) => cert_id_hash(SHA1_ALG, key).as_deref() == Some(k),
            };
            named.then_some((der, c))
        });
        let Some((der, responder)) = found else {
            return Staple::Invalid(format!(
                "the stapled response is signed by {}, which is neither the issuer ({}) nor a responder certificate included in the response",
                responder_text(&response.responder),
                issuer.subject()
            ));
        };
        let delegated = responder.issuer().as_raw() == issuer.subject().as_raw()
            && signed_by(der, &issuer)
            && matches!(responder.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing);
        if !delegated {
            return Staple::Invalid(format!(
                "the stapled response is signed by {}, a certificate the issuer ({}) did not delegate to sign OCSP responses (issued by it, with id-kp-OCSPSigning)",
                responder.subject(),
                issuer.subject()
            ));
        }
        let v = responder.validity();
        if now < v.not_before.timestamp() || now > v.not_after.timestamp() {
            return Staple::Invalid(format!(
                "the stapled response's responder certificate {} is outside its validity",
                responder.subject()
            ));
        }
        signer_spki = responder.tbs_certificate.subject_pki.raw;
        format!("delegated responder {}", responder.subject())
    };
    if !verify_signature(
        signer_spki,
        response.signature_algorithm,
        response.tbs,
        response.signature,
    ) {
        return Staple::Invalid(format!(
            "the stapled response's signature does not verify with the key of {signer}"
        ));
    }
    if single.this_update > now.saturating_add(SKEW) {
        return Staple::Invalid(format!(
            "the stapled response is not valid yet: thisUpdate is {}",
            super::cert::date(single.this_update)
        ));
    }
    if let Some(next) = single.next_update
        && next < now
    {
        return Staple::Invalid(format!(
            "the stapled response expired: nextUpdate was {} (thisUpdate {})",
            super::cert::date(next),
            super::cert::date(single.this_update)
        ));
    }
    if single.status == CertStatus::Unknown {
        return Staple::Invalid(format!(
            "the stapled response says the certificate's status is unknown to {signer}"
        ));
    }
    Staple::Valid(Verified {
        status: single.status.clone(),
        this_update: single.this_update,
        next_update: single.next_update,
        produced_at: response.produced_at,
        signer,
        scts: single.scts,
    })
}

fn responder_text(r: &ResponderId<'_>) -> String {
    match r {
        ResponderId::ByName(n) => match x509_parser::x509::X509Name::from_der(n) {
            Ok((_, name)) => format!("responder {name}"),
            Err(_) => "a responder with an unreadable name".into(),
        },
        ResponderId::ByKey(k) => format!("the responder with key hash {}", hex(k)),
    }
}

/// Bytes as hex with colons (as serials are shown).
fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_must_be_minimal_and_elements_exact() {
        // SEQUENCE { NULL } with a long-form length for 2 bytes: not DER.
        let long = [0x30, 0x81, 0x02, 0x05, 0x00];
        assert_eq!(
            Der::new(&long).take(0x30, "x"),
            Err(OcspError::Malformed("x"))
        );
        let short = [0x30, 0x02, 0x05, 0x00];
        assert_eq!(Der::new(&short).take(0x30, "x"), Ok(&[0x05, 0x00][..]));
        // Wrong identifier, truncated, trailing.
        assert!(Der::new(&short).take(0x31, "x").is_err());
        assert!(Der::new(&short[..3]).take(0x30, "x").is_err());
        let mut d = Der::new(&[0x05, 0x00, 0x05, 0x00]);
        assert!(d.take(0x05, "x").is_ok());
        assert_eq!(d.end("x"), Err(OcspError::Trailing("x")));
        assert_eq!(length_octets(0x7f), 1);
        assert_eq!(length_octets(0x80), 2);
        assert_eq!(length_octets(0x100), 3);
    }

    #[test]
    fn response_status_and_type_are_checked() {
        // OCSPResponse { tryLater }
        assert_eq!(
            parse(&[0x30, 0x03, 0x0A, 0x01, 0x03]),
            Err(OcspError::Unsuccessful("tryLater"))
        );
        // successful without responseBytes
        assert_eq!(
            parse(&[0x30, 0x03, 0x0A, 0x01, 0x00]),
            Err(OcspError::Malformed("responseBytes"))
        );
        assert!(matches!(parse(&[]), Err(OcspError::Malformed(_))));
        assert_eq!(
            parse(&vec![0u8; MAX_RESPONSE + 1]),
            Err(OcspError::TooLarge(MAX_RESPONSE + 1))
        );
    }

    #[test]
    fn generalized_times() {
        assert_eq!(generalized_time(b"20261203000000Z", "t"), Ok(1_796_256_000));
        assert!(generalized_time(b"20261303000000Z", "t").is_err());
        assert!(generalized_time(b"2026120300000Z", "t").is_err());
        assert!(generalized_time(b"20261203000000+0100", "t").is_err());
        assert!(generalized_time(b"2026120300000aZ", "t").is_err());
    }

    #[test]
    fn sct_lists() {
        assert_eq!(count_sct_list(&[0, 6, 0, 1, 9, 0, 1, 8]), Ok(2));
        assert!(count_sct_list(&[0, 0]).is_err());
        assert!(count_sct_list(&[0, 3, 0, 0, 0]).is_err());
        assert!(count_sct_list(&[0, 3, 0, 2, 1]).is_err());
        assert!(count_sct_list(&[0, 9, 0, 1, 1]).is_err());
        assert!(count_sct_list(&[0]).is_err());
    }
}
