//! `load.latency_p95`: the steady phase's p95 latency, from each request's scheduled send
//! time, against its threshold (and the optional p99 and max thresholds).

use super::{LoadObservation, Rule, generator_limit, phase_evidence, stats};
use crate::engine::Emitter;
use crate::model::{Evidence, Reason, ReasonKind, Status};

pub(super) const P95: &str = "load.latency_p95";

pub(super) const RULE: Rule = Rule { ids: &[P95], eval };

fn eval(obs: &LoadObservation, out: &mut Emitter) {
    let st = match obs.steady() {
        Ok(st) => st,
        Err(r) => {
            // An interrupted or stopped run still shows what its phases measured.
            let evidence = super::report_evidence(Evidence::none(), obs);
            return out.emit(
                P95,
                Status::Inconclusive,
                format!("could not decide: {}", r.detail),
                evidence,
                Some(r),
            );
        }
    };
    let o = &obs.options;
    let evidence = super::report_evidence(super::template_evidence(phase_evidence(st), st, o), obs)
        .text("threshold_p95", stats::ms(o.p95))
        .with("threshold_p95_us", super::us(o.p95));
    let mut checks = vec![("p95", 0.95, o.p95)];
    if let Some(t) = o.p99 {
        checks.push(("p99", 0.99, t));
    }
    if let Some(t) = o.max {
        checks.push(("max", 1.0, t));
    }
    let samples = st.corrected.len();
    let mut over = Vec::new();
    let mut under = Vec::new();
    let mut short = Vec::new();
    for (name, q, threshold) in checks {
        let need = stats::samples_needed(q);
        if samples < need {
            short.push(format!(
                "{name} needs at least {need} samples, the steady phase has {samples}"
            ));
            continue;
        }
        let v = stats::at_quantile(&st.corrected, q);
        let line = format!(
            "{name} {} (threshold {})",
            stats::ms(v),
            stats::ms(threshold)
        );
        if v > threshold {
            over.push(line);
        } else {
            under.push(line);
        }
    }
    // Too few samples is the run's own shortfall: say so first (unless a percentile that had
    // enough is already over its threshold).
    if over.is_empty() && !short.is_empty() {
        let reason = Reason::new(
            ReasonKind::Budget,
            format!(
                "too few samples: {}; raise the rate or the duration",
                short.join("; ")
            ),
        );
        return out.emit(
            P95,
            Status::Inconclusive,
            format!("could not decide: {}", reason.detail),
            evidence,
            Some(reason),
        );
    }
    // A busy generator reads answers late and so queues requests on busy connections: near
    // the target's capacity that can inflate the figures far beyond its own lag, so nothing
    // is decided, neither a pass nor a fail.
    if let Some(reason) = generator_limit(st, o) {
        return out.emit(
            P95,
            Status::Inconclusive,
            format!("could not decide: {}", reason.detail),
            evidence,
            Some(reason),
        );
    }
    let uncorrected = stats::ms(stats::at_quantile(&st.uncorrected, 0.95));
    if !over.is_empty() {
        // Dropped iterations waited longer than the timeout: they could only raise the
        // percentiles, so a percentile already over its threshold fails regardless.
        return out.fail(
            P95,
            format!(
                "latency over its threshold at {}/s: {} (from the scheduled send time; {uncorrected} p95 from the actual send)",
                st.spec.rate,
                over.join(", ")
            ),
            evidence,
        );
    }
    if st.dropped > 0 {
        let reason = Reason::new(
            ReasonKind::Budget,
            format!(
                "{} of {} requests were never sent (dropped iterations: every one of the {} connections was busy for longer than the timeout), so the measured latencies are incomplete",
                st.dropped, st.scheduled, st.spec.connections
            ),
        );
        return out.emit(
            P95,
            Status::Inconclusive,
            format!("could not decide: {}", reason.detail),
            evidence,
            Some(reason),
        );
    }
    out.pass(
        P95,
        format!(
            "latency within its threshold at {}/s: {}",
            st.spec.rate,
            under.join(", ")
        ),
        evidence,
    );
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{obs, phase, status};
    use super::*;

    #[test]
    fn the_table_and_series_come_with_every_verdict() {
        let evidence = |o: &LoadObservation| {
            let mut out = Emitter::new(super::super::FAMILY, "t");
            (RULE.eval)(o, &mut out);
            out.finish().remove(0).evidence
        };
        let keys =
            |e: &crate::model::Evidence| -> Vec<&str> { e.0.iter().map(|(k, _)| *k).collect() };
        let done = evidence(&obs(phase("steady", 100.0, 30, 2_000)));
        for key in ["phase_rows", "steady_series", "threshold_p95_us"] {
            assert!(keys(&done).contains(&key), "{key}");
        }
        let Some((_, crate::model::Observed::List(series))) =
            done.0.iter().find(|(k, _)| *k == "steady_series")
        else {
            panic!("no series")
        };
        assert_eq!(series.len(), 30);
        // Interrupted: inconclusive, and the phases that ran are still shown.
        let mut st = phase("steady", 100.0, 30, 2_000);
        st.stopped = Some("the scan was interrupted".into());
        let o = obs(st);
        assert_eq!(status(&RULE, &o, P95), Status::Inconclusive);
        let e = evidence(&o);
        let Some((_, crate::model::Observed::List(rows))) =
            e.0.iter().find(|(k, _)| *k == "phase_rows")
        else {
            panic!("no rows: {e:?}")
        };
        assert_eq!(rows.len(), 2, "idle and steady");
    }

    #[test]
    fn p95_is_judged_on_enough_samples() {
        assert_eq!(
            status(&RULE, &obs(phase("steady", 100.0, 30, 2_000)), P95),
            Status::Pass
        );
        assert_eq!(
            status(&RULE, &obs(phase("steady", 100.0, 30, 80_000)), P95),
            Status::Fail
        );
        // 100 samples are not enough for a p95.
        assert_eq!(
            status(&RULE, &obs(phase("steady", 50.0, 2, 2_000)), P95),
            Status::Inconclusive
        );
    }

    #[test]
    fn dropped_iterations_or_lag_never_pass() {
        let mut st = phase("steady", 100.0, 30, 2_000);
        st.dropped = 3;
        assert_eq!(status(&RULE, &obs(st.clone()), P95), Status::Inconclusive);
        st.dropped = 0;
        // A few late sends (preemption) are not a generator limit; 10 % late are.
        for _ in 0..100 {
            st.lag.saturating_record(40_000);
        }
        assert_eq!(status(&RULE, &obs(st.clone()), P95), Status::Pass);
        for _ in 0..200 {
            st.lag.saturating_record(40_000);
        }
        assert_eq!(status(&RULE, &obs(st.clone()), P95), Status::Inconclusive);
        // Nor a fail: a busy client makes requests queue.
        let mut busy_slow = phase("steady", 100.0, 30, 120_000);
        busy_slow.lag = st.lag;
        assert_eq!(status(&RULE, &obs(busy_slow), P95), Status::Inconclusive);
        // A p95 over its threshold fails even with dropped iterations (they only raise it).
        let mut slow = phase("steady", 100.0, 30, 90_000);
        slow.dropped = 3;
        assert_eq!(status(&RULE, &obs(slow), P95), Status::Fail);
    }
}
