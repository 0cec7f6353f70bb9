//! OCSP stapling (RFC 6066 §8) and revocation: whether the server staples a response, whether
//! a must-staple certificate (RFC 7633) gets one, whether the stapled response is valid, and
//! what it says (revoked is critical). Revocation is judged from the staple only: secgate never
//! fetches an OCSP or CRL URL.

use super::ocsp::{self, CertStatus, Staple, Verified};
use super::{CertObservation, Rule, TlsObservation, cert, cert_evidence, per_certificate};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Reason, ReasonKind};

pub(super) const REVOKED: &str = "tls.cert.revoked";
pub(super) const NO_STAPLING: &str = "tls.ocsp.no_stapling";
pub(super) const MUST_STAPLE_MISSING: &str = "tls.ocsp.must_staple_missing";
pub(super) const STAPLED_INVALID: &str = "tls.ocsp.stapled_invalid";
const IDS: &[&str] = &[REVOKED, MUST_STAPLE_MISSING, STAPLED_INVALID, NO_STAPLING];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    // Only chains seen on a handshake that asked for a staple can be judged; the rustls
    // handshake always asks, so the chain a modern client gets is always among them.
    if obs
        .certs
        .iter()
        .all(|c| c.as_ref().is_ok_and(|c| c.status.asked_staple))
    {
        return per_certificate(obs, out, IDS, judge);
    }
    let asked: Vec<_> = obs
        .certs
        .iter()
        .filter(|c| c.as_ref().map_or(true, |c| c.status.asked_staple))
        .cloned()
        .collect();
    let mut only = obs.clone();
    only.certs = if asked.is_empty() {
        obs.certs.iter().take(1).cloned().collect()
    } else {
        asked
    };
    per_certificate(&only, out, IDS, judge);
}

fn staple_evidence(c: &CertObservation, now: i64) -> Evidence {
    let s = &c.status;
    let mut ev = cert_evidence(c, now)
        .with(
            "must_staple",
            Observed::Text(if s.must_staple { "yes" } else { "no" }.into()),
        )
        .with("stapled_bytes", Observed::Number(s.staple_bytes as i64));
    if let Some(Staple::Valid(v)) = &s.staple {
        ev = verified_evidence(ev, v);
    }
    ev
}

fn verified_evidence(ev: Evidence, v: &Verified) -> Evidence {
    let mut ev = ev
        .text("ocsp_status", status_text(&v.status))
        .text("ocsp_signer", &v.signer)
        .text("ocsp_produced_at", cert::date(v.produced_at))
        .text("ocsp_this_update", cert::date(v.this_update));
    if let Some(n) = v.next_update {
        ev = ev.text("ocsp_next_update", cert::date(n));
    }
    ev
}

fn status_text(s: &CertStatus) -> String {
    match s {
        CertStatus::Good => "good".into(),
        CertStatus::Revoked { at, reason } => match reason {
            Some(r) => format!("revoked at {} ({})", cert::date(*at), ocsp::reason_name(*r)),
            None => format!("revoked at {}", cert::date(*at)),
        },
        CertStatus::Unknown => "unknown".into(),
    }
}

