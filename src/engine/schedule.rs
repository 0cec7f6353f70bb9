//! Stage 3, schedule: each (target, family) pair that applies is one job. Jobs run on a
//! [`JoinSet`] under the global task semaphore (`--concurrency`) and at most `--per-host`
//! families at once per host; families that declare themselves *exclusive* on a target
//! (bursts, failed logins, a real login) run one after another there, so that one's traffic
//! does not skew another's measurements.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::collect;
use super::cx::{Cx, ScanCx, ScanTarget};
use super::family::Family;
use crate::model::{Outcome, ReasonKind, TargetResult, TargetStatus};
use crate::plan::ScanPlan;
use crate::target::Target;

/// The families to run on `target`, each with whether it applies.
pub fn selected(
    plan: &ScanPlan,
    families: &[&'static dyn Family],
    target: &Target,
) -> Vec<(&'static dyn Family, bool)> {
    let requested: &[&'static str] = target.families.as_deref().unwrap_or(&plan.families);
    families
        .iter()
        .copied()
        .filter_map(|family| {
            if requested.is_empty() {
                family
                    .applies_with(target, &plan.settings)
                    .then_some((family, true))
            } else if requested.contains(&family.family()) {
                // Asked for by name: run it wherever it can run, not only where it runs by
                // default (e.g. TLS on host:5432).
                Some((family, family.can_run(target, &plan.settings)))
            } else {
                None
            }
        })
        .collect()
}

/// What the plan asks that the scan will not do, one line each, for the user to read before
/// it starts: families asked for by name that need `[[target.endpoint]]` tables on targets that
/// name none (one line for all of them), then each family's own notes ([`Family::plan_notes`]).
pub fn notes(plan: &ScanPlan, families: &[&'static dyn Family]) -> Vec<String> {
    let mut runs_on: HashMap<&'static str, Vec<&Target>> = HashMap::new();
    let mut without: Vec<&'static str> = Vec::new();
    let mut rules = 0;
    let mut bare: Vec<&str> = Vec::new();
    for target in &plan.targets {
        for (family, runs) in selected(plan, families, target) {
            if runs {
                runs_on.entry(family.family()).or_default().push(target);
            } else if family.needs_endpoints() && target.endpoints.is_empty() {
                if !without.contains(&family.family()) {
                    without.push(family.family());
                    rules += family.rule_ids().len();
                }
                if !bare.contains(&target.id.as_str()) {
                    bare.push(&target.id);
                }
            }
        }
    }
    let mut out = Vec::new();
    if !without.is_empty() {
        let shown: Vec<&str> = bare.iter().take(3).copied().collect();
        let more = bare.len().saturating_sub(shown.len());
        out.push(format!(
            "{} {} only the endpoints a config file names in [[target.endpoint]] tables, and {}{} {} none: {} {rules} rules are skipped there (README, \"Configuration\", shows an example)",
            without.join(", "),
            if without.len() == 1 { "tests" } else { "test" },
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() },
            if bare.len() == 1 { "names" } else { "name" },
            if without.len() == 1 { "its" } else { "their" },
        ));
    }
    for family in families {
        let on = runs_on
            .get(family.family())
            .map(Vec::as_slice)
            .unwrap_or_default();
        out.extend(family.plan_notes(plan, on));
    }
    out
}

/// Run every job of the plan until done or interrupted; returns `(target index, result)`
/// pairs and whether the interrupt came.
pub async fn run(
    plan: &ScanPlan,
    families: &[&'static dyn Family],
    cx: &Arc<ScanCx>,
    targets: &[TargetResult],
    reached: &[Option<ScanTarget>],
    mut interrupted: bool,
    interrupt: &mut Pin<&mut impl Future<Output = ()>>,
) -> (Vec<(usize, Outcome)>, bool) {
    type Group = Vec<&'static dyn Family>;
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    let mut pending: HashMap<tokio::task::Id, (usize, Group)> = HashMap::new();
    let mut set: JoinSet<(usize, Vec<Outcome>)> = JoinSet::new();
    // Jobs left per target, for the progress line (targets done / total).
    let mut left: HashMap<usize, usize> = HashMap::new();
    for (i, st) in reached.iter().enumerate() {
        // A name that did not resolve still gets the families that need no address.
        let unresolved = match (st, targets.get(i), plan.targets.get(i)) {
            (None, Some(t), Some(target))
                if t.status == TargetStatus::Unreachable
                    && t.error.as_ref().is_some_and(|r| r.kind == ReasonKind::Dns) =>
            {
                Some(ScanTarget {
                    target: target.clone(),
                    addrs: Vec::new(),
                })
            }
            _ => None,
        };
        let Some(st) = st.as_ref().or(unresolved.as_ref()) else {
            continue;
        };
        let mut groups: Vec<Group> = Vec::new();
        let mut exclusive: Group = Vec::new();
        for (family, applies) in selected(plan, families, &st.target) {
            if unresolved.is_some() && (!applies || !family.runs_without_address()) {
                continue;
            }
            if !applies {
                outcomes.extend(
                    collect::not_applicable(family, &st.target.id)
                        .into_iter()
                        .map(|o| (i, o)),
                );
            } else if interrupted {
                outcomes.extend(
                    collect::unfinished(family, &st.target.id, &collect::interrupted_reason())
                        .into_iter()
                        .map(|o| (i, o)),
                );
            } else if family.exclusive(&st.target) {
                exclusive.push(family);
            } else {
                groups.push(vec![family]);
            }
        }
        if !exclusive.is_empty() {
            groups.push(exclusive);
        }
        if !groups.is_empty() {
            left.insert(i, groups.len());
        }
        for group in groups {
            let cx = cx.clone();
            let st = st.clone();
            let jobs = group.clone();
            let handle = set.spawn(async move {
                let _permit = cx.limits.task().await;
                // At most `per_host` families run on one host at once, and a family's deadline
                // starts only once it holds its slot, so queueing never looks like a timeout.
                let _host = cx.limits.host_task(&cx.host_key(&st.target.host())).await;
                let mut all = Vec::new();
                for family in jobs {
                    cx.settings.progress.family(&st.target.id, family.family());
                    let budget = family.budget(&st.target, &cx.settings);
                    let fcx = Cx::new(&cx, family.family(), &st, i, budget);
                    all.extend(collect::run_family(family, &fcx).await);
                }
                (i, all)
            });
            pending.insert(handle.id(), (i, group));
        }
    }
    let progress = &cx.settings.progress;
    progress.targets(left.len());
    let mut job_done = |i: usize| {
        if let Some(n) = left.get_mut(&i) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                progress.target_done();
            }
        }
    };
    loop {
        tokio::select! {
            biased;
            () = interrupt.as_mut(), if !interrupted => {
                interrupted = true;
                set.abort_all();
            }
            next = set.join_next_with_id() => match next {
                None => break,
                Some(Ok((id, (i, list)))) => {
                    pending.remove(&id);
                    job_done(i);
                    outcomes.extend(list.into_iter().map(|o| (i, o)));
                }
                Some(Err(err)) => {
                    let Some((i, group)) = pending.remove(&err.id()) else { continue };
                    job_done(i);
                    let target_id = plan.targets.get(i).map(|t| t.id.clone()).unwrap_or_default();
                    let names: Vec<&str> = group.iter().map(|c| c.family()).collect();
                    let reason = if err.is_panic() {
                        crate::model::Reason::new(ReasonKind::Bug, format!("the {} checks panicked: {}", names.join("/"), collect::panic_message(err)))
                    } else {
                        collect::interrupted_reason()
                    };
                    for family in group {
                        outcomes.extend(collect::unfinished(family, &target_id, &reason).into_iter().map(|o| (i, o)));
                    }
                }
            },
        }
    }
    (outcomes, interrupted)
}
