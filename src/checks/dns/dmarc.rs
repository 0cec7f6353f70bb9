//! DMARC (RFC 7489) for the mail domains: exactly one DMARC record at `_dmarc.` the domain, or,
//! when there is none, at `_dmarc.` its organisational domain (§6.6.3), with a policy that
//! quarantines or rejects (`sp=` for a subdomain covered by its organisational domain's record,
//! else `p=`).
//!
//! **What a DMARC record is** (§6.3, §6.4): a TXT record whose first tag is `v=DMARC1`,
//! `DMARC1` exactly (case-sensitive), whitespace allowed around `=`. Other TXT records at
//! `_dmarc.` (`v=dmarc1`, `p=reject; v=DMARC1`) are discarded as receivers discard them, and
//! more than one DMARC record means no policy at all (§6.6.3).
//!
//! **Organisational domain.** The public suffix list is not embedded: the organisational
//! domain is the last two labels, or the last three under a small list of well-known
//! two-label public suffixes (`co.uk`, `com.au`...). A domain under another multi-label public
//! suffix gets a wrong organisational domain (one label too short), so its fallback query asks
//! a name that has no DMARC record: the rule then reports the record missing (never a false
//! pass).

use super::{DnsObservation, MailDomain, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Subject, SubjectKind};

pub(super) const MISSING: &str = "dns.dmarc.missing";
pub(super) const WEAK: &str = "dns.dmarc.weak";

pub(super) const RULE: Rule = Rule {
    ids: &[MISSING, WEAK],
    eval,
};

/// Public suffixes of two labels under which registrable domains have three labels.
const TWO_LABEL_SUFFIXES: &[&str] = &[
    "co.uk", "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "ac.uk", "gov.uk", "nhs.uk",
    "com.au", "net.au", "org.au", "edu.au", "gov.au", "co.nz", "org.nz", "net.nz", "govt.nz",
    "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "co.za", "org.za", "com.br", "net.br", "org.br",
    "com.cn", "net.cn", "org.cn", "com.mx", "co.in", "net.in", "org.in", "co.kr", "or.kr",
    "com.tr", "com.sg", "com.hk", "co.il", "com.ar", "co.id", "com.tw", "com.my", "com.ua",
];

/// The organisational domain of `domain` (see the module docs for the approximation), or
/// `None` for a name too short to have one.
pub fn organisational_domain(domain: &str) -> Option<String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let take = |n: usize| -> Option<String> {
        let start = labels.len().checked_sub(n)?;
        labels.get(start..).map(|l| l.join("."))
    };
    let suffix = take(2)?;
    if TWO_LABEL_SUFFIXES.contains(&suffix.as_str()) {
        take(3)
    } else {
        Some(suffix)
    }
}

/// Whether a TXT record is a DMARC record: its first tag is `v` with the value `DMARC1`
/// exactly (RFC 7489 §6.4: `"v" *WSP "=" *WSP %x44.4d.41.52.43.31`), followed by the end or a
/// `;`.
pub fn is_dmarc_record(txt: &str) -> bool {
    let first = txt.split(';').next().unwrap_or_default();
    let Some((tag, value)) = first.split_once('=') else {
        return false;
    };
    let wsp: &[char] = &[' ', '\t'];
    tag.trim_end_matches(wsp).eq_ignore_ascii_case("v") && value.trim_matches(wsp) == "DMARC1"
}

/// The value of tag `name` in a DMARC record (after the version tag), lower-case.
fn tag(record: &str, name: &str) -> Option<String> {
    record.split(';').skip(1).find_map(|t| {
        let (k, v) = t.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_ascii_lowercase())
    })
}

/// The `p=` tag of a DMARC record, lower-case.
pub fn policy(record: &str) -> Option<String> {
    tag(record, "p")
}

/// The `sp=` tag (policy for subdomains), lower-case.
pub fn subdomain_policy(record: &str) -> Option<String> {
    tag(record, "sp")
}

