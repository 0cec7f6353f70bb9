//! The scan context and the one network facade every family talks through.
//!
//! [`ScanCx`] is the state a scan shares: settings, limits, the TLS configuration, the one
//! HTTP client pool, the resolver, the hosts in scope, and the request counters. A family
//! sees it only through a [`Cx`]: its view for one target, whose methods send HTTP requests
//! ([`Cx::http`]), open TCP connections ([`Cx::connect`]) and ask DNS ([`Cx::query`]), each
//! under the host's connection permit, the host-wide back-off, `--max-rps` pacing, the
//! timeouts and byte caps, and the request budget: the family's own (from its catalogue
//! entry and options) and `--max-requests` for the target. Every request is counted, by
//! target and family, for the report. One family keeps its own schedule instead (the load
//! family's open-model generator): [`Cx::reserve`] takes its whole run from the budget up
//! front, and documents what it keeps and what it leaves to the caller.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use url::Url;

use super::dns::{Answer, Dns, QueryError};
use super::http::HttpPool;
use super::limits::Limits;
use super::net::{self, Exchange, FetchError};
use crate::options::{OptionSet, Options};
use crate::plan::Settings;
use crate::target::Target;
use hickory_resolver::proto::rr::RecordType;

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

/// `host` as the scan keys it: lower case, no brackets, no trailing dot.
pub fn normalise_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// The hosts a scan may talk to, and where they are.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    hosts: HashSet<String>,
    addrs: HashMap<String, IpAddr>,
    ranges: Vec<(IpAddr, u8)>,
}

impl Scope {
    /// Whether redirects may go to `host`: it is the host of one of the scan's targets, or an
    /// address inside one of its ranges (the addresses the plan covers).
    pub fn allows(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.hosts.contains(&host)
            || host.parse::<IpAddr>().is_ok_and(|ip| {
                self.ranges
                    .iter()
                    .any(|(n, p)| super::chain::contains(*n, *p, ip))
            })
    }

    /// Add a range target's addresses.
    pub fn add_range(&mut self, network: IpAddr, prefix: u8) {
        self.ranges.push((network, prefix));
    }

    /// Add a target's host, and where it was reached (the first target to reach a name wins).
    pub fn add(&mut self, host: &str, reached: Option<IpAddr>) {
        let host = normalise_host(host);
        if let Some(ip) = reached
            && host.parse::<IpAddr>().is_err()
        {
            self.addrs.entry(host.clone()).or_insert(ip);
        }
        self.hosts.insert(host);
    }

