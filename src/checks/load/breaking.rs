//! `load.breaking_point` (informational): with `ramp_to` set, the ramp after the steady phase
//! raises the rate step by step (geometrically, `ramp_steps` steps of `ramp_step` seconds)
//! and stops at the first step where the target breaks: dropped iterations, an error rate
//! surely over its threshold, or a p95 over its threshold. That step's rate is the breaking
//! point (a finding, for the record); a ramp that reaches `ramp_to` intact passes. A step
//! where the generator itself could not keep its schedule decides nothing (a busy client
//! makes requests queue, which looks like a target breaking).

use super::{LoadObservation, Rule, broken, generator_limit, stats};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Reason, ReasonKind, Status};

pub(super) const BREAKING_POINT: &str = "load.breaking_point";

pub(super) const RULE: Rule = Rule {
    ids: &[BREAKING_POINT],
    eval,
};

fn eval(obs: &LoadObservation, out: &mut Emitter) {
    let o = &obs.options;
    if o.ramp_rates().is_empty() {
        return out.skipped(BREAKING_POINT, "no ramp was asked for (ramp_to = 0)");
    }
    let steady = match obs.steady() {
        Ok(st) => st,
        Err(r) => return out.inconclusive(BREAKING_POINT, &r),
    };
    let steps = obs.ramp();
    let lines = steps.iter().map(|st| {
        format!(
            "{}/s: p95 {}, {} errors of {}, {} dropped",
            st.spec.rate,
            stats::ms(stats::at_quantile(&st.corrected, 0.95)),
            st.error_count(),
            st.completed(),
            st.dropped
        )
    });
    let evidence = Evidence::none()
        .with("steps", Observed::texts(lines))
        .text("ramp_to_per_s", format!("{}", o.ramp_to));
    if let Some(reason) = generator_limit(steady, o) {
        return out.inconclusive(BREAKING_POINT, &reason);
    }
    if let Some(why) = broken(steady, o) {
        return out.fail(
            BREAKING_POINT,
            format!(
                "already broken at the steady rate {}/s: {why}",
                steady.spec.rate
            ),
            evidence,
        );
    }
    let mut held = steady.spec.rate;
    for st in &steps {
        if let Some(reason) = generator_limit(st, o) {
            let reason = Reason::new(
                ReasonKind::Budget,
                format!("held {held}/s; at {}/s {}", st.spec.rate, reason.detail),
            );
            return out.emit(
                BREAKING_POINT,
                Status::Inconclusive,
                format!("could not decide: {}", reason.detail),
                evidence,
                Some(reason),
            );
        }
        if let Some(why) = broken(st, o) {
            return out.fail(
                BREAKING_POINT,
                format!("breaks at {}/s (held {held}/s): {why}", st.spec.rate),
                evidence,
            );
        }
        held = st.spec.rate;
    }
    if steps.len() < o.ramp_rates().len() {
        let reason = Reason::new(
            ReasonKind::Interrupted,
            format!(
                "the ramp stopped at {held}/s before reaching {}/s",
                o.ramp_to
            ),
        );
        return out.inconclusive(BREAKING_POINT, &reason);
    }
    out.pass(
        BREAKING_POINT,
        format!(
            "no breaking point up to {}/s: every step held its thresholds",
            o.ramp_to
        ),
        evidence,
    );
}
