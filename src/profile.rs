//! Policy profiles: which standard a scan is held to, as data.
//!
//! A profile (`checks/profiles/*.toml`, embedded here like the rule catalogue) changes three
//! things and nothing else:
//! - **severities**: `[rules."ID"] severity = "..."` sets one rule's severity (higher or lower
//!   than the catalogue's), and `[[minimum]] rules = ["GLOB", ...], severity = "..."` raises
//!   every matching rule to at least that severity (never lowers one);
//! - **which rules run**: `[rules."ID"] enabled = false` turns a rule off (its results are
//!   `skipped`, with the profile named as the reason);
//! - **rule parameters**: `[tls]` (protocol versions, cipher suites, groups, certificate key
//!   types, curves, signatures, sizes and lifetime, server order) for the `tls.profile.*`
//!   rules, and `[headers]` (the HSTS max-age `headers.hsts.short` asks for).
//!
//! A profile is picked with `--profile NAME[@VERSION]` (`policy.profile` in the config); a
//! name without a version is the newest version of that name. A team's own profile is a file
//! of the same shape (`--profile-file FILE`, `policy.profile_file`), which may start from a
//! shipped one with `extends = "NAME[@VERSION]"`.
//!
//! The families read the parameters from [`crate::plan::Settings::profile`]; severities and
//! disabled rules are applied to the collected results by [`Profile::apply`], before triage,
//! so every report (and the score and the gate) sees the profile's severities.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::catalogue;
use crate::checks::tls::cert;
use crate::checks::tls::registry;
use crate::checks::tls::wire::Version;
use crate::error::{Error, Result};
use crate::model::{Evidence, Outcome, Severity, Status};

/// The shipped profiles: `(file name, contents)`.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "checks/profiles/default.toml",
        include_str!("../checks/profiles/default.toml"),
    ),
    (
        "checks/profiles/strict.toml",
        include_str!("../checks/profiles/strict.toml"),
    ),
    (
        "checks/profiles/mozilla-modern-6.0.toml",
        include_str!("../checks/profiles/mozilla-modern-6.0.toml"),
    ),
    (
        "checks/profiles/mozilla-intermediate-6.0.toml",
        include_str!("../checks/profiles/mozilla-intermediate-6.0.toml"),
    ),
    (
        "checks/profiles/mozilla-modern-5.7.toml",
        include_str!("../checks/profiles/mozilla-modern-5.7.toml"),
    ),
    (
        "checks/profiles/mozilla-intermediate-5.7.toml",
        include_str!("../checks/profiles/mozilla-intermediate-5.7.toml"),
    ),
    (
        "checks/profiles/mozilla-old-5.7.toml",
        include_str!("../checks/profiles/mozilla-old-5.7.toml"),
    ),
];

/// The profile a scan uses when none is named.
pub const DEFAULT: &str = "default";

/// The largest profile file read.
const FILE_CAP: u64 = 1 << 20;

/// One rule's change in a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleChange {
    /// The rule's severity under the profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// `Some(false)`: the rule is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A severity floor: every rule matching one of `rules` is at least `severity`.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    /// Rule ids or globs over them (`headers.*`).
    pub rules: Vec<String>,
    /// The lowest severity they may have.
    pub severity: Severity,
    #[serde(skip)]
    matchers: Vec<GlobMatcher>,
}

impl PartialEq for Floor {
    fn eq(&self, other: &Floor) -> bool {
        self.rules == other.rules && self.severity == other.severity
    }
}

impl Floor {
    fn matches(&self, id: &str) -> bool {
        self.matchers.iter().any(|m| m.is_match(id))
    }
}

/// A certificate key type a profile allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// ECDSA (an EC key).
    Ecdsa,
    /// RSA.
    Rsa,
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
}

