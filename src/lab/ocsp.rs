//! A lab OCSP signer: RFC 6960 `OCSPResponse` messages for lab leaves, written by a small DER
//! writer and signed (ECDSA P-256, SHA-256) by the issuing lab CA itself or by a delegated
//! responder certificate it issued (with or without id-kp-OCSPSigning), with any status (good,
//! revoked, unknown), any `thisUpdate`/`nextUpdate` (an expired response has a nextUpdate in the
//! past), SCTs in its single extension, or deliberately wrong (another serial, a broken
//! signature). Also the certificate extensions the status rules read: must-staple (RFC 7633)
//! and embedded SCTs (RFC 6962). Stapled by a rustls server ([`rustls_config_stapled`]) or by
//! `openssl s_server -status_file`.
//!
//! Nothing here is a responder on the network: responses are made in memory and stapled.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::tls::LabCa;

/// The status a lab response gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabStatus {
    /// `good`.
    Good,
    /// `revoked` a day ago, with a CRLReason code if given (1: keyCompromise).
    Revoked(Option<u8>),
    /// `unknown`.
    Unknown,
}

/// What a lab response looks like.
#[derive(Clone, Debug)]
pub struct ResponseSpec {
    /// The certificate status.
    pub status: LabStatus,
    /// `thisUpdate`, in days relative to now.
    pub this_update_days: i64,
    /// `nextUpdate`, in days relative to now (none: left out).
    pub next_update_days: Option<i64>,
    /// SCTs in the single response's extension.
    pub scts: usize,
    /// Name a serial other than the leaf's in the CertID.
    pub other_serial: bool,
    /// Flip a bit of the signature after signing.
    pub bad_signature: bool,
    /// `responderID` byKey instead of byName.
    pub by_key: bool,
}

impl ResponseSpec {
    /// A fresh response with `status`: thisUpdate an hour ago, nextUpdate in 7 days.
    pub fn new(status: LabStatus) -> ResponseSpec {
        ResponseSpec {
            status,
            this_update_days: 0,
            next_update_days: Some(7),
            scts: 0,
            other_serial: false,
            bad_signature: false,
            by_key: false,
        }
    }
}

/// A responder certificate issued by a lab CA, and its key.
pub struct Responder {
    der: CertificateDer<'static>,
    key: rcgen::KeyPair,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}

impl Responder {
    /// A responder named `cn`, issued by `ca`, with id-kp-OCSPSigning when `ocsp_signing`
    /// (else with serverAuth only: not a delegated responder).
    pub fn new(cn: &str, ca: &LabCa, ocsp_signing: bool) -> Result<Responder, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + time::Duration::days(30);
        params.extended_key_usages = vec![if ocsp_signing {
            rcgen::ExtendedKeyUsagePurpose::OcspSigning
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let der = ca.issue(&params, &key)?;
        Ok(Responder { der, key })
    }

    /// The responder certificate.
    pub fn der(&self) -> CertificateDer<'static> {
        self.der.clone()
    }
}

/// A DER element.
fn tlv(id: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn generalized_time(days: i64) -> Vec<u8> {
    let t = OffsetDateTime::now_utc() + time::Duration::days(days);
    let s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x18, s.as_bytes())
}

fn sha1(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// A TLS-encoded SignedCertificateTimestampList of `n` well-formed (unsigned, made-up) SCTs.
pub fn sct_list(n: usize) -> Vec<u8> {
    let mut scts = Vec::new();
    for i in 0..n {
        let mut sct = vec![0u8]; // v1
        sct.extend([i as u8; 32]); // log id
        sct.extend(1_700_000_000_000u64.to_be_bytes()); // timestamp (ms)
        sct.extend([0, 0]); // no extensions
        sct.extend([4, 3, 0, 8]); // sha256/ecdsa, 8 bytes of signature
        sct.extend([0u8; 8]);
        scts.extend((sct.len() as u16).to_be_bytes());
        scts.extend(sct);
    }
    let mut out = (scts.len() as u16).to_be_bytes().to_vec();
    out.extend(scts);
    out
}

/// The TLS Feature extension with status_request (RFC 7633 "must-staple").
pub fn must_staple() -> rcgen::CustomExtension {
    rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 24],
        tlv(0x30, &tlv(0x02, &[5])),
    )
}

/// The embedded SCT list extension (RFC 6962 §3.3) with `n` made-up SCTs.
pub fn embedded_scts(n: usize) -> rcgen::CustomExtension {
    rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
        tlv(0x04, &sct_list(n)),
    )
}

/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];

