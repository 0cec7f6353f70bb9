//! The ports family (`--checks ports`): a TCP connect sweep with service identification.
//!
//! **Probe** (all network I/O, here and in [`sweep`] and [`service`]): sweep the target's
//! addresses (every resolved address of a name, up to [`MAX_NAME_ADDRESSES`], or every address
//! of a CIDR range) over its port list with non-blocking connects ([`sweep`]), then identify
//! the service on each open port with a banner read or small probes ([`service`]).
//!
//! **Never pass what was not checked.** A rule passes only when the sweep settled every
//! (address, port) pair as open, closed or filtered, swept every address, and got an answer
//! (open or closed) from at least one port; otherwise it is inconclusive, with the counts as
//! evidence (a finding it did make still fails). The datastore and authentication rules are
//! also inconclusive while an open port went unidentified (cap or time budget).
//!
//! **Bounds.** The sweep is bounded by sockets in flight, not by the per-host limit (see
//! [`sweep`]): `--port-concurrency` (default 2048), lowered to what the open-file limit allows
//! after raising the soft limit to the hard one. Sweeps of different targets take turns, so the
//! bound holds for the whole scan. Identification is bounded like the other families: at most
//! `--per-host` connections to one host at once, one probe per connection, every read capped
//! at 4 KiB and every wait bounded by the timeout; at most [`MAX_IDENTIFIED`] open ports per
//! address are identified, all within a time budget.
//!
//! **Rules** (pure, one file each) judge the [`PortsObservation`] against the target's
//! `allowed_ports` (default 80 and 443).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;

use crate::engine::Emitter;
use crate::engine::{Cx, Family, ScanTarget};
use crate::model::{Evidence, Observed, Outcome, Reason, ReasonKind, Status};
use crate::options::{FamilyOptions, OptionsSpec, Spec};
use crate::plan::Settings;
use crate::target::{Target, TargetKind};

mod cleartext;
mod datastore;
pub mod options;
pub mod service;
pub mod slice;
pub mod spec;
pub mod sweep;
mod unauthenticated;
mod unexpected;

pub use service::{Identified, Service};
pub use spec::PortSpec;
use sweep::SweepStats;

/// The ports family.
#[derive(Debug)]
pub struct Ports;

/// Family name.
pub const FAMILY: &str = "ports";

/// Every rule id of the family, in catalogue order.
pub const RULE_IDS: &[&str] = &[
    unexpected::UNEXPECTED_OPEN,
    datastore::EXPOSED_DATASTORE,
    unauthenticated::UNAUTHENTICATED,
    cleartext::CLEARTEXT,
];

pub use options::{DEFAULT_ALLOWED, DEFAULT_PORT_CONCURRENCY, PortsOptions};
/// The most (address, port) pairs one target may sweep.
pub const MAX_PAIRS: u64 = 1 << 28;
/// The most open ports identified per address; the others are reported unidentified.
pub const MAX_IDENTIFIED: usize = 256;
/// The most addresses of one name swept; the others are reported as not scanned.
pub const MAX_NAME_ADDRESSES: usize = 8;
/// A host's sweep over more ports than this (`--ports all`) may be cut into port slices by
/// sharding, like a range's into address slices.
pub const SLICED_PORTS: usize = 1024;

/// A rule of this family (see [`crate::checks::Rule`]).
pub type Rule = crate::engine::Rule<PortsObservation>;

/// The rules, in evaluation order.
pub static RULES: &[Rule] = &[
    unexpected::RULE,
    datastore::RULE,
    unauthenticated::RULE,
    cleartext::RULE,
];

/// One open port and what runs on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenPort {
    /// Address and port.
    pub addr: SocketAddr,
    /// The identified service.
    pub id: Identified,
}

impl OpenPort {
    /// `127.0.0.1:22 ssh`, or `127.0.0.1:9200 tls (likely elasticsearch)`.
    pub fn label(&self) -> String {
        match self.id.likely {
            Some(likely) => format!(
                "{} {} (likely {})",
                self.addr,
                self.id.service.name(),
                likely.name()
            ),
            None => format!("{} {}", self.addr, self.id.service.name()),
        }
    }
}

