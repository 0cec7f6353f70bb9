//! The dns family (`--checks dns`): DNS hygiene of a target's name.
//!
//! **Probe** (all queries here, through the scan's resolver, [`crate::engine::dns`]): the CNAME
//! chain of the name and whether its end resolves (SERVFAIL and REFUSED at the end are told
//! apart); CAA records at the name or its closest parent (RFC 8659's climb); the zone apex
//! (from SOA answers), its DNSKEY records and the DS records its parent publishes for it; and,
//! for the names the config marks as mail domains, their SPF (TXT `v=spf1`) and DMARC records
//! (TXT at `_dmarc.`, falling back to the organisational domain as RFC 7489 §6.6.3 says). At
//! most a few dozen queries per target, each bounded by the timeout.
//!
//! **Applies to** targets named by a DNS name that is not pinned with `--resolve` (a pinned
//! name is one the user said DNS does not serve) and is not `localhost`. It also runs on a
//! name that does not resolve at all: that is what a dangling CNAME looks like.

use futures::future::BoxFuture;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::engine::dns::{Answer, Rcode};
use crate::engine::{Cx, Emitter, Family};
use crate::model::{Outcome, Reason, ReasonKind};
use crate::options::{FamilyOptions, OptionsSpec, Spec};
use crate::plan::Settings;
use crate::target::Target;

mod caa;
mod dangling;
mod dmarc;
mod dnssec;
pub mod options;
mod spf;

/// The dns family.
#[derive(Debug)]
pub struct Dns;

/// Family name.
pub const FAMILY: &str = "dns";

/// Every rule id of the family, in catalogue order.
pub const RULE_IDS: &[&str] = &[
    dangling::DANGLING_CNAME,
    caa::MISSING,
    spf::MISSING,
    dmarc::MISSING,
    dmarc::WEAK,
    dnssec::UNSIGNED,
];

/// A rule of this family (see [`crate::checks::Rule`]).
pub type Rule = crate::engine::Rule<DnsObservation>;

/// The rules, in evaluation order.
pub static RULES: &[Rule] = &[
    dangling::RULE,
    caa::RULE,
    spf::RULE,
    dmarc::RULE,
    dnssec::RULE,
];

/// The most CNAME hops followed.
pub const MAX_CNAME_HOPS: usize = 8;
/// The most labels climbed for CAA and the zone apex.
pub const MAX_CLIMB: usize = 10;

/// The CNAME chain of a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CnameChain {
    /// Each CNAME target, in order.
    pub hops: Vec<String>,
    /// How the last target resolves.
    pub end: Answer2,
}

/// How a name resolves to addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer2 {
    /// It has addresses.
    Addresses(Vec<String>),
    /// It exists but has no A or AAAA record.
    NoAddress,
    /// It does not exist (NXDOMAIN).
    NxDomain,
    /// The resolver refused to answer for it (REFUSED): nobody serves its zone.
    Refused,
    /// The resolver failed to get an answer for it (SERVFAIL).
    ServFail,
}

/// The SPF and DMARC records of one mail domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailDomain {
    /// The domain.
    pub domain: String,
    /// TXT records of the domain that start with `v=spf1`.
    pub spf: Result<Vec<String>, Reason>,
    /// The DMARC records at `_dmarc.` the domain (see [`dmarc::is_dmarc_record`]).
    pub dmarc: Result<Vec<String>, Reason>,
    /// Other TXT records at `_dmarc.` the domain, discarded (`v=dmarc1`, `v` not first...).
    pub dmarc_discarded: Vec<String>,
    /// When the domain has no DMARC record and is below its organisational domain: that
    /// domain and its DMARC records (RFC 7489 §6.6.3).
    pub dmarc_org: Option<(String, Result<Vec<String>, Reason>)>,
}

/// What the zone apex publishes for DNSSEC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dnssec {
    /// The zone apex.
    pub zone: String,
    /// DNSKEY records at the apex.
    pub dnskeys: usize,
    /// DS records for the apex (published by the parent zone).
    pub ds: usize,
}

/// What the queries found for one name.
#[derive(Clone, Debug)]
pub struct DnsObservation {
    /// The name.
    pub name: String,
    /// Its CNAME chain (`None`: the name has no CNAME).
    pub cname: Result<Option<CnameChain>, Reason>,
    /// The closest name (the name or a parent) with CAA records, and those records.
    pub caa: Result<Option<(String, Vec<String>)>, Reason>,
    /// The zone apex, its DNSKEY records and its DS records at the parent.
    pub dnssec: Result<Dnssec, Reason>,
    /// Mail domains to judge (empty: none configured).
    pub mail: Vec<MailDomain>,
    /// Set when the name itself does not exist (NXDOMAIN, no CNAME): nothing to judge.
    pub absent: Option<Reason>,
}