impl KeyType {
    /// The name a profile writes (`ecdsa`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "ecdsa",
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
            KeyType::Ed448 => "ed448",
        }
    }

    /// The key type the certificate parser names (`EC`, `RSA`, `Ed25519`).
    pub fn certificate_name(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "EC",
            KeyType::Rsa => "RSA",
            KeyType::Ed25519 => "Ed25519",
            KeyType::Ed448 => "Ed448",
        }
    }

    fn parse(s: &str) -> Option<KeyType> {
        [
            KeyType::Ecdsa,
            KeyType::Rsa,
            KeyType::Ed25519,
            KeyType::Ed448,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// The TLS parameters of a profile (`[tls]`); `None` means the profile says nothing, and the
/// rule that needs the parameter is skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsParams {
    /// Protocol versions allowed (`tls.profile.protocols`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_versions"
    )]
    pub protocols: Option<Vec<Version>>,
    /// Cipher suites allowed with TLS 1.2 and older, by code (`tls.profile.suites`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_suites")]
    pub suites: Option<Vec<u16>>,
    /// TLS 1.3 cipher suites allowed, by code (`tls.profile.suites`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_suites")]
    pub tls13_suites: Option<Vec<u16>>,
    /// Whether the server must impose its own suite order (`tls.profile.server_order`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_order: Option<bool>,
    /// Key-exchange groups allowed, by code (`tls.profile.groups`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_groups")]
    pub groups: Option<Vec<u16>>,
    /// Certificate key types allowed (`tls.profile.key_type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_types: Option<Vec<KeyType>>,
    /// Curves of ECDSA certificate keys allowed (`tls.profile.key_type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_curves: Option<Vec<String>>,
    /// Smallest RSA certificate key, in bits (`tls.profile.key_type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rsa_min_bits: Option<u32>,
    /// Certificate signature algorithms allowed (`tls.profile.cert_signature`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_signatures: Option<Vec<String>>,
    /// Longest leaf validity, in days (`tls.profile.cert_lifetime`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cert_lifetime_days: Option<u32>,
}

fn ser_versions<S: serde::Serializer>(
    v: &Option<Vec<Version>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let names: Option<Vec<&str>> = v.as_ref().map(|v| v.iter().map(|x| x.name()).collect());
    names.serialize(s)
}

fn ser_suites<S: serde::Serializer>(
    v: &Option<Vec<u16>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let names: Option<Vec<String>> = v
        .as_ref()
        .map(|v| v.iter().map(|c| registry::suite_name(*c)).collect());
    names.serialize(s)
}

fn ser_groups<S: serde::Serializer>(
    v: &Option<Vec<u16>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let names: Option<Vec<String>> = v
        .as_ref()
        .map(|v| v.iter().map(|c| registry::group_name(*c)).collect());
    names.serialize(s)
}

impl TlsParams {
    /// Whether the profile names any certificate key requirement.
    pub fn judges_keys(&self) -> bool {
        self.certificate_types.is_some()
            || self.certificate_curves.is_some()
            || self.rsa_min_bits.is_some()
    }

    fn over(self, base: &TlsParams) -> TlsParams {
        TlsParams {
            protocols: self.protocols.or_else(|| base.protocols.clone()),
            suites: self.suites.or_else(|| base.suites.clone()),
            tls13_suites: self.tls13_suites.or_else(|| base.tls13_suites.clone()),
            server_order: self.server_order.or(base.server_order),
            groups: self.groups.or_else(|| base.groups.clone()),
            certificate_types: self
                .certificate_types
                .or_else(|| base.certificate_types.clone()),
            certificate_curves: self
                .certificate_curves
                .or_else(|| base.certificate_curves.clone()),
            rsa_min_bits: self.rsa_min_bits.or(base.rsa_min_bits),
            certificate_signatures: self
                .certificate_signatures
                .or_else(|| base.certificate_signatures.clone()),
            max_cert_lifetime_days: self.max_cert_lifetime_days.or(base.max_cert_lifetime_days),
        }
    }
}

/// The headers parameters of a profile (`[headers]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeadersParams {
    /// The HSTS max-age `headers.hsts.short` asks for, in seconds (default 180 days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsts_min_max_age: Option<u64>,
}

/// A profile, validated against the catalogue and the TLS registries.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Profile {
    /// Its name (`mozilla-intermediate`).
    pub name: String,
    /// Its version (`6.0`); a team's own profile may have none.
    pub version: Option<String>,
    /// One line for people.
    pub description: String,
    /// Where its requirements come from (a URL, a standard).
    pub source: Option<String>,
    /// The shipped profile it starts from (`mozilla-intermediate@6.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// The file it was read from (a team's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Changes to single rules, by rule id.
    pub rules: BTreeMap<String, RuleChange>,
    /// Severity floors.
    pub minimum: Vec<Floor>,
    /// TLS parameters.
    pub tls: TlsParams,
    /// Headers parameters.
    pub headers: HeadersParams,
}

