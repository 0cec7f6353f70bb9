//! Compliance views: the scan's results read against a standard (`--compliance NAME`).
//!
//! A framework is data: one TOML file under `checks/compliance/` (embedded like the
//! catalogue) lists the requirements of a standard that an outside-in scan can speak to, each
//! with a short title and, when a scan cannot show it, `assessable = false` and a reason. The
//! catalogue rules say which requirements they evidence (`compliance = { pci-dss = [..] }` in
//! `checks/*.toml`), so a rule carries its requirements as it carries its CWE numbers.
//!
//! A view is computed after triage, from the results alone: per requirement, the rules that
//! evidence it, their results on every target, and a status. The status never claims more
//! than the results show:
//!
//! - **not met**: a mapped rule failed on some target (and the failure is not suppressed);
//! - **met**: no failure, no undecided result, and at least one mapped rule passed, for a
//!   requirement that passing rules can show (`met_from_outside`, the default);
//! - **not assessed**: everything else: the requirement is not assessable from outside, or
//!   passing rules cannot show it, or a mapped result was inconclusive, or its only failures
//!   are suppressed (an accepted risk an assessor decides on), or no mapped rule ran.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::model::{Outcome, Status};

/// The embedded framework files: `(file name, contents)`.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "checks/compliance/pci-dss.toml",
        include_str!("../checks/compliance/pci-dss.toml"),
    ),
    (
        "checks/compliance/asvs.toml",
        include_str!("../checks/compliance/asvs.toml"),
    ),
    (
        "checks/compliance/nist-800-52.toml",
        include_str!("../checks/compliance/nist-800-52.toml"),
    ),
];

/// A framework's own entry (`[framework]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkInfo {
    /// The name `--compliance` takes: `pci-dss`.
    pub id: String,
    /// The standard's name: `PCI DSS`.
    pub name: String,
    /// The version the file follows: `4.0.1`.
    pub version: String,
    /// Prefix of SARIF tags: `PCI-DSS-4.0.1` (tags read `PCI-DSS-4.0.1:4.2.1`).
    pub tag: String,
    /// The document the file follows, with where to get it.
    pub source: String,
    /// The earlier version whose ids requirements also list (`v4`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// A caveat for the whole view (e.g. the ASV note of PCI DSS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One requirement of a framework file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The standard's id: `4.2.1`.
    pub id: String,
    /// A short paraphrase of the requirement.
    pub title: String,
    /// Ids of the same requirement in the framework's previous version (ASVS 4.0.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub v4: Vec<String>,
    /// False when an outside-in scan cannot show the requirement at all.
    #[serde(default = "yes")]
    pub assessable: bool,
    /// False when failing rules show it is not met but passing rules cannot show it is met.
    #[serde(default = "yes")]
    pub met_from_outside: bool,
    /// Why it is not assessable, or why passing rules cannot show it met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What a "met" does not cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}

fn yes() -> bool {
    true
}

/// A parsed framework file.
#[derive(Clone, Debug)]
pub struct Framework {
    /// `[framework]`.
    pub info: FrameworkInfo,
    /// `[[requirement]]`, in file order.
    pub requirements: Vec<Requirement>,
    /// The file it came from.
    pub file: &'static str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameworkFile {
    framework: FrameworkInfo,
    #[serde(rename = "requirement")]
    requirements: Vec<Requirement>,
}

/// Parse framework sources, in order.
pub fn parse(sources: &[(&'static str, &str)]) -> Result<Vec<Framework>, String> {
    sources
        .iter()
        .map(|(file, text)| {
            let f: FrameworkFile = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
            Ok(Framework {
                info: f.framework,
                requirements: f.requirements,
                file,
            })
        })
        .collect()
}

static FRAMEWORKS: LazyLock<Result<Vec<Framework>, String>> = LazyLock::new(|| parse(SOURCES));

/// Every embedded framework (empty if a file is malformed: see [`load_error`]).
pub fn all() -> &'static [Framework] {
    match &*FRAMEWORKS {
        Ok(f) => f,
        Err(_) => &[],
    }
}

/// The parse error of the embedded framework files, if any (a build defect).
pub fn load_error() -> Option<&'static str> {
    FRAMEWORKS.as_ref().err().map(String::as_str)
}

/// A framework by its `--compliance` name.
pub fn get(id: &str) -> Option<&'static Framework> {
    all().iter().find(|f| f.info.id == id)
}

/// The `--compliance` names, in file order.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|f| f.info.id.as_str()).collect()
}

