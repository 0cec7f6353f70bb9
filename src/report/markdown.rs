//! A Markdown summary for a CI job page (GitHub's job summary, a merge-request comment).
//!
//! The verdict comes first (gate, score, counts by severity, score per family), then the
//! findings grouped by severity (target, rule linked to its documentation, finding), then the
//! inconclusive results with their reasons, then the documentation of every rule shown, each
//! in a collapsed `<details>` block. The page stays under [`LIMIT`] bytes however large the
//! scan (GitHub refuses a step summary over 1 MiB): rows that do not fit are counted, and
//! the count is printed in their place.
//!
//! Everything that came from a target is escaped for Markdown and for the HTML that
//! Markdown renderers accept ([`text`]), on top of [`super::escape::sanitize`].

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::ScanReport;
use crate::catalogue;
use crate::model::{Outcome, Severity, Status};
use crate::summarise::{Verdict, fmt_score};

/// The largest page written, in bytes (GitHub's step summary limit is 1 MiB).
pub const LIMIT: usize = 1_000_000;
/// Room kept for the truncation notes and the closing lines.
const RESERVE: usize = 4_096;

/// The Markdown writer.
#[derive(Debug)]
pub struct Markdown;

impl super::Writer for Markdown {
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(render(report).as_bytes())
    }
}

/// Escape target text for Markdown (inline, in a table cell or a list item): HTML's `&`,
/// `<`, `>` as entities, the punctuation that starts inline markup (emphasis, code, links,
/// images, strikethrough, math, cell borders) with a backslash, `:` and `@` and a `www.`
/// prefix so that no autolink forms, and line breaks as spaces, so a value can neither open
/// a tag, a link or a cell, nor start a block.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev: [char; 3] = [' '; 3];
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '!' | '|' | '~' | '$' | ':' | '@' => {
                out.push('\\');
                out.push(c);
            }
            '.' if prev.iter().all(|p| p.eq_ignore_ascii_case(&'w')) => out.push_str("\\."),
            _ => out.push(c),
        }
        prev = [prev[1], prev[2], c];
    }
    out
}

/// The anchor of a rule's documentation block.
fn anchor(rule_id: &str) -> String {
    format!("rule-{}", rule_id.replace('.', "-"))
}

/// A page under a byte budget: lines that do not fit are counted instead.
struct Page {
    out: String,
    budget: usize,
}

impl Page {
    /// Append `line` if it fits; false when it did not.
    fn push(&mut self, line: &str) -> bool {
        if self.out.len() + line.len() + 1 > self.budget {
            return false;
        }
        self.out.push_str(line);
        self.out.push('\n');
        true
    }

    /// Append unconditionally (headings and notes, covered by the reserve).
    fn force(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
    }
}

