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

/// Derived targets added while the scan ran ([`super::chain`]), and what each parent chained.
#[derive(Debug, Default)]
pub struct Derived {
    /// `(index, parent index, result)` of every derived target, in the order they were added.
    pub targets: Vec<(usize, usize, TargetResult)>,
    /// What chaining made of each parent's discoveries, by parent index.
    pub reports: HashMap<usize, crate::model::ChainReport>,
    /// In a shard: what the slices of sliced sweeps recorded ([`super::Cx::record_slice`]).
    pub slices: Vec<crate::model::SliceOutput>,
}

type Group = Vec<&'static dyn Family>;
type JobOut = (
    usize,
    Vec<Outcome>,
    Vec<super::chain::Discovered>,
    Vec<crate::model::SliceOutput>,
);

/// Spawn one job: `group`'s families one after another on `st` (target `i`).
fn spawn(
    set: &mut JoinSet<JobOut>,
    pending: &mut HashMap<tokio::task::Id, (usize, String, Group)>,
    cx: &Arc<ScanCx>,
    i: usize,
    st: &ScanTarget,
    group: Group,
) {
    let cx = cx.clone();
    let st = st.clone();
    let id = st.target.id.clone();
    let jobs = group.clone();
    let handle = set.spawn(async move {
        let _permit = cx.limits.task().await;
        // At most `per_host` families run on one host at once, and a family's deadline
        // starts only once it holds its slot, so queueing never looks like a timeout.
        let _host = cx.limits.host_task(&cx.host_key(&st.target.host())).await;
        let mut all = Vec::new();
        let mut found = Vec::new();
        let mut slices = Vec::new();
        for family in jobs {
            cx.settings.progress.family(&st.target.id, family.family());
            let budget = family.budget(&st.target, &cx.settings);
            let fcx = Cx::new(&cx, family.family(), &st, i, budget);
            all.extend(collect::run_family(family, &fcx).await);
            found.extend(fcx.take_discovered());
            slices.extend(fcx.take_slices());
        }
        (i, all, found, slices)
    });
    pending.insert(handle.id(), (i, id, group));
}

/// Split the families of `target` that apply into job groups (exclusive ones together), and
/// record the results of those that do not apply (or that the interrupt left undone).
fn groups(
    plan: &ScanPlan,
    families: &[&'static dyn Family],
    i: usize,
    target: &Target,
    unresolved: bool,
    interrupted: bool,
    outcomes: &mut Vec<(usize, Outcome)>,
) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut exclusive: Group = Vec::new();
    for (family, applies) in selected(plan, families, target) {
        if unresolved && (!applies || !family.runs_without_address()) {
            continue;
        }
        if !applies {
            outcomes.extend(
                collect::not_applicable(family, &target.id)
                    .into_iter()
                    .map(|o| (i, o)),
            );
        } else if interrupted {
            outcomes.extend(
                collect::unfinished(family, &target.id, &collect::interrupted_reason())
                    .into_iter()
                    .map(|o| (i, o)),
            );
        } else if family.exclusive(target) {
            exclusive.push(family);
        } else {
            groups.push(vec![family]);
        }
    }
    if !exclusive.is_empty() {
        groups.push(exclusive);
    }
    groups
}

/// Run every job of the plan until done or interrupted; returns `(target index, result)`
/// pairs, whether the interrupt came, and the derived targets chaining added (their jobs run
/// in the same set as soon as the job that discovered them ends).
pub async fn run(
    plan: &ScanPlan,
    families: &[&'static dyn Family],
    cx: &Arc<ScanCx>,
    targets: &[TargetResult],
    reached: &[Option<ScanTarget>],
    mut interrupted: bool,
    interrupt: &mut Pin<&mut impl Future<Output = ()>>,
) -> (Vec<(usize, Outcome)>, bool, Derived) {
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    let mut pending: HashMap<tokio::task::Id, (usize, String, Group)> = HashMap::new();
    let mut set: JoinSet<JobOut> = JoinSet::new();
    let mut derived = Derived::default();
    // What the plan's targets audit themselves, and the ids in the scan (chaining skips both).
    let mut audited: Vec<super::chain::Audited> = Vec::new();
    let mut ids: std::collections::HashSet<String> = std::collections::HashSet::new();
    // In a shard, what the other shards audit counts too (by name: their addresses were not
    // resolved here), so the shards together derive what one scan would.
    for (target, running) in &plan.elsewhere {
        ids.insert(target.id.clone());
        audited.push(super::chain::Audited::of(target, &[], running.clone()));
    }
    // Jobs left per target, for the progress line (targets done / total).
    let mut left: HashMap<usize, usize> = HashMap::new();
    for (i, st) in reached.iter().enumerate() {
        if let Some(target) = plan.targets.get(i) {
            ids.insert(target.id.clone());
            let running = selected(plan, families, target)
                .into_iter()
                .filter(|(_, applies)| *applies)
                .map(|(f, _)| f.family())
                .collect();
            let addrs = st.as_ref().map(|s| s.addrs.as_slice()).unwrap_or_default();
            audited.push(super::chain::Audited::of(target, addrs, running));
        }
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
        let groups = groups(
            plan,
            families,
            i,
            &st.target,
            unresolved.is_some(),
            interrupted,
            &mut outcomes,
        );
        if !groups.is_empty() {
            left.insert(i, groups.len());
        }
        for group in groups {
            spawn(&mut set, &mut pending, cx, i, st, group);
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
                Some(Ok((id, (i, list, found, slices)))) => {
                    pending.remove(&id);
                    job_done(i);
                    outcomes.extend(list.into_iter().map(|o| (i, o)));
                    derived.slices.extend(slices);
                    if found.is_empty() || interrupted {
                        continue;
                    }
                    // Chain: what the job discovered becomes derived targets, run at once.
                    let Some(parent) = reached.get(i).and_then(Option::as_ref) else { continue };
                    let (new, report) = super::chain::derive(
                        &parent.target,
                        &parent.addrs,
                        found,
                        parent.target.chain.as_deref().unwrap_or(&cx.settings.chain),
                        &audited,
                        &ids,
                    );
                    let entry = derived.reports.entry(i).or_default();
                    entry.chained.extend(report.chained.iter().cloned());
                    entry.not_chained.extend(report.not_chained);
                    for (target, chained) in new.into_iter().zip(report.chained) {
                        let Ok(addr) = chained.address.parse::<std::net::SocketAddr>() else { continue };
                        let index = cx.add_target(i);
                        ids.insert(target.id.clone());
                        let result = TargetResult {
                            target: target.id.clone(),
                            address: Some(addr.to_string()),
                            status: TargetStatus::Scanned,
                            error: None,
                            requests: std::collections::BTreeMap::new(),
                            backoff: None,
                            parent: Some(parent.target.id.clone()),
                            chain: None,
                        };
                        derived.targets.push((index, i, result));
                        let st = ScanTarget { target, addrs: vec![addr] };
                        let groups = groups(plan, families, index, &st.target, false, false, &mut outcomes);
                        for group in groups {
                            spawn(&mut set, &mut pending, cx, index, &st, group);
                        }
                    }
                }
                Some(Err(err)) => {
                    let Some((i, target_id, group)) = pending.remove(&err.id()) else { continue };
                    job_done(i);
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
    (outcomes, interrupted, derived)
}