/// What reports record of the profile: its name and version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileId {
    /// The profile's name.
    pub name: String,
    /// Its version (`null` for a team's own without one).
    pub version: Option<String>,
}

impl Default for ProfileId {
    fn default() -> ProfileId {
        default_profile().id()
    }
}

impl ProfileId {
    /// `mozilla-intermediate@6.0`: the name that picks exactly this profile.
    pub fn spec(&self) -> String {
        match &self.version {
            Some(v) => format!("{}@{v}", self.name),
            None => self.name.clone(),
        }
    }

    /// `mozilla-intermediate 6.0`.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.clone(),
        }
    }
}

impl Profile {
    /// Name and version, for reports.
    pub fn id(&self) -> ProfileId {
        ProfileId {
            name: self.name.clone(),
            version: self.version.clone(),
        }
    }

    /// `mozilla-intermediate 6.0`.
    pub fn label(&self) -> String {
        self.id().label()
    }

    /// `mozilla-intermediate@6.0`: the name that picks exactly this profile.
    pub fn spec(&self) -> String {
        self.id().spec()
    }

    /// Whether `rule_id` runs under this profile.
    pub fn enabled(&self, rule_id: &str) -> bool {
        self.rules
            .get(rule_id)
            .and_then(|c| c.enabled)
            .unwrap_or(true)
    }

    /// The severity of `rule_id` under this profile, from its catalogue severity `base`: the
    /// profile's own severity for the rule, else `base` raised to the highest floor matching.
    pub fn severity(&self, rule_id: &str, base: Severity) -> Severity {
        if let Some(s) = self.rules.get(rule_id).and_then(|c| c.severity) {
            return s;
        }
        self.minimum
            .iter()
            .filter(|f| f.matches(rule_id))
            .map(|f| f.severity)
            .fold(base, Ord::max)
    }

    /// Apply the profile's severities and disabled rules to collected results: a disabled
    /// rule's result becomes `skipped` (nothing it found is kept); every result gets the
    /// rule's severity under the profile, from the severity it was emitted with: the
    /// catalogue's, or a lower one where a rule documents it (`tls.vuln.robot` reports a weak
    /// oracle as high).
    pub fn apply(&self, outcomes: &mut [Outcome]) {
        for o in outcomes {
            let base = o.severity;
            o.severity = self.severity(o.rule_id, base);
            if !self.enabled(o.rule_id) {
                o.status = Status::Skipped;
                o.message = format!("disabled by the profile {}", self.label());
                o.evidence = Evidence::none();
                o.reason = None;
                o.findings.clear();
                o.subjects.clear();
            }
        }
    }

    /// Every rule whose severity or state the profile changes: `(rule id, catalogue
    /// severity, severity under the profile, enabled)`, in catalogue order.
    pub fn changes(&self) -> Vec<(&'static str, Severity, Severity, bool)> {
        catalogue::all()
            .iter()
            .filter_map(|r| {
                let sev = self.severity(&r.id, r.severity);
                let on = self.enabled(&r.id);
                (sev != r.severity || !on).then_some((r.id.as_str(), r.severity, sev, on))
            })
            .collect()
    }