/// Render the whole page.
pub fn render(report: &ScanReport) -> String {
    let mut page = Page {
        out: String::new(),
        budget: LIMIT - RESERVE,
    };
    let s = &report.summary;
    let verdict = match s.gate.verdict {
        Verdict::Passed => "✅ PASSED",
        Verdict::Failed => "❌ FAILED",
        Verdict::Undecided => "⚠️ UNDECIDED",
    };
    page.force(&format!("## secgate: gate {verdict}"));
    page.force("");
    for r in &s.gate.reasons {
        page.force(&format!("- {}", text(r)));
    }
    if !report.complete {
        page.force("- the scan was **interrupted**: this report is incomplete");
    }
    page.force("");
    page.force(
        "| score | critical | high | medium | low | info | inconclusive | passed | skipped |",
    );
    page.force("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    page.force(&format!(
        "| **{}** | {} | {} | {} | {} | {} | {} | {} | {} |",
        fmt_score(s.score),
        s.counts.critical,
        s.counts.high,
        s.counts.medium,
        s.counts.low,
        s.counts.info,
        s.results.inconclusive,
        s.results.pass,
        s.results.skipped
    ));
    if !s.family_scores.is_empty() {
        let fams: Vec<String> = s
            .family_scores
            .iter()
            .map(|(f, sc)| format!("{} {}", text(f), fmt_score(*sc)))
            .collect();
        page.force("");
        page.force(&format!(
            "Score per family: {} · policy: score ≥ {}, critical ≤ {}{} · {} target{} · secgate {}",
            fams.join(" · "),
            report.policy.min_score,
            report.policy.max_critical,
            if report.policy.profile.name == crate::profile::DEFAULT {
                String::new()
            } else {
                format!(", profile {}", text(&report.policy.profile.label()))
            },
            report.targets.len(),
            if report.targets.len() == 1 { "" } else { "s" },
            report.tool.version
        ));
    }

    let mut shown_rules: BTreeSet<&'static str> = BTreeSet::new();
    // Derived targets name the target whose port sweep found them.
    let parents: std::collections::HashMap<&str, &str> = report
        .targets
        .iter()
        .filter_map(|t| Some((t.target.as_str(), t.parent.as_deref()?)))
        .collect();
    let mut findings: Vec<&Outcome> = report.open_findings().collect();
    // The documentation of the failing rules comes last but is kept room for (up to a
    // quarter of the page), so a long list of findings cannot crowd it out.
    let failing: BTreeSet<&'static str> = findings.iter().map(|o| o.rule_id).collect();
    let docs: usize = failing.iter().map(|id| rule_block(id).len() + 1).sum();
    page.budget = LIMIT - RESERVE - docs.min(LIMIT / 4);
    findings.sort_by_key(|o| {
        (
            std::cmp::Reverse(o.severity),
            catalogue::index(o.rule_id),
            o.target.as_str(),
        )
    });
    let total: usize = findings.iter().map(|o| super::open_rows(o)).sum();
    let mut left_out = 0usize;
    if !findings.is_empty() {
        page.force("");
        page.force(&format!("### Findings ({total})"));
    }
    for sev in Severity::DESCENDING {
        let of_sev: Vec<&&Outcome> = findings.iter().filter(|o| o.severity == sev).collect();
        if of_sev.is_empty() {
            continue;
        }
        let n: usize = of_sev.iter().map(|o| super::open_rows(o)).sum();
        page.force("");
        page.force(&format!("#### {} ({n})", capitalised(sev)));
        page.force("");
        page.force("| target | rule | finding |");
        page.force("|---|---|---|");
        for o in of_sev {
            let open: Vec<String> = super::open_of(o).map(|f| text(&f.message)).collect();
            let rows: Vec<String> = if open.is_empty() {
                vec![text(&o.message)]
            } else {
                open
            };
            for row in rows {
                let line = format!(
                    "| {}{} | [`{}`](#{}) | {row} |",
                    text(&o.target),
                    parents
                        .get(o.target.as_str())
                        .map(|p| format!(" (found through {})", text(p)))
                        .unwrap_or_default(),
                    o.rule_id,
                    anchor(o.rule_id)
                );
                if page.push(&line) {
                    shown_rules.insert(o.rule_id);
                } else {
                    left_out += 1;
                }
            }
        }
    }
    if left_out > 0 {
        page.force("");
        page.force(&format!(
            "_{left_out} more finding{} not shown here (the page stays under 1 MiB); the JSON report has them all._",
            if left_out == 1 { " is" } else { "s are" }
        ));
    }

    let mut undecided: Vec<&Outcome> = report
        .results
        .iter()
        .filter(|o| o.status == Status::Inconclusive)
        .collect();
    undecided.sort_by_key(|o| (std::cmp::Reverse(o.severity), o.target.as_str()));
    if !undecided.is_empty() {
        page.force("");
        page.force(&format!("### Inconclusive ({})", undecided.len()));
        page.force("");
        page.force("| target | rule | severity | reason |");
        page.force("|---|---|---|---|");
        let mut left = 0usize;
        for o in &undecided {
            let why = o.reason.as_ref().map_or_else(
                || text(&o.message),
                |r| format!("{}: {}", r.kind.as_str(), text(&r.detail)),
            );
            let line = format!(
                "| {} | `{}` | {} | {why} |",
                text(&o.target),
                o.rule_id,
                o.severity
            );
            if !page.push(&line) {
                left += 1;
            }
        }
        if left > 0 {
            page.force("");
            page.force(&format!(
                "_{left} more inconclusive result{} not shown here; the JSON report has them all._",
                if left == 1 { " is" } else { "s are" }
            ));
        }
    }

    let runs: Vec<(&Outcome, super::LoadFigures<'_>)> = report
        .results
        .iter()
        .filter_map(|o| Some((o, super::LoadFigures::of(o)?)))
        .filter(|(_, f)| !f.phases.is_empty())
        .collect();
    if !runs.is_empty() {
        page.force("");
        page.force("### Load");
        for (o, f) in &runs {
            page.force("");
            page.force(&format!(
                "Latency of {} by phase (ms, from each request's scheduled send time):",
                text(&o.target)
            ));
            page.force("");
            let labels: Vec<&str> = super::LATENCY_COLUMNS.iter().map(|(l, _)| *l).collect();
            page.force(&format!(
                "| phase | rate/s | sent | errors | {} | errors by kind |",
                labels.join(" | ")
            ));
            page.force(&format!("|---|{}---|", "---:|".repeat(3 + labels.len())));
            for r in &f.phases {
                let lat: Vec<String> = super::LATENCY_COLUMNS
                    .iter()
                    .map(|(_, k)| super::ms(r.number(k)))
                    .collect();
                page.push(&format!(
                    "| {} | {} | {} | {} | {} | {} |",
                    text(&r.text("phase")),
                    text(&r.text("rate_per_s")),
                    r.number("sent"),
                    r.number("errors"),
                    lat.join(" | "),
                    text(&r.text("errors_by_kind"))
                ));
            }
        }
    }

    let mut chain_lines: Vec<String> = Vec::new();
    for t in &report.targets {
        let Some(chain) = &t.chain else { continue };
        for c in &chain.chained {
            chain_lines.push(format!(
                "- {} → {} ({}: {})",
                text(&t.target),
                text(&c.target),
                text(&c.service),
                c.families.join(", ")
            ));
        }
        for n in &chain.not_chained {
            chain_lines.push(format!(
                "- {} → {} {}: not chained, {}",
                text(&t.target),
                text(&n.address),
                text(&n.service),
                text(&n.reason)
            ));
        }
    }
    if !chain_lines.is_empty() {
        page.force("");
        page.force("### Discovered services");
        page.force("");
        let mut cut = 0usize;
        for line in &chain_lines {
            if !page.push(line) {
                cut += 1;
            }
        }
        if cut > 0 {
            page.force(&format!("_{cut} more are in the JSON report._"));
        }
    }

    let unreachable: Vec<String> = report
        .targets
        .iter()
        .filter(|t| t.status == crate::model::TargetStatus::Unreachable)
        .map(|t| {
            let why = t
                .error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            format!("- {}: {}", text(&t.target), text(&why))
        })
        .collect();
    if !unreachable.is_empty() {
        page.force("");
        page.force(&format!("### Unreachable targets ({})", unreachable.len()));
        page.force("");
        for line in &unreachable {
            if !page.push(line) {
                break;
            }
        }
    }

    for view in &report.compliance {
        let c = &view.counts;
        page.force("");
        page.force(&format!(
            "### Compliance: {} {} ({} met, {} not met, {} not assessed)",
            text(&view.name),
            text(&view.version),
            c.met,
            c.not_met,
            c.not_assessed
        ));
        page.force("");
        page.force("| requirement | status | rules | why |");
        page.force("|---|---|---:|---|");
        let mut left = 0usize;
        for r in &view.requirements {
            let status = match r.status {
                crate::compliance::ReqStatus::Met => "✅ met",
                crate::compliance::ReqStatus::NotMet => "❌ **not met**",
                crate::compliance::ReqStatus::NotAssessed => "➖ not assessed",
            };
            let why = match &r.caveat {
                Some(c) => format!("{} ({})", text(&r.reason), text(c)),
                None => text(&r.reason),
            };
            let line = format!(
                "| **{}** {} | {status} | {} | {why} |",
                text(&r.id),
                text(&r.title),
                r.rules.len()
            );
            if !page.push(&line) {
                left += 1;
            }
        }
        if left > 0 {
            page.force("");
            page.force(&format!(
                "_{left} more requirements are not shown here; the JSON report has them all._"
            ));
        }
        if let Some(note) = &view.note {
            page.force("");
            page.force(&format!("_{}_", text(note)));
        }
    }

    // The room kept for the documentation, less what the notes above took of the reserve.
    page.budget = LIMIT - RESERVE / 4;
    if !shown_rules.is_empty() {
        page.force("");
        page.force("### Rules");
        page.force("");
        let mut left = 0usize;
        for id in &shown_rules {
            let block = rule_block(id);
            if block.is_empty() {
                continue;
            }
            if !page.push(&block) {
                left += 1;
            }
        }
        if left > 0 {
            page.force(&format!(
                "_{left} rule description{} not shown here; `secgate explain RULE_ID` prints each._",
                if left == 1 { " is" } else { "s are" }
            ));
        }
    }
    page.out
}

/// A rule's documentation, collapsed (empty for an id the catalogue does not know).
fn rule_block(id: &str) -> String {
    let Some(doc) = catalogue::get(id) else {
        return String::new();
    };
    format!(
        "<details id=\"{}\"><summary><code>{id}</code> ({}): {}</summary>\n\n{}\n`secgate explain {id}`\n\n</details>\n",
        anchor(id),
        doc.severity,
        doc.title,
        doc.markdown()
    )
}

fn capitalised(sev: Severity) -> String {
    let s = sev.as_str();
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_and_html() {
        assert_eq!(
            text("<script>x</script> | [a](b) *c*\n# d www.e.f https://g"),
            "&lt;script&gt;x&lt;/script&gt; \\| \\[a\\](b) \\*c\\* # d www\\.e.f https\\://g"
        );
    }
}
