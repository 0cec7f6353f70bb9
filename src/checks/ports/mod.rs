//! The ports family (`--checks ports`): a TCP connect sweep with service identification.
//!
//! **Probe** (all network I/O, here and in [`sweep`] and [`service`]): sweep the target's
//! addresses (the first resolved address of a name, or every address of a CIDR range) over
//! its port list with non-blocking connects ([`sweep`]), then identify the service on each
//! open port with a banner read or small probes ([`service`]).
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
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;

use super::Check;
use crate::engine::{ScanCx, ScanTarget, Settings};
use crate::model::{Emitter, Outcome, Reason, ReasonKind};
use crate::target::{Target, TargetKind};

mod cleartext;
mod datastore;
pub mod service;
pub mod spec;
pub mod sweep;
mod unauthenticated;
mod unexpected;

pub use service::{Identified, Service};
pub use spec::PortSpec;
use sweep::{PortState, SweepStats};

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

/// Ports allowed when neither the target nor the scan says otherwise.
pub const DEFAULT_ALLOWED: &[u16] = &[80, 443];
/// Default `--port-concurrency`: sockets in flight during a sweep.
pub const DEFAULT_PORT_CONCURRENCY: usize = 2048;
/// The most (address, port) pairs one target may sweep.
pub const MAX_PAIRS: u64 = 1 << 28;
/// The most open ports identified per address; the others are reported unidentified.
pub const MAX_IDENTIFIED: usize = 256;

/// A rule: the ids it emits and the pure function that evaluates them.
pub struct Rule {
    /// Ids this rule emits, one outcome each.
    pub ids: &'static [&'static str],
    /// The evaluation.
    pub eval: fn(&PortsObservation, &mut Emitter),
}

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
    /// `127.0.0.1:22 ssh`.
    pub fn label(&self) -> String {
        format!("{} {}", self.addr, self.id.service.name())
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
    /// Pairs not scanned because the system refused sockets.
    pub errors: u64,
    /// Ports allowed to be open.
    pub allowed: Vec<u16>,
    /// Sweep counters.
    pub stats: SweepStats,
    /// Why the sweep could not be completed, when it could not.
    pub failure: Option<Reason>,
}

impl PortsObservation {
    /// Open ports that are not allowed.
    pub fn unexpected(&self) -> impl Iterator<Item = &OpenPort> {
        self.open
            .iter()
            .filter(|p| !self.allowed.contains(&p.addr.port()))
    }
}

impl Check for Ports {
    fn family(&self) -> &'static str {
        FAMILY
    }

    fn summary(&self) -> &'static str {
        "TCP port sweep with service identification: unexpected open ports, exposed datastores, unauthenticated and cleartext services"
    }

    fn rule_ids(&self) -> &'static [&'static str] {
        RULE_IDS
    }

    /// Host targets (names, IP literals, `host:port`) and CIDR ranges: a URL names one web
    /// endpoint, so it is swept only when asked (`--checks ports`).
    fn applies_to(&self, target: &Target) -> bool {
        matches!(
            target.kind,
            TargetKind::Host { .. } | TargetKind::Cidr { .. }
        )
    }

    /// Sweeps take turns (see [`SWEEPS`]), so time spent waiting for another target's sweep
    /// must not count against this one: the family enforces its own budgets once its turn comes
    /// ([`sweep_budget`] for the sweep, [`identify_budget`] for identification), and the
    /// engine's cut-off is only a last resort.
    fn deadline(&self, _settings: &Settings, _target: &Target) -> Duration {
        Duration::from_secs(24 * 3600)
    }

    fn run<'a>(&'a self, cx: &'a ScanCx, target: &'a ScanTarget) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let obs = probe(cx, target).await;
            evaluate(&obs, &target.target.id)
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
    for rule in RULES {
        (rule.eval)(obs, &mut out);
    }
    out.finish()
}

