//! The TOML configuration file: targets, per-target overrides, families, limits and policy.
//!
//! Unknown keys are errors, and every error names the file, the line and column, and the key.
//! Values are validated here with the same ranges as the command-line flags ([`limits`]).
//! See README.md for a complete, commented example (a test parses it).
//!
//! The file is read once into a spanned tree. The keys that families own (`[checks.FAMILY]`,
//! their legacy keys under `[scan]`, and their keys in `[[target]]` and `[[target.endpoint]]`
//! tables; see [`crate::options`]) are taken out of it and handed over with their positions;
//! the rest is the core's (engine knobs, policy, targets, endpoints), read with serde and
//! `deny_unknown_fields`, so a key nobody owns is an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::options::{EndpointOptions, FamilyOptions, Located};
use crate::target::{Origin, ResolveEntry, Target};

/// Ranges shared by the config file and the command line. Each check returns the message that
/// follows the key or flag name.
pub mod limits {
    use std::time::Duration;

    /// Timeout in seconds: 0.05 to 300.
    pub fn timeout(secs: f64) -> Result<Duration, String> {
        if secs.is_finite() && (0.05..=300.0).contains(&secs) {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(format!("must be between 0.05 and 300 seconds, got {secs}"))
        }
    }

    /// An integer within `lo..=hi`.
    pub fn range(value: i64, lo: i64, hi: i64) -> Result<i64, String> {
        if (lo..=hi).contains(&value) {
            Ok(value)
        } else {
            Err(format!("must be between {lo} and {hi}, got {value}"))
        }
    }

    /// A score threshold, 0 to 100.
    pub fn min_score(value: f64) -> Result<f64, String> {
        if value.is_finite() && (0.0..=100.0).contains(&value) {
            Ok(value)
        } else {
            Err(format!("must be between 0 and 100, got {value}"))
        }
    }

    /// Highest concurrency.
    pub const MAX_CONCURRENCY: i64 = 4096;
    /// Highest connections per host.
    pub const MAX_PER_HOST: i64 = 256;
    /// Most redirects followed.
    pub const MAX_REDIRECTS: i64 = 20;

    /// A DNS server: `ADDR:PORT`, `[V6]:PORT`, or a bare address (port 53).
    pub fn dns_server(value: &str) -> Result<std::net::SocketAddr, String> {
        let v = value.trim();
        if let Ok(sock) = v.parse::<std::net::SocketAddr>() {
            return if sock.port() == 0 {
                Err(format!("'{value}': port must be 1-65535"))
            } else {
                Ok(sock)
            };
        }
        v.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map(|ip| std::net::SocketAddr::new(ip, 53))
            .map_err(|_| format!("'{value}': expected ADDR:PORT, e.g. 127.0.0.53:53"))
    }
}

/// A number that may be written as an integer or a float in TOML.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    #[allow(clippy::cast_precision_loss, reason = "config values are small")]
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    scan: ScanSection,
    #[serde(default)]
    policy: PolicySection,
    #[serde(default, rename = "target")]
    targets: Vec<Spanned<TargetEntry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanSection {
    checks: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<Number>>,
    concurrency: Option<Spanned<i64>>,
    per_host: Option<Spanned<i64>>,
    max_redirects: Option<Spanned<i64>>,
    http_port: Option<Spanned<i64>>,
    ca_file: Option<Spanned<String>>,
    insecure: Option<bool>,
    #[serde(default)]
    resolve: Vec<Spanned<String>>,
    dns_server: Option<Spanned<String>>,
    allow_large_range: Option<bool>,
    max_requests: Option<Spanned<i64>>,
    suppressions: Option<Spanned<String>>,
    chain: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    min_score: Option<Spanned<Number>>,
    max_critical: Option<Spanned<i64>>,
    max_high: Option<Spanned<i64>>,
    max_medium: Option<Spanned<i64>>,
    max_low: Option<Spanned<i64>>,
    fail_on: Option<Spanned<String>>,
    gate_on: Option<Spanned<String>>,
    fail_on_stale: Option<bool>,
    allow_permanent_suppressions: Option<bool>,
    max_suppression_days: Option<Spanned<i64>>,
    compliance: Option<Spanned<Vec<String>>>,
    profile: Option<Spanned<String>>,
    profile_file: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    url: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    checks: Option<Spanned<Vec<String>>>,
    http_port: Option<Spanned<i64>>,
    #[serde(default)]
    resolve: Vec<Spanned<String>>,
    #[serde(default, rename = "endpoint")]
    endpoints: Vec<Spanned<EndpointEntry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointEntry {
    name: Option<Spanned<String>>,
    role: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    header_env: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    body: Option<String>,
    body_format: Option<Spanned<String>>,
    username: Option<String>,
    username_field: Option<String>,
    password_field: Option<String>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    success_status: Option<Vec<Spanned<i64>>>,
    success_contains: Option<String>,
    failure_status: Option<Vec<Spanned<i64>>>,
    failure_contains: Option<String>,
    success_location: Option<String>,
    failure_location: Option<String>,
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    expired_token_env: Option<Spanned<String>>,
    expired_token_file: Option<Spanned<String>>,
}

/// A loaded configuration. `None` means "not set here" (the command line or a default decides).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Targets, with their origin line.
    pub targets: Vec<Target>,
    /// `scan.checks`.
    pub families: Option<Vec<&'static str>>,
    /// `scan.timeout`.
    pub timeout: Option<Duration>,
    /// `scan.concurrency`.
    pub concurrency: Option<usize>,
    /// `scan.per_host`.
    pub per_host: Option<usize>,
    /// `scan.max_redirects`.
    pub max_redirects: Option<u32>,
    /// `scan.http_port`.
    pub http_port: Option<u16>,
    /// `scan.ca_file`, relative to the config file's directory.
    pub ca_file: Option<PathBuf>,
    /// The certificates read from `scan.ca_file`.
    pub ca_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// `scan.insecure`.
    pub insecure: Option<bool>,
    /// `scan.resolve`.
    pub resolve: Vec<ResolveEntry>,
    /// `policy.min_score`.
    pub min_score: Option<f64>,
    /// `policy.max_critical`.
    pub max_critical: Option<u32>,
    /// `scan.dns_server`.
    pub dns_server: Option<std::net::SocketAddr>,
    /// `scan.allow_large_range`.
    pub allow_large_range: Option<bool>,
    /// `scan.max_requests`.
    pub max_requests: Option<u32>,
    /// `scan.chain`: the families that audit what the port sweep discovers (empty: none).
    pub chain: Option<Vec<&'static str>>,
    /// `scan.suppressions`, relative to the config file's directory (with its position).
    pub suppressions: Option<(PathBuf, usize, usize)>,
    /// The other gate keys of `[policy]`.
    pub policy: crate::policy::FilePolicy,
    /// `policy.compliance`: the compliance views every report carries.
    pub compliance: Vec<&'static str>,
    /// `policy.profile` or `policy.profile_file`, resolved.
    pub profile: Option<std::sync::Arc<crate::profile::Profile>>,
    /// The text of the file (positions of family values point into it).
    pub text: String,
    /// Family keys at scan level (`[checks.F]` and legacy `[scan]` keys), by family.
    pub family_scan: std::collections::BTreeMap<&'static str, RawTable>,
    /// Family keys of each target (in `targets` order), by family.
    pub family_targets: Vec<std::collections::BTreeMap<&'static str, RawTarget>>,
    /// Every family value with the key users know it by (for error messages).
    pub located: Vec<Located>,
}

