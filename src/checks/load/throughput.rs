//! `load.throughput`: the steady phase served its target rate: successful answers per
//! second at least 95 % of the requested arrival rate.

use super::{LoadObservation, Rule, generator_limit, phase_evidence};
use crate::engine::Emitter;
use crate::model::Status;

pub(super) const THROUGHPUT: &str = "load.throughput";

pub(super) const RULE: Rule = Rule {
    ids: &[THROUGHPUT],
    eval,
};

/// The share of the requested rate that must be served.
pub const SERVED: f64 = 0.95;

fn eval(obs: &LoadObservation, out: &mut Emitter) {
    let st = match obs.steady() {
        Ok(st) => st,
        Err(r) => return out.inconclusive(THROUGHPUT, &r),
    };
    #[allow(clippy::cast_precision_loss, reason = "counts are at most millions")]
    let achieved = st.ok as f64 / st.spec.duration.as_secs_f64().max(0.001);
    let requested = st.spec.rate;
    let evidence = phase_evidence(st)
        .text("requested_per_s", format!("{requested}"))
        .text("achieved_per_s", format!("{achieved:.1}"));
    if let Some(reason) = generator_limit(st, &obs.options) {
        return out.emit(
            THROUGHPUT,
            Status::Inconclusive,
            format!("could not decide: {}", reason.detail),
            evidence,
            Some(reason),
        );
    }
    let per_min = |r: f64| r * 60.0;
    if achieved < requested * SERVED {
        out.fail(
            THROUGHPUT,
            format!(
                "served {achieved:.1}/s ({:.0}/min) of the {requested}/s ({:.0}/min) asked for, under {:.0} %: {} errors, {} dropped iterations",
                per_min(achieved),
                per_min(requested),
                SERVED * 100.0,
                st.error_count(),
                st.dropped
            ),
            evidence,
        );
    } else {
        out.pass(
            THROUGHPUT,
            format!(
                "served {achieved:.1}/s ({:.0}/min) of the {requested}/s asked for",
                per_min(achieved)
            ),
            evidence,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{obs, phase, status};
    use super::*;

    #[test]
    fn a_rate_not_served_fails() {
        let st = phase("steady", 100.0, 30, 1000);
        assert_eq!(status(&RULE, &obs(st.clone()), THROUGHPUT), Status::Pass);
        let mut short = st;
        short.ok = 2000;
        assert_eq!(status(&RULE, &obs(short), THROUGHPUT), Status::Fail);
    }
}