/// What the sweep found on one target.
#[derive(Clone, Debug, Default)]
pub struct PortsObservation {
    /// The port list, as given (`top1000`, `22,80`...).
    pub port_list: String,
    /// Ports swept per address.
    pub ports_scanned: usize,
    /// Addresses swept.
    pub addresses: usize,
    /// Open ports, by address then port.
    pub open: Vec<OpenPort>,
    /// (address, port) pairs found closed.
    pub closed: u64,
    /// Pairs found filtered.
    pub filtered: u64,
    /// Pairs not scanned (the system refused sockets, a sweep thread failed).
    pub errors: u64,
    /// (address, port) pairs the sweep had to settle.
    pub jobs: u64,
    /// Why pairs were not scanned, one line per cause.
    pub problems: Vec<String>,
    /// Addresses of the name beyond [`MAX_NAME_ADDRESSES`], not swept.
    pub not_scanned: Vec<IpAddr>,
    /// Open ports left unidentified: a connect failed, [`MAX_IDENTIFIED`], or the time budget.
    pub unidentified: usize,
    /// Addresses of a name where no port answered (open or closed) while others did.
    pub silent: Vec<IpAddr>,
    /// Ports allowed to be open.
    pub allowed: Vec<u16>,
    /// Sweep counters.
    pub stats: SweepStats,
    /// Why the sweep could not be completed, when it could not.
    pub failure: Option<Reason>,
    /// The target is an address range: each finding names its address and port.
    pub range: bool,
    /// The target says nothing should answer (`expect_closed = true`).
    pub expect_closed: bool,
    /// The target is a host (not a range, not a URL whose service the sweep may not cover):
    /// nothing open on it is "no service found".
    pub host: bool,
}

impl PortsObservation {
    /// Open ports that are not allowed.
    pub fn unexpected(&self) -> impl Iterator<Item = &OpenPort> {
        self.open
            .iter()
            .filter(|p| !self.allowed.contains(&p.addr.port()))
    }

    /// Why the sweep cannot support a pass, if it cannot: pairs not scanned or not accounted
    /// for, addresses not swept, no answer at all (a host that is down or fully filtered), or
    /// nothing open on a host (no service found); the last two unless it is `expect_closed`.
    pub fn incomplete(&self) -> Option<Reason> {
        let open = self.open.len() as u64;
        let settled = open + self.closed + self.filtered;
        if self.errors > 0 || settled != self.jobs {
            let mut detail = format!(
                "the sweep settled {settled} of {} (address, port) pairs ({open} open, {} closed, {} filtered, {} not scanned)",
                self.jobs, self.closed, self.filtered, self.errors
            );
            if !self.problems.is_empty() {
                detail.push_str(": ");
                detail.push_str(&self.problems.join("; "));
            }
            return Some(Reason::new(ReasonKind::Io, detail));
        }
        if !self.not_scanned.is_empty() {
            let list: Vec<String> = self.not_scanned.iter().map(IpAddr::to_string).collect();
            return Some(Reason::new(
                ReasonKind::TooLarge,
                format!(
                    "the name has {} more address{} than the {MAX_NAME_ADDRESSES} swept: {} not scanned",
                    list.len(),
                    if list.len() == 1 { "" } else { "es" },
                    list.join(", ")
                ),
            ));
        }
        // A target meant to be closed may answer nothing at all: that is what it promised.
        if self.expect_closed {
            return None;
        }
        if open == 0 && self.closed == 0 && self.filtered > 0 {
            // On a host this is "no service found" too (the gate says so), with its own cause.
            let (kind, prefix) = if self.host {
                (ReasonKind::NoService, "no service found: ")
            } else {
                (ReasonKind::Timeout, "")
            };
            return Some(Reason::new(
                kind,
                format!(
                    "{prefix}no answer on any port: host down or fully filtered ({} pairs filtered)",
                    self.filtered
                ),
            ));
        }
        // Nothing open on a host: a mistyped address or a service that is down would ship at
        // 100 %. (A range is a set of hosts, where a silent address may be what was meant; a
        // URL's own port may be outside the swept list.)
        if open == 0 && self.host {
            return Some(Reason::new(
                ReasonKind::NoService,
                format!(
                    "no service found: none of the {} swept ports ({}) is open ({} closed, {} filtered); check the address, or set expect_closed = true on the [[target]] if nothing should answer",
                    self.ports_scanned, self.port_list, self.closed, self.filtered
                ),
            ));
        }
        if !self.silent.is_empty() {
            let list: Vec<String> = self.silent.iter().map(IpAddr::to_string).collect();
            return Some(Reason::new(
                ReasonKind::Timeout,
                format!(
                    "no answer on any port from {}: down, fully filtered or unreachable from here",
                    list.join(", ")
                ),
            ));
        }
        None
    }

