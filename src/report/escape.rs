//! The one escaping step for what a target sent, before any writer sees it.
//!
//! Targets control header values, banners, certificate names, DNS records and error texts.
//! [`sanitize`] rewrites every such string of a report with [`crate::model::escape_unsafe`]:
//! control characters (so ANSI escapes cannot move the cursor or recolour a terminal), and the
//! bidirectional and invisible formatting characters that reorder or hide text. Format-
//! specific escaping (JSON by serde, XML, HTML, Markdown) then happens in each writer.

use crate::model::{Evidence, Observed, Outcome, Reason, escape_unsafe};

use super::ScanReport;

fn text(s: &mut String) {
    if let std::borrow::Cow::Owned(clean) = escape_unsafe(s) {
        *s = clean;
    }
}

fn observed(v: &mut Observed) {
    match v {
        Observed::Text(t) => text(t),
        Observed::List(items) => items.iter_mut().for_each(observed),
        Observed::Bytes(_) | Observed::Number(_) | Observed::Bool(_) => {}
    }
}

fn evidence(e: &mut Evidence) {
    for (_, v) in &mut e.0 {
        observed(v);
    }
}

fn reason(r: &mut Option<Reason>) {
    if let Some(r) = r {
        text(&mut r.detail);
    }
}

/// Results from which [`sanitize`] spreads the work over threads.
const PARALLEL_FROM: usize = 4096;

/// Escape every target-controlled string of `report` in place.
pub fn sanitize(report: &mut ScanReport) {
    for t in &mut report.targets {
        text(&mut t.target);
        reason(&mut t.error);
        if let Some(chain) = &mut t.chain {
            for c in &mut chain.chained {
                text(&mut c.service);
            }
            for n in &mut chain.not_chained {
                text(&mut n.service);
                text(&mut n.reason);
            }
        }
    }
    // Results are most of a large report: escaped on several threads (each is independent).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads > 1 && report.results.len() >= PARALLEL_FROM {
        let per = report.results.len().div_ceil(threads);
        // Each chunk behind a lock, so that one no thread can be had for is escaped here.
        let chunks: Vec<std::sync::Mutex<&mut [Outcome]>> = report
            .results
            .chunks_mut(per)
            .map(std::sync::Mutex::new)
            .collect();
        std::thread::scope(|scope| {
            for chunk in &chunks {
                let work = || {
                    if let Ok(mut c) = chunk.lock() {
                        c.iter_mut().for_each(outcome);
                    }
                };
                if std::thread::Builder::new()
                    .spawn_scoped(scope, work)
                    .is_err()
                {
                    work();
                }
            }
        });
    } else {
        report.results.iter_mut().for_each(outcome);
    }
    for r in &mut report.summary.gate.reasons {
        text(r);
    }
    // A baseline file is a report that anyone could have edited.
    if let Some(b) = &mut report.baseline {
        for i in b.fixed.iter_mut().chain(b.absent.iter_mut()) {
            text(&mut i.target);
            text(&mut i.rule_id);
            text(&mut i.subject);
            text(&mut i.message);
        }
        text(&mut b.file);
    }
    // The suppressions file is the user's, but its text reaches terminals too.
    let s = &mut report.suppressions;
    if let Some(f) = &mut s.file {
        text(f);
    }
    for e in s
        .expired
        .iter_mut()
        .chain(s.expiring_soon.iter_mut())
        .chain(s.stale.iter_mut())
    {
        text(&mut e.rule);
        text(&mut e.target);
        text(&mut e.reason);
        text(&mut e.source);
        if let Some(o) = &mut e.owner {
            text(o);
        }
        if let Some(x) = &mut e.subject {
            text(x);
        }
    }
}

/// Escape every target-controlled string of one result (what [`sanitize`] does to each; the
/// merge's streaming writer calls it on each result as it goes out).
pub fn outcome(o: &mut Outcome) {
    text(&mut o.target);
    text(&mut o.message);
    evidence(&mut o.evidence);
    reason(&mut o.reason);
    for f in &mut o.findings {
        text(&mut f.message);
        text(&mut f.subject.key);
        evidence(&mut f.evidence);
    }
    for c in &mut o.subjects {
        text(&mut c.message);
        text(&mut c.subject.key);
        reason(&mut c.reason);
    }
    // Suppression entries are the user's (or a shard's), but their text reaches terminals too.
    let sups = o
        .findings
        .iter_mut()
        .filter_map(|f| f.suppression.as_mut())
        .chain(o.suppression.as_mut());
    for sup in sups {
        text(&mut sup.reason);
        text(&mut sup.source);
        if let Some(owner) = &mut sup.owner {
            text(owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_nested_evidence() {
        let mut e = Evidence::none()
            .text("banner", "a\u{1b}[2Jb")
            .with("list", Observed::texts(["x\u{202e}y"]));
        evidence(&mut e);
        assert_eq!(e.0[0].1, Observed::Text("a\\u{1b}[2Jb".into()));
        assert_eq!(
            e.0[1].1,
            Observed::List(vec![Observed::Text("x\\u{202e}y".into())])
        );
    }
}
