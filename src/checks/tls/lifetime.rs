//! Leaf lifetime: the CA/Browser Forum Baseline Requirements cap a publicly trusted TLS
//! certificate at 398 days (since September 2020); browsers refuse longer ones from public CAs.

use super::{CertObservation, Rule, TlsObservation, cert, cert_evidence, per_certificate};
use crate::engine::Emitter;
use crate::model::Observed;

pub(super) const LIFETIME: &str = "tls.cert.lifetime";
const IDS: &[&str] = &[LIFETIME];

/// The longest leaf validity allowed, in days.
pub const MAX_DAYS: i64 = 398;

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    per_certificate(obs, out, IDS, judge);
}

fn judge(obs: &TlsObservation, c: &CertObservation, out: &mut Emitter) {
    let ev = || cert_evidence(c, obs.now);
    let Some(leaf) = c.leaf() else {
        return out.skipped(LIFETIME, "no certificate");
    };
    // The limit is exceeded from notAfter - notBefore = 398 days on (both ends count).
    let days = leaf.lifetime_days();
    let ev = ev().with("lifetime_days", Observed::Number(days));
    if leaf.lifetime_over(MAX_DAYS) {
        out.fail(
            LIFETIME,
            format!(
                "the leaf ({}) is valid for more than {MAX_DAYS} days ({days} days: {} to {}), over the CA/Browser Forum baseline",
                leaf.subject,
                cert::date(leaf.not_before),
                cert::date(leaf.not_after)
            ),
            ev,
        );
    } else {
        out.pass(
            LIFETIME,
            format!("the leaf is valid for {days} days (at most {MAX_DAYS})"),
            ev,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn over_398_days_fails() {
        let mut o = fixture::good();
        let leaf = &mut fixture::cert(&mut o).chain[0];
        leaf.not_after = leaf.not_before + 398 * 86_400 - 1;
        assert_eq!(fixture::status(&RULE, &o, LIFETIME), Status::Pass);
        let leaf = &mut fixture::cert(&mut o).chain[0];
        leaf.not_after = leaf.not_before + 398 * 86_400;
        let got = fixture::run(&RULE, &o);
        assert_eq!(got[0].1, Status::Fail);
        assert!(
            got[0]
                .2
                .contains("valid for more than 398 days (398 days: "),
            "{}",
            got[0].2
        );
    }
}