    /// The sweep's counts, as evidence.
    pub fn counts(&self, ev: Evidence) -> Evidence {
        let n = |v: u64| Observed::Number(i64::try_from(v).unwrap_or(i64::MAX));
        let mut ev = ev
            .with(
                "allowed_ports",
                Observed::List(
                    self.allowed
                        .iter()
                        .map(|p| Observed::Number(i64::from(*p)))
                        .collect(),
                ),
            )
            .with("ports_scanned", n(self.ports_scanned as u64))
            .with("addresses", n(self.addresses as u64))
            .with("closed", n(self.closed))
            .with("filtered", n(self.filtered))
            .with("not_scanned", n(self.errors));
        if !self.problems.is_empty() {
            ev = ev.with("sweep_problems", Observed::texts(self.problems.clone()));
        }
        if !self.not_scanned.is_empty() {
            ev = ev.with(
                "addresses_not_scanned",
                Observed::texts(self.not_scanned.iter().map(IpAddr::to_string)),
            );
        }
        if self.unidentified > 0 {
            ev = ev.with("unidentified", n(self.unidentified as u64));
        }
        if !self.silent.is_empty() {
            ev = ev.with(
                "addresses_silent",
                Observed::texts(self.silent.iter().map(IpAddr::to_string)),
            );
        }
        ev
    }
}

/// Why identification cannot rule out a service on `ports`, if it cannot: a port that speaks
/// only TLS on a datastore's default port, or open ports left unidentified (cap or budget).
pub(crate) fn identification_gap<'a>(
    obs: &PortsObservation,
    ports: impl Iterator<Item = &'a OpenPort>,
) -> Option<Reason> {
    let likely: Vec<String> = ports
        .filter_map(|p| {
            let l = p.id.likely?;
            Some(format!("{} (likely {})", p.addr, l.name()))
        })
        .collect();
    if !likely.is_empty() {
        return Some(Reason::new(
            ReasonKind::Tls,
            format!(
                "only TLS answers on a datastore's default port, so the service behind it was not identified: {}",
                likely.join(", ")
            ),
        ));
    }
    (obs.unidentified > 0).then(|| {
        Reason::new(
            ReasonKind::Timeout,
            format!(
                "{} open port{} not identified (a connect failed, more than {MAX_IDENTIFIED} were open on one address, or the time budget ran out)",
                obs.unidentified,
                if obs.unidentified == 1 { " was" } else { "s were" }
            ),
        )
    })
}

/// The subject of an open port: `tcp/PORT` on a host (one subject for the port, whichever of
/// the name's addresses it answered on), `ADDR/tcp/PORT` in a range.
pub(crate) fn port_subject(obs: &PortsObservation, p: &OpenPort) -> crate::model::Subject {
    if obs.range {
        crate::model::Subject::address_port(p.addr)
    } else {
        crate::model::Subject::port(p.addr.port())
    }
}

