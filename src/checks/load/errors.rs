//! `load.error_rate`: the share of failed requests in the steady phase (connect, TLS,
//! timeout, reset and malformed answers, and statuses 400 and over), judged with a 95 %
//! confidence bound so that a short run cannot pass (the rule of three).

use super::{LoadObservation, Rule, phase_evidence, stats};
use crate::engine::Emitter;
use crate::model::{Reason, ReasonKind, Status};

pub(super) const ERROR_RATE: &str = "load.error_rate";

pub(super) const RULE: Rule = Rule {
    ids: &[ERROR_RATE],
    eval,
};

fn eval(obs: &LoadObservation, out: &mut Emitter) {
    let o = &obs.options;
    // An early stop for errors is judged on the phase it happened in.
    let (st, aborted) = match (obs.steady(), obs.aborted()) {
        (Ok(st), _) => (st, None),
        (Err(_), Some((st, why))) if why.starts_with("stopped early") => (st, Some(why)),
        (Err(r), _) => return out.inconclusive(ERROR_RATE, &r),
    };
    if let Some(reason) = super::local_limit(st) {
        return out.inconclusive(ERROR_RATE, &reason);
    }
    let n = st.completed();
    let k = st.error_count();
    #[allow(clippy::cast_precision_loss, reason = "counts are at most millions")]
    let rate = if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let (lo, hi) = (stats::lower_bound(k, n), stats::upper_bound(k, n));
    let kinds: Vec<String> = st
        .errors
        .iter()
        .map(|(kind, v)| format!("{v} {}", kind.as_str()))
        .collect();
    let evidence = super::template_evidence(phase_evidence(st), st, o)
        .text("error_rate", stats::pct(rate))
        .text(
            "error_rate_bounds_95",
            format!("{} – {}", stats::pct(lo), stats::pct(hi)),
        )
        .text("threshold", stats::pct(o.error_rate));
    let needed = stats::requests_needed(o.error_rate);
    if let Some(why) = aborted {
        return out.fail(
            ERROR_RATE,
            format!(
                "{k} of {n} requests failed ({}: {}) in the {} phase; {why}",
                stats::pct(rate),
                kinds.join(", "),
                st.spec.name
            ),
            evidence,
        );
    }
    if lo > o.error_rate {
        out.fail(
            ERROR_RATE,
            format!(
                "{k} of {n} requests failed ({}: {}), over the {} threshold (95 % lower bound {})",
                stats::pct(rate),
                kinds.join(", "),
                stats::pct(o.error_rate),
                stats::pct(lo)
            ),
            evidence,
        );
    } else if hi <= o.error_rate {
        out.pass(
            ERROR_RATE,
            format!(
                "{k} of {n} requests failed: the error rate is under {} with 95 % confidence (upper bound {})",
                stats::pct(o.error_rate),
                stats::pct(hi)
            ),
            evidence,
        );
    } else {
        let detail = if k == 0 {
            format!(
                "{n} requests without an error cannot show an error rate under {}: that takes at least {needed} (rule of three); raise the rate or the duration",
                stats::pct(o.error_rate)
            )
        } else {
            format!(
                "{k} of {n} requests failed ({}): the 95 % bounds {} – {} straddle the {} threshold; showing it needs at least {needed} requests, more with errors",
                stats::pct(rate),
                stats::pct(lo),
                stats::pct(hi),
                stats::pct(o.error_rate)
            )
        };
        let reason = Reason::new(ReasonKind::Budget, detail);
        out.emit(
            ERROR_RATE,
            Status::Inconclusive,
            format!("could not decide: {}", reason.detail),
            evidence,
            Some(reason),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{obs, phase, status};
    use super::super::generator::ErrorKind;
    use super::*;

    #[test]
    fn rule_of_three_decides_the_error_rate() {
        // 3,000 clean requests pass; 100 clean requests are not enough.
        assert_eq!(
            status(&RULE, &obs(phase("steady", 100.0, 30, 1000)), ERROR_RATE),
            Status::Pass
        );
        assert_eq!(
            status(&RULE, &obs(phase("steady", 50.0, 2, 1000)), ERROR_RATE),
            Status::Inconclusive
        );
        // 1 % of 3,000 fails.
        let mut st = phase("steady", 100.0, 30, 1000);
        st.ok -= 30;
        st.errors.insert(ErrorKind::Status5xx, 30);
        assert_eq!(status(&RULE, &obs(st), ERROR_RATE), Status::Fail);
    }
}