/// How one mail domain's DMARC stands.
enum Verdict {
    /// No usable record: why.
    Missing(String),
    /// A record applies: where it was found, the record, and the policy that applies.
    Found {
        at: String,
        record: String,
        policy: Option<(&'static str, String)>,
    },
}

fn count_problem(n: usize, at: &str) -> Option<String> {
    match n {
        1 => None,
        0 => Some(format!("no DMARC record at _dmarc.{at}")),
        n => Some(format!(
            "{n} DMARC records at _dmarc.{at} (RFC 7489 §6.6.3: more than one means no policy)"
        )),
    }
}

fn verdict(m: &MailDomain) -> Result<Verdict, &crate::model::Reason> {
    let own = m.dmarc.as_ref()?;
    if let Some(problem) = count_problem(own.len(), &m.domain) {
        // Only an absent record sends the receiver to the organisational domain.
        let fallback = match (&m.dmarc_org, own.is_empty()) {
            (Some((org, records)), true) => Some((org, records.as_ref()?)),
            _ => None,
        };
        let Some((org, records)) = fallback else {
            let mut why = problem;
            if let Some(d) = m.dmarc_discarded.first() {
                why.push_str(&format!(
                    " (discarded: \"{d}\": v=DMARC1 must be the first tag, DMARC1 in capitals)"
                ));
            }
            return Ok(Verdict::Missing(why));
        };
        if let Some(org_problem) = count_problem(records.len(), org) {
            return Ok(Verdict::Missing(format!("{problem}, and {org_problem}")));
        }
        let record = records.first().cloned().unwrap_or_default();
        let policy = subdomain_policy(&record)
            .map(|p| ("sp", p))
            .or_else(|| policy(&record).map(|p| ("p", p)));
        return Ok(Verdict::Found {
            at: format!("_dmarc.{org} (organisational domain)"),
            record,
            policy,
        });
    }
    let record = own.first().cloned().unwrap_or_default();
    Ok(Verdict::Found {
        at: format!("_dmarc.{}", m.domain),
        policy: policy(&record).map(|p| ("p", p)),
        record,
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
    let mut judged = 0usize;
    for m in &obs.mail {
        match verdict(m) {
            Err(reason) => {
                out.inconclusive(MISSING, reason);
                return out.inconclusive(WEAK, reason);
            }
            Ok(Verdict::Missing(why)) => missing.push(format!("{}: {why}", m.domain)),
            Ok(Verdict::Found { at, record, policy }) => {
                judged += 1;
                records.push(format!("{}: {record} (at {at})", m.domain));
                match policy {
                    Some((_, p)) if p == "quarantine" || p == "reject" => {}
                    Some((tag, p)) => weak.push(format!("{}: {tag}={p}", m.domain)),
                    None => weak.push(format!("{}: no p= tag", m.domain)),
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
        out.fail_listed(MISSING, evidence.clone(), per_domain(&missing));
    }
    if weak.is_empty() && judged > 0 {
        out.pass(WEAK, "every DMARC policy quarantines or rejects", evidence);
    } else if weak.is_empty() {
        out.skipped(WEAK, "no DMARC record to judge");
    } else {
        let findings = per_domain(&weak)
            .into_iter()
            .map(|(s, m, e)| (s, format!("DMARC policy only monitors: {m}"), e))
            .collect();
        out.fail_each(
            WEAK,
            format!("DMARC policy only monitors: {}", weak.join("; ")),
            evidence,
            findings,
        );
    }
}

/// One finding per `domain: problem` line, about that domain.
fn per_domain(lines: &[String]) -> Vec<(Subject, String, Evidence)> {
    lines
        .iter()
        .map(|l| {
            let domain = l.split_once(": ").map_or(l.as_str(), |(d, _)| d);
            (
                Subject::new(SubjectKind::Name, domain),
                l.clone(),
                Evidence::none(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{obs, status};
    use super::*;
    use crate::model::Status;

    fn with(dmarc: &[&str]) -> DnsObservation {
        let mut o = obs();
        o.mail = vec![MailDomain {
            domain: "shop.test".into(),
            spf: Ok(vec!["v=spf1 -all".into()]),
            dmarc: Ok(dmarc.iter().map(|s| (*s).to_string()).collect()),
            dmarc_discarded: Vec::new(),
            dmarc_org: None,
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
        // Two records: no policy at all.
        let o = with(&["v=DMARC1; p=reject", "v=DMARC1; p=none"]);
        assert_eq!(
            (status(&RULE, &o, MISSING), status(&RULE, &o, WEAK)),
            (Status::Fail, Status::Skipped)
        );
        assert_eq!(status(&RULE, &obs(), WEAK), Status::Skipped);
    }

    #[test]
    fn the_version_tag_is_exact_and_first() {
        for good in [
            "v=DMARC1; p=reject",
            "v=DMARC1",
            "v = DMARC1 ; p=none",
            "V=DMARC1;p=none",
            "v=DMARC1;",
        ] {
            assert!(is_dmarc_record(good), "{good}");
        }
        for bad in [
            "v=dmarc1; p=reject",
            "v=Dmarc1; p=reject",
            "p=reject; v=DMARC1",
            "v=DMARC1 p=reject",
            "v=DMARC2; p=reject",
            " v=DMARC1; p=reject",
            "x v=DMARC1",
            "",
        ] {
            assert!(!is_dmarc_record(bad), "{bad}");
        }
        assert_eq!(
            subdomain_policy("v=DMARC1; p=reject; sp=none"),
            Some("none".into())
        );
        // A p= value inside the version tag is not a policy.
        assert_eq!(policy("v=DMARC1"), None);
    }

    #[test]
    fn falls_back_to_the_organisational_domain() {
        assert_eq!(
            organisational_domain("mail.shop.test"),
            Some("shop.test".into())
        );
        assert_eq!(organisational_domain("shop.test"), Some("shop.test".into()));
        assert_eq!(
            organisational_domain("a.b.shop.co.uk."),
            Some("shop.co.uk".into())
        );
        assert_eq!(organisational_domain("test"), None);
        let mut o = with(&[]);
        o.mail[0].domain = "mail.shop.test".into();
        o.mail[0].dmarc_org = Some((
            "shop.test".into(),
            Ok(vec!["v=DMARC1; p=reject; sp=none".into()]),
        ));
        // Covered by the organisation's record, whose subdomain policy only monitors.
        assert_eq!(
            (status(&RULE, &o, MISSING), status(&RULE, &o, WEAK)),
            (Status::Pass, Status::Fail)
        );
        o.mail[0].dmarc_org = Some(("shop.test".into(), Ok(vec!["v=DMARC1; p=reject".into()])));
        assert_eq!(
            (status(&RULE, &o, MISSING), status(&RULE, &o, WEAK)),
            (Status::Pass, Status::Pass)
        );
        o.mail[0].dmarc_org = Some(("shop.test".into(), Ok(Vec::new())));
        assert_eq!(status(&RULE, &o, MISSING), Status::Fail);
    }
}
