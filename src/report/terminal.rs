//! The terminal report: results grouped by target, findings first and most severe first,
//! then a summary line with the score and counts, and the gate verdict with its reasons.
//!
//! Colour is used only when asked (a TTY without `--no-color` or `NO_COLOR`).

use std::io::{self, Write};

use super::ScanReport;
use crate::model::{Outcome, Severity, Status, TargetStatus};
use crate::summarise::{Verdict, fmt_score};

/// Terminal output options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Use ANSI colours.
    pub color: bool,
    /// List passed and skipped results too.
    pub verbose: bool,
}

struct Paint(bool);

impl Paint {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn severity(&self, s: Severity, text: &str) -> String {
        let code = match s {
            Severity::Critical => "1;35",
            Severity::High => "1;31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        self.paint(code, text)
    }
}

/// Write the terminal report.
pub fn write(report: &ScanReport, out: &mut dyn Write, opts: Options) -> io::Result<()> {
    let p = Paint(opts.color);
    let n = report.targets.len();
    writeln!(
        out,
        "{} {} · {} target{} · families: {}{}{}",
        p.paint("1", "secgate"),
        report.tool.version,
        n,
        if n == 1 { "" } else { "s" },
        if report.families.is_empty() {
            "none".to_string()
        } else {
            report.families.join(", ")
        },
        // The default profile is the catalogue as it ships: named only when another applies.
        if report.policy.profile.name == crate::profile::DEFAULT {
            String::new()
        } else {
            format!(" · profile {}", report.policy.profile.label())
        },
        if report.complete {
            ""
        } else {
            " · INTERRUPTED"
        },
    )?;
    let id_width = report
        .results
        .iter()
        .map(|o| o.rule_id.len())
        .max()
        .unwrap_or(20)
        .max(20);

    // Results by target, once (a scan may hold thousands of targets).
    let mut by_target: std::collections::HashMap<&str, Vec<&Outcome>> =
        std::collections::HashMap::new();
    for o in &report.results {
        by_target.entry(o.target.as_str()).or_default().push(o);
    }
    let none: Vec<&Outcome> = Vec::new();
    for t in &report.targets {
        let results = by_target.get(t.target.as_str()).unwrap_or(&none);
        writeln!(out)?;
        let addr = t
            .address
            .as_deref()
            .map(|a| format!("  ({a})"))
            .unwrap_or_default();
        let via = t
            .parent
            .as_deref()
            .map(|parent| format!("  found through {parent}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{}{addr}{}",
            p.paint("1", &t.target),
            p.paint("2", &via)
        )?;
        if let Some(chain) = &t.chain {
            write_chain(chain, out, &p)?;
        }
        match t.status {
            TargetStatus::Unreachable => {
                let why = t
                    .error
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                writeln!(out, "  {}  {why}", p.paint("1;31", "UNREACHABLE"))?;
                // Families that need no address (dns) may still have judged the name.
                if results.is_empty() {
                    continue;
                }
            }
            TargetStatus::Interrupted if results.is_empty() => {
                writeln!(out, "  {}  not scanned", p.paint("1;33", "INTERRUPTED"))?;
                continue;
            }
            _ => {}
        }
        let mut mine: Vec<&Outcome> = results.clone();
        // Findings first (most severe first), then inconclusive, then the rest in catalogue order.
        mine.sort_by_key(|o| {
            let rank = match o.status {
                Status::Fail => 0,
                Status::Inconclusive => 1,
                Status::Pass => 2,
                Status::Skipped => 3,
            };
            (rank, std::cmp::Reverse(o.severity))
        });
        let (mut passed, mut skipped) = (0, 0);
        let mut undecided_shown: Vec<&str> = Vec::new();
        let mut suppressed: Vec<String> = Vec::new();
        for o in &mine {
            // Suppressed findings are listed after the rest, each with its entry.
            for f in o.findings.iter().filter(|_| o.status == Status::Fail) {
                if let Some(sup) = &f.suppression {
                    let subject = if f.subject.is_target() {
                        String::new()
                    } else {
                        format!("{}: ", f.subject)
                    };
                    suppressed.push(suppressed_line(
                        &p,
                        o,
                        &format!("{subject}{}", f.message),
                        sup,
                        opts.verbose,
                        id_width,
                    ));
                }
            }
            if let Some(sup) = &o.suppression {
                suppressed.push(suppressed_line(
                    &p,
                    o,
                    &format!("inconclusive: {}", o.message),
                    sup,
                    opts.verbose,
                    id_width,
                ));
            }
            if o.suppressed {
                continue;
            }
            let label = match o.status {
                Status::Fail => p.severity(o.severity, "FAIL"),
                Status::Inconclusive => {
                    // Many rules undecided for one reason (a dead target) read better as one line.
                    let detail = o.reason.as_ref().map_or("", |r| r.detail.as_str());
                    let same = mine
                        .iter()
                        .filter(|x| {
                            x.status == Status::Inconclusive
                                && !x.suppressed
                                && x.reason.as_ref().is_some_and(|r| r.detail == detail)
                        })
                        .count();
                    if !opts.verbose && same > 3 {
                        if !undecided_shown.contains(&detail) {
                            undecided_shown.push(detail);
                            writeln!(
                                out,
                                "  {}  {same} rules could not be decided: {detail}",
                                p.paint("1;33", "????")
                            )?;
                        }
                        continue;
                    }
                    p.paint("1;33", "????")
                }
                Status::Pass => {
                    passed += 1;
                    if !opts.verbose {
                        continue;
                    }
                    p.paint("32", "pass")
                }
                Status::Skipped => {
                    skipped += 1;
                    if !opts.verbose {
                        continue;
                    }
                    p.paint("2", "skip")
                }
            };
            let sev = format!("{:<8}", o.severity.as_str());
            writeln!(
                out,
                "  {label}  {}  {:<id_width$}  {}{}",
                p.severity(o.severity, &sev),
                o.rule_id,
                o.message,
                baseline_tag(o)
            )?;
            // One line per open finding under its rule, when the rule has several.
            let several = o.findings.len() > 1;
            for f in o
                .findings
                .iter()
                .filter(|f| several && f.suppression.is_none())
            {
                writeln!(out, "        - {}", f.message)?;
            }
            if o.status == Status::Fail && opts.verbose {
                for (k, v) in &o.evidence.0 {
                    writeln!(
                        out,
                        "        {}: {}",
                        p.paint("2", k),
                        super::evidence_shown(v)
                    )?;
                }
            }
        }
        for line in &suppressed {
            writeln!(out, "{line}")?;
        }
        for o in results {
            write_latency_table(o, out, &p)?;
        }
        if !opts.verbose && passed + skipped > 0 {
            writeln!(
                out,
                "  {}",
                p.paint(
                    "2",
                    &format!("{passed} passed, {skipped} skipped (--verbose lists them)")
                )
            )?;
        }
    }

    write_compliance(report, out, &p, opts.verbose)?;

    let s = &report.summary;
    writeln!(out)?;
    let families: Vec<String> = s
        .family_scores
        .iter()
        .map(|(f, sc)| format!("{f} {}", fmt_score(*sc)))
        .collect();
    let counts: Vec<String> = Severity::DESCENDING
        .iter()
        .map(|sev| p.severity(*sev, &format!("{} {}", s.counts.get(*sev), sev)))
        .collect();
    writeln!(
        out,
        "Score {}{} · findings: {} · {} inconclusive · {} passed",
        p.paint("1", &fmt_score(s.score)),
        if families.len() > 1 {
            format!(" ({})", families.join(", "))
        } else {
            String::new()
        },
        counts.join(", "),
        s.results.inconclusive,
        s.results.pass,
    )?;
    write_triage(report, out, &p)?;
    let verdict = match s.gate.verdict {
        Verdict::Passed => p.paint("1;32", "PASSED"),
        Verdict::Failed => p.paint("1;31", "FAILED"),
        Verdict::Undecided => p.paint("1;33", "UNDECIDED"),
    };
    writeln!(out, "Gate {verdict}: {}", s.gate.reasons.join("; "))?;
    Ok(())
}

/// The latency tables of a result whose evidence has them (the load family's, see
/// [`super::LoadFigures`]): phase × p50 … max in ms, the rate, requests sent, errors and their
/// kinds; and with a request mix, the same per template.
fn write_latency_table(o: &Outcome, out: &mut dyn Write, p: &Paint) -> io::Result<()> {
    use super::{LATENCY_COLUMNS, ms};
    let Some(figures) = super::LoadFigures::of(o) else {
        return Ok(());
    };
    if figures.phases.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "  {}",
        p.paint(
            "1",
            "load: latency by phase (ms, from each request's scheduled send time)"
        )
    )?;
    let mut head = format!(
        "    {:<8} {:>8} {:>8} {:>7}",
        "phase", "rate/s", "sent", "errors"
    );
    for (label, _) in LATENCY_COLUMNS {
        head.push_str(&format!(" {label:>7}"));
    }
    head.push_str("  errors by kind");
    writeln!(out, "{}", p.paint("2", &head))?;
    for row in &figures.phases {
        let mut line = format!(
            "    {:<8} {:>8} {:>8} {:>7}",
            row.text("phase"),
            row.text("rate_per_s"),
            row.number("sent"),
            row.number("errors")
        );
        for (_, key) in LATENCY_COLUMNS {
            line.push_str(&format!(" {:>7}", ms(row.number(key))));
        }
        let kinds = row.text("errors_by_kind");
        line.push_str(&format!(
            "  {}",
            if kinds.is_empty() { "-" } else { &kinds }
        ));
        writeln!(out, "{}", line.trim_end())?;
    }
    if figures.templates.is_empty() {
        return Ok(());
    }
    let width = figures
        .templates
        .iter()
        .map(|r| r.text("template").chars().count())
        .max()
        .unwrap_or(8)
        .clamp(8, 40);
    writeln!(
        out,
        "{}",
        p.paint(
            "2",
            &format!(
                "    {:<width$} {:>6} {:>8} {:>7} {:>7} {:>7} {:>7}  errors by kind",
                "template", "weight", "requests", "errors", "p50", "p95", "p99"
            )
        )
    )?;
    for row in &figures.templates {
        let kinds = row.text("errors_by_kind");
        let name: String = row.text("template").chars().take(40).collect();
        writeln!(
            out,
            "    {name:<width$} {:>6} {:>8} {:>7} {:>7} {:>7} {:>7}  {}",
            row.number("weight"),
            row.number("requests"),
            row.number("errors"),
            ms(row.number("p50_us")),
            ms(row.number("p95_us")),
            ms(row.number("p99_us")),
            if kinds.is_empty() { "-" } else { &kinds }
        )?;
    }
    Ok(())
}

/// ` [new]`, ` [updated]` or ` [unchanged]` after a failed result, against a baseline: the
/// most telling state among its open findings.
fn baseline_tag(o: &Outcome) -> String {
    use crate::model::BaselineState;
    let states: Vec<BaselineState> = o
        .findings
        .iter()
        .filter(|f| f.suppression.is_none())
        .filter_map(|f| f.baseline_state)
        .collect();
    [
        BaselineState::New,
        BaselineState::Updated,
        BaselineState::Unchanged,
    ]
    .into_iter()
    .find(|s| states.contains(s))
    .map(|s| format!("  [{}]", s.as_str()))
    .unwrap_or_default()
}

fn suppressed_line(
    p: &Paint,
    o: &Outcome,
    what: &str,
    sup: &crate::model::Suppressed,
    verbose: bool,
    id_width: usize,
) -> String {
    let sev = format!("{:<8}", o.severity.as_str());
    let expires = sup
        .expires
        .as_deref()
        .map_or_else(|| "permanent".to_string(), |d| format!("expires {d}"));
    let mut line = format!(
        "  {}  {}  {:<id_width$}  {what} — suppressed: {} ({expires})",
        p.paint("2", "SUPPRESSED"),
        p.severity(o.severity, &sev),
        o.rule_id,
        sup.reason,
    );
    if verbose {
        line.push_str(&format!(
            "\n        owner: {} · {}",
            sup.owner.as_deref().unwrap_or("-"),
            sup.source
        ));
    }
    line
}

/// The suppressions and the baseline, after the score line.
/// What a target's sweep chained, and the open ports it did not, with why.
fn write_chain(
    chain: &crate::model::ChainReport,
    out: &mut dyn Write,
    p: &Paint,
) -> io::Result<()> {
    if !chain.chained.is_empty() {
        let list: Vec<String> = chain
            .chained
            .iter()
            .map(|c| format!("{} ({})", c.target, c.families.join(", ")))
            .collect();
        writeln!(out, "  {}  {}", p.paint("1;36", "CHAINED"), list.join(", "))?;
    }
    for n in &chain.not_chained {
        writeln!(
            out,
            "  {}  {} {}: {}",
            p.paint("2", "NOT CHAINED"),
            n.address,
            n.service,
            n.reason
        )?;
    }
    Ok(())
}

fn write_triage(report: &ScanReport, out: &mut dyn Write, p: &Paint) -> io::Result<()> {
    let s = &report.suppressions;
    if let Some(file) = &s.file {
        writeln!(out, "Suppressions: {} applied ({file})", s.applied)?;
        for e in &s.expired {
            writeln!(
                out,
                "  {}  {}  {} on {} expired on {}; {} finding{} count{} again",
                p.paint("1;31", "EXPIRED "),
                e.source,
                e.rule,
                e.target,
                e.expires.as_deref().unwrap_or("?"),
                e.findings,
                if e.findings == 1 { "" } else { "s" },
                if e.findings == 1 { "s" } else { "" },
            )?;
        }
        for e in &s.expiring_soon {
            writeln!(
                out,
                "  {}  {}  {} on {} expires on {}",
                p.paint("1;33", "EXPIRING"),
                e.source,
                e.rule,
                e.target,
                e.expires.as_deref().unwrap_or("?"),
            )?;
        }
        for e in &s.stale {
            writeln!(
                out,
                "  {}  {}  {} on {} matched nothing (fixed, or the target renamed?)",
                p.paint("1;33", "STALE   "),
                e.source,
                e.rule,
                e.target,
            )?;
        }
    }
    if let Some(b) = &report.baseline {
        let c = &b.counts;
        writeln!(
            out,
            "Baseline ({}): {} new, {} updated, {} unchanged, {} fixed, {} absent",
            b.file, c.new, c.updated, c.unchanged, c.fixed, c.absent
        )?;
        for i in &b.fixed {
            let subject = if i.subject.is_empty() {
                String::new()
            } else {
                format!(" [{}]", i.subject)
            };
            writeln!(
                out,
                "  {}  {:<8}  {}  {}{subject}",
                p.paint("32", "FIXED"),
                i.severity.as_str(),
                i.rule_id,
                i.target
            )?;
        }
    }
    Ok(())
}

/// The longest reason shown in a compliance table row without `--verbose`.
const COMPLIANCE_REASON_CHARS: usize = 110;

/// One short table per compliance view: requirement, status, how many rules evidence it, why.
fn write_compliance(
    report: &ScanReport,
    out: &mut dyn Write,
    p: &Paint,
    verbose: bool,
) -> io::Result<()> {
    use crate::compliance::ReqStatus;
    for view in &report.compliance {
        let c = &view.counts;
        writeln!(out)?;
        writeln!(
            out,
            "{}: {} met, {} not met, {} not assessed",
            p.paint(
                "1",
                &format!("Compliance view: {} {}", view.name, view.version)
            ),
            c.met,
            c.not_met,
            c.not_assessed
        )?;
        let w = view
            .requirements
            .iter()
            .map(|r| r.id.chars().count())
            .max()
            .unwrap_or(11)
            .max(11);
        writeln!(
            out,
            "  {:<w$}  {:<12}  {:>5}  WHY",
            "REQUIREMENT", "STATUS", "RULES"
        )?;
        for r in &view.requirements {
            let (code, label) = match r.status {
                ReqStatus::Met => ("1;32", "MET"),
                ReqStatus::NotMet => ("1;31", "NOT MET"),
                ReqStatus::NotAssessed => ("2", "not assessed"),
            };
            let mut why = r.reason.clone();
            if let Some(caveat) = &r.caveat {
                why = format!("{why} ({caveat})");
            }
            if !verbose && why.chars().count() > COMPLIANCE_REASON_CHARS {
                why = why.chars().take(COMPLIANCE_REASON_CHARS - 1).collect();
                why.push('…');
            }
            writeln!(
                out,
                "  {:<w$}  {}  {:>5}  {why}",
                r.id,
                p.paint(code, &format!("{label:<12}")),
                r.rules.len()
            )?;
            if verbose {
                writeln!(out, "  {:<w$}  {}", "", p.paint("2", &r.title))?;
            }
        }
        if let Some(note) = &view.note {
            writeln!(out, "  {}", p.paint("2", &format!("note: {note}")))?;
        }
    }
    Ok(())
}
