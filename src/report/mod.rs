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
use crate::triage::{BaselineReport, SuppressionReport, Triaged};

pub mod escape;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod terminal;

/// Major version of the JSON report layout; bumped on any breaking change.
/// Schema: `reports/schema/secgate-report.v1.schema.json`.
pub const SCHEMA_VERSION: u32 = 1;
/// Minor version: bumped on additive changes (1: `findings[]`, `subjects[]`, `requests`;
/// 2: suppressions, baseline states, the gate's new policy keys; 3: `plan_id` and `shard` in
/// shard and merged reports; 4: `compliance`; 5: the reason kind `no_service`; 6: `policy.profile`;
/// 7: `parent` and `chain` of targets, from discovery chaining).
pub const SCHEMA_MINOR: u32 = 8;

/// The tool that wrote a report.
#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    /// `secgate`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

/// Everything every writer needs: a [`Report`] whose results are in memory.
pub type ScanReport = Report<Vec<Outcome>>;

/// A report, generic over how its results are held: in memory ([`ScanReport`], what every
/// writer reads), or produced one at a time while the JSON report is written (the merge's
/// streaming writer, [`crate::merge`]). One definition, so both serialise alike.
#[derive(Clone, Debug, Serialize)]
pub struct Report<R = Vec<Outcome>> {
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
    pub results: R,
    /// Scores, counts and the gate.
    pub summary: Summary,
    /// What the suppressions did (since 1.2).
    pub suppressions: SuppressionReport,
    /// The comparison with `--baseline` (since 1.2; absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineReport>,
    /// The plan's identity ([`crate::shard::plan_id`]): in shard and merged reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// Which shard this report is, and its jobs: in shard reports only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// The compliance views asked for (`--compliance`; since 1.4, absent without one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compliance: Vec<crate::compliance::View>,
    /// In a shard report: what each slice of a sliced sweep observed, for the merge to join
    /// ([`crate::model::SliceOutput`]; absent otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<crate::model::SliceOutput>,
    /// Where each target was declared (for SARIF); not part of the JSON report.
    #[serde(skip)]
    pub origins: BTreeMap<String, Origin>,
    /// `--sarif-suppressed include`; not part of the JSON report.
    #[serde(skip)]
    pub sarif_include_suppressed: bool,
    /// The scan's engine settings as `(name, value)` for people (HTML); not part of the JSON
    /// report. Never holds a secret.
    #[serde(skip)]
    pub settings: Vec<(&'static str, String)>,
}

impl ScanReport {
    /// Assemble the report of a scan from its plan, its triaged results and their summary.
    pub fn build(plan: &ScanPlan, triaged: Triaged, summary: Summary) -> ScanReport {
        let Triaged {
            result,
            suppressions,
            baseline,
        } = triaged;
        let mut report = ScanReport::of(result, plan.policy.clone(), summary);
        report.suppressions = suppressions;
        report.baseline = baseline;
        report.sarif_include_suppressed = plan.sarif_include_suppressed;
        report.origins = plan
            .targets
            .iter()
            .filter_map(|t| t.origin.clone().map(|o| (t.id.clone(), o)))
            .collect();
        report.settings = settings(plan);
        report.compliance = crate::compliance::views(&plan.compliance, &report.results);
        report
    }

    /// The parts every report has (a scan's, a merge's): `result` judged as `summary` under
    /// `policy`, its families in the order their results come, nothing triage or the plan adds.
    pub fn of(result: crate::model::ScanResult, policy: Policy, summary: Summary) -> ScanReport {
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
            policy,
            families,
            targets: result.targets,
            results: result.outcomes,
            summary,
            suppressions: SuppressionReport::default(),
            baseline: None,
            sarif_include_suppressed: false,
            plan_id: None,
            shard: None,
            compliance: Vec::new(),
            slices: Vec::new(),
            origins: BTreeMap::new(),
            settings: Vec::new(),
        }
    }

    /// Failed results.
    pub fn findings(&self) -> impl Iterator<Item = &Outcome> {
        self.results.iter().filter(|o| o.is_finding())
    }

    /// Failed results that still count: not suppressed as a whole (the writers for people list
    /// these; suppressed ones are in the JSON and, on request, SARIF reports).
    pub fn open_findings(&self) -> impl Iterator<Item = &Outcome> {
        self.findings().filter(|o| !o.suppressed)
    }
}

/// The findings of `o` no suppression entry covers.
pub fn open_of(o: &Outcome) -> impl Iterator<Item = &crate::model::Finding> {
    o.findings.iter().filter(|f| f.suppression.is_none())
}

/// The figures of a load run as a result's evidence carries them (the load family's
/// `phase_rows`, `template_rows` and `steady_series`, each with its `*_columns`), read by
/// column name so that a report of another version shows what it has. The terminal,
/// Markdown and HTML writers draw their latency tables and chart from this.
#[derive(Debug, Default)]
pub struct LoadFigures<'a> {
    /// One row per phase that ran.
    pub phases: Vec<Row<'a>>,
    /// One row per request template of a mix.
    pub templates: Vec<Row<'a>>,
    /// One row per second of the steady phase.
    pub series: Vec<Row<'a>>,
    /// The p95 threshold, µs.
    pub threshold_p95_us: Option<i64>,
}