    /// The rule parameters the profile sets, as `(rule id, what it asks)` lines for people.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        let t = &self.tls;
        let mut out = Vec::new();
        if let Some(p) = &t.protocols {
            let names: Vec<&str> = p.iter().map(|v| v.name()).collect();
            out.push(("tls.profile.protocols", format!("only {}", or_none(&names))));
        }
        if let Some(s) = &t.suites {
            out.push((
                "tls.profile.suites",
                format!("TLS 1.2 and older: {}", suite_list(s)),
            ));
        }
        if let Some(s) = &t.tls13_suites {
            out.push(("tls.profile.suites", format!("TLS 1.3: {}", suite_list(s))));
        }
        if let Some(o) = t.server_order {
            out.push((
                "tls.profile.server_order",
                if o {
                    "the server imposes its own suite order (TLS 1.2 and older)".into()
                } else {
                    "no server order required".into()
                },
            ));
        }
        if let Some(g) = &t.groups {
            let names: Vec<String> = g.iter().map(|c| registry::group_name(*c)).collect();
            out.push(("tls.profile.groups", or_none(&names)));
        }
        if let Some(k) = &t.certificate_types {
            let names: Vec<&str> = k.iter().map(|k| k.as_str()).collect();
            out.push((
                "tls.profile.key_type",
                format!("key types {}", or_none(&names)),
            ));
        }
        if let Some(c) = &t.certificate_curves {
            out.push((
                "tls.profile.key_type",
                format!("ECDSA curves {}", or_none(c)),
            ));
        }
        if let Some(b) = t.rsa_min_bits {
            out.push((
                "tls.profile.key_type",
                format!("RSA keys of at least {b} bits"),
            ));
        }
        if let Some(s) = &t.certificate_signatures {
            out.push(("tls.profile.cert_signature", or_none(s)));
        }
        if let Some(d) = t.max_cert_lifetime_days {
            out.push((
                "tls.profile.cert_lifetime",
                format!("leaf valid for at most {d} days"),
            ));
        }
        if let Some(a) = self.headers.hsts_min_max_age {
            out.push((
                "headers.hsts.short",
                format!("max-age at least {a} s ({} days)", a / 86_400),
            ));
        }
        out
    }

    /// What `secgate explain --profile NAME` prints.
    pub fn explain(&self) -> String {
        let mut out = format!("{}\n{}\n", self.label(), self.description);
        if let Some(s) = &self.source {
            out.push_str(&format!("Source: {s}\n"));
        }
        if let Some(e) = &self.extends {
            out.push_str(&format!("Extends: {e}\n"));
        }
        if let Some(f) = &self.file {
            out.push_str(&format!("File: {}\n", f.display()));
        }
        let changes = self.changes();
        let w = changes
            .iter()
            .map(|c| c.0.len())
            .chain(self.parameters().iter().map(|p| p.0.len()))
            .max()
            .unwrap_or(0);
        out.push_str("\nSeverities\n");
        let severities: Vec<_> = changes.iter().filter(|c| c.3 && c.1 != c.2).collect();
        if severities.is_empty() {
            out.push_str("  (as in the catalogue)\n");
        }
        for (id, from, to, _) in severities {
            out.push_str(&format!("  {id:<w$}  {from} -> {to}\n"));
        }
        out.push_str("\nDisabled rules\n");
        let off: Vec<_> = changes.iter().filter(|c| !c.3).collect();
        if off.is_empty() {
            out.push_str("  (none)\n");
        }
        for (id, ..) in off {
            out.push_str(&format!("  {id:<w$}  skipped under this profile\n"));
        }
        out.push_str("\nParameters\n");
        let params = self.parameters();
        if params.is_empty() {
            out.push_str("  (none: the tls.profile.* rules are skipped)\n");
        }
        for (id, what) in params {
            out.push_str(&format!("  {id:<w$}  {what}\n"));
        }
        out
    }
}

fn or_none<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn suite_list(codes: &[u16]) -> String {
    let names: Vec<String> = codes.iter().map(|c| registry::suite_name(*c)).collect();
    or_none(&names)
}

// ---------------------------------------------------------------------------------------
// Parsing.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    description: Option<String>,
    source: Option<String>,
    extends: Option<Spanned<String>>,
    #[serde(default)]
    rules: BTreeMap<Spanned<String>, RawRule>,
    #[serde(default)]
    minimum: Vec<RawFloor>,
    tls: Option<RawTls>,
    headers: Option<RawHeaders>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    severity: Option<Spanned<String>>,
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFloor {
    rules: Vec<Spanned<String>>,
    severity: Spanned<String>,
}

type Names = Option<Vec<Spanned<String>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    protocols: Names,
    suites: Names,
    tls13_suites: Names,
    server_order: Option<bool>,
    groups: Names,
    certificate_types: Names,
    certificate_curves: Names,
    certificate_signatures: Names,
    rsa_min_bits: Option<Spanned<i64>>,
    max_cert_lifetime_days: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaders {
    hsts_min_max_age: Option<Spanned<i64>>,
}

/// A problem in a profile's text: where, and what (naming the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte span in the text.
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
}

fn at(span: Range<usize>, message: impl Into<String>) -> ParseError {
    ParseError {
        span,
        message: message.into(),
    }
}