/// One key of a table handed to a family: the key and where its key and value are.
#[derive(Clone, Debug)]
pub struct RawEntry {
    /// The key.
    pub key: String,
    /// Where the key is.
    pub key_span: std::ops::Range<usize>,
    /// Where the value is.
    pub span: std::ops::Range<usize>,
}

/// Keys of one table handed to a family, and the table's span.
#[derive(Clone, Debug, Default)]
pub struct RawTable {
    /// The entries.
    pub entries: Vec<RawEntry>,
    /// The table's span.
    pub span: std::ops::Range<usize>,
}

impl RawTable {
    /// Take `key` (its key at `key_span`, its value at `span`) into this table, and note where
    /// it was written (`at`, e.g. `target[0].ports`) for errors about its value.
    fn take(
        &mut self,
        located: &mut Vec<Located>,
        at: String,
        key: &str,
        key_span: std::ops::Range<usize>,
        span: std::ops::Range<usize>,
    ) {
        located.push(Located {
            key: at,
            span: span.clone(),
            flag: false,
        });
        self.entries.push(RawEntry {
            key: key.to_string(),
            key_span,
            span,
        });
    }
}

impl RawTable {
    /// As a spanned TOML table of the values in `text` (the config text), each value read
    /// again from its place so that every position stays the file's.
    pub fn value<'a>(&self, text: &'a str) -> Spanned<DeValue<'a>> {
        let entries = self
            .entries
            .iter()
            .map(|e| {
                let v = text
                    .get(e.span.clone())
                    .and_then(|t| DeValue::parse(t).ok())
                    .map_or_else(
                        || Spanned::new(e.span.clone(), DeValue::Boolean(false)),
                        |v| crate::options::shift(v, e.span.start),
                    );
                (e.key.clone(), e.key_span.clone(), v)
            })
            .collect();
        crate::options::table(entries, self.span.clone())
    }
}

/// One target's keys of a family, and its endpoints' keys.
#[derive(Clone, Debug, Default)]
pub struct RawTarget {
    /// `[[target]]` keys.
    pub table: RawTable,
    /// `[[target.endpoint]]` keys, one per endpoint in order.
    pub endpoints: Vec<EndpointOptions<RawTable>>,
}

impl Clone for EndpointOptions<RawTable> {
    fn clone(&self) -> Self {
        EndpointOptions {
            name: self.name.clone(),
            role: self.role,
            span: self.span.clone(),
            raw: self.raw.clone(),
        }
    }
}

use toml::de::{DeTable, DeValue};

impl RawTarget {
    /// Whether the target set none of the family's keys.
    pub fn is_empty(&self) -> bool {
        self.table.entries.is_empty() && self.endpoints.iter().all(|e| e.raw.entries.is_empty())
    }
}

/// Read and validate a config file; `families` say which keys they own.
pub fn load(path: &Path, families: &[&dyn FamilyOptions]) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text, families)
}

