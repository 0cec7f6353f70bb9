//! `load.degradation`: the p95 latency under load, against the p95 of the idle baseline (20
//! req/s on one connection). Fails when it is more than `degradation` times the idle p95 and
//! the gap is at least a tenth of the p95 threshold (sub-millisecond ratios are noise).

use super::{LoadObservation, Rule, generator_limit, phase_evidence, stats};
use crate::engine::Emitter;
use crate::model::{Reason, ReasonKind, Status};

pub(super) const DEGRADATION: &str = "load.degradation";

pub(super) const RULE: Rule = Rule {
    ids: &[DEGRADATION],
    eval,
};

fn eval(obs: &LoadObservation, out: &mut Emitter) {
    let o = &obs.options;
    let Some(idle) = obs.idle() else {
        return out.skipped(DEGRADATION, "no idle baseline was measured (idle = 0)");
    };
    let st = match obs.steady() {
        Ok(st) => st,
        Err(r) => return out.inconclusive(DEGRADATION, &r),
    };
    let base = stats::at_quantile(&idle.corrected, 0.95);
    let loaded = stats::at_quantile(&st.corrected, 0.95);
    let evidence = phase_evidence(st)
        .text("idle_p95", stats::ms(base))
        .text("loaded_p95", stats::ms(loaded))
        .text("factor_allowed", format!("{}", o.degradation));
    if let Some(reason) = generator_limit(st, o).or_else(|| generator_limit(idle, o)) {
        return out.emit(
            DEGRADATION,
            Status::Inconclusive,
            format!("could not decide: {}", reason.detail),
            evidence,
            Some(reason),
        );
    }
    let need = stats::samples_needed(0.95);
    if idle.corrected.len() < need || st.corrected.len() < need {
        let reason = Reason::new(
            ReasonKind::Budget,
            format!(
                "too few samples for two p95s: idle {}, steady {}, each needs {need}",
                idle.corrected.len(),
                st.corrected.len()
            ),
        );
        return out.emit(
            DEGRADATION,
            Status::Inconclusive,
            format!("could not decide: {}", reason.detail),
            evidence,
            Some(reason),
        );
    }
    let factor = loaded.as_secs_f64() / base.as_secs_f64().max(1e-6);
    let floor = o.p95 / 10;
    if factor > o.degradation && loaded.saturating_sub(base) >= floor {
        out.fail(
            DEGRADATION,
            format!(
                "p95 under load {} is {factor:.1}× the idle p95 {} (allowed {}×)",
                stats::ms(loaded),
                stats::ms(base),
                o.degradation
            ),
            evidence,
        );
    } else {
        out.pass(
            DEGRADATION,
            format!(
                "p95 under load {} against {} idle ({factor:.1}×)",
                stats::ms(loaded),
                stats::ms(base)
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
    fn slower_under_load_fails() {
        // Idle p95 is 1 ms in the fixture.
        assert_eq!(
            status(&RULE, &obs(phase("steady", 100.0, 30, 2_000)), DEGRADATION),
            Status::Pass
        );
        assert_eq!(
            status(&RULE, &obs(phase("steady", 100.0, 30, 20_000)), DEGRADATION),
            Status::Fail
        );
    }
}
