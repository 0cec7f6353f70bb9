//! SARIF 2.1.0 for GitHub code scanning.
//!
//! - `tool.driver.rules`: every stable catalogue rule, with short and full descriptions, text and
//!   Markdown help, a default level, and `properties.tags` / `precision` /
//!   `security-severity` (from [`Severity::security_severity`]); the tags include the CWE
//!   numbers and the compliance requirements the rule evidences (`PCI-DSS-4.0.1:4.2.1`).
//! - `results`: one per finding (a failed result has one per failed subject: each open port,
//!   each weak endpoint), with `ruleId`, `ruleIndex`, `level` (from
//!   [`Severity::sarif_level`]), the finding's message, its own `partialFingerprints`, the
//!   subject in `properties`, and one location. When the
//!   target was declared in a config file, the location is that file (relative to
//!   `%SRCROOT%`, the directory secgate ran in) and line, so alerts land on the line of the
//!   repository that owns the service; the target itself is a logical location. Otherwise the
//!   location is the target URL.
//! - Suppressed findings are left out unless `--sarif-suppressed include`, which gives every
//!   result `suppressions` (§3.27.23: all or none; `kind: external`, `status: accepted`, the
//!   entry's reason as `justification`). With `--baseline`, every result has `baselineState`.
//!   `runs[0].properties.suppressions` lists expired, expiring-soon and stale entries.
//! - `invocations[0].executionSuccessful` is false when the scan was interrupted or a target
//!   was unreachable, with one notification per unreachable target.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde_sarif::sarif;

use super::ScanReport;
use crate::catalogue::{self, Lifecycle, RuleDoc};
use crate::model::{Finding, Outcome, TargetStatus};
use crate::target::Origin;

/// The `$schema` written into reports.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// Key of secgate's fingerprint in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "secgate/v1";
const INFORMATION_URI: &str = "https://github.com/secgate/secgate";

/// The SARIF writer.
#[derive(Debug)]
pub struct Sarif;

impl super::Writer for Sarif {
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
        // A concrete buffer in front of `out`: serde writes token by token, and through
        // `dyn Write` each token was a call of its own.
        let mut out = io::BufWriter::with_capacity(1 << 16, out);
        serde_json::to_writer_pretty(&mut out, &log(report))?;
        writeln!(out)?;
        out.flush()
    }
}

/// Build the SARIF log for a report.
pub fn log(report: &ScanReport) -> sarif::Sarif {
    let rules: Vec<&RuleDoc> = catalogue::all()
        .iter()
        .filter(|r| r.status == Lifecycle::Stable)
        .collect();
    // GitHub code scanning ignores `suppressions`: suppressed findings are left out unless
    // `--sarif-suppressed include` asks for them.
    let include = report.sarif_include_suppressed;
    let kept = |f: &&Finding| include || f.suppression.is_none();
    let mark_suppressions = report.findings().any(|o| {
        o.findings
            .iter()
            .filter(kept)
            .any(|f| f.suppression.is_some())
    });
    let with_baseline = report.baseline.is_some();
    // A profile may give a rule another severity than the catalogue's: its descriptor says
    // what the results were judged with (GitHub reads `security-severity` from the rule).
    let severities: BTreeMap<&str, crate::model::Severity> = report
        .results
        .iter()
        .map(|o| (o.rule_id, o.severity))
        .collect();
    // A derived target is located where its parent was declared, and names its parent.
    let parents: BTreeMap<&str, &str> = report
        .targets
        .iter()
        .filter_map(|t| Some((t.target.as_str(), t.parent.as_deref()?)))
        .collect();
    let results: Vec<sarif::Result> = report
        .findings()
        .flat_map(|o| {
            let parent = parents.get(o.target.as_str()).copied();
            let origin = report
                .origins
                .get(&o.target)
                .or_else(|| parent.and_then(|p| report.origins.get(p)));
            let rules = &rules;
            o.findings.iter().filter(kept).map(move |f| {
                let mut r = result(o, f, rules, origin, parent);
                // §3.27.23: when one result carries `suppressions`, every result does.
                if mark_suppressions {
                    r.suppressions = Some(
                        f.suppression
                            .iter()
                            .map(|s| {
                                sarif::Suppression::builder()
                                    .kind(serde_json::json!("external"))
                                    .status(serde_json::json!("accepted"))
                                    .justification(s.reason.clone())
                                    .build()
                            })
                            .collect(),
                    );
                }
                // §3.27.24: all results or none carry `baselineState`.
                if with_baseline {
                    r.baseline_state = Some(serde_json::json!(
                        f.baseline_state.map_or("new", |s| s.as_str())
                    ));
                }
                r
            })
        })
        .collect();
    // A derived target's findings are located at its parent's line (as above).
    let uses_srcroot = report.findings().any(|o| {
        report.origins.contains_key(&o.target)
            || parents
                .get(o.target.as_str())
                .is_some_and(|p| report.origins.contains_key(*p))
    });

    let driver = sarif::ToolComponent::builder()
        .name("secgate")
        .full_name(format!("secgate {}", env!("CARGO_PKG_VERSION")))
        .version(env!("CARGO_PKG_VERSION"))
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .information_uri(INFORMATION_URI)
        .rules(
            rules
                .iter()
                .map(|r| descriptor(r, severities.get(r.id.as_str()).copied()))
                .collect::<Vec<_>>(),
        )
        .build();

    let notifications: Vec<sarif::Notification> = report
        .targets
        .iter()
        .filter(|t| t.status == TargetStatus::Unreachable)
        .map(|t| {
            let why = t
                .error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            sarif::Notification::builder()
                .level("error")
                .message(text(format!("Target {} was unreachable: {why}.", t.target)))
                .build()
        })
        .collect();
    let unreachable = !notifications.is_empty();
    let mut invocation = sarif::Invocation::builder()
        .execution_successful(report.complete && !unreachable)
        .start_time_utc(report.started_at.clone())
        .end_time_utc(report.finished_at.clone())
        .build();
    if !notifications.is_empty() {
        invocation.tool_execution_notifications = Some(notifications);
    }

    let mut run = sarif::Run::builder()
        .tool(sarif::Tool::builder().driver(driver).build())
        .invocations(vec![invocation])
        .results(results)
        .properties(
            sarif::PropertyBag::builder()
                .additional_properties(run_properties(report))
                .build(),
        )
        .build();
    if uses_srcroot {
        run.original_uri_base_ids = Some(BTreeMap::from([(
            "%SRCROOT%".to_string(),
            sarif::ArtifactLocation::builder()
                .description(text(
                    "The directory secgate ran in (the repository root in CI).",
                ))
                .build(),
        )]));
    }
    sarif::Sarif::builder()
        .schema(SCHEMA_URI)
        .version(serde_json::json!("2.1.0"))
        .runs(vec![run])
        .build()
}

