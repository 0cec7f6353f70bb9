//! The TCP connect sweep: one non-blocking `connect()` per (address, port), many in flight,
//! on a small pool of threads that each run their own epoll loop (mio). No raw sockets, no
//! root.
//!
//! **How it is bounded.** Unlike the HTTP and TLS families, which hold a few long connections
//! per host under the per-host limit, a sweep holds many short-lived half-open sockets. Its
//! bound is the number of sockets in flight, [`SweepConfig::in_flight`], shared by the
//! threads: the smaller of `--port-concurrency` and what the process's open-file limit allows
//! (the soft limit is raised to the hard one first, and a reserve is kept for the other
//! families). If the kernel still says "too many open files" (or runs out of buffers or local
//! ports), the thread lowers its own limit to what it holds, waits for sockets to finish and
//! tries again: the sweep slows down instead of failing. Sweeps of different targets run one
//! after another (see the family), so the bound holds for the whole scan.
//!
//! **States** (as nmap's `-sT`): *open* when the handshake completes (a reset *after* the
//! handshake, `ECONNRESET` or `EPIPE`, still means a service accepted), *closed* when the
//! target answers the SYN with a reset (`ECONNREFUSED`), *filtered* when nothing answers within
//! the timeout twice, or an ICMP error says the host or network is unreachable.
//!
//! **Accounting.** Every job ends in exactly one count: open, closed, filtered or *error* (not
//! scanned). A job that no thread settled (the system refused sockets for longer than
//! [`RESOURCE_PATIENCE`] while nothing was in flight anywhere, a thread could not create its
//! epoll instance, a thread panicked) is counted as an error, so the family can refuse to pass
//! a sweep that did not look at every port. Only open jobs are kept one by one; the other
//! states are counters, so memory does not grow with the number of filtered ports.
//!
//! **Cost per port.** On Linux a non-blocking `connect()` that is answered at once (loopback,
//! fast links) is settled by asking again: a second `connect()` returns the outcome (refused,
//! connected) or `EALREADY` while the handshake is still pending. A refused socket can connect
//! again, so it is kept for the next port: two system calls per closed port instead of four
//! (socket, connect, getsockopt, close). Pending connects go to the epoll loop.
//!
//! **Timeouts** come from the measured round-trip time: each answer (open or closed) is an RTT
//! sample, smoothed as TCP does (RFC 6298: `srtt + 4·rttvar`), clamped between
//! [`SweepConfig::min_timeout`] and the scan's `--timeout`. Before the first sample the
//! timeout is [`SweepConfig::initial_timeout`]. A connect that times out is retried once with
//! twice the timeout.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// What a connect attempt found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortState {
    /// The handshake completed.
    Open,
    /// The target reset the connection attempt.
    Closed,
    /// No answer within the timeout (twice), or an ICMP unreachable.
    Filtered,
    /// Not scanned: the system refused to open a socket for too long.
    Error,
}

/// Sweep settings.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// Sockets in flight at once, over all threads.
    pub in_flight: usize,
    /// Worker threads (each with its own epoll loop).
    pub threads: usize,
    /// Timeout before any RTT sample.
    pub initial_timeout: Duration,
    /// Lowest timeout, whatever the RTT.
    pub min_timeout: Duration,
    /// Highest timeout (the scan's `--timeout`).
    pub max_timeout: Duration,
}

/// Counters of a sweep, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// connect() calls, retries included.
    pub connects: u64,
    /// Retries after a timeout.
    pub retries: u64,
    /// Times a thread had to back off because the system refused a socket.
    pub backoffs: u64,
    /// The smoothed RTT at the end, in microseconds (0 without samples).
    pub srtt_us: u64,
    /// The connect timeout at the end, in milliseconds.
    pub timeout_ms: u64,
}

