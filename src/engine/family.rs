//! The contract between the engine and a check family: the [`Family`] trait, the rules of a
//! family ([`Rule`]), and the [`Emitter`] a family records its results with.
//!
//! A family probes through the scan context's facade ([`super::Cx`]) and returns its results;
//! it never sees the engine's internals, and the engine never names a family: the family list
//! is handed to [`super::run`].

use std::time::Duration;

use futures::future::BoxFuture;

use super::Cx;
use crate::catalogue;
use crate::model::{Evidence, Outcome, Reason, Severity, Status, Subject, fingerprint, one_line};
use crate::options::FamilyOptions;
use crate::plan::{ScanPlan, Settings};
use crate::target::Target;

/// A check family.
pub trait Family: FamilyOptions {
    /// One line describing the family.
    fn summary(&self) -> &'static str;
    /// Every rule id the family can emit (the catalogue test compares this with the catalogue).
    fn rule_ids(&self) -> &'static [&'static str];
    /// Whether the family runs on this kind of target by default.
    fn applies_to(&self, target: &Target) -> bool;
    /// Whether the family runs on this target by default, given the scan's settings (e.g. a
    /// name pinned with `--resolve` is not looked up in DNS). Defaults to [`Family::applies_to`].
    fn applies_with(&self, target: &Target, _settings: &Settings) -> bool {
        self.applies_to(target)
    }
    /// Whether the family can run on this target when asked for by name (`--checks`), even
    /// where it does not run by default. Defaults to [`Family::applies_with`].
    fn can_run(&self, target: &Target, settings: &Settings) -> bool {
        self.applies_with(target, settings)
    }
    /// Whether the family still runs on a name that did not resolve (it needs no address).
    fn runs_without_address(&self) -> bool {
        false
    }
    /// Whether the family tests only the endpoints a config file names (`[[target.endpoint]]`):
    /// asked for on a target that names none, it cannot run, and the scan says so once.
    fn needs_endpoints(&self) -> bool {
        false
    }
    /// One line each for what this plan asks of the family that it will not do (shown once,
    /// before the scan, as `secgate: note: ...`). `runs_on`: the targets it will run on.
    fn plan_notes(&self, _plan: &ScanPlan, _runs_on: &[&Target]) -> Vec<String> {
        Vec::new()
    }
    /// Families whose traffic would skew each other's measurements on `target` (bursts,
    /// failed logins, a real login) say so here; the engine runs them one after another on
    /// the target, in family-list order.
    fn exclusive(&self, _target: &Target) -> bool {
        false
    }
    /// The most requests the family sends to `target` with its options: the facade refuses
    /// any beyond it. Defaults to the catalogue's `budget.per_target` for the family; a family
    /// whose traffic depends on its options computes it (and the catalogue test checks that
    /// the defaults agree with the catalogue).
    fn budget(&self, _target: &Target, _settings: &Settings) -> u32 {
        catalogue::family(self.family()).map_or(DEFAULT_BUDGET, |f| f.budget.per_target)
    }
    /// The sweep a job of this family makes on `target`, when sharding may cut it into
    /// slices ([`crate::model::Slice`]): `(addresses of the range, or 1; length of the port
    /// list)`. `options`: the plan's (the target's own come first). `None`: never sliced.
    fn sweep_shape(
        &self,
        _target: &Target,
        _options: &crate::options::OptionSet,
    ) -> Option<(u64, u32)> {
        None
    }
    /// Whether the family runs the slices a shard gives a target ([`Target::slices`]): it
    /// then records each slice's observation ([`super::Cx::record_slice`]) and returns no
    /// results there, the merge judging the joined slices once.
    fn sliceable(&self) -> bool {
        false
    }
    /// Requests the family has in flight at once on one target, at most (its probes' own
    /// parallelism; the per-host limit bounds it too). Used to derive the deadline.
    fn parallelism(&self, settings: &Settings) -> u32 {
        u32::try_from(settings.per_host).unwrap_or(u32::MAX).max(1)
    }
    /// How long the family may take on one target before it is cut off (its rules then become
    /// inconclusive): derived from its budget ([`deadline_for`]). Each network operation has
    /// its own timeout; this is the safety net.
    fn deadline(&self, settings: &Settings, target: &Target) -> Duration {
        deadline_for(
            settings,
            self.budget(target, settings),
            self.parallelism(settings),
        )
    }
    /// What the family would do on `target`, for `secgate scan --dry-run`: lines of plain
    /// text, computed from the plan alone (nothing is sent or resolved). Defaults to the
    /// family's summary and its request budget there.
    fn dry_run(&self, target: &Target, settings: &Settings) -> Vec<String> {
        vec![format!(
            "{}; at most {} requests",
            self.summary(),
            self.budget(target, settings)
        )]
    }
    /// Probe the target and evaluate every rule: one result per rule id.
    fn run<'a>(&'a self, cx: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>>;
    /// The last step of collect, once every job of the scan has finished: a rule judged across
    /// targets (DROWN: a key served over SSLv2 anywhere) decides its results here from what
    /// each of them recorded. `outcomes`: every result of the scan (a family changes only its
    /// own); `elsewhere`: in a shard, the targets and families other shards audit. Default:
    /// nothing to join.
    fn join(&self, _outcomes: &mut [(usize, Outcome)], _elsewhere: &[(Target, Vec<&'static str>)]) {
    }
}

/// The budget of a family the catalogue says nothing about.
pub const DEFAULT_BUDGET: u32 = 64;

/// The longest the host-wide back-off may hold one target's requests in all
/// ([`super::limits`]): the deadline of every family allows for it.
pub const MAX_BACKOFF_WAIT: Duration = Duration::from_secs(60);

/// A family's deadline from its budget: its requests in waves of `parallel`, each wave at
/// most one request deadline, plus the spacing `--max-rps` imposes, the longest host-wide
/// back-off, and a request deadline of slack.
pub fn deadline_for(settings: &Settings, budget: u32, parallel: u32) -> Duration {
    let per_request = super::net::request_deadline(settings.timeout);
    let waves = budget.div_ceil(parallel.max(1)).max(1);
    let paced = settings.max_rps.map_or(Duration::ZERO, |rps| {
        Duration::from_secs_f64(f64::from(budget) / rps.max(0.001))
    });
    per_request
        .saturating_mul(waves.saturating_add(1))
        .saturating_add(paced)
        .saturating_add(MAX_BACKOFF_WAIT)
}

/// A rule of a family: the ids it emits and the pure function that evaluates them against the
/// family's observation `O`.
pub struct Rule<O: 'static> {
    /// Ids this rule emits, one result each.
    pub ids: &'static [&'static str],
    /// The evaluation.
    pub eval: fn(&O, &mut Emitter),
}