/// An OCSPResponse for `leaf` (issued by `issuer`), signed by `issuer` or by `responder`
/// (whose certificate is then included).
pub fn response(
    issuer: &LabCa,
    leaf: &CertificateDer<'_>,
    spec: &ResponseSpec,
    responder: Option<&Responder>,
) -> Result<Vec<u8>, String> {
    response_by(&issuer.der(), issuer.key_pair(), leaf, spec, responder)
}

/// [`response`] for an issuer given as its certificate and key.
pub fn response_by(
    issuer_der: &CertificateDer<'_>,
    issuer_key: &rcgen::KeyPair,
    leaf: &CertificateDer<'_>,
    spec: &ResponseSpec,
    responder: Option<&Responder>,
) -> Result<Vec<u8>, String> {
    use rcgen::SigningKey;
    let (_, ca) = X509Certificate::from_der(issuer_der).map_err(|e| e.to_string())?;
    let (_, leaf) = X509Certificate::from_der(leaf).map_err(|e| e.to_string())?;
    let mut serial = leaf.raw_serial().to_vec();
    if spec.other_serial
        && let Some(last) = serial.last_mut()
    {
        *last ^= 1;
    }
    let cert_id = tlv(
        0x30,
        &cat(&[
            &tlv(
                0x30,
                &cat(&[&tlv(0x06, &[0x2B, 0x0E, 0x03, 0x02, 0x1A]), &[0x05, 0x00]]),
            ),
            &tlv(0x04, &sha1(ca.subject().as_raw())),
            &tlv(0x04, &sha1(&ca.public_key().subject_public_key.data)),
            &tlv(0x02, &serial),
        ]),
    );
    let status = match spec.status {
        LabStatus::Good => vec![0x80, 0x00],
        LabStatus::Revoked(reason) => {
            let mut info = generalized_time(-1);
            if let Some(r) = reason {
                info.extend(tlv(0xA0, &tlv(0x0A, &[r])));
            }
            tlv(0xA1, &info)
        }
        LabStatus::Unknown => vec![0x82, 0x00],
    };
    let mut single = cat(&[&cert_id, &status, &generalized_time(spec.this_update_days)]);
    if let Some(n) = spec.next_update_days {
        single.extend(tlv(0xA0, &generalized_time(n)));
    }
    if spec.scts > 0 {
        let ext = tlv(
            0x30,
            &cat(&[
                &tlv(
                    0x06,
                    &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xD6, 0x79, 0x02, 0x04, 0x05],
                ),
                &tlv(0x04, &tlv(0x04, &sct_list(spec.scts))),
            ]),
        );
        single.extend(tlv(0xA1, &tlv(0x30, &ext)));
    }
    let (signer_key, signer_der): (&rcgen::KeyPair, Vec<u8>) = match responder {
        Some(r) => (&r.key, r.der.to_vec()),
        None => (issuer_key, issuer_der.to_vec()),
    };
    let (_, signer) = X509Certificate::from_der(&signer_der).map_err(|e| e.to_string())?;
    let responder_id = if spec.by_key {
        tlv(
            0xA2,
            &tlv(0x04, &sha1(&signer.public_key().subject_public_key.data)),
        )
    } else {
        tlv(0xA1, signer.subject().as_raw())
    };
    let tbs = tlv(
        0x30,
        &cat(&[
            &responder_id,
            &generalized_time(spec.this_update_days),
            &tlv(0x30, &tlv(0x30, &single)),
        ]),
    );
    if signer_key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
        return Err("the lab signer signs with ECDSA P-256 only".into());
    }
    let mut signature = signer_key.sign(&tbs).map_err(|e| e.to_string())?;
    if spec.bad_signature
        && let Some(b) = signature.get_mut(10)
    {
        *b ^= 0x01;
    }
    let mut bits = vec![0u8];
    bits.extend(signature);
    let mut basic = cat(&[&tbs, &tlv(0x30, ECDSA_SHA256), &tlv(0x03, &bits)]);
    if let Some(r) = responder {
        basic.extend(tlv(0xA0, &tlv(0x30, &r.der)));
    }
    let basic = tlv(0x30, &basic);
    let bytes = tlv(
        0x30,
        &cat(&[
            &tlv(
                0x06,
                &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01],
            ),
            &tlv(0x04, &basic),
        ]),
    );
    Ok(tlv(0x30, &cat(&[&[0x0A, 0x01, 0x00], &tlv(0xA0, &bytes)])))
}

