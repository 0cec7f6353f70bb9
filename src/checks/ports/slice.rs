//! Slices of a sweep (sharding, [`crate::shard`]): the part of a range's addresses, or of a
//! host's port list, that one shard sweeps, what it records of it, and how the merge joins
//! the slices of one target back into the [`PortsObservation`] one unsharded sweep would have
//! made, so that the rules run once over the whole.
//!
//! A shard records each slice's observation as [`Recorded`] (the raw facts: open ports with
//! their identification, the counts, the addresses that stayed silent). A shard file is
//! untrusted: [`read`] parses it strictly, caps every list and string, and refuses an open
//! port outside the slice's addresses and ports, or counts that do not fit the slice.
//!
//! **Joining** ([`join`]) sums the counts, concatenates the open ports (sorted as the sweep
//! sorts them), and keeps what every slice must agree on (the port list, the allowed ports,
//! the kind of target). An address of a name is silent when it answered in no slice. The
//! first failure, in slice order, fails the whole (a slice that could not sweep leaves the
//! target undecided, as the unsharded sweep would). One difference remains: the cap of
//! [`super::MAX_IDENTIFIED`] identified open ports applies per address *and slice*.

use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{Identified, OpenPort, PortSpec, PortsObservation, Service};
use crate::model::{Reason, ReasonKind, Slice};
use crate::target::{Target, TargetKind};

/// The longest string a recorded slice may hold (a note, a problem line, the port list).
pub const MAX_TEXT: usize = 4096;
/// The most problem lines a recorded slice may hold.
pub const MAX_PROBLEMS: usize = 64;

/// Every service, for reading names back.
const SERVICES: &[Service] = &[
    Service::Ssh,
    Service::Ftp,
    Service::Smtp,
    Service::Telnet,
    Service::Mysql,
    Service::Http,
    Service::Elasticsearch,
    Service::Tls,
    Service::Redis,
    Service::Memcached,
    Service::Postgresql,
    Service::Mongodb,
    Service::Unknown,
];

fn service(name: &str) -> Result<Service, String> {
    SERVICES
        .iter()
        .copied()
        .find(|s| s.name() == name)
        .ok_or_else(|| format!("unknown service '{}'", crate::model::one_line(name, 40)))
}

/// One slice's observation, as a shard report records it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    port_list: String,
    addresses: u64,
    open: Vec<RecordedPort>,
    closed: u64,
    filtered: u64,
    errors: u64,
    jobs: u64,
    problems: Vec<String>,
    not_scanned: Vec<IpAddr>,
    unidentified: u64,
    silent: Vec<IpAddr>,
    allowed: Vec<u16>,
    failure: Option<Reason>,
    range: bool,
    expect_closed: bool,
    host: bool,
}

/// One open port as recorded.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordedPort {
    addr: SocketAddr,
    service: String,
    /// Base64 of the banner bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    banner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unauthenticated: Option<bool>,
    note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    likely: Option<String>,
    incomplete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    https: Option<bool>,
}

/// What a shard records of a slice's observation.
pub fn record(obs: &PortsObservation) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let r = Recorded {
        port_list: obs.port_list.clone(),
        addresses: obs.addresses as u64,
        open: obs
            .open
            .iter()
            .map(|p| RecordedPort {
                addr: p.addr,
                service: p.id.service.name().to_string(),
                banner: p.id.banner.as_ref().map(|b| b64.encode(b)),
                unauthenticated: p.id.unauthenticated,
                // Escaped as a report shows it (the escape is idempotent, so the merge's
                // results read the same as an unsharded scan's).
                note: crate::model::escape_unsafe(&p.id.note).into_owned(),
                likely: p.id.likely.map(|l| l.name().to_string()),
                incomplete: p.id.incomplete,
                https: p.id.https,
            })
            .collect(),
        closed: obs.closed,
        filtered: obs.filtered,
        errors: obs.errors,
        jobs: obs.jobs,
        problems: obs
            .problems
            .iter()
            .map(|l| crate::model::escape_unsafe(l).into_owned())
            .collect(),
        not_scanned: obs.not_scanned.clone(),
        unidentified: obs.unidentified as u64,
        silent: obs.silent.clone(),
        allowed: obs.allowed.clone(),
        failure: obs.failure.clone(),
        range: obs.range,
        expect_closed: obs.expect_closed,
        host: obs.host,
    };
    serde_json::to_value(r).unwrap_or(serde_json::Value::Null)
}