fn judge(obs: &TlsObservation, c: &CertObservation, out: &mut Emitter) {
    let s = &c.status;
    let ev = || staple_evidence(c, obs.now);
    if !s.asked_staple {
        for id in IDS {
            out.skipped(id, "this certificate was only seen on handshakes that did not ask for a stapled OCSP response");
        }
        return;
    }
    let subject = c.leaf().map_or("the leaf", |l| l.subject.as_str());
    // tls.cert.revoked
    match &s.staple {
        Some(Staple::Valid(v)) => match &v.status {
            CertStatus::Revoked { .. } => out.fail(
                REVOKED,
                format!(
                    "the certificate {subject} is revoked: the stapled OCSP response, signed by {}, says {}",
                    v.signer,
                    status_text(&v.status)
                ),
                ev(),
            ),
            _ => out.pass(
                REVOKED,
                format!(
                    "the stapled OCSP response, signed by {}, says the certificate is good",
                    v.signer
                ),
                ev(),
            ),
        },
        Some(Staple::Invalid(_)) => out.skipped(
            REVOKED,
            "the stapled OCSP response is not usable (see tls.ocsp.stapled_invalid); secgate never fetches OCSP or CRL URLs",
        ),
        Some(Staple::Unverifiable(why)) => {
            out.inconclusive(REVOKED, &Reason::new(ReasonKind::Tls, why.clone()));
        }
        None => out.skipped(
            REVOKED,
            "no OCSP response is stapled, and secgate never fetches OCSP or CRL URLs",
        ),
    }
    // tls.ocsp.must_staple_missing
    if !s.must_staple {
        out.skipped(
            MUST_STAPLE_MISSING,
            "the certificate does not require stapling (no TLS Feature status_request)",
        );
    } else {
        match &s.staple {
            Some(Staple::Valid(_)) => out.pass(
                MUST_STAPLE_MISSING,
                "the certificate requires stapling (TLS Feature status_request) and a valid OCSP response is stapled",
                ev(),
            ),
            Some(Staple::Unverifiable(why)) => {
                out.inconclusive(MUST_STAPLE_MISSING, &Reason::new(ReasonKind::Tls, why.clone()));
            }
            Some(Staple::Invalid(why)) => out.fail(
                MUST_STAPLE_MISSING,
                format!(
                    "the certificate {subject} requires stapling (TLS Feature status_request) and the stapled response is not valid: {why}; clients that honour must-staple refuse the connection"
                ),
                ev().text("ocsp_problem", why),
            ),
            None => out.fail(
                MUST_STAPLE_MISSING,
                format!(
                    "the certificate {subject} requires stapling (TLS Feature status_request) and the server staples no OCSP response; clients that honour must-staple refuse the connection"
                ),
                ev(),
            ),
        }
    }
    // tls.ocsp.stapled_invalid
    match &s.staple {
        Some(Staple::Valid(v)) => out.pass(
            STAPLED_INVALID,
            format!(
                "the stapled OCSP response is valid: for this certificate, signed by {}, thisUpdate {}{}",
                v.signer,
                cert::date(v.this_update),
                v.next_update
                    .map_or_else(String::new, |n| format!(", nextUpdate {}", cert::date(n)))
            ),
            ev(),
        ),
        Some(Staple::Invalid(why)) => out.fail(
            STAPLED_INVALID,
            why.clone(),
            ev().text("ocsp_problem", why),
        ),
        Some(Staple::Unverifiable(why)) => {
            out.inconclusive(STAPLED_INVALID, &Reason::new(ReasonKind::Tls, why.clone()));
        }
        None => out.skipped(STAPLED_INVALID, "no OCSP response is stapled"),
    }
    // tls.ocsp.no_stapling
    if s.staple.is_some() {
        out.pass(NO_STAPLING, "an OCSP response is stapled", ev());
    } else {
        out.fail(
            NO_STAPLING,
            "the server staples no OCSP response (the handshake asked with status_request)",
            ev(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    fn statuses(o: &TlsObservation) -> Vec<(&'static str, Status)> {
        fixture::run(&RULE, o)
            .into_iter()
            .map(|(i, s, _)| (i, s))
            .collect()
    }

    #[test]
    fn a_valid_good_staple_passes_and_revoked_fails() {
        let mut o = fixture::good();
        assert!(statuses(&o).iter().all(|(_, s)| *s == Status::Pass));
        if let Some(Staple::Valid(v)) = &mut fixture::cert(&mut o).status.staple {
            v.status = CertStatus::Revoked {
                at: fixture::NOW - 10,
                reason: Some(1),
            };
        }
        let got = fixture::run(&RULE, &o);
        assert_eq!(got[0].1, Status::Fail);
        assert!(got[0].2.contains("keyCompromise"), "{}", got[0].2);
        assert_eq!(got[1].1, Status::Pass);
    }

    #[test]
    fn nothing_stapled() {
        let mut o = fixture::good();
        fixture::cert(&mut o).status.staple = None;
        assert_eq!(
            statuses(&o),
            vec![
                (REVOKED, Status::Skipped),
                (MUST_STAPLE_MISSING, Status::Fail),
                (STAPLED_INVALID, Status::Skipped),
                (NO_STAPLING, Status::Fail),
            ]
        );
        fixture::cert(&mut o).status.must_staple = false;
        assert_eq!(statuses(&o)[1], (MUST_STAPLE_MISSING, Status::Skipped));
    }

    #[test]
    fn an_invalid_staple_fails_its_rule_and_an_unverifiable_one_decides_nothing() {
        let mut o = fixture::good();
        fixture::cert(&mut o).status.staple = Some(Staple::Invalid("expired".into()));
        assert_eq!(
            statuses(&o),
            vec![
                (REVOKED, Status::Skipped),
                (MUST_STAPLE_MISSING, Status::Fail),
                (STAPLED_INVALID, Status::Fail),
                (NO_STAPLING, Status::Pass),
            ]
        );
        fixture::cert(&mut o).status.staple = Some(Staple::Unverifiable("no issuer".into()));
        assert_eq!(
            statuses(&o),
            vec![
                (REVOKED, Status::Inconclusive),
                (MUST_STAPLE_MISSING, Status::Inconclusive),
                (STAPLED_INVALID, Status::Inconclusive),
                (NO_STAPLING, Status::Pass),
            ]
        );
    }

    #[test]
    fn chains_seen_without_asking_are_left_out() {
        let mut o = fixture::good();
        let mut other = fixture::cert(&mut o).clone();
        other.status.asked_staple = false;
        other.status.staple = None;
        o.certs.push(Ok(other));
        assert!(statuses(&o).iter().all(|(_, s)| *s == Status::Pass));
    }
}
