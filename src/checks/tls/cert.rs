//! Certificates: a rustls verifier that captures the chain a server presents (valid or not),
//! a summariser that turns a DER certificate into the facts people need, and the chain and
//! name judgements made with webpki against Mozilla's roots plus `--ca-file`.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use time::OffsetDateTime;
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::CertObservation;
use crate::model::{Reason, ReasonKind};

/// The facts of one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject DN (RFC 4514 style).
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Subject common name, when present.
    pub common_name: Option<String>,
    /// DNS and IP subject alternative names.
    pub sans: Vec<String>,
    /// Whether a subjectAltName extension is present at all.
    pub has_san: bool,
    /// Serial number, hex with colons.
    pub serial: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Public key algorithm: `RSA`, `EC`, `Ed25519`, `DSA`, ...
    pub key_type: String,
    /// Key size in bits (field size for EC).
    pub key_bits: u32,
    /// EC curve name.
    pub curve: Option<String>,
    /// Signature algorithm name (e.g. `sha256WithRSAEncryption`).
    pub signature: String,
    /// The signature hash is SHA-1 or MD5 (or MD2).
    pub weak_signature: bool,
    /// basicConstraints CA.
    pub is_ca: bool,
    /// Subject equals issuer.
    pub self_issued: bool,
    /// SHA-256 of the DER, hex.
    pub sha256: String,
    /// The `caIssuers` URIs of its Authority Information Access extension (where its issuer's
    /// certificate is published; never fetched), at most [`MAX_CA_ISSUERS`].
    pub ca_issuers: Vec<String>,
}

/// Most `caIssuers` URIs kept from one certificate.
pub const MAX_CA_ISSUERS: usize = 4;

impl CertSummary {
    /// `RSA 2048`, `EC 256 (prime256v1)`.
    pub fn key_label(&self) -> String {
        match &self.curve {
            Some(c) => format!("{} {} ({c})", self.key_type, self.key_bits),
            None => format!("{} {}", self.key_type, self.key_bits),
        }
    }

    /// Whether the key is too small: RSA or DSA under 2048 bits, EC under 256.
    pub fn weak_key(&self) -> bool {
        match self.key_type.as_str() {
            "RSA" | "DSA" => self.key_bits < 2048,
            "EC" => self.key_bits < 256,
            _ => false,
        }
    }

    /// Whole days between notBefore and notAfter.
    pub fn lifetime_days(&self) -> i64 {
        self.not_after
            .saturating_sub(self.not_before)
            .div_euclid(86_400)
    }

    /// Whether the validity period is longer than `max_days` days. RFC 5280 §4.1.2.5: the
    /// period includes both ends, so notAfter - notBefore of exactly `max_days` days is one
    /// second over.
    pub fn lifetime_over(&self, max_days: i64) -> bool {
        self.not_after.saturating_sub(self.not_before) >= max_days.saturating_mul(86_400)
    }

    /// One line for the chain evidence.
    pub fn chain_line(&self) -> String {
        format!("{} (issuer: {})", self.subject, self.issuer)
    }
}

/// Summarise a DER certificate. Never panics on any input (a fuzz target checks this).
pub fn summarise(der: &[u8]) -> Result<CertSummary, String> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("invalid certificate: {e}"))?;
    if !rest.is_empty() {
        return Err("invalid certificate: trailing bytes".into());
    }
    let tbs = &cert.tbs_certificate;
    let mut sans = Vec::new();
    let mut has_san = false;
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        has_san = true;
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(n) => sans.push(format!("DNS:{n}")),
                GeneralName::IPAddress(ip) => sans.push(format!("IP:{}", ip_text(ip))),
                _ => {}
            }
        }
    }
    let common_name = tbs
        .subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let mut ca_issuers = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for d in aia.iter() {
                if let (true, GeneralName::URI(uri)) = (
                    d.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS,
                    &d.access_location,
                ) && ca_issuers.len() < MAX_CA_ISSUERS
                {
                    ca_issuers.push(crate::model::one_line(uri, 200));
                }
            }
        }
    }
    let (key_type, key_bits, curve) = key_facts(&cert);
    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    let (signature, weak_signature) = signature_name(&sig_oid);
    Ok(CertSummary {
        subject: dn_text(&tbs.subject.to_string()),
        issuer: dn_text(&tbs.issuer.to_string()),
        common_name,
        sans,
        has_san,
        serial: tbs
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        not_before: tbs.validity.not_before.timestamp(),
        not_after: tbs.validity.not_after.timestamp(),
        key_type,
        key_bits,
        curve,
        signature,
        weak_signature,
        is_ca: cert.is_ca(),
        self_issued: tbs.subject.as_raw() == tbs.issuer.as_raw(),
        sha256: sha256_hex(der),
        ca_issuers,
    })
}