/// The addresses of slice `slice` of a range (offsets into its addresses); empty for other
/// kinds of target.
pub fn range_addresses(target: &Target, slice: &Slice) -> Vec<IpAddr> {
    let TargetKind::Cidr { network, .. } = target.kind else {
        return Vec::new();
    };
    let [first, end] = slice.addresses;
    let end = end.min(u64::try_from(target.address_count()).unwrap_or(u64::MAX));
    match network {
        IpAddr::V4(v4) => (first..end)
            .filter_map(|i| u32::try_from(i).ok())
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4).wrapping_add(i))))
            .collect(),
        IpAddr::V6(v6) => (first..end)
            .map(|i| {
                IpAddr::V6(std::net::Ipv6Addr::from(
                    u128::from(v6).wrapping_add(u128::from(i)),
                ))
            })
            .collect(),
    }
}

/// Read back what a shard recorded of `slice` of `target`: strictly, with caps, and only
/// open ports inside the slice.
pub fn read(
    target: &Target,
    slice: &Slice,
    value: &serde_json::Value,
) -> Result<PortsObservation, String> {
    let r: Recorded =
        serde_json::from_value(value.clone()).map_err(|e| format!("observation: {e}"))?;
    let long = |s: &str| s.len() > MAX_TEXT;
    if long(&r.port_list) || r.problems.len() > MAX_PROBLEMS || r.problems.iter().any(|p| long(p)) {
        return Err("observation: a text or list is longer than a sweep writes".into());
    }
    let spec = PortSpec::parse(&r.port_list).map_err(|m| format!("observation: port list: {m}"))?;
    if spec.ports.len() != slice.port_count as usize {
        return Err(format!(
            "observation: the port list '{}' has {} ports, the slice says {}",
            crate::model::one_line(&r.port_list, 60),
            spec.ports.len(),
            slice.port_count
        ));
    }
    let ports = spec
        .ports
        .get(slice.ports[0] as usize..slice.ports[1] as usize)
        .ok_or("observation: the slice's ports are outside its port list")?;
    let range = matches!(target.kind, TargetKind::Cidr { .. });
    if r.range != range || r.host != matches!(target.kind, TargetKind::Host { .. }) {
        return Err("observation: the kind of target differs from the target's".into());
    }
    let addresses = if range {
        slice.addresses[1].saturating_sub(slice.addresses[0])
    } else {
        r.addresses.min(super::MAX_NAME_ADDRESSES as u64)
    };
    let pairs = addresses.saturating_mul(ports.len() as u64);
    if r.failure.is_none() && (r.jobs != pairs || (range && r.addresses != addresses)) {
        return Err(format!(
            "observation: {} pairs over {} addresses, the slice has {pairs} over {addresses}",
            r.jobs, r.addresses
        ));
    }
    let settled = (r.open.len() as u64)
        .saturating_add(r.closed)
        .saturating_add(r.filtered)
        .saturating_add(r.errors);
    if settled > r.jobs || r.unidentified > r.open.len() as u64 {
        return Err("observation: more pairs settled than swept".into());
    }
    if r.not_scanned.len() > 1024
        || r.silent.len() > super::MAX_NAME_ADDRESSES
        || r.allowed.len() > 65_535
    {
        return Err("observation: a list is longer than a sweep writes".into());
    }
    let block = range_bounds(target, slice);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut open = Vec::with_capacity(r.open.len());
    for p in r.open {
        let inside = match block {
            Some((lo, hi)) => ip_value(p.addr.ip()).is_some_and(|v| v >= lo && v < hi),
            None => true,
        };
        if !inside || !ports.contains(&p.addr.port()) {
            return Err(format!(
                "observation: open port {} is outside the slice",
                p.addr
            ));
        }
        if long(&p.note) || p.banner.as_ref().is_some_and(|b| long(b)) {
            return Err("observation: a text or list is longer than a sweep writes".into());
        }
        let banner = p
            .banner
            .map(|b| {
                b64.decode(b.as_bytes())
                    .map_err(|e| format!("observation: banner: {e}"))
            })
            .transpose()?;
        open.push(OpenPort {
            addr: p.addr,
            id: Identified {
                service: service(&p.service)?,
                banner,
                unauthenticated: p.unauthenticated,
                note: p.note,
                likely: p.likely.as_deref().map(service).transpose()?,
                incomplete: p.incomplete,
                https: p.https,
            },
        });
    }
    Ok(PortsObservation {
        port_list: r.port_list,
        ports_scanned: ports.len(),
        addresses: usize::try_from(r.addresses).unwrap_or(usize::MAX),
        open,
        closed: r.closed,
        filtered: r.filtered,
        errors: r.errors,
        jobs: r.jobs,
        problems: r.problems,
        not_scanned: r.not_scanned,
        unidentified: usize::try_from(r.unidentified).unwrap_or(usize::MAX),
        silent: r.silent,
        allowed: r.allowed,
        stats: super::SweepStats::default(),
        failure: r.failure,
        range: r.range,
        expect_closed: r.expect_closed,
        host: r.host,
    })
}