/// One row of a [`LoadFigures`] table: column name → value.
#[derive(Debug, Default)]
pub struct Row<'a>(BTreeMap<&'a str, &'a crate::model::Observed>);

impl Row<'_> {
    /// A number column (0 when absent).
    pub fn number(&self, column: &str) -> i64 {
        match self.0.get(column) {
            Some(crate::model::Observed::Number(n)) => *n,
            _ => 0,
        }
    }

    /// A column as text (empty when absent).
    pub fn text(&self, column: &str) -> String {
        self.0.get(column).map(|v| v.display()).unwrap_or_default()
    }
}

/// The latency columns of a phase row, with their labels.
pub const LATENCY_COLUMNS: [(&str, &str); 6] = [
    ("p50", "p50_us"),
    ("p90", "p90_us"),
    ("p95", "p95_us"),
    ("p99", "p99_us"),
    ("p99.9", "p99.9_us"),
    ("max", "max_us"),
];

impl<'a> LoadFigures<'a> {
    /// The figures `o` carries, if any.
    pub fn of(o: &'a Outcome) -> Option<LoadFigures<'a>> {
        use crate::model::Observed;
        let get = |key: &str| o.evidence.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
        let table = |columns: &str, rows: &str| -> Vec<Row<'a>> {
            let (Some(Observed::List(cols)), Some(Observed::List(rows))) =
                (get(columns), get(rows))
            else {
                return Vec::new();
            };
            let names: Vec<&'a str> = cols
                .iter()
                .map(|c| match c {
                    Observed::Text(t) => t.as_str(),
                    _ => "",
                })
                .collect();
            rows.iter()
                .filter_map(|r| match r {
                    Observed::List(cells) => Some(Row(names.iter().copied().zip(cells).collect())),
                    _ => None,
                })
                .collect()
        };
        let figures = LoadFigures {
            phases: table("phase_columns", "phase_rows"),
            templates: table("template_columns", "template_rows"),
            series: table("steady_series_columns", "steady_series"),
            threshold_p95_us: match get("threshold_p95_us") {
                Some(Observed::Number(n)) => Some(*n),
                _ => None,
            },
        };
        (!figures.phases.is_empty() || !figures.series.is_empty()).then_some(figures)
    }
}

