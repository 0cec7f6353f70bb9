//! The gate's policy: the thresholds a scan is held to (`[policy]` in the config, and the
//! `--min-score` / `--max-critical` / `--max-high` / `--fail-on` / `--gate-on` /
//! `--fail-on-stale` flags). The score and the gate themselves are computed by
//! [`crate::summarise`].

use serde::{Deserialize, Serialize};

use crate::model::Severity;

/// Which findings count toward the severity limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateOn {
    /// Every unsuppressed finding (the default).
    #[default]
    All,
    /// Only findings that are new or updated against the baseline (`--baseline`); the score
    /// is still reported on everything, but does not gate.
    New,
}

impl GateOn {
    /// Parse `all` or `new`.
    pub fn parse(s: &str) -> Result<GateOn, String> {
        match s {
            "all" => Ok(GateOn::All),
            "new" => Ok(GateOn::New),
            other => Err(format!("expected \"all\" or \"new\", got \"{other}\"")),
        }
    }
}

/// Parse a severity name (`critical`, `high`, `medium`, `low`, `info`).
pub fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::DESCENDING
        .iter()
        .copied()
        .find(|v| v.as_str() == s.trim().to_ascii_lowercase())
        .ok_or_else(|| format!("unknown severity '{s}' (critical, high, medium, low, info)"))
}

/// Gate thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Lowest passing score, 0–100.
    pub min_score: f64,
    /// Most critical findings allowed.
    pub max_critical: u32,
    /// Most high findings allowed (`None`: unlimited).
    pub max_high: Option<u32>,
    /// Most medium findings allowed (`None`: unlimited).
    pub max_medium: Option<u32>,
    /// Most low findings allowed (`None`: unlimited).
    pub max_low: Option<u32>,
    /// Any finding at or above this severity fails the gate (`--fail-on`).
    pub fail_on: Option<Severity>,
    /// Which findings count toward the limits.
    pub gate_on: GateOn,
    /// A stale suppression entry fails the gate.
    pub fail_on_stale: bool,
    /// Suppression entries may omit `expires`.
    pub allow_permanent_suppressions: bool,
    /// Furthest a suppression may expire, in days from today.
    pub max_suppression_days: u32,
    /// The profile the scan was held to: its name and version (since 1.4; reports without
    /// one were made under `default`).
    #[serde(default)]
    pub profile: crate::profile::ProfileId,
}

impl Policy {
    /// The limit for findings of `severity`: `fail_on` (0 at or above it), else the
    /// per-severity maximum. `None` means unlimited.
    pub fn limit(&self, severity: Severity) -> Option<u32> {
        if self.fail_on.is_some_and(|f| severity >= f) {
            return Some(0);
        }
        match severity {
            Severity::Critical => Some(self.max_critical),
            Severity::High => self.max_high,
            Severity::Medium => self.max_medium,
            Severity::Low => self.max_low,
            Severity::Info => None,
        }
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            min_score: 95.0,
            max_critical: 0,
            max_high: None,
            max_medium: None,
            max_low: None,
            fail_on: None,
            gate_on: GateOn::All,
            fail_on_stale: false,
            allow_permanent_suppressions: false,
            max_suppression_days: 180,
            profile: crate::profile::ProfileId::default(),
        }
    }
}

/// The gate keys of `[policy]` beyond `min_score` and `max_critical`, as the config file set
/// them (`None`: not set there).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilePolicy {
    /// `policy.max_high`.
    pub max_high: Option<u32>,
    /// `policy.max_medium`.
    pub max_medium: Option<u32>,
    /// `policy.max_low`.
    pub max_low: Option<u32>,
    /// `policy.fail_on`.
    pub fail_on: Option<Severity>,
    /// `policy.gate_on`.
    pub gate_on: Option<GateOn>,
    /// `policy.fail_on_stale`.
    pub fail_on_stale: Option<bool>,
    /// `policy.allow_permanent_suppressions`.
    pub allow_permanent_suppressions: Option<bool>,
    /// `policy.max_suppression_days`.
    pub max_suppression_days: Option<u32>,
}