/// The dotted key whose value starts at `offset` (`scan.timeout`, `target.endpoint.samples`):
/// the key before `=` on that line, under the last table header above it. None when `offset`
/// is not in a value.
fn key_of_value_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let before = text.get(line_start..offset)?;
    let (key, _) = before.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('#') || key.starts_with('[') {
        return None;
    }
    let table = text
        .get(..line_start)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|h| h.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

/// The table header on the line at `offset` (`target.endpoint` for `[[target.endpoint]]`), and
/// whether it is an array of tables. None when that line is not a header.
fn table_header_at(text: &str, offset: usize) -> Option<(String, bool)> {
    let offset = offset.min(text.len());
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?.trim();
    let array = line.starts_with("[[");
    let inner = line.strip_prefix('[')?;
    let end = inner.find(']')?;
    let name: String = inner
        .get(..end)?
        .trim_start_matches('[')
        .split('.')
        .map(|p| p.trim().trim_matches('"'))
        .collect::<Vec<_>>()
        .join(".");
    (!name.is_empty()).then_some((name, array))
}

/// The first `[[PARENT.CHILD]]` header above `offset`, with the offset of its name: a child
/// table written before any of its parents.
fn early_child_header(text: &str, offset: usize, parent: &str) -> Option<(usize, String)> {
    let mut at = 0;
    for line in text.get(..offset.min(text.len()))?.split_inclusive('\n') {
        if let Some((name, true)) = table_header_at(text, at)
            && name.starts_with(&format!("{parent}."))
        {
            let indent = line.len() - line.trim_start().len();
            return Some((at + indent + 2, name));
        }
        at += line.len();
    }
    None
}

