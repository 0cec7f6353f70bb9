//! Stage 5, triage: decide, per finding, what the gate makes of it before anything is
//! scored, so that the score and every report see the same decision.
//!
//! - **Suppressions** ([`crate::suppress`]): the first unexpired entry that matches a finding
//!   (rule, target, and subject or fingerprint) marks it suppressed; it keeps its severity. A
//!   failed result whose findings are all suppressed, and an inconclusive result suppressed by
//!   an entry with its exact fingerprint (never by a glob), are marked `suppressed` and left
//!   out of the score and the counts. An expired entry suppresses nothing and is listed with
//!   the findings that count again; an entry expiring within 14 days is listed as expiring
//!   soon; an entry that matched nothing although its rule was decided (pass or fail) on a
//!   target it names is stale.
//! - **Baseline** ([`crate::baseline`]): every finding gets `new`, `unchanged` or `updated`,
//!   and the baseline's leftovers are listed as `fixed` or `absent`.

use serde::Serialize;

use crate::baseline::{self, DiffCounts, Item, Side};
use crate::model::{ScanResult, Status};
use crate::suppress::{EXPIRING_SOON_DAYS, EntryNote, Suppressions};

/// What the suppressions did in this scan (`suppressions` in the JSON report).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SuppressionReport {
    /// The file read, when there was one.
    pub file: Option<String>,
    /// Findings (and inconclusive results) suppressed.
    pub applied: u32,
    /// Entries past their expiry: what they match counts again.
    pub expired: Vec<EntryNote>,
    /// Entries that expire within 14 days.
    pub expiring_soon: Vec<EntryNote>,
    /// Entries that matched nothing although their rule was decided on a target they name.
    pub stale: Vec<EntryNote>,
}

/// The comparison with a baseline report (`baseline` in the JSON report).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BaselineReport {
    /// The baseline file.
    pub file: String,
    /// Counts by state.
    pub counts: DiffCounts,
    /// Baseline findings whose rule was decided again on their target, and that are gone.
    pub fixed: Vec<Item>,
    /// Baseline findings of targets or rules not decided this time (neither new nor fixed).
    pub absent: Vec<Item>,
}

/// Results after triage: what [`crate::summarise`] scores and the reports show.
#[derive(Clone, Debug)]
pub struct Triaged {
    /// The scan's results, findings marked.
    pub result: ScanResult,
    /// What the suppressions did.
    pub suppressions: SuppressionReport,
    /// The comparison with the baseline, when one was given.
    pub baseline: Option<BaselineReport>,
}

/// Whether every finding of a failed result is suppressed (the result is then out of the score
/// and the counts).
pub fn fully_suppressed(o: &crate::model::Outcome) -> bool {
    !o.findings.is_empty() && o.findings.iter().all(|f| f.suppression.is_some())
}

/// Triage a scan's results without suppressions or baseline.
pub fn triage(result: ScanResult) -> Triaged {
    triage_with(result, &Suppressions::default(), None)
}

