//! Baselines: a JSON report of an earlier run (`--baseline PREVIOUS.json`), and the diff of
//! two reports (`secgate diff OLD.json NEW.json`).
//!
//! Matching is one-for-one on a finding's fingerprint (rule id, target, subject key): three
//! findings with one fingerprint against a baseline holding two give one `new`. A matched
//! finding is `unchanged`, or `updated` when its severity or evidence differs (evidence lists
//! are compared as sets, so a reordered list is not a change). A baseline finding left over is
//! `fixed` when its rule was evaluated again on its target (the result now passes, or fails
//! without it), and `absent` otherwise (the target or the rule was not scanned, or stayed
//! inconclusive): never called fixed without evidence. Reports of schema 1.0 (one finding per
//! failed result, no `findings[]`) load too.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{BaselineState, Outcome, Severity, Status};

/// One finding on either side of a diff.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Item {
    /// Rule id.
    pub rule_id: String,
    /// Target id.
    pub target: String,
    /// Subject key (empty for the target itself).
    pub subject: String,
    /// Severity.
    pub severity: Severity,
    /// The finding's fingerprint.
    pub fingerprint: String,
    /// Its message.
    pub message: String,
    /// Its evidence, as JSON.
    #[serde(skip)]
    pub evidence: Value,
}

/// One side of a diff: its findings and which (rule, target) pairs were decided.
#[derive(Clone, Debug, Default)]
pub struct Side {
    /// Where it came from (a path), for messages.
    pub source: String,
    /// Every finding.
    pub items: Vec<Item>,
    /// (rule id, target) pairs evaluated with a decision (pass or fail).
    pub decided: HashSet<(String, String)>,
}

#[derive(Deserialize)]
struct RawReport {
    schema_version: u32,
    #[serde(default)]
    schema_minor: u32,
    results: Vec<RawResult>,
}

#[derive(Deserialize)]
struct RawResult {
    rule_id: String,
    target: String,
    status: String,
    severity: Severity,
    fingerprint: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    evidence: Value,
    findings: Option<Vec<RawFinding>>,
}

#[derive(Deserialize)]
struct RawFinding {
    #[serde(default)]
    subject: Option<RawSubject>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    evidence: Value,
    fingerprint: String,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    key: String,
}

impl Side {
    /// Read a JSON report of any 1.x schema.
    pub fn load(path: &Path) -> std::result::Result<Side, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Side::parse(&path.display().to_string(), &text)
    }

    /// Parse a JSON report; `source` names it in messages.
    pub fn parse(source: &str, text: &str) -> std::result::Result<Side, String> {
        let raw: RawReport = serde_json::from_str(text)
            .map_err(|e| format!("{source}: not a secgate JSON report: {e}"))?;
        if raw.schema_version != 1 {
            return Err(format!(
                "{source}: schema version {}.{} is not supported (this secgate reads 1.x)",
                raw.schema_version, raw.schema_minor
            ));
        }
        let mut side = Side {
            source: source.to_string(),
            ..Side::default()
        };
        for r in raw.results {
            if r.status == "pass" || r.status == "fail" {
                side.decided.insert((r.rule_id.clone(), r.target.clone()));
            }
            if r.status != "fail" {
                continue;
            }
            match r.findings {
                Some(list) if !list.is_empty() => {
                    for f in list {
                        side.items.push(Item {
                            rule_id: r.rule_id.clone(),
                            target: r.target.clone(),
                            subject: f.subject.map(|s| s.key).unwrap_or_default(),
                            severity: r.severity,
                            fingerprint: f.fingerprint,
                            message: f.message,
                            evidence: f.evidence,
                        });
                    }
                }
                // Schema 1.0: the failed result is its one finding.
                _ => side.items.push(Item {
                    rule_id: r.rule_id,
                    target: r.target,
                    subject: String::new(),
                    severity: r.severity,
                    fingerprint: r.fingerprint,
                    message: r.message,
                    evidence: r.evidence,
                }),
            }
        }
        Ok(side)
    }

    /// The findings of live results.
    pub fn from_outcomes(outcomes: &[Outcome]) -> Side {
        let mut side = Side::default();
        for o in outcomes {
            if matches!(o.status, Status::Pass | Status::Fail) {
                side.decided
                    .insert((o.rule_id.to_string(), o.target.clone()));
            }
            for f in o.findings.iter().filter(|_| o.status == Status::Fail) {
                side.items.push(Item {
                    rule_id: o.rule_id.to_string(),
                    target: o.target.clone(),
                    subject: f.subject.key.clone(),
                    severity: o.severity,
                    fingerprint: f.fingerprint.clone(),
                    message: f.message.clone(),
                    evidence: serde_json::to_value(&f.evidence).unwrap_or(Value::Null),
                });
            }
        }
        side
    }
}

