//! Stage 7, render: one [`ScanReport`] assembled from the plan, the triaged results and the
//! summary, then written by one writer per format ([`ReportFormat`], the one registry of
//! writers; `--report FORMAT=PATH`, with `--json` and `--sarif` as aliases).
//!
//! Writers only read the report. Before any of them sees it, [`escape::sanitize`] escapes
//! every string that came from a target (control characters, ANSI escapes, bidi overrides),
//! so a hostile banner cannot move the cursor or recolour a terminal, nor reorder text in a
//! viewer; the JSON and SARIF writers then escape through serde.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::model::{Outcome, TargetResult};
use crate::plan::ScanPlan;
use crate::policy::Policy;
use crate::summarise::Summary;
use crate::target::Origin;
use crate::triage::Triaged;

pub mod escape;
pub mod json;
pub mod sarif;
pub mod terminal;

/// Major version of the JSON report layout; bumped on any breaking change.
/// Schema: `reports/schema/secgate-report.v1.schema.json`.
pub const SCHEMA_VERSION: u32 = 1;
/// Minor version: bumped on additive changes (1: `findings[]`, `subjects[]`, `requests`;
/// 2: `plan_id` and `shard` in shard and merged reports).
pub const SCHEMA_MINOR: u32 = 2;

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
    /// [`SCHEMA_MINOR`] (absent in reports of version 1.0).
    pub schema_minor: u32,
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
    /// The plan's identity ([`crate::shard::plan_id`]): in shard and merged reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// Which shard this report is, and its jobs: in shard reports only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// Where each target was declared (for SARIF); not part of the JSON report.
    #[serde(skip)]
    pub origins: BTreeMap<String, Origin>,
}

impl ScanReport {
    /// Assemble the report of a scan from its plan, its triaged results and their summary.
    pub fn build(plan: &ScanPlan, triaged: Triaged, summary: Summary) -> ScanReport {
        let result = triaged.result;
        let mut families: Vec<&'static str> = Vec::new();
        for o in &result.outcomes {
            if !families.contains(&o.family) {
                families.push(o.family);
            }
        }
        let duration = result.finished_at - result.started_at;
        ScanReport {
            schema_version: SCHEMA_VERSION,
            schema_minor: SCHEMA_MINOR,
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
            plan_id: None,
            shard: None,
            origins: plan
                .targets
                .iter()
                .filter_map(|t| t.origin.clone().map(|o| (t.id.clone(), o)))
                .collect(),
        }
    }

    /// Failed results.
    pub fn findings(&self) -> impl Iterator<Item = &Outcome> {
        self.results.iter().filter(|o| o.is_finding())
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A report writer: the whole report in, one format out.
pub trait Writer: Sync {
    /// Write `report`.
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> io::Result<()>;
}

/// The report formats written to files (`--report FORMAT=PATH`). The terminal report is
/// written to standard output unless a report goes there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportFormat {
    /// The versioned JSON report.
    Json,
    /// SARIF 2.1.0 for GitHub code scanning.
    Sarif,
}

impl ReportFormat {
    /// Every format, in `--help` order.
    pub const ALL: &'static [ReportFormat] = &[ReportFormat::Json, ReportFormat::Sarif];

    /// The name in `--report NAME=PATH`.
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Sarif => "sarif",
        }
    }

    /// The writer of this format: the one registry of writers.
    pub fn writer(self) -> &'static dyn Writer {
        match self {
            ReportFormat::Json => &json::Json,
            ReportFormat::Sarif => &sarif::Sarif,
        }
    }

    /// Parse a format name.
    pub fn parse(name: &str) -> Result<ReportFormat, String> {
        ReportFormat::ALL
            .iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = ReportFormat::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown report format '{name}' (available: {})",
                    names.join(", ")
                )
            })
    }
}

/// Write `report` in `format`.
pub fn write(format: ReportFormat, report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    format.writer().write(report, out)
}

/// Write `report` to a file in `format` (atomically: a temp file renamed into place).
pub fn write_file(
    format: ReportFormat,
    report: &ScanReport,
    path: &std::path::Path,
) -> io::Result<()> {
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
