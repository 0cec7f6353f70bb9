//! The concurrency phase: open `hold_connections` connections, send one request on each,
//! and keep them all open for `hold` seconds with one more request on each every 4 s at most
//! (and at the end). A connection is *held* when every one of its requests was answered
//! (status under 400) on that same connection: keep-alive traffic at a low rate, to show the
//! service holds them, not a second load test.
//!
//! One machine opening tens of thousands of connections runs into its own limits first: the
//! open-file limit is raised to its hard limit (and the phase is not run when that is still
//! too low), connections are spread over source addresses (127.0.0.1 to 127.0.0.64 for a
//! loopback target, or `source_range`: ephemeral ports are per source address, see
//! [`super::client::Sources`]), and a connect that fails for lack of descriptors or ports
//! counts as `local`: the machine, not the target, was the limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::connect;
use super::generator::{Conn, Endpoint, ErrorKind, exchange};

/// The most time between two requests on one held connection.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(4);

/// Request rounds after the opening one, for a hold of `hold`.
pub fn rounds(hold: Duration) -> u32 {
    let r = (hold.as_secs_f64() / KEEPALIVE_EVERY.as_secs_f64()).ceil();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "hold is at most 600 s"
    )]
    let r = r.max(1.0) as u32;
    r
}

/// Requests the phase sends at most: one per connection when it opens, then one per round.
pub fn requests(wanted: u32, hold: Duration) -> u64 {
    u64::from(wanted) * (1 + u64::from(rounds(hold)))
}

/// Connects (and first requests) in flight at once.
pub const OPENING: usize = 256;
/// Descriptors kept free for everything else the process does.
pub const SPARE_FDS: u64 = 256;

/// What the concurrency phase saw.
#[derive(Clone, Debug, Default)]
pub struct HoldStats {
    /// Connections asked for.
    pub wanted: u32,
    /// Connections whose first request was answered.
    pub opened: u32,
    /// Connections whose second request, after the hold, was answered on the same connection.
    pub held: u32,
    /// How long they were held.
    pub hold: Duration,
    /// Failures by kind (at most one per connection).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Source addresses used.
    pub sources: u32,
    /// Over TLS: connections whose handshake resumed a session.
    pub tls_resumed: u32,
    /// Why the machine, not the target, limited the phase (then it is not judged).
    pub machine_limit: Option<String>,
    /// Requests sent.
    pub sent: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
}

async fn one_request(conn: &mut Conn, ep: &Endpoint, sent: &AtomicU64) -> Result<(), ErrorKind> {
    sent.fetch_add(1, Ordering::Relaxed);
    let r = tokio::time::timeout(ep.timeout, exchange(conn, &ep.request)).await;
    // Held idle until the next round: no read buffer kept meanwhile.
    conn.release();
    match r {
        Ok(Ok(status)) if status >= 500 => Err(ErrorKind::Status5xx),
        Ok(Ok(status)) if status >= 400 => Err(ErrorKind::Status4xx),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kind)) => Err(kind),
        Err(_) => Err(ErrorKind::Timeout),
    }
}

/// Run the phase: `wanted` connections held for `hold`. `stop` cuts the hold short.
pub async fn run(ep: &Endpoint, wanted: u32, hold: Duration, stop: Arc<AtomicBool>) -> HoldStats {
    let started = Instant::now();
    let mut st = HoldStats {
        wanted,
        hold,
        ..HoldStats::default()
    };
    let limit = crate::checks::ports::sweep::raise_fd_limit();
    if let Some(limit) = limit
        && limit < u64::from(wanted) + SPARE_FDS
    {
        st.machine_limit = Some(format!(
            "this machine's open-file limit is {limit}, too low for {wanted} connections (plus {SPARE_FDS} spare); raise it (ulimit -n) or ask for fewer"
        ));
        return st;
    }
    let dest = ep
        .proxy
        .as_ref()
        .map(|t| t.proxy)
        .or(ep.addrs.first().copied());
    st.sources =
        u32::try_from(ep.sources.count(dest).min(u64::from(wanted.max(1)))).unwrap_or(u32::MAX);
    // Open and send the first request, OPENING at a time.
    let gate = Arc::new(Semaphore::new(OPENING));
    let sent = Arc::new(AtomicU64::new(0));
    let ep = Arc::new(ep.clone());
    let mut set = JoinSet::new();
    for i in 0..wanted {
        let (gate, ep, sent) = (gate.clone(), ep.clone(), sent.clone());
        set.spawn(async move {
            let _turn = gate.acquire_owned().await.ok();
            let mut conn = connect(&ep, i).await?;
            one_request(&mut conn, &ep, &sent).await?;
            Ok::<Conn, ErrorKind>(conn)
        });
    }
    let mut conns = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(conn)) => {
                st.tls_resumed += u32::from(conn.resumed() == Some(true));
                conns.push(conn);
            }
            Ok(Err(kind)) => *st.errors.entry(kind).or_default() += 1,
            Err(_) => *st.errors.entry(ErrorKind::Reset).or_default() += 1,
        }
    }
    st.opened = u32::try_from(conns.len()).unwrap_or(u32::MAX);
    if let Some(n) = st.errors.get(&ErrorKind::Local) {
        st.machine_limit = Some(format!(
            "{n} connections failed on this machine (out of file descriptors or source ports), not at the target"
        ));
    }
    // Hold, with one request on each connection every KEEPALIVE_EVERY at most (below
    // common idle timeouts such as Apache's 5 s): a connection the server closes or fails
    // on is not held.
    let rounds = rounds(hold);
    let opened_at = Instant::now();
    for round in 1..=rounds {
        let at = opened_at + hold.mul_f64(f64::from(round) / f64::from(rounds));
        while Instant::now() < at && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(
                Duration::from_millis(100).min(at.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        if stop.load(Ordering::Relaxed) {
            st.machine_limit
                .get_or_insert_with(|| "the scan was interrupted".into());
            break;
        }
        let mut set = JoinSet::new();
        for mut conn in std::mem::take(&mut conns) {
            let (gate, ep, sent) = (gate.clone(), ep.clone(), sent.clone());
            set.spawn(async move {
                let _turn = gate.acquire_owned().await.ok();
                if conn.is_closed() {
                    return Err(ErrorKind::Reset);
                }
                one_request(&mut conn, &ep, &sent).await.map(|()| conn)
            });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(conn)) => conns.push(conn),
                Ok(Err(kind)) => *st.errors.entry(kind).or_default() += 1,
                Err(_) => *st.errors.entry(ErrorKind::Reset).or_default() += 1,
            }
        }
    }
    st.held = u32::try_from(conns.len()).unwrap_or(u32::MAX);
    st.sent = sent.load(Ordering::Relaxed);
    st.elapsed = started.elapsed();
    st
}