/// Run every rule of a family, in order, on its observation.
pub fn evaluate_rules<O>(rules: &[Rule<O>], obs: &O, out: &mut Emitter) {
    for rule in rules {
        (rule.eval)(obs, out);
    }
}

/// What one subject showed, for [`Emitter::judge`]: the rule folds these into one result.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// The control is missing for this subject (a finding).
    Bad(String),
    /// The control holds for this subject.
    Good(String),
    /// This subject could not be judged.
    Undecided(Reason),
    /// The rule does not apply to this subject.
    NotApplicable(String),
}

/// Collects the results of one family on one target, filling severity and title from the
/// catalogue so that rules only state what they saw.
#[derive(Debug)]
pub struct Emitter {
    family: &'static str,
    target: String,
    outcomes: Vec<Outcome>,
}

impl Emitter {
    /// A new emitter for `family` on `target`.
    pub fn new(family: &'static str, target: impl Into<String>) -> Emitter {
        Emitter {
            family,
            target: target.into(),
            outcomes: Vec::new(),
        }
    }

    /// Record a result. Unknown rule ids are a bug (the catalogue test guards against them);
    /// in release builds they are reported as `high` so that they are not silently dropped.
    pub fn emit(
        &mut self,
        rule_id: &'static str,
        status: Status,
        message: impl Into<String>,
        evidence: Evidence,
        reason: Option<Reason>,
    ) {
        let rule = catalogue::get(rule_id);
        debug_assert!(rule.is_some(), "rule {rule_id} missing from the catalogue");
        let (severity, title) = rule.map_or((Severity::High, "unknown rule"), |r| {
            (r.severity, r.title.as_str())
        });
        self.outcomes.push(Outcome {
            rule_id,
            family: self.family,
            target: self.target.clone(),
            status,
            severity,
            title,
            message: one_line(&message.into(), 400),
            evidence,
            reason,
            fingerprint: fingerprint(rule_id, &self.target),
            findings: Vec::new(),
            subjects: Vec::new(),
            suppressed: false,
            suppression: None,
        });
    }

    /// The control is in place.
    pub fn pass(&mut self, rule_id: &'static str, message: impl Into<String>, evidence: Evidence) {
        self.emit(rule_id, Status::Pass, message, evidence, None);
    }

    /// The control is missing or weak (one finding, about the target).
    pub fn fail(&mut self, rule_id: &'static str, message: impl Into<String>, evidence: Evidence) {
        self.emit(rule_id, Status::Fail, message, evidence, None);
    }

    /// The control is missing for each of `findings`: one failed result whose message and
    /// evidence summarise, with one finding per subject.
    pub fn fail_each(
        &mut self,
        rule_id: &'static str,
        message: impl Into<String>,
        evidence: Evidence,
        findings: Vec<(Subject, String, Evidence)>,
    ) {
        self.emit(rule_id, Status::Fail, message, evidence, None);
        if let Some(o) = self.outcomes.last_mut() {
            for (subject, message, evidence) in findings {
                o.finding(subject, message, evidence);
            }
        }
    }