/// Parse a profile's text. `extends` is resolved among the shipped profiles (`builtins`),
/// which may not themselves extend another.
fn parse_with(text: &str, builtins: &[Arc<Profile>]) -> std::result::Result<Profile, ParseError> {
    let raw: RawProfile = toml::from_str(text).map_err(|e| {
        at(
            e.span().unwrap_or(0..0),
            crate::options::tidy(e.message()).replace('`', "'"),
        )
    })?;
    let name = raw
        .name
        .ok_or_else(|| at(0..0, "name: missing (every profile has a name)"))?;
    let name_text = name.get_ref().trim().to_string();
    if name_text.is_empty()
        || !name_text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(at(
            name.span(),
            "name: letters, digits, '-', '_' and '.' only, not empty",
        ));
    }
    let version = match raw.version {
        Some(v) if v.get_ref().trim().is_empty() || v.get_ref().contains('@') => {
            return Err(at(v.span(), "version: must not be empty or contain '@'"));
        }
        Some(v) => Some(v.into_inner().trim().to_string()),
        None => None,
    };
    let base = match &raw.extends {
        Some(e) => {
            Some(find(e.get_ref(), builtins).map_err(|m| at(e.span(), format!("extends: {m}")))?)
        }
        None => None,
    };

    let mut rules: BTreeMap<String, RuleChange> =
        base.as_ref().map(|b| b.rules.clone()).unwrap_or_default();
    for (id, change) in raw.rules {
        if catalogue::get(id.get_ref()).is_none() {
            return Err(at(
                id.span(),
                format!(
                    "rules: '{}' is not a rule id (`secgate rules` lists them)",
                    id.get_ref()
                ),
            ));
        }
        let severity = match &change.severity {
            Some(s) => Some(crate::policy::parse_severity(s.get_ref()).map_err(|m| {
                at(
                    s.span(),
                    format!("rules.\"{}\".severity: {m}", id.get_ref()),
                )
            })?),
            None => None,
        };
        if severity.is_none() && change.enabled.is_none() {
            return Err(at(
                id.span(),
                format!(
                    "rules.\"{}\": sets neither severity nor enabled",
                    id.get_ref()
                ),
            ));
        }
        let entry = rules.entry(id.into_inner()).or_default();
        if severity.is_some() {
            entry.severity = severity;
        }
        if change.enabled.is_some() {
            entry.enabled = change.enabled;
        }
    }

    let mut minimum = base.as_ref().map(|b| b.minimum.clone()).unwrap_or_default();
    for f in raw.minimum {
        let severity = crate::policy::parse_severity(f.severity.get_ref())
            .map_err(|m| at(f.severity.span(), format!("minimum.severity: {m}")))?;
        if f.rules.is_empty() {
            return Err(at(f.severity.span(), "minimum.rules: empty"));
        }
        let mut matchers = Vec::new();
        for pattern in &f.rules {
            let m = Glob::new(pattern.get_ref())
                .map_err(|e| at(pattern.span(), format!("minimum.rules: {e}")))?
                .compile_matcher();
            if !catalogue::all().iter().any(|r| m.is_match(&r.id)) {
                return Err(at(
                    pattern.span(),
                    format!("minimum.rules: '{}' names no rule", pattern.get_ref()),
                ));
            }
            matchers.push(m);
        }
        minimum.push(Floor {
            rules: f.rules.into_iter().map(Spanned::into_inner).collect(),
            severity,
            matchers,
        });
    }

    let tls = match raw.tls {
        Some(t) => tls_params(t)?,
        None => TlsParams::default(),
    };
    let tls = match &base {
        Some(b) => tls.over(&b.tls),
        None => tls,
    };
    let mut headers = base.as_ref().map(|b| b.headers.clone()).unwrap_or_default();
    if let Some(h) = raw.headers
        && let Some(v) = h.hsts_min_max_age
    {
        let n = *v.get_ref();
        if !(1..=1_000_000_000).contains(&n) {
            return Err(at(
                v.span(),
                format!(
                    "headers.hsts_min_max_age: must be between 1 and 1000000000 seconds, got {n}"
                ),
            ));
        }
        headers.hsts_min_max_age = u64::try_from(n).ok();
    }
    Ok(Profile {
        name: name_text,
        version,
        description: raw
            .description
            .or_else(|| base.as_ref().map(|b| format!("{} with changes", b.label())))
            .unwrap_or_default(),
        source: raw
            .source
            .or_else(|| base.as_ref().and_then(|b| b.source.clone())),
        extends: base.as_ref().map(|b| b.spec()),
        file: None,
        rules,
        minimum,
        tls,
        headers,
    })
}