/// The run's property bag: score, gate, completeness, what the suppressions did (expired,
/// expiring-soon and stale entries with their `FILE:LINE`), and the baseline's counts.
fn run_properties(report: &ScanReport) -> BTreeMap<String, serde_json::Value> {
    let mut props = BTreeMap::from([
        ("score".to_string(), serde_json::json!(report.summary.score)),
        ("gate".to_string(), serde_json::json!(report.summary.gate)),
        ("complete".to_string(), serde_json::json!(report.complete)),
        (
            "profile".to_string(),
            serde_json::json!(report.policy.profile),
        ),
    ]);
    if report.suppressions.file.is_some() {
        props.insert(
            "suppressions".to_string(),
            serde_json::json!(report.suppressions),
        );
    }
    if let Some(b) = &report.baseline {
        props.insert(
            "baseline".to_string(),
            serde_json::json!({"file": b.file, "counts": b.counts}),
        );
    }
    props
}

fn text(s: impl Into<String>) -> sarif::Message {
    sarif::Message::builder().text(s.into()).build()
}

fn multiformat(text: &str, markdown: Option<String>) -> sarif::MultiformatMessageString {
    let mut m = sarif::MultiformatMessageString::builder()
        .text(text.trim())
        .build();
    m.markdown = markdown;
    m
}

