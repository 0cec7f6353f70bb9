//! The orchestrator: resolves targets, runs every applicable check family on every reachable
//! target concurrently, and collects the outcomes.
//!
//! 1. **Connectivity**: each target is resolved once (`--resolve` first, then the scan's
//!    resolver, [`dns`]: `--dns-server` or the system's) and, when it names a port, connected
//!    to once. A target that fails gets one target-level status (`unreachable`) instead of a
//!    pile of errored checks (as sslyze does); only families that need no address (the dns
//!    family, which judges a name that does not resolve) still run on a name that failed.
//! 2. **Checks**: each (target, family) pair is one task on a [`JoinSet`], under a global
//!    semaphore (`--concurrency`) and a per-host connection semaphore (`per_host`). A task
//!    that panics or overruns its deadline yields `inconclusive` results (reason `bug` or
//!    `timeout`) for its rules; the other tasks carry on.
//! 3. **Interruption**: when the interrupt future fires (Ctrl-C), running tasks are aborted,
//!    their rules are recorded as `inconclusive` (reason `interrupted`) and the result is
//!    marked incomplete, so reports can still be written.

pub mod dns;
pub mod limits;
pub mod net;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::checks::{self, Check};
use crate::endpoint::Secret;
use crate::model::{Emitter, Outcome, Reason, ReasonKind};
use crate::policy::Policy;
use crate::target::{ResolveEntry, Target};

/// Scan-wide settings, after merging the config file and the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Timeout of each network operation (connect, TLS handshake, read).
    pub timeout: Duration,
    /// (target, family) tasks running at once.
    pub concurrency: usize,
    /// Connections to one host at once.
    pub per_host: usize,
    /// Redirects followed per fetch.
    pub max_redirects: u32,
    /// Plain-HTTP port probed for https:// targets.
    pub http_port: u16,
    /// Skip certificate verification for HTTP probes (the TLS family still judges certificates).
    pub insecure: bool,
    /// Extra trust anchors (`--ca-file`).
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// Scan-wide `--resolve` overrides.
    pub resolve: Vec<ResolveEntry>,
    /// `tls.cert.expiring_soon` fails when a certificate expires within this many days.
    pub cert_expiry_days: u32,
    /// Cap on secgate's own HTTP requests per second over the whole scan (`--max-rps`).
    pub max_rps: Option<f64>,
    /// `--ports`: the port list for targets without their own.
    pub ports: Option<crate::checks::ports::PortSpec>,
    /// `--allowed-ports`: ports allowed open on targets without their own list.
    pub allowed_ports: Option<Vec<u16>>,
    /// Sockets in flight during a port sweep (lowered to fit the open-file limit).
    pub port_concurrency: usize,
    /// `--dns-server`: the DNS server for every lookup (default: the system's resolver).
    pub dns_server: Option<SocketAddr>,
    /// `--mail-domain`: names checked for SPF and DMARC with every target the dns family runs on.
    pub mail_domains: Vec<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timeout: Duration::from_secs(5),
            concurrency: 64,
            per_host: 8,
            max_redirects: 5,
            http_port: 80,
            insecure: false,
            ca_certs: Vec::new(),
            resolve: Vec::new(),
            cert_expiry_days: 30,
            max_rps: None,
            ports: None,
            allowed_ports: None,
            port_concurrency: crate::checks::ports::DEFAULT_PORT_CONCURRENCY,
            dns_server: None,
            mail_domains: Vec::new(),
        }
    }
}

/// Everything a scan needs, validated.
#[derive(Clone, Debug)]
pub struct ScanPlan {
    /// Targets in the order given.
    pub targets: Vec<Target>,
    /// Families requested for all targets; empty means every family that applies.
    pub families: Vec<&'static str>,
    /// Settings.
    pub settings: Settings,
    /// Gate thresholds.
    pub policy: Policy,
    /// The config file, when one was used.
    pub config_path: Option<PathBuf>,
    /// Every credential loaded for the scan; outcomes are scrubbed of them.
    pub secrets: Vec<Secret>,
}

/// The hosts a scan may talk to, and where they are.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    hosts: HashSet<String>,
    addrs: Vec<(String, SocketAddr)>,
}