fn dn_text(s: &str) -> String {
    if s.is_empty() {
        "(empty)".into()
    } else {
        s.into()
    }
}

fn ip_text(ip: &[u8]) -> String {
    match ip.len() {
        4 => {
            let mut a = [0u8; 4];
            a.copy_from_slice(ip);
            std::net::Ipv4Addr::from(a).to_string()
        }
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(ip);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => ip.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn key_facts(cert: &X509Certificate<'_>) -> (String, u32, Option<String>) {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA".into(), significant_bits(rsa.modulus), None),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| curve_name(&oid.to_id_string()));
            let bits = match curve.as_deref() {
                Some("prime256v1") => 256,
                Some("secp384r1") => 384,
                Some("secp521r1") => 521,
                Some("secp224r1") => 224,
                Some("prime192v1") => 192,
                _ => u32::try_from(point.key_size()).unwrap_or(0),
            };
            ("EC".into(), bits, curve)
        }
        Ok(PublicKey::DSA(y)) => ("DSA".into(), significant_bits(y), None),
        _ => match alg.as_str() {
            "1.3.101.112" => ("Ed25519".into(), 256, None),
            "1.3.101.113" => ("Ed448".into(), 456, None),
            other => (format!("OID {other}"), 0, None),
        },
    }
}

/// Bit length of a big-endian unsigned integer.
fn significant_bits(bytes: &[u8]) -> u32 {
    let Some(pos) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    let top = bytes.get(pos).copied().unwrap_or(0);
    let len = u32::try_from(bytes.len() - pos).unwrap_or(u32::MAX);
    len.saturating_sub(1)
        .saturating_mul(8)
        .saturating_add(8 - top.leading_zeros())
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "prime256v1".into(),
        "1.3.132.0.34" => "secp384r1".into(),
        "1.3.132.0.35" => "secp521r1".into(),
        "1.3.132.0.33" => "secp224r1".into(),
        "1.2.840.10045.3.1.1" => "prime192v1".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        other => other.into(),
    }
}

/// Signature algorithms by OID: the name OpenSSL (and Mozilla's guidelines) give it, and
/// whether its hash is broken (MD2, MD5, SHA-1).
const SIGNATURES: &[(&str, &str, bool)] = &[
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption", true),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption", true),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption", true),
    ("1.3.14.3.2.29", "sha1WithRSASignature", true),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1", true),
    ("1.2.840.10040.4.3", "dsa-with-SHA1", true),
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption", false),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption", false),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption", false),
    ("1.2.840.113549.1.1.14", "sha224WithRSAEncryption", false),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS", false),
    ("1.2.840.10045.4.3.1", "ecdsa-with-SHA224", false),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256", false),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384", false),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512", false),
    ("2.16.840.1.101.3.4.3.2", "dsa-with-SHA256", false),
    ("1.3.101.112", "Ed25519", false),
    ("1.3.101.113", "Ed448", false),
];

/// Name of a signature algorithm OID and whether its hash is broken (MD2, MD5, SHA-1).
fn signature_name(oid: &str) -> (String, bool) {
    match SIGNATURES.iter().find(|(o, _, _)| *o == oid) {
        Some((_, name, weak)) => ((*name).to_string(), *weak),
        None => (format!("OID {oid}"), false),
    }
}

/// Whether `name` is a signature algorithm name this module gives certificates.
pub fn is_signature_name(name: &str) -> bool {
    SIGNATURES.iter().any(|(_, n, _)| *n == name)
}

