//! One self-contained HTML page for people who open and forward a report.
//!
//! - No external scripts, fonts, styles or images: the style sheet and the script are inline,
//!   and a Content-Security-Policy meta tag of the page's own allows exactly those two (by
//!   their SHA-256 hashes) and nothing else (`default-src 'none'`), so even markup that
//!   slipped through could neither run nor load anything.
//! - Readable without JavaScript: the verdict banner, the counts, the score per family, the
//!   findings table (one row per finding, its evidence collapsed in `<details>`), the
//!   inconclusive results with their reasons, the targets, the documentation of every rule
//!   shown (from the catalogue), and the scan's settings. The script only adds filters (by
//!   severity, family and target) and sorting to the findings table.
//! - Templates are `maud`'s: every interpolated value is HTML-escaped unless marked
//!   otherwise, and only the page's own constants (style, script, hashes) are.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use base64::Engine as _;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::ScanReport;
use crate::catalogue::{self, RuleDoc};
use crate::model::{Evidence, Outcome, Status, TargetStatus};
use crate::summarise::{Verdict, fmt_score};

/// The page's style sheet.
pub const STYLE: &str = include_str!("html.css");
/// The page's script (filters and sorting).
pub const SCRIPT: &str = include_str!("html.js");

/// The HTML writer.
#[derive(Debug)]
pub struct Html;

impl super::Writer for Html {
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(page(report).into_string().as_bytes())
    }
}

/// `'sha256-…'` of an inline element's text, for the CSP.
fn csp_hash(text: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    )
}

/// The page's Content-Security-Policy: nothing but its own style sheet and script.
pub fn csp() -> String {
    format!(
        "default-src 'none'; style-src {}; script-src {}; img-src data:; base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
}

fn verdict(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Passed => ("passed", "PASSED"),
        Verdict::Failed => ("failed", "FAILED"),
        Verdict::Undecided => ("undecided", "UNDECIDED"),
    }
}

fn rule_anchor(id: &str) -> String {
    format!("rule-{id}")
}

