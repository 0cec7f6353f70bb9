//! The open-model load generator: requests go out at a constant arrival rate (k6's
//! `constant-arrival-rate`, wrk2's `-R`), whatever the target's speed, so a slow answer cannot
//! slow the sender down and hide its own latency (coordinated omission).
//!
//! Request `i` of a phase is *scheduled* at `t0 + i / rate`. A pool of connection workers
//! (HTTP/1.1 keep-alive, one request in flight per connection) claims the next scheduled
//! request as soon as it is free and sends it at its scheduled time. Latency is measured from
//! the **scheduled** time (the corrected figure); the time from the actual send is kept too
//! (the uncorrected figure, what a closed-model tool reports).
//!
//! When the generator cannot keep the schedule, it says so:
//! - **schedule lag**: a free worker woke after the scheduled time (the client is CPU-bound,
//!   or the timer is coarse: tokio's timer ticks in milliseconds, so up to about 1 ms is
//!   normal). That lateness is the generator's, not the target's: it is recorded as schedule
//!   lag and not charged to the request's latency (which would put a millisecond of noise on
//!   every sub-millisecond answer); above a tolerance the latency rules are inconclusive;
//! - **waited**: every connection was busy at the scheduled time, so the request waited for
//!   one; the wait *is* charged to its latency (this is what the correction is for);
//! - **dropped iterations**: a request that could not start within the request timeout of its
//!   scheduled time is never sent, like k6's `dropped_iterations`.
//!
//! Latencies go into HdrHistograms (1 µs to 60 s, 3 significant digits), sharded so that
//! memory stays bounded however many connections a phase holds. Every connect, TLS handshake
//! and exchange has the scan's timeout, and every response body is read up to a cap.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::Full;
use rustls::pki_types::ServerName;
use tokio::task::JoinSet;

/// The most bytes of one response body read (the rest counts as an error, `too_large`).
pub const BODY_CAP: usize = 1 << 20;
/// Period of the generator's heartbeat timer (see [`PhaseStats::heartbeat`]).
const HEARTBEAT: Duration = Duration::from_millis(10);
/// Histogram shards per phase (workers share them round-robin).
const SHARDS: usize = 16;
/// Lowest and highest latency recorded, in microseconds.
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 60_000_000;

/// A latency histogram in microseconds: 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // The bounds are valid constants, so this cannot fail; fall back to auto-resizing.
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| empty_histogram())
}

#[allow(
    clippy::panic,
    reason = "3 significant digits is always a valid histogram"
)]
fn empty_histogram() -> Histogram<u64> {
    panic!("hdrhistogram rejected 3 significant digits")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .max(LOWEST_US)
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The TCP connect failed or timed out.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// No complete answer within the timeout.
    Timeout,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// The answer was not valid HTTP/1.1.
    Malformed,
    /// The body was larger than [`BODY_CAP`].
    TooLarge,
    /// A 4xx status.
    Status4xx,
    /// A 5xx status.
    Status5xx,
    /// This machine ran out of something (file descriptors, source ports): not the target's
    /// failure.
    Local,
    /// The server did not speak the protocol asked for (`http2 = true`: no `h2` in ALPN, or
    /// no HTTP/2 handshake).
    Protocol,
}

impl ErrorKind {
    /// Name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Malformed => "malformed",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Status4xx => "status_4xx",
            ErrorKind::Status5xx => "status_5xx",
            ErrorKind::Local => "local",
            ErrorKind::Protocol => "protocol",
        }
    }
}

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Addresses the target was reached at (the first that accepts is used).
    pub addrs: Vec<SocketAddr>,
    /// TLS configuration and server name, for https.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// Timeout of each connect, handshake and exchange.
    pub timeout: Duration,
    /// The request.
    pub request: RequestSpec,
    /// `--proxy`: every connection is a CONNECT tunnel through it.
    pub proxy: Option<Tunnel>,
    /// Several weighted templates in place of `request` ([`super::mix`]).
    pub mix: Option<Arc<super::mix::Mix>>,
    /// Counters for the progress line, when it is shown.
    pub live: Option<Arc<super::series::Live>>,
    /// HTTP/1.1, or HTTP/2 with its streams per connection.
    pub protocol: Protocol,
    /// Source addresses of the connections.
    pub sources: Sources,
}

