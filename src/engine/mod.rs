//! The engine: stages 2 to 4 of the pipeline, for whatever families it is handed.
//!
//! 1. **Connectivity** ([`connectivity`]): each target is resolved once and, when it names a
//!    port, connected to once; an unreachable target gets one target-level status.
//! 2. **Schedule** ([`schedule`]): each (target, family) pair is one job on a `JoinSet`, under
//!    the global and per-host limits; exclusive families take turns on a target.
//! 3. **Collect** ([`collect`]): exactly one result per rule and target, whatever a family did
//!    (a panic or an overrun deadline costs only that family's rules, as `inconclusive`).
//!    Last, each family may decide rules judged across targets ([`Family::join`], e.g. DROWN)
//!    from every result of the scan.
//!
//! Families reach the network only through [`Cx`], the scan context's facade ([`cx`]): one
//! HTTP client pool, per-host permits, the host-wide back-off, `--max-rps` pacing, timeouts,
//! byte caps and request budgets, with every request counted by target and family.
//!
//! **Interruption**: when the interrupt future fires (Ctrl-C), running jobs are aborted, their
//! rules are recorded as `inconclusive` (reason `interrupted`) and the result is marked
//! incomplete, so reports can still be written.

pub mod chain;
pub mod collect;
pub mod connectivity;
pub mod cx;
pub mod dns;
pub mod family;
pub mod http;
pub mod limits;
pub mod net;
pub mod schedule;

use std::future::Future;
use std::sync::Arc;

use time::OffsetDateTime;

pub use cx::{
    Cx, HttpRequest, Pacer, Reservation, ScanCx, ScanTarget, Scope, normalise_host, pacer,
};
pub use family::{Emitter, Family, MAX_BACKOFF_WAIT, Rule, Verdict, deadline_for, evaluate_rules};

use crate::model::{ReasonKind, ScanResult, TargetResult, TargetStatus};
use crate::plan::ScanPlan;