    /// Where a name of the scan was reached.
    pub fn address_of(&self, host: &str) -> Option<IpAddr> {
        self.addrs.get(&normalise_host(host)).copied()
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

/// Requests sent to one target, by family.
#[derive(Debug, Default)]
pub struct Counters {
    total: AtomicU32,
    by_family: Mutex<BTreeMap<&'static str, u32>>,
    /// A derived target's: its parent's counters, whose `--max-requests` it shares.
    parent: Option<Arc<Counters>>,
}

impl Counters {
    fn add(&self, family: &'static str) {
        self.add_n(family, 1);
    }

    /// The counters `--max-requests` is judged on: the parent's for a derived target.
    fn budget(&self) -> &Counters {
        self.parent.as_deref().unwrap_or(self)
    }

    /// Count `n` requests of `family` (negative: give back reserved requests never sent).
    fn add_n(&self, family: &'static str, n: i64) {
        let mut m = match self.by_family.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let by = u32::try_from(n.unsigned_abs()).unwrap_or(u32::MAX);
        let entry = m.entry(family).or_default();
        if n >= 0 {
            self.total.fetch_add(by, Ordering::Relaxed);
            if let Some(p) = &self.parent {
                p.total.fetch_add(by, Ordering::Relaxed);
            }
            *entry = entry.saturating_add(by);
        } else {
            let by = by.min(*entry);
            self.total.fetch_sub(by, Ordering::Relaxed);
            if let Some(p) = &self.parent {
                p.total.fetch_sub(by, Ordering::Relaxed);
            }
            *entry -= by;
        }
    }

    /// Requests by family.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u32> {
        match self.by_family.lock() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Shared state of a running scan.
#[derive(Debug)]
pub struct ScanCx {
    /// Settings.
    pub settings: Settings,
    /// Concurrency limits and the host-wide back-off.
    pub limits: Arc<Limits>,
    /// TLS configuration of the HTTP client (trust anchors, `--insecure`).
    pub tls: Arc<rustls::ClientConfig>,
    /// Hosts in scope.
    pub scope: Scope,
    pacer: Option<Pacer>,
    /// Certificate failures let through by `--insecure`, by server name.
    pub cert_failures: Arc<net::CertFailures>,
    /// The scan's resolver.
    pub dns: Dns,
    http: HttpPool,
    /// By target index: the plan's targets, then derived targets as they are added.
    counters: std::sync::RwLock<Vec<Arc<Counters>>>,
    sweeps: tokio::sync::Semaphore,
    /// Scan-level family options (a target's own are on the target).
    pub options: OptionSet,
}

impl ScanCx {
    /// The context for a scan of `targets` (in plan order) whose hosts are in `scope`.
    pub fn new(
        settings: Settings,
        limits: Arc<Limits>,
        scope: Scope,
        dns: Dns,
        targets: usize,
        options: OptionSet,
    ) -> Result<ScanCx, crate::model::Reason> {
        let cert_failures = Arc::new(net::CertFailures::default());
        let tls = net::tls_config(&settings.ca_certs, settings.insecure, cert_failures.clone());
        let http = HttpPool::new(
            scope.addrs.clone(),
            settings.timeout,
            tls.clone(),
            settings.per_host,
            settings.proxy.clone(),
        )?;
        Ok(ScanCx {
            pacer: settings.max_rps.map(pacer),
            settings,
            limits,
            tls,
            scope,
            cert_failures,
            dns,
            http,
            counters: std::sync::RwLock::new(
                (0..targets)
                    .map(|_| Arc::new(Counters::default()))
                    .collect(),
            ),
            sweeps: tokio::sync::Semaphore::new(1),
            options,
        })
    }

    /// Requests sent to target `index`, by family.
    pub fn requests(&self, index: usize) -> BTreeMap<&'static str, u32> {
        self.counter(index)
            .map(|c| c.snapshot())
            .unwrap_or_default()
    }

    /// The request counters of target `index`.
    fn counter(&self, index: usize) -> Option<Arc<Counters>> {
        let list = match self.counters.read() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        list.get(index).cloned()
    }

    /// Add a derived target of target `parent` (its requests count toward the parent's
    /// `--max-requests` too); returns its index.
    pub fn add_target(&self, parent: usize) -> usize {
        let parent = self.counter(parent).map(|p| p.parent.clone().unwrap_or(p));
        let mut list = match self.counters.write() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        list.push(Arc::new(Counters {
            parent,
            ..Counters::default()
        }));
        list.len() - 1
    }

    /// The key under which connections to `host` are limited: its address, else its name.
    pub fn host_key(&self, host: &str) -> String {
        let host = normalise_host(host);
        match self.scope.address_of(&host) {
            Some(ip) => ip.to_string(),
            None => host,
        }
    }

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
}

/// One HTTP request through the facade.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// Method.
    pub method: reqwest::Method,
    /// URL.
    pub url: Url,
    /// Headers.
    pub headers: HeaderMap,
    /// Body, if any.
    pub body: Option<Vec<u8>>,
    /// Read the response body up to this many bytes (0: the head only).
    pub body_cap: usize,
    /// The request measures the host's rate limit: a back-off without `Retry-After` does not
    /// hold it (the rate-limit bursts stop at the first clear limit themselves).
    pub measuring: bool,
}

impl HttpRequest {
    /// A GET of `url`'s head.
    pub fn get(url: &Url) -> HttpRequest {
        HttpRequest {
            method: reqwest::Method::GET,
            url: url.clone(),
            headers: HeaderMap::new(),
            body: None,
            body_cap: 0,
            measuring: false,
        }
    }
}

/// Requests reserved at once by a family that schedules its own traffic ([`Cx::reserve`]).
#[derive(Debug)]
pub struct Reservation {
    requests: u32,
    /// Where the target was reached: the only addresses the traffic may go to.
    pub addrs: Vec<SocketAddr>,
}

impl Reservation {
    /// Requests reserved.
    pub fn requests(&self) -> u32 {
        self.requests
    }
}

/// One family's view of the scan, for one target.
#[derive(Debug)]
pub struct Cx<'a> {
    scan: &'a ScanCx,
    /// The family.
    pub family: &'static str,
    target: &'a ScanTarget,
    counter: Option<Arc<Counters>>,
    budget: u32,
    used: AtomicU32,
    secrets: Vec<String>,
    discovered: Mutex<Vec<super::chain::Discovered>>,
    slices: Mutex<Vec<crate::model::SliceOutput>>,
}