/// The result: the open jobs, a count of every other state, and counters. When the sweep was
/// not cancelled, `open.len() + closed + filtered + errors` is the number of jobs.
#[derive(Clone, Debug, Default)]
pub struct SweepResult {
    /// Indexes of the open jobs, sorted.
    pub open: Vec<u64>,
    /// Jobs found closed.
    pub closed: u64,
    /// Jobs found filtered.
    pub filtered: u64,
    /// Jobs not scanned (see [`PortState::Error`]), including jobs no thread settled.
    pub errors: u64,
    /// Why jobs were not scanned, one line per cause (empty when `errors` is 0).
    pub problems: Vec<String>,
    /// Per address (by index, when there are at most [`TRACKED_ADDRESSES`]): whether any of
    /// its ports answered (open or closed). Empty for larger sweeps.
    pub answered: Vec<bool>,
    /// Counters.
    pub stats: SweepStats,
    /// True when the sweep was cancelled before the end.
    pub cancelled: bool,
}

/// The jobs of a sweep: every (address, port) pair, ports outermost so that consecutive
/// connects go to different hosts of a range.
#[derive(Clone, Copy, Debug)]
pub struct Jobs<'a> {
    /// Addresses.
    pub addrs: &'a [IpAddr],
    /// Ports.
    pub ports: &'a [u16],
}

impl Jobs<'_> {
    /// Number of jobs.
    pub fn len(&self) -> u64 {
        (self.addrs.len() as u64).saturating_mul(self.ports.len() as u64)
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The socket address of job `j`.
    pub fn addr(&self, j: u64) -> Option<SocketAddr> {
        let n = self.addrs.len() as u64;
        if n == 0 {
            return None;
        }
        let ip = self.addrs.get(usize::try_from(j % n).ok()?)?;
        let port = self.ports.get(usize::try_from(j / n).ok()?)?;
        Some(SocketAddr::new(*ip, *port))
    }
}

/// State the worker threads share.
struct Shared<'a> {
    jobs: Jobs<'a>,
    cfg: &'a SweepConfig,
    cursor: AtomicU64,
    cancel: &'a AtomicBool,
    /// When the sweep started.
    start: Instant,
    /// Milliseconds after `start` at which a job was last settled (by any thread).
    progress_ms: AtomicU64,
    /// Set once the system refused sockets for longer than [`RESOURCE_PATIENCE`] with no
    /// progress anywhere: every thread stops taking jobs.
    exhausted: AtomicBool,
    /// Counters for the progress line, if anyone watches.
    live: Option<std::sync::Arc<Live>>,
    /// Told of each open job as soon as it is found.
    on_open: &'a (dyn Fn(u64) + Sync),
}

impl Shared<'_> {
    /// A job was settled: tell `on_open` at once when it is open.
    fn found(&self, job: u64, state: PortState) {
        if state == PortState::Open {
            (self.on_open)(job);
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn progressed(&self) {
        self.progress_ms.fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    /// Time since any thread last settled a job.
    fn stalled_for(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.progress_ms.load(Ordering::Relaxed)),
        )
    }
}

/// Run a sweep to the end, or until `cancel` is set. Blocking: call it from a blocking thread.
pub fn run(jobs: Jobs<'_>, cfg: &SweepConfig, cancel: &AtomicBool) -> SweepResult {
    run_with(jobs, cfg, cancel, None, &|_| {})
}

/// Live counters of a running sweep, for the progress line: (address, port) pairs settled and
/// found open so far, updated by the sweep threads as they go.
#[derive(Debug, Default)]
pub struct Live {
    done: AtomicU64,
    open: AtomicU64,
}

impl Live {
    /// Pairs settled so far (open, closed, filtered or not scanned).
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Pairs found open so far.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }
}

