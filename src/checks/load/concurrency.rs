//! `load.concurrency`: the concurrency phase held every one of `hold_connections`
//! connections, each answering a request every few seconds, for `hold` seconds.

use super::LoadObservation;
use super::Rule;
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Reason, ReasonKind, Status};

pub(super) const CONCURRENCY: &str = "load.concurrency";

pub(super) const RULE: Rule = Rule {
    ids: &[CONCURRENCY],
    eval,
};

fn eval(obs: &LoadObservation, out: &mut Emitter) {
    let o = &obs.options;
    if o.hold_connections == 0 {
        return out.skipped(
            CONCURRENCY,
            "no concurrency phase was asked for (hold_connections = 0)",
        );
    }
    let Some(h) = &obs.hold else {
        let reason = obs.steady().err().unwrap_or_else(|| {
            Reason::new(ReasonKind::Interrupted, "the concurrency phase did not run")
        });
        return out.inconclusive(CONCURRENCY, &reason);
    };
    let n = |v: u32| Observed::Number(i64::from(v));
    let evidence = Evidence::none()
        .with("wanted", n(h.wanted))
        .with("opened", n(h.opened))
        .with("held", n(h.held))
        .with(
            "hold_ms",
            Observed::Number(i64::try_from(h.hold.as_millis()).unwrap_or(i64::MAX)),
        )
        .with("source_addresses", n(h.sources))
        .with("tls_resumed", n(h.tls_resumed))
        .with(
            "errors_by_kind",
            Observed::texts(h.errors.iter().map(|(k, v)| format!("{}={v}", k.as_str()))),
        );
    if let Some(why) = &h.machine_limit {
        let reason = Reason::new(
            ReasonKind::Budget,
            format!("the machine, not the target, was the limit: {why}"),
        );
        return out.emit(
            CONCURRENCY,
            Status::Inconclusive,
            format!("could not decide: {}", reason.detail),
            evidence,
            Some(reason),
        );
    }
    let secs = h.hold.as_secs_f64();
    if h.held >= h.wanted {
        out.pass(
            CONCURRENCY,
            format!(
                "held all {} connections for {secs} s, each answering every few seconds",
                h.wanted
            ),
            evidence,
        );
    } else {
        let kinds: Vec<String> = h
            .errors
            .iter()
            .map(|(k, v)| format!("{v} {}", k.as_str()))
            .collect();
        out.fail(
            CONCURRENCY,
            format!(
                "held {} of {} connections for {secs} s ({} opened): {}",
                h.held,
                h.wanted,
                h.opened,
                if kinds.is_empty() {
                    "no error recorded".into()
                } else {
                    kinds.join(", ")
                }
            ),
            evidence,
        );
    }
}