/// Render the page.
pub fn page(report: &ScanReport) -> Markup {
    let s = &report.summary;
    let (class, word) = verdict(s.gate.verdict);
    let mut findings: Vec<&Outcome> = report.open_findings().collect();
    findings.sort_by_key(|o| {
        (
            std::cmp::Reverse(o.severity),
            catalogue::index(o.rule_id),
            o.target.as_str(),
        )
    });
    let undecided: Vec<&Outcome> = report
        .results
        .iter()
        .filter(|o| o.status == Status::Inconclusive)
        .collect();
    let rules: BTreeSet<&'static str> = findings
        .iter()
        .chain(undecided.iter())
        .map(|o| o.rule_id)
        .collect();
    let families: BTreeSet<&str> = findings.iter().map(|o| o.family).collect();
    let targets: BTreeSet<&str> = findings.iter().map(|o| o.target.as_str()).collect();
    let rows: usize = findings.iter().map(|o| super::open_rows(o)).sum();
    let parents: BTreeMap<&str, &str> = report
        .targets
        .iter()
        .filter_map(|t| Some((t.target.as_str(), t.parent.as_deref()?)))
        .collect();
    let mut per_target: BTreeMap<&str, [u32; 4]> = BTreeMap::new();
    for o in &report.results {
        let slot = per_target.entry(o.target.as_str()).or_default();
        let i = match o.status {
            Status::Fail => 0,
            Status::Inconclusive => 1,
            Status::Pass => 2,
            Status::Skipped => 3,
        };
        if let Some(c) = slot.get_mut(i) {
            *c += 1;
        }
    }
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(csp());
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { "secgate: gate " (word) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 { "secgate report" }
                    p.meta {
                        "secgate " (report.tool.version) " · " (report.targets.len()) " targets · families: "
                        (report.families.join(", ")) " · started " (report.started_at)
                        " · " (report.duration_ms) " ms"
                        @if !report.complete { " · INTERRUPTED: incomplete" }
                    }
                    section #verdict class={ "verdict " (class) } {
                        div.big { "Gate " span #gate { (word) } " · score " (fmt_score(s.score)) }
                        ul { @for r in &s.gate.reasons { li { (r) } } }
                    }
                    table.counts {
                        thead { tr {
                            th { "critical" } th { "high" } th { "medium" } th { "low" } th { "info" }
                            th { "inconclusive" } th { "passed" } th { "skipped" }
                        } }
                        tbody { tr {
                            td.sev-critical { (s.counts.critical) } td.sev-high { (s.counts.high) }
                            td.sev-medium { (s.counts.medium) } td.sev-low { (s.counts.low) }
                            td.sev-info { (s.counts.info) } td { (s.results.inconclusive) }
                            td { (s.results.pass) } td { (s.results.skipped) }
                        } }
                    }
                    h2 #scores { "Score per family" }
                    table.narrow {
                        thead { tr { th { "family" } th.num { "score" } } }
                        tbody { @for (f, sc) in &s.family_scores { tr { td { (f) } td.num { (fmt_score(*sc)) } } } }
                    }
                    h2 #findings-heading { "Findings (" (rows) ")" }
                    @if findings.is_empty() {
                        p { "No findings." }
                    } @else {
                        form #filters hidden {
                            label { "Severity " select name="severity" {
                                option value="" { "all" }
                                @for sev in crate::model::Severity::DESCENDING {
                                    option value=(sev.as_str()) { (sev.as_str()) }
                                }
                            } }
                            label { "Family " select name="family" {
                                option value="" { "all" }
                                @for f in &families { option value=(f) { (f) } }
                            } }
                            label { "Target " select name="target" {
                                option value="" { "all" }
                                @for t in &targets { option value=(t) { (t) } }
                            } }
                            span #shown .shown {}
                        }
                        table #findings {
                            thead { tr {
                                th data-sort="rank" { "severity" } th data-sort="text" { "rule" }
                                th data-sort="text" { "family" } th data-sort="text" { "target" }
                                th { "finding" }
                            } }
                            tbody {
                                @for o in &findings {
                                    @for (message, evidence) in finding_rows(o) {
                                        tr data-severity=(o.severity.as_str()) data-family=(o.family)
                                           data-target=(o.target) data-rank=(10 - o.severity.weight()) {
                                            td class={ "sev sev-" (o.severity.as_str()) } { (o.severity.as_str()) }
                                            td { a.rule-id href={ "#" (rule_anchor(o.rule_id)) } { code { (o.rule_id) } } }
                                            td { (o.family) }
                                            td {
                                                code { (o.target) }
                                                @if let Some(p) = parents.get(o.target.as_str()) { br; small { "found through " code { (p) } } }
                                            }
                                            td {
                                                (message)
                                                @if !evidence.is_empty() {
                                                    details { summary { "evidence" } (evidence_list(evidence)) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if !undecided.is_empty() {
                        h2 #inconclusive { "Inconclusive (" (undecided.len()) ")" }
                        p.meta { "Each counts as not passed: the scan could not decide it." }
                        table {
                            thead { tr { th { "severity" } th { "rule" } th { "target" } th { "reason" } } }
                            tbody {
                                @for o in &undecided {
                                    tr {
                                        td class={ "sev sev-" (o.severity.as_str()) } { (o.severity.as_str()) }
                                        td { a href={ "#" (rule_anchor(o.rule_id)) } { code { (o.rule_id) } } }
                                        td { code { (o.target) } }
                                        td {
                                            @if let Some(r) = &o.reason { (r.kind.as_str()) ": " (r.detail) }
                                            @else { (o.message) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    h2 #targets { "Targets" }
                    table {
                        thead { tr {
                            th { "target" } th { "address" } th { "status" }
                            th.num { "failed" } th.num { "inconclusive" } th.num { "passed" } th.num { "skipped" }
                        } }
                        tbody {
                            @for t in &report.targets {
                                @let c = per_target.get(t.target.as_str()).copied().unwrap_or_default();
                                tr {
                                    td {
                                        code { (t.target) }
                                        @if let Some(parent) = &t.parent { br; small { "found through " code { (parent) } } }
                                        @if let Some(chain) = &t.chain {
                                            @for c in &chain.chained { br; small { "chained: " code { (c.target) } " (" (c.families.join(", ")) ")" } }
                                            @for n in &chain.not_chained { br; small { "not chained: " (n.address) " " (n.service) ": " (n.reason) } }
                                        }
                                    }
                                    td { (t.address.as_deref().unwrap_or("")) }
                                    td {
                                        (target_status(t.status))
                                        @if let Some(e) = &t.error { ": " (e) }
                                    }
                                    @for n in c { td.num { (n) } }
                                }
                            }
                        }
                    }
                    (load_section(report))
                    @for view in &report.compliance {
                        h2 id={ "compliance-" (view.framework) } {
                            "Compliance: " (view.name) " " (view.version)
                        }
                        p.meta {
                            (view.counts.met) " met, " (view.counts.not_met) " not met, "
                            (view.counts.not_assessed) " not assessed. Source: " (view.source)
                        }
                        @if let Some(note) = &view.note { p.meta { (note) } }
                        table {
                            thead { tr {
                                th { "requirement" } th { "status" } th { "rules" } th { "why" }
                            } }
                            tbody {
                                @for r in &view.requirements {
                                    tr {
                                        td { strong { (r.id) } " " (r.title) }
                                        td class={ "req req-" (req_class(r.status)) } { (r.status.label()) }
                                        td {
                                            @for (i, e) in r.rules.iter().enumerate() {
                                                @if i > 0 { ", " }
                                                @if rules.contains(e.rule_id) {
                                                    a href={ "#" (rule_anchor(e.rule_id)) } { code { (e.rule_id) } }
                                                } @else { code { (e.rule_id) } }
                                            }
                                        }
                                        td {
                                            (r.reason)
                                            @if let Some(c) = &r.caveat { " (" (c) ")" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if !rules.is_empty() {
                        h2 #rules { "Rules" }
                        @for id in &rules {
                            @if let Some(doc) = catalogue::get(id) { (rule_doc(doc)) }
                        }
                    }
                    h2 #settings { "Settings" }
                    table {
                        tbody {
                            tr { th { "gate" } td { "score ≥ " (report.policy.min_score) ", critical findings ≤ " (report.policy.max_critical) } }
                            tr { th { "families" } td { (report.families.join(", ")) } }
                            @for (k, v) in &report.settings { tr { th { (k) } td { (v) } } }
                            tr { th { "started" } td { (report.started_at) } }
                            tr { th { "finished" } td { (report.finished_at) } }
                        }
                    }
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// Milliseconds from microseconds, with the unit.
fn ms(us: i64) -> String {
    format!("{} ms", super::ms(us))
}

/// The smallest 1, 2 or 5 × 10^k at or above `v` (at least 1).
fn nice_ceiling(v: i64) -> i64 {
    let mut step: i64 = 1;
    loop {
        for m in [1, 2, 5] {
            let c = step.saturating_mul(m);
            if c >= v || c == i64::MAX {
                return c;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Width, height and margins of the latency chart (SVG user units).
const CHART: (f64, f64) = (720.0, 220.0);
const MARGIN: (f64, f64, f64, f64) = (56.0, 12.0, 14.0, 30.0); // left, right, top, bottom

/// The load section: per result that carries a load run's figures ([`super::LoadFigures`]),
/// its latency table by phase (and per request template of a mix) and a chart of the steady
/// phase's p95 per second (inline SVG: no script, no external resource, styled by the page's
/// own sheet; every text escaped by maud).
fn load_section(report: &ScanReport) -> Markup {
    let runs: Vec<(&Outcome, super::LoadFigures<'_>)> = report
        .results
        .iter()
        .filter_map(|o| Some((o, super::LoadFigures::of(o)?)))
        .collect();
    html! {
        @if !runs.is_empty() {
            h2 #load { "Load" }
            @for (o, figures) in &runs {
                h3 { "Latency of " code { (o.target) } }
                (phase_table(figures))
                (latency_chart(o, figures))
            }
        }
    }
}

fn phase_table(f: &super::LoadFigures<'_>) -> Markup {
    use super::LATENCY_COLUMNS;
    html! {
        @if !f.phases.is_empty() {
            table.load-phases {
                thead { tr {
                    th { "phase" } th.num { "rate/s" } th.num { "sent" } th.num { "errors" }
                    @for (label, _) in LATENCY_COLUMNS { th.num { (label) } }
                    th { "errors by kind" }
                } }
                tbody {
                    @for r in &f.phases {
                        tr {
                            td { (r.text("phase")) } td.num { (r.text("rate_per_s")) }
                            td.num { (r.number("sent")) } td.num { (r.number("errors")) }
                            @for (_, key) in LATENCY_COLUMNS { td.num { (ms(r.number(key))) } }
                            td { (r.text("errors_by_kind")) }
                        }
                    }
                }
            }
        }
        @if !f.templates.is_empty() {
            table.load-phases {
                thead { tr {
                    th { "request template" } th.num { "weight" } th.num { "requests" } th.num { "errors" }
                    th.num { "p50" } th.num { "p95" } th.num { "p99" } th { "errors by kind" }
                } }
                tbody {
                    @for r in &f.templates {
                        tr {
                            td { code { (r.text("template")) } } td.num { (r.number("weight")) }
                            td.num { (r.number("requests")) } td.num { (r.number("errors")) }
                            td.num { (ms(r.number("p50_us"))) } td.num { (ms(r.number("p95_us"))) }
                            td.num { (ms(r.number("p99_us"))) } td { (r.text("errors_by_kind")) }
                        }
                    }
                }
            }
        }
    }
}

fn latency_chart(o: &Outcome, f: &super::LoadFigures<'_>) -> Markup {
    let points = &f.series;
    if points.is_empty() {
        return html! {};
    }
    let (w, h) = CHART;
    let (left, right, top, bottom) = MARGIN;
    let (plot_w, plot_h) = (w - left - right, h - top - bottom);
    let p95: Vec<i64> = points.iter().map(|p| p.number("p95_us").max(0)).collect();
    let highest = p95.iter().copied().max().unwrap_or(0);
    let top_us = nice_ceiling(highest.max(1));
    let threshold = f.threshold_p95_us;
    #[allow(
        clippy::cast_precision_loss,
        reason = "at most 600 points of at most 60 s"
    )]
    let xy = |i: usize, v: i64| {
        let x = left + plot_w * i as f64 / (points.len().max(2) - 1) as f64;
        let y = top + plot_h - plot_h * (v.clamp(0, top_us) as f64) / top_us as f64;
        (format!("{x:.1}"), format!("{y:.1}"))
    };
    let line: Vec<String> = p95
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = xy(i, *v);
            format!("{x},{y}")
        })
        .collect();
    let label = format!(
        "p95 latency per second of the steady phase on {}: {} points, highest {}",
        o.target,
        points.len(),
        ms(highest)
    );
    let (x0, y0) = (left, top + plot_h);
    html! {
        figure.load-chart {
            svg.chart viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(label) {
                title { (label) }
                line.axis x1=(x0) y1=(y0) x2=(w - right) y2=(y0) {}
                line.axis x1=(x0) y1=(top) x2=(x0) y2=(y0) {}
                text.tick x=(x0 - 6.0) y=(y0) text-anchor="end" { "0" }
                text.tick x=(x0 - 6.0) y=(top + 8.0) text-anchor="end" { (ms(top_us)) }
                text.tick x=(x0) y=(h - 10.0) { "0 s" }
                text.tick x=(w - right) y=(h - 10.0) text-anchor="end" { (points.len().saturating_sub(1)) " s" }
                @if let Some(t) = threshold.filter(|t| *t <= top_us) {
                    @let (_, ty) = xy(0, t);
                    line.threshold x1=(x0) y1=(ty) x2=(w - right) y2=(ty) {}
                    text.tick x=(w - right) y=(y0 - 4.0) text-anchor="end" { "dashed: threshold " (ms(t)) }
                }
                polyline.p95 points=(line.join(" ")) {}
                @for (i, p) in points.iter().enumerate() {
                    @let (x, y) = xy(i, p.number("p95_us"));
                    @let errors = p.number("errors");
                    circle class=(if errors > 0 { "pt err" } else { "pt" }) cx=(x) cy=(y) r="2.5" {
                        title {
                            "second " (p.number("second")) ": " (p.number("requests")) " requests, "
                            (errors) " errors, p95 " (ms(p.number("p95_us")))
                        }
                    }
                }
            }
            figcaption.meta {
                "p95 latency per second of the steady phase, from each request's scheduled send time"
                @if let Some(t) = threshold.filter(|t| *t > top_us) { " (threshold " (ms(t)) ", above the chart)" }
                "; red points: seconds with errors."
            }
        }
    }
}

fn req_class(s: crate::compliance::ReqStatus) -> &'static str {
    match s {
        crate::compliance::ReqStatus::Met => "met",
        crate::compliance::ReqStatus::NotMet => "not-met",
        crate::compliance::ReqStatus::NotAssessed => "not-assessed",
    }
}

fn target_status(s: TargetStatus) -> &'static str {
    match s {
        TargetStatus::Scanned => "scanned",
        TargetStatus::Unreachable => "unreachable",
        TargetStatus::Interrupted => "interrupted",
    }
}

/// One row per finding of a failed result (the result itself when it has none).
fn finding_rows(o: &Outcome) -> Vec<(&str, &Evidence)> {
    let open: Vec<(&str, &Evidence)> = super::open_of(o)
        .map(|f| (f.message.as_str(), &f.evidence))
        .collect();
    if open.is_empty() {
        vec![(o.message.as_str(), &o.evidence)]
    } else {
        open
    }
}

fn evidence_list(e: &Evidence) -> Markup {
    html! {
        dl.evidence {
            @for (k, v) in &e.0 { dt { (k) } dd { code { (super::evidence_shown(v)) } } }
        }
    }
}

fn rule_doc(doc: &RuleDoc) -> Markup {
    html! {
        section.rule id=(rule_anchor(&doc.id)) {
            h3 { code { (doc.id) } " · " span class={ "sev sev-" (doc.severity.as_str()) } { (doc.severity.as_str()) } " · " (doc.title) }
            h4 { "What it checks" } p { (doc.description.trim()) }
            h4 { "Why it matters" } p { (doc.rationale.trim()) }
            h4 { "How to fix it" } p { (doc.remediation.trim()) }
            @if !doc.references.is_empty() || !doc.cwe.is_empty() {
                h4 { "References" }
                ul {
                    @for cwe in &doc.cwe {
                        li { a href={ "https://cwe.mitre.org/data/definitions/" (cwe) ".html" } { "CWE-" (cwe) } }
                    }
                    @for r in &doc.references { li { a href=(r) { (r) } } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_allows_exactly_the_inline_style_and_script() {
        let csp = csp();
        assert!(csp.starts_with("default-src 'none';"));
        assert_eq!(csp.matches("'sha256-").count(), 2);
        assert!(!csp.contains("unsafe"));
    }
}