/// Parse `--compliance` values (repeatable, comma-separated): known names, without repeats.
pub fn parse_names(values: &[String]) -> Result<Vec<&'static str>, String> {
    let mut out: Vec<&'static str> = Vec::new();
    for name in values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let Some(f) = get(&name.to_ascii_lowercase()) else {
            return Err(format!(
                "unknown framework '{name}' (known: {})",
                names().join(", ")
            ));
        };
        if !out.contains(&f.info.id.as_str()) {
            out.push(f.info.id.as_str());
        }
    }
    if out.is_empty() && !values.is_empty() {
        return Err(format!(
            "no framework given (known: {})",
            names().join(", ")
        ));
    }
    Ok(out)
}

impl Framework {
    /// A requirement by id.
    pub fn requirement(&self, id: &str) -> Option<&Requirement> {
        self.requirements.iter().find(|r| r.id == id)
    }

    /// The SARIF tag of a requirement: `PCI-DSS-4.0.1:4.2.1`.
    pub fn tag(&self, requirement: &str) -> String {
        format!("{}:{requirement}", self.info.tag)
    }

    /// The catalogue rules that evidence `requirement`, in catalogue order.
    pub fn rules_of(&self, requirement: &str) -> Vec<&'static str> {
        crate::catalogue::all()
            .iter()
            .filter(|r| {
                r.compliance
                    .get(&self.info.id)
                    .is_some_and(|ids| ids.iter().any(|i| i == requirement))
            })
            .map(|r| r.id.as_str())
            .collect()
    }
}

/// The requirements a rule evidences: `(framework, requirement)` in framework file order.
pub fn requirements_of(rule_id: &str) -> Vec<(&'static Framework, &'static Requirement)> {
    let Some(rule) = crate::catalogue::get(rule_id) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in all() {
        if let Some(ids) = rule.compliance.get(&f.info.id) {
            for r in &f.requirements {
                if ids.contains(&r.id) {
                    out.push((f, r));
                }
            }
        }
    }
    out
}

/// The SARIF tags of a rule: one per requirement it evidences, in every framework.
pub fn tags_of(rule_id: &str) -> Vec<String> {
    requirements_of(rule_id)
        .into_iter()
        .map(|(f, r)| f.tag(&r.id))
        .collect()
}

/// A requirement's status in a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReqStatus {
    /// A mapped rule failed.
    NotMet,
    /// Could not be shown either way.
    NotAssessed,
    /// Every mapped result that ran passed.
    Met,
}

impl ReqStatus {
    /// For people: `met`, `not met`, `not assessed`.
    pub fn label(self) -> &'static str {
        match self {
            ReqStatus::Met => "met",
            ReqStatus::NotMet => "not met",
            ReqStatus::NotAssessed => "not assessed",
        }
    }
}

/// Results of one status, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Passed.
    pub pass: u32,
    /// Failed and not suppressed.
    pub fail: u32,
    /// Failed, every finding suppressed.
    pub suppressed: u32,
    /// Undecided.
    pub inconclusive: u32,
    /// Did not apply.
    pub skipped: u32,
}

/// One rule's result on one target, in a view.
#[derive(Clone, Debug, Serialize)]
pub struct TargetStatus {
    /// The target id, as the results name it.
    pub target: String,
    /// Its result: `pass`, `fail`, `inconclusive`, `skipped`.
    pub status: Status,
    /// A failure whose findings are all suppressed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// One rule that evidences a requirement, with its results across targets.
#[derive(Clone, Debug, Serialize)]
pub struct RuleEvidence {
    /// The rule id.
    pub rule_id: &'static str,
    /// Its results, counted.
    pub counts: Counts,
    /// Its result on every target it ran on (none when it did not run).
    pub targets: Vec<TargetStatus>,
}

/// One requirement in a view.
#[derive(Clone, Debug, Serialize)]
pub struct RequirementView {
    /// The standard's id.
    pub id: String,
    /// The SARIF tag (`PCI-DSS-4.0.1:4.2.1`).
    pub tag: String,
    /// Its title.
    pub title: String,
    /// ASVS 4.0.3 ids, when the framework has a previous version.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub v4: Vec<String>,
    /// met / not met / not assessed.
    pub status: ReqStatus,
    /// Why, in one line.
    pub reason: String,
    /// What a "met" does not cover (only with a met status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
    /// False when an outside-in scan cannot show it.
    pub assessable: bool,
    /// The rules that evidence it.
    pub rules: Vec<RuleEvidence>,
}

/// Requirements per status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ViewCounts {
    /// Met.
    pub met: u32,
    /// Not met.
    pub not_met: u32,
    /// Not assessed.
    pub not_assessed: u32,
}

/// One framework's view of a scan (JSON `compliance[]`).
#[derive(Clone, Debug, Serialize)]
pub struct View {
    /// The `--compliance` name.
    pub framework: String,
    /// The standard's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The document the framework file follows.
    pub source: String,
    /// A caveat for the whole view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Requirements per status.
    pub counts: ViewCounts,
    /// Every requirement the framework file lists, in its order.
    pub requirements: Vec<RequirementView>,
}