/// Fail `id` with one finding per open port of `ports`. `per_port` is the finding's message
/// before the port's label (e.g. `open port not in allowed_ports`) and how a port is labelled.
pub(crate) fn fail_ports(
    out: &mut Emitter,
    obs: &PortsObservation,
    id: &'static str,
    message: String,
    evidence: Evidence,
    ports: &[&OpenPort],
    per_port: (&str, fn(&OpenPort) -> String),
) {
    let (what, label) = per_port;
    let mut groups: Vec<(crate::model::Subject, Vec<&OpenPort>)> = Vec::new();
    for p in ports {
        let subject = port_subject(obs, p);
        match groups.iter_mut().find(|(s, _)| *s == subject) {
            Some((_, list)) => list.push(p),
            None => groups.push((subject, vec![p])),
        }
    }
    let findings = groups
        .into_iter()
        .map(|(subject, list)| {
            let labels: Vec<String> = list.iter().map(|p| label(p)).collect();
            let ev = unexpected::port_evidence(list.iter().copied());
            (subject, format!("{what}: {}", labels.join(", ")), ev)
        })
        .collect();
    out.fail_each(id, message, evidence, findings);
}

/// Record `id` as inconclusive for `reason`, keeping `ev` (the counts, what was seen).
pub(crate) fn inconclusive_with(
    out: &mut Emitter,
    id: &'static str,
    reason: &Reason,
    ev: Evidence,
) {
    out.emit(
        id,
        Status::Inconclusive,
        format!("could not decide: {}", reason.detail),
        ev,
        Some(reason.clone()),
    );
}

static OPTIONS: Spec<PortsOptions> = Spec::new();

impl FamilyOptions for Ports {
    fn family(&self) -> &'static str {
        FAMILY
    }

    fn options(&self) -> &'static dyn OptionsSpec {
        &OPTIONS
    }
}

/// Identification connections per open port, at most: one banner read and six probes, and
/// one HTTP request inside TLS on a TLS port.
pub const CONNECTIONS_PER_PORT: u32 = 8;

impl Family for Ports {
    fn summary(&self) -> &'static str {
        "TCP port sweep with service identification: unexpected open ports, exposed datastores, unauthenticated and cleartext services"
    }

    fn rule_ids(&self) -> &'static [&'static str] {
        RULE_IDS
    }

    /// Host targets (names, IP literals, `host:port`) and CIDR ranges: a URL names one web
    /// endpoint, so it is swept only when asked (`--checks ports`, see [`Check::can_run`]).
    fn applies_to(&self, target: &Target) -> bool {
        matches!(
            target.kind,
            TargetKind::Host { .. } | TargetKind::Cidr { .. }
        )
    }

    /// Asked for by name, the family also sweeps a URL's host (its `--ports`, else top1000).
    fn can_run(&self, _target: &Target, _settings: &Settings) -> bool {
        true
    }

    /// Identification connections: [`CONNECTIONS_PER_PORT`] for each of at most
    /// [`MAX_IDENTIFIED`] open ports per swept address. The sweep's connects are counted by
    /// the sweep (its statistics), not as requests.
    fn budget(&self, target: &Target, _settings: &Settings) -> u32 {
        let addresses = match target.kind {
            TargetKind::Cidr { .. } => u32::try_from(target.address_count()).unwrap_or(u32::MAX),
            _ => 1,
        };
        addresses.saturating_mul(CONNECTIONS_PER_PORT * MAX_IDENTIFIED as u32)
    }

    /// Sweeps take turns ([`Cx::sweep_turn`]), so time spent waiting for another target's sweep
    /// must not count against this one: the family enforces its own budgets once its turn comes
    /// ([`sweep_budget`] for the sweep, [`identify_budget`] for identification), and the
    /// engine's cut-off is only a last resort.
    fn deadline(&self, _settings: &Settings, _target: &Target) -> Duration {
        Duration::from_secs(24 * 3600)
    }

    /// A range of more than one address, or a port list longer than [`SLICED_PORTS`] (on a
    /// host: its ports are cut into runs, each sweeping every address of the name).
    fn sweep_shape(
        &self,
        target: &Target,
        options: &crate::options::OptionSet,
    ) -> Option<(u64, u32)> {
        let opts = target
            .options
            .get::<PortsOptions>(FAMILY)
            .or_else(|| options.get::<PortsOptions>(FAMILY))
            .cloned()
            .unwrap_or_default();
        let ports = u32::try_from(port_spec(&opts, target).ports.len()).ok()?;
        let addresses = match target.kind {
            TargetKind::Cidr { .. } => u64::try_from(target.address_count()).ok()?,
            _ => 1,
        };
        (addresses > 1 || ports as usize > SLICED_PORTS).then_some((addresses, ports))
    }

    fn sliceable(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, cx: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let target = &cx.target().target;
            if !target.slices.is_empty() {
                // A shard's slices: each swept and recorded on its own; the merge judges the
                // joined slices once ([`slice`]).
                for s in &target.slices {
                    let obs = probe(cx, Some(s)).await;
                    for found in discoveries(&obs) {
                        cx.discovered(found);
                    }
                    cx.record_slice(crate::model::SliceOutput {
                        target: target.id.clone(),
                        family: FAMILY,
                        slice: *s,
                        observation: slice::record(&obs),
                        marks: Vec::new(),
                        partial: evaluate(&obs, &target.id),
                    });
                }
                return Vec::new();
            }
            let obs = probe(cx, None).await;
            for found in discoveries(&obs) {
                cx.discovered(found);
            }
            evaluate(&obs, &cx.target().target.id)
        })
    }
}