/// Validate config text (`path` is used in messages and to resolve relative paths).
pub fn parse(path: &Path, text: &str, owners: &[&dyn FamilyOptions]) -> Result<Config> {
    let err = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        Error::Config {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let serde_err = |e: toml::de::Error| {
        let span = e.span().unwrap_or(0..0);
        let message = crate::options::tidy(e.message());
        // serde names the expected type but not the key; a value's key is on its line.
        match key_of_value_at(text, span.start) {
            Some(key) => err(span, format!("{key}: {message}")),
            None => match table_header_at(text, span.start) {
                Some((header, array))
                    if message.starts_with("invalid type: map, expected a sequence") =>
                {
                    let why = match header.split_once('.') {
                        Some((parent, _)) if array => {
                            format!("[[{header}]] must come after the [[{parent}]] it belongs to")
                        }
                        _ => format!("write [[{header}]] (an array of tables), not [{header}]"),
                    };
                    err(span, format!("{header}: {why}"))
                }
                // `[[target.endpoint]]` above the first `[[target]]` made `target` a table.
                Some((header, true)) if message.starts_with("duplicate key") => {
                    match early_child_header(text, span.start, &header) {
                        Some((at, child)) => err(
                            at..at,
                            format!(
                                "{child}: [[{child}]] must come after the [[{header}]] it belongs to"
                            ),
                        ),
                        None => err(span, format!("{header}: {message}")),
                    }
                }
                Some((header, _)) => err(span, format!("{header}: {message}")),
                None => err(span, message),
            },
        }
    };
    let mut tree = DeTable::parse(text).map_err(serde_err)?;
    let taken = take_family_keys(&mut tree, owners, &err)?;
    let file = FileConfig::deserialize(toml::de::Deserializer::from(tree)).map_err(serde_err)?;

    let mut config = Config {
        path: path.to_path_buf(),
        text: text.to_string(),
        family_scan: taken.scan,
        family_targets: taken.targets,
        located: taken.located,
        ..Config::default()
    };
    let names: Vec<&'static str> = owners.iter().map(|o| o.family()).collect();
    let families = |list: &Spanned<Vec<String>>| parse_families(&names, list.get_ref());
    let scan = file.scan;
    if let Some(checks) = scan.checks {
        config.families =
            Some(families(&checks).map_err(|m| err(checks.span(), format!("scan.checks: {m}")))?);
    }
    if let Some(t) = scan.timeout {
        config.timeout = Some(
            limits::timeout(t.get_ref().as_f64())
                .map_err(|m| err(t.span(), format!("scan.timeout: {m}")))?,
        );
    }
    let int = |v: &Spanned<i64>, key: &str, lo: i64, hi: i64| {
        limits::range(*v.get_ref(), lo, hi).map_err(|m| err(v.span(), format!("{key}: {m}")))
    };
    if let Some(v) = &scan.concurrency {
        config.concurrency =
            usize::try_from(int(v, "scan.concurrency", 1, limits::MAX_CONCURRENCY)?).ok();
    }
    if let Some(v) = &scan.per_host {
        config.per_host = usize::try_from(int(v, "scan.per_host", 1, limits::MAX_PER_HOST)?).ok();
    }
    if let Some(v) = &scan.max_redirects {
        config.max_redirects =
            u32::try_from(int(v, "scan.max_redirects", 0, limits::MAX_REDIRECTS)?).ok();
    }
    if let Some(v) = &scan.http_port {
        config.http_port = u16::try_from(int(v, "scan.http_port", 1, 65535)?).ok();
    }
    if let Some(ca) = scan.ca_file {
        let p = PathBuf::from(ca.get_ref());
        let p = if p.is_relative() {
            path.parent().unwrap_or(Path::new(".")).join(p)
        } else {
            p
        };
        config.ca_certs = crate::engine::net::read_ca_file(&p)
            .map_err(|m| err(ca.span(), format!("scan.ca_file: {m}")))?;
        config.ca_file = Some(p);
    }
    config.insecure = scan.insecure;
    config.resolve = resolve_entries(&scan.resolve, "scan.resolve", &err)?;
    if let Some(d) = &scan.dns_server {
        config.dns_server = Some(
            limits::dns_server(d.get_ref())
                .map_err(|m| err(d.span(), format!("scan.dns_server: {m}")))?,
        );
    }
    config.allow_large_range = scan.allow_large_range;
    if let Some(v) = &scan.max_requests {
        config.max_requests = u32::try_from(int(v, "scan.max_requests", 1, 100_000_000)?).ok();
    }
    if let Some(list) = &scan.chain {
        config.chain = Some(
            crate::engine::chain::parse(list.get_ref())
                .map_err(|m| err(list.span(), format!("scan.chain: {m}")))?,
        );
    }

    if let Some(v) = &file.policy.min_score {
        config.min_score = Some(
            limits::min_score(v.get_ref().as_f64())
                .map_err(|m| err(v.span(), format!("policy.min_score: {m}")))?,
        );
    }
    if let Some(v) = &file.policy.max_critical {
        config.max_critical = u32::try_from(int(v, "policy.max_critical", 0, 1_000_000)?).ok();
    }
    let p = &file.policy;
    let limit = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<u32>> {
        v.as_ref()
            .map(|v| int(v, key, 0, 1_000_000).map(|n| u32::try_from(n).unwrap_or(0)))
            .transpose()
    };
    config.policy.max_high = limit(&p.max_high, "policy.max_high")?;
    config.policy.max_medium = limit(&p.max_medium, "policy.max_medium")?;
    config.policy.max_low = limit(&p.max_low, "policy.max_low")?;
    config.policy.max_suppression_days = p
        .max_suppression_days
        .as_ref()
        .map(|v| {
            int(v, "policy.max_suppression_days", 1, 3650).map(|n| u32::try_from(n).unwrap_or(1))
        })
        .transpose()?;
    if let Some(v) = &p.fail_on {
        config.policy.fail_on = Some(
            crate::policy::parse_severity(v.get_ref())
                .map_err(|m| err(v.span(), format!("policy.fail_on: {m}")))?,
        );
    }
    if let Some(v) = &p.gate_on {
        config.policy.gate_on = Some(
            crate::policy::GateOn::parse(v.get_ref())
                .map_err(|m| err(v.span(), format!("policy.gate_on: {m}")))?,
        );
    }
    if let Some(v) = &p.compliance {
        config.compliance = crate::compliance::parse_names(v.get_ref())
            .map_err(|m| err(v.span(), format!("policy.compliance: {m}")))?;
    }
    config.policy.fail_on_stale = p.fail_on_stale;
    config.policy.allow_permanent_suppressions = p.allow_permanent_suppressions;
    match (&p.profile, &p.profile_file) {
        (Some(_), Some(f)) => {
            return Err(err(
                f.span(),
                "policy.profile_file: set policy.profile or policy.profile_file, not both".into(),
            ));
        }
        (Some(name), None) => {
            config.profile = Some(
                crate::profile::resolve(name.get_ref())
                    .map_err(|m| err(name.span(), format!("policy.profile: {m}")))?,
            );
        }
        (None, Some(f)) => {
            let file = PathBuf::from(f.get_ref());
            let file = if file.is_relative() {
                path.parent().unwrap_or(Path::new(".")).join(file)
            } else {
                file
            };
            let loaded =
                crate::profile::load_file(&file, "policy.profile_file").map_err(|e| match e {
                    Error::Usage(m) => err(f.span(), m),
                    other => other,
                })?;
            config.profile = Some(std::sync::Arc::new(loaded));
        }
        (None, None) => {}
    }
    if let Some(v) = &scan.suppressions {
        let f = PathBuf::from(v.get_ref());
        let f = if f.is_relative() {
            path.parent().unwrap_or(Path::new(".")).join(f)
        } else {
            f
        };
        let (line, column) = line_col(text, v.span().start);
        config.suppressions = Some((f, line, column));
    }

    let lines = Lines::new(text);
    for (n, entry) in file.targets.iter().enumerate() {
        let key = format!("target[{n}]");
        let e = entry.get_ref();
        let (value, parsed) = match (&e.url, &e.host) {
            (Some(url), None) => (
                url,
                Target::parse_url(url.get_ref()).map_err(|m| format!("{key}.url: {m}")),
            ),
            (None, Some(host)) => (
                host,
                Target::parse_host(host.get_ref()).map_err(|m| format!("{key}.host: {m}")),
            ),
            (Some(_), Some(host)) => {
                return Err(err(
                    host.span(),
                    format!("{key}: set either url or host, not both"),
                ));
            }
            (None, None) => return Err(err(entry.span(), format!("{key}: needs a url or a host"))),
        };
        let mut target = parsed.map_err(|m| err(value.span(), m))?;
        target.origin = Some(Origin {
            file: path.to_path_buf(),
            line: lines.line(value.span().start),
        });
        if let Some(checks) = &e.checks {
            target.families = Some(
                families(checks).map_err(|m| err(checks.span(), format!("{key}.checks: {m}")))?,
            );
        }
        if let Some(v) = &e.http_port {
            target.http_port = u16::try_from(int(v, &format!("{key}.http_port"), 1, 65535)?).ok();
        }
        target.resolve = resolve_entries(&e.resolve, &format!("{key}.resolve"), &err)?;
        for (m, ep) in e.endpoints.iter().enumerate() {
            let endpoint = endpoint(ep, &format!("{key}.endpoint[{m}]"), path, &err)?;
            if target.endpoints.iter().any(|x| {
                x.method == endpoint.method && x.path == endpoint.path && x.role == endpoint.role
            }) {
                return Err(err(
                    ep.span(),
                    format!(
                        "{key}.endpoint[{m}]: the same route ({} {}) is already configured with this role",
                        endpoint.method, endpoint.path
                    ),
                ));
            }
            if target.endpoints.iter().any(|x| x.name == endpoint.name) {
                return Err(err(
                    ep.span(),
                    format!(
                        "{key}.endpoint[{m}]: duplicate endpoint name '{}'",
                        endpoint.name
                    ),
                ));
            }
            target.endpoints.push(endpoint);
        }
        config.targets.push(target);
    }
    Ok(config)
}

type ErrFn<'a> = &'a dyn Fn(std::ops::Range<usize>, String) -> Error;

/// Validate one `[[target.endpoint]]` table.
fn endpoint(
    entry: &Spanned<EndpointEntry>,
    key: &str,
    file: &Path,
    err: ErrFn<'_>,
) -> Result<Endpoint> {
    use crate::endpoint::{BodyFormat, Role, SecretRef, SecretSource};
    let e = entry.get_ref();
    let need = |v: &Option<Spanned<String>>, name: &str| -> Result<Spanned<String>> {
        v.clone()
            .ok_or_else(|| err(entry.span(), format!("{key}: missing key `{name}`")))
    };
    let role_s = need(&e.role, "role")?;
    let role = Role::parse(role_s.get_ref())
        .map_err(|m| err(role_s.span(), format!("{key}.role: {m}")))?;
    let path_s = need(&e.path, "path")?;
    // `//host/x` and `/\host/x` are network-path references: joined to the target they point at
    // another host, which would receive the credentials.
    let p = path_s.get_ref();
    if !p.starts_with('/')
        || p.starts_with("//")
        || p.starts_with("/\\")
        || p.contains(['\r', '\n', '#'])
    {
        return Err(err(
            path_s.span(),
            format!(
                "{key}.path: must be a path on the target's own origin, starting with a single '/'"
            ),
        ));
    }
    let name = match &e.name {
        Some(n) if !n.get_ref().trim().is_empty() => n.get_ref().clone(),
        Some(n) => return Err(err(n.span(), format!("{key}.name: must not be empty"))),
        None => path_s.get_ref().clone(),
    };
    let key = format!("{key}({name})");
    let mut ep = Endpoint::new(&name, role, path_s.get_ref());
    if let Some(m) = &e.method {
        ep.method = reqwest::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                err(
                    m.span(),
                    format!("{key}.method: invalid HTTP method '{}'", m.get_ref()),
                )
            })?;
        // Probes repeat requests; a method that changes or deletes state is never sent.
        if matches!(
            ep.method.as_str(),
            "PUT" | "PATCH" | "DELETE" | "CONNECT" | "TRACE"
        ) {
            return Err(err(
                m.span(),
                format!(
                    "{key}.method: {} is not allowed: secgate repeats requests and never sends methods that change or delete state",
                    ep.method
                ),
            ));
        }
    }
    if let Some(headers) = &e.headers {
        for (h, v) in headers.get_ref() {
            if reqwest::header::HeaderName::try_from(h.as_str()).is_err()
                || reqwest::header::HeaderValue::try_from(v.as_str()).is_err()
            {
                return Err(err(
                    headers.span(),
                    format!("{key}.headers: invalid header '{h}'"),
                ));
            }
            ep.headers.push((h.clone(), v.clone()));
        }
    }
    let base = file.parent().unwrap_or(Path::new("."));
    // A secret is read when the scan starts; its key carries the file position for that error.
    let located = |span: std::ops::Range<usize>, name: String| match err(span, String::new()) {
        Error::Config {
            path, line, column, ..
        } => format!("{}:{line}:{column}: {name}", path.display()),
        _ => name,
    };
    let secret = |env: &Option<Spanned<String>>,
                  path: &Option<Spanned<String>>,
                  what: &str|
     -> Result<Option<SecretRef>> {
        match (env, path) {
            (Some(_), Some(p)) => Err(err(
                p.span(),
                format!("{key}: set {what}_env or {what}_file, not both"),
            )),
            (Some(v), None) => {
                let name = v.get_ref();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(err(
                        v.span(),
                        format!("{key}.{what}_env: '{name}' is not an environment variable name"),
                    ));
                }
                Ok(Some(SecretRef {
                    key: located(v.span(), format!("{key}.{what}_env")),
                    source: SecretSource::Env(name.clone()),
                    value: None,
                }))
            }
            (None, Some(p)) => Ok(Some(SecretRef {
                key: located(p.span(), format!("{key}.{what}_file")),
                source: SecretSource::File(base.join(p.get_ref())),
                value: None,
            })),
            (None, None) => Ok(None),
        }
    };
    if let Some(map) = &e.header_env {
        for (header, var) in map.get_ref() {
            if reqwest::header::HeaderName::try_from(header.as_str()).is_err() {
                return Err(err(
                    map.span(),
                    format!("{key}.header_env: invalid header name '{header}'"),
                ));
            }
            let spanned = Some(Spanned::new(map.span(), var.clone()));
            if let Some(r) = secret(&spanned, &None, "header")? {
                ep.secret_headers.push((header.clone(), r));
            }
        }
    }
    if let Some(body) = &e.body {
        // The template decides whose account the probes touch: it must name both fields once,
        // or a burst of wrong passwords could land on an account written into it.
        if body.matches("{{username}}").count() != 1 || body.matches("{{password}}").count() != 1 {
            return Err(err(
                entry.span(),
                format!(
                    "{key}.body: the template must contain {{{{username}}}} and {{{{password}}}} exactly once each"
                ),
            ));
        }
    }
    ep.body = e.body.clone();
    if let Some(f) = &e.body_format {
        ep.body_format = match f.get_ref().as_str() {
            "form" => BodyFormat::Form,
            "json" => BodyFormat::Json,
            other => {
                return Err(err(
                    f.span(),
                    format!("{key}.body_format: unknown format '{other}' (form, json)"),
                ));
            }
        };
    }
    ep.username = e.username.clone();
    if let Some(f) = &e.username_field {
        ep.username_field = f.clone();
    }
    if let Some(f) = &e.password_field {
        ep.password_field = f.clone();
    }
    ep.password = secret(&e.password_env, &e.password_file, "password")?;
    ep.token = secret(&e.token_env, &e.token_file, "token")?;
    ep.expired_token = secret(&e.expired_token_env, &e.expired_token_file, "expired_token")?;
    let statuses = |list: &Option<Vec<Spanned<i64>>>, name: &str| -> Result<Vec<u16>> {
        list.iter()
            .flatten()
            .map(|s| {
                limits::range(*s.get_ref(), 100, 599)
                    .map(|v| u16::try_from(v).unwrap_or(0))
                    .map_err(|m| err(s.span(), format!("{key}.{name}: {m}")))
            })
            .collect()
    };
    ep.success.status = statuses(&e.success_status, "success_status")?;
    ep.failure.status = statuses(&e.failure_status, "failure_status")?;
    if let Some(both) = ep
        .success
        .status
        .iter()
        .find(|s| ep.failure.status.contains(s))
    {
        return Err(err(
            entry.span(),
            format!(
                "{key}: status {both} is in both success_status and failure_status; tell them apart with success_contains / failure_contains or *_location"
            ),
        ));
    }
    ep.success.contains = e.success_contains.clone();
    ep.failure.contains = e.failure_contains.clone();
    ep.success.location = e.success_location.clone();
    ep.failure.location = e.failure_location.clone();
    // Keys that mean nothing for the role are mistakes, not options.
    let login_only = [
        ("username", e.username.is_some()),
        ("username_field", e.username_field.is_some()),
        ("password_field", e.password_field.is_some()),
        ("password_env/password_file", ep.password.is_some()),
        ("body", e.body.is_some()),
        ("body_format", e.body_format.is_some()),
        ("success_status", e.success_status.is_some()),
        ("failure_status", e.failure_status.is_some()),
        ("success_contains", e.success_contains.is_some()),
        ("failure_contains", e.failure_contains.is_some()),
        ("success_location", e.success_location.is_some()),
        ("failure_location", e.failure_location.is_some()),
    ];
    let jwt_only = [
        ("token_env/token_file", ep.token.is_some()),
        (
            "expired_token_env/expired_token_file",
            ep.expired_token.is_some(),
        ),
    ];
    let misplaced = login_only
        .iter()
        .filter(|_| role != Role::Login)
        .chain(jwt_only.iter().filter(|_| role != Role::Jwt))
        .find(|(_, set)| *set);
    if let Some((name, _)) = misplaced {
        return Err(err(
            entry.span(),
            format!(
                "{key}: `{name}` does not apply to a {} endpoint",
                role.as_str()
            ),
        ));
    }
    match role {
        Role::Login if ep.username.is_none() => {
            return Err(err(
                entry.span(),
                format!("{key}: a login endpoint needs `username`"),
            ));
        }
        Role::Login if ep.password.is_none() => {
            return Err(err(
                entry.span(),
                format!("{key}: a login endpoint needs `password_env` or `password_file`"),
            ));
        }
        Role::Jwt if ep.token.is_none() => {
            return Err(err(
                entry.span(),
                format!("{key}: a jwt endpoint needs `token_env` or `token_file`"),
            ));
        }
        _ => {}
    }
    Ok(ep)
}