impl Scope {
    /// Whether redirects may go to `host` (it is the host of one of the scan's targets).
    pub fn allows(&self, host: &str) -> bool {
        self.hosts.contains(&normalise_host(host))
    }

    /// Name → address pairs for HTTP clients, so that each name is resolved only once.
    pub fn addrs(&self) -> &[(String, SocketAddr)] {
        &self.addrs
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Shared state of a running scan, handed to every check.
#[derive(Debug)]
pub struct ScanCx {
    /// Settings.
    pub settings: Settings,
    /// Concurrency limits.
    pub limits: Arc<limits::Limits>,
    /// TLS configuration for HTTP clients.
    pub tls: Arc<rustls::ClientConfig>,
    /// Hosts in scope.
    pub scope: Scope,
    /// The `--max-rps` limiter, if any.
    pub pacer: Option<Pacer>,
    /// Certificate failures let through by `--insecure`, by server name.
    pub cert_failures: Arc<net::CertFailures>,
    /// The scan's resolver.
    pub dns: dns::Dns,
}

/// A request-rate limiter (governor's direct limiter, no burst).
pub type Pacer = governor::DefaultDirectRateLimiter;

/// A limiter that lets `rps` requests per second through, evenly spaced (burst of one).
pub fn pacer(rps: f64) -> Pacer {
    let period = Duration::from_secs_f64(1.0 / rps.max(0.001));
    let quota = governor::Quota::with_period(period)
        .unwrap_or_else(|| governor::Quota::per_second(std::num::NonZeroU32::MIN))
        .allow_burst(std::num::NonZeroU32::MIN);
    governor::RateLimiter::direct(quota)
}

impl ScanCx {
    /// Why the certificate of `host` failed verification, when `--insecure` let it through.
    pub fn cert_failure(&self, host: &str) -> Option<String> {
        let host = normalise_host(host);
        self.cert_failures
            .lock()
            .ok()
            .and_then(|m| m.get(&host).cloned())
    }

    /// Wait until the scan-wide `--max-rps` allows one more request.
    pub async fn pace(&self) {
        if let Some(p) = &self.pacer {
            p.until_ready().await;
        }
    }

    /// HTTP client options for `target`.
    pub fn http_options(&self, target: &ScanTarget) -> net::HttpOptions {
        // Port 0: reqwest then uses the URL's port (explicit or the scheme's default). Every
        // host of the scan maps to where it was reached; the target's own host maps to the
        // address this target was reached at (last, so it wins when two targets share a name
        // with different --resolve entries).
        let mut resolve: Vec<(String, SocketAddr)> = self
            .scope
            .addrs()
            .iter()
            .map(|(host, addr)| (host.clone(), SocketAddr::new(addr.ip(), 0)))
            .collect();
        if let (None, Some(addr)) = (target.target.ip_literal(), target.addrs.first()) {
            resolve.push((
                normalise_host(&target.target.host()),
                SocketAddr::new(addr.ip(), 0),
            ));
        }
        net::HttpOptions {
            timeout: self.settings.timeout,
            tls: self.tls.clone(),
            resolve,
            pool_idle: 1,
        }
    }

    /// HTTP options for reaching `target`'s host on another `port` (the plain-HTTP probe): a
    /// `--resolve` entry for exactly that host and port wins, as in curl.
    pub fn http_options_for_port(&self, target: &ScanTarget, port: u16) -> net::HttpOptions {
        let mut opts = self.http_options(target);
        let host = normalise_host(&target.target.host());
        let entry = target
            .target
            .resolve
            .iter()
            .chain(self.settings.resolve.iter())
            .find(|e| e.host == host && e.port == port);
        if let Some(ip) = entry.and_then(|e| e.addrs.first()) {
            opts.resolve.push((host, SocketAddr::new(*ip, 0)));
        }
        opts
    }

    /// The key under which connections to `target` are limited: its address, else its name.
    pub fn host_key(&self, host: &str) -> String {
        let host = normalise_host(host);
        self.scope
            .addrs
            .iter()
            .find(|(name, _)| *name == host)
            .map_or(host, |(_, addr)| addr.ip().to_string())
    }
}

/// A target that passed the connectivity phase.
#[derive(Clone, Debug)]
pub struct ScanTarget {
    /// The target.
    pub target: Target,
    /// Where it was reached (first working address first).
    pub addrs: Vec<SocketAddr>,
}

/// What happened to a target as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetStatus {
    /// Reached and scanned (its results say how each check went).
    Scanned,
    /// Not resolved or not reachable; no check ran.
    Unreachable,
    /// The scan was interrupted before the target was done.
    Interrupted,
}

/// Per-target summary for reports.
#[derive(Clone, Debug, Serialize)]
pub struct TargetResult {
    /// Target id.
    pub target: String,
    /// The address used, when resolved.
    pub address: Option<String>,
    /// What happened.
    pub status: TargetStatus,
    /// Why it was not scanned.
    pub error: Option<Reason>,
}

/// The raw outcome of a scan, before scoring.
#[derive(Clone, Debug)]
pub struct ScanResult {
    /// When the scan started.
    pub started_at: OffsetDateTime,
    /// When it finished.
    pub finished_at: OffsetDateTime,
    /// False when interrupted.
    pub complete: bool,
    /// One entry per target, in plan order.
    pub targets: Vec<TargetResult>,
    /// Every outcome, sorted by target (plan order), then catalogue order.
    pub outcomes: Vec<Outcome>,
}

/// Run `plan` until done or until `interrupt` completes.
pub async fn run(plan: &ScanPlan, interrupt: impl Future<Output = ()>) -> ScanResult {
    let started_at = OffsetDateTime::now_utc();
    let settings = plan.settings.clone();
    tokio::pin!(interrupt);
    let mut interrupted = false;

    // Phase 1: connectivity.
    let mut targets: Vec<TargetResult> = plan
        .targets
        .iter()
        .map(|t| TargetResult {
            target: t.id.clone(),
            address: None,
            status: TargetStatus::Interrupted,
            error: None,
        })
        .collect();
    let mut reached: Vec<Option<ScanTarget>> = vec![None; plan.targets.len()];
    let limits = Arc::new(limits::Limits::new(settings.concurrency, settings.per_host));
    let resolver = dns::Dns::new(settings.dns_server, settings.timeout);
    {
        let mut set = JoinSet::new();
        let mut ids: HashMap<tokio::task::Id, usize> = HashMap::new();
        for (i, target) in plan.targets.iter().enumerate() {
            let target = target.clone();
            let settings = settings.clone();
            let limits = limits.clone();
            let resolver = resolver.clone();
            let handle = set.spawn(async move {
                let _task = limits.task().await;
                let _conn = limits.connection(&normalise_host(&target.host())).await;
                // Resolution and every address tried are bounded; this bounds them together.
                let deadline = settings.timeout.saturating_mul(2 + MAX_ADDRESSES_TRIED);
                let result = match tokio::time::timeout(
                    deadline,
                    connectivity(&target, &settings, &resolver),
                )
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
                () = &mut interrupt, if !interrupted => {
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
                            slot.error = Some(Reason::new(ReasonKind::Bug, format!("resolving the target panicked: {}", panic_message(err))));
                        }
                    }
                    Some(Err(_)) => {}
                },
            }
        }
    }

