//! Chaining, between collect and the next round of schedule: what one family discovers on a
//! target becomes **derived targets** that other families audit in the same scan.
//!
//! Today the ports family is the one that discovers: for every open port it identified as a
//! TLS or HTTP(S) service it reports a [`Discovered`] through [`super::Cx::discovered`]. When
//! its job ends, the scheduler hands those to [`derive`], a pure function, which returns the
//! derived targets (`https://HOST:PORT/` for HTTPS, `http://HOST:PORT/` for HTTP, `HOST:PORT`
//! for a TLS service that is not HTTP, e.g. Redis over TLS or PostgreSQL after SSLRequest),
//! each with its parent and the families of `scan.chain` that apply to it, and a
//! [`ChainReport`] for the parent: what was chained, and which open ports were not and why.
//! The scheduler runs the derived targets' jobs under the same limits as every other job.
//!
//! Rules a derived target obeys:
//! - **Scope**: its address is one the plan covers (an address of the parent's name, or of its
//!   range); redirects it answers with are followed only as any target's are ([`super::Scope`]).
//! - **No double audit**: a family that already audits that host and port as a target of the
//!   plan (`host:443` runs TLS itself) is not chained there again.
//! - **Budgets**: its requests count toward the parent's `--max-requests` as well as its own
//!   families' budgets, and at most [`MAX_DERIVED`] targets come from one parent.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use crate::model::{ChainReport, Chained, NotChained};
use crate::target::{Target, TargetKind};

/// The families that chain by default (`scan.chain`).
pub const DEFAULT: &[&str] = &["tls", "headers"];

/// The families `scan.chain` may name.
pub const CHAINABLE: &[&str] = &["tls", "headers"];

/// The most derived targets one parent yields; further services are reported as not chained.
pub const MAX_DERIVED: usize = 4096;

/// Parse `scan.chain`: a list of [`CHAINABLE`] family names (empty: chaining off).
pub fn parse(list: &[String]) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for name in list.iter().map(|s| s.trim()) {
        let Some(f) = CHAINABLE.iter().find(|f| **f == name) else {
            return Err(format!(
                "'{name}' cannot chain (the families that audit discovered services: {})",
                CHAINABLE.join(", ")
            ));
        };
        if !out.contains(f) {
            out.push(*f);
        }
    }
    Ok(out)
}

/// What a service on an open port is, for chaining.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Found {
    /// HTTP inside TLS: the TLS and headers families.
    Https,
    /// Plain HTTP: the headers family.
    Http,
    /// TLS that is not HTTP (a TLS-wrapped datastore, an unknown protocol): the TLS family.
    Tls,
    /// PostgreSQL that answered SSLRequest with `S`: the TLS family, after an SSLRequest.
    PostgresTls,
    /// An open port whose service stayed unidentified.
    Unidentified,
}

/// One open port a family reported for chaining.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// Where it answered.
    pub addr: SocketAddr,
    /// What it is.
    pub found: Found,
    /// The service as the family labels it (`tls`, `http`, `tls (likely redis)`).
    pub service: String,
    /// Why it was not identified ([`Found::Unidentified`]), else empty.
    pub note: String,
}

/// A target of the plan (or one derived already), as chaining compares endpoints.
#[derive(Clone, Debug)]
pub struct Audited {
    /// Normalised host.
    pub host: String,
    /// Where it was reached.
    pub addrs: Vec<IpAddr>,
    /// The port its TLS and HTTP families talk to.
    pub port: u16,
    /// The families that run on it.
    pub families: Vec<&'static str>,
}

impl Audited {
    /// `target` (reached at `addrs`) as chaining sees it, running `families`.
    pub fn of(target: &Target, addrs: &[SocketAddr], families: Vec<&'static str>) -> Audited {
        let port = match &target.kind {
            TargetKind::Url(u) => u.port_or_known_default().unwrap_or(443),
            TargetKind::Host { port, .. } => port.unwrap_or(443),
            TargetKind::Cidr { .. } => 0,
        };
        Audited {
            host: super::normalise_host(&target.host()),
            addrs: addrs.iter().map(SocketAddr::ip).collect(),
            port,
            families,
        }
    }
}