impl<'a> Cx<'a> {
    /// The view of `family` on target `index` of the plan, allowed `budget` requests.
    pub fn new(
        scan: &'a ScanCx,
        family: &'static str,
        target: &'a ScanTarget,
        index: usize,
        budget: u32,
    ) -> Cx<'a> {
        let secrets = target
            .target
            .endpoints
            .iter()
            .flat_map(crate::endpoint::Endpoint::secrets)
            .filter_map(|s| s.get().map(|v| v.expose().to_string()))
            .collect();
        Cx {
            scan,
            family,
            target,
            counter: scan.counter(index),
            budget,
            used: AtomicU32::new(0),
            secrets,
            discovered: Mutex::new(Vec::new()),
            slices: Mutex::new(Vec::new()),
        }
    }

    /// Record what one slice of a sliced sweep observed ([`super::Family::sliceable`]).
    pub fn record_slice(&self, out: crate::model::SliceOutput) {
        match self.slices.lock() {
            Ok(mut l) => l.push(out),
            Err(poisoned) => poisoned.into_inner().push(out),
        }
    }

    /// The slices recorded with [`Cx::record_slice`].
    pub fn take_slices(&self) -> Vec<crate::model::SliceOutput> {
        match self.slices.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// Report a service found on an open port, for the chain stage to audit
    /// ([`super::chain`]).
    pub fn discovered(&self, found: super::chain::Discovered) {
        match self.discovered.lock() {
            Ok(mut l) => l.push(found),
            Err(poisoned) => poisoned.into_inner().push(found),
        }
    }

    /// The services reported with [`Cx::discovered`].
    pub fn take_discovered(&self) -> Vec<super::chain::Discovered> {
        match self.discovered.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// The target.
    pub fn target(&self) -> &'a ScanTarget {
        self.target
    }

    /// The engine settings.
    pub fn settings(&self) -> &'a Settings {
        &self.scan.settings
    }

    /// The scan context (limits, scope, TLS configuration).
    pub fn scan(&self) -> &'a ScanCx {
        self.scan
    }

    /// This family's options for this target (its defaults when none were parsed).
    pub fn options<T: Options>(&self) -> T {
        self.target
            .target
            .options
            .get::<T>(self.family)
            .or_else(|| self.scan.options.get::<T>(self.family))
            .cloned()
            .unwrap_or_default()
    }

    /// The budget of this family on this target.
    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// Requests this family sent to this target so far.
    pub fn sent(&self) -> u32 {
        self.used.load(Ordering::Relaxed)
    }

    /// Spend one request of the budget, or say why not.
    fn spend(&self) -> Result<(), crate::model::Reason> {
        use crate::model::{Reason, ReasonKind};
        let used = self.used.fetch_add(1, Ordering::Relaxed);
        if used >= self.budget {
            self.used.fetch_sub(1, Ordering::Relaxed);
            return Err(Reason::new(
                ReasonKind::Budget,
                format!(
                    "the {} family's request budget for this target ({}) is spent",
                    self.family, self.budget
                ),
            ));
        }
        if let (Some(cap), Some(c)) = (self.scan.settings.max_requests, &self.counter)
            && c.budget().total.load(Ordering::Relaxed) >= cap
        {
            self.used.fetch_sub(1, Ordering::Relaxed);
            return Err(Reason::new(
                ReasonKind::Budget,
                format!("--max-requests {cap} for this target is reached"),
            ));
        }
        if let Some(c) = &self.counter {
            c.add(self.family);
        }
        Ok(())
    }

    /// The address a request to `host:port` must reach, when it is not the scan's shared one:
    /// a `--resolve` entry for exactly that host and port (the target's, then the scan's), else
    /// the address this target was reached at, for its own host.
    fn address_for(&self, host: &str, port: u16) -> Option<IpAddr> {
        if host.parse::<IpAddr>().is_ok() {
            return None;
        }
        let t = &self.target.target;
        let entry = t
            .resolve
            .iter()
            .find(|e| e.host == host && e.port == port)
            .or_else(|| self.scan.settings.resolve.find(host, Some(port)));
        if let Some(ip) = entry.and_then(|e| e.addrs.first()) {
            return Some(*ip);
        }
        if t.ip_literal().is_none() && normalise_host(&t.host()) == host {
            return self.target.addrs.first().map(SocketAddr::ip);
        }
        None
    }

    /// Send one HTTP request and read its answer (the body up to `body_cap`), scrubbed of the
    /// target's credentials before anything reads it.
    pub async fn http(&self, req: HttpRequest) -> Result<Exchange, FetchError> {
        let fail = |reason| FetchError {
            reason,
            before_connect: true,
        };
        let host = normalise_host(req.url.host_str().unwrap_or_default());
        let port = req.url.port_or_known_default().unwrap_or(80);
        let key = self.scan.host_key(&host);
        let service = super::limits::backoff_key(&host, port);
        self.scan
            .limits
            .wait_backoff(&service, req.measuring, super::family::MAX_BACKOFF_WAIT)
            .await
            .map_err(fail)?;
        self.spend().map_err(fail)?;
        let client = self
            .scan
            .http
            .client(&host, self.address_for(&host, port))
            .map_err(fail)?;
        let _permit = self.scan.limits.connection(&key).await;
        self.scan.pace().await;
        let result = net::exchange(
            &client,
            req.method,
            &req.url,
            req.headers,
            req.body,
            self.scan.settings.timeout,
            req.body_cap,
        )
        .await;
        let mut answer = result?;
        let retry_after = answer
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.scan
            .limits
            .note_answer(&service, answer.status, retry_after.as_deref());
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        answer.scrub(&secrets);
        Ok(answer)
    }

    /// Reserve `requests` of the budget in one go, for a family that schedules its own
    /// traffic at `rate` requests per second on connections of its own: the load family's
    /// open-model generator, which must send at its scheduled times and so cannot take a
    /// connection permit and a pacing slot per request.
    ///
    /// This is the facade's one deliberate way around per-request permits and pacing. It keeps
    /// the other guarantees: the reservation is all-or-nothing against the family's budget and
    /// `--max-requests`, and counted up front; a `rate` above `--max-rps` is refused (reason
    /// `budget`), never slowed down behind the caller's back (that would skew its
    /// measurement); the host's back-off is waited out once first. The caller connects only to
    /// [`Reservation::addrs`] (where the target was reached), keeps its own timeouts and byte
    /// caps, and gives back what it did not send with [`Cx::settle`].
    pub async fn reserve(
        &self,
        requests: u32,
        rate: f64,
    ) -> Result<Reservation, crate::model::Reason> {
        use crate::model::{Reason, ReasonKind};
        let key = self.scan.host_key(&self.target.target.host());
        self.scan
            .limits
            .wait_backoff(&key, false, super::family::MAX_BACKOFF_WAIT)
            .await?;
        if let Some(cap) = self.scan.settings.max_rps
            && rate > cap
        {
            return Err(Reason::new(
                ReasonKind::Budget,
                format!(
                    "the {} family's rate ({rate}/s) is above --max-rps {cap}",
                    self.family
                ),
            ));
        }
        let used = self.used.load(Ordering::Relaxed);
        if used.saturating_add(requests) > self.budget {
            return Err(Reason::new(
                ReasonKind::Budget,
                format!(
                    "{requests} requests do not fit the {} family's request budget for this target ({} left of {})",
                    self.family,
                    self.budget.saturating_sub(used),
                    self.budget
                ),
            ));
        }
        if let (Some(cap), Some(c)) = (self.scan.settings.max_requests, &self.counter)
            && c.budget()
                .total
                .load(Ordering::Relaxed)
                .saturating_add(requests)
                > cap
        {
            return Err(Reason::new(
                ReasonKind::Budget,
                format!("{requests} requests do not fit --max-requests {cap} for this target"),
            ));
        }
        self.used.fetch_add(requests, Ordering::Relaxed);
        if let Some(c) = &self.counter {
            c.add_n(self.family, i64::from(requests));
        }
        Ok(Reservation {
            requests,
            addrs: self.target.addrs.clone(),
        })
    }

    /// Close a reservation that sent `sent` requests: the rest goes back to the budget and
    /// leaves the target's request count.
    pub fn settle(&self, reservation: Reservation, sent: u32) {
        let unsent = reservation.requests.saturating_sub(sent);
        self.used
            .fetch_sub(unsent.min(self.sent()), Ordering::Relaxed);
        if let Some(c) = &self.counter {
            c.add_n(self.family, -i64::from(unsent));
        }
    }

    /// Open one TCP connection to the first of `addrs` that accepts (one request of the
    /// budget), holding a connection permit of `host` for as long as the permit is kept.
    pub async fn connect(
        &self,
        host: &str,
        addrs: &[SocketAddr],
    ) -> Result<(TcpStream, Option<OwnedSemaphorePermit>), crate::model::Reason> {
        let key = self.scan.host_key(host);
        if let Some(addr) = addrs.first() {
            let service = super::limits::backoff_key(host, addr.port());
            self.scan
                .limits
                .wait_backoff(&service, false, super::family::MAX_BACKOFF_WAIT)
                .await?;
        }
        self.spend()?;
        let permit = self.scan.limits.connection(&key).await;
        self.scan.pace().await;
        let stream = net::connect(addrs, self.scan.settings.timeout).await?;
        Ok((stream, permit))
    }

    /// One DNS query through the scan's resolver (one request of the budget).
    pub async fn query(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<Answer, crate::model::Reason> {
        self.spend()?;
        self.scan.dns.query(name, rtype).await
    }

    /// One DNS query, keeping the response code and what the answer section held.
    pub async fn query_detailed(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<Answer, QueryError> {
        self.spend().map_err(|reason| QueryError {
            rcode: None,
            reason,
        })?;
        self.scan.dns.query_detailed(name, rtype).await
    }

    /// Wait for this scan's turn to sweep ports (sweeps take turns so that the sweep's
    /// socket bound holds for the whole scan). Sweep connects are counted by the sweep, not
    /// as requests.
    pub async fn sweep_turn(&self) -> Option<tokio::sync::SemaphorePermit<'a>> {
        self.scan.sweeps.acquire().await.ok()
    }
}
