//! Stage 4, collect: turn what each family returned (or failed to return) into exactly one
//! result per rule and target. A family that panics or overruns its deadline yields
//! `inconclusive` results (reason `bug` or `timeout`) for its own rules only; a rule a family
//! forgot becomes an inconclusive `bug` result, never a silent gap in the score.

use std::collections::HashSet;

use super::cx::{Cx, ScanTarget};
use super::family::{Emitter, Family};
use super::net;
use crate::model::{Outcome, Reason, ReasonKind};

/// Run one family on one target under its deadline, completing its result list.
pub async fn run_family(family: &dyn Family, cx: &Cx<'_>) -> Vec<Outcome> {
    use futures::FutureExt as _;
    let st: &ScanTarget = cx.target();
    let deadline = family.deadline(cx.settings(), &st.target);
    // A panic inside a family is caught here, so that it costs only that family's results.
    let guarded = std::panic::AssertUnwindSafe(family.run(cx)).catch_unwind();
    match tokio::time::timeout(deadline, guarded).await {
        // A shard's slices of a sweep give no results of their own (the merge judges them).
        Ok(Ok(outcomes)) if family.sliceable() && !st.target.slices.is_empty() => outcomes,
        Ok(Ok(outcomes)) => complete(family, &st.target.id, outcomes),
        Ok(Err(payload)) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            unfinished(
                family,
                &st.target.id,
                &Reason::new(
                    ReasonKind::Bug,
                    format!("the {} checks panicked: {message}", family.family()),
                ),
            )
        }
        Err(_) => unfinished(
            family,
            &st.target.id,
            &Reason::new(
                ReasonKind::Timeout,
                format!(
                    "the {} checks did not finish within {}",
                    family.family(),
                    net::secs(deadline)
                ),
            ),
        ),
    }
}

/// Make sure every rule of `family` has exactly one result: drop duplicates, and record a rule
/// the family forgot as an inconclusive bug rather than silently leaving it out of the score.
pub fn complete(family: &dyn Family, target: &str, outcomes: Vec<Outcome>) -> Vec<Outcome> {
    let mut seen = HashSet::new();
    let mut out: Vec<Outcome> = outcomes
        .into_iter()
        .filter(|o| seen.insert(o.rule_id))
        .collect();
    let mut missing = Emitter::new(family.family(), target);
    for id in family.rule_ids() {
        if !seen.contains(id) {
            missing.inconclusive(
                id,
                &Reason::new(
                    ReasonKind::Bug,
                    format!("the {} checks did not report {id}", family.family()),
                ),
            );
        }
    }
    out.extend(missing.finish());
    out
}

/// Inconclusive results for every rule of a family that did not finish.
pub fn unfinished(family: &dyn Family, target: &str, reason: &Reason) -> Vec<Outcome> {
    let mut out = Emitter::new(family.family(), target);
    for id in family.rule_ids() {
        out.inconclusive(id, reason);
    }
    out.finish()
}

/// Skipped results for every rule of a family that does not apply to a target.
pub fn not_applicable(family: &dyn Family, target: &str) -> Vec<Outcome> {
    let mut out = Emitter::new(family.family(), target);
    for id in family.rule_ids() {
        out.skipped(
            id,
            format!(
                "the {} family does not apply to this target",
                family.family()
            ),
        );
    }
    out.finish()
}

/// The reason of a result that the interrupt left undecided.
pub fn interrupted_reason() -> Reason {
    Reason::new(
        ReasonKind::Interrupted,
        "the scan was interrupted before this was evaluated",
    )
}

/// The message of a task's panic.
pub fn panic_message(err: tokio::task::JoinError) -> String {
    match err.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into()),
        Err(e) => e.to_string(),
    }
}
