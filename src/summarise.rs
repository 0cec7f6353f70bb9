//! Stage 6, summarise: the score and the go-live gate, pure functions of the triaged results
//! and the [`Policy`].
//!
//! ```text
//! weight(critical) = 10, high = 5, medium = 2, low = 1, info = 0
//! score = 100 × Σ weight(passed) / Σ weight(evaluated)
//! ```
//! where *evaluated* means pass, fail or inconclusive (an inconclusive result counts as not
//! passed); skipped results are left out. The score is `None` when no weighted control was
//! evaluated. The gate passes iff critical findings ≤ `max_critical` and score ≥ `min_score`,
//! and the findings of each severity are within its limit (`max_high`, `max_medium`,
//! `max_low`; none at or above `fail_on`). Findings are counted per result; a result that
//! triage marked suppressed is out of the score and every count. With `gate_on = new` only
//! results with a new or updated open finding count toward the limits, and the score does not
//! gate. A stale suppression fails the gate with `fail_on_stale`.
//!
//! The verdict separates "insecure" from "could not tell" (exit codes 1 and 3): the gate is
//! *failed on findings* when it would fail even if every inconclusive result had passed, and
//! *undecided* when it fails only because of inconclusive results, unreachable targets, an
//! interrupted scan, or because nothing was evaluated.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Outcome, ReasonKind, Severity, Status, TargetResult, TargetStatus};
pub use crate::policy::{GateOn, Policy};

/// Findings (failed controls) by severity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Critical findings.
    pub critical: u32,
    /// High findings.
    pub high: u32,
    /// Medium findings.
    pub medium: u32,
    /// Low findings.
    pub low: u32,
    /// Info findings.
    pub info: u32,
}

impl Counts {
    /// Count one more of `severity`.
    pub fn add(&mut self, severity: Severity) {
        let slot = match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        };
        *slot += 1;
    }

    /// Count for one severity.
    pub fn get(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }
}

/// Results by status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Passed controls.
    pub pass: u32,
    /// Failed controls (findings).
    pub fail: u32,
    /// Undecided controls.
    pub inconclusive: u32,
    /// Controls that did not apply.
    pub skipped: u32,
    /// Results left out of the score because they are suppressed (all their findings, or an
    /// inconclusive result by fingerprint).
    pub suppressed: u32,
}

/// The gate's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Ship it (exit 0).
    Passed,
    /// Findings fail the gate (exit 1).
    Failed,
    /// The gate fails only for want of information (exit 3).
    Undecided,
}

/// The gate decision with its reasons.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gate {
    /// True iff the verdict is `passed`.
    pub passed: bool,
    /// The verdict.
    pub verdict: Verdict,
    /// Why: what stopped the gate, or, when it passed, the conditions that held.
    pub reasons: Vec<String>,
}

/// Scores, counts and the gate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Overall score, 0–100 (two decimals), `None` when nothing weighted was evaluated.
    pub score: Option<f64>,
    /// Score per family.
    pub family_scores: BTreeMap<String, Option<f64>>,
    /// Findings by severity.
    pub counts: Counts,
    /// Results by status.
    pub results: StatusCounts,
    /// The gate.
    pub gate: Gate,
}

/// `100 × Σ weight(passed) / Σ weight(evaluated)`, with `inconclusive_passes` deciding how
/// inconclusive results count. `None` when the denominator is zero.
pub fn score_exact<'a>(
    outcomes: impl IntoIterator<Item = &'a Outcome>,
    inconclusive_passes: bool,
) -> Option<f64> {
    let (mut passed, mut evaluated) = (0u64, 0u64);
    for o in outcomes {
        let w = u64::from(o.severity.weight());
        match o.status {
            Status::Pass => {
                passed += w;
                evaluated += w;
            }
            Status::Inconclusive => {
                if inconclusive_passes {
                    passed += w;
                }
                evaluated += w;
            }
            Status::Fail => evaluated += w,
            Status::Skipped => {}
        }
    }
    #[allow(clippy::cast_precision_loss, reason = "weights are small integers")]
    (evaluated > 0).then(|| 100.0 * passed as f64 / evaluated as f64)
}

