//! `ratelimit.missing` (API routes) and `ratelimit.auth_missing` (login routes): a burst must
//! meet a limit. Two ids because the catalogue gives each rule one severity, and an unthrottled
//! login (credential stuffing) is worse than an unthrottled API route.

use super::{Burst, BurstEnd};
use crate::endpoint::Role;
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Status, Subject};

pub(super) const MISSING: &str = "ratelimit.missing";
pub(super) const AUTH_MISSING: &str = "ratelimit.auth_missing";

pub(super) fn eval(bursts: &[Burst], out: &mut Emitter) {
    judge(bursts, Role::Api, MISSING, out);
    judge(bursts, Role::Login, AUTH_MISSING, out);
}

fn judge(bursts: &[Burst], role: Role, id: &'static str, out: &mut Emitter) {
    let mine: Vec<&Burst> = bursts.iter().filter(|b| b.role == role).collect();
    if mine.is_empty() {
        return out.skipped(id, format!("no {} endpoint is configured", role.as_str()));
    }
    let evidence =
        Evidence::none().with("bursts", Observed::texts(mine.iter().map(|b| b.describe())));
    let unlimited: Vec<&str> = mine
        .iter()
        .filter(|b| matches!(b.end, BurstEnd::Unlimited | BurstEnd::NotEnforced { .. }))
        .map(|b| b.endpoint.as_str())
        .collect();
    if !unlimited.is_empty() {
        let first = mine
            .iter()
            .find(|b| unlimited.contains(&b.endpoint.as_str()));
        let detail = first
            .map(|b| {
                format!(
                    ": {} requests at {:.0}/s were all served",
                    b.sent,
                    f64::from(b.sent) / b.seconds.max(0.001)
                )
            })
            .unwrap_or_default();
        let findings = mine
            .iter()
            .filter(|b| unlimited.contains(&b.endpoint.as_str()))
            .map(|b| {
                (
                    Subject::endpoint(&b.endpoint),
                    format!(
                        "no rate limit on {}: {} requests at {:.0}/s were all served",
                        b.endpoint,
                        b.sent,
                        f64::from(b.sent) / b.seconds.max(0.001)
                    ),
                    Evidence::none().text("burst", b.describe()),
                )
            })
            .collect();
        out.fail_each(
            id,
            format!("no rate limit on {}{detail}", unlimited.join(", ")),
            evidence,
            findings,
        );
        return checked(out, id, &mine);
    }
    if let Some(BurstEnd::Undecided(reason)) = mine
        .iter()
        .map(|b| &b.end)
        .find(|e| matches!(e, BurstEnd::Undecided(_)))
    {
        out.inconclusive(id, reason);
        if let Some(o) = out.last(id) {
            o.evidence = evidence;
        }
        return checked(out, id, &mine);
    }
    let summary: Vec<String> = mine
        .iter()
        .map(|b| match &b.end {
            BurstEnd::Limited { at, signal, .. } => format!(
                "{} limited at request {at} ({})",
                b.endpoint,
                signal.describe()
            ),
            _ => format!("{} advertises a limit", b.endpoint),
        })
        .collect();
    out.pass(id, summary.join("; "), evidence);
    checked(out, id, &mine);
}

/// List every burst that did not fail under the result, with its own verdict.
fn checked(out: &mut Emitter, id: &'static str, bursts: &[&Burst]) {
    let Some(o) = out.last(id) else { return };
    for b in bursts {
        let (status, reason) = match &b.end {
            BurstEnd::Unlimited | BurstEnd::NotEnforced { .. } => continue,
            BurstEnd::Undecided(r) => (Status::Inconclusive, Some(r.clone())),
            BurstEnd::Limited { .. } | BurstEnd::Advertised => (Status::Pass, None),
        };
        o.checked(Subject::endpoint(&b.endpoint), status, b.describe(), reason);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::Signal;
    use super::*;
    use crate::model::Status;

    fn burst(role: Role, end: BurstEnd) -> Burst {
        Burst {
            endpoint: "e".into(),
            role,
            sent: 10,
            seconds: 1.0,
            statuses: BTreeMap::from([(200, 10)]),
            advertised: Vec::new(),
            end,
        }
    }

    fn status(bursts: &[Burst], id: &str) -> Status {
        let mut out = Emitter::new("ratelimit", "t");
        eval(bursts, &mut out);
        out.finish()
            .into_iter()
            .find(|o| o.rule_id == id)
            .unwrap()
            .status
    }

    #[test]
    fn judges_bursts_by_role() {
        let limited = BurstEnd::Limited {
            at: 5,
            after: 0.1,
            signal: Signal::TooManyRequests,
            retry_after: None,
        };
        let b = [
            burst(Role::Api, BurstEnd::Unlimited),
            burst(Role::Login, limited.clone()),
        ];
        assert_eq!(status(&b, MISSING), Status::Fail);
        assert_eq!(status(&b, AUTH_MISSING), Status::Pass);
        let b = [burst(Role::Api, BurstEnd::NotEnforced { exhausted_at: 3 })];
        assert_eq!(status(&b, MISSING), Status::Fail);
        assert_eq!(status(&b, AUTH_MISSING), Status::Skipped);
        let b = [
            burst(Role::Api, BurstEnd::Advertised),
            burst(Role::Api, limited),
        ];
        assert_eq!(status(&b, MISSING), Status::Pass);
        let undecided = BurstEnd::Undecided(crate::model::Reason::new(
            crate::model::ReasonKind::Timeout,
            "t",
        ));
        assert_eq!(
            status(&[burst(Role::Api, undecided)], MISSING),
            Status::Inconclusive
        );
    }
}