fn ip_value(ip: IpAddr) -> Option<u128> {
    Some(match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    })
}

/// `[low, high)` of a range slice's addresses as numbers; `None` for a name.
fn range_bounds(target: &Target, slice: &Slice) -> Option<(u128, u128)> {
    let TargetKind::Cidr { network, .. } = target.kind else {
        return None;
    };
    let base = ip_value(network)?;
    Some((
        base.saturating_add(u128::from(slice.addresses[0])),
        base.saturating_add(u128::from(slice.addresses[1])),
    ))
}

/// Join the slices of one target (every slice, in slice order) into the observation of the
/// whole sweep. `Err`: the slices disagree on what they must share.
pub fn join(parts: Vec<(Slice, PortsObservation)>) -> Result<PortsObservation, String> {
    let mut parts = parts.into_iter();
    let Some((first_slice, mut whole)) = parts.next() else {
        return Err("no slice to join".into());
    };
    whole.ports_scanned = first_slice.port_count as usize;
    let mut addresses = whole.addresses;
    let mut silent_everywhere = whole.silent.clone();
    for (slice, p) in parts {
        if p.port_list != whole.port_list
            || p.allowed != whole.allowed
            || p.range != whole.range
            || p.host != whole.host
            || p.expect_closed != whole.expect_closed
        {
            return Err(format!(
                "slice {}/{} disagrees with slice {}/{} on the port list, the allowed ports or the target's options",
                slice.index, slice.count, first_slice.index, first_slice.count
            ));
        }
        if whole.failure.is_none() {
            whole.failure = p.failure;
        }
        if whole.range {
            // Each address block once (a block cut into port runs counts in its first).
            if slice.ports[0] == 0 {
                addresses = addresses.saturating_add(p.addresses);
            }
        } else if p.addresses != addresses || p.not_scanned != whole.not_scanned {
            if whole.failure.is_none() {
                whole.failure = Some(Reason::new(
                    ReasonKind::Dns,
                    "the name resolved to other addresses in the shards that swept its ports",
                ));
            }
        } else {
            silent_everywhere.retain(|ip| p.silent.contains(ip));
        }
        whole.open.extend(p.open);
        whole.closed = whole.closed.saturating_add(p.closed);
        whole.filtered = whole.filtered.saturating_add(p.filtered);
        whole.errors = whole.errors.saturating_add(p.errors);
        whole.jobs = whole.jobs.saturating_add(p.jobs);
        whole.unidentified = whole.unidentified.saturating_add(p.unidentified);
        for line in p.problems {
            if !whole.problems.contains(&line) {
                whole.problems.push(line);
            }
        }
    }
    whole.addresses = addresses;
    whole.silent = silent_everywhere;
    whole
        .open
        .sort_unstable_by_key(|p| (p.addr.ip(), p.addr.port()));
    Ok(whole)
}
