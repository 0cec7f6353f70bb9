//! Validity period: expired, not yet valid, expiring soon. Judged on the leaf and every
//! intermediate the server presents (self-issued roots are the client's business).

use super::{
    CertObservation, Rule, TlsObservation, cert, cert_evidence, days_left, per_certificate,
};
use crate::engine::Emitter;
use crate::model::Observed;

pub(super) const EXPIRED: &str = "tls.cert.expired";
pub(super) const NOT_YET_VALID: &str = "tls.cert.not_yet_valid";
pub(super) const EXPIRING_SOON: &str = "tls.cert.expiring_soon";
const IDS: &[&str] = &[EXPIRED, NOT_YET_VALID, EXPIRING_SOON];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    per_certificate(obs, out, IDS, judge);
}

fn judge(obs: &TlsObservation, c: &CertObservation, out: &mut Emitter) {
    let now = obs.now;
    let ev = || cert_evidence(c, now);
    let label = |i: usize| {
        if i == 0 {
            "the leaf".to_string()
        } else {
            format!("intermediate {i}")
        }
    };

    let expired: Vec<String> = c
        .issued()
        .filter(|(_, s)| s.not_after < now)
        .map(|(i, s)| {
            format!(
                "{} ({}) expired on {}",
                label(i),
                s.subject,
                cert::date(s.not_after)
            )
        })
        .collect();
    if expired.is_empty() {
        out.pass(EXPIRED, "no presented certificate has expired", ev());
    } else {
        out.fail(
            EXPIRED,
            expired.join("; "),
            ev().with("expired", Observed::texts(expired.clone())),
        );
    }

    let early: Vec<String> = c
        .issued()
        .filter(|(_, s)| s.not_before > now)
        .map(|(i, s)| {
            format!(
                "{} ({}) is valid only from {}",
                label(i),
                s.subject,
                cert::date(s.not_before)
            )
        })
        .collect();
    if early.is_empty() {
        out.pass(
            NOT_YET_VALID,
            "every presented certificate is already valid",
            ev(),
        );
    } else {
        out.fail(
            NOT_YET_VALID,
            early.join("; "),
            ev().with("not_yet_valid", Observed::texts(early)),
        );
    }

    if !expired.is_empty() {
        out.skipped(
            EXPIRING_SOON,
            "a certificate has already expired (see tls.cert.expired)",
        );
        return;
    }
    let soonest = c.issued().min_by_key(|(_, s)| s.not_after);
    let Some((i, s)) = soonest else {
        out.skipped(EXPIRING_SOON, "no certificate");
        return;
    };
    let days = days_left(s, now);
    let threshold = i64::from(obs.expiry_days);
    let ev = ev().with("threshold_days", Observed::Number(threshold));
    if days < threshold {
        out.fail(
            EXPIRING_SOON,
            format!(
                "{} ({}) expires in {days} day{} ({}), under the {threshold}-day threshold",
                label(i),
                s.subject,
                if days == 1 { "" } else { "s" },
                cert::date(s.not_after)
            ),
            ev,
        );
    } else {
        out.pass(
            EXPIRING_SOON,
            format!("the chain is valid for at least {threshold} more days"),
            ev,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{self, NOW};
    use super::*;
    use crate::model::Status;

    #[test]
    fn expired_leaf_is_expired_and_not_expiring_soon() {
        let mut o = fixture::good();
        fixture::cert(&mut o).chain[0].not_after = NOW - 86_400;
        let r = fixture::run(&RULE, &o);
        assert_eq!(r[0].1, Status::Fail);
        assert!(
            r[0].2.starts_with("the leaf (CN=app.test) expired on"),
            "{}",
            r[0].2
        );
        assert_eq!(r[1].1, Status::Pass);
        assert_eq!(r[2].1, Status::Skipped);
    }

    #[test]
    fn not_yet_valid_and_expiring_soon() {
        let mut o = fixture::good();
        let c = fixture::cert(&mut o);
        c.chain[0].not_before = NOW + 86_400;
        c.chain[1].not_after = NOW + 86_400 * 5 + 10;
        let r = fixture::run(&RULE, &o);
        assert_eq!(r[1].1, Status::Fail);
        assert_eq!(r[2].1, Status::Fail);
        assert!(
            r[2].2.contains("intermediate 1 (CN=Int) expires in 5 days"),
            "{}",
            r[2].2
        );
        o.expiry_days = 3;
        assert_eq!(fixture::status(&RULE, &o, EXPIRING_SOON), Status::Pass);
    }
}