/// `headers.hsts.missing` → `HeadersHstsMissing` (SARIF `name` is PascalCase by convention).
fn pascal_case(id: &str) -> String {
    id.split(['.', '_', '-'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn descriptor(
    rule: &RuleDoc,
    severity: Option<crate::model::Severity>,
) -> sarif::ReportingDescriptor {
    let severity = severity.unwrap_or(rule.severity);
    let mut tags = vec!["security".to_string(), rule.family.clone()];
    tags.extend(rule.tags.iter().cloned());
    tags.extend(rule.cwe.iter().map(|c| format!("external/cwe/cwe-{c}")));
    // The requirements the rule evidences, in every framework, whether or not the scan asked
    // for a compliance view: they are facts about the rule, like its CWE numbers, so an
    // alert can be filtered by `PCI-DSS-4.0.1:4.2.1` whichever flags produced it.
    tags.extend(crate::compliance::tags_of(&rule.id));
    // SARIF requires unique tags; a family name may also be one of the rule's own tags.
    let mut seen = std::collections::HashSet::new();
    tags.retain(|t| seen.insert(t.clone()));
    let mut props = BTreeMap::from([("precision".to_string(), serde_json::json!("high"))]);
    if let Some(score) = severity.security_severity() {
        props.insert("security-severity".to_string(), serde_json::json!(score));
    }
    sarif::ReportingDescriptor::builder()
        .id(rule.id.clone())
        .name(pascal_case(&rule.id))
        .short_description(multiformat(&rule.title, None))
        .full_description(multiformat(&rule.description, None))
        .help(multiformat(
            &format!(
                "{}\n\nHow to fix it: {}",
                rule.rationale.trim(),
                rule.remediation.trim()
            ),
            Some(rule.markdown()),
        ))
        .default_configuration(
            sarif::ReportingConfiguration::builder()
                .level(serde_json::json!(severity.sarif_level()))
                .build(),
        )
        .properties(
            sarif::PropertyBag::builder()
                .tags(tags)
                .additional_properties(props)
                .build(),
        )
        .build()
}

fn result(
    o: &Outcome,
    f: &Finding,
    rules: &[&RuleDoc],
    origin: Option<&Origin>,
    parent: Option<&str>,
) -> sarif::Result {
    let location = match origin {
        Some(origin) => sarif::Location::builder()
            .physical_location(
                sarif::PhysicalLocation::builder()
                    .artifact_location(artifact_for_file(&origin.file))
                    .region(
                        sarif::Region::builder()
                            .start_line(i64::try_from(origin.line).unwrap_or(1))
                            .build(),
                    )
                    .build(),
            )
            .logical_locations(vec![
                sarif::LogicalLocation::builder()
                    .fully_qualified_name(o.target.clone())
                    .kind("resource")
                    .build(),
            ])
            .build(),
        // No repository file declares this target: the URL is the location. GitHub code
        // scanning shows only file locations, so declare targets in a config file to see these
        // results there (README, "Reports").
        None => sarif::Location::builder()
            .physical_location(
                sarif::PhysicalLocation::builder()
                    .artifact_location(
                        sarif::ArtifactLocation::builder()
                            .uri(target_uri(&o.target))
                            .build(),
                    )
                    .build(),
            )
            .logical_locations(vec![
                sarif::LogicalLocation::builder()
                    .fully_qualified_name(o.target.clone())
                    .kind("resource")
                    .build(),
            ])
            .build(),
    };
    let mut builder_result = sarif::Result::builder()
        .rule_id(o.rule_id)
        .level(sarif_level(o))
        .message(text(format!(
            "{} ({}{}): {}.",
            o.title,
            o.target,
            parent
                .map(|p| format!(", found through {p}"))
                .unwrap_or_default(),
            f.message.trim_end_matches('.')
        )))
        .locations(vec![location])
        .partial_fingerprints(BTreeMap::from([(
            FINGERPRINT_KEY.to_string(),
            f.fingerprint.clone(),
        )]))
        .build();
    let mut props = BTreeMap::new();
    if !f.subject.is_target() {
        props.insert("subject".to_string(), serde_json::json!(f.subject));
    }
    if let Some(p) = parent {
        props.insert("parent".to_string(), serde_json::json!(p));
    }
    if !props.is_empty() {
        builder_result.properties = Some(
            sarif::PropertyBag::builder()
                .additional_properties(props)
                .build(),
        );
    }
    builder_result.rule_index = rules
        .iter()
        .position(|r| r.id == o.rule_id)
        .and_then(|i| i64::try_from(i).ok());
    builder_result
}

fn sarif_level(o: &Outcome) -> sarif::ResultLevel {
    match o.severity.sarif_level() {
        "error" => sarif::ResultLevel::Error,
        "warning" => sarif::ResultLevel::Warning,
        _ => sarif::ResultLevel::Note,
    }
}

/// A config file as a repository-relative URI when it lies under the working directory.
fn artifact_for_file(file: &Path) -> sarif::ArtifactLocation {
    let cwd = std::env::current_dir().ok();
    let absolute = if file.is_absolute() {
        file.to_path_buf()
    } else {
        cwd.as_deref()
            .map_or_else(|| file.to_path_buf(), |c| c.join(file))
    };
    let relative = cwd
        .as_deref()
        .and_then(|c| absolute.strip_prefix(c).ok())
        .map(|p| p.to_path_buf());
    match relative {
        Some(rel) => sarif::ArtifactLocation::builder()
            .uri(path_uri(&rel))
            .uri_base_id("%SRCROOT%")
            .build(),
        None => sarif::ArtifactLocation::builder()
            .uri(format!("file://{}", path_uri(&absolute)))
            .build(),
    }
}

/// Percent-encode a path for a URI (keeps `/` and unreserved characters).
fn path_uri(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    let s = s.strip_prefix("./").unwrap_or(&s);
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A target id as an absolute URI: URLs as they are, hosts and ranges as `tcp://host[:port]`
/// (a network-path reference such as `//host` is relative, which SARIF validators reject).
fn target_uri(target: &str) -> String {
    if target.contains("://") {
        return target.to_string();
    }
    // A bare IPv6 literal or range needs brackets to be a URI authority.
    let (host, rest) = target.split_once('/').map_or((target, ""), |(h, p)| (h, p));
    match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) if rest.is_empty() => format!("tcp://[{v6}]"),
        Ok(v6) => format!("tcp://[{v6}]/{rest}"),
        Err(_) => format!("tcp://{target}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris() {
        assert_eq!(
            pascal_case("headers.cors.reflect_credentials"),
            "HeadersCorsReflectCredentials"
        );
        assert_eq!(
            path_uri(Path::new("./deploy/sec gate.toml")),
            "deploy/sec%20gate.toml"
        );
        assert_eq!(target_uri("db.test:5432"), "tcp://db.test:5432");
        assert_eq!(target_uri("::1"), "tcp://[::1]");
        assert_eq!(target_uri("fd00::/120"), "tcp://[fd00::]/120");
        assert_eq!(target_uri("10.0.0.0/24"), "tcp://10.0.0.0/24");
        assert_eq!(target_uri("https://a.test/"), "https://a.test/");
    }
}