static OPTIONS: Spec<options::DnsOptions> = Spec::new();

impl FamilyOptions for Dns {
    fn family(&self) -> &'static str {
        FAMILY
    }

    fn options(&self) -> &'static dyn OptionsSpec {
        &OPTIONS
    }
}

impl Family for Dns {
    fn summary(&self) -> &'static str {
        "DNS hygiene: dangling CNAMEs, CAA, SPF and DMARC of mail domains, DNSSEC"
    }

    fn rule_ids(&self) -> &'static [&'static str] {
        RULE_IDS
    }

    fn applies_to(&self, target: &Target) -> bool {
        target.domain().is_some_and(|d| !is_local(&d))
    }

    fn applies_with(&self, target: &Target, settings: &Settings) -> bool {
        let Some(name) = target.domain() else {
            return false;
        };
        let pinned = target
            .resolve
            .iter()
            .any(|e| e.host.trim_end_matches('.') == name)
            || settings.resolve.pins(&name);
        !pinned && !is_local(&name)
    }

    fn runs_without_address(&self) -> bool {
        true
    }

    /// Mail domains are judged with the targets the family runs on: given where it runs on
    /// none (IP addresses, ranges, names pinned with `--resolve`, `--checks` without dns),
    /// they would be ignored without a word.
    fn plan_notes(&self, plan: &crate::plan::ScanPlan, runs_on: &[&Target]) -> Vec<String> {
        let domains = |t: &Target| {
            t.options
                .get::<options::DnsOptions>(FAMILY)
                .map(|o| o.mail_domains.clone())
                .unwrap_or_default()
        };
        let checked: Vec<String> = runs_on.iter().flat_map(|t| domains(t)).collect();
        let mut unchecked: Vec<String> = plan
            .options
            .get::<options::DnsOptions>(FAMILY)
            .map(|o| o.mail_domains.clone())
            .unwrap_or_default();
        unchecked.extend(plan.targets.iter().flat_map(domains));
        unchecked.retain(|d| !checked.contains(d));
        unchecked.sort();
        unchecked.dedup();
        if unchecked.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "--mail-domain (mail_domains): {} {} not checked: SPF and DMARC are judged with the targets the dns family runs on, and it runs on {}; to check {}, scan it as a target: secgate scan {} --checks dns --mail-domain {}",
            unchecked.join(", "),
            if unchecked.len() == 1 { "is" } else { "are" },
            if runs_on.is_empty() {
                "none of this scan's (it needs a DNS name that --resolve does not pin)"
            } else {
                "none that carries it"
            },
            if unchecked.len() == 1 { "it" } else { "one" },
            unchecked.first().map_or("", String::as_str),
            unchecked.first().map_or("", String::as_str),
        )]
    }

    /// The CNAME chain (8 hops and the end's A and AAAA), the A of the name, CAA and SOA up to
    /// 10 names each, DNSKEY and DS, and per mail domain SPF, DMARC and the organisational
    /// domain's DMARC.
    fn budget(&self, target: &Target, _settings: &Settings) -> u32 {
        let mail = target
            .options
            .get::<options::DnsOptions>(FAMILY)
            .map_or(0, |o| o.mail_domains.len());
        40 + 3 * u32::try_from(mail).unwrap_or(u32::MAX / 4)
    }

    fn run<'a>(&'a self, cx: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let target = cx.target();
            let Some(name) = target.target.domain() else {
                let mut out = Emitter::new(FAMILY, target.target.id.clone());
                for id in RULE_IDS {
                    out.skipped(id, "this target is not a DNS name");
                }
                return out.finish();
            };
            let mut mail: Vec<String> = cx.options::<options::DnsOptions>().mail_domains;
            mail.sort();
            mail.dedup();
            let obs = probe(cx, &name, &mail).await;
            evaluate(&obs, &target.target.id)
        })
    }
}