/// Run `plan` with `families` until done or until `interrupt` completes.
pub async fn run(
    plan: &ScanPlan,
    families: &[&'static dyn Family],
    interrupt: impl Future<Output = ()>,
) -> ScanResult {
    run_sliced(plan, families, interrupt).await.0
}

/// [`run`], and what the slices of sliced sweeps recorded (in a shard; see
/// [`Family::sliceable`]), by target id then slice.
pub async fn run_sliced(
    plan: &ScanPlan,
    families: &[&'static dyn Family],
    interrupt: impl Future<Output = ()>,
) -> (ScanResult, Vec<crate::model::SliceOutput>) {
    let started_at = OffsetDateTime::now_utc();
    let settings = plan.settings.clone();
    tokio::pin!(interrupt);

    let limits = Arc::new(limits::Limits::new(settings.concurrency, settings.per_host));
    let resolver = dns::Dns::new(settings.dns_server, settings.timeout);
    let reached = connectivity::run(plan, &limits, &resolver, &mut interrupt).await;
    let mut targets = reached.targets;

    let mut scope = Scope::default();
    for (t, st) in plan.targets.iter().zip(&reached.reached) {
        if let crate::target::TargetKind::Cidr { network, prefix } = t.kind {
            scope.add_range(network, prefix);
            continue;
        }
        scope.add(
            &t.host(),
            st.as_ref().and_then(|s| s.addrs.first()).map(|a| a.ip()),
        );
    }
    let cx = match ScanCx::new(
        settings,
        limits.clone(),
        scope,
        resolver,
        plan.targets.len(),
        plan.options.clone(),
    ) {
        Ok(cx) => Arc::new(cx),
        Err(reason) => {
            for t in &mut targets {
                if t.status == TargetStatus::Scanned {
                    t.status = TargetStatus::Unreachable;
                    t.error = Some(reason.clone());
                }
            }
            let result = ScanResult {
                started_at,
                finished_at: OffsetDateTime::now_utc(),
                complete: true,
                targets,
                outcomes: Vec::new(),
            };
            return (result, Vec::new());
        }
    };

    let (mut outcomes, interrupted, derived) = schedule::run(
        plan,
        families,
        &cx,
        &targets,
        &reached.reached,
        reached.interrupted,
        &mut interrupt,
    )
    .await;

    let mut slices = derived.slices;
    slices.sort_by(|a, b| (&a.target, a.slice).cmp(&(&b.target, b.slice)));
    // Derived targets join the list; each parent records what it chained.
    let mut order: Vec<(usize, usize)> = (0..targets.len()).map(|i| (i, 0)).collect();
    for (n, (index, parent, result)) in derived.targets.into_iter().enumerate() {
        // Indexes are handed out in order, after the plan's targets.
        debug_assert_eq!(index, targets.len(), "derived target index out of order");
        targets.push(result);
        order.push((parent, n + 1));
    }
    for (parent, report) in derived.reports {
        if let Some(t) = targets.get_mut(parent) {
            t.chain = Some(report);
        }
    }

    // Which targets the interrupt left unfinished.
    let mut cut: std::collections::HashSet<usize> = std::collections::HashSet::new();
    for (i, o) in &outcomes {
        if o.reason
            .as_ref()
            .is_some_and(|r| r.kind == ReasonKind::Interrupted)
        {
            cut.insert(*i);
        }
    }
    let backoff = cx.limits.backoff_by_host();
    for (i, t) in targets.iter_mut().enumerate() {
        if interrupted && t.status == TargetStatus::Scanned && cut.contains(&i) {
            t.status = TargetStatus::Interrupted;
        }
        t.requests = cx.requests(i);
        if let Some(target) = plan.targets.get(i) {
            t.backoff = backoff.get(&normalise_host(&target.host())).copied();
        }
    }
    for (_, o) in &mut outcomes {
        o.redact(&plan.secrets);
    }
    // Report order: plan order, each derived target right after its parent.
    let key = |i: usize| order.get(i).copied().unwrap_or((usize::MAX, i));
    // Keys computed once per result (a catalogue lookup each), not once per comparison.
    outcomes.sort_by_cached_key(|(i, o)| {
        (
            key(*i),
            crate::catalogue::index(o.rule_id).unwrap_or(usize::MAX),
        )
    });
    // Scan-wide rules, decided once every job is done (in report order, so that what they
    // name comes in the order of the report).
    for family in families {
        family.join(&mut outcomes, &plan.elsewhere);
    }
    let mut ranked: Vec<(usize, TargetResult)> = targets.into_iter().enumerate().collect();
    ranked.sort_by_key(|(i, _)| key(*i));
    let targets: Vec<TargetResult> = ranked.into_iter().map(|(_, t)| t).collect();
    let result = ScanResult {
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        complete: !interrupted,
        targets,
        outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
    };
    (result, slices)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::future::BoxFuture;

    use super::*;
    use crate::model::{Outcome, Status};
    use crate::options::{FamilyOptions, NoOptions, OptionsSpec, Spec};
    use crate::plan::Settings;
    use crate::target::Target;

    static NONE: Spec<NoOptions> = Spec::new();

    struct Panics;
    struct Sleeps;

    impl FamilyOptions for Panics {
        fn family(&self) -> &'static str {
            "headers"
        }
        fn options(&self) -> &'static dyn OptionsSpec {
            &NONE
        }
    }

    impl Family for Panics {
        fn summary(&self) -> &'static str {
            "panics"
        }
        fn rule_ids(&self) -> &'static [&'static str] {
            &["headers.hsts.missing", "headers.xcto.missing"]
        }
        fn applies_to(&self, _: &Target) -> bool {
            true
        }
        #[allow(clippy::panic, reason = "the point of the test")]
        fn run<'a>(&'a self, _: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
            Box::pin(async { panic!("boom") })
        }
    }

    impl FamilyOptions for Sleeps {
        fn family(&self) -> &'static str {
            "headers"
        }
        fn options(&self) -> &'static dyn OptionsSpec {
            &NONE
        }
    }

    impl Family for Sleeps {
        fn summary(&self) -> &'static str {
            "sleeps"
        }
        fn rule_ids(&self) -> &'static [&'static str] {
            &["headers.hsts.missing"]
        }
        fn applies_to(&self, _: &Target) -> bool {
            true
        }
        fn deadline(&self, _: &Settings, _: &Target) -> Duration {
            Duration::from_millis(50)
        }
        fn run<'a>(&'a self, _: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Vec::new()
            })
        }
    }

    fn scan() -> ScanCx {
        ScanCx::new(
            Settings::default(),
            std::sync::Arc::new(limits::Limits::new(4, 4)),
            Scope::default(),
            dns::Dns::new(None, Duration::from_secs(1)),
            1,
            crate::options::OptionSet::default(),
        )
        .unwrap()
    }

    fn target() -> ScanTarget {
        ScanTarget {
            target: Target::parse("https://a.test/").unwrap(),
            addrs: vec!["127.0.0.1:443".parse().unwrap()],
        }
    }

    #[tokio::test]
    async fn a_panicking_family_costs_only_its_own_rules() {
        let (scan, st) = (scan(), target());
        let cx = Cx::new(&scan, "headers", &st, 0, 10);
        let out = collect::run_family(&Panics, &cx).await;
        assert_eq!(out.len(), 2);
        for o in out {
            assert_eq!(o.status, Status::Inconclusive);
            let r = o.reason.unwrap();
            assert_eq!(r.kind, ReasonKind::Bug);
            assert!(r.detail.contains("panicked: boom"), "{}", r.detail);
        }
    }

    #[tokio::test]
    async fn a_family_past_its_deadline_is_cut_off() {
        let (scan, st) = (scan(), target());
        let cx = Cx::new(&scan, "headers", &st, 0, 10);
        let started = std::time::Instant::now();
        let out = collect::run_family(&Sleeps, &cx).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].reason.as_ref().unwrap().kind, ReasonKind::Timeout);
    }

    #[tokio::test]
    async fn a_forgotten_rule_is_reported_as_a_bug() {
        struct Forgets;
        impl FamilyOptions for Forgets {
            fn family(&self) -> &'static str {
                "headers"
            }
            fn options(&self) -> &'static dyn OptionsSpec {
                &NONE
            }
        }
        impl Family for Forgets {
            fn summary(&self) -> &'static str {
                "forgets"
            }
            fn rule_ids(&self) -> &'static [&'static str] {
                &["headers.hsts.missing", "headers.xcto.missing"]
            }
            fn applies_to(&self, _: &Target) -> bool {
                true
            }
            fn run<'a>(&'a self, _: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
                Box::pin(async {
                    let mut e = Emitter::new("headers", "https://a.test/");
                    e.pass("headers.hsts.missing", "ok", crate::model::Evidence::none());
                    e.pass(
                        "headers.hsts.missing",
                        "twice",
                        crate::model::Evidence::none(),
                    );
                    e.finish()
                })
            }
        }
        let (scan, st) = (scan(), target());
        let cx = Cx::new(&scan, "headers", &st, 0, 10);
        let out = collect::run_family(&Forgets, &cx).await;
        assert_eq!(out.len(), 2, "duplicates dropped, the missing rule added");
        assert_eq!(out[1].rule_id, "headers.xcto.missing");
        assert_eq!(out[1].reason.as_ref().unwrap().kind, ReasonKind::Bug);
    }

    #[tokio::test]
    async fn the_facade_refuses_requests_past_the_budget() {
        let (scan, st) = (scan(), target());
        let cx = Cx::new(&scan, "tls", &st, 0, 1);
        // One request of the budget: spent on a connection attempt (refused or not).
        let _ = cx
            .connect("127.0.0.1", &["127.0.0.1:9".parse().unwrap()])
            .await;
        let e = cx
            .connect("127.0.0.1", &["127.0.0.1:9".parse().unwrap()])
            .await
            .unwrap_err();
        assert_eq!(e.kind, ReasonKind::Budget);
        assert_eq!(scan.requests(0).get("tls"), Some(&1));
    }
}
