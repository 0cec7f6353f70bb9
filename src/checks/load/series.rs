//! Per-second figures of a phase, and the live counters of a running one.
//!
//! - [`Seconds`]: one small latency histogram (2 significant digits, about 10 KiB) per second
//!   of the schedule, allocated when the first answer of that second arrives. A phase lasts
//!   at most 600 s (the family's ceiling), so a phase holds at most 601 of them, and only
//!   the running phase's live at once: what stays is one p95 per second.
//! - [`Live`]: atomics the connections bump and the progress line reads (requests done,
//!   failed, and the p95 of the last complete second).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Per-second latency of one phase (by scheduled second).
#[derive(Debug)]
pub struct Seconds {
    slots: Vec<Mutex<Option<Histogram<u32>>>>,
}

impl Seconds {
    /// Slots for a phase of `seconds` seconds of schedule.
    pub fn new(seconds: usize) -> Seconds {
        Seconds {
            slots: (0..seconds).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Record a latency for a request scheduled in second `s`.
    pub fn record(&self, s: usize, latency: Duration) {
        let Some(slot) = self.slots.get(s) else {
            return;
        };
        let mut h = match slot.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        h.get_or_insert_with(super::mix::small_histogram)
            .saturating_record(
                u64::try_from(latency.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
    }

    /// The p95 of second `s`, µs (0 when nothing was answered in it).
    pub fn p95(&self, s: usize) -> u64 {
        self.slots.get(s).map_or(0, |slot| {
            let h = match slot.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            h.as_ref().map_or(0, |h| h.value_at_quantile(0.95))
        })
    }

    /// The p95 of every second, µs.
    pub fn finish(&self) -> Vec<u64> {
        (0..self.slots.len()).map(|s| self.p95(s)).collect()
    }
}

/// What a running load probe shows on the progress line.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests with an outcome so far (all phases).
    pub done: AtomicU64,
    /// Of them, failed.
    pub errors: AtomicU64,
    /// p95 of the last complete second, µs (0: none yet).
    pub p95_us: AtomicU64,
    /// Completed requests in the last complete second.
    pub last_second: AtomicU64,
    /// The running phase: its name and rate.
    pub phase: Mutex<(&'static str, f64)>,
}

impl Live {
    /// Count one outcome.
    pub fn count(&self, ok: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A phase started.
    pub fn start(&self, name: &'static str, rate: f64) {
        let mut p = match self.phase.lock() {
            Ok(g) => g,
            Err(e) => e.into_inner(),
        };
        *p = (name, rate);
        self.p95_us.store(0, Ordering::Relaxed);
        self.last_second.store(0, Ordering::Relaxed);
    }

    /// The progress message for `target`: `load on T: steady 100/s · 98 req/s · p95 1.23 ms ·
    /// 0 errors of 812`.
    pub fn message(&self, target: &str) -> String {
        let (name, rate) = match self.phase.lock() {
            Ok(g) => *g,
            Err(e) => *e.into_inner(),
        };
        message(
            target,
            name,
            rate,
            self.last_second.load(Ordering::Relaxed),
            self.p95_us.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            self.done.load(Ordering::Relaxed),
        )
    }
}

/// See [`Live::message`].
pub fn message(
    target: &str,
    phase: &str,
    rate: f64,
    per_s: u64,
    p95_us: u64,
    errors: u64,
    done: u64,
) -> String {
    let p95 = if p95_us == 0 {
        "p95 –".to_string()
    } else {
        format!("p95 {}", super::stats::ms(Duration::from_micros(p95_us)))
    };
    format!(
        "load on {target}: {phase} at {rate}/s · {per_s} req/s · {p95} · {errors} errors of {done}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_keep_a_p95_each() {
        let s = Seconds::new(3);
        for i in 0..100u64 {
            s.record(1, Duration::from_micros(1000 + i * 10));
        }
        s.record(7, Duration::from_millis(5)); // past the phase: ignored
        let p = s.finish();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], 0);
        assert!((1900..=2000).contains(&p[1]), "{p:?}");
        assert_eq!(p[2], 0);
    }

    #[test]
    fn the_live_line_reads_well() {
        let live = Live::default();
        live.start("steady", 100.0);
        live.count(true);
        live.count(false);
        live.p95_us.store(1234, Ordering::Relaxed);
        live.last_second.store(99, Ordering::Relaxed);
        assert_eq!(
            live.message("http://h/"),
            "load on http://h/: steady at 100/s · 99 req/s · p95 1.23 ms · 1 errors of 2"
        );
    }
}