/// Load `--baseline PATH`.
pub fn load(path: &Path) -> Result<Side> {
    Side::load(path).map_err(|m| Error::usage("--baseline", m))
}

/// The diff of a new side against an old one.
#[derive(Clone, Debug, Default)]
pub struct Diff {
    /// The state of each new item, index for index.
    pub states: Vec<BaselineState>,
    /// Old items fixed: their rule was decided again on their target, without them.
    pub fixed: Vec<Item>,
    /// Old items neither fixed nor found: their rule or target was not decided this time.
    pub absent: Vec<Item>,
}

/// Counts of a diff.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffCounts {
    /// Findings not in the baseline.
    pub new: u32,
    /// Findings in the baseline, unchanged.
    pub unchanged: u32,
    /// Findings in the baseline with another severity or evidence.
    pub updated: u32,
    /// Baseline findings gone from results that were evaluated again.
    pub fixed: u32,
    /// Baseline findings of targets or rules not evaluated this time.
    pub absent: u32,
}

impl Diff {
    /// Counts by state.
    pub fn counts(&self) -> DiffCounts {
        let n = |s: BaselineState| {
            u32::try_from(self.states.iter().filter(|x| **x == s).count()).unwrap_or(u32::MAX)
        };
        DiffCounts {
            new: n(BaselineState::New),
            unchanged: n(BaselineState::Unchanged),
            updated: n(BaselineState::Updated),
            fixed: u32::try_from(self.fixed.len()).unwrap_or(u32::MAX),
            absent: u32::try_from(self.absent.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Evidence with every list sorted, so that a reordered list compares equal.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical).collect();
            items.sort_by_cached_key(ToString::to_string);
            Value::Array(items)
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        other => other.clone(),
    }
}

/// Compare `new` with `old`, one-for-one on fingerprints.
pub fn diff(old: &Side, new: &Side) -> Diff {
    let mut pool: HashMap<&str, VecDeque<usize>> = HashMap::new();
    for (i, item) in old.items.iter().enumerate() {
        pool.entry(item.fingerprint.as_str())
            .or_default()
            .push_back(i);
    }
    let mut used = vec![false; old.items.len()];
    let mut states = Vec::with_capacity(new.items.len());
    for item in &new.items {
        let matched = pool
            .get_mut(item.fingerprint.as_str())
            .and_then(VecDeque::pop_front);
        let state = match matched.and_then(|i| old.items.get(i).map(|o| (i, o))) {
            Some((i, o)) => {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                if o.severity == item.severity
                    && canonical(&o.evidence) == canonical(&item.evidence)
                {
                    BaselineState::Unchanged
                } else {
                    BaselineState::Updated
                }
            }
            None => BaselineState::New,
        };
        states.push(state);
    }
    let mut d = Diff {
        states,
        ..Diff::default()
    };
    for (item, _) in old.items.iter().zip(&used).filter(|(_, u)| !**u) {
        if new
            .decided
            .contains(&(item.rule_id.clone(), item.target.clone()))
        {
            d.fixed.push(item.clone());
        } else {
            d.absent.push(item.clone());
        }
    }
    d
}

/// One target's part of a diff (`secgate diff --json`).
#[derive(Debug, Default, Serialize)]
struct TargetDiff<'a> {
    target: &'a str,
    new: Vec<&'a Item>,
    updated: Vec<&'a Item>,
    fixed: Vec<&'a Item>,
    absent: Vec<&'a Item>,
    unchanged: u32,
}

