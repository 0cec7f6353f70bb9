//! Politeness: one global semaphore for (target, family) tasks, one semaphore per host for
//! connections, and one host-wide back-off, so that a scan of many targets stays polite to
//! each of them, whichever family is talking.
//!
//! **Back-off.** A 429 or 503 answer to any family slows every family on that service (the
//! host name and port that answered, see [`backoff_key`]; not every name of the address, which
//! may be a CDN's or a load balancer's): with a `Retry-After` (seconds or an HTTP date), every
//! request and connection to it waits until then (at
//! most [`MAX_RETRY_AFTER`] per answer); without one, each such answer in a row doubles a
//! pause from 250 ms up to 4 s, and a successful answer ends the streak. A host may hold a
//! scan's requests for [`crate::engine::MAX_BACKOFF_WAIT`] in all; after that its requests
//! fail with reason `budget` (the rules become inconclusive) rather than wait longer.
//! Requests that *measure* the limit (the rate-limit bursts, which stop at the first clear
//! limit) are held only by an explicit `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::{Backoff, Reason, ReasonKind};

/// The longest one `Retry-After` holds a host's requests.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct HostState {
    until: Option<Instant>,
    explicit: bool,
    streak: u32,
    events: u32,
    waited: Duration,
}

/// The back-off key of the service at `host` (a name as the target wrote it, normalised) and
/// `port`: a 429 from `shop.example.com:443` slows that service, not every other name served
/// from the same address.
pub fn backoff_key(host: &str, port: u16) -> String {
    let host = super::normalise_host(host);
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The scan's limits.
#[derive(Debug)]
pub struct Limits {
    tasks: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    host_tasks: Mutex<HashMap<String, Arc<Semaphore>>>,
    backoff: Mutex<HashMap<String, HostState>>,
}

impl Limits {
    /// `concurrency` tasks at once over the whole scan; `per_host` connections per host.
    pub fn new(concurrency: usize, per_host: usize) -> Limits {
        Limits {
            tasks: Arc::new(Semaphore::new(concurrency.max(1))),
            per_host: per_host.max(1),
            hosts: Mutex::new(HashMap::new()),
            host_tasks: Mutex::new(HashMap::new()),
            backoff: Mutex::new(HashMap::new()),
        }
    }

    fn with_host<R>(&self, host: &str, f: impl FnOnce(&mut HostState) -> R) -> R {
        let mut map = match self.backoff.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(map.entry(host.to_string()).or_default())
    }

    /// Record an HTTP answer from `host`: a 429 or 503 starts or extends the back-off.
    pub fn note_answer(&self, host: &str, status: u16, retry_after: Option<&str>) {
        let now = Instant::now();
        self.with_host(host, |h| {
            if !matches!(status, 429 | 503) {
                if status < 400 {
                    h.streak = 0;
                }
                return;
            }
            h.events += 1;
            let (delay, explicit) = match retry_after.and_then(parse_retry_after) {
                Some(d) => (d.min(MAX_RETRY_AFTER), true),
                None => {
                    h.streak = h.streak.saturating_add(1);
                    let shift = h.streak.saturating_sub(1).min(4);
                    (Duration::from_millis(250u64 << shift), false)
                }
            };
            let until = now + delay;
            if h.until.is_none_or(|u| u < until) {
                h.until = Some(until);
                h.explicit = explicit;
            } else if explicit {
                h.explicit = true;
            }
        });
    }

    /// Wait out `host`'s back-off, if any (a `measuring` request only an explicit
    /// Retry-After). Fails once the host has held the scan for `cap` in all.
    pub async fn wait_backoff(
        &self,
        host: &str,
        measuring: bool,
        cap: Duration,
    ) -> Result<(), Reason> {
        let now = Instant::now();
        let wait = self.with_host(host, |h| {
            let until = h.until?;
            if until <= now || (measuring && !h.explicit) {
                return None;
            }
            Some((until - now, h.waited))
        });
        let Some((wait, waited)) = wait else {
            return Ok(());
        };
        if waited + wait > cap {
            return Err(Reason::new(
                ReasonKind::Budget,
                format!(
                    "{host} kept asking secgate to back off (429/503 answers): it already waited {} in all, the most it waits for one host",
                    super::net::secs(Duration::from_secs(waited.as_secs()))
                ),
            ));
        }
        self.with_host(host, |h| h.waited += wait);
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// The back-off `key` asked for so far, if it ever did.
    pub fn backoff(&self, key: &str) -> Option<Backoff> {
        self.backoff_where(|k| k == key)
    }

    /// The back-off of every host that asked for one, summed over its services (ports): one
    /// pass over the back-off table, for the report's `targets[].backoff`.
    pub fn backoff_by_host(&self) -> HashMap<String, Backoff> {
        let map = match self.backoff.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out: HashMap<String, Backoff> = HashMap::new();
        for (key, h) in map.iter().filter(|(_, h)| h.events > 0) {
            let host = key.rsplit_once(':').map_or(key.as_str(), |(h, _)| h);
            let host = super::normalise_host(host);
            let b = out.entry(host).or_default();
            b.events = b.events.saturating_add(h.events);
            b.waited_ms = b
                .waited_ms
                .saturating_add(u64::try_from(h.waited.as_millis()).unwrap_or(u64::MAX));
        }
        out
    }

    fn backoff_where(&self, matches: impl Fn(&str) -> bool) -> Option<Backoff> {
        let map = match self.backoff.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (events, waited) = map
            .iter()
            .filter(|(k, _)| matches(k))
            .fold((0u32, Duration::ZERO), |(e, w), (_, h)| {
                (e.saturating_add(h.events), w + h.waited)
            });
        (events > 0).then(|| Backoff {
            events,
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Wait for a task slot. `None` only if the semaphore was closed, which never happens.
    pub async fn task(&self) -> Option<OwnedSemaphorePermit> {
        self.tasks.clone().acquire_owned().await.ok()
    }

    /// Wait for a connection slot to `host` (an address or a name).
    pub async fn connection(&self, host: &str) -> Option<OwnedSemaphorePermit> {
        self.slot(&self.hosts, host).await
    }

    /// Wait for a slot to run one family on `host`: at most `per_host` at once per host.
    pub async fn host_task(&self, host: &str) -> Option<OwnedSemaphorePermit> {
        self.slot(&self.host_tasks, host).await
    }

    async fn slot(
        &self,
        map: &Mutex<HashMap<String, Arc<Semaphore>>>,
        host: &str,
    ) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut hosts = match map.lock() {
                Ok(h) => h,
                Err(poisoned) => poisoned.into_inner(),
            };
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        sem.acquire_owned().await.ok()
    }
}

/// A `Retry-After` value: delta seconds, or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(v, format).ok()?.assume_utc();
    let left = at - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_a_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test]
    async fn a_429_holds_every_request_to_the_host() {
        let limits = Limits::new(4, 2);
        limits.note_answer("a", 429, Some("1"));
        let started = Instant::now();
        limits
            .wait_backoff("a", false, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(900));
        // Another host is not held; a measuring request is held by Retry-After too.
        limits.note_answer("b", 503, None);
        let started = Instant::now();
        limits
            .wait_backoff("b", true, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_millis(100));
        limits
            .wait_backoff("b", false, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        // Past the cap, requests are refused instead of held.
        limits.note_answer("c", 429, Some("5"));
        let e = limits
            .wait_backoff("c", false, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ReasonKind::Budget);
        assert_eq!(limits.backoff("a").unwrap().events, 1);
    }

    #[tokio::test]
    async fn back_off_is_per_service_and_sums_per_host() {
        let limits = Limits::new(4, 2);
        let shop = backoff_key("Shop.Example.com.", 443);
        assert_eq!(shop, "shop.example.com:443");
        limits.note_answer(&shop, 429, Some("1"));
        limits.note_answer(&backoff_key("shop.example.com", 8443), 503, None);
        // Another name on the same address, and another port, are not held by the 429.
        let started = Instant::now();
        limits
            .wait_backoff(
                &backoff_key("api.example.com", 443),
                false,
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(limits.backoff(&shop).unwrap().events, 1);
        assert_eq!(backoff_key("::1", 443), "[::1]:443");
        limits.note_answer("[::1]:443", 429, None);
        let by_host = limits.backoff_by_host();
        assert_eq!(by_host["shop.example.com"].events, 2);
        assert_eq!(by_host["::1"].events, 1);
        assert!(!by_host.contains_key("api.example.com"));
    }

    #[tokio::test]
    async fn per_host_limit_is_enforced_per_host() {
        let limits = Limits::new(4, 2);
        let a1 = limits.connection("a").await;
        let a2 = limits.connection("a").await;
        assert!(a1.is_some() && a2.is_some());
        // A third connection to "a" must wait; "b" is independent.
        let third =
            tokio::time::timeout(std::time::Duration::from_millis(50), limits.connection("a"))
                .await;
        assert!(third.is_err());
        assert!(limits.connection("b").await.is_some());
        drop(a1);
        assert!(limits.connection("a").await.is_some());
    }
}