/// EC curve names this module gives certificate keys (OpenSSL's short names).
pub const CURVE_NAMES: &[&str] = &[
    "prime256v1",
    "secp384r1",
    "secp521r1",
    "secp224r1",
    "prime192v1",
    "secp256k1",
];

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The trust verdict on a presented chain, judged at a time inside the leaf's validity so that
/// an expired certificate is reported as expired and not also as untrusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The chain leads to a trust anchor.
    Trusted,
    /// The leaf is self-signed and not itself a trust anchor.
    SelfSigned,
    /// The chain ends at a self-issued root that is not a trust anchor (unknown or private).
    UnknownRoot {
        /// The root's name.
        issuer: String,
    },
    /// The chain stops at a certificate that is not self-issued and whose issuer is neither
    /// sent nor a trust anchor: an intermediate is missing (or the CA is private and its root
    /// is not sent).
    MissingIntermediate {
        /// The issuer the chain could not find.
        issuer: String,
        /// The subject of the last certificate that links up from the leaf.
        top: String,
    },
    /// A trusted chain is refused for its signature algorithm (SHA-1, MD5).
    WeakSignature(String),
    /// An intermediate is outside its validity period (or a leaf valid for under two seconds,
    /// which cannot be judged inside its validity).
    IntermediateTime(String),
    /// Any other path-validation failure.
    Invalid(String),
}

/// How the leaf matches the name the client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameMatch {
    /// A subjectAltName matches.
    Matches,
    /// No subjectAltName; only the legacy common name matches (browsers reject this).
    CommonNameOnly,
    /// Nothing matches.
    Mismatch,
}