    /// [`Emitter::fail_each`] whose message lists the findings' messages, `; ` apart.
    pub fn fail_listed(
        &mut self,
        rule_id: &'static str,
        evidence: Evidence,
        findings: Vec<(Subject, String, Evidence)>,
    ) {
        let message = findings
            .iter()
            .map(|(_, m, _)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        self.fail_each(rule_id, message, evidence, findings);
    }

    /// The rule could not be decided.
    pub fn inconclusive(&mut self, rule_id: &'static str, reason: &Reason) {
        let message = format!("could not decide: {}", reason.detail);
        self.emit(
            rule_id,
            Status::Inconclusive,
            message,
            Evidence::none(),
            Some(reason.clone()),
        );
    }

    /// The rule does not apply to what was observed.
    pub fn skipped(&mut self, rule_id: &'static str, why: impl Into<String>) {
        self.emit(rule_id, Status::Skipped, why, Evidence::none(), None);
    }

    /// The last result recorded for `rule_id`, to add findings or checked subjects to it.
    pub fn last(&mut self, rule_id: &str) -> Option<&mut Outcome> {
        self.outcomes
            .iter_mut()
            .rev()
            .find(|o| o.rule_id == rule_id)
    }

    /// Whether a result for `rule_id` was already recorded.
    pub fn has(&self, rule_id: &str) -> bool {
        self.outcomes.iter().any(|o| o.rule_id == rule_id)
    }

    /// Fold per-subject verdicts into one result: fail if any subject is bad (one finding
    /// each), else inconclusive if any is undecided, else pass if any is good, else skipped.
    /// Every subject that did not fail is listed with its own verdict, and the evidence lists
    /// them all (`evidence_key`: one line per subject).
    pub fn judge(
        &mut self,
        id: &'static str,
        verdicts: &[(Subject, Verdict)],
        evidence_key: &'static str,
        none: &str,
    ) {
        use crate::model::Observed;
        if verdicts.is_empty() {
            return self.skipped(id, none);
        }
        let label = |s: &Subject| s.key.clone();
        let lines = verdicts.iter().map(|(s, v)| match v {
            Verdict::Bad(m) | Verdict::Good(m) | Verdict::NotApplicable(m) => {
                format!("{}: {m}", label(s))
            }
            Verdict::Undecided(r) => format!("{}: undecided: {}", label(s), r.detail),
        });
        let evidence = Evidence::none().with(evidence_key, Observed::texts(lines));
        let line = |s: &Subject, m: &str| format!("{}: {m}", label(s));
        let bad: Vec<(Subject, String)> = verdicts
            .iter()
            .filter_map(|(s, v)| match v {
                Verdict::Bad(m) => Some((s.clone(), line(s, m))),
                _ => None,
            })
            .collect();
        if !bad.is_empty() {
            let findings = bad
                .into_iter()
                .map(|(s, m)| {
                    let ev = Evidence::none().text(evidence_key, m.clone());
                    (s, m, ev)
                })
                .collect();
            self.fail_listed(id, evidence, findings);
        } else if let Some(r) = verdicts.iter().find_map(|(_, v)| match v {
            Verdict::Undecided(r) => Some(r),
            _ => None,
        }) {
            self.emit(
                id,
                Status::Inconclusive,
                format!("could not decide: {}", r.detail),
                evidence,
                Some(r.clone()),
            );
        } else {
            let good: Vec<String> = verdicts
                .iter()
                .filter_map(|(s, v)| match v {
                    Verdict::Good(m) => Some(line(s, m)),
                    _ => None,
                })
                .collect();
            if good.is_empty() {
                let why: Vec<String> = verdicts
                    .iter()
                    .filter_map(|(s, v)| match v {
                        Verdict::NotApplicable(m) => Some(line(s, m)),
                        _ => None,
                    })
                    .collect();
                self.skipped(id, why.join("; "));
            } else {
                self.pass(id, good.join("; "), evidence);
            }
        }
        if let Some(o) = self.last(id) {
            for (s, v) in verdicts {
                match v {
                    Verdict::Bad(_) => {}
                    Verdict::Good(m) => o.checked(s.clone(), Status::Pass, m.clone(), None),
                    Verdict::Undecided(r) => o.checked(
                        s.clone(),
                        Status::Inconclusive,
                        format!("could not decide: {}", r.detail),
                        Some(r.clone()),
                    ),
                    Verdict::NotApplicable(m) => {
                        o.checked(s.clone(), Status::Skipped, m.clone(), None);
                    }
                }
            }
        }
    }

    /// The recorded results; every failed result has at least one finding (about the target
    /// when the rule named no finer subject).
    pub fn finish(mut self) -> Vec<Outcome> {
        for o in &mut self.outcomes {
            o.complete_findings();
        }
        self.outcomes
    }
}
