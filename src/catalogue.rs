//! The rule catalogue: every rule's id, severity, title and manual, as data.
//!
//! Each family has one TOML file under `checks/` in the repository, embedded into the binary
//! here. The catalogue is the single source of a rule's severity and documentation: reports,
//! `secgate rules`, `secgate explain` and SARIF `rules[]` all read it. `tests/catalogue.rs`
//! checks it against the rule ids the code can emit.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::model::Severity;

/// The embedded catalogue files, one per family: `(file name, contents)`.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "checks/headers.toml",
        include_str!("../checks/headers.toml"),
    ),
    ("checks/tls.toml", include_str!("../checks/tls.toml")),
    ("checks/auth.toml", include_str!("../checks/auth.toml")),
    (
        "checks/ratelimit.toml",
        include_str!("../checks/ratelimit.toml"),
    ),
    ("checks/ports.toml", include_str!("../checks/ports.toml")),
    ("checks/dns.toml", include_str!("../checks/dns.toml")),
];

/// Whether a rule is in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Emitted and scored.
    #[default]
    Stable,
    /// Kept so that its id is never reused; never emitted.
    Removed,
}

/// One rule's catalogue entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    /// Stable dotted id.
    pub id: String,
    /// Family (filled from the file's `family` key).
    #[serde(default)]
    pub family: String,
    /// Severity of a failure.
    pub severity: Severity,
    /// One-line title.
    pub title: String,
    /// What the rule checks.
    pub description: String,
    /// Why it matters.
    pub rationale: String,
    /// How to fix a failure.
    pub remediation: String,
    /// Links: RFCs, OWASP, MDN, Observatory.
    #[serde(default)]
    pub references: Vec<String>,
    /// CWE numbers.
    #[serde(default)]
    pub cwe: Vec<u32>,
    /// Free tags (SARIF `properties.tags`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Lifecycle.
    #[serde(default)]
    pub status: Lifecycle,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    family: String,
    #[serde(rename = "rule")]
    rules: Vec<RuleDoc>,
}

/// The parsed catalogue, or the first parse error (a build defect: `tests/catalogue.rs` fails).
static CATALOGUE: LazyLock<Result<Vec<RuleDoc>, String>> = LazyLock::new(|| parse(SOURCES));

/// Parse catalogue sources into one list, in file order.
pub fn parse(sources: &[(&str, &str)]) -> Result<Vec<RuleDoc>, String> {
    let mut all = Vec::new();
    for (name, text) in sources {
        let file: CatalogueFile = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        for mut rule in file.rules {
            rule.family = file.family.clone();
            all.push(rule);
        }
    }
    Ok(all)
}

/// Every rule, in catalogue order (empty if the embedded catalogue is malformed).
pub fn all() -> &'static [RuleDoc] {
    match &*CATALOGUE {
        Ok(rules) => rules,
        Err(_) => &[],
    }
}

/// The catalogue parse error, if any.
pub fn load_error() -> Option<&'static str> {
    CATALOGUE.as_ref().err().map(String::as_str)
}

/// Look up a rule by id.
pub fn get(id: &str) -> Option<&'static RuleDoc> {
    all().iter().find(|r| r.id == id)
}

/// Index of a rule in catalogue order (used for SARIF `ruleIndex` and for sorting).
pub fn index(id: &str) -> Option<usize> {
    all().iter().position(|r| r.id == id)
}

impl RuleDoc {
    /// The manual page `secgate explain` prints.
    pub fn explain(&self) -> String {
        let mut out = format!(
            "{id}  ({family}, {severity})\n{title}\n\nWhat it checks\n  {what}\n\nWhy it matters\n  {why}\n\nHow to fix it\n  {fix}\n",
            id = self.id,
            family = self.family,
            severity = self.severity,
            title = self.title,
            what = indent(&self.description),
            why = indent(&self.rationale),
            fix = indent(&self.remediation),
        );
        if !self.references.is_empty() || !self.cwe.is_empty() {
            out.push_str("\nReferences\n");
            for cwe in &self.cwe {
                out.push_str(&format!(
                    "  - CWE-{cwe}: https://cwe.mitre.org/data/definitions/{cwe}.html\n"
                ));
            }
            for r in &self.references {
                out.push_str(&format!("  - {r}\n"));
            }
        }
        out
    }

    /// Help text in Markdown (SARIF `help.markdown`).
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "**{}** ({})\n\n{}\n\n### Why it matters\n{}\n\n### How to fix it\n{}\n",
            self.title,
            self.severity,
            self.description.trim(),
            self.rationale.trim(),
            self.remediation.trim()
        );
        if !self.references.is_empty() || !self.cwe.is_empty() {
            out.push_str("\n### References\n");
            for cwe in &self.cwe {
                out.push_str(&format!(
                    "- [CWE-{cwe}](https://cwe.mitre.org/data/definitions/{cwe}.html)\n"
                ));
            }
            for r in &self.references {
                out.push_str(&format!("- <{r}>\n"));
            }
        }
        out
    }
}

fn indent(text: &str) -> String {
    text.trim()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n  ")
}