/// Run every rule on an observation.
pub fn evaluate(obs: &PortsObservation, target_id: &str) -> Vec<Outcome> {
    let mut out = Emitter::new(FAMILY, target_id);
    if let Some(reason) = &obs.failure {
        for id in RULE_IDS {
            out.inconclusive(id, reason);
        }
        return out.finish();
    }
    crate::engine::evaluate_rules(RULES, obs, &mut out);
    out.finish()
}

/// The ports allowed open on `target`: its `allowed_ports`, plus the port a `host:port` target
/// names (the service under test is allowed by definition).
pub fn allowed_ports(options: &PortsOptions, target: &Target) -> Vec<u16> {
    let mut allowed = options.allowed_ports.clone();
    if let TargetKind::Host {
        port: Some(port), ..
    } = target.kind
        && !allowed.contains(&port)
    {
        allowed.push(port);
    }
    allowed
}

/// What the sweep found for the chain stage: every TLS and HTTP(S) service (and PostgreSQL
/// offering TLS), and every open port left unidentified.
pub fn discoveries(obs: &PortsObservation) -> Vec<crate::engine::chain::Discovered> {
    use crate::engine::chain::{Discovered, Found};
    obs.open
        .iter()
        .filter_map(|p| {
            let found = match p.id.service {
                Service::Tls if p.id.https == Some(true) => Found::Https,
                Service::Tls => Found::Tls,
                Service::Http => Found::Http,
                Service::Postgresql if service::offers_tls(&p.id) => Found::PostgresTls,
                Service::Unknown => Found::Unidentified,
                _ if p.id.incomplete => Found::Unidentified,
                _ => return None,
            };
            let label = p.label();
            let service = label
                .split_once(' ')
                .map_or(label.as_str(), |(_, s)| s)
                .to_string();
            Some(Discovered {
                addr: p.addr,
                found,
                service,
                note: p.id.note.clone(),
            })
        })
        .collect()
}

/// The ports to sweep on `target`: its own list, else the scan's (`--ports`), else its explicit
/// port (`host:port`), else `top1000` (also for a URL: its host is swept, not only its port).
pub fn port_spec(options: &PortsOptions, target: &Target) -> PortSpec {
    if let Some(spec) = options.ports.clone() {
        return spec;
    }
    if let TargetKind::Host {
        port: Some(port), ..
    } = target.kind
    {
        return PortSpec::single(port);
    }
    PortSpec {
        text: "top1000".into(),
        ports: spec::top(1000).to_vec(),
    }
}