impl Endpoint {
    /// The template of request `i` of a phase, and its index in the mix.
    pub fn pick(&self, i: u64) -> (usize, &RequestSpec) {
        self.mix
            .as_ref()
            .and_then(|m| m.pick(i))
            .unwrap_or((0, &self.request))
    }
}

/// An HTTP CONNECT tunnel: the proxy's address, the `host:port` asked for, and the
/// `Proxy-Authorization` value when the proxy URL carries credentials.
#[derive(Clone)]
pub struct Tunnel {
    /// The proxy.
    pub proxy: SocketAddr,
    /// `host:port` of the target.
    pub authority: String,
    /// `Basic ...` (a secret: never printed).
    pub authorization: Option<String>,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("proxy", &self.proxy)
            .field("authority", &self.authority)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// One request template. Built by [`RequestSpec::new`], which prepares the HTTP/1.1 bytes
/// once: change a template by building a new one (the bytes would not follow its fields).
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// Method.
    pub method: hyper::Method,
    /// Path and query.
    pub path: String,
    /// `Host` header value.
    pub host: String,
    /// Extra headers.
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    /// Body.
    pub body: Bytes,
    /// The HTTP/1.1 request as sent, prepared once (`None`: the path is not a valid
    /// request target).
    wire: Option<Bytes>,
    /// The template says `Connection: close`: its connection is not reused.
    closes: bool,
}

impl RequestSpec {
    /// A template, with its HTTP/1.1 bytes prepared.
    pub fn new(
        method: hyper::Method,
        path: String,
        host: String,
        headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
        body: Bytes,
    ) -> RequestSpec {
        let mut spec = RequestSpec {
            method,
            path,
            host,
            headers,
            body,
            wire: None,
            closes: false,
        };
        spec.wire = spec.http1_bytes().map(Bytes::from);
        spec.closes = spec.headers.iter().any(|(k, v)| {
            k == hyper::header::CONNECTION
                && v.as_bytes()
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
        });
        spec
    }

