//! `load.availability` (informational): the share of the steady phase's seconds in which
//! every request succeeded. A probe of seconds cannot prove 99.9 % availability, which is a
//! property of weeks of operation; the result says so.

use super::{LoadObservation, Rule, phase_evidence, stats};
use crate::engine::Emitter;
use crate::model::Observed;

pub(super) const AVAILABILITY: &str = "load.availability";

pub(super) const RULE: Rule = Rule {
    ids: &[AVAILABILITY],
    eval,
};

fn eval(obs: &LoadObservation, out: &mut Emitter) {
    let st = match obs.steady() {
        Ok(st) => st,
        Err(r) => return out.inconclusive(AVAILABILITY, &r),
    };
    let seconds: Vec<(u32, u32)> = st
        .seconds
        .iter()
        .copied()
        .filter(|(ok, err)| ok + err > 0)
        .collect();
    if seconds.is_empty() {
        return out.skipped(AVAILABILITY, "no request was scheduled in the steady phase");
    }
    let clean = seconds.iter().filter(|(_, err)| *err == 0).count();
    #[allow(clippy::cast_precision_loss, reason = "at most 600 seconds")]
    let share = clean as f64 / seconds.len() as f64;
    let bad: Vec<String> = st
        .seconds
        .iter()
        .enumerate()
        .filter(|(_, (_, err))| *err > 0)
        .take(20)
        .map(|(s, (ok, err))| format!("second {s}: {err} of {} failed", ok + err))
        .collect();
    let evidence = phase_evidence(st)
        .text("available_seconds", format!("{clean} of {}", seconds.len()))
        .with("failed_seconds", Observed::texts(bad));
    let note = format!(
        "a {}-second probe cannot prove 99.9 % availability, which is measured over weeks of operation",
        seconds.len()
    );
    if clean == seconds.len() {
        out.pass(
            AVAILABILITY,
            format!(
                "every request succeeded in all {clean} seconds of the steady phase ({}); {note}",
                stats::pct(share)
            ),
            evidence,
        );
    } else {
        out.fail(
            AVAILABILITY,
            format!(
                "{clean} of {} seconds of the steady phase had every request succeed ({}); {note}",
                seconds.len(),
                stats::pct(share)
            ),
            evidence,
        );
    }
}
