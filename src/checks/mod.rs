//! Check families. Each family is a folder: `mod.rs` probes the target (all network I/O) and
//! hands one observation to its rules, one pure function per file.
//!
//! Adding a family: a folder here, its catalogue `checks/<family>.toml` (embedded by
//! [`crate::catalogue::SOURCES`]), and one line in [`CHECKS`].

use std::time::Duration;

use futures::future::BoxFuture;

use crate::engine::{ScanCx, ScanTarget, Settings};
use crate::model::Outcome;
use crate::target::Target;

pub mod auth;
pub mod behaviour;
pub mod dns;
pub mod headers;
pub mod ports;
pub mod ratelimit;
pub mod tls;

/// A check family.
pub trait Check: Send + Sync {
    /// Family name: the `--checks` value and the catalogue file name.
    fn family(&self) -> &'static str;
    /// One line describing the family.
    fn summary(&self) -> &'static str;
    /// Every rule id the family can emit (the catalogue test compares this with the catalogue).
    fn rule_ids(&self) -> &'static [&'static str];
    /// Whether the family runs on this kind of target by default.
    fn applies_to(&self, target: &Target) -> bool;
    /// Whether the family runs on this target by default, given the scan's settings (e.g. a
    /// name pinned with `--resolve` is not looked up in DNS). Defaults to [`Check::applies_to`].
    fn applies_with(&self, target: &Target, _settings: &Settings) -> bool {
        self.applies_to(target)
    }
    /// Whether the family can run on this target when asked for by name (`--checks`), even
    /// where it does not run by default. Defaults to [`Check::applies_with`].
    fn can_run(&self, target: &Target, settings: &Settings) -> bool {
        self.applies_with(target, settings)
    }
    /// Whether the family still runs on a name that did not resolve (it needs no address).
    fn runs_without_address(&self) -> bool {
        false
    }
    /// Probe the target and evaluate every rule: one outcome per rule id.
    fn run<'a>(&'a self, cx: &'a ScanCx, target: &'a ScanTarget) -> BoxFuture<'a, Vec<Outcome>>;
    /// Families whose traffic would skew each other's measurements on `target` (bursts,
    /// failed logins, a real login) say so here; the engine runs them one after another on
    /// the target, in [`CHECKS`] order.
    fn exclusive(&self, _target: &Target) -> bool {
        false
    }
    /// How long the family may take on one target before it is cut off (its rules then become
    /// inconclusive). Each network operation has its own timeout; this is the safety net.
    fn deadline(&self, settings: &Settings, _target: &Target) -> Duration {
        crate::engine::check_deadline(settings)
    }
}

/// Every family, in report order.
pub static CHECKS: &[&dyn Check] = &[
    &headers::Headers,
    &tls::Tls,
    &auth::Auth,
    &ratelimit::RateLimit,
    &ports::Ports,
    &dns::Dns,
];

/// Look up a family by name.
pub fn family(name: &str) -> Option<&'static dyn Check> {
    CHECKS.iter().copied().find(|c| c.family() == name)
}

/// Family names, for messages.
pub fn family_names() -> Vec<&'static str> {
    CHECKS.iter().map(|c| c.family()).collect()
}

/// Parse a comma-separated family list (`--checks headers,tls`). Errors name the bad entry.
pub fn parse_families(list: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let check = family(name).ok_or_else(|| {
            format!(
                "unknown family '{name}' (available: {})",
                family_names().join(", ")
            )
        })?;
        if !out.contains(&check.family()) {
            out.push(check.family());
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no family given (available: {})",
            family_names().join(", ")
        ));
    }
    Ok(out)
}

/// A rule of a family: the ids it emits and the pure function that evaluates them against the
/// family's observation `O`.
pub struct Rule<O: 'static> {
    /// Ids this rule emits, one outcome each.
    pub ids: &'static [&'static str],
    /// The evaluation.
    pub eval: fn(&O, &mut crate::model::Emitter),
}

/// Run every rule of a family, in order, on its observation.
pub fn evaluate_rules<O>(rules: &[Rule<O>], obs: &O, out: &mut crate::model::Emitter) {
    for rule in rules {
        (rule.eval)(obs, out);
    }
}
