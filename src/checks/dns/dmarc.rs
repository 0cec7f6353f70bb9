//! DMARC (RFC 7489) for the mail domains: a `v=DMARC1` record at `_dmarc.`, with a policy
//! that quarantines or rejects.

use super::{DnsObservation, Rule};
use crate::model::{Emitter, Evidence, Observed};

pub(super) const MISSING: &str = "dns.dmarc.missing";
pub(super) const WEAK: &str = "dns.dmarc.weak";

pub(super) const RULE: Rule = Rule {
    ids: &[MISSING, WEAK],
    eval,
};

/// The `p=` tag of a DMARC record, lower-case.
pub fn policy(record: &str) -> Option<String> {
    record.split(';').find_map(|tag| {
        let (k, v) = tag.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("p")
            .then(|| v.trim().to_ascii_lowercase())
    })
}

fn eval(obs: &DnsObservation, out: &mut Emitter) {
    if obs.mail.is_empty() {
        out.skipped(
            MISSING,
            "no mail domain configured for this target (mail_domains)",
        );
        return out.skipped(
            WEAK,
            "no mail domain configured for this target (mail_domains)",
        );
    }
    let mut missing = Vec::new();
    let mut weak = Vec::new();
    let mut records = Vec::new();
    for m in &obs.mail {
        match &m.dmarc {
            Err(reason) => {
                out.inconclusive(MISSING, reason);
                return out.inconclusive(WEAK, reason);
            }
            Ok(list) if list.len() != 1 => missing.push(format!(
                "{}: {}",
                m.domain,
                if list.is_empty() {
                    "no DMARC record at _dmarc".to_string()
                } else {
                    format!("{} DMARC records (must be one)", list.len())
                }
            )),
            Ok(list) => {
                for r in list {
                    records.push(format!("{}: {r}", m.domain));
                    match policy(r).as_deref() {
                        Some("quarantine" | "reject") => {}
                        Some(p) => weak.push(format!("{}: p={p}", m.domain)),
                        None => weak.push(format!("{}: no p= tag", m.domain)),
                    }
                }
            }
        }
    }
    let evidence = Evidence::none().with("dmarc", Observed::texts(records));
    if missing.is_empty() {
        out.pass(
            MISSING,
            "every mail domain publishes a DMARC record",
            evidence.clone(),
        );
    } else {
        out.fail(MISSING, missing.join("; "), evidence.clone());
    }
    if weak.is_empty() && missing.len() < obs.mail.len() {
        out.pass(WEAK, "every DMARC policy quarantines or rejects", evidence);
    } else if weak.is_empty() {
        out.skipped(WEAK, "no DMARC record to judge");
    } else {
        out.fail(
            WEAK,
            format!("DMARC policy only monitors: {}", weak.join("; ")),
            evidence,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::MailDomain;
    use super::super::fixture::{obs, status};
    use super::*;
    use crate::model::Status;

    fn with(dmarc: &[&str]) -> super::super::DnsObservation {
        let mut o = obs();
        o.mail = vec![MailDomain {
            domain: "shop.test".into(),
            spf: Ok(vec!["v=spf1 -all".into()]),
            dmarc: Ok(dmarc.iter().map(|s| (*s).to_string()).collect()),
        }];
        o
    }

    #[test]
    fn judges_presence_and_policy() {
        assert_eq!(
            policy("v=DMARC1; p=Reject; rua=mailto:x@y"),
            Some("reject".into())
        );
        assert_eq!(policy("v=DMARC1"), None);
        let o = with(&[]);
        assert_eq!(
            (status(&RULE, &o, MISSING), status(&RULE, &o, WEAK)),
            (Status::Fail, Status::Skipped)
        );
        let o = with(&["v=DMARC1; p=none"]);
        assert_eq!(
            (status(&RULE, &o, MISSING), status(&RULE, &o, WEAK)),
            (Status::Pass, Status::Fail)
        );
        let o = with(&["v=DMARC1; p=quarantine"]);
        assert_eq!(
            (status(&RULE, &o, MISSING), status(&RULE, &o, WEAK)),
            (Status::Pass, Status::Pass)
        );
        assert_eq!(status(&RULE, &obs(), WEAK), Status::Skipped);
    }
}