/// The longest a sweep may take once it starts: every connect attempted twice at the highest
/// timeout, `in_flight` at a time, plus a minute.
pub fn sweep_budget(settings: &Settings, pairs: u64, in_flight: usize) -> Duration {
    let waves = pairs / (in_flight.max(1) as u64) + 1;
    settings
        .timeout
        .saturating_mul(2)
        .saturating_mul(u32::try_from(waves).unwrap_or(u32::MAX))
        .saturating_add(Duration::from_secs(60))
}

/// The time budget of identification on one target.
fn identify_budget(settings: &Settings) -> Duration {
    Duration::from_secs(30).saturating_add(settings.timeout.saturating_mul(12))
}

/// Sets the cancel flag when dropped (the engine aborted the family), stopping the sweep threads.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sockets the sweep may hold: `--port-concurrency`, within the open-file limit (raised to the
/// hard limit) minus a reserve for the connections of the other families (`--concurrency` ×
/// `--per-host` + 64, at most half the limit).
pub fn in_flight_budget(settings: &Settings, port_concurrency: usize) -> usize {
    let reserve = 64 + settings.concurrency.saturating_mul(settings.per_host);
    let fd_budget = sweep::raise_fd_limit()
        .and_then(|soft| usize::try_from(soft).ok())
        .map_or(256, |soft| soft.saturating_sub(reserve.min(soft / 2)));
    port_concurrency.min(fd_budget).max(1)
}