/// Parse a list of family names against the known ones (errors name the bad entry).
pub fn parse_families(
    known: &[&'static str],
    list: &[String],
) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for name in list
        .iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let Some(f) = known.iter().find(|k| **k == name) else {
            return Err(format!(
                "unknown family '{name}' (available: {})",
                known.join(", ")
            ));
        };
        if !out.contains(f) {
            out.push(*f);
        }
    }
    if out.is_empty() {
        return Err(format!("no family given (available: {})", known.join(", ")));
    }
    Ok(out)
}

/// Family keys taken out of the file.
struct Taken {
    scan: std::collections::BTreeMap<&'static str, RawTable>,
    targets: Vec<std::collections::BTreeMap<&'static str, RawTarget>>,
    located: Vec<Located>,
}

/// Take every key a family owns out of `tree` (see the module docs), with its position.
fn take_family_keys(
    tree: &mut Spanned<DeTable<'_>>,
    owners: &[&dyn FamilyOptions],
    err: &dyn Fn(std::ops::Range<usize>, String) -> Error,
) -> Result<Taken> {
    use std::collections::BTreeMap;
    let mut taken = Taken {
        scan: BTreeMap::new(),
        targets: Vec::new(),
        located: Vec::new(),
    };
    let root = tree.get_mut();
    // [checks.FAMILY] tables.
    if let Some(checks) = root.remove("checks") {
        let span = checks.span();
        let DeValue::Table(families) = checks.into_inner() else {
            return Err(err(
                span,
                "checks: expected tables [checks.FAMILY] (the family list is scan.checks)".into(),
            ));
        };
        for (name, value) in families {
            let Some(owner) = owners
                .iter()
                .find(|o| o.family() == name.get_ref().as_ref())
            else {
                let known: Vec<&str> = owners.iter().map(|o| o.family()).collect();
                return Err(err(
                    name.span(),
                    format!(
                        "checks.{}: unknown family (available: {})",
                        name.get_ref(),
                        known.join(", ")
                    ),
                ));
            };
            let family = owner.family();
            let tspan = value.span();
            let DeValue::Table(t) = value.into_inner() else {
                return Err(err(tspan, format!("checks.{family}: expected a table")));
            };
            let raw = taken.scan.entry(family).or_default();
            raw.span = tspan;
            for (k, v) in t {
                taken.located.push(Located {
                    key: format!("checks.{family}.{}", k.get_ref()),
                    span: v.span(),
                    flag: false,
                });
                taken.located.push(Located {
                    key: format!("checks.{family}.{}", k.get_ref()),
                    span: k.span(),
                    flag: false,
                });
                raw.entries.push(RawEntry {
                    key: k.get_ref().to_string(),
                    key_span: k.span(),
                    span: v.span(),
                });
            }
        }
    }
    // Legacy keys under [scan].
    if let Some(scan) = root.get_mut("scan") {
        let span = scan.span();
        if let DeValue::Table(t) = scan.get_mut() {
            for owner in owners {
                for key in owner.options().legacy_scan_keys() {
                    let Some((k, v)) = t.remove_entry(*key) else {
                        continue;
                    };
                    let raw = taken.scan.entry(owner.family()).or_default();
                    if raw.entries.iter().any(|e| e.key == *key) {
                        return Err(err(
                            k.span(),
                            format!(
                                "scan.{key}: also set as checks.{}.{key}; keep one",
                                owner.family()
                            ),
                        ));
                    }
                    if raw.entries.is_empty() {
                        raw.span = span.clone();
                    }
                    raw.take(
                        &mut taken.located,
                        format!("scan.{key}"),
                        key,
                        k.span(),
                        v.span(),
                    );
                }
            }
        }
    }
    // Target and endpoint keys.
    if let Some(targets) = root.get_mut("target")
        && let DeValue::Array(list) = targets.get_mut()
    {
        for (n, entry) in list.iter_mut().enumerate() {
            let mut mine: BTreeMap<&'static str, RawTarget> = BTreeMap::new();
            let tspan = entry.span();
            if let DeValue::Table(t) = entry.get_mut() {
                for owner in owners {
                    let raw = mine.entry(owner.family()).or_default();
                    raw.table.span = tspan.clone();
                    for key in owner.options().target_keys() {
                        let Some((k, v)) =
                            t.get_key_value(*key).map(|(k, v)| (k.clone(), v.clone()))
                        else {
                            continue;
                        };
                        raw.table.take(
                            &mut taken.located,
                            format!("target[{n}].{key}"),
                            key,
                            k.span(),
                            v.span(),
                        );
                    }
                }
                // A key several families own (none today) is handed to each; remove after.
                for owner in owners {
                    for key in owner.options().target_keys() {
                        t.remove(*key);
                    }
                }
                if let Some(eps) = t.get_mut("endpoint")
                    && let DeValue::Array(eps) = eps.get_mut()
                {
                    for (m, ep) in eps.iter_mut().enumerate() {
                        let espan = ep.span();
                        let DeValue::Table(et) = ep.get_mut() else {
                            continue;
                        };
                        let name = et
                            .get("name")
                            .and_then(|v| v.get_ref().as_str().map(str::to_string))
                            .or_else(|| {
                                et.get("path")
                                    .and_then(|v| v.get_ref().as_str().map(str::to_string))
                            })
                            .unwrap_or_default();
                        let role = et
                            .get("role")
                            .and_then(|v| v.get_ref().as_str())
                            .and_then(|r| crate::endpoint::Role::parse(r).ok())
                            .unwrap_or(crate::endpoint::Role::Api);
                        for owner in owners {
                            let mut table = RawTable {
                                entries: Vec::new(),
                                span: espan.clone(),
                            };
                            for key in owner.options().endpoint_keys() {
                                let Some((k, v)) = et.remove_entry(*key) else {
                                    continue;
                                };
                                table.take(
                                    &mut taken.located,
                                    format!("target[{n}].endpoint[{m}]({name}).{key}"),
                                    key,
                                    k.span(),
                                    v.span(),
                                );
                            }
                            let raw = mine.entry(owner.family()).or_default();
                            raw.endpoints.push(EndpointOptions {
                                name: name.clone(),
                                role,
                                span: espan.clone(),
                                raw: table,
                            });
                        }
                    }
                }
            }
            taken.targets.push(mine);
        }
    }
    Ok(taken)
}