    // Phase 2: checks.
    let mut scope = Scope::default();
    for t in &plan.targets {
        scope.hosts.insert(normalise_host(&t.host()));
    }
    for st in reached.iter().flatten() {
        if let (None, Some(addr)) = (st.target.ip_literal(), st.addrs.first()) {
            let host = normalise_host(&st.target.host());
            if !scope.addrs.iter().any(|(h, _)| *h == host) {
                scope.addrs.push((host, *addr));
            }
        }
    }
    let cert_failures = Arc::new(net::CertFailures::default());
    let cx = Arc::new(ScanCx {
        tls: net::tls_config(&settings.ca_certs, settings.insecure, cert_failures.clone()),
        cert_failures,
        limits: limits.clone(),
        settings: settings.clone(),
        scope,
        pacer: settings.max_rps.map(pacer),
        dns: resolver,
    });

    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    let mut pending: HashMap<tokio::task::Id, (usize, Vec<&'static dyn Check>)> = HashMap::new();
    let mut set: JoinSet<(usize, Vec<Outcome>)> = JoinSet::new();
    for (i, st) in reached.iter().enumerate() {
        // A name that did not resolve still gets the families that need no address.
        let unresolved = match (st, targets.get(i), plan.targets.get(i)) {
            (None, Some(t), Some(target))
                if t.status == TargetStatus::Unreachable
                    && t.error.as_ref().is_some_and(|r| r.kind == ReasonKind::Dns) =>
            {
                Some(ScanTarget {
                    target: target.clone(),
                    addrs: Vec::new(),
                })
            }
            _ => None,
        };
        let Some(st) = st.as_ref().or(unresolved.as_ref()) else {
            continue;
        };
        // Exclusive families (bursts, failed logins) run one after another on a target so that
        // one's traffic does not skew another's measurements; the others run concurrently.
        let mut groups: Vec<Vec<&'static dyn Check>> = Vec::new();
        let mut exclusive: Vec<&'static dyn Check> = Vec::new();
        for (check, applies) in selected_checks(plan, &st.target) {
            if unresolved.is_some() && (!applies || !check.runs_without_address()) {
                continue;
            }
            if !applies {
                let mut out = Emitter::new(check.family(), st.target.id.clone());
                for id in check.rule_ids() {
                    out.skipped(
                        id,
                        format!(
                            "the {} family does not apply to this target",
                            check.family()
                        ),
                    );
                }
                outcomes.extend(out.finish().into_iter().map(|o| (i, o)));
            } else if interrupted {
                outcomes.extend(
                    unfinished(check, &st.target.id, &interrupted_reason()).map(|o| (i, o)),
                );
            } else if check.exclusive(&st.target) {
                exclusive.push(check);
            } else {
                groups.push(vec![check]);
            }
        }
        if !exclusive.is_empty() {
            groups.push(exclusive);
        }
        for group in groups {
            let cx = cx.clone();
            let st = st.clone();
            let checks = group.clone();
            let handle = set.spawn(async move {
                let _permit = cx.limits.task().await;
                // At most `per_host` families run on one host at once, and a family's deadline
                // starts only once it holds its slot, so queueing never looks like a timeout.
                let _host = cx.limits.host_task(&cx.host_key(&st.target.host())).await;
                let mut all = Vec::new();
                for check in checks {
                    all.extend(run_check(&cx, check, &st).await);
                }
                (i, all)
            });
            pending.insert(handle.id(), (i, group));
        }
    }
    loop {
        tokio::select! {
            biased;
            () = &mut interrupt, if !interrupted => {
                interrupted = true;
                set.abort_all();
            }
            next = set.join_next_with_id() => match next {
                None => break,
                Some(Ok((id, (i, list)))) => {
                    pending.remove(&id);
                    outcomes.extend(list.into_iter().map(|o| (i, o)));
                }
                Some(Err(err)) => {
                    let Some((i, checks)) = pending.remove(&err.id()) else { continue };
                    let target_id = plan.targets.get(i).map(|t| t.id.clone()).unwrap_or_default();
                    let families: Vec<&str> = checks.iter().map(|c| c.family()).collect();
                    let reason = if err.is_panic() {
                        Reason::new(ReasonKind::Bug, format!("the {} checks panicked: {}", families.join("/"), panic_message(err)))
                    } else {
                        interrupted_reason()
                    };
                    for check in checks {
                        outcomes.extend(unfinished(check, &target_id, &reason).map(|o| (i, o)));
                    }
                }
            },
        }
    }
    if interrupted {
        for t in &mut targets {
            if t.status == TargetStatus::Scanned
                && outcomes.iter().any(|(_, o)| {
                    o.target == t.target
                        && o.reason
                            .as_ref()
                            .is_some_and(|r| r.kind == ReasonKind::Interrupted)
                })
            {
                t.status = TargetStatus::Interrupted;
            }
        }
    }

    for (_, o) in &mut outcomes {
        o.redact(&plan.secrets);
    }
    outcomes.sort_by_key(|(i, o)| (*i, crate::catalogue::index(o.rule_id).unwrap_or(usize::MAX)));
    ScanResult {
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        complete: !interrupted,
        targets,
        outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
    }
}

/// Run one family on one target under its deadline, completing its outcome list.
async fn run_check(cx: &ScanCx, check: &'static dyn Check, st: &ScanTarget) -> Vec<Outcome> {
    use futures::FutureExt as _;
    let deadline = check.deadline(&cx.settings, &st.target);
    // A panic inside a family is caught here, so that it costs only that family's results.
    let guarded = std::panic::AssertUnwindSafe(check.run(cx, st)).catch_unwind();
    match tokio::time::timeout(deadline, guarded).await {
        Ok(Ok(outcomes)) => complete_outcomes(check, &st.target.id, outcomes),
        Ok(Err(payload)) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            unfinished(
                check,
                &st.target.id,
                &Reason::new(
                    ReasonKind::Bug,
                    format!("the {} checks panicked: {message}", check.family()),
                ),
            )
            .collect()
        }
        Err(_) => unfinished(
            check,
            &st.target.id,
            &Reason::new(
                ReasonKind::Timeout,
                format!(
                    "the {} checks did not finish within {}",
                    check.family(),
                    net::secs(deadline)
                ),
            ),
        )
        .collect(),
    }
}