/// The addresses to sweep: every address of a range, or the distinct resolved addresses of a
/// name (at most [`MAX_NAME_ADDRESSES`]; the others are returned second, not swept).
fn sweep_addresses(
    target: &ScanTarget,
    part: Option<&crate::model::Slice>,
) -> (Vec<IpAddr>, Vec<IpAddr>) {
    if let TargetKind::Cidr { .. } = target.target.kind {
        return match part {
            Some(s) => (slice::range_addresses(&target.target, s), Vec::new()),
            None => (target.target.range_addresses(), Vec::new()),
        };
    }
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in &target.addrs {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    let rest = ips.split_off(ips.len().min(MAX_NAME_ADDRESSES));
    (ips, rest)
}

async fn probe(cx: &Cx<'_>, part: Option<&crate::model::Slice>) -> PortsObservation {
    let target = cx.target();
    let settings = cx.settings();
    let opts = cx.options::<PortsOptions>();
    let spec = port_spec(&opts, &target.target);
    let mut obs = PortsObservation {
        port_list: spec.text.clone(),
        ports_scanned: spec.ports.len(),
        allowed: allowed_ports(&opts, &target.target),
        range: matches!(target.target.kind, TargetKind::Cidr { .. }),
        expect_closed: opts.expect_closed,
        host: matches!(target.target.kind, TargetKind::Host { .. }),
        ..PortsObservation::default()
    };
    // Count the pairs before expanding a range.
    let address_count = match target.target.kind {
        TargetKind::Cidr { .. } => u64::try_from(target.target.address_count()).unwrap_or(u64::MAX),
        _ => target.addrs.len().min(MAX_NAME_ADDRESSES) as u64,
    };
    let pairs = address_count.saturating_mul(spec.ports.len() as u64);
    if pairs > MAX_PAIRS {
        obs.failure = Some(Reason::new(
            ReasonKind::TooLarge,
            format!(
                "{pairs} (address, port) pairs is more than the {MAX_PAIRS} one target may sweep; split the range"
            ),
        ));
        return obs;
    }
    let (addrs, not_scanned) = sweep_addresses(target, part);
    let mut port_list = spec.ports.clone();
    if let Some(s) = part {
        let [first, end] = s.ports;
        match port_list.get(first as usize..end as usize) {
            Some(run) if s.port_count as usize == port_list.len() => port_list = run.to_vec(),
            _ => {
                obs.failure = Some(Reason::new(
                    ReasonKind::Bug,
                    format!(
                        "slice {}/{} names ports {first}..{end} of {}, the port list has {}",
                        s.index,
                        s.count,
                        s.port_count,
                        port_list.len()
                    ),
                ));
                return obs;
            }
        }
        obs.ports_scanned = port_list.len();
    }
    let addrs: Arc<[IpAddr]> = Arc::from(addrs);
    let ports: Arc<[u16]> = Arc::from(port_list);
    obs.addresses = addrs.len();
    obs.not_scanned = not_scanned;
    let jobs_len = (addrs.len() as u64).saturating_mul(ports.len() as u64);
    obs.jobs = jobs_len;
    if addrs.is_empty() {
        obs.failure = Some(Reason::new(ReasonKind::Dns, "no address to sweep"));
        return obs;
    }

    // Sweep, one target at a time; identify each open port as soon as the sweep finds it.
    let permit = cx.sweep_turn().await;
    let in_flight = in_flight_budget(settings, opts.port_concurrency);
    let threads = std::thread::available_parallelism()
        .map_or(2, std::num::NonZero::get)
        .min(4)
        .min(usize::try_from(jobs_len / 512 + 1).unwrap_or(1))
        .max(1);
    let cfg = sweep::SweepConfig {
        in_flight,
        threads,
        initial_timeout: settings.timeout.min(Duration::from_secs(1)),
        min_timeout: Duration::from_millis(100).min(settings.timeout),
        max_timeout: settings.timeout,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let (sweep_addrs, sweep_ports) = (addrs.clone(), ports.clone());
    let flag = cancel.clone();
    let budget = sweep_budget(settings, jobs_len, in_flight);
    let live = Arc::new(sweep::Live::default());
    let counted = settings.progress.is_shown().then(|| live.clone());
    // Open ports go from the sweep threads to identification through this channel (at most
    // one message per swept pair); it closes when the sweep ends.
    let (found_tx, found_rx) = tokio::sync::mpsc::unbounded_channel::<SocketAddr>();
    let task = tokio::task::spawn_blocking(move || {
        let jobs = sweep::Jobs {
            addrs: &sweep_addrs,
            ports: &sweep_ports,
        };
        let on_open = |j: u64| {
            if let Some(addr) = jobs.addr(j) {
                let _ = found_tx.send(addr);
            }
        };
        sweep::run_with(jobs, &cfg, &flag, counted, &on_open)
    });
    // The progress line shows the sweep's pairs done and open so far, four times a second.
    let show = |live: &sweep::Live| {
        settings
            .progress
            .sweep(&target.target.id, live.done(), jobs_len, live.open());
    };
    let sweep = async {
        let mut task = std::pin::pin!(tokio::time::timeout(budget, task));
        let out = loop {
            tokio::select! {
                r = &mut task => break r,
                () = tokio::time::sleep(Duration::from_millis(250)), if settings.progress.is_shown() => show(&live),
            }
        };
        show(&live);
        if out.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        out
    };
    let deadline = Instant::now() + budget + identify_budget(settings);
    let identify = identify_all(cx, found_rx, deadline);
    let (swept, mut identified) = tokio::join!(sweep, identify);
    drop(permit);
    let Ok(result) = swept else {
        obs.failure = Some(Reason::new(
            ReasonKind::Timeout,
            format!(
                "the sweep did not finish within its budget of {}",
                crate::engine::net::secs(budget)
            ),
        ));
        return obs;
    };
    let result = match result {
        Ok(r) if !r.cancelled => r,
        Ok(_) => {
            obs.failure = Some(Reason::new(
                ReasonKind::Interrupted,
                "the sweep was cancelled",
            ));
            return obs;
        }
        Err(e) => {
            obs.failure = Some(Reason::new(
                ReasonKind::Bug,
                format!("the sweep failed: {e}"),
            ));
            return obs;
        }
    };
    obs.closed = result.closed;
    obs.filtered = result.filtered;
    obs.errors = result.errors;
    obs.problems = result.problems;
    obs.stats = result.stats;
    // Every address of a name is the same host: one that never answered was not checked.
    // (A range's addresses are different hosts: a silent one is judged with the range.)
    if !matches!(target.target.kind, TargetKind::Cidr { .. }) {
        obs.silent = addrs
            .iter()
            .zip(&result.answered)
            .filter(|(_, answered)| !**answered)
            .map(|(ip, _)| *ip)
            .collect();
    }
    identified.sort_unstable_by_key(|(p, _)| (p.addr.ip(), p.addr.port()));
    obs.unidentified = identified.iter().filter(|(_, cut)| *cut).count();
    obs.open = identified.into_iter().map(|(p, _)| p).collect();
    obs
}

/// Identify every open port the sweep reports on `found`, as it reports it: under the
/// per-host connection limit, at most [`MAX_IDENTIFIED`] per address, until `deadline`.
/// Returns each port with whether its identification was cut short.
async fn identify_all(
    cx: &Cx<'_>,
    found: tokio::sync::mpsc::UnboundedReceiver<SocketAddr>,
    deadline: Instant,
) -> Vec<(OpenPort, bool)> {
    let target = cx.target();
    let settings = cx.settings();
    let timeouts = service::Timeouts {
        connect: settings.timeout,
        banner: settings.timeout.min(Duration::from_millis(1500)),
        answer: settings.timeout,
    };
    let addresses = match target.target.kind {
        TargetKind::Cidr { .. } => usize::try_from(target.target.address_count()).unwrap_or(64),
        _ => target.addrs.len(),
    };
    let parallel = settings
        .per_host
        .max(1)
        .saturating_mul(addresses.clamp(1, 64))
        .min(256);
    // The per-host key the other families use: the target's host for the addresses of a name,
    // each address for a range.
    let is_range = matches!(target.target.kind, TargetKind::Cidr { .. });
    let name = target.target.host();
    let mut per_addr: HashMap<IpAddr, usize> = HashMap::new();
    let ports = futures::stream::unfold(found, |mut rx| async move {
        rx.recv().await.map(|addr| (addr, rx))
    });
    ports
        .map(|addr| {
            let n = per_addr.entry(addr.ip()).or_default();
            *n += 1;
            let over_cap = *n > MAX_IDENTIFIED;
            let host = if is_range {
                addr.ip().to_string()
            } else {
                name.clone()
            };
            async move {
                let unidentified = |note: String| Identified {
                    service: Service::Unknown,
                    banner: None,
                    unauthenticated: None,
                    note,
                    likely: None,
                    incomplete: true,
                    https: None,
                };
                let (id, cut) = if over_cap {
                    (
                        unidentified(format!(
                            "not identified: more than {MAX_IDENTIFIED} open ports on this address"
                        )),
                        true,
                    )
                } else {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let via = service::Via { cx, host: &host };
                    match tokio::time::timeout(left, service::identify(via, addr, timeouts)).await {
                        Ok(id) => {
                            let cut = id.incomplete;
                            (id, cut)
                        }
                        Err(_) => (
                            unidentified("not identified within the time budget".into()),
                            true,
                        ),
                    }
                };
                (OpenPort { addr, id }, cut)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use crate::model::Status;

    pub fn port(addr: &str, service: Service, unauthenticated: Option<bool>) -> OpenPort {
        OpenPort {
            addr: addr.parse().unwrap(),
            id: Identified {
                service,
                banner: None,
                unauthenticated,
                note: String::new(),
                likely: None,
                incomplete: false,
                https: None,
            },
        }
    }

    pub fn obs(open: Vec<OpenPort>) -> PortsObservation {
        PortsObservation {
            port_list: "top1000".into(),
            ports_scanned: 1000,
            addresses: 1,
            jobs: 1000,
            closed: 1000 - open.len() as u64,
            open,
            allowed: DEFAULT_ALLOWED.to_vec(),
            host: true,
            ..PortsObservation::default()
        }
    }

    pub fn status(rule: &Rule, obs: &PortsObservation, id: &str) -> Status {
        let mut out = Emitter::new(FAMILY, "t");
        (rule.eval)(obs, &mut out);
        out.finish()
            .into_iter()
            .find(|o| o.rule_id == id)
            .map(|o| o.status)
            .unwrap()
    }
}