fn resolve_entries(
    list: &[Spanned<String>],
    key: &str,
    err: &dyn Fn(std::ops::Range<usize>, String) -> Error,
) -> Result<Vec<ResolveEntry>> {
    list.iter()
        .map(|s| ResolveEntry::parse(s.get_ref()).map_err(|m| err(s.span(), format!("{key}: {m}"))))
        .collect()
}

/// The line of every byte offset of one text, found by binary search over its newlines
/// (a config of 5,000 targets asks for 5,000 lines: counting from the start each time made
/// reading it quadratic).
pub struct Lines(Vec<usize>);

impl Lines {
    /// Index the newlines of `text`.
    pub fn new(text: &str) -> Lines {
        Lines(text.match_indices('\n').map(|(i, _)| i).collect())
    }

    /// The 1-based line of byte `offset`, as [`line_col`] counts it.
    pub fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse and validate as a scan would: the core keys, then every family's options.
    fn parse_str(text: &str) -> Result<Config> {
        let owners = crate::family_options();
        let c = parse(Path::new("secgate.toml"), text, &owners)?;
        let scan = crate::plan::scan_options(Some(&c), &Vec::new(), &owners)?;
        for n in 0..c.targets.len() {
            crate::plan::target_options(Some(&c), Some(n), &owners, &scan)?;
        }
        Ok(c)
    }

