//! `ratelimit.no_retry_after`: a 429 should say when to come back (RFC 6585 §4).

use super::{Burst, BurstEnd, Signal};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const NO_RETRY_AFTER: &str = "ratelimit.no_retry_after";

pub(super) fn eval(bursts: &[Burst], out: &mut Emitter) {
    let with_429: Vec<(&Burst, &Option<String>)> = bursts
        .iter()
        .filter_map(|b| match &b.end {
            BurstEnd::Limited {
                signal: Signal::TooManyRequests,
                retry_after,
                ..
            } => Some((b, retry_after)),
            _ => None,
        })
        .collect();
    if with_429.is_empty() {
        return out.skipped(NO_RETRY_AFTER, "no 429 response was seen");
    }
    let missing: Vec<&str> = with_429
        .iter()
        .filter(|(_, ra)| ra.is_none())
        .map(|(b, _)| b.endpoint.as_str())
        .collect();
    let evidence = Evidence::none().with(
        "bursts",
        Observed::texts(with_429.iter().map(|(b, _)| b.describe())),
    );
    if missing.is_empty() {
        out.pass(NO_RETRY_AFTER, "429 responses carry Retry-After", evidence);
    } else {
        out.fail(
            NO_RETRY_AFTER,
            format!("429 without Retry-After on {}", missing.join(", ")),
            evidence,
        );
    }
}
