//! The name: the leaf is valid for the host asked for, through a subjectAltName.

use super::cert::NameMatch;
use super::{CertObservation, Rule, TlsObservation, cert_evidence, per_certificate};
use crate::engine::Emitter;

pub(super) const HOSTNAME_MISMATCH: &str = "tls.cert.hostname_mismatch";
pub(super) const NO_SAN: &str = "tls.cert.no_san";
const IDS: &[&str] = &[HOSTNAME_MISMATCH, NO_SAN];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    per_certificate(obs, out, IDS, judge);
}

fn judge(obs: &TlsObservation, c: &CertObservation, out: &mut Emitter) {
    let Some(leaf) = c.leaf() else {
        for id in IDS {
            out.skipped(id, "no certificate");
        }
        return;
    };
    let ev = || cert_evidence(c, obs.now).text("host", &obs.host);
    match c.name {
        NameMatch::Matches => out.pass(
            HOSTNAME_MISMATCH,
            format!("the certificate is valid for {}", obs.host),
            ev(),
        ),
        // Reported once, as no_san: the name is right, its place is not.
        NameMatch::CommonNameOnly => out.pass(
            HOSTNAME_MISMATCH,
            format!(
                "{} matches only the legacy common name (see tls.cert.no_san)",
                obs.host
            ),
            ev(),
        ),
        NameMatch::Mismatch => out.fail(
            HOSTNAME_MISMATCH,
            format!(
                "the certificate is not valid for {} (names: {})",
                obs.host,
                if leaf.sans.is_empty() {
                    leaf.common_name
                        .clone()
                        .map_or_else(|| "none".into(), |cn| format!("CN={cn}"))
                } else {
                    leaf.sans.join(", ")
                }
            ),
            ev(),
        ),
    }
    if leaf.has_san {
        out.pass(NO_SAN, "the certificate carries a subjectAltName", ev());
    } else {
        out.fail(
            NO_SAN,
            format!(
                "the certificate has no subjectAltName (common name: {})",
                leaf.common_name.as_deref().unwrap_or("none")
            ),
            ev(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn mismatch_and_no_san() {
        let mut o = fixture::good();
        fixture::cert(&mut o).name = NameMatch::Mismatch;
        let r = fixture::run(&RULE, &o);
        assert_eq!(r[0].1, Status::Fail);
        assert_eq!(
            r[0].2,
            "the certificate is not valid for app.test (names: DNS:app.test)"
        );
        let c = fixture::cert(&mut o);
        c.name = NameMatch::CommonNameOnly;
        c.chain[0].has_san = false;
        c.chain[0].sans.clear();
        c.chain[0].common_name = Some("app.test".into());
        let r = fixture::run(&RULE, &o);
        assert_eq!((r[0].1, r[1].1), (Status::Pass, Status::Fail));
        assert_eq!(
            r[1].2,
            "the certificate has no subjectAltName (common name: app.test)"
        );
    }
}