    #[test]
    fn lines_agree_with_line_col() {
        let text = "a\nbb\n\nccc\n";
        let lines = Lines::new(text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(
                lines.line(offset),
                line_col(text, offset).0,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn parses_a_full_file() {
        let c = parse_str(
            r#"
[scan]
checks = ["headers"]
timeout = 2
concurrency = 10
resolve = ["shop.test:443:127.0.0.1"]

[policy]
min_score = 90.5
max_critical = 1

[[target]]
url = "https://shop.test/"
http_port = 8080

[[target]]
host = "db.test:5432"
"#,
        )
        .unwrap();
        assert_eq!(c.timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.min_score, Some(90.5));
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.targets[0].origin.as_ref().unwrap().line, 13);
        assert_eq!(c.targets[0].http_port, Some(8080));
        assert_eq!(c.targets[1].id, "db.test:5432");
        assert_eq!(c.resolve[0].port, 443);
    }

    #[test]
    fn errors_name_the_key_and_position() {
        let e = parse_str("[scan]\ntiemout = 3\n").unwrap_err().to_string();
        assert!(
            e.starts_with("secgate.toml:2:1:") && e.contains("unknown field `tiemout`"),
            "{e}"
        );

        let e = parse_str("[scan]\ntimeout = 0\n").unwrap_err().to_string();
        assert!(e.starts_with("secgate.toml:2:11: scan.timeout:"), "{e}");

        let e = parse_str("[[target]]\nurl = \"ftp://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("secgate.toml:2:7: target[0].url:") && e.contains("unsupported scheme"),
            "{e}"
        );

        let e = parse_str("[scan]\nchecks = [\"nope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("scan.checks: unknown family 'nope'"), "{e}");

        let e = parse_str("[[target]]\nhttp_port = 80\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("target[0]: needs a url or a host"), "{e}");

        let e = parse_str("[[target]]\nhost = \"a.test\"\nallowed_ports = [22, 0]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("secgate.toml:3:22: target[0].allowed_ports: invalid port 0"),
            "{e}"
        );
        let e = parse_str("[scan]\nports = \"1-x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("secgate.toml:2:9: scan.ports:"), "{e}");
        let e = parse_str("[scan]\ndns_server = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("secgate.toml:2:14: scan.dns_server:"), "{e}");
        let e = parse_str("[scan]\nmail_domains = [\"x y\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("scan.mail_domains: 'x y' is not a domain name"),
            "{e}"
        );
        let e = parse_str("[scan]\nport_concurrency = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("scan.port_concurrency: must be between 1 and 65536"),
            "{e}"
        );

        let e = parse_str("[scan\n").unwrap_err().to_string();
        assert!(e.starts_with("secgate.toml:1:"), "{e}");

        let e = parse_str("[scan]\ncert_expiry_days = -1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("secgate.toml:2:20: scan.cert_expiry_days: must be between 0 and 3650"),
            "{e}"
        );

        let e = parse_str("[scan]\nresolve = [\"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("scan.resolve: 'x': expected HOST:PORT:ADDR"),
            "{e}"
        );
    }
}
