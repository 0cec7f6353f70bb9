//! Certificate status facts of one presented chain: the OCSP response stapled with it (judged by
//! [`super::ocsp`]), whether the leaf requires stapling (RFC 7633 TLS Feature), and the Signed
//! Certificate Timestamps (RFC 6962) delivered in the certificate, the TLS extension and the
//! stapled response. Gathered from the handshakes the family already makes: the rustls
//! handshake always asks for a staple (its verifier receives it, TLS 1.2 and 1.3), and the
//! TLS ≤ 1.2 survey hellos ask for a staple and for SCTs (`status_request`,
//! `signed_certificate_timestamp`), whose answers sit in the plaintext flight.

use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::cert::{self, CertSummary, Trust};
use super::ocsp::{self, Der, Staple};

/// The TLS Feature extension (RFC 7633, 1.3.6.1.5.5.7.1.24).
const OID_TLS_FEATURE: &str = "1.3.6.1.5.5.7.1.24";
/// The embedded SCT list extension of a certificate (RFC 6962 §3.3, 1.3.6.1.4.1.11129.2.4.2).
const OID_SCT_CERT: &str = "1.3.6.1.4.1.11129.2.4.2";
/// The `status_request` TLS feature (RFC 6066 extension 5).
const STATUS_REQUEST: u8 = 5;

/// What the handshakes that presented a chain's leaf delivered besides the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// A handshake that asked for a staple (`status_request`) presented this leaf.
    pub asked_staple: bool,
    /// The stapled OCSP response, if one came (the first seen).
    pub staple: Option<Vec<u8>>,
    /// The `signed_certificate_timestamp` extension's body, when a hello that asked for it got
    /// this leaf: `Some(None)` when asked and not sent.
    pub sct_extension: Option<Option<Vec<u8>>>,
}

impl Delivered {
    /// Take in what another handshake with the same leaf delivered.
    pub fn merge(&mut self, other: Delivered) {
        self.asked_staple |= other.asked_staple;
        if self.staple.is_none() {
            self.staple = other.staple;
        }
        match (&self.sct_extension, other.sct_extension) {
            (None, o) | (Some(None), o @ Some(Some(_))) => self.sct_extension = o,
            _ => {}
        }
    }
}

/// Certificate status facts of one chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusFacts {
    /// A handshake that asked for a staple presented this leaf (else the stapling rules
    /// cannot judge it).
    pub asked_staple: bool,
    /// The stapled response, judged (none: nothing stapled).
    pub staple: Option<Staple>,
    /// The stapled response's size in bytes.
    pub staple_bytes: usize,
    /// The leaf has the TLS Feature extension with `status_request` (must-staple).
    pub must_staple: bool,
    /// SCTs embedded in the leaf.
    pub scts_certificate: usize,
    /// SCTs in the TLS extension (none: never asked for with this leaf).
    pub scts_extension: Option<usize>,
    /// SCTs in the stapled response (a valid one only).
    pub scts_ocsp: usize,
    /// A malformed SCT list or TLS Feature extension (where, and what).
    pub malformed: Vec<String>,
    /// The chain is trusted only through a `--ca-file` CA (a private PKI).
    pub private_anchor: bool,
    /// `[checks.tls] ct_private_ca`: judge CT for chains under a `--ca-file` CA as well.
    pub ct_private_ca: bool,
}

impl StatusFacts {
    /// Every SCT delivered.
    pub fn scts(&self) -> usize {
        self.scts_certificate + self.scts_extension.unwrap_or(0) + self.scts_ocsp
    }
}

