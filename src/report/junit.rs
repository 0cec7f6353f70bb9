//! JUnit XML for CI test reporters (GitLab `artifacts:reports:junit`, GitHub test-report
//! actions), built with `quick-junit` (as ruff does) rather than string templates: the crate
//! escapes attribute values and text nodes, and drops characters XML 1.0 cannot carry.
//!
//! - one `testsuite` per target (`name` = the target id; properties: `address`, `status`, and
//!   for an unreachable target `error`, also in `system-err`);
//! - one `testcase` per evaluated result: `classname` = family, `name` = rule id (one result
//!   per rule and target, so names are unique within a suite, which GitLab needs);
//! - a fail is a `failure` (`message` = the result's line, `type` = its severity, the body
//!   lists each finding with its evidence), an inconclusive result an `error` (`message` = the
//!   reason, `type` = its kind), a skipped result `skipped`; every testcase carries its
//!   severity and fingerprint as properties.
//!
//! The counts (`tests`, `failures`, `errors`, `skipped`) therefore equal the JSON report's
//! `summary.results` (`tests` = every result).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::ScanReport;
use crate::model::{Evidence, Outcome, Status, TargetStatus};

/// The JUnit writer.
#[derive(Debug)]
pub struct Junit;

impl super::Writer for Junit {
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
        self::report(report)
            .serialize(&mut *out)
            .map_err(io::Error::other)?;
        writeln!(out)
    }
}

/// Build the JUnit report of a scan.
pub fn report(report: &ScanReport) -> Report {
    let mut by_target: HashMap<&str, Vec<&Outcome>> = HashMap::new();
    for o in &report.results {
        by_target.entry(o.target.as_str()).or_default().push(o);
    }
    let mut junit = Report::new("secgate");
    junit.set_time(std::time::Duration::from_millis(report.duration_ms));
    for t in &report.targets {
        let mut suite = TestSuite::new(t.target.as_str());
        if let Some(addr) = &t.address {
            suite.add_property(Property::new("address", addr.as_str()));
        }
        if let Some(parent) = &t.parent {
            suite.add_property(Property::new("parent", parent.as_str()));
        }
        let status = match t.status {
            TargetStatus::Scanned => "scanned",
            TargetStatus::Unreachable => "unreachable",
            TargetStatus::Interrupted => "interrupted",
        };
        suite.add_property(Property::new("status", status));
        if let Some(e) = &t.error {
            suite.add_property(Property::new("error", e.to_string()));
            suite.set_system_err(format!("{status}: {e}"));
        }
        for o in by_target.get(t.target.as_str()).into_iter().flatten() {
            suite.add_test_case(case(o));
        }
        junit.add_test_suite(suite);
    }
    junit
}

fn case(o: &Outcome) -> TestCase {
    let suppression = o
        .suppression
        .as_ref()
        .or_else(|| o.findings.iter().find_map(|f| f.suppression.as_ref()));
    let status = match o.status {
        // Accepted by the team (every finding suppressed): not a failure of this build.
        _ if o.suppressed => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(match suppression {
                Some(sup) => format!(
                    "suppressed: {} (expires {})",
                    sup.reason,
                    sup.expires.as_deref().unwrap_or("never")
                ),
                None => "suppressed".to_string(),
            });
            s
        }
        Status::Pass => TestCaseStatus::success(),
        Status::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(o.message.as_str())
                .set_type(o.severity.as_str())
                .set_description(failure_body(o));
            s
        }
        Status::Inconclusive => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            match &o.reason {
                Some(r) => s.set_message(r.detail.as_str()).set_type(r.kind.as_str()),
                None => s.set_message(o.message.as_str()),
            };
            s.set_description(o.message.as_str());
            s
        }
        Status::Skipped => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(
                o.reason
                    .as_ref()
                    .map_or(o.message.as_str(), |r| r.detail.as_str()),
            );
            s
        }
    };
    let mut case = TestCase::new(o.rule_id, status);
    case.set_classname(o.family);
    case.add_property(Property::new("severity", o.severity.as_str()));
    case.add_property(Property::new("title", o.title));
    case.add_property(Property::new("fingerprint", o.fingerprint.as_str()));
    case
}

/// The body of a `failure`: one paragraph per finding, with its evidence.
fn failure_body(o: &Outcome) -> String {
    let mut body = format!("{} ({}): {}\n", o.rule_id, o.severity, o.title);
    for f in &o.findings {
        if f.subject.is_target() {
            let _ = writeln!(body, "\n- {}", f.message);
        } else {
            let _ = writeln!(
                body,
                "\n- {} {}: {}",
                f.subject.kind.as_str(),
                f.subject.key,
                f.message
            );
        }
        if let Some(sup) = &f.suppression {
            let _ = writeln!(
                body,
                "  suppressed: {} (expires {})",
                sup.reason,
                sup.expires.as_deref().unwrap_or("never")
            );
        }
        evidence(&mut body, &f.evidence);
    }
    if o.findings.is_empty() {
        evidence(&mut body, &o.evidence);
    }
    let _ = write!(body, "\nsecgate explain {}", o.rule_id);
    body
}

fn evidence(body: &mut String, e: &Evidence) {
    for (k, v) in &e.0 {
        let _ = writeln!(body, "    {k}: {}", super::evidence_shown(v));
    }
}