/// A rustls server configuration (TLS 1.2 and 1.3) presenting `chain` and stapling `ocsp`.
pub fn rustls_config_stapled(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ocsp: Vec<u8>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert_with_ocsp(chain, key, ocsp)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use crate::checks::tls::ocsp::{CertStatus, Staple, judge_staple, parse};
    use crate::lab::tls::{LeafSpec, TlsPki};

    fn judge(spec: &ResponseSpec, responder: Option<&Responder>) -> Staple {
        let pki = TlsPki::new().unwrap();
        let (chain, _) = pki.leaf(&LeafSpec::new(&["a.test"])).unwrap();
        let der = response(pki.intermediate(), &chain[0], spec, responder).unwrap();
        assert!(parse(&der).is_ok(), "{:?}", parse(&der));
        let now = OffsetDateTime::now_utc().unix_timestamp();
        judge_staple(&der, &chain, &[], now)
    }

    #[test]
    fn lab_responses_are_judged() {
        let good = judge(&ResponseSpec::new(LabStatus::Good), None);
        assert!(
            matches!(&good, Staple::Valid(v) if v.status == CertStatus::Good && v.signer.starts_with("the issuer")),
            "{good:?}"
        );
        let revoked = judge(&ResponseSpec::new(LabStatus::Revoked(Some(1))), None);
        assert!(
            matches!(&revoked, Staple::Valid(v) if matches!(v.status, CertStatus::Revoked { reason: Some(1), .. })),
            "{revoked:?}"
        );
        let expired = judge(
            &ResponseSpec {
                this_update_days: -10,
                next_update_days: Some(-3),
                ..ResponseSpec::new(LabStatus::Good)
            },
            None,
        );
        assert!(
            matches!(&expired, Staple::Invalid(w) if w.contains("expired")),
            "{expired:?}"
        );
        let unknown = judge(&ResponseSpec::new(LabStatus::Unknown), None);
        assert!(
            matches!(&unknown, Staple::Invalid(w) if w.contains("unknown")),
            "{unknown:?}"
        );
        let other = judge(
            &ResponseSpec {
                other_serial: true,
                ..ResponseSpec::new(LabStatus::Good)
            },
            None,
        );
        assert!(
            matches!(&other, Staple::Invalid(w) if w.contains("another certificate")),
            "{other:?}"
        );
        let bad = judge(
            &ResponseSpec {
                bad_signature: true,
                ..ResponseSpec::new(LabStatus::Good)
            },
            None,
        );
        assert!(
            matches!(&bad, Staple::Invalid(w) if w.contains("signature")),
            "{bad:?}"
        );
        let by_key = judge(
            &ResponseSpec {
                by_key: true,
                scts: 2,
                ..ResponseSpec::new(LabStatus::Good)
            },
            None,
        );
        assert!(
            matches!(&by_key, Staple::Valid(v) if v.scts == 2),
            "{by_key:?}"
        );
    }

    #[test]
    fn delegated_responders_need_ocsp_signing_from_the_issuer() {
        let pki = TlsPki::new().unwrap();
        let (chain, _) = pki.leaf(&LeafSpec::new(&["a.test"])).unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let spec = ResponseSpec::new(LabStatus::Good);
        let ok = Responder::new("lab responder", pki.intermediate(), true).unwrap();
        let der = response(pki.intermediate(), &chain[0], &spec, Some(&ok)).unwrap();
        let got = judge_staple(&der, &chain, &[], now);
        assert!(
            matches!(&got, Staple::Valid(v) if v.signer == "delegated responder CN=lab responder"),
            "{got:?}"
        );
        let rogue = Responder::new("rogue responder", pki.intermediate(), false).unwrap();
        let der = response(pki.intermediate(), &chain[0], &spec, Some(&rogue)).unwrap();
        let got = judge_staple(&der, &chain, &[], now);
        assert!(
            matches!(&got, Staple::Invalid(w) if w.contains("did not delegate")),
            "{got:?}"
        );
        // Issued by another CA (the root), with id-kp-OCSPSigning: not delegated by the issuer.
        let foreign = Responder::new("root responder", pki.root(), true).unwrap();
        let der = response(pki.intermediate(), &chain[0], &spec, Some(&foreign)).unwrap();
        let got = judge_staple(&der, &chain, &[], now);
        assert!(
            matches!(&got, Staple::Invalid(w) if w.contains("did not delegate")),
            "{got:?}"
        );
        // The leaf alone: the issuer is unknown, nothing can be checked.
        let der = response(pki.intermediate(), &chain[0], &spec, None).unwrap();
        let got = judge_staple(&der, &chain[..1], &[], now);
        assert!(matches!(got, Staple::Unverifiable(_)), "{got:?}");
        // Every truncation of a good response is refused, never a panic.
        for n in 0..der.len() {
            assert!(
                matches!(
                    judge_staple(&der[..n], &chain, &[], now),
                    Staple::Invalid(_)
                ),
                "{n}"
            );
        }
    }
}
