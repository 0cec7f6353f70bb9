//! Stage 2, connectivity: each target is resolved once (`--resolve` first, then the scan's
//! resolver) and, when it names a port, connected to once. A target that fails gets one
//! target-level status (`unreachable`) instead of a pile of errored checks, as sslyze does;
//! only families that need no address (the dns family, which judges a name that does not
//! resolve) still run on a name that failed.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::cx::{ScanTarget, normalise_host};
use super::dns;
use super::limits::Limits;
use super::net;
use crate::model::{Reason, ReasonKind, TargetResult, TargetStatus};
use crate::plan::{ScanPlan, Settings};
use crate::target::Target;

/// At most this many addresses of one name are tried by the connectivity check.
pub const MAX_ADDRESSES_TRIED: u32 = 4;

/// What the connectivity phase found: one entry per target (plan order), the reached ones,
/// and whether the interrupt came.
pub struct Reached {
    /// Per-target status so far.
    pub targets: Vec<TargetResult>,
    /// The reached targets (and, for a name that did not resolve, the bare target).
    pub reached: Vec<Option<ScanTarget>>,
    /// The interrupt fired.
    pub interrupted: bool,
}

/// Resolve and connect to every target of `plan`, under the limits, until done or interrupted.
pub async fn run(
    plan: &ScanPlan,
    limits: &Arc<Limits>,
    resolver: &dns::Dns,
    interrupt: &mut Pin<&mut impl Future<Output = ()>>,
) -> Reached {
    // Shared, not cloned per task: the settings carry every --resolve entry of the scan.
    let settings = Arc::new(plan.settings.clone());
    let mut targets: Vec<TargetResult> = plan
        .targets
        .iter()
        .map(|t| TargetResult {
            target: t.id.clone(),
            address: None,
            status: TargetStatus::Interrupted,
            error: None,
            requests: std::collections::BTreeMap::new(),
            backoff: None,
            parent: None,
            chain: None,
        })
        .collect();
    let mut reached: Vec<Option<ScanTarget>> = vec![None; plan.targets.len()];
    let mut interrupted = false;
    let mut set = JoinSet::new();
    let mut ids: HashMap<tokio::task::Id, usize> = HashMap::new();
    for (i, target) in plan.targets.iter().enumerate() {
        let target = target.clone();
        let settings = settings.clone();
        let limits = limits.clone();
        let resolver = resolver.clone();
        let handle =
            set.spawn(async move {
                let _task = limits.task().await;
                let _conn = limits.connection(&normalise_host(&target.host())).await;
                // Resolution and every address tried are bounded; this bounds them together.
                let deadline = settings.timeout.saturating_mul(2 + MAX_ADDRESSES_TRIED);
                let result =
                    match tokio::time::timeout(deadline, connect(&target, &settings, &resolver))
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(Reason::new(
                            ReasonKind::Timeout,
                            format!(
                                "resolving and connecting did not finish within {}",
                                net::secs(deadline)
                            ),
                        )),
                    };
                (i, result, target)
            });
        ids.insert(handle.id(), i);
    }
    loop {
        tokio::select! {
            biased;
            () = interrupt.as_mut(), if !interrupted => {
                interrupted = true;
                set.abort_all();
            }
            next = set.join_next() => match next {
                None => break,
                Some(Ok((i, result, target))) => {
                    if let Some(slot) = targets.get_mut(i) {
                        match result {
                            Ok(addrs) => {
                                slot.status = TargetStatus::Scanned;
                                slot.address = addrs.first().map(|a| display_addr(&target, a));
                                if let Some(r) = reached.get_mut(i) {
                                    *r = Some(ScanTarget { target, addrs });
                                }
                            }
                            Err(reason) => {
                                slot.status = TargetStatus::Unreachable;
                                slot.error = Some(reason);
                            }
                        }
                    }
                }
                // A panic while resolving loses nothing silently: the target is unreachable
                // with reason `bug`. An abort (interrupt) leaves it `interrupted`.
                Some(Err(err)) if err.is_panic() => {
                    if let Some(slot) = ids.get(&err.id()).and_then(|i| targets.get_mut(*i)) {
                        slot.status = TargetStatus::Unreachable;
                        slot.error = Some(Reason::new(ReasonKind::Bug, format!("resolving the target panicked: {}", super::collect::panic_message(err))));
                    }
                }
                Some(Err(_)) => {}
            },
        }
    }
    Reached {
        targets,
        reached,
        interrupted,
    }
}

fn display_addr(target: &Target, addr: &SocketAddr) -> String {
    if target.port().is_some() {
        addr.to_string()
    } else {
        addr.ip().to_string()
    }
}

/// Resolve a target once and, when it names a port, connect to it once.
pub async fn connect(
    target: &Target,
    settings: &Settings,
    dns: &dns::Dns,
) -> Result<Vec<SocketAddr>, Reason> {
    let addrs = resolve(target, settings, dns).await?;
    let Some(_port) = target.port() else {
        return Ok(addrs);
    };
    let tried: Vec<SocketAddr> = addrs
        .iter()
        .take(MAX_ADDRESSES_TRIED as usize)
        .copied()
        .collect();
    let stream = net::connect(&tried, settings.timeout).await?;
    let used = stream.peer_addr().ok();
    drop(stream);
    // Put the address that answered first.
    let mut ordered = addrs;
    if let Some(used) = used {
        ordered.retain(|a| *a != used);
        ordered.insert(0, used);
    }
    Ok(ordered)
}

/// Resolve a target: IP literal, then `--resolve` (target's own, then scan-wide), then the
/// scan's resolver, bounded by the timeout. A CIDR range has no single address: its family
/// expands it.
pub async fn resolve(
    target: &Target,
    settings: &Settings,
    dns: &dns::Dns,
) -> Result<Vec<SocketAddr>, Reason> {
    let port = target.port().unwrap_or(0);
    if let crate::target::TargetKind::Cidr { .. } = target.kind {
        return Ok(Vec::new());
    }
    if let Some(ip) = target.ip_literal() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host = normalise_host(&target.host());
    let entry = target
        .resolve
        .iter()
        .find(|e| e.host == host && (target.port().is_none() || e.port == port))
        .or_else(|| settings.resolve.find(&host, target.port()));
    if let Some(entry) = entry {
        return Ok(entry
            .addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect());
    }
    dns.lookup_ip(&host, port).await
}
