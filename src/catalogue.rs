//! The rule catalogue: every rule's id, severity, title and manual, as data.
//!
//! Each family has one TOML file under `checks/` in the repository, embedded into the binary
//! here. The catalogue is the single source of a rule's severity and documentation: reports,
//! `secgate rules`, `secgate explain` and SARIF `rules[]` all read it. `tests/catalogue.rs`
//! checks it against the rule ids the code can emit.

use std::collections::HashMap;
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
    ("checks/load.toml", include_str!("../checks/load.toml")),
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
    /// The requirements the rule evidences, by framework (`pci-dss`, `asvs`, `nist-800-52`):
    /// ids listed in `checks/compliance/FRAMEWORK.toml` (see [`crate::compliance`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub compliance: std::collections::BTreeMap<String, Vec<String>>,
    /// Lifecycle.
    #[serde(default)]
    pub status: Lifecycle,
}

/// A family's request budget per target, as its catalogue file declares it.
///
/// `per_target` (and `per_endpoint`, by endpoint role) are the requests the family sends at
/// its default options; `scales` says in words how the options change them. The family
/// computes its real budget from its options, the facade refuses requests beyond it, and the
/// catalogue test checks that code and catalogue agree at the defaults.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetDoc {
    /// Requests per target.
    #[serde(default)]
    pub per_target: u32,
    /// Requests per configured endpoint, by role (`login`, `protected`, `api`, `jwt`).
    #[serde(default)]
    pub per_endpoint: std::collections::BTreeMap<String, u32>,
    /// How the options change the budget, for people.
    pub scales: String,
}

/// A family's own entry in its catalogue file.
#[derive(Clone, Debug, Serialize)]
pub struct FamilyDoc {
    /// Family name.
    pub family: String,
    /// Its request budget per target.
    pub budget: BudgetDoc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    family: String,
    budget: BudgetDoc,
    #[serde(rename = "rule")]
    rules: Vec<RuleDoc>,
}

/// The parsed catalogue.
#[derive(Debug)]
pub struct Catalogue {
    rules: Vec<RuleDoc>,
    families: Vec<FamilyDoc>,
    index: HashMap<String, usize>,
}

/// The parsed catalogue, or the first parse error (a build defect: `tests/catalogue.rs` fails).
static CATALOGUE: LazyLock<Result<Catalogue, String>> = LazyLock::new(|| parse(SOURCES));

/// Parse catalogue sources, in file order.
pub fn parse(sources: &[(&str, &str)]) -> Result<Catalogue, String> {
    let mut rules = Vec::new();
    let mut families = Vec::new();
    for (name, text) in sources {
        let file: CatalogueFile = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        for mut rule in file.rules {
            rule.family = file.family.clone();
            rules.push(rule);
        }
        families.push(FamilyDoc {
            family: file.family,
            budget: file.budget,
        });
    }
    let index = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    Ok(Catalogue {
        rules,
        families,
        index,
    })
}

impl Catalogue {
    /// Every rule, in catalogue order.
    pub fn rules(&self) -> &[RuleDoc] {
        &self.rules
    }
}

/// Every rule, in catalogue order (empty if the embedded catalogue is malformed).
pub fn all() -> &'static [RuleDoc] {
    match &*CATALOGUE {
        Ok(c) => &c.rules,
        Err(_) => &[],
    }
}

/// Every family's own entry, in catalogue order.
pub fn families() -> &'static [FamilyDoc] {
    match &*CATALOGUE {
        Ok(c) => &c.families,
        Err(_) => &[],
    }
}

/// A family's own entry.
pub fn family(name: &str) -> Option<&'static FamilyDoc> {
    families().iter().find(|f| f.family == name)
}

/// The catalogue parse error, if any.
pub fn load_error() -> Option<&'static str> {
    CATALOGUE.as_ref().err().map(String::as_str)
}

/// Look up a rule by id.
pub fn get(id: &str) -> Option<&'static RuleDoc> {
    index(id).and_then(|i| all().get(i))
}

/// Index of a rule in catalogue order (used for SARIF `ruleIndex` and for sorting).
pub fn index(id: &str) -> Option<usize> {
    match &*CATALOGUE {
        Ok(c) => c.index.get(id).copied(),
        Err(_) => None,
    }
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
        let requirements = crate::compliance::requirements_of(&self.id);
        if !requirements.is_empty() {
            out.push_str("\nRequirements it evidences (--compliance)\n");
            for (f, r) in requirements {
                let v4 = match (&f.info.previous, r.v4.is_empty()) {
                    (Some(prev), false) => format!(" (v{prev}: {})", r.v4.join(", ")),
                    _ => String::new(),
                };
                out.push_str(&format!(
                    "  - {} {} {}{v4}: {}\n",
                    f.info.name, f.info.version, r.id, r.title
                ));
            }
        }
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