/// The ports to sweep on `target`: its own list, else the scan's (`--ports`), else its explicit
/// port (`host:port`), else `top1000`.
pub fn port_spec(settings: &Settings, target: &Target) -> PortSpec {
    if let Some(spec) = target.ports.clone().or_else(|| settings.ports.clone()) {
        return spec;
    }
    if let Some(port) = target.port() {
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

/// Sweeps take turns, so that `--port-concurrency` bounds the whole scan.
static SWEEPS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| tokio::sync::Semaphore::new(1));

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
pub fn in_flight_budget(settings: &Settings) -> usize {
    let reserve = 64 + settings.concurrency.saturating_mul(settings.per_host);
    let fd_budget = sweep::raise_fd_limit()
        .and_then(|soft| usize::try_from(soft).ok())
        .map_or(256, |soft| soft.saturating_sub(reserve.min(soft / 2)));
    settings.port_concurrency.min(fd_budget).max(1)
}

async fn probe(cx: &ScanCx, target: &ScanTarget) -> PortsObservation {
    let settings = &cx.settings;
    let spec = port_spec(settings, &target.target);
    let addrs: Vec<IpAddr> = match &target.target.kind {
        TargetKind::Cidr { .. } => target.target.range_addresses(),
        _ => target
            .addrs
            .first()
            .map(SocketAddr::ip)
            .into_iter()
            .collect(),
    };
    let mut obs = PortsObservation {
        port_list: spec.text.clone(),
        ports_scanned: spec.ports.len(),
        addresses: addrs.len(),
        allowed: target
            .target
            .allowed_ports
            .clone()
            .or_else(|| settings.allowed_ports.clone())
            .unwrap_or_else(|| DEFAULT_ALLOWED.to_vec()),
        ..PortsObservation::default()
    };
    let jobs_len = (addrs.len() as u64).saturating_mul(spec.ports.len() as u64);
    if addrs.is_empty() {
        obs.failure = Some(Reason::new(ReasonKind::Dns, "no address to sweep"));
        return obs;
    }
    if jobs_len > MAX_PAIRS {
        obs.failure = Some(Reason::new(
            ReasonKind::TooLarge,
            format!(
                "{jobs_len} (address, port) pairs is more than the {MAX_PAIRS} one target may sweep; split the range"
            ),
        ));
        return obs;
    }

    // Sweep, one target at a time.
    let permit = SWEEPS.acquire().await.ok();
    let in_flight = in_flight_budget(settings);
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
    let (sweep_addrs, sweep_ports) = (addrs.clone(), spec.ports.clone());
    let flag = cancel.clone();
    let budget = sweep_budget(settings, jobs_len, in_flight);
    let task = tokio::task::spawn_blocking(move || {
        let jobs = sweep::Jobs {
            addrs: &sweep_addrs,
            ports: &sweep_ports,
        };
        sweep::run(jobs, &cfg, &flag)
    });
    let Ok(result) = tokio::time::timeout(budget, task).await else {
        cancel.store(true, Ordering::Relaxed);
        obs.failure = Some(Reason::new(
            ReasonKind::Timeout,
            format!(
                "the sweep did not finish within its budget of {}",
                crate::engine::net::secs(budget)
            ),
        ));
        return obs;
    };
    drop(permit);
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
    obs.stats = result.stats;
    let jobs = sweep::Jobs {
        addrs: &addrs,
        ports: &spec.ports,
    };
    let mut open: Vec<SocketAddr> = Vec::new();
    for (j, state) in &result.notable {
        match state {
            PortState::Open => open.extend(jobs.addr(*j)),
            PortState::Filtered => obs.filtered += 1,
            PortState::Error => obs.errors += 1,
            PortState::Closed => obs.closed += 1,
        }
    }
    open.sort_unstable_by_key(|a| (a.ip(), a.port()));

    // Identify, under the per-host connection limit and a time budget.
    let timeouts = service::Timeouts {
        connect: settings.timeout,
        banner: settings.timeout.min(Duration::from_millis(1500)),
        answer: settings.timeout,
    };
    let deadline = Instant::now() + identify_budget(settings);
    let mut per_addr: HashMap<IpAddr, usize> = HashMap::new();
    let parallel = settings
        .per_host
        .max(1)
        .saturating_mul(addrs.len().min(64))
        .min(256);
    let identified: Vec<OpenPort> = futures::stream::iter(open.into_iter().map(|addr| {
        let n = per_addr.entry(addr.ip()).or_default();
        *n += 1;
        let over_cap = *n > MAX_IDENTIFIED;
        async move {
            let id = if over_cap {
                Identified {
                    service: Service::Unknown,
                    banner: None,
                    unauthenticated: None,
                    note: format!(
                        "not identified: more than {MAX_IDENTIFIED} open ports on this address"
                    ),
                }
            } else {
                let _permit = cx.limits.connection(&addr.ip().to_string()).await;
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, service::identify(addr, timeouts)).await {
                    Ok(id) => id,
                    Err(_) => Identified {
                        service: Service::Unknown,
                        banner: None,
                        unauthenticated: None,
                        note: "not identified within the time budget".into(),
                    },
                }
            };
            OpenPort { addr, id }
        }
    }))
    .buffered(parallel)
    .collect()
    .await;
    obs.open = identified;
    obs
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
            },
        }
    }

    pub fn obs(open: Vec<OpenPort>) -> PortsObservation {
        PortsObservation {
            port_list: "top1000".into(),
            ports_scanned: 1000,
            addresses: 1,
            open,
            allowed: DEFAULT_ALLOWED.to_vec(),
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
