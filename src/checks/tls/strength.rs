//! Key and signature strength of the leaf and the intermediates (RSA/DSA < 2048 bits, EC < 256;
//! MD5 or SHA-1 signatures). Self-issued roots are left out: clients trust them by key.

use super::{CertObservation, Rule, TlsObservation, cert_evidence, per_certificate};
use crate::engine::Emitter;
use crate::model::Observed;

pub(super) const WEAK_KEY: &str = "tls.cert.weak_key";
pub(super) const WEAK_SIGNATURE: &str = "tls.cert.weak_signature";
const IDS: &[&str] = &[WEAK_KEY, WEAK_SIGNATURE];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// Whether a presented non-root certificate has a weak key.
pub(super) fn has_weak_key(c: &CertObservation) -> bool {
    c.issued().any(|(_, s)| s.weak_key())
}

/// Whether a presented non-root certificate is signed with a broken hash.
pub(super) fn has_weak_signature(c: &CertObservation) -> bool {
    c.issued().any(|(_, s)| s.weak_signature)
}

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    per_certificate(obs, out, IDS, judge);
}

fn judge(obs: &TlsObservation, c: &CertObservation, out: &mut Emitter) {
    let ev = || cert_evidence(c, obs.now);
    let weak: Vec<String> = c
        .issued()
        .filter(|(_, s)| s.weak_key())
        .map(|(_, s)| format!("{}: {}", s.subject, s.key_label()))
        .collect();
    if weak.is_empty() {
        out.pass(WEAK_KEY, "every key is strong enough", ev());
    } else {
        out.fail(
            WEAK_KEY,
            format!("weak key: {}", weak.join("; ")),
            ev().with("weak_keys", Observed::texts(weak)),
        );
    }
    let weak: Vec<String> = c
        .issued()
        .filter(|(_, s)| s.weak_signature)
        .map(|(_, s)| format!("{}: {}", s.subject, s.signature))
        .collect();
    if weak.is_empty() {
        out.pass(
            WEAK_SIGNATURE,
            "no certificate is signed with MD5 or SHA-1",
            ev(),
        );
    } else {
        out.fail(
            WEAK_SIGNATURE,
            format!("broken signature hash: {}", weak.join("; ")),
            ev().with("weak_signatures", Observed::texts(weak)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn rsa_1024_and_sha1() {
        let mut o = fixture::good();
        let c = fixture::cert(&mut o);
        c.chain[0].key_type = "RSA".into();
        c.chain[0].key_bits = 1024;
        c.chain[0].curve = None;
        c.chain[1].signature = "sha1WithRSAEncryption".into();
        c.chain[1].weak_signature = true;
        let r = fixture::run(&RULE, &o);
        assert_eq!(r[0].1, Status::Fail);
        assert_eq!(r[0].2, "weak key: CN=app.test: RSA 1024");
        assert_eq!(r[1].1, Status::Fail);
        assert_eq!(
            r[1].2,
            "broken signature hash: CN=Int: sha1WithRSAEncryption"
        );
    }

    #[test]
    fn a_self_signed_root_in_the_chain_does_not_count() {
        let mut o = fixture::good();
        let mut root = fixture::summary("CN=Root", "CN=Root");
        root.weak_signature = true;
        fixture::cert(&mut o).chain.push(root);
        assert_eq!(fixture::status(&RULE, &o, WEAK_SIGNATURE), Status::Pass);
    }
}