/// The diff as `secgate diff --json` writes it.
#[derive(Debug, Serialize)]
struct DiffReport<'a> {
    old: &'a str,
    new: &'a str,
    fail_on: Severity,
    failed: bool,
    counts: DiffCounts,
    new_by_severity: crate::summarise::Counts,
    targets: Vec<TargetDiff<'a>>,
}

fn group<'a>(new: &'a Side, d: &'a Diff) -> Vec<TargetDiff<'a>> {
    let mut by: std::collections::BTreeMap<&str, TargetDiff<'a>> = Default::default();
    fn slot<'a, 'm>(
        by: &'m mut std::collections::BTreeMap<&'a str, TargetDiff<'a>>,
        t: &'a str,
    ) -> &'m mut TargetDiff<'a> {
        by.entry(t).or_insert_with(|| TargetDiff {
            target: t,
            ..TargetDiff::default()
        })
    }
    for (item, state) in new.items.iter().zip(&d.states) {
        let t = slot(&mut by, &item.target);
        match state {
            BaselineState::New => t.new.push(item),
            BaselineState::Updated => t.updated.push(item),
            BaselineState::Unchanged => t.unchanged += 1,
        }
    }
    for item in &d.fixed {
        slot(&mut by, &item.target).fixed.push(item);
    }
    for item in &d.absent {
        slot(&mut by, &item.target).absent.push(item);
    }
    let mut list: Vec<TargetDiff<'a>> = by.into_values().collect();
    for t in &mut list {
        for v in [&mut t.new, &mut t.updated, &mut t.fixed, &mut t.absent] {
            v.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule_id.cmp(&b.rule_id)));
        }
    }
    list
}

fn write_text(out: &mut dyn std::io::Write, r: &DiffReport<'_>) -> std::io::Result<()> {
    let e = crate::model::escape_unsafe;
    writeln!(out, "secgate diff {} → {}", e(r.old), e(r.new))?;
    for t in &r.targets {
        writeln!(out, "\n{}", e(t.target))?;
        for (label, items) in [
            ("NEW", &t.new),
            ("UPDATED", &t.updated),
            ("FIXED", &t.fixed),
            ("ABSENT", &t.absent),
        ] {
            for i in items {
                let subject = if i.subject.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", e(&i.subject))
                };
                writeln!(
                    out,
                    "  {label:<8} {:<8}  {}{subject}  {}",
                    i.severity.as_str(),
                    e(&i.rule_id),
                    e(&i.message)
                )?;
            }
        }
        if t.unchanged > 0 {
            writeln!(out, "  {} unchanged", t.unchanged)?;
        }
    }
    let by_sev: Vec<String> = Severity::DESCENDING
        .iter()
        .filter(|s| r.new_by_severity.get(**s) > 0)
        .map(|s| format!("{} {s}", r.new_by_severity.get(*s)))
        .collect();
    let c = &r.counts;
    writeln!(
        out,
        "\n{} new{}, {} updated, {} fixed, {} unchanged, {} absent (targets or rules not evaluated in {})",
        c.new,
        if by_sev.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_sev.join(", "))
        },
        c.updated,
        c.fixed,
        c.unchanged,
        c.absent,
        e(r.new)
    )?;
    writeln!(
        out,
        "{}: {} new finding{} at or above {}",
        if r.failed { "FAILED" } else { "PASSED" },
        count_at_or_above(&r.new_by_severity, r.fail_on),
        if count_at_or_above(&r.new_by_severity, r.fail_on) == 1 {
            ""
        } else {
            "s"
        },
        r.fail_on
    )
}

fn count_at_or_above(c: &crate::summarise::Counts, min: Severity) -> u32 {
    Severity::DESCENDING
        .iter()
        .filter(|s| **s >= min)
        .map(|s| c.get(*s))
        .sum()
}