/// Summarise and judge a captured chain (leaf first): never panics on any input (a fuzz target
/// checks this).
pub fn judge_chain(
    chain: Vec<CertificateDer<'static>>,
    source: String,
    host: &str,
    now: i64,
    extra_roots: &[CertificateDer<'static>],
) -> Result<CertObservation, Reason> {
    let mut summaries = Vec::new();
    for der in &chain {
        summaries.push(summarise(der).map_err(|e| {
            Reason::new(
                ReasonKind::Malformed,
                format!("{host}: certificate {} of the chain: {e}", summaries.len()),
            )
        })?);
    }
    let leaf = summaries
        .first()
        .ok_or_else(|| Reason::new(ReasonKind::Malformed, "the server sent no certificate"))?;
    // Judge trust inside the leaf's validity, so that time is reported by its own rules (a
    // validity shorter than two seconds has no inside: then now).
    let (lo, hi) = (
        leaf.not_before.saturating_add(1),
        leaf.not_after.saturating_sub(1),
    );
    let at = if lo > hi { now } else { now.clamp(lo, hi) };
    // A leaf given itself as a trust anchor (--ca-file with a self-signed certificate) is
    // pinned, even when webpki would refuse it as a CA used as an end entity.
    let pinned = chain
        .first()
        .is_some_and(|leaf| extra_roots.iter().any(|r| r.as_ref() == leaf.as_ref()));
    let trust = if pinned {
        Trust::Trusted
    } else {
        judge_trust(&chain, &summaries, &anchors(extra_roots), at)
    };
    let name = chain
        .first()
        .map_or(NameMatch::Mismatch, |der| judge_name(der, leaf, host));
    Ok(CertObservation {
        source,
        chain: summaries,
        trust,
        name,
        status: super::status::StatusFacts::default(),
    })
}

/// Judge the presented chain (leaf first) against `anchors` at `at` (Unix seconds).
pub fn judge_trust(
    chain: &[CertificateDer<'static>],
    summaries: &[CertSummary],
    anchors: &[TrustAnchor<'static>],
    at: i64,
) -> Trust {
    let (Some(leaf), Some(leaf_sum)) = (chain.first(), summaries.first()) else {
        return Trust::Invalid("no certificate".into());
    };
    let ee = match webpki::EndEntityCert::try_from(leaf) {
        Ok(ee) => ee,
        Err(e) => return Trust::Invalid(format!("the leaf certificate cannot be parsed: {e}")),
    };
    let algs = rustls::crypto::aws_lc_rs::default_provider()
        .signature_verification_algorithms
        .all;
    let intermediates = chain.get(1..).unwrap_or_default();
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(at).unwrap_or(0),
    ));
    let result = ee.verify_for_usage(
        algs,
        anchors,
        intermediates,
        time,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    use webpki::Error as E;
    match result {
        Ok(_) => Trust::Trusted,
        // No path to an anchor: the signatures were never checked, so a SHA-1 certificate
        // here is untrusted as well as weakly signed (both rules report it).
        Err(E::UnknownIssuer) => {
            if leaf_sum.self_issued {
                return Trust::SelfSigned;
            }
            // The top of what the server sent that links up from the leaf.
            match summaries.get(top_of_chain(summaries)) {
                Some(top) if top.self_issued => Trust::UnknownRoot {
                    issuer: top.subject.clone(),
                },
                Some(top) => Trust::MissingIntermediate {
                    issuer: top.issuer.clone(),
                    top: top.subject.clone(),
                },
                None => Trust::Invalid("no certificate".into()),
            }
        }
        Err(
            e @ (E::UnsupportedSignatureAlgorithmContext(_)
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)),
        ) => Trust::WeakSignature(format!("{e:?}")),
        Err(E::CaUsedAsEndEntity) if leaf_sum.self_issued => Trust::SelfSigned,
        Err(e @ (E::CertExpired { .. } | E::CertNotValidYet { .. })) => {
            Trust::IntermediateTime(format!("{e:?}"))
        }
        Err(e) => Trust::Invalid(format!("{e:?}")),
    }
}

/// Index of the highest certificate that chains up from the leaf by issuer/subject names.
fn top_of_chain(summaries: &[CertSummary]) -> usize {
    let mut at = 0usize;
    let mut used = vec![false; summaries.len()];
    if let Some(u) = used.first_mut() {
        *u = true;
    }
    loop {
        let Some(cur) = summaries.get(at) else {
            return at;
        };
        if cur.self_issued {
            return at;
        }
        let next = summaries
            .iter()
            .enumerate()
            .find(|(i, s)| !used.get(*i).copied().unwrap_or(true) && s.subject == cur.issuer);
        match next {
            Some((i, _)) => {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                at = i;
            }
            None => return at,
        }
    }
}

/// Match the leaf against the name asked for (a DNS name or an IP literal).
pub fn judge_name(leaf: &CertificateDer<'static>, summary: &CertSummary, host: &str) -> NameMatch {
    let Ok(ee) = webpki::EndEntityCert::try_from(leaf) else {
        return NameMatch::Mismatch;
    };
    let Ok(name) = ServerName::try_from(host) else {
        return NameMatch::Mismatch;
    };
    if ee.verify_is_valid_for_subject_name(&name).is_ok() {
        return NameMatch::Matches;
    }
    if !summary.has_san
        && summary
            .common_name
            .as_deref()
            .is_some_and(|cn| cn_matches(cn, host))
    {
        return NameMatch::CommonNameOnly;
    }
    NameMatch::Mismatch
}

fn cn_matches(cn: &str, host: &str) -> bool {
    let cn = cn.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if cn == host {
        return true;
    }
    match (cn.strip_prefix("*."), host.split_once('.')) {
        (Some(suffix), Some((label, rest))) => !label.is_empty() && rest == suffix,
        _ => false,
    }
}

/// Trust anchors: Mozilla's (webpki-roots) plus the scan's `--ca-file` certificates.
pub fn anchors(extra: &[CertificateDer<'static>]) -> Vec<TrustAnchor<'static>> {
    let mut out: Vec<TrustAnchor<'static>> = webpki_roots::TLS_SERVER_ROOTS.to_vec();
    for der in extra {
        if let Ok(a) = webpki::anchor_from_trusted_cert(der) {
            out.push(a.to_owned());
        }
    }
    out
}

/// A chain captured during a rustls handshake.
pub type Captured = Arc<Mutex<Option<Vec<CertificateDer<'static>>>>>;

/// A rustls verifier that records the presented chain and accepts it, so that the handshake
/// goes on and the family can judge the chain itself. It never carries application data: the
/// connection is closed right after the handshake.
#[derive(Debug)]
pub struct CapturingVerifier {
    captured: Captured,
    ocsp: Option<CapturedOcsp>,
    schemes: Vec<SignatureScheme>,
}

/// Where [`CapturingVerifier::with_ocsp`] puts a stapled OCSP response.
pub type CapturedOcsp = Arc<Mutex<Option<Vec<u8>>>>;

impl CapturingVerifier {
    /// A verifier writing into `captured`.
    pub fn new(captured: Captured) -> CapturingVerifier {
        CapturingVerifier {
            captured,
            ocsp: None,
            schemes: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }

    /// Also record the stapled OCSP response (rustls always asks for one), if any.
    pub fn with_ocsp(mut self, slot: CapturedOcsp) -> CapturingVerifier {
        self.ocsp = Some(slot);
        self
    }
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let (Some(slot), false) = (&self.ocsp, ocsp_response.is_empty()) {
            let mut slot = match slot.lock() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            *slot = Some(ocsp_response.to_vec());
        }
        let chain: Vec<CertificateDer<'static>> = std::iter::once(end_entity)
            .chain(intermediates.iter())
            .take(crate::checks::tls::wire::MAX_CERTS)
            .map(|c| c.clone().into_owned())
            .collect();
        let mut slot = match self.captured.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Some(chain);
        Ok(ServerCertVerified::assertion())
    }

    // The handshake signatures are not checked: the probe only observes, it sends no data.
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// Render Unix seconds as an RFC 3339 date-time.
pub fn date(ts: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(names: &[&str]) -> (CertificateDer<'static>, CertSummary) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().clone();
        let sum = summarise(&der).unwrap();
        (der, sum)
    }

    #[test]
    fn summarises_an_rcgen_certificate() {
        let (der, s) = leaf(&["app.test", "127.0.0.1"]);
        assert_eq!(s.sans, vec!["DNS:app.test", "IP:127.0.0.1"]);
        assert!(s.has_san && s.self_issued && !s.is_ca);
        assert_eq!(s.key_label(), "EC 256 (prime256v1)");
        assert_eq!(s.signature, "ecdsa-with-SHA256");
        assert!(!s.weak_signature && !s.weak_key());
        assert_eq!(s.sha256.len(), 64);
        assert_eq!(s.sha256, sha256_hex(&der));
        assert!(s.not_after > s.not_before);
    }

    #[test]
    fn summarise_rejects_garbage() {
        for bad in [
            &b""[..],
            b"\x30\x03\x02\x01",
            b"not a certificate",
            &[0x30, 0x82, 0xff, 0xff],
        ] {
            assert!(summarise(bad).is_err());
        }
    }

    #[test]
    fn names_and_self_signed_trust() {
        let (der, s) = leaf(&["app.test"]);
        assert_eq!(judge_name(&der, &s, "app.test"), NameMatch::Matches);
        assert_eq!(judge_name(&der, &s, "other.test"), NameMatch::Mismatch);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert_eq!(
            judge_trust(
                std::slice::from_ref(&der),
                std::slice::from_ref(&s),
                &anchors(&[]),
                now
            ),
            Trust::SelfSigned
        );
        assert_eq!(
            judge_trust(
                std::slice::from_ref(&der),
                &[s],
                &anchors(std::slice::from_ref(&der)),
                now
            ),
            Trust::Trusted
        );
        assert!(cn_matches("*.lab.test", "a.lab.test") && !cn_matches("*.lab.test", "lab.test"));
    }

    /// A CA named `cn`, self-signed or issued by `parent`, valid from `from` to `to` days.
    fn ca(
        cn: &str,
        parent: Option<&rcgen::Issuer<'static, rcgen::KeyPair>>,
        (from, to): (i64, i64),
    ) -> (
        CertificateDer<'static>,
        rcgen::Issuer<'static, rcgen::KeyPair>,
    ) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = crate::lab::tls::ca_params(cn).unwrap();
        let now = OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(from);
        params.not_after = now + time::Duration::days(to);
        let cert = match parent {
            Some(p) => params.signed_by(&key, p).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        (cert.der().clone(), rcgen::Issuer::new(params, key))
    }

    /// A leaf for app.test issued by `issuer`, valid between the two instants.
    fn leaf_by(
        issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["app.test".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "app.test");
        params.not_before = not_before;
        params.not_after = not_after;
        params.signed_by(&key, issuer).unwrap().der().clone()
    }

    fn trust_of(chain: &[CertificateDer<'static>], roots: &[CertificateDer<'static>]) -> Trust {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        judge_chain(chain.to_vec(), "test".into(), "app.test", now, roots)
            .unwrap()
            .trust
    }

    #[test]
    fn a_chain_is_incomplete_where_it_stops_below_a_root() {
        let year = (-1, 365);
        let (root, root_i) = ca("root", None, year);
        let (int1, int1_i) = ca("int1", Some(&root_i), year);
        let (int2, int2_i) = ca("int2", Some(&int1_i), year);
        let now = OffsetDateTime::now_utc();
        let leaf = leaf_by(
            &int2_i,
            now - time::Duration::days(1),
            now + time::Duration::days(90),
        );
        let anchor = std::slice::from_ref(&root);
        assert_eq!(
            trust_of(&[leaf.clone(), int2.clone(), int1.clone()], anchor),
            Trust::Trusted
        );
        // root → int1 → int2 → leaf, the server sends leaf + int2: int1 is missing.
        assert_eq!(
            trust_of(&[leaf.clone(), int2.clone()], anchor),
            Trust::MissingIntermediate {
                issuer: "CN=int1".into(),
                top: "CN=int2".into()
            }
        );
        // Only the leaf.
        assert_eq!(
            trust_of(std::slice::from_ref(&leaf), anchor),
            Trust::MissingIntermediate {
                issuer: "CN=int2".into(),
                top: "CN=app.test".into()
            }
        );
        // The whole chain up to a root nobody trusts.
        assert_eq!(
            trust_of(&[leaf, int2, int1, root], &[]),
            Trust::UnknownRoot {
                issuer: "CN=root".into()
            }
        );
    }

    #[test]
    fn an_expired_intermediate_is_a_time_problem() {
        let (root, root_i) = ca("root", None, (-1, 365));
        let (int, int_i) = ca("int", Some(&root_i), (-400, -3));
        let now = OffsetDateTime::now_utc();
        let leaf = leaf_by(
            &int_i,
            now - time::Duration::days(1),
            now + time::Duration::days(90),
        );
        assert!(matches!(
            trust_of(&[leaf, int], std::slice::from_ref(&root)),
            Trust::IntermediateTime(_)
        ));
    }

    #[test]
    fn a_validity_under_two_seconds_is_judged_at_now() {
        let (root, root_i) = ca("root", None, (-1, 365));
        let t = OffsetDateTime::now_utc() - time::Duration::days(3);
        for length in [0, 1, 2] {
            let leaf = leaf_by(&root_i, t, t + time::Duration::seconds(length));
            let c = judge_chain(
                vec![leaf],
                "test".into(),
                "app.test",
                OffsetDateTime::now_utc().unix_timestamp(),
                std::slice::from_ref(&root),
            )
            .unwrap();
            assert_eq!(c.chain[0].not_after - c.chain[0].not_before, length);
            // Two seconds leave one instant inside; shorter ones are judged now, expired.
            if length == 2 {
                assert_eq!(c.trust, Trust::Trusted);
            } else {
                assert!(
                    matches!(c.trust, Trust::IntermediateTime(_)),
                    "{:?}",
                    c.trust
                );
            }
        }
        // Hostile dates cannot overflow either.
        assert!(judge_chain(vec![], "t".into(), "h", i64::MIN, &[]).is_err());
    }

    #[test]
    fn significant_bits_counts_from_the_top_bit() {
        assert_eq!(significant_bits(&[0, 0x80, 0]), 16);
        assert_eq!(significant_bits(&[0x01]), 1);
        assert_eq!(significant_bits(&[0, 0]), 0);
    }
}