/// The views of `frameworks` (known names) over `results`.
pub fn views(frameworks: &[&str], results: &[Outcome]) -> Vec<View> {
    frameworks
        .iter()
        .filter_map(|name| get(name))
        .map(|f| view(f, results))
        .collect()
}

/// One framework's view over `results`.
pub fn view(f: &Framework, results: &[Outcome]) -> View {
    let mut by_rule: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for o in results {
        by_rule.entry(o.rule_id).or_default().push(o);
    }
    let mut counts = ViewCounts::default();
    let requirements: Vec<RequirementView> = f
        .requirements
        .iter()
        .map(|req| {
            let rules: Vec<RuleEvidence> = f
                .rules_of(&req.id)
                .into_iter()
                .map(|rule_id| evidence(rule_id, by_rule.get(rule_id).map_or(&[], Vec::as_slice)))
                .collect();
            let (status, reason) = judge(req, &rules);
            match status {
                ReqStatus::Met => counts.met += 1,
                ReqStatus::NotMet => counts.not_met += 1,
                ReqStatus::NotAssessed => counts.not_assessed += 1,
            }
            RequirementView {
                id: req.id.clone(),
                tag: f.tag(&req.id),
                title: req.title.clone(),
                v4: req.v4.clone(),
                status,
                reason,
                caveat: req.caveat.clone().filter(|_| status == ReqStatus::Met),
                assessable: req.assessable,
                rules,
            }
        })
        .collect();
    View {
        framework: f.info.id.clone(),
        name: f.info.name.clone(),
        version: f.info.version.clone(),
        source: f.info.source.clone(),
        note: f.info.note.clone(),
        counts,
        requirements,
    }
}

fn evidence(rule_id: &'static str, results: &[&Outcome]) -> RuleEvidence {
    let mut counts = Counts::default();
    let targets = results
        .iter()
        .map(|o| {
            let suppressed = o.status == Status::Fail && o.suppressed;
            match o.status {
                Status::Pass => counts.pass += 1,
                Status::Fail if suppressed => counts.suppressed += 1,
                Status::Fail => counts.fail += 1,
                Status::Inconclusive => counts.inconclusive += 1,
                Status::Skipped => counts.skipped += 1,
            }
            TargetStatus {
                target: o.target.clone(),
                status: o.status,
                suppressed,
            }
        })
        .collect();
    RuleEvidence {
        rule_id,
        counts,
        targets,
    }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A requirement's status and the line that explains it.
fn judge(req: &Requirement, rules: &[RuleEvidence]) -> (ReqStatus, String) {
    if !req.assessable {
        let why = req
            .reason
            .clone()
            .unwrap_or_else(|| "not assessable from outside".into());
        return (ReqStatus::NotAssessed, why);
    }
    // Failed rules grouped by target, targets in the order the results name them.
    let mut failed: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in rules {
        for t in r
            .targets
            .iter()
            .filter(|t| t.status == Status::Fail && !t.suppressed)
        {
            match failed.iter_mut().find(|(target, _)| *target == t.target) {
                Some((_, ids)) => ids.push(r.rule_id),
                None => failed.push((t.target.as_str(), vec![r.rule_id])),
            }
        }
    }
    if !failed.is_empty() {
        let parts: Vec<String> = failed
            .iter()
            .map(|(target, ids)| format!("{target} ({})", ids.join(", ")))
            .collect();
        return (ReqStatus::NotMet, format!("failed on {}", parts.join("; ")));
    }
    let sum = |f: fn(&Counts) -> u32| rules.iter().map(|r| f(&r.counts)).sum::<u32>();
    let (pass, suppressed, inconclusive) = (
        sum(|c| c.pass),
        sum(|c| c.suppressed),
        sum(|c| c.inconclusive),
    );
    if pass + suppressed + inconclusive == 0 {
        return (
            ReqStatus::NotAssessed,
            "no rule that evidences it ran (family not run, or the rules did not apply)".into(),
        );
    }
    if suppressed > 0 {
        return (
            ReqStatus::NotAssessed,
            format!(
                "{} suppressed (accepted with a reason): for the assessor to judge",
                plural(suppressed, "failure is", "failures are")
            ),
        );
    }
    if inconclusive > 0 {
        return (
            ReqStatus::NotAssessed,
            format!(
                "{} could not be decided ({} passed)",
                plural(inconclusive, "result", "results"),
                pass
            ),
        );
    }
    if !req.met_from_outside {
        let why = req
            .reason
            .as_deref()
            .unwrap_or("passing rules cannot show it");
        return (
            ReqStatus::NotAssessed,
            format!(
                "no failure ({} passed); {why}",
                plural(pass, "result", "results")
            ),
        );
    }
    (
        ReqStatus::Met,
        format!("{} passed", plural(pass, "result", "results")),
    )
}