/// `secgate diff OLD.json NEW.json`: exit 1 when a new finding is at or above `--fail-on`.
pub fn command(args: &crate::cli::DiffArgs) -> Result<std::process::ExitCode> {
    let fail_on =
        crate::policy::parse_severity(&args.fail_on).map_err(|m| Error::usage("--fail-on", m))?;
    let old = Side::load(&args.old).map_err(|m| Error::usage("OLD", m))?;
    let new = Side::load(&args.new).map_err(|m| Error::usage("NEW", m))?;
    let d = diff(&old, &new);
    let mut new_by_severity = crate::summarise::Counts::default();
    for (item, state) in new.items.iter().zip(&d.states) {
        if *state == BaselineState::New {
            new_by_severity.add(item.severity);
        }
    }
    let failed = count_at_or_above(&new_by_severity, fail_on) > 0;
    let report = DiffReport {
        old: &old.source,
        new: &new.source,
        fail_on,
        failed,
        counts: d.counts(),
        new_by_severity,
        targets: group(&new, &d),
    };
    fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    match &args.json {
        Some(p) if crate::cli::is_stdout(p) => {
            let mut out = std::io::stdout().lock();
            crate::ignore_broken_pipe(
                serde_json::to_writer_pretty(&mut out, &report)
                    .map_err(std::io::Error::from)
                    .and_then(|()| std::io::Write::write_all(&mut out, b"\n")),
            )?;
        }
        Some(p) => {
            crate::cli::check_writable("--json", p)?;
            // Through the report writer, as every other report file: a device or FIFO is
            // written in place, anything else atomically through an exclusive temp file.
            crate::report::write_file_with(p, &mut |out| {
                serde_json::to_writer_pretty(&mut *out, &report)?;
                std::io::Write::write_all(out, b"\n")
            })
            .map_err(io(p))?;
            crate::ignore_broken_pipe(write_text(&mut std::io::stdout().lock(), &report))?;
        }
        None => {
            crate::ignore_broken_pipe(write_text(&mut std::io::stdout().lock(), &report))?;
        }
    }
    Ok(std::process::ExitCode::from(if failed {
        crate::EXIT_FINDINGS
    } else {
        crate::EXIT_PASSED
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(fp: &str, sev: Severity, ev: Value) -> Item {
        Item {
            rule_id: "ports.unexpected_open".into(),
            target: "h".into(),
            subject: String::new(),
            severity: sev,
            fingerprint: fp.into(),
            message: String::new(),
            evidence: ev,
        }
    }

    #[test]
    fn matching_is_one_for_one() {
        let e = serde_json::json!({"ports": ["a", "b"]});
        let old = Side {
            items: vec![
                item("x", Severity::High, e.clone()),
                item("x", Severity::High, e.clone()),
            ],
            ..Side::default()
        };
        let new = Side {
            items: vec![
                item(
                    "x",
                    Severity::High,
                    serde_json::json!({"ports": ["b", "a"]}),
                ),
                item("x", Severity::Critical, e.clone()),
                item("x", Severity::High, e),
            ],
            ..Side::default()
        };
        let d = diff(&old, &new);
        assert_eq!(
            d.states,
            vec![
                BaselineState::Unchanged,
                BaselineState::Updated,
                BaselineState::New
            ]
        );
        assert!(d.fixed.is_empty() && d.absent.is_empty());
    }

    #[test]
    fn leftovers_are_fixed_only_when_decided_again() {
        let old = Side {
            items: vec![
                item("a", Severity::High, Value::Null),
                Item {
                    rule_id: "headers.hsts.missing".into(),
                    ..item("b", Severity::Medium, Value::Null)
                },
            ],
            ..Side::default()
        };
        let mut new = Side::default();
        new.decided
            .insert(("ports.unexpected_open".into(), "h".into()));
        let d = diff(&old, &new);
        assert_eq!(d.fixed.len(), 1);
        assert_eq!(d.fixed[0].fingerprint, "a");
        assert_eq!(d.absent[0].fingerprint, "b");
    }
}