/// [`run`], counting into `live` as it goes (for the progress line) and calling `on_open`
/// with each open job the moment a sweep thread finds it (from that thread), so that
/// identification can start while the sweep goes on.
pub fn run_with(
    jobs: Jobs<'_>,
    cfg: &SweepConfig,
    cancel: &AtomicBool,
    live: Option<std::sync::Arc<Live>>,
    on_open: &(dyn Fn(u64) + Sync),
) -> SweepResult {
    let threads = cfg.threads.clamp(1, 64);
    let per_thread = (cfg.in_flight / threads).max(1);
    let shared = Shared {
        jobs,
        cfg,
        cursor: AtomicU64::new(0),
        cancel,
        start: Instant::now(),
        progress_ms: AtomicU64::new(0),
        exhausted: AtomicBool::new(false),
        live,
        on_open,
    };
    let parts: Vec<Option<ThreadResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let shared = &shared;
                std::thread::Builder::new()
                    .name("secgate-sweep".into())
                    .spawn_scoped(scope, move || worker(shared, per_thread))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.ok().and_then(|h| h.join().ok()))
            .collect()
    });
    let mut result = SweepResult::default();
    if jobs.addrs.len() <= TRACKED_ADDRESSES {
        result.answered = vec![false; jobs.addrs.len()];
    }
    let mut srtts = Vec::new();
    let mut lost_threads = 0usize;
    for part in parts {
        let Some(part) = part else {
            lost_threads += 1;
            continue;
        };
        result.open.extend(part.open);
        result.closed += part.closed;
        result.filtered += part.filtered;
        result.errors += part.errors;
        for (all, this) in result.answered.iter_mut().zip(&part.answered) {
            *all |= *this;
        }
        for p in part.problems {
            if !result.problems.contains(&p) {
                result.problems.push(p);
            }
        }
        result.stats.connects += part.stats.connects;
        result.stats.retries += part.stats.retries;
        result.stats.backoffs += part.stats.backoffs;
        result.stats.timeout_ms = result.stats.timeout_ms.max(part.stats.timeout_ms);
        if part.stats.srtt_us > 0 {
            srtts.push(part.stats.srtt_us);
        }
        result.cancelled |= part.cancelled;
    }
    if lost_threads > 0 {
        result.problems.push(format!(
            "{lost_threads} sweep thread{} failed (could not start or panicked)",
            if lost_threads == 1 { "" } else { "s" }
        ));
    }
    result.stats.srtt_us = srtts.iter().sum::<u64>() / (srtts.len().max(1) as u64);
    result.open.sort_unstable();
    // Jobs that no thread settled were not scanned.
    let settled = (result.open.len() as u64)
        .saturating_add(result.closed)
        .saturating_add(result.filtered)
        .saturating_add(result.errors);
    let unsettled = jobs.len().saturating_sub(settled);
    if unsettled > 0 && !result.cancelled {
        result.errors += unsettled;
        if shared.exhausted.load(Ordering::Relaxed) {
            result.problems.push(format!(
                "the system refused sockets for more than {}s with nothing in flight; the sweep stopped",
                RESOURCE_PATIENCE.as_secs()
            ));
        }
        if result.problems.is_empty() {
            result.problems.push(format!(
                "{unsettled} jobs were left unsettled by the sweep threads"
            ));
        }
    }
    result
}

/// The most addresses whose answers are tracked one by one (a name has at most a few).
pub const TRACKED_ADDRESSES: usize = 64;

#[derive(Default)]
struct ThreadResult {
    open: Vec<u64>,
    closed: u64,
    filtered: u64,
    errors: u64,
    problems: Vec<String>,
    answered: Vec<bool>,
    stats: SweepStats,
    cancelled: bool,
    live: Option<std::sync::Arc<Live>>,
}

impl ThreadResult {
    fn settle(&mut self, job: u64, state: PortState) {
        if let Some(live) = &self.live {
            live.done.fetch_add(1, Ordering::Relaxed);
            if state == PortState::Open {
                live.open.fetch_add(1, Ordering::Relaxed);
            }
        }
        match state {
            PortState::Open => self.open.push(job),
            PortState::Closed => self.closed += 1,
            PortState::Filtered => self.filtered += 1,
            PortState::Error => self.errors += 1,
        }
        if matches!(state, PortState::Open | PortState::Closed) && !self.answered.is_empty() {
            let n = self.answered.len() as u64;
            if let Some(a) = usize::try_from(job % n)
                .ok()
                .and_then(|i| self.answered.get_mut(i))
            {
                *a = true;
            }
        }
    }
}