/// Milliseconds from microseconds for the latency tables: `0.41`, `12.3`, `1003`.
pub fn ms(us: i64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "latencies are at most 60 s")]
    let v = us as f64 / 1000.0;
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Items of an evidence list shown in the terminal, HTML and JUnit reports; a longer list (a
/// load run's per-second series) is cut there, and the JSON report has all of it.
pub const EVIDENCE_ITEMS_SHOWN: usize = 12;

/// An evidence value as the human-facing reports show it: [`crate::model::Observed::display`],
/// with a list longer than [`EVIDENCE_ITEMS_SHOWN`] cut and counted.
pub fn evidence_shown(v: &crate::model::Observed) -> String {
    match v {
        crate::model::Observed::List(items) if items.len() > EVIDENCE_ITEMS_SHOWN => {
            let head: Vec<String> = items
                .iter()
                .take(EVIDENCE_ITEMS_SHOWN)
                .map(crate::model::Observed::display)
                .collect();
            format!(
                "{}, … ({} in all; the JSON report has every one)",
                head.join(", "),
                items.len()
            )
        }
        other => other.display(),
    }
}

/// How many rows a failed result makes in a list of findings: its open findings, or one for
/// the result itself when it has none.
pub fn open_rows(o: &Outcome) -> usize {
    open_of(o).count().max(1)
}

impl<R> Report<R> {
    /// The same report with other results (every other field moved as is).
    pub fn with_results<T>(self, results: T) -> Report<T> {
        Report {
            schema_version: self.schema_version,
            schema_minor: self.schema_minor,
            tool: self.tool,
            started_at: self.started_at,
            finished_at: self.finished_at,
            duration_ms: self.duration_ms,
            complete: self.complete,
            policy: self.policy,
            families: self.families,
            targets: self.targets,
            results,
            summary: self.summary,
            suppressions: self.suppressions,
            baseline: self.baseline,
            plan_id: self.plan_id,
            shard: self.shard,
            compliance: self.compliance,
            slices: self.slices,
            origins: self.origins,
            sarif_include_suppressed: self.sarif_include_suppressed,
            settings: self.settings,
        }
    }
}

/// The engine settings a reader needs to judge a report (no secrets, no option values that
/// a family keeps to itself).
fn settings(plan: &ScanPlan) -> Vec<(&'static str, String)> {
    let s = &plan.settings;
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".into());
    let mut out = vec![
        ("policy profile", s.profile.label()),
        ("timeout", format!("{}s", s.timeout.as_secs_f64())),
        ("concurrency", s.concurrency.to_string()),
        ("per host", s.per_host.to_string()),
        ("max redirects", s.max_redirects.to_string()),
        (
            "certificate verification (HTTP)",
            if s.insecure { "off (--insecure)" } else { "on" }.into(),
        ),
        ("extra trust anchors", s.ca_certs.len().to_string()),
        (
            "max requests per second",
            or_none(s.max_rps.map(|r| r.to_string())),
        ),
        (
            "max requests per target",
            or_none(s.max_requests.map(|r| r.to_string())),
        ),
        (
            "DNS server",
            s.dns_server
                .map_or_else(|| "the system's resolver".into(), |a| a.to_string()),
        ),
    ];
    if !s.resolve.is_empty() {
        let entries: Vec<String> = s
            .resolve
            .iter()
            .map(|r| {
                let addrs: Vec<String> = r.addrs.iter().map(ToString::to_string).collect();
                format!("{}:{}:{}", r.host, r.port, addrs.join(","))
            })
            .collect();
        out.push(("resolve", entries.join(" ")));
    }
    if let Some(p) = &plan.config_path {
        out.push(("config file", p.display().to_string()));
    }
    out
}

/// The two closing lines every human report shares: the score with counts, and the verdict
/// with its reasons (what `--json -` also prints on standard error).
pub fn summary_lines(report: &ScanReport) -> (String, String) {
    use crate::model::Severity;
    use crate::summarise::{Verdict, fmt_score};
    let s = &report.summary;
    let counts: Vec<String> = Severity::DESCENDING
        .iter()
        .map(|sev| format!("{} {sev}", s.counts.get(*sev)))
        .collect();
    let score = format!(
        "Score {} · findings: {} · {} inconclusive · {} passed",
        fmt_score(s.score),
        counts.join(", "),
        s.results.inconclusive,
        s.results.pass
    );
    let verdict = match s.gate.verdict {
        Verdict::Passed => "PASSED",
        Verdict::Failed => "FAILED",
        Verdict::Undecided => "UNDECIDED",
    };
    (
        score,
        format!("Gate {verdict}: {}", s.gate.reasons.join("; ")),
    )
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
    /// JUnit XML for CI test reporters.
    Junit,
    /// A Markdown summary for a CI job page.
    Markdown,
    /// One self-contained HTML page.
    Html,
}

impl ReportFormat {
    /// Every format, in `--help` order.
    pub const ALL: &'static [ReportFormat] = &[
        ReportFormat::Json,
        ReportFormat::Sarif,
        ReportFormat::Junit,
        ReportFormat::Markdown,
        ReportFormat::Html,
    ];

    /// The name in `--report NAME=PATH`.
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Sarif => "sarif",
            ReportFormat::Junit => "junit",
            ReportFormat::Markdown => "markdown",
            ReportFormat::Html => "html",
        }
    }

    /// The writer of this format: the one registry of writers.
    pub fn writer(self) -> &'static dyn Writer {
        match self {
            ReportFormat::Json => &json::Json,
            ReportFormat::Sarif => &sarif::Sarif,
            ReportFormat::Junit => &junit::Junit,
            ReportFormat::Markdown => &markdown::Markdown,
            ReportFormat::Html => &html::Html,
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

/// Write `report` to the file at `path` in `format`, never touching any other file:
///
/// - a path that exists and is not a regular file (a character device such as `/dev/null`, a
///   FIFO, a socket) is written in place, never replaced;
/// - a regular file or a new path is written atomically: into a temp file created exclusively
///   (`O_EXCL`, a random name, in the same directory, so a link planted there cannot redirect
///   it) and renamed over the path. A symlink the user named is followed to its file, which is
///   replaced and keeps its permissions; a new file gets the temp file's (owner only).
pub fn write_file(
    format: ReportFormat,
    report: &ScanReport,
    path: &std::path::Path,
) -> io::Result<()> {
    write_file_with(path, &mut |out| write(format, report, out))
}

/// [`write_file`] with any writer: `body` writes the whole file to `out` (the same rules: a
/// device is written in place, anything else atomically, and nothing is left behind when
/// `body` fails).
pub fn write_file_with(
    path: &std::path::Path,
    body: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        )),
        Ok(meta) if !meta.is_file() => {
            let mut f = io::BufWriter::new(std::fs::OpenOptions::new().write(true).open(path)?);
            body(&mut f)?;
            f.flush()
        }
        found => {
            // Replace the file a symlink names, not the symlink.
            let (target, keep) = match found {
                Ok(meta) => (std::fs::canonicalize(path)?, Some(meta.permissions())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => (path.to_path_buf(), None),
                Err(e) => return Err(e),
            };
            let dir = target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut tmp = tempfile::Builder::new()
                .prefix(&format!(".{name}."))
                .suffix(".tmp")
                .tempfile_in(dir)?;
            {
                let mut f = io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
                body(&mut f)?;
                f.flush()?;
            }
            if let Some(perms) = keep {
                tmp.as_file().set_permissions(perms)?;
            }
            tmp.persist(&target).map(drop).map_err(|e| e.error)
        }
    }
}