/// Triage a scan's results against `suppressions` and an optional `baseline`.
pub fn triage_with(
    mut result: ScanResult,
    suppressions: &Suppressions,
    baseline: Option<&Side>,
) -> Triaged {
    let today = suppressions
        .today
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().date());
    let entries = &suppressions.entries;
    let mut hits = vec![0u32; entries.len()];
    let mut expired_hits = vec![0u32; entries.len()];
    let mut applied = 0u32;
    for o in &mut result.outcomes {
        match o.status {
            Status::Fail => {
                for f in &mut o.findings {
                    let mut expired = Vec::new();
                    for (i, e) in entries.iter().enumerate() {
                        if !e.matches_finding(o.rule_id, &o.target, &f.subject.key, &f.fingerprint)
                        {
                            continue;
                        }
                        if e.is_expired(today) {
                            expired.push(i);
                            continue;
                        }
                        if let Some(h) = hits.get_mut(i) {
                            *h += 1;
                        }
                        f.suppression = Some(e.suppressed());
                        applied += 1;
                        break;
                    }
                    // An expired entry makes a finding count again only if no other covers it.
                    if f.suppression.is_none() {
                        for i in expired {
                            if let Some(h) = expired_hits.get_mut(i) {
                                *h += 1;
                            }
                        }
                    }
                }
                o.suppressed = fully_suppressed(o);
            }
            Status::Inconclusive => {
                for (i, e) in entries.iter().enumerate() {
                    if !e.matches_inconclusive(o.rule_id, &o.target, &o.fingerprint) {
                        continue;
                    }
                    if e.is_expired(today) {
                        if let Some(h) = expired_hits.get_mut(i) {
                            *h += 1;
                        }
                        continue;
                    }
                    if let Some(h) = hits.get_mut(i) {
                        *h += 1;
                    }
                    o.suppression = Some(e.suppressed());
                    o.suppressed = true;
                    applied += 1;
                    break;
                }
            }
            Status::Pass | Status::Skipped => {}
        }
    }
    let mut report = SuppressionReport {
        file: suppressions.path.as_ref().map(|p| p.display().to_string()),
        applied,
        ..SuppressionReport::default()
    };
    let soon = today + time::Duration::days(EXPIRING_SOON_DAYS);
    for (i, e) in entries.iter().enumerate() {
        let n = hits.get(i).copied().unwrap_or(0);
        if e.is_expired(today) {
            report
                .expired
                .push(e.note(expired_hits.get(i).copied().unwrap_or(0)));
            continue;
        }
        if e.expires.is_some_and(|d| d <= soon) {
            report.expiring_soon.push(e.note(n));
        }
        // Stale: it matched nothing, and a rule it names was decided on a target it names.
        let decided = result.outcomes.iter().any(|o| {
            matches!(o.status, Status::Pass | Status::Fail) && e.covers(o.rule_id, &o.target)
        });
        if n == 0 && decided {
            report.stale.push(e.note(0));
        }
    }

    let baseline = baseline.map(|old| {
        let new = Side::from_outcomes(&result.outcomes);
        let d = baseline::diff(old, &new);
        let mut states = d.states.iter();
        for o in result
            .outcomes
            .iter_mut()
            .filter(|o| o.status == Status::Fail)
        {
            for f in &mut o.findings {
                f.baseline_state = states.next().copied();
            }
        }
        BaselineReport {
            file: old.source.clone(),
            counts: d.counts(),
            fixed: d.fixed,
            absent: d.absent,
        }
    });
    Triaged {
        result,
        suppressions: report,
        baseline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, Subject};
    use crate::policy::Policy;

    fn result_with_ports(ports: &[u16]) -> ScanResult {
        let mut e = crate::engine::Emitter::new("ports", "h.test");
        e.emit(
            "ports.unexpected_open",
            Status::Fail,
            "m",
            Evidence::none(),
            None,
        );
        e.emit(
            "ports.cleartext_protocol",
            Status::Pass,
            "m",
            Evidence::none(),
            None,
        );
        let mut outcomes = e.finish();
        for o in &mut outcomes {
            o.findings.clear();
            if o.status == Status::Fail {
                for p in ports {
                    o.finding(Subject::port(*p), format!("port {p}"), Evidence::none());
                }
            }
        }
        let now = time::OffsetDateTime::now_utc();
        ScanResult {
            started_at: now,
            finished_at: now,
            complete: true,
            targets: Vec::new(),
            outcomes,
        }
    }

    fn entries(text: &str) -> Suppressions {
        crate::suppress::parse(
            std::path::Path::new("s.toml"),
            text,
            &Policy::default(),
            time::macros::date!(2026 - 12 - 03),
        )
        .unwrap()
    }

    #[test]
    fn an_expired_entry_counts_only_findings_no_other_entry_covers() {
        let s = entries(
            r#"[[suppress]]
rule = "ports.*"
target = "h.test"
reason = "old"
expires = 2026-11-30

[[suppress]]
rule = "ports.unexpected_open"
target = "h.test"
subject = "tcp/22"
reason = "bastion"
expires = 2026-12-10

[[suppress]]
rule = "ports.cleartext_protocol"
target = "h.test"
reason = "telnet gone"
expires = 2027-01-10
"#,
        );
        let t = triage_with(result_with_ports(&[22, 23]), &s, None);
        let o = &t.result.outcomes[0];
        assert!(o.findings[0].suppression.is_some());
        assert!(o.findings[1].suppression.is_none());
        assert!(!o.suppressed, "one finding is open");
        assert_eq!(t.suppressions.applied, 1);
        assert_eq!(t.suppressions.expired.len(), 1);
        assert_eq!(t.suppressions.expired[0].findings, 1, "tcp/23 only");
        assert_eq!(t.suppressions.expiring_soon[0].source, "s.toml:7");
        // The cleartext rule passed on the target: its entry is stale.
        assert_eq!(t.suppressions.stale.len(), 1);
        assert_eq!(t.suppressions.stale[0].source, "s.toml:14");

        let summary = crate::summarise::summarise_triaged(&t, &Policy::default());
        assert_eq!(summary.counts.medium, 1);
        let all = triage_with(result_with_ports(&[22]), &s, None);
        assert!(all.result.outcomes[0].suppressed);
        let summary = crate::summarise::summarise_triaged(&all, &Policy::default());
        assert_eq!(summary.counts.medium, 0);
        assert_eq!(summary.results.suppressed, 1);
        assert_eq!(summary.score, Some(100.0));
    }
}