fn names<T>(
    list: Names,
    key: &str,
    what: &str,
    lookup: &dyn Fn(&str) -> Option<T>,
) -> std::result::Result<Option<Vec<T>>, ParseError> {
    let Some(list) = list else { return Ok(None) };
    let mut out = Vec::with_capacity(list.len());
    for item in &list {
        let v = lookup(item.get_ref().trim()).ok_or_else(|| {
            at(
                item.span(),
                format!("tls.{key}: '{}' is not {what}", item.get_ref()),
            )
        })?;
        out.push(v);
    }
    Ok(Some(out))
}

/// A protocol version by Mozilla's (OpenSSL's) name (`TLSv1.2`) or secgate's (`TLS 1.2`).
fn version(name: &str) -> Option<Version> {
    let n = name.to_ascii_lowercase().replace([' ', '_'], "");
    Version::ALL.into_iter().find(|v| {
        let ours = v.name().to_ascii_lowercase().replace(' ', "");
        let openssl = match v {
            Version::Ssl3 => "sslv3",
            Version::Tls10 => "tlsv1",
            Version::Tls11 => "tlsv1.1",
            Version::Tls12 => "tlsv1.2",
            Version::Tls13 => "tlsv1.3",
        };
        n == ours || n == openssl || (*v == Version::Tls10 && n == "tlsv1.0")
    })
}

/// A group by its IANA name, case-insensitively (`X25519`), or OpenSSL's `prime256v1`.
fn group(name: &str) -> Option<u16> {
    let n = match name {
        "prime256v1" => "secp256r1",
        other => other,
    };
    registry::GROUPS
        .iter()
        .find(|(_, g)| g.eq_ignore_ascii_case(n))
        .map(|(c, _)| *c)
}

fn suite(name: &str, tls13: bool) -> Option<u16> {
    registry::suites()
        .iter()
        .find(|s| s.name == name && (s.kex == "TLS13") == tls13)
        .map(|s| s.code)
}

fn tls_params(t: RawTls) -> std::result::Result<TlsParams, ParseError> {
    let int = |v: &Option<Spanned<i64>>, key: &str, lo: i64, hi: i64| {
        v.as_ref()
            .map(|v| {
                let n = *v.get_ref();
                if (lo..=hi).contains(&n) {
                    Ok(u32::try_from(n).unwrap_or(0))
                } else {
                    Err(at(
                        v.span(),
                        format!("tls.{key}: must be between {lo} and {hi}, got {n}"),
                    ))
                }
            })
            .transpose()
    };
    Ok(TlsParams {
        protocols: names(
            t.protocols,
            "protocols",
            "a protocol version (SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)",
            &version,
        )?,
        suites: names(
            t.suites,
            "suites",
            "the IANA name of a TLS 1.2 or older cipher suite",
            &|n| suite(n, false),
        )?,
        tls13_suites: names(
            t.tls13_suites,
            "tls13_suites",
            "the IANA name of a TLS 1.3 cipher suite",
            &|n| suite(n, true),
        )?,
        server_order: t.server_order,
        groups: names(
            t.groups,
            "groups",
            "a named group secgate knows (IANA names, e.g. X25519MLKEM768, x25519, secp256r1)",
            &group,
        )?,
        certificate_types: names(
            t.certificate_types,
            "certificate_types",
            "a key type (ecdsa, rsa, ed25519, ed448)",
            &KeyType::parse,
        )?,
        certificate_curves: names(
            t.certificate_curves,
            "certificate_curves",
            "an EC curve name (prime256v1, secp384r1, secp521r1)",
            &|n| {
                cert::CURVE_NAMES
                    .iter()
                    .find(|c| **c == n)
                    .map(|c| (*c).to_string())
            },
        )?,
        certificate_signatures: names(
            t.certificate_signatures,
            "certificate_signatures",
            "a signature algorithm name (e.g. sha256WithRSAEncryption, ecdsa-with-SHA256)",
            &|n| cert::is_signature_name(n).then(|| n.to_string()),
        )?,
        rsa_min_bits: int(&t.rsa_min_bits, "rsa_min_bits", 512, 16384)?,
        max_cert_lifetime_days: int(&t.max_cert_lifetime_days, "max_cert_lifetime_days", 1, 3650)?,
    })
}

