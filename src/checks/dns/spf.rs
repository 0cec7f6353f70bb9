//! SPF (RFC 7208) for the mail domains: exactly one `v=spf1` TXT record.

use super::{DnsObservation, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Status, Subject, SubjectKind};

pub(super) const MISSING: &str = "dns.spf.missing";

pub(super) const RULE: Rule = Rule {
    ids: &[MISSING],
    eval,
};

fn eval(obs: &DnsObservation, out: &mut Emitter) {
    if obs.mail.is_empty() {
        return out.skipped(
            MISSING,
            "no mail domain configured for this target (mail_domains)",
        );
    }
    let mut bad: Vec<(Subject, String)> = Vec::new();
    let mut good: Vec<(Subject, String)> = Vec::new();
    let mut records = Vec::new();
    for m in &obs.mail {
        let subject = Subject::new(SubjectKind::Name, &m.domain);
        match &m.spf {
            Err(reason) => return out.inconclusive(MISSING, reason),
            Ok(list) if list.is_empty() => {
                bad.push((subject, format!("{}: no SPF record", m.domain)));
            }
            Ok(list) if list.len() > 1 => bad.push((
                subject,
                format!(
                    "{}: {} SPF records (RFC 7208 makes that a permanent error)",
                    m.domain,
                    list.len()
                ),
            )),
            Ok(list) => {
                records.extend(list.iter().map(|r| format!("{}: {r}", m.domain)));
                good.push((subject, format!("{}: one SPF record", m.domain)));
            }
        }
    }
    let evidence = Evidence::none().with("spf", Observed::texts(records));
    if bad.is_empty() {
        out.pass(
            MISSING,
            "every mail domain publishes one SPF record",
            evidence,
        );
    } else {
        let findings = bad
            .into_iter()
            .map(|(s, m)| (s, m, Evidence::none()))
            .collect();
        out.fail_listed(MISSING, evidence, findings);
    }
    if let Some(o) = out.last(MISSING) {
        for (s, m) in good {
            o.checked(s, Status::Pass, m, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::MailDomain;
    use super::super::fixture::{obs, status};
    use super::*;
    use crate::model::Status;

    #[test]
    fn needs_exactly_one_spf_record() {
        let mut o = obs();
        assert_eq!(status(&RULE, &o, MISSING), Status::Skipped);
        let spf = |v: &[&str]| MailDomain {
            domain: "shop.test".into(),
            spf: Ok(v.iter().map(|s| (*s).to_string()).collect()),
            dmarc: Ok(Vec::new()),
            dmarc_discarded: Vec::new(),
            dmarc_org: None,
        };
        o.mail = vec![spf(&["v=spf1 -all"])];
        assert_eq!(status(&RULE, &o, MISSING), Status::Pass);
        o.mail = vec![spf(&[])];
        assert_eq!(status(&RULE, &o, MISSING), Status::Fail);
        o.mail = vec![spf(&["v=spf1 -all", "v=spf1 ~all"])];
        assert_eq!(status(&RULE, &o, MISSING), Status::Fail);
    }
}