fn is_local(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// Run every rule on an observation.
pub fn evaluate(obs: &DnsObservation, target_id: &str) -> Vec<Outcome> {
    let mut out = Emitter::new(FAMILY, target_id);
    if let Some(reason) = &obs.absent {
        for id in RULE_IDS {
            out.inconclusive(id, reason);
        }
        return out.finish();
    }
    crate::engine::evaluate_rules(RULES, obs, &mut out);
    out.finish()
}

/// Query everything the rules need about `name` and the mail domains.
pub async fn probe(dns: &Cx<'_>, name: &str, mail_domains: &[String]) -> DnsObservation {
    let (cname, caa, dnssec, own) = tokio::join!(
        cname_chain(dns, name),
        caa(dns, name),
        apex_keys(dns, name),
        dns.query(name, RecordType::A)
    );
    let absent = (matches!(cname, Ok(None)) && matches!(own, Ok(Answer::NxDomain))).then(|| {
        Reason::new(
            ReasonKind::Dns,
            format!(
                "{name} does not exist (NXDOMAIN from {})",
                dns.scan().dns.server
            ),
        )
    });
    let mut mail = Vec::new();
    for domain in mail_domains {
        let dmarc_name = format!("_dmarc.{domain}");
        let (spf, dmarc) = tokio::join!(
            txt_starting(dns, domain, "v=spf1"),
            txt_records(dns, &dmarc_name)
        );
        let (dmarc, dmarc_discarded) = split_dmarc(dmarc);
        // RFC 7489 §6.6.3: no record at the domain itself: ask the organisational domain.
        let org = dmarc::organisational_domain(domain);
        let dmarc_org = match (&dmarc, org) {
            (Ok(found), Some(org)) if found.is_empty() && org != *domain => {
                let (records, _) = split_dmarc(txt_records(dns, &format!("_dmarc.{org}")).await);
                Some((org, records))
            }
            _ => None,
        };
        mail.push(MailDomain {
            domain: domain.clone(),
            spf,
            dmarc,
            dmarc_discarded,
            dmarc_org,
        });
    }
    DnsObservation {
        name: name.to_string(),
        cname,
        caa,
        dnssec,
        mail,
        absent,
    }
}

/// Whether a record is owned by `name` (case-insensitive, with or without the final dot).
fn owned_by(r: &hickory_resolver::proto::rr::Record, name: &str) -> bool {
    r.name
        .to_ascii()
        .trim_end_matches('.')
        .eq_ignore_ascii_case(name.trim_end_matches('.'))
}

async fn cname_chain(dns: &Cx<'_>, name: &str) -> Result<Option<CnameChain>, Reason> {
    let mut hops: Vec<String> = Vec::new();
    let mut current = name.to_string();
    loop {
        let answer = match dns.query_detailed(&current, RecordType::CNAME).await {
            Ok(a) => a,
            // The server refuses or fails for a CNAME target: that is where the chain ends.
            Err(e) if !hops.is_empty() && e.rcode.is_some() => {
                let end = match e.rcode {
                    Some(Rcode::Refused) => Answer2::Refused,
                    _ => Answer2::ServFail,
                };
                return Ok(Some(CnameChain { hops, end }));
            }
            Err(e) => return Err(e.reason),
        };
        let next = match answer {
            // The CNAME of the current name (an answer may carry the rest of the chain too).
            Answer::Records(records) => records.iter().find_map(|r| match &r.data {
                RData::CNAME(c) if owned_by(r, &current) => {
                    Some(c.0.to_ascii().trim_end_matches('.').to_ascii_lowercase())
                }
                _ => None,
            }),
            Answer::NoData | Answer::NxDomain => None,
        };
        let Some(next) = next else { break };
        if hops.contains(&next) || next == name {
            let mut chain = vec![name.to_string()];
            chain.extend(hops.iter().cloned());
            chain.push(next);
            return Err(Reason::new(
                ReasonKind::Malformed,
                format!("{name}: the CNAME chain loops: {}", chain.join(" -> ")),
            ));
        }
        if hops.len() >= MAX_CNAME_HOPS {
            return Err(Reason::new(
                ReasonKind::Malformed,
                format!("{name}: the CNAME chain is longer than {MAX_CNAME_HOPS} hops"),
            ));
        }
        hops.push(next.clone());
        current = next;
    }
    let Some(last) = hops.last() else {
        return Ok(None);
    };
    let (a, aaaa) = tokio::join!(
        dns.query_detailed(last, RecordType::A),
        dns.query_detailed(last, RecordType::AAAA)
    );
    for r in [&a, &aaaa] {
        if let Err(e) = r
            && let Some(rcode) = e.rcode
        {
            let end = match rcode {
                Rcode::Refused => Answer2::Refused,
                Rcode::ServFail => Answer2::ServFail,
            };
            return Ok(Some(CnameChain { hops, end }));
        }
    }
    let (a, aaaa) = (a.map_err(|e| e.reason)?, aaaa.map_err(|e| e.reason)?);
    let mut addrs = Vec::new();
    for answer in [&a, &aaaa] {
        if let Answer::Records(records) = answer {
            addrs.extend(
                records
                    .iter()
                    .filter_map(|r| r.data.ip_addr())
                    .map(|ip| ip.to_string()),
            );
        }
    }
    let end = if !addrs.is_empty() {
        Answer2::Addresses(addrs)
    } else if a == Answer::NxDomain {
        Answer2::NxDomain
    } else {
        Answer2::NoAddress
    };
    Ok(Some(CnameChain { hops, end }))
}

/// The name and its parents, closest first, down to two labels (`a.b.example.com` →
/// `a.b.example.com`, `b.example.com`, `example.com`).
pub fn climb(name: &str) -> Vec<String> {
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    (0..labels.len().saturating_sub(1))
        .take(MAX_CLIMB)
        .filter_map(|i| labels.get(i..).map(|l| l.join(".")))
        .collect()
}

async fn caa(dns: &Cx<'_>, name: &str) -> Result<Option<(String, Vec<String>)>, Reason> {
    for candidate in climb(name) {
        if let Answer::Records(records) = dns.query(&candidate, RecordType::CAA).await? {
            let texts = records.iter().map(|r| r.data.to_string()).collect();
            return Ok(Some((candidate, texts)));
        }
    }
    Ok(None)
}

async fn apex_keys(dns: &Cx<'_>, name: &str) -> Result<Dnssec, Reason> {
    for candidate in climb(name) {
        let Answer::Records(records) = dns.query(&candidate, RecordType::SOA).await? else {
            continue;
        };
        let at_candidate = records.iter().any(|r| {
            r.name
                .to_ascii()
                .trim_end_matches('.')
                .eq_ignore_ascii_case(&candidate)
        });
        if !at_candidate {
            continue; // the SOA of a CNAME target, not of this name
        }
        // DS lives in the parent zone; the resolver fetches it from there (RFC 4035 §4.3: keys
        // without a DS at the parent are an island of security, not a chain of trust).
        let (keys, ds) = tokio::join!(
            dns.query(&candidate, RecordType::DNSKEY),
            dns.query(&candidate, RecordType::DS)
        );
        let count = |a: Answer| match a {
            Answer::Records(r) => r.len(),
            Answer::NoData | Answer::NxDomain => 0,
        };
        return Ok(Dnssec {
            zone: candidate,
            dnskeys: count(keys?),
            ds: count(ds?),
        });
    }
    Err(Reason::new(
        ReasonKind::Dns,
        format!("{name}: no zone apex found (no SOA record at the name or its parents)"),
    ))
}

/// The TXT records of `name`, character-strings joined.
async fn txt_records(dns: &Cx<'_>, name: &str) -> Result<Vec<String>, Reason> {
    let records = match dns.query(name, RecordType::TXT).await? {
        Answer::Records(r) => r,
        Answer::NoData | Answer::NxDomain => return Ok(Vec::new()),
    };
    Ok(records
        .iter()
        .filter(|r| owned_by(r, name))
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

/// TXT records at `_dmarc.`: (the DMARC records, the other records, discarded).
fn split_dmarc(txt: Result<Vec<String>, Reason>) -> (Result<Vec<String>, Reason>, Vec<String>) {
    match txt {
        Err(e) => (Err(e), Vec::new()),
        Ok(all) => {
            let (valid, other): (Vec<String>, Vec<String>) =
                all.into_iter().partition(|t| dmarc::is_dmarc_record(t));
            // Only records that look like an attempt at DMARC are worth reporting.
            let discarded = other
                .into_iter()
                .filter(|t| t.to_ascii_lowercase().contains("dmarc"))
                .collect();
            (Ok(valid), discarded)
        }
    }
}

/// TXT records of `name` that start with `prefix` (case-insensitive), character-strings joined.
async fn txt_starting(dns: &Cx<'_>, name: &str, prefix: &str) -> Result<Vec<String>, Reason> {
    Ok(txt_records(dns, name)
        .await?
        .into_iter()
        .filter(|t| {
            let lower = t.to_ascii_lowercase();
            lower == prefix
                || lower.starts_with(&format!("{prefix} "))
                || lower.starts_with(&format!("{prefix};"))
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use crate::model::Status;

    pub fn obs() -> DnsObservation {
        DnsObservation {
            name: "www.shop.test".into(),
            cname: Ok(None),
            caa: Ok(Some((
                "shop.test".into(),
                vec!["0 issue \"letsencrypt.org\"".into()],
            ))),
            dnssec: Ok(Dnssec {
                zone: "shop.test".into(),
                dnskeys: 2,
                ds: 1,
            }),
            mail: Vec::new(),
            absent: None,
        }
    }

    pub fn status(rule: &Rule, obs: &DnsObservation, id: &str) -> Status {
        let mut out = Emitter::new(FAMILY, "t");
        (rule.eval)(obs, &mut out);
        out.finish()
            .into_iter()
            .find(|o| o.rule_id == id)
            .map(|o| o.status)
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbs_to_two_labels() {
        assert_eq!(
            climb("a.b.example.com"),
            ["a.b.example.com", "b.example.com", "example.com"]
        );
        assert_eq!(climb("example.com."), ["example.com"]);
        assert!(climb("com").is_empty());
        assert_eq!(climb(&"x.".repeat(40)).len(), MAX_CLIMB);
    }
}
