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
        // No path to a trust anchor: every client refuses it, whatever the cause.
        Trust::MissingIntermediate { issuer, top } => out.fail(
            UNTRUSTED,
            format!(
                "no path to a trusted root: the chain stops at '{top}', whose issuer '{issuer}' is neither sent nor trusted (for a private CA, give its root with --ca-file)"
            ),
            ev().text("unknown_issuer", issuer),
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
        Trust::MissingIntermediate { issuer, top } => match missing_intermediate(c, top) {
            Some(why) => out.fail(
                INCOMPLETE_CHAIN,
                format!(
                    "the chain stops at '{top}': its issuer '{issuer}' is not sent, and {why}"
                ),
                ev().text("missing_issuer", issuer).with(
                    "presented",
                    Observed::Number(i64::try_from(c.chain.len()).unwrap_or(0)),
                ),
            ),
            None => out.pass(
                INCOMPLETE_CHAIN,
                format!(
                    "the server sends its chain up to '{top}'; nothing suggests a missing intermediate (its issuer is unknown: see tls.cert.untrusted)"
                ),
                ev(),
            ),
        },
        _ => out.pass(
            INCOMPLETE_CHAIN,
            "the server sends the intermediates its chain needs",
            ev(),
        ),
    }
}

/// Why a chain that stops below a root is likely missing an intermediate (rather than issued
/// by a private CA whose root is, as it should be, not sent): the server sends its own
/// certificate alone, or the top certificate names where a public CA publishes its issuer
/// (Authority Information Access caIssuers; never fetched).
fn missing_intermediate(c: &CertObservation, top: &str) -> Option<String> {
    if c.chain.len() == 1 {
        return Some(
            "the server sends only its own certificate: an intermediate is missing".into(),
        );
    }
    let top = c.chain.iter().find(|s| s.subject == top)?;
    let url = top.ca_issuers.iter().find(|u| publicly_hosted(u))?;
    Some(format!(
        "its certificate says the issuer is published at {url}: an intermediate of a public CA is missing"
    ))
}

/// Whether a URL names a host on the public internet: a DNS name with a dot outside the
/// reserved and private-use suffixes (IP literals are not judged public).
fn publicly_hosted(u: &str) -> bool {
    const PRIVATE: &[&str] = &[
        ".local",
        ".localhost",
        ".test",
        ".example",
        ".invalid",
        ".internal",
        ".lan",
        ".corp",
        ".home",
        ".intranet",
        ".home.arpa",
    ];
    let Ok(url) = url::Url::parse(u) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d.contains('.') && !PRIVATE.iter().any(|p| d.ends_with(p))
        }
        _ => false,
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
    fn a_missing_intermediate_is_blamed_only_where_likely() {
        use Status::*;
        let missing = Trust::MissingIntermediate {
            issuer: "CN=Root".into(),
            top: "CN=Int".into(),
        };
        let run = |o: &TlsObservation| -> Vec<(Status, String)> {
            fixture::run(&RULE, o)
                .into_iter()
                .map(|(_, s, m)| (s, m))
                .collect()
        };
        // Leaf alone.
        let mut o = fixture::good();
        let c = fixture::cert(&mut o);
        c.trust = Trust::MissingIntermediate {
            issuer: "CN=Int".into(),
            top: "CN=app.test".into(),
        };
        c.chain.truncate(1);
        let got = run(&o);
        assert_eq!((got[0].0, got[1].0), (Fail, Fail));
        assert_eq!(
            got[0].1,
            "no path to a trusted root: the chain stops at 'CN=app.test', whose issuer 'CN=Int' is neither sent nor trusted (for a private CA, give its root with --ca-file)"
        );
        // The top certificate points at a public CA's issuer certificate.
        let mut o = fixture::good();
        let c = fixture::cert(&mut o);
        c.trust = missing.clone();
        c.chain[1].ca_issuers = vec!["http://crt.ca.example.com/root.der".into()];
        let got = run(&o);
        assert_eq!((got[0].0, got[1].0), (Fail, Fail));
        assert!(got[1].1.ends_with("its certificate says the issuer is published at http://crt.ca.example.com/root.der: an intermediate of a public CA is missing"), "{}", got[1].1);
        // ... but not at a private name or an address.
        for url in [
            "http://pki.corp/root.der",
            "http://10.0.0.1/root.der",
            "ldap:///cn=x",
        ] {
            fixture::cert(&mut o).chain[1].ca_issuers = vec![url.into()];
            assert_eq!(run(&o)[1].0, Pass, "{url}");
        }
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
        // The fixture sends leaf + intermediate: a complete chain under an unknown root is
        // untrusted only.
        assert_eq!(
            with(Trust::MissingIntermediate {
                issuer: "CN=Root".into(),
                top: "CN=Int".into()
            }),
            vec![Fail, Pass]
        );
        assert_eq!(
            with(Trust::IntermediateTime("x".into())),
            vec![Skipped, Pass]
        );
        // Without a weak hash or key to blame, an unsupported algorithm is untrusted.
        assert_eq!(with(Trust::WeakSignature("x".into())), vec![Fail, Pass]);
    }
}