/// [`score_exact`] rounded to two decimals, for reports (the gate compares the exact value).
pub fn score<'a>(
    outcomes: impl IntoIterator<Item = &'a Outcome>,
    inconclusive_passes: bool,
) -> Option<f64> {
    score_exact(outcomes, inconclusive_passes).map(round2)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A score under `min`, rounded for display without ever printing as `min` or above.
fn below(x: f64, min: f64) -> f64 {
    let r = round2(x);
    if r >= min {
        (x * 100.0).floor() / 100.0
    } else {
        r
    }
}

/// Format a score for people: `97.5%`, `100%`.
pub fn fmt_score(score: Option<f64>) -> String {
    match score {
        None => "n/a".into(),
        Some(s) => {
            let s = format!("{s:.2}");
            format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
        }
    }
}

/// What triage adds to the gate: stale and expired suppression entries, and whether a
/// baseline was given.
#[derive(Clone, Debug, Default)]
pub struct GateNotes {
    /// Stale entries (`FILE:LINE` and what they name); a reason with `fail_on_stale`.
    pub stale: Vec<String>,
    /// Expired entries that matched findings, which count again.
    pub expired: Vec<String>,
}

/// Score triaged results and apply the gate.
pub fn summarise_triaged(t: &crate::triage::Triaged, policy: &Policy) -> Summary {
    let notes = GateNotes {
        stale: t
            .suppressions
            .stale
            .iter()
            .map(|e| format!("{} ({} on {})", e.source, e.rule, e.target))
            .collect(),
        expired: t
            .suppressions
            .expired
            .iter()
            .filter(|e| e.findings > 0)
            .map(|e| {
                format!(
                    "suppression {} expired on {}: its {} finding{} count{} again",
                    e.source,
                    e.expires.as_deref().unwrap_or("?"),
                    e.findings,
                    plural(e.findings),
                    if e.findings == 1 { "s" } else { "" }
                )
            })
            .collect(),
    };
    summarise_with(
        &t.result.outcomes,
        &t.result.targets,
        t.result.complete,
        policy,
        &notes,
    )
}

/// Score the outcomes and apply the gate.
pub fn summarise(
    outcomes: &[Outcome],
    targets: &[TargetResult],
    complete: bool,
    policy: &Policy,
) -> Summary {
    summarise_with(outcomes, targets, complete, policy, &GateNotes::default())
}

/// Whether a result counts toward the severity limits under `gate_on`: with `new`, only a
/// result with an unsuppressed finding that is new or updated against the baseline (or has
/// no baseline state: no baseline was given).
fn gated(o: &Outcome, gate_on: GateOn) -> bool {
    match gate_on {
        GateOn::All => true,
        GateOn::New => o.findings.iter().any(|f| {
            f.suppression.is_none()
                && f.baseline_state
                    .is_none_or(|s| s != crate::model::BaselineState::Unchanged)
        }),
    }
}

/// [`summarise`] with what triage adds.
pub fn summarise_with(
    all: &[Outcome],
    targets: &[TargetResult],
    complete: bool,
    policy: &Policy,
    notes: &GateNotes,
) -> Summary {
    let mut tally = Tally::new(policy);
    all.iter().for_each(|o| tally.add(o));
    tally.finish(targets, complete, policy, notes)
}

/// Weights of results by status, for a score.
#[derive(Clone, Copy, Debug, Default)]
struct Weights {
    passed: u64,
    inconclusive: u64,
    evaluated: u64,
}

impl Weights {
    fn add(&mut self, o: &Outcome) {
        let w = u64::from(o.severity.weight());
        match o.status {
            Status::Pass => {
                self.passed += w;
                self.evaluated += w;
            }
            Status::Inconclusive => {
                self.inconclusive += w;
                self.evaluated += w;
            }
            Status::Fail => self.evaluated += w,
            Status::Skipped => {}
        }
    }

    /// [`score_exact`] of the results added.
    fn exact(self, inconclusive_passes: bool) -> Option<f64> {
        let passed = self.passed
            + if inconclusive_passes {
                self.inconclusive
            } else {
                0
            };
        #[allow(clippy::cast_precision_loss, reason = "weights are small integers")]
        (self.evaluated > 0).then(|| 100.0 * passed as f64 / self.evaluated as f64)
    }
}

/// What the score and the gate need of the results, added one result at a time: the summary
/// of results that are never all in memory at once (a merge of shards streams them), equal to
/// [`summarise_with`] of them all, which is this tally.
#[derive(Debug)]
pub struct Tally {
    gate_on: GateOn,
    counts: Counts,
    gate_counts: Counts,
    results: StatusCounts,
    overall: Weights,
    by_family: BTreeMap<&'static str, Weights>,
    judged: std::collections::HashSet<String>,
    critical_undecided: usize,
    /// Hosts where nothing answered (ports family), in the order first seen.
    no_service: Vec<String>,
}

impl Tally {
    /// An empty tally for `policy`.
    pub fn new(policy: &Policy) -> Tally {
        Tally {
            gate_on: policy.gate_on,
            counts: Counts::default(),
            gate_counts: Counts::default(),
            results: StatusCounts::default(),
            overall: Weights::default(),
            by_family: BTreeMap::new(),
            judged: std::collections::HashSet::new(),
            critical_undecided: 0,
            no_service: Vec::new(),
        }
    }

    /// Count one (triaged) result.
    pub fn add(&mut self, o: &Outcome) {
        // A target that was reached but that no family evaluated tells nothing about itself.
        if o.status != Status::Skipped && !self.judged.contains(o.target.as_str()) {
            self.judged.insert(o.target.clone());
        }
        // A suppressed result (all its findings, or an inconclusive by fingerprint) is out of
        // the score and the counts.
        if o.suppressed {
            self.results.suppressed = self.results.suppressed.saturating_add(1);
            return;
        }
        match o.status {
            Status::Pass => self.results.pass += 1,
            Status::Fail => {
                self.results.fail += 1;
                self.counts.add(o.severity);
                if gated(o, self.gate_on) {
                    self.gate_counts.add(o.severity);
                }
            }
            Status::Inconclusive => {
                self.results.inconclusive += 1;
                if o.severity == Severity::Critical {
                    self.critical_undecided += 1;
                }
                // A host where nothing answered: a mistyped address must not ship.
                let none = o
                    .reason
                    .as_ref()
                    .is_some_and(|r| r.kind == ReasonKind::NoService);
                if none && !self.no_service.contains(&o.target) {
                    self.no_service.push(o.target.clone());
                }
            }
            Status::Skipped => self.results.skipped += 1,
        }
        self.overall.add(o);
        self.by_family.entry(o.family).or_default().add(o);
    }

    /// The score and the gate of the results added, on `targets`.
    pub fn finish(
        self,
        targets: &[TargetResult],
        complete: bool,
        policy: &Policy,
        notes: &GateNotes,
    ) -> Summary {
        let Tally {
            counts,
            gate_counts,
            results,
            overall,
            by_family,
            judged,
            critical_undecided,
            mut no_service,
            ..
        } = self;
        let family_scores: BTreeMap<String, Option<f64>> = by_family
            .into_iter()
            .map(|(f, w)| (f.to_string(), w.exact(false).map(round2)))
            .collect();
        let actual = overall.exact(false);
        let optimistic = overall.exact(true);
        let unreachable: Vec<&TargetResult> = targets
            .iter()
            .filter(|t| t.status == TargetStatus::Unreachable)
            .collect();
        let unjudged: Vec<&TargetResult> = targets
            .iter()
            .filter(|t| t.status == TargetStatus::Scanned && !judged.contains(t.target.as_str()))
            .collect();
        // In report order, whatever order the results were tallied in (a merge reads its
        // files in the order given).
        no_service.sort_by_key(|t| targets.iter().position(|r| r.target == *t));
        gate(
            Facts {
                counts,
                gate_counts,
                results,
                family_scores,
                actual,
                optimistic,
                unreachable,
                unjudged,
                critical_undecided,
                no_service,
            },
            complete,
            policy,
            notes,
        )
    }
}

/// What the gate is decided on.
struct Facts<'t> {
    counts: Counts,
    gate_counts: Counts,
    results: StatusCounts,
    family_scores: BTreeMap<String, Option<f64>>,
    actual: Option<f64>,
    optimistic: Option<f64>,
    unreachable: Vec<&'t TargetResult>,
    unjudged: Vec<&'t TargetResult>,
    critical_undecided: usize,
    no_service: Vec<String>,
}