/// A version's sort key: dotted parts compared as numbers where they are (`5.10` > `5.7`).
fn version_key(v: Option<&str>) -> Vec<(u64, String)> {
    v.unwrap_or_default()
        .split('.')
        .map(|p| (p.parse::<u64>().unwrap_or(0), p.to_string()))
        .collect()
}

/// The shipped profiles, parsed (a parse error is a build defect: `tests/profiles.rs` fails).
static BUILTINS: LazyLock<std::result::Result<Vec<Arc<Profile>>, String>> = LazyLock::new(|| {
    let mut out: Vec<Arc<Profile>> = Vec::new();
    for (file, text) in SOURCES {
        let p = parse_with(text, &[]).map_err(|e| {
            let (line, col) = crate::config::line_col(text, e.span.start);
            format!("{file}:{line}:{col}: {}", e.message)
        })?;
        if out.iter().any(|o| o.spec() == p.spec()) {
            return Err(format!("{file}: {} is shipped twice", p.spec()));
        }
        out.push(Arc::new(p));
    }
    Ok(out)
});

/// Every shipped profile, in listing order (empty if one is malformed).
pub fn builtins() -> &'static [Arc<Profile>] {
    match &*BUILTINS {
        Ok(p) => p,
        Err(_) => &[],
    }
}

/// The parse error of a shipped profile, if any.
pub fn load_error() -> Option<&'static str> {
    BUILTINS.as_ref().err().map(String::as_str)
}

/// The `default` profile.
pub fn default_profile() -> Arc<Profile> {
    builtins()
        .iter()
        .find(|p| p.name == DEFAULT)
        .cloned()
        .unwrap_or_else(|| {
            Arc::new(Profile {
                name: DEFAULT.into(),
                version: Some("1".into()),
                description: String::new(),
                source: None,
                extends: None,
                file: None,
                rules: BTreeMap::new(),
                minimum: Vec::new(),
                tls: TlsParams::default(),
                headers: HeadersParams::default(),
            })
        })
}

/// The known names, for messages: `default, strict, mozilla-modern (6.0, 5.7), ...`.
pub fn known_names() -> String {
    known_names_of(builtins())
}