/// The derived targets of `parent` (each with its parent and families set) for what `found`
/// lists, and the report of what was chained. `chain`: the families `scan.chain` names;
/// `audited`: what the plan's targets already audit; `ids`: target ids already in the scan
/// (a derived id that is one of them is not derived again).
pub fn derive(
    parent: &Target,
    parent_addrs: &[SocketAddr],
    mut found: Vec<Discovered>,
    chain: &[&'static str],
    audited: &[Audited],
    ids: &HashSet<String>,
) -> (Vec<Target>, ChainReport) {
    found.sort_by_key(|d| (d.addr.ip(), d.addr.port(), d.found));
    found.dedup_by_key(|d| d.addr);
    let mut report = ChainReport::default();
    let mut out: Vec<Target> = Vec::new();
    let mut not = |d: &Discovered, reason: String| {
        report.not_chained.push(NotChained {
            address: d.addr.to_string(),
            service: d.service.clone(),
            reason,
        });
    };
    let mut chained: Vec<Chained> = Vec::new();
    for d in &found {
        if d.found == Found::Unidentified {
            not(d, format!("not identified: {}", d.note));
            continue;
        }
        if !covers(parent, parent_addrs, d.addr.ip()) {
            not(d, "outside the addresses the plan covers".into());
            continue;
        }
        let wanted: &[&str] = match d.found {
            Found::Https => &["tls", "headers"],
            Found::Http => &["headers"],
            Found::Tls | Found::PostgresTls => &["tls"],
            Found::Unidentified => &[],
        };
        let host = derived_host(parent, d.addr.ip());
        let port = d.addr.port();
        let mut families: Vec<&'static str> = Vec::new();
        let mut already: Vec<&str> = Vec::new();
        for f in chain.iter().copied().filter(|f| wanted.contains(f)) {
            // The same service under another name of the plan counts too (its certificate is
            // judged there, under the name it serves).
            let done = audited.iter().any(|a| {
                (a.host == super::normalise_host(&host) || a.addrs.contains(&d.addr.ip()))
                    && a.port == port
                    && a.families.contains(&f)
            });
            if done {
                already.push(f);
            } else {
                families.push(f);
            }
        }
        if families.is_empty() {
            let why = if !already.is_empty() {
                format!(
                    "already audited as a target of the scan ({})",
                    already.join(", ")
                )
            } else if chain.is_empty() {
                "chaining is off (--no-chain, scan.chain = [], or --checks without tls and headers)"
                    .to_string()
            } else {
                format!(
                    "neither scan.chain nor --checks names the families for it ({})",
                    wanted.join(", ")
                )
            };
            not(d, why);
            continue;
        }
        let literal = match d.found {
            Found::Https => format!("https://{}/", with_port(&host, port)),
            Found::Http => format!("http://{}/", with_port(&host, port)),
            _ => with_port(&host, port),
        };
        let Ok(mut t) = Target::parse(&literal) else {
            not(d, format!("'{literal}' is not a valid target"));
            continue;
        };
        if ids.contains(&t.id) || out.iter().any(|o| o.id == t.id) {
            not(d, format!("{} is already a target of the scan", t.id));
            continue;
        }
        if out.len() >= MAX_DERIVED {
            not(
                d,
                format!("more than {MAX_DERIVED} services chained from one target"),
            );
            continue;
        }
        t.parent = Some(parent.id.clone());
        t.families = Some(families.clone());
        t.http_port = parent.http_port;
        t.resolve = parent.resolve.clone();
        t.options = parent.options.clone();
        t.origin = parent.origin.clone();
        t.chain = Some(Vec::new());
        t.postgres_tls = d.found == Found::PostgresTls;
        chained.push(Chained {
            target: t.id.clone(),
            address: d.addr.to_string(),
            service: d.service.clone(),
            families: families.iter().map(|f| (*f).to_string()).collect(),
        });
        out.push(t);
    }
    report.chained = chained;
    (out, report)
}

/// Whether `ip` is an address the plan covers through `parent`: one of its range, or one its
/// name resolved to (the addresses its sweep swept).
fn covers(parent: &Target, parent_addrs: &[SocketAddr], ip: IpAddr) -> bool {
    match parent.kind {
        TargetKind::Cidr { .. } => in_range(parent, ip),
        _ => parent_addrs.iter().any(|a| a.ip() == ip) || parent.ip_literal() == Some(ip),
    }
}

/// Whether `ip` is inside the range `target` (false for other kinds).
pub fn in_range(target: &Target, ip: IpAddr) -> bool {
    let TargetKind::Cidr { network, prefix } = target.kind else {
        return false;
    };
    contains(network, prefix, ip)
}

/// Whether `ip` is inside `network/prefix`.
pub fn contains(network: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n)
        }
        _ => false,
    }
}

/// The host a derived target names: the parent's name (so SNI, Host and certificate names
/// stay the parent's), or the address for an IP literal or a range.
fn derived_host(parent: &Target, ip: IpAddr) -> String {
    match parent.kind {
        TargetKind::Cidr { .. } => ip.to_string(),
        _ => match parent.ip_literal() {
            Some(_) => ip.to_string(),
            None => parent.host(),
        },
    }
}