fn gate(facts: Facts<'_>, complete: bool, policy: &Policy, notes: &GateNotes) -> Summary {
    let Facts {
        counts,
        gate_counts,
        results,
        family_scores,
        actual,
        optimistic,
        unreachable,
        unjudged,
        critical_undecided,
        no_service,
    } = facts;
    let mut failing = Vec::new();
    let mut undecided = Vec::new();
    let mut fine = Vec::new();

    let new_only = policy.gate_on == GateOn::New;
    let which = if new_only { "new " } else { "" };
    for sev in Severity::DESCENDING {
        let Some(max) = policy.limit(sev) else {
            continue;
        };
        let n = gate_counts.get(sev);
        let limit = match policy.fail_on {
            Some(f) if sev >= f => format!("fail_on {f}"),
            _ => format!("max {max}"),
        };
        let line = format!("{n} {which}{sev} finding{} ({limit})", plural(n));
        if n > max {
            failing.push(line);
        } else {
            fine.push(line);
        }
    }
    let min = fmt_score(Some(policy.min_score));
    match (actual, optimistic) {
        // With gate_on = new the score is reported on everything but does not gate.
        (Some(a), _) if new_only => fine.push(format!(
            "score {} (not gated: gate_on = new)",
            fmt_score(Some(a))
        )),
        (Some(a), Some(o)) if o < policy.min_score => {
            failing.push(format!(
                "score {} is below {min}",
                fmt_score(Some(below(a, policy.min_score)))
            ));
        }
        (Some(a), _) if a < policy.min_score => undecided.push(format!(
            "score {} is below {min} only because of {} inconclusive result{}",
            fmt_score(Some(below(a, policy.min_score))),
            results.inconclusive,
            plural(results.inconclusive)
        )),
        (Some(a), _) => fine.push(format!("score {} ≥ {min}", fmt_score(Some(a)))),
        (None, _) => undecided.push("no scored control was evaluated".to_string()),
    }
    if !unreachable.is_empty() {
        let list: Vec<String> = unreachable
            .iter()
            .map(|t| match &t.error {
                Some(e) => format!("{} ({})", t.target, e.kind.as_str()),
                None => t.target.clone(),
            })
            .collect();
        undecided.push(format!(
            "{} target{} unreachable: {}",
            unreachable.len(),
            plural(u32::try_from(unreachable.len()).unwrap_or(u32::MAX)),
            list.join(", ")
        ));
    }
    if !no_service.is_empty() {
        undecided.push(format!("no service found on {}", no_service.join(", ")));
    }
    if !unjudged.is_empty() {
        let list: Vec<&str> = unjudged.iter().map(|t| t.target.as_str()).collect();
        undecided.push(format!("no check evaluated {}", list.join(", ")));
    }
    if critical_undecided > 0 {
        undecided.push(format!(
            "{critical_undecided} critical control{} could not be decided",
            plural(u32::try_from(critical_undecided).unwrap_or(u32::MAX))
        ));
    }
    if !complete {
        undecided.push("the scan was interrupted before it finished".to_string());
    }
    if policy.fail_on_stale && !notes.stale.is_empty() {
        failing.push(format!(
            "{} stale suppression{} (fail_on_stale): {}",
            notes.stale.len(),
            plural(u32::try_from(notes.stale.len()).unwrap_or(u32::MAX)),
            notes.stale.join(", ")
        ));
    }
    // Why findings count that a suppression used to cover.
    if !failing.is_empty() {
        failing.extend(notes.expired.iter().cloned());
    }

    let verdict = if !failing.is_empty() {
        Verdict::Failed
    } else if !undecided.is_empty() {
        Verdict::Undecided
    } else {
        Verdict::Passed
    };
    // A failed or undecided gate lists what stopped it; a passed gate lists what held.
    let reasons = if verdict == Verdict::Passed {
        fine
    } else {
        failing.into_iter().chain(undecided).collect()
    };
    Summary {
        score: actual.map(round2),
        family_scores,
        counts,
        results,
        gate: Gate {
            passed: verdict == Verdict::Passed,
            verdict,
            reasons,
        },
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Emitter;
    use crate::model::{Reason, ReasonKind};

    /// Outcomes for real catalogue rules: (rule id, status).
    fn outcomes(items: &[(&'static str, Status)]) -> Vec<Outcome> {
        let mut e = Emitter::new("headers", "https://a.test/");
        for (id, status) in items {
            let reason =
                (*status == Status::Inconclusive).then(|| Reason::new(ReasonKind::Timeout, "t"));
            e.emit(id, *status, "m", crate::model::Evidence::none(), reason);
        }
        e.finish()
    }

    // Weights from the catalogue: cookie.insecure high 5, hsts.missing medium 2,
    // xcto.missing low 1, referrer.missing info 0.
    #[test]
    fn score_formula() {
        let o = outcomes(&[
            ("headers.cookie.insecure", Status::Pass),
            ("headers.hsts.missing", Status::Fail),
            ("headers.xcto.missing", Status::Inconclusive),
            ("headers.referrer.missing", Status::Fail),
            ("headers.hsts.short", Status::Skipped),
        ]);
        // passed 5 of evaluated 5 + 2 + 1 = 8.
        assert_eq!(score(&o, false), Some(62.5));
        assert_eq!(score(&o, true), Some(75.0));
        assert_eq!(
            score(&outcomes(&[("headers.hsts.short", Status::Skipped)]), false),
            None
        );
    }

    #[test]
    fn verdicts() {
        let p = Policy::default();
        let pass = outcomes(&[
            ("headers.hsts.missing", Status::Pass),
            ("headers.referrer.missing", Status::Fail),
        ]);
        let s = summarise(&pass, &[], true, &p);
        assert_eq!(s.gate.verdict, Verdict::Passed);
        assert_eq!(s.counts.info, 1);
        assert_eq!(s.score, Some(100.0));

        let fail = outcomes(&[
            ("headers.hsts.missing", Status::Fail),
            ("headers.cookie.insecure", Status::Inconclusive),
        ]);
        assert_eq!(
            summarise(&fail, &[], true, &p).gate.verdict,
            Verdict::Failed
        );

        let undecided = outcomes(&[
            ("headers.hsts.missing", Status::Pass),
            ("headers.cookie.insecure", Status::Inconclusive),
        ]);
        let s = summarise(&undecided, &[], true, &p);
        assert_eq!(s.gate.verdict, Verdict::Undecided);
        assert!(
            s.gate.reasons[0].contains("only because of 1 inconclusive result"),
            "{:?}",
            s.gate.reasons
        );

        let s = summarise(&pass, &[], false, &p);
        assert_eq!(s.gate.verdict, Verdict::Undecided);
        assert_eq!(
            summarise(&[], &[], true, &p).gate.verdict,
            Verdict::Undecided
        );

        let lenient = Policy {
            min_score: 0.0,
            max_critical: 0,
            ..Policy::default()
        };
        assert_eq!(
            summarise(&fail, &[], true, &lenient).gate.verdict,
            Verdict::Passed
        );
    }

    #[test]
    fn the_gate_compares_the_exact_score() {
        // 2 medium passed... choose weights so the exact score is just under 95.
        let mut o = Vec::new();
        // 189 low passes and 10 low failures: 189 / 199 = 94.97...%, which rounds to 94.97;
        // and 1899 / 1999 = 94.997...% rounds to 95.0 but must still fail a 95 gate.
        let mut e = Emitter::new("headers", "https://a.test/");
        for _ in 0..1899 {
            e.emit(
                "headers.xcto.missing",
                Status::Pass,
                "m",
                crate::model::Evidence::none(),
                None,
            );
        }
        for _ in 0..100 {
            e.emit(
                "headers.xcto.missing",
                Status::Fail,
                "m",
                crate::model::Evidence::none(),
                None,
            );
        }
        o.extend(e.finish());
        let s = summarise(&o, &[], true, &Policy::default());
        assert_eq!(s.score, Some(95.0));
        assert_eq!(s.gate.verdict, Verdict::Failed, "{:?}", s.gate.reasons);
    }

    #[test]
    fn an_undecided_critical_control_blocks_the_gate() {
        let o = outcomes(&[("headers.hsts.missing", Status::Pass)]);
        let mut e = Emitter::new("auth", "https://a.test/");
        e.emit(
            "auth.unprotected",
            Status::Inconclusive,
            "m",
            crate::model::Evidence::none(),
            Some(Reason::new(ReasonKind::Timeout, "t")),
        );
        let mut all = o;
        all.extend(e.finish());
        // Score: 2 passed of 12 evaluated... the optimistic score passes, the critical one does not.
        let lenient = Policy {
            min_score: 0.0,
            max_critical: 0,
            ..Policy::default()
        };
        let s = summarise(&all, &[], true, &lenient);
        assert_eq!(s.gate.verdict, Verdict::Undecided);
        assert!(
            s.gate
                .reasons
                .iter()
                .any(|r| r.contains("1 critical control could not be decided")),
            "{:?}",
            s.gate.reasons
        );
    }

    #[test]
    fn severity_limits_and_fail_on_name_their_limit() {
        // cookie.insecure high, hsts.missing medium, xcto.missing low.
        let o = outcomes(&[
            ("headers.cookie.insecure", Status::Fail),
            ("headers.hsts.missing", Status::Fail),
            ("headers.xcto.missing", Status::Fail),
        ]);
        let lenient = Policy {
            min_score: 0.0,
            ..Policy::default()
        };
        assert_eq!(
            summarise(&o, &[], true, &lenient).gate.verdict,
            Verdict::Passed
        );
        let p = Policy {
            max_high: Some(0),
            max_low: Some(1),
            ..lenient.clone()
        };
        let s = summarise(&o, &[], true, &p);
        assert_eq!(s.gate.verdict, Verdict::Failed);
        assert_eq!(s.gate.reasons, ["1 high finding (max 0)"]);
        let p = Policy {
            fail_on: Some(Severity::Medium),
            ..lenient.clone()
        };
        let s = summarise(&o, &[], true, &p);
        assert_eq!(
            s.gate.reasons,
            [
                "1 high finding (fail_on medium)",
                "1 medium finding (fail_on medium)"
            ]
        );
        assert_eq!(p.limit(Severity::Low), None);
        assert_eq!(p.limit(Severity::Critical), Some(0));
    }

    #[test]
    fn formats_scores() {
        assert_eq!(fmt_score(Some(100.0)), "100%");
        assert_eq!(fmt_score(Some(97.5)), "97.5%");
        assert_eq!(fmt_score(Some(62.46)), "62.46%");
        assert_eq!(fmt_score(None), "n/a");
    }
}