    /// The request line, `Host`, `User-Agent`, the template's headers (a `Host` of its own
    /// replaces the target's; `Content-Length` and `Transfer-Encoding` are secgate's: the
    /// body's true length), then the body. `None` when the path is not a request target.
    fn http1_bytes(&self) -> Option<Vec<u8>> {
        let uri: hyper::Uri = self.path.parse().ok()?;
        let target = uri.path_and_query()?.as_str();
        if !target.starts_with('/') && target != "*" {
            return None;
        }
        let mut w = Vec::with_capacity(128 + self.body.len());
        w.extend_from_slice(self.method.as_str().as_bytes());
        w.push(b' ');
        w.extend_from_slice(target.as_bytes());
        w.extend_from_slice(b" HTTP/1.1\r\n");
        let own_host = self.headers.iter().any(|(k, _)| k == hyper::header::HOST);
        if !own_host {
            w.extend_from_slice(b"Host: ");
            w.extend_from_slice(self.host.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(b"User-Agent: ");
        w.extend_from_slice(crate::engine::net::USER_AGENT.as_bytes());
        w.extend_from_slice(b"\r\n");
        for (k, v) in &self.headers {
            if k == hyper::header::CONTENT_LENGTH || k == hyper::header::TRANSFER_ENCODING {
                continue;
            }
            w.extend_from_slice(k.as_str().as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(v.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        let methods_with_body = [
            hyper::Method::POST,
            hyper::Method::PUT,
            hyper::Method::PATCH,
        ];
        if !self.body.is_empty() || methods_with_body.contains(&self.method) {
            w.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        w.extend_from_slice(b"\r\n");
        w.extend_from_slice(&self.body);
        Some(w)
    }

    /// Whether the template asks the server to close the connection after its answer.
    pub(super) fn closes(&self) -> bool {
        self.closes
    }

    /// The HTTP/1.1 bytes of this request.
    pub(super) fn wire(&self) -> Option<&[u8]> {
        self.wire.as_deref()
    }

    /// The request for hyper (HTTP/2).
    pub(super) fn build(&self) -> Option<hyper::Request<Full<Bytes>>> {
        let mut b = hyper::Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(hyper::header::HOST, self.host.as_str())
            .header(hyper::header::USER_AGENT, crate::engine::net::USER_AGENT);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(Full::new(self.body.clone())).ok()
    }
}

/// One phase of the run.
#[derive(Clone, Debug)]
pub struct PhaseSpec {
    /// Name in reports (`warmup`, `idle`, `steady`).
    pub name: &'static str,
    /// Arrival rate, requests per second.
    pub rate: f64,
    /// How long requests are scheduled for.
    pub duration: Duration,
    /// Connections (workers) of the phase.
    pub connections: u32,
}

impl PhaseSpec {
    /// Requests the phase schedules.
    pub fn requests(&self) -> u64 {
        super::options::requests_in(self.rate, self.duration)
    }
}

/// What a phase measured.
#[derive(Clone, Debug)]
pub struct PhaseStats {
    /// The phase.
    pub spec: PhaseSpec,
    /// Requests scheduled (sent, dropped, or cut by an abort).
    pub scheduled: u64,
    /// Requests sent.
    pub sent: u64,
    /// Answers with a status under 400.
    pub ok: u64,
    /// Failed requests by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Requests never sent: no connection became free within the timeout of their scheduled
    /// time.
    pub dropped: u64,
    /// Requests that found every connection busy at their scheduled time.
    pub waited: u64,
    /// Latency from the scheduled send time, µs (answers and timeouts).
    pub corrected: Histogram<u64>,
    /// Latency from the actual send time, µs.
    pub uncorrected: Histogram<u64>,
    /// How late free workers woke for their scheduled time, µs.
    pub lag: Histogram<u64>,
    /// How late a 10 ms heartbeat timer of the generator fired, µs: a busy client shows here
    /// even when every connection is busy (and no worker is free to be late).
    pub heartbeat: Histogram<u64>,
    /// Per second of the schedule: (requests that succeeded, requests that failed).
    pub seconds: Vec<(u32, u32)>,
    /// Connections opened.
    pub connects: u64,
    /// Per template of the mix, in order (empty for a single template).
    pub by_template: Vec<super::mix::TemplateStats>,
    /// Per second of the schedule: the p95 latency from the scheduled send time, µs (0 when
    /// nothing was answered in that second).
    pub second_p95_us: Vec<u64>,
    /// Of those, over TLS: how many resumed a session.
    pub tls_resumed: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Why the phase stopped early, if it did.
    pub stopped: Option<String>,
}

impl PhaseStats {
    fn new(spec: PhaseSpec) -> PhaseStats {
        PhaseStats {
            spec,
            scheduled: 0,
            sent: 0,
            ok: 0,
            errors: BTreeMap::new(),
            dropped: 0,
            waited: 0,
            corrected: histogram(),
            uncorrected: histogram(),
            lag: histogram(),
            heartbeat: histogram(),
            seconds: Vec::new(),
            connects: 0,
            by_template: Vec::new(),
            second_p95_us: Vec::new(),
            tls_resumed: 0,
            elapsed: Duration::ZERO,
            stopped: None,
        }
    }

    /// Failed requests in all.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Requests with an outcome (answered or failed).
    pub fn completed(&self) -> u64 {
        self.ok + self.error_count()
    }

    fn merge(&mut self, other: &PhaseStats) {
        self.sent += other.sent;
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        self.dropped += other.dropped;
        self.waited += other.waited;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.corrected.add(&other.corrected);
        let _ = self.uncorrected.add(&other.uncorrected);
        let _ = self.lag.add(&other.lag);
        self.connects += other.connects;
        self.tls_resumed += other.tls_resumed;
    }
}

pub(super) use super::client::{Conn, exchange};
use super::client::{Lane, Opened, Protocol, Sources};

/// State the workers of one phase share.
struct Shared {
    ep: Endpoint,
    rate: f64,
    n: u64,
    t0: Instant,
    next: AtomicU64,
    stop: Arc<AtomicBool>,
    shards: Vec<Mutex<PhaseStats>>,
    /// Per second of the schedule: successes and failures (read by the abort monitor).
    ok_by_second: Vec<AtomicU32>,
    err_by_second: Vec<AtomicU32>,
    /// Per template and per second figures ([`super::mix`], [`super::series`]).
    templates: super::mix::Recorder,
    latency_by_second: super::series::Seconds,
}

fn lock(m: &Mutex<PhaseStats>) -> std::sync::MutexGuard<'_, PhaseStats> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Shared {
    fn scheduled_at(&self, i: u64) -> Instant {
        #[allow(clippy::cast_precision_loss, reason = "i is at most 5 million")]
        let offset = Duration::from_secs_f64(i as f64 / self.rate);
        self.t0 + offset
    }

    /// The per-template, per-second and live figures of request `i` (a latency only for an
    /// answer or a timeout, as the phase's histograms).
    fn detail(
        &self,
        i: u64,
        at: Instant,
        latency: Option<Duration>,
        outcome: Result<u16, ErrorKind>,
    ) {
        let latency =
            latency.filter(|_| !matches!(outcome, Err(ErrorKind::Reset | ErrorKind::Malformed)));
        self.templates
            .record(self.ep.pick(i).0, latency, outcome.map(|_| ()));
        if let Some(l) = latency {
            let s = usize::try_from(at.saturating_duration_since(self.t0).as_secs())
                .unwrap_or(usize::MAX);
            self.latency_by_second.record(s, l);
        }
        if let Some(live) = &self.ep.live {
            live.count(outcome.is_ok());
        }
    }

    fn note_second(&self, at: Instant, ok: bool) {
        let s =
            usize::try_from(at.saturating_duration_since(self.t0).as_secs()).unwrap_or(usize::MAX);
        let list = if ok {
            &self.ok_by_second
        } else {
            &self.err_by_second
        };
        if let Some(c) = list.get(s) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Worker number `slot` of a phase, sending on `lane`.
async fn worker(shared: Arc<Shared>, shard: usize, slot: u32, mut lane: Lane) -> Lane {
    let timeout = shared.ep.timeout;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.n {
            break;
        }
        let scheduled = shared.scheduled_at(i);
        let now = Instant::now();
        let mut lag = None;
        let mut waited = false;
        // Where the latency is measured from: the scheduled time, except for a free
        // worker's own timer lateness (see the module docs).
        let mut origin = scheduled;
        if scheduled > now {
            tokio::time::sleep_until(scheduled.into()).await;
            let woke = Instant::now();
            lag = Some(woke.saturating_duration_since(scheduled));
            origin = woke;
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
        } else {
            let behind = now - scheduled;
            if behind > timeout {
                if let Some(slot) = shared.shards.get(shard % SHARDS) {
                    lock(slot).dropped += 1;
                }
                shared.note_second(scheduled, false);
                continue;
            }
            waited = behind > Duration::from_millis(1);
        }
        let mut opened = Opened::default();
        let result = async {
            let c = lane.get(&shared.ep, slot, &mut opened).await?;
            let req = shared.ep.pick(i).1;
            let sent = Instant::now();
            let r = tokio::time::timeout(timeout, exchange(c, req))
                .await
                .unwrap_or(Err(ErrorKind::Timeout));
            Ok::<_, ErrorKind>((sent, r))
        }
        .await;
        let done = Instant::now();
        let (sent, outcome) = match result {
            Ok((sent, r)) => (Some(sent), r),
            Err(kind) => (None, Err(kind)),
        };
        let outcome = match outcome {
            Ok(status) if status >= 500 => Err(ErrorKind::Status5xx),
            Ok(status) if status >= 400 => Err(ErrorKind::Status4xx),
            other => other,
        };
        if matches!(outcome, Err(k) if !matches!(k, ErrorKind::Status4xx | ErrorKind::Status5xx)) {
            lane.drop_conn();
        }
        shared.note_second(scheduled, outcome.is_ok());
        shared.detail(i, scheduled, sent.map(|_| done - origin), outcome);
        let Some(slot) = shared.shards.get(shard % SHARDS) else {
            continue;
        };
        let mut st = lock(slot);
        st.connects += opened.connects;
        st.tls_resumed += u64::from(opened.resumed);
        if let Some(l) = lag {
            st.lag.saturating_record(micros(l));
        }
        if waited {
            st.waited += 1;
        }
        if let Some(sent) = sent {
            st.sent += 1;
            // Answers and timeouts have a latency; a connect that failed has none.
            if !matches!(outcome, Err(ErrorKind::Reset | ErrorKind::Malformed)) {
                st.corrected.saturating_record(micros(done - origin));
                st.uncorrected.saturating_record(micros(done - sent));
            }
        }
        match outcome {
            Ok(_) => st.ok += 1,
            Err(kind) => *st.errors.entry(kind).or_default() += 1,
        }
    }
    lane
}

/// How the run stops early.
#[derive(Clone, Debug)]
pub struct AbortRule {
    /// Error-rate threshold (a fraction); the run stops when each of [`ABORT_SECONDS`]
    /// consecutive seconds has an error rate over 10× it.
    pub error_rate: f64,
}

/// Seconds over 10× the error-rate threshold in a row that stop the run.
pub const ABORT_SECONDS: usize = 5;

/// Run `phases` one after another, handing connections from one phase to the next. `stop`
/// ends the run at once (no request is sent after it is set); `abort` stops it when the error
/// rate stays far over its threshold.
pub async fn run(
    ep: &Endpoint,
    phases: &[PhaseSpec],
    stop: Arc<AtomicBool>,
    abort: Option<AbortRule>,
) -> Vec<PhaseStats> {
    run_until(ep, phases, stop, abort, |_| true).await
}

/// [`run`], going on to the next phase only while `go_on` accepts the last one (the ramp
/// stops at its breaking point).
pub async fn run_until(
    ep: &Endpoint,
    phases: &[PhaseSpec],
    stop: Arc<AtomicBool>,
    abort: Option<AbortRule>,
    go_on: impl Fn(&PhaseStats) -> bool,
) -> Vec<PhaseStats> {
    let mut pool: Vec<Conn> = Vec::new();
    let mut out = Vec::new();
    for spec in phases {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (stats, back) = run_phase(ep, spec, pool, stop.clone(), abort.as_ref()).await;
        pool = back;
        let stopped = stats.stopped.is_some() || !go_on(&stats);
        out.push(stats);
        if stopped {
            break;
        }
    }
    out
}

async fn run_phase(
    ep: &Endpoint,
    spec: &PhaseSpec,
    mut pool: Vec<Conn>,
    stop: Arc<AtomicBool>,
    abort: Option<&AbortRule>,
) -> (PhaseStats, Vec<Conn>) {
    let n = spec.requests();
    let seconds = usize::try_from(spec.duration.as_secs()).unwrap_or(0) + 1;
    let shared = Arc::new(Shared {
        ep: ep.clone(),
        rate: spec.rate.max(0.001),
        n,
        // A short lead so that the first requests are not late while workers start.
        t0: Instant::now() + Duration::from_millis(20),
        next: AtomicU64::new(0),
        stop: stop.clone(),
        shards: (0..SHARDS)
            .map(|_| Mutex::new(PhaseStats::new(spec.clone())))
            .collect(),
        ok_by_second: (0..seconds).map(|_| AtomicU32::new(0)).collect(),
        err_by_second: (0..seconds).map(|_| AtomicU32::new(0)).collect(),
        templates: super::mix::Recorder::new(ep.mix.as_ref().map_or(1, |m| m.templates.len())),
        latency_by_second: super::series::Seconds::new(seconds),
    });
    if let Some(live) = &ep.live {
        live.start(spec.name, spec.rate);
    }
    let started = Instant::now();
    let mut set = JoinSet::new();
    // Connections of the previous phase are reused; the ones this phase does not need are
    // kept for the next. Over HTTP/2, `streams` workers share each connection.
    let streams = ep.protocol.streams();
    let workers = (u64::from(spec.connections.max(1)) * u64::from(streams)).min(n.max(1));
    let h2 = matches!(ep.protocol, Protocol::Http2 { .. });
    let slots: Vec<_> = if h2 {
        let used = workers.div_ceil(u64::from(streams));
        (0..used).map(|_| Lane::slot(pool.pop())).collect()
    } else {
        Vec::new()
    };
    for w in 0..workers {
        let shard = usize::try_from(w).unwrap_or(0) % SHARDS;
        let slot = u32::try_from(w / u64::from(streams)).unwrap_or(u32::MAX);
        let lane = match slots.get(usize::try_from(slot).unwrap_or(usize::MAX)) {
            Some(shared) => Lane::shared(shared.clone()),
            None => Lane::own(pool.pop()),
        };
        set.spawn(worker(shared.clone(), shard, slot, lane));
    }
    let mut stopped = None;
    let mut back = pool;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heartbeat = histogram();
    loop {
        tokio::select! {
            at = beat.tick() => {
                heartbeat.saturating_record(micros(Instant::now().saturating_duration_since(at.into_std())));
            }
            next = set.join_next() => match next {
                Some(Ok(lane)) => back.extend(lane.into_conn()),
                Some(Err(_)) => {}
                None => break,
            },
            _ = tick.tick() => {
                if let Some(live) = &ep.live {
                    live_second(&shared, live);
                }
                if let Some(rule) = abort
                    && stopped.is_none()
                    && let Some(why) = over_threshold(&shared, rule)
                {
                    stopped = Some(why);
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    for slot in slots {
        if let Some(conn) = slot.lock().await.take() {
            back.push(conn);
        }
    }
    let mut stats = PhaseStats::new(spec.clone());
    for s in &shared.shards {
        stats.merge(&lock(s));
    }
    stats.heartbeat = heartbeat;
    stats.scheduled = n.min(shared.next.load(Ordering::Relaxed));
    stats.seconds = shared
        .ok_by_second
        .iter()
        .zip(&shared.err_by_second)
        .map(|(o, e)| (o.load(Ordering::Relaxed), e.load(Ordering::Relaxed)))
        .collect();
    stats.by_template = shared.templates.finish();
    stats.second_p95_us = shared.latency_by_second.finish();
    stats.elapsed = started.elapsed();
    stats.stopped = stopped.or_else(|| {
        (stop.load(Ordering::Relaxed) && stats.scheduled < n)
            .then(|| "the scan was interrupted".to_string())
    });
    (stats, back)
}

/// The live line's figures of the last complete second of the schedule.
fn live_second(shared: &Shared, live: &super::series::Live) {
    let elapsed = Instant::now()
        .saturating_duration_since(shared.t0)
        .as_secs();
    let Some(last) = usize::try_from(elapsed).ok().and_then(|s| s.checked_sub(1)) else {
        return;
    };
    let count = |v: &[AtomicU32]| {
        v.get(last)
            .map_or(0, |c| u64::from(c.load(Ordering::Relaxed)))
    };
    live.last_second.store(
        count(&shared.ok_by_second) + count(&shared.err_by_second),
        Ordering::Relaxed,
    );
    live.p95_us
        .store(shared.latency_by_second.p95(last), Ordering::Relaxed);
}

/// Whether the last [`ABORT_SECONDS`] complete seconds each had an error rate over 10× the
/// threshold (capped at 99 %), and why.
fn over_threshold(shared: &Shared, rule: &AbortRule) -> Option<String> {
    let limit = (rule.error_rate * 10.0).min(0.99);
    // A second is complete once every request scheduled in it had its timeout to finish.
    let elapsed = Instant::now().saturating_duration_since(shared.t0);
    let done = elapsed.saturating_sub(shared.ep.timeout).as_secs();
    let done = usize::try_from(done).ok()?;
    if done < ABORT_SECONDS {
        return None;
    }
    let window = done - ABORT_SECONDS..done;
    let bad = window.clone().all(|s| {
        let ok = shared
            .ok_by_second
            .get(s)
            .map_or(0, |c| c.load(Ordering::Relaxed));
        let err = shared
            .err_by_second
            .get(s)
            .map_or(0, |c| c.load(Ordering::Relaxed));
        let total = ok + err;
        total > 0 && f64::from(err) / f64::from(total) > limit
    });
    bad.then(|| {
        format!(
            "stopped early: the error rate was over {:.3} % (10× the threshold) for {ABORT_SECONDS} s in a row (seconds {}–{} of the phase)",
            limit * 100.0,
            window.start,
            window.end
        )
    })
}
