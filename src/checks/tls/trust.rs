//! Trust: the chain leads to a trusted root (Mozilla's, plus `--ca-file`), and the server sends
//! the intermediates it needs. Judged inside the leaf's validity period, so that an expired or
//! SHA-1 chain is reported by its real cause only.

use super::cert::Trust;
use super::{CertObservation, Rule, TlsObservation, cert_evidence, per_certificate, strength};
use crate::engine::Emitter;
use crate::model::Observed;

pub(super) const UNTRUSTED: &str = "tls.cert.untrusted";
pub(super) const INCOMPLETE_CHAIN: &str = "tls.cert.incomplete_chain";
const IDS: &[&str] = &[UNTRUSTED, INCOMPLETE_CHAIN];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    per_certificate(obs, out, IDS, judge);
}

fn judge(obs: &TlsObservation, c: &CertObservation, out: &mut Emitter) {
    let ev = || cert_evidence(c, obs.now);
    match &c.trust {
        Trust::Trusted => out.pass(UNTRUSTED, "the chain leads to a trusted root", ev()),
        Trust::SelfSigned => out.fail(
            UNTRUSTED,
            "the certificate is self-signed and not a trusted root",
            ev(),
        ),
        Trust::UnknownRoot { issuer } => out.fail(
            UNTRUSTED,
            format!("the chain ends at '{issuer}', which is not a trusted root"),
            ev().text("unknown_issuer", issuer),
        ),
        Trust::MissingIntermediate { .. } => out.skipped(
            UNTRUSTED,
            "the chain is incomplete, so trust cannot be established (see tls.cert.incomplete_chain)",
        ),
        Trust::WeakSignature(detail) => {
            if strength::has_weak_signature(c) {
                out.skipped(
                    UNTRUSTED,
                    "the chain cannot be validated because of its broken signature hash (see tls.cert.weak_signature)",
                );
            } else if strength::has_weak_key(c) {
                out.skipped(
                    UNTRUSTED,
                    "the chain cannot be validated because of a weak key (see tls.cert.weak_key)",
                );
            } else {
                out.fail(
                    UNTRUSTED,
                    format!("the chain cannot be validated: {detail}"),
                    ev(),
                );
            }
        }
        Trust::IntermediateTime(_) => out.skipped(
            UNTRUSTED,
            "a certificate of the chain is outside its validity period (see tls.cert.expired and tls.cert.not_yet_valid)",
        ),
        Trust::Invalid(detail) => out.fail(
            UNTRUSTED,
            format!("the chain is invalid: {detail}"),
            ev(),
        ),
    }
    match &c.trust {
        Trust::MissingIntermediate { issuer, top } => out.fail(
            INCOMPLETE_CHAIN,
            if c.chain.len() == 1 {
                format!(
                    "the server sends only its own certificate; the issuer '{issuer}' is neither sent nor a trusted root (a missing intermediate, or an unknown CA)"
                )
            } else {
                format!(
                    "the chain stops at '{top}': its issuer '{issuer}' is neither sent nor a trusted root (a missing intermediate, or an unknown CA)"
                )
            },
            ev().text("missing_issuer", issuer)
                .with("presented", Observed::Number(i64::try_from(c.chain.len()).unwrap_or(0))),
        ),
        _ => out.pass(
            INCOMPLETE_CHAIN,
            "the server sends the intermediates its chain needs",
            ev(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    fn with(trust: Trust) -> Vec<Status> {
        let mut o = fixture::good();
        fixture::cert(&mut o).trust = trust;
        fixture::run(&RULE, &o)
            .into_iter()
            .map(|(_, s, _)| s)
            .collect()
    }

    #[test]
    fn each_cause_once() {
        use Status::*;
        assert_eq!(with(Trust::Trusted), vec![Pass, Pass]);
        assert_eq!(with(Trust::SelfSigned), vec![Fail, Pass]);
        assert_eq!(
            with(Trust::UnknownRoot {
                issuer: "CN=X".into()
            }),
            vec![Fail, Pass]
        );
        assert_eq!(
            with(Trust::MissingIntermediate {
                issuer: "CN=Int".into(),
                top: "CN=app.test".into()
            }),
            vec![Skipped, Fail]
        );
        assert_eq!(
            with(Trust::IntermediateTime("x".into())),
            vec![Skipped, Pass]
        );
        // Without a weak hash or key to blame, an unsupported algorithm is untrusted.
        assert_eq!(with(Trust::WeakSignature("x".into())), vec![Fail, Pass]);
    }
}