/// Gather the status facts of a judged chain (`der`, leaf first) from what its handshakes
/// delivered. Never panics on any input.
pub fn gather(
    der: &[CertificateDer<'static>],
    summaries: &[CertSummary],
    trust: &Trust,
    delivered: Delivered,
    extra_roots: &[CertificateDer<'static>],
    now: i64,
    ct_private_ca: bool,
) -> StatusFacts {
    let mut facts = StatusFacts {
        asked_staple: delivered.asked_staple,
        ct_private_ca,
        ..StatusFacts::default()
    };
    if let Some(leaf) = der.first().and_then(|d| X509Certificate::from_der(d).ok()) {
        let leaf = leaf.1;
        for ext in leaf.extensions() {
            let oid = ext.oid.to_id_string();
            if oid == OID_TLS_FEATURE {
                match tls_features(ext.value) {
                    Ok(f) => facts.must_staple = f.contains(&STATUS_REQUEST),
                    Err(e) => facts
                        .malformed
                        .push(format!("the leaf's TLS Feature extension: {e}")),
                }
            } else if oid == OID_SCT_CERT {
                let list = Der::new(ext.value);
                let counted = {
                    let mut l = list;
                    l.take(0x04, "SCT list")
                        .ok()
                        .filter(|_| l.end("SCT list").is_ok())
                        .ok_or("not an OCTET STRING")
                        .and_then(ocsp::count_sct_list)
                };
                match counted {
                    Ok(n) => facts.scts_certificate = n,
                    Err(e) => facts
                        .malformed
                        .push(format!("the leaf's SCT list extension: {e}")),
                }
            }
        }
    }
    match delivered.sct_extension {
        Some(Some(body)) => match ocsp::count_sct_list(&body) {
            Ok(n) => facts.scts_extension = Some(n),
            Err(e) => {
                facts.scts_extension = Some(0);
                facts.malformed.push(format!(
                    "the signed_certificate_timestamp TLS extension: {e}"
                ));
            }
        },
        Some(None) => facts.scts_extension = Some(0),
        None => {}
    }
    if let Some(staple) = delivered.staple {
        facts.staple_bytes = staple.len();
        let judged = ocsp::judge_staple(&staple, der, extra_roots, now);
        if let Staple::Valid(v) = &judged {
            facts.scts_ocsp = v.scts;
        }
        facts.staple = Some(judged);
    }
    // Trusted, and only thanks to --ca-file: the same chain has no path to a Mozilla root.
    if *trust == Trust::Trusted && !extra_roots.is_empty() {
        let at = summaries.first().map_or(now, |leaf| {
            let (lo, hi) = (
                leaf.not_before.saturating_add(1),
                leaf.not_after.saturating_sub(1),
            );
            if lo > hi { now } else { now.clamp(lo, hi) }
        });
        facts.private_anchor =
            cert::judge_trust(der, summaries, &cert::anchors(&[]), at) != Trust::Trusted;
    }
    facts
}

/// The features of a TLS Feature extension value (`SEQUENCE OF INTEGER`, RFC 7633 §4.1).
fn tls_features(value: &[u8]) -> Result<Vec<u8>, String> {
    let mut outer = Der::new(value);
    let mut list = Der::new(outer.take(0x30, "TLS Feature").map_err(|e| e.to_string())?);
    outer.end("TLS Feature").map_err(|e| e.to_string())?;
    let mut features = Vec::new();
    while !list.is_empty() {
        if features.len() == 64 {
            return Err("too many features".into());
        }
        match list.take(0x02, "TLS Feature").map_err(|e| e.to_string())? {
            // An INTEGER 0..=127 is one byte; 128..=255 has a leading zero.
            [v] if *v < 0x80 => features.push(*v),
            [0, v] if *v >= 0x80 => features.push(*v),
            _ => {} // a feature this reader does not know (> 255)
        }
    }
    Ok(features)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_feature_values() {
        assert_eq!(tls_features(&[0x30, 0x03, 0x02, 0x01, 0x05]), Ok(vec![5]));
        assert_eq!(tls_features(&[0x30, 0x00]), Ok(vec![]));
        assert!(tls_features(&[0x30, 0x03, 0x02, 0x01]).is_err());
        assert!(tls_features(&[0x31, 0x00]).is_err());
    }

    #[test]
    fn delivered_merges_first_staple_and_best_sct_answer() {
        let mut d = Delivered {
            asked_staple: true,
            staple: None,
            sct_extension: None,
        };
        d.merge(Delivered {
            asked_staple: false,
            staple: Some(vec![1]),
            sct_extension: Some(None),
        });
        d.merge(Delivered {
            asked_staple: false,
            staple: Some(vec![2]),
            sct_extension: Some(Some(vec![0])),
        });
        assert!(d.asked_staple);
        assert_eq!(d.staple, Some(vec![1]));
        assert_eq!(d.sct_extension, Some(Some(vec![0])));
    }
}