/// RFC 6298 smoothing of RTT samples into a timeout.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    initial: Duration,
    min: Duration,
    max: Duration,
}

impl RttEstimator {
    /// An estimator with no samples.
    pub fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            initial: initial.clamp(min, max.max(min)),
            min,
            max: max.max(min),
        }
    }

    /// Add one sample.
    pub fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// The timeout for a first attempt.
    pub fn timeout(&self) -> Duration {
        match self.srtt {
            None => self.initial,
            Some(srtt) => (srtt + self.rttvar * 4).clamp(self.min, self.max),
        }
    }

    /// The smoothed RTT, if sampled.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }
}

struct Slot {
    job: u64,
    attempt: u8,
    started: Instant,
    stream: TcpStream,
}

/// Errors that mean "the system is out of something for now": back off and retry.
fn is_resource_error(e: &std::io::Error) -> bool {
    if matches!(
        e.kind(),
        ErrorKind::OutOfMemory | ErrorKind::AddrNotAvailable
    ) {
        return true;
    }
    // EMFILE, ENFILE and ENOBUFS have no `ErrorKind` of their own.
    #[cfg(target_os = "linux")]
    {
        matches!(
            e.raw_os_error(),
            Some(24 | 23 | 105 | 12 | 99 | 11) // EMFILE ENFILE ENOBUFS ENOMEM EADDRNOTAVAIL EAGAIN
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// What an answered or failed connect means: a reset to the SYN is `ECONNREFUSED` (closed); a
/// reset or a broken pipe reported later came after the handshake, so a service accepted.
fn classify(e: &std::io::Error) -> PortState {
    match e.kind() {
        ErrorKind::ConnectionRefused => PortState::Closed,
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => PortState::Open,
        _ => PortState::Filtered, // unreachable, timed out, prohibited
    }
}

/// Linux error numbers the fast path reads (other systems take the epoll path).
mod errno {
    pub(super) const EINPROGRESS: i32 = 115;
    pub(super) const EALREADY: i32 = 114;
    pub(super) const EISCONN: i32 = 106;
    pub(super) const ECONNREFUSED: i32 = 111;
    pub(super) const ECONNRESET: i32 = 104;
    pub(super) const EPIPE: i32 = 32;
    pub(super) const EHOSTUNREACH: i32 = 113;
    pub(super) const ENETUNREACH: i32 = 101;
    pub(super) const ETIMEDOUT: i32 = 110;
}

/// What starting a connect found.
enum Connect {
    /// Decided at once; `true` when the socket may connect again.
    Settled(PortState, bool),
    /// The handshake is under way: wait for it.
    Pending,
    /// The system is out of something: back off.
    Resource,
}

fn new_socket(addr: SocketAddr) -> std::io::Result<Socket> {
    Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )
}

fn start_connect(socket: &Socket, addr: &SockAddr) -> Connect {
    match socket.connect(addr) {
        Ok(()) => Connect::Settled(PortState::Open, false),
        Err(e) if e.raw_os_error() == Some(errno::EINPROGRESS) && cfg!(target_os = "linux") => {
            // Ask again: Linux answers with the outcome when it is already known.
            match socket.connect(addr) {
                Ok(()) => Connect::Settled(PortState::Open, false),
                Err(e) => match e.raw_os_error() {
                    Some(errno::EALREADY) => Connect::Pending,
                    Some(errno::EISCONN) => Connect::Settled(PortState::Open, false),
                    Some(errno::ECONNREFUSED) => Connect::Settled(PortState::Closed, true),
                    // Accepted, then reset: open, and the socket is spent.
                    Some(errno::ECONNRESET | errno::EPIPE) => {
                        Connect::Settled(PortState::Open, false)
                    }
                    Some(errno::EHOSTUNREACH | errno::ENETUNREACH | errno::ETIMEDOUT) => {
                        Connect::Settled(PortState::Filtered, true)
                    }
                    _ => Connect::Settled(classify(&e), false),
                },
            }
        }
        Err(e) if e.raw_os_error() == Some(errno::EINPROGRESS) => Connect::Pending,
        Err(e) if e.kind() == ErrorKind::WouldBlock => Connect::Pending,
        Err(e) if is_resource_error(&e) => Connect::Resource,
        Err(e) => Connect::Settled(classify(&e), false),
    }
}

/// The state of a socket after connect(), if already decided.
fn settled(stream: &TcpStream) -> Option<PortState> {
    match stream.take_error() {
        Ok(Some(e)) => Some(classify(&e)),
        Err(e) => Some(classify(&e)),
        Ok(None) => match stream.peer_addr() {
            Ok(_) => Some(PortState::Open),
            Err(e) if e.kind() == ErrorKind::NotConnected => None,
            Err(e) => Some(classify(&e)),
        },
    }
}

const CHUNK: u64 = 64;
/// How long the system may refuse sockets, while no thread settles any job, before the sweep
/// gives up on the jobs it has not started (they are counted as errors). Applies to the whole
/// sweep, not to each job.
pub const RESOURCE_PATIENCE: Duration = Duration::from_secs(5);

/// What a worker does when the system refuses a socket (or its registration): put the job
/// back, lower its own limit to what it holds, and, with nothing in flight, wait a little,
/// unless no thread has settled a job for [`RESOURCE_PATIENCE`]: then the sweep is exhausted.
fn back_off(shared: &Shared<'_>, in_flight: usize, limit: &mut usize, stats: &mut SweepStats) {
    stats.backoffs += 1;
    *limit = in_flight.max(1);
    if in_flight == 0 {
        if shared.stalled_for() > RESOURCE_PATIENCE {
            shared.exhausted.store(true, Ordering::Relaxed);
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn worker(shared: &Shared<'_>, mut limit: usize) -> ThreadResult {
    let (jobs, cfg, cursor) = (shared.jobs, shared.cfg, &shared.cursor);
    let mut out = ThreadResult {
        live: shared.live.clone(),
        ..ThreadResult::default()
    };
    if jobs.addrs.len() <= TRACKED_ADDRESSES {
        out.answered = vec![false; jobs.addrs.len()];
    }
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            // This thread takes no job: the others do them, and if none can, the jobs are
            // counted as errors when the threads are joined.
            out.problems.push(format!(
                "a sweep thread could not create its epoll instance: {e}"
            ));
            return out;
        }
    };
    let mut events = Events::with_capacity(1024);
    let mut rtt = RttEstimator::new(cfg.initial_timeout, cfg.min_timeout, cfg.max_timeout);
    let mut slots: Vec<Option<Slot>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut generation: Vec<u32> = Vec::new();
    let mut timers: BinaryHeap<Reverse<(Instant, usize, u32)>> = BinaryHeap::new();
    // (job, attempt): retries first, then fresh jobs from the shared cursor in chunks.
    let mut queue: VecDeque<(u64, u8)> = VecDeque::new();
    let mut chunk = 0..0u64;
    let total = jobs.len();
    let mut in_flight = 0usize;
    // A socket whose last connect was refused can connect again (one per address family).
    let mut spare_v4: Option<Socket> = None;
    let mut spare_v6: Option<Socket> = None;
    let max_limit = limit;

    loop {
        if shared.cancel.load(Ordering::Relaxed) {
            out.cancelled = true;
            break;
        }
        let exhausted = shared.exhausted.load(Ordering::Relaxed);
        // Fill up to the limit.
        while in_flight < limit && !exhausted {
            let next = queue.pop_front().or_else(|| {
                if chunk.is_empty() {
                    let start = cursor.fetch_add(CHUNK, Ordering::Relaxed);
                    chunk = start.min(total)..start.saturating_add(CHUNK).min(total);
                }
                chunk.next().map(|j| (j, 0))
            });
            let Some((job, attempt)) = next else { break };
            let Some(addr) = jobs.addr(job) else {
                out.settle(job, PortState::Error);
                continue;
            };
            out.stats.connects += 1;
            let started = Instant::now();
            let spare = if addr.is_ipv4() {
                &mut spare_v4
            } else {
                &mut spare_v6
            };
            let socket = match spare.take().map_or_else(|| new_socket(addr), Ok) {
                Ok(s) => Some(s),
                Err(e) if is_resource_error(&e) => None,
                Err(e) => {
                    // No socket of this family at all (e.g. IPv6 disabled): not scanned.
                    let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
                    let why = format!("cannot open an {family} socket: {e}");
                    if !out.problems.contains(&why) {
                        out.problems.push(why);
                    }
                    out.settle(job, PortState::Error);
                    shared.progressed();
                    continue;
                }
            };
            let outcome = socket.as_ref().map_or(Connect::Resource, |s| {
                start_connect(s, &SockAddr::from(addr))
            });
            let socket = match outcome {
                Connect::Settled(state, reusable) => {
                    rtt.sample(started.elapsed());
                    out.settle(job, state);
                    shared.found(job, state);
                    shared.progressed();
                    if reusable {
                        *spare = socket;
                    }
                    continue;
                }
                Connect::Resource => {
                    out.stats.connects -= 1;
                    queue.push_front((job, attempt));
                    back_off(shared, in_flight, &mut limit, &mut out.stats);
                    break;
                }
                Connect::Pending => socket,
            };
            let Some(socket) = socket else { continue };
            let mut stream = TcpStream::from_std(std::net::TcpStream::from(socket));
            let idx = free.pop().unwrap_or_else(|| {
                slots.push(None);
                generation.push(0);
                slots.len() - 1
            });
            if poll
                .registry()
                .register(&mut stream, Token(idx), Interest::WRITABLE)
                .is_err()
            {
                // epoll_ctl refused (out of memory, or the epoll watch limit): the same
                // patience as a refused socket.
                free.push(idx);
                queue.push_front((job, attempt));
                out.stats.connects -= 1;
                back_off(shared, in_flight, &mut limit, &mut out.stats);
                break;
            }
            let timeout = if attempt == 0 {
                rtt.timeout()
            } else {
                (rtt.timeout() * 2).min(cfg.max_timeout.max(cfg.min_timeout))
            };
            let gen_now = generation.get(idx).copied().unwrap_or(0);
            timers.push(Reverse((started + timeout, idx, gen_now)));
            if let Some(slot) = slots.get_mut(idx) {
                *slot = Some(Slot {
                    job,
                    attempt,
                    started,
                    stream,
                });
            }
            in_flight += 1;
        }
        if in_flight == 0
            && (shared.exhausted.load(Ordering::Relaxed)
                || (queue.is_empty()
                    && chunk.is_empty()
                    && cursor.load(Ordering::Relaxed) >= total))
        {
            // Exhausted: the jobs still queued or in this thread's chunk stay unsettled and
            // are counted as errors by `run`.
            break;
        }
        // Slowly grow back after a back-off.
        if limit < max_limit {
            limit = (limit + limit / 8 + 1).min(max_limit);
        }
        if in_flight == 0 {
            // Nothing to wait for (backing off): go round again without polling.
            continue;
        }
        let now = Instant::now();
        let wait = timers
            .peek()
            .map_or(Duration::from_millis(50), |Reverse((at, _, _))| {
                at.saturating_duration_since(now)
            })
            .min(Duration::from_millis(50));
        if poll.poll(&mut events, Some(wait)).is_err() {
            // EINTR and the like: just go round again.
            continue;
        }
        let now = Instant::now();
        for event in &events {
            let idx = event.token().0;
            let Some(entry) = slots.get_mut(idx) else {
                continue;
            };
            let Some(state) = entry.as_ref().and_then(|s| settled(&s.stream)) else {
                continue;
            };
            if let Some(slot) = entry.take() {
                rtt.sample(now.saturating_duration_since(slot.started));
                out.settle(slot.job, state);
                shared.found(slot.job, state);
                shared.progressed();
                if let Some(g) = generation.get_mut(idx) {
                    *g = g.wrapping_add(1);
                }
                free.push(idx);
                in_flight -= 1;
            }
        }
        // Expire timed-out attempts: retry once, then filtered.
        while let Some(Reverse((at, idx, gen_at))) = timers.peek().copied() {
            if at > now {
                break;
            }
            timers.pop();
            if generation.get(idx).copied() != Some(gen_at) {
                continue; // answered already
            }
            let Some(slot) = slots.get_mut(idx).and_then(Option::take) else {
                continue;
            };
            if let Some(g) = generation.get_mut(idx) {
                *g = g.wrapping_add(1);
            }
            free.push(idx);
            in_flight -= 1;
            drop(slot.stream);
            shared.progressed();
            if slot.attempt == 0 {
                out.stats.retries += 1;
                queue.push_back((slot.job, 1));
            } else {
                out.settle(slot.job, PortState::Filtered);
            }
        }
    }
    out.stats.srtt_us = rtt
        .srtt()
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    out.stats.timeout_ms = u64::try_from(rtt.timeout().as_millis()).unwrap_or(u64::MAX);
    out
}

/// Raise the open-files soft limit to the hard limit and return the soft limit now in force
/// (`None` where it cannot be read).
pub fn raise_fd_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_estimator_follows_rfc_6298_and_clamps() {
        let ms = Duration::from_millis;
        let mut e = RttEstimator::new(ms(1000), ms(100), ms(5000));
        assert_eq!(e.timeout(), ms(1000));
        e.sample(ms(200));
        // srtt 200, rttvar 100: 200 + 400.
        assert_eq!(e.timeout(), ms(600));
        e.sample(ms(200));
        // rttvar 75, srtt 200: 500.
        assert_eq!(e.timeout(), ms(500));
        for _ in 0..50 {
            e.sample(Duration::from_micros(30));
        }
        assert_eq!(e.timeout(), ms(100), "clamped to the floor");
        let mut slow = RttEstimator::new(ms(1000), ms(100), ms(2000));
        slow.sample(ms(1900));
        assert_eq!(slow.timeout(), ms(2000), "clamped to the ceiling");
    }

    #[test]
    fn jobs_interleave_hosts() {
        let addrs: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()];
        let ports = [22, 80];
        let jobs = Jobs {
            addrs: &addrs,
            ports: &ports,
        };
        assert_eq!(jobs.len(), 4);
        let order: Vec<String> = (0..4).map(|j| jobs.addr(j).unwrap().to_string()).collect();
        assert_eq!(
            order,
            [
                "127.0.0.1:22",
                "127.0.0.2:22",
                "127.0.0.1:80",
                "127.0.0.2:80"
            ]
        );
        assert_eq!(jobs.addr(4), None);
    }

    #[test]
    fn sweeps_open_and_closed_ports_on_loopback() {
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open_port = open.local_addr().unwrap().port();
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addrs: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let ports = [open_port, closed_port];
        let cfg = SweepConfig {
            in_flight: 16,
            threads: 2,
            initial_timeout: Duration::from_millis(500),
            min_timeout: Duration::from_millis(100),
            max_timeout: Duration::from_secs(1),
        };
        let r = run(
            Jobs {
                addrs: &addrs,
                ports: &ports,
            },
            &cfg,
            &AtomicBool::new(false),
        );
        assert_eq!(r.open, vec![0]);
        assert_eq!((r.closed, r.filtered, r.errors), (1, 0, 0));
        assert_eq!(r.answered, vec![true]);
        assert_eq!(r.stats.connects, 2);
        assert!(!r.cancelled);
    }
}