fn with_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(addr: &str, found: Found) -> Discovered {
        Discovered {
            addr: addr.parse().unwrap(),
            found,
            service: "x".into(),
            note: "silent".into(),
        }
    }

    #[test]
    fn derives_https_http_and_tls_targets_with_their_parent() {
        let parent = Target::parse("127.0.0.0/28").unwrap();
        let found = vec![
            d("127.0.0.5:8080", Found::Http),
            d("127.0.0.5:8443", Found::Https),
            d("127.0.0.6:6380", Found::Tls),
            d("127.0.0.6:9999", Found::Unidentified),
            d("127.0.1.6:443", Found::Https),
        ];
        let (targets, report) = derive(&parent, &[], found, DEFAULT, &[], &HashSet::new());
        let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "http://127.0.0.5:8080/",
                "https://127.0.0.5:8443/",
                "127.0.0.6:6380"
            ]
        );
        assert!(
            targets
                .iter()
                .all(|t| t.parent.as_deref() == Some("127.0.0.0/28"))
        );
        assert_eq!(
            targets[1].families.as_deref(),
            Some(&["tls", "headers"][..])
        );
        assert_eq!(targets[0].families.as_deref(), Some(&["headers"][..]));
        assert_eq!(report.chained.len(), 3);
        let reasons: Vec<&str> = report
            .not_chained
            .iter()
            .map(|n| n.reason.as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                "not identified: silent",
                "outside the addresses the plan covers"
            ]
        );
    }

    #[test]
    fn does_not_audit_twice_or_past_the_chain_list() {
        let parent = Target::parse("127.0.0.1:443").unwrap();
        let addrs = ["127.0.0.1:443".parse().unwrap()];
        let audited = [Audited::of(
            &parent,
            &addrs,
            vec!["tls", "headers", "ports"],
        )];
        let (targets, report) = derive(
            &parent,
            &addrs,
            vec![d("127.0.0.1:443", Found::Https)],
            DEFAULT,
            &audited,
            &HashSet::new(),
        );
        assert!(targets.is_empty());
        assert!(report.not_chained[0].reason.starts_with("already audited"));
        let (targets, _) = derive(
            &Target::parse("127.0.0.1").unwrap(),
            &addrs,
            vec![d("127.0.0.1:8443", Found::Https)],
            &["headers"],
            &[],
            &HashSet::new(),
        );
        assert_eq!(targets[0].families.as_deref(), Some(&["headers"][..]));
        let (targets, report) = derive(
            &Target::parse("127.0.0.1").unwrap(),
            &addrs,
            vec![d("127.0.0.1:6380", Found::Tls)],
            &[],
            &[],
            &HashSet::new(),
        );
        assert!(targets.is_empty());
        assert!(report.not_chained[0].reason.contains("chaining is off"));
        assert!(parse(&["ports".into()]).is_err());
        assert_eq!(parse(&[]).unwrap(), Vec::<&str>::new());
    }

    #[test]
    fn a_service_audited_under_another_name_is_not_chained() {
        let api = Target::parse("https://api.test:8443/").unwrap();
        let reached = ["127.0.0.9:8443".parse().unwrap()];
        let audited = [Audited::of(&api, &reached, vec!["tls", "headers"])];
        let (targets, report) = derive(
            &Target::parse("db.test").unwrap(),
            &["127.0.0.9:0".parse().unwrap()],
            vec![d("127.0.0.9:8443", Found::Https)],
            DEFAULT,
            &audited,
            &HashSet::new(),
        );
        assert!(targets.is_empty());
        assert!(report.not_chained[0].reason.starts_with("already audited"));
    }

    #[test]
    fn a_name_keeps_its_name_and_ranges_hold_their_addresses() {
        let parent = Target::parse("db.test").unwrap();
        let addrs = ["127.0.0.9:0".parse().unwrap()];
        let (targets, _) = derive(
            &parent,
            &addrs,
            vec![d("127.0.0.9:8443", Found::Https)],
            DEFAULT,
            &[],
            &HashSet::new(),
        );
        assert_eq!(targets[0].id, "https://db.test:8443/");
        let r = Target::parse("10.0.0.0/28").unwrap();
        assert!(in_range(&r, "10.0.0.15".parse().unwrap()));
        assert!(!in_range(&r, "10.0.0.16".parse().unwrap()));
        assert!(!in_range(&r, "::1".parse().unwrap()));
    }
}
