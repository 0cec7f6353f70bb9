//! Reports: one [`ScanReport`] built from a finished (or interrupted) scan, and one writer per
//! format, chosen by one `match` in [`write`].
//!
//! Writers only read the report. Text that comes from targets (header values, banners, URLs)
//! is already bounded and stripped of control characters when the outcome is built
//! ([`crate::model::one_line`], [`crate::model::Observed`]); the JSON and SARIF writers escape
//! through serde, and the terminal writer prints it verbatim.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::engine::{ScanPlan, ScanResult, TargetResult};
use crate::model::Outcome;
use crate::policy::{self, Policy, Summary};
use crate::target::Origin;

pub mod json;
pub mod sarif;
pub mod terminal;

/// Version of the JSON report layout; bumped on any breaking change.
/// Schema: `reports/schema/secgate-report.v1.schema.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// The tool that wrote a report.
#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    /// `secgate`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

/// Everything every writer needs.
#[derive(Clone, Debug, Serialize)]
pub struct ScanReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Who wrote it.
    pub tool: Tool,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// False when the scan was interrupted.
    pub complete: bool,
    /// Thresholds the gate applied.
    pub policy: Policy,
    /// Families that ran.
    pub families: Vec<&'static str>,
    /// One entry per target.
    pub targets: Vec<TargetResult>,
    /// One entry per (rule, target) evaluated.
    pub results: Vec<Outcome>,
    /// Scores, counts and the gate.
    pub summary: Summary,
    /// Where each target was declared (for SARIF); not part of the JSON report.
    #[serde(skip)]
    pub origins: BTreeMap<String, Origin>,
}

impl ScanReport {
    /// Score and gate a scan result.
    pub fn new(plan: &ScanPlan, result: ScanResult) -> ScanReport {
        let summary = policy::summarise(
            &result.outcomes,
            &result.targets,
            result.complete,
            &plan.policy,
        );
        let mut families: Vec<&'static str> = Vec::new();
        for o in &result.outcomes {
            if !families.contains(&o.family) {
                families.push(o.family);
            }
        }
        let duration = result.finished_at - result.started_at;
        ScanReport {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "secgate",
                version: env!("CARGO_PKG_VERSION"),
            },
            started_at: rfc3339(result.started_at),
            finished_at: rfc3339(result.finished_at),
            duration_ms: u64::try_from(duration.whole_milliseconds()).unwrap_or(0),
            complete: result.complete,
            policy: plan.policy.clone(),
            families,
            targets: result.targets,
            results: result.outcomes,
            summary,
            origins: plan
                .targets
                .iter()
                .filter_map(|t| t.origin.clone().map(|o| (t.id.clone(), o)))
                .collect(),
        }
    }

    /// Findings (failed results).
    pub fn findings(&self) -> impl Iterator<Item = &Outcome> {
        self.results.iter().filter(|o| o.is_finding())
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Human-readable, grouped by target.
    Terminal(terminal::Options),
    /// The versioned JSON report.
    Json,
    /// SARIF 2.1.0 for GitHub code scanning.
    Sarif,
}

/// Write `report` in `format`.
pub fn write(format: Format, report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Terminal(opts) => terminal::write(report, out, opts),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, out),
    }
}

/// Write `report` to a file in `format` (atomically: a temp file renamed into place).
pub fn write_file(format: Format, report: &ScanReport, path: &std::path::Path) -> io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    {
        let mut f = io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(format, report, &mut f)?;
        f.flush()?;
    }
    std::fs::rename(&tmp, path)
}