fn known_names_of(among: &[Arc<Profile>]) -> String {
    let mut names: Vec<(String, Vec<String>)> = Vec::new();
    for p in among {
        let v = p.version.clone().unwrap_or_default();
        match names.iter_mut().find(|(n, _)| *n == p.name) {
            Some((_, vs)) => vs.push(v),
            None => names.push((p.name.clone(), vec![v])),
        }
    }
    names
        .into_iter()
        .map(|(n, vs)| {
            if vs.len() > 1 {
                format!("{n} ({})", vs.join(", "))
            } else {
                n
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn find(spec: &str, among: &[Arc<Profile>]) -> std::result::Result<Arc<Profile>, String> {
    let spec = spec.trim();
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    let same: Vec<&Arc<Profile>> = among.iter().filter(|p| p.name == name).collect();
    let known = || {
        if among.is_empty() {
            "no profile is shipped to extend".to_string()
        } else {
            format!("known: {}", known_names_of(among))
        }
    };
    if same.is_empty() {
        return Err(format!("unknown profile '{spec}' ({})", known()));
    }
    match version {
        Some(v) => same
            .iter()
            .find(|p| p.version.as_deref() == Some(v))
            .map(|p| Arc::clone(p))
            .ok_or_else(|| {
                let vs: Vec<&str> = same.iter().filter_map(|p| p.version.as_deref()).collect();
                format!(
                    "profile '{name}' has no version '{v}' (versions: {})",
                    vs.join(", ")
                )
            }),
        None => same
            .iter()
            .max_by_key(|p| version_key(p.version.as_deref()))
            .map(|p| Arc::clone(p))
            .ok_or_else(|| format!("unknown profile '{spec}' ({})", known())),
    }
}

/// A shipped profile by `NAME` (its newest version) or `NAME@VERSION`.
pub fn resolve(spec: &str) -> std::result::Result<Arc<Profile>, String> {
    find(spec, builtins())
}

/// Parse a profile's text as a team's own (it may extend a shipped one).
pub fn parse(text: &str) -> std::result::Result<Profile, ParseError> {
    parse_with(text, builtins())
}

/// Read a team's own profile file; errors are `FILE:LINE:COLUMN: key: message`, and a file
/// that cannot be read names `flag`.
pub fn load_file(path: &Path, flag: &str) -> Result<Profile> {
    use std::io::Read;
    if path.is_dir() {
        return Err(Error::usage(
            flag,
            format!("{} is a directory", path.display()),
        ));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| Error::usage(flag, format!("{}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(FILE_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::usage(flag, format!("{}: {e}", path.display())))?;
    if bytes.len() as u64 > FILE_CAP {
        return Err(Error::usage(
            flag,
            format!("{} is larger than 1 MiB", path.display()),
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::usage(flag, format!("{}: not UTF-8 text", path.display())))?;
    let mut p = parse(&text).map_err(|e| {
        let (line, column) = crate::config::line_col(&text, e.span.start);
        Error::Config {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message,
        }
    })?;
    p.file = Some(path.to_path_buf());
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_the_newest_version_unless_one_is_given() {
        assert_eq!(
            resolve("mozilla-intermediate").unwrap().spec(),
            "mozilla-intermediate@6.0"
        );
        assert_eq!(
            resolve("mozilla-intermediate@5.7").unwrap().spec(),
            "mozilla-intermediate@5.7"
        );
        assert_eq!(resolve("mozilla-old").unwrap().spec(), "mozilla-old@5.7");
        let e = resolve("mozilla-old@6.0").unwrap_err();
        assert_eq!(
            e,
            "profile 'mozilla-old' has no version '6.0' (versions: 5.7)"
        );
        let e = resolve("nope").unwrap_err();
        assert!(
            e.starts_with(
                "unknown profile 'nope' (known: default, strict, mozilla-modern (6.0, 5.7)"
            ),
            "{e}"
        );
        assert!(version_key(Some("5.10")) > version_key(Some("5.7")));
    }

    #[test]
    fn floors_raise_and_explicit_severities_win() {
        let strict = resolve("strict").unwrap();
        assert_eq!(
            strict.severity("headers.xcto.missing", Severity::Low),
            Severity::Medium
        );
        assert_eq!(
            strict.severity("tls.cert.expired", Severity::Critical),
            Severity::Critical
        );
        assert_eq!(
            strict.severity("load.degradation", Severity::Low),
            Severity::Low
        );
        let old = resolve("mozilla-old").unwrap();
        assert_eq!(
            old.severity("tls.cipher.weak", Severity::High),
            Severity::Medium
        );
        assert!(!old.enabled("tls.protocol.tls10"));
    }

    #[test]
    fn extends_overlays_a_shipped_profile() {
        let p = parse(
            "name = \"acme\"\nextends = \"mozilla-intermediate@5.7\"\n[tls]\nmax_cert_lifetime_days = 90\n[rules.\"tls.cipher.cbc\"]\nenabled = false\n",
        )
        .unwrap();
        assert_eq!(p.extends.as_deref(), Some("mozilla-intermediate@5.7"));
        assert_eq!(p.tls.max_cert_lifetime_days, Some(90));
        assert_eq!(p.tls.rsa_min_bits, Some(2048));
        assert!(!p.enabled("tls.cipher.cbc"));
        assert_eq!(p.headers.hsts_min_max_age, Some(63_072_000));
    }

    #[test]
    fn errors_point_at_the_value() {
        let text = "name = \"x\"\n[tls]\nsuites = [\"TLS_NOPE\"]\n";
        let e = parse(text).unwrap_err();
        assert_eq!(crate::config::line_col(text, e.span.start), (3, 11));
        assert_eq!(
            e.message,
            "tls.suites: 'TLS_NOPE' is not the IANA name of a TLS 1.2 or older cipher suite"
        );
        let text = "name = \"x\"\n[rules.\"no.such\"]\nseverity = \"high\"\n";
        let e = parse(text).unwrap_err();
        assert_eq!(crate::config::line_col(text, e.span.start).0, 2);
        let e = parse("name = \"x\"\ncolour = 1\n").unwrap_err();
        assert!(e.message.contains("colour"), "{}", e.message);
    }
}