fn interrupted_reason() -> Reason {
    Reason::new(
        ReasonKind::Interrupted,
        "the scan was interrupted before this was evaluated",
    )
}

fn panic_message(err: tokio::task::JoinError) -> String {
    match err.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into()),
        Err(e) => e.to_string(),
    }
}

/// How long one family may take on one target before it is cut off. Each network operation
/// is bounded by the timeout already; this is the safety net above them.
pub fn check_deadline(settings: &Settings) -> Duration {
    let requests = 2 * (u64::from(settings.max_redirects) + 1) + 4;
    net::request_deadline(settings.timeout)
        .saturating_mul(u32::try_from(requests).unwrap_or(u32::MAX))
}

/// The checks to run on `target`, each with whether it applies.
fn selected_checks(plan: &ScanPlan, target: &Target) -> Vec<(&'static dyn Check, bool)> {
    let requested: &[&'static str] = target.families.as_deref().unwrap_or(&plan.families);
    checks::CHECKS
        .iter()
        .copied()
        .filter_map(|check| {
            if requested.is_empty() {
                check
                    .applies_with(target, &plan.settings)
                    .then_some((check, true))
            } else if requested.contains(&check.family()) {
                // Asked for by name: run it wherever it can run, not only where it runs by
                // default (e.g. TLS on host:5432).
                Some((check, check.can_run(target, &plan.settings)))
            } else {
                None
            }
        })
        .collect()
}

/// Make sure every rule of `check` has exactly one outcome: drop duplicates, and record a rule
/// the check forgot as an inconclusive bug rather than silently leaving it out of the score.
fn complete_outcomes(check: &dyn Check, target: &str, outcomes: Vec<Outcome>) -> Vec<Outcome> {
    let mut seen = HashSet::new();
    let mut out: Vec<Outcome> = outcomes
        .into_iter()
        .filter(|o| seen.insert(o.rule_id))
        .collect();
    let mut missing = Emitter::new(check.family(), target);
    for id in check.rule_ids() {
        if !seen.contains(id) {
            missing.inconclusive(
                id,
                &Reason::new(
                    ReasonKind::Bug,
                    format!("the {} checks did not report {id}", check.family()),
                ),
            );
        }
    }
    out.extend(missing.finish());
    out
}

/// Inconclusive outcomes for every rule of a check that did not finish.
fn unfinished(check: &dyn Check, target: &str, reason: &Reason) -> impl Iterator<Item = Outcome> {
    let mut out = Emitter::new(check.family(), target);
    for id in check.rule_ids() {
        out.inconclusive(id, reason);
    }
    out.finish().into_iter()
}

fn display_addr(target: &Target, addr: &SocketAddr) -> String {
    if target.port().is_some() {
        addr.to_string()
    } else {
        addr.ip().to_string()
    }
}

/// At most this many addresses of one name are tried by the connectivity check.
pub const MAX_ADDRESSES_TRIED: u32 = 4;

/// Resolve a target once and, when it names a port, connect to it once.
pub async fn connectivity(
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
        .chain(settings.resolve.iter())
        .find(|e| e.host == host && (target.port().is_none() || e.port == port));
    if let Some(entry) = entry {
        return Ok(entry
            .addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect());
    }
    dns.lookup_ip(&host, port).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Check;
    use futures::future::BoxFuture;

    struct Panics;
    struct Sleeps;

    impl Check for Panics {
        fn family(&self) -> &'static str {
            "headers"
        }
        fn summary(&self) -> &'static str {
            "panics"
        }
        fn rule_ids(&self) -> &'static [&'static str] {
            &["headers.hsts.missing", "headers.xcto.missing"]
        }
        fn applies_to(&self, _: &Target) -> bool {
            true
        }
        #[allow(clippy::panic, reason = "the point of the test")]
        fn run<'a>(&'a self, _: &'a ScanCx, _: &'a ScanTarget) -> BoxFuture<'a, Vec<Outcome>> {
            Box::pin(async { panic!("boom") })
        }
    }

    impl Check for Sleeps {
        fn family(&self) -> &'static str {
            "headers"
        }
        fn summary(&self) -> &'static str {
            "sleeps"
        }
        fn rule_ids(&self) -> &'static [&'static str] {
            &["headers.hsts.missing"]
        }
        fn applies_to(&self, _: &Target) -> bool {
            true
        }
        fn deadline(&self, _: &Settings, _: &Target) -> Duration {
            Duration::from_millis(50)
        }
        fn run<'a>(&'a self, _: &'a ScanCx, _: &'a ScanTarget) -> BoxFuture<'a, Vec<Outcome>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Vec::new()
            })
        }
    }

    fn cx() -> ScanCx {
        let settings = Settings::default();
        ScanCx {
            tls: net::tls_config(&[], false, Arc::default()),
            limits: Arc::new(limits::Limits::new(4, 4)),
            settings,
            scope: Scope::default(),
            pacer: None,
            cert_failures: Arc::default(),
            dns: dns::Dns::new(None, Duration::from_secs(1)),
        }
    }

    fn target() -> ScanTarget {
        ScanTarget {
            target: Target::parse("https://a.test/").unwrap(),
            addrs: vec!["127.0.0.1:443".parse().unwrap()],
        }
    }

    #[tokio::test]
    async fn a_panicking_family_costs_only_its_own_rules() {
        static PANICS: Panics = Panics;
        let out = run_check(&cx(), &PANICS, &target()).await;
        assert_eq!(out.len(), 2);
        for o in out {
            assert_eq!(o.status, crate::model::Status::Inconclusive);
            let r = o.reason.unwrap();
            assert_eq!(r.kind, ReasonKind::Bug);
            assert!(r.detail.contains("panicked: boom"), "{}", r.detail);
        }
    }

    #[tokio::test]
    async fn a_family_past_its_deadline_is_cut_off() {
        static SLEEPS: Sleeps = Sleeps;
        let started = std::time::Instant::now();
        let out = run_check(&cx(), &SLEEPS, &target()).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].reason.as_ref().unwrap().kind, ReasonKind::Timeout);
    }

    #[tokio::test]
    async fn a_forgotten_rule_is_reported_as_a_bug() {
        struct Forgets;
        impl Check for Forgets {
            fn family(&self) -> &'static str {
                "headers"
            }
            fn summary(&self) -> &'static str {
                "forgets"
            }
            fn rule_ids(&self) -> &'static [&'static str] {
                &["headers.hsts.missing", "headers.xcto.missing"]
            }
            fn applies_to(&self, _: &Target) -> bool {
                true
            }
            fn run<'a>(&'a self, _: &'a ScanCx, _: &'a ScanTarget) -> BoxFuture<'a, Vec<Outcome>> {
                Box::pin(async {
                    let mut e = Emitter::new("headers", "https://a.test/");
                    e.pass("headers.hsts.missing", "ok", crate::model::Evidence::none());
                    e.pass(
                        "headers.hsts.missing",
                        "twice",
                        crate::model::Evidence::none(),
                    );
                    e.finish()
                })
            }
        }
        static FORGETS: Forgets = Forgets;
        let out = run_check(&cx(), &FORGETS, &target()).await;
        assert_eq!(out.len(), 2, "duplicates dropped, the missing rule added");
        assert_eq!(out[1].rule_id, "headers.xcto.missing");
        assert_eq!(out[1].reason.as_ref().unwrap().kind, ReasonKind::Bug);
    }
}
