//! The suppressions file: findings a team has decided to accept for now, each with a reason
//! and an expiry (`--suppressions FILE`, `scan.suppressions`, or `.secgate-suppressions.toml`
//! beside the config file).
//!
//! ```toml
//! [[suppress]]
//! rule = "headers.csp.*"            # a rule id, or a glob over rule ids
//! target = "https://shop.test/"     # a target as written, or a glob over target ids
//! subject = "sessionid"             # optional: a finding's subject key (glob), or
//! # fingerprint = "0123…"           # optional: one exact finding (32 hex digits)
//! reason = "CSP rework planned for Q1"
//! owner = "web-team"                # optional
//! expires = 2027-03-31              # YYYY-MM-DD (a TOML date or a string)
//! ```
//!
//! The file is validated like the config file: unknown keys, a missing or empty reason, a bad
//! date, an expiry past `policy.max_suppression_days`, a rule glob that names no rule: one line
//! with `file:line:column`, exit 2. Matching happens in [`crate::triage`].

use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::policy::Policy;

/// The default file name, looked up beside the config file.
pub const DEFAULT_FILE: &str = ".secgate-suppressions.toml";

/// An entry that expires within this many days is flagged as expiring soon.
pub const EXPIRING_SOON_DAYS: i64 = 14;

/// A literal or a glob (`*`, `?`, `[..]`, `{a,b}`); a literal also matches through the glob
/// engine's escaping rules, so `?` in a URL target is compared as written first.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// As written.
    pub text: String,
    matcher: Option<GlobMatcher>,
}

impl Pattern {
    fn new(text: &str) -> std::result::Result<Pattern, String> {
        let is_glob = text.contains(['*', '?', '[', '{']);
        let matcher = if is_glob {
            Some(
                Glob::new(text)
                    .map_err(|e| format!("invalid glob '{text}': {}", e.kind()))?
                    .compile_matcher(),
            )
        } else {
            None
        };
        Ok(Pattern {
            text: text.to_string(),
            matcher,
        })
    }

    /// Whether `value` is the literal, or matches the glob.
    pub fn matches(&self, value: &str) -> bool {
        self.text == value || self.matcher.as_ref().is_some_and(|m| m.is_match(value))
    }

    /// Whether this is a glob rather than a literal.
    pub fn is_glob(&self) -> bool {
        self.matcher.is_some()
    }
}

/// One `[[suppress]]` entry, validated.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Rule id or glob.
    pub rule: Pattern,
    /// Target id or glob (a literal is compared in its canonical form too).
    pub target: Pattern,
    /// The canonical id of a literal target, when it parses as one.
    pub target_id: Option<String>,
    /// A finding's subject key, or a glob.
    pub subject: Option<Pattern>,
    /// One exact finding.
    pub fingerprint: Option<String>,
    /// Why it is accepted.
    pub reason: String,
    /// Who decided.
    pub owner: Option<String>,
    /// Last day the entry applies; `None` for a permanent entry.
    pub expires: Option<time::Date>,
    /// `FILE:LINE`.
    pub source: String,
}

impl Entry {
    /// Whether the entry names `rule_id` on `target`.
    pub fn covers(&self, rule_id: &str, target: &str) -> bool {
        self.rule.matches(rule_id)
            && (self.target.matches(target) || self.target_id.as_deref() == Some(target))
    }

    /// Whether the entry matches a finding (`subject_key`, `fingerprint`) of `rule_id` on
    /// `target`.
    pub fn matches_finding(
        &self,
        rule_id: &str,
        target: &str,
        subject_key: &str,
        fingerprint: &str,
    ) -> bool {
        self.covers(rule_id, target)
            && self.subject.as_ref().is_none_or(|s| s.matches(subject_key))
            && self.fingerprint.as_deref().is_none_or(|f| f == fingerprint)
    }

    /// Whether the entry suppresses an inconclusive result: only by its exact fingerprint.
    pub fn matches_inconclusive(&self, rule_id: &str, target: &str, fingerprint: &str) -> bool {
        self.covers(rule_id, target) && self.fingerprint.as_deref() == Some(fingerprint)
    }

    /// Whether the entry no longer applies on `today`.
    pub fn is_expired(&self, today: time::Date) -> bool {
        self.expires.is_some_and(|d| d < today)
    }

    /// The entry as reports list it.
    pub fn note(&self, findings: u32) -> EntryNote {
        EntryNote {
            rule: self.rule.text.clone(),
            target: self.target.text.clone(),
            subject: self.subject.as_ref().map(|s| s.text.clone()),
            fingerprint: self.fingerprint.clone(),
            reason: self.reason.clone(),
            owner: self.owner.clone(),
            expires: self.expires.map(fmt_date),
            source: self.source.clone(),
            findings,
        }
    }

    /// What a suppressed finding carries.
    pub fn suppressed(&self) -> crate::model::Suppressed {
        crate::model::Suppressed {
            reason: self.reason.clone(),
            owner: self.owner.clone(),
            expires: self.expires.map(fmt_date),
            source: self.source.clone(),
        }
    }
}

/// An entry as listed in reports (expired, expiring soon, stale).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryNote {
    /// `rule` as written.
    pub rule: String,
    /// `target` as written.
    pub target: String,
    /// `subject`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `fingerprint`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// `reason`.
    pub reason: String,
    /// `owner`.
    pub owner: Option<String>,
    /// `expires` (`YYYY-MM-DD`), `null` when permanent.
    pub expires: Option<String>,
    /// `FILE:LINE`.
    pub source: String,
    /// Findings it matched in this scan (for an expired entry: that count again).
    pub findings: u32,
}

/// A loaded suppressions file.
#[derive(Clone, Debug, Default)]
pub struct Suppressions {
    /// Where it was read from.
    pub path: Option<PathBuf>,
    /// Its entries, in file order.
    pub entries: Vec<Entry>,
    /// The day the entries were judged against (expiry).
    pub today: Option<time::Date>,
}

/// `YYYY-MM-DD`.
pub fn fmt_date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn parse_date(s: &str) -> std::result::Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &format)
        .map_err(|_| format!("'{s}' is not a date; expected YYYY-MM-DD, e.g. 2027-03-31"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    suppress: Vec<Spanned<RawEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    rule: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
    subject: Option<Spanned<String>>,
    fingerprint: Option<Spanned<String>>,
    reason: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    expires: Option<Spanned<toml::Value>>,
}

/// Read and validate a suppressions file against `policy` on `today`.
pub fn load(path: &Path, policy: &Policy, today: time::Date) -> Result<Suppressions> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text, policy, today)
}

/// The index of the `[[suppress]]` table that `offset` lies in (for messages).
fn entry_at(text: &str, offset: usize) -> Option<usize> {
    let before = text.get(..offset.min(text.len()))?;
    let n = before
        .lines()
        .filter(|l| l.trim_start().starts_with("[[suppress]]"))
        .count();
    n.checked_sub(1)
}

/// The key whose value starts at `offset`: the word before `=` on that line.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let (key, _) = text.get(start..offset)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with(['#', '['])).then(|| key.to_string())
}

/// Validate suppressions text (`path` is used in messages).
pub fn parse(path: &Path, text: &str, policy: &Policy, today: time::Date) -> Result<Suppressions> {
    let err = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = crate::config::line_col(text, span.start);
        Error::Config {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = crate::options::tidy(e.message()).replace('\n', " ");
        match (entry_at(text, span.start), key_at(text, span.start)) {
            (Some(n), Some(key)) => err(span, format!("suppress[{n}].{key}: {message}")),
            (Some(n), None) => err(span, format!("suppress[{n}]: {message}")),
            (None, _) => err(span, message),
        }
    })?;
    let mut entries = Vec::new();
    let lines = crate::config::Lines::new(text);
    for (n, spanned) in raw.suppress.iter().enumerate() {
        let key = format!("suppress[{n}]");
        let e = spanned.get_ref();
        let need = |v: &Option<Spanned<String>>, name: &str| -> Result<Spanned<String>> {
            match v {
                Some(s) if !s.get_ref().trim().is_empty() => Ok(s.clone()),
                Some(s) => Err(err(s.span(), format!("{key}.{name}: must not be empty"))),
                None => Err(err(spanned.span(), format!("{key}: missing key `{name}`"))),
            }
        };
        let rule_s = need(&e.rule, "rule")?;
        let rule = Pattern::new(rule_s.get_ref())
            .map_err(|m| err(rule_s.span(), format!("{key}.rule: {m}")))?;
        if !crate::catalogue::all().iter().any(|r| rule.matches(&r.id)) {
            return Err(err(
                rule_s.span(),
                format!(
                    "{key}.rule: '{}' names no rule of the catalogue (`secgate rules` lists them)",
                    rule.text
                ),
            ));
        }
        let target_s = need(&e.target, "target")?;
        let target = Pattern::new(target_s.get_ref())
            .map_err(|m| err(target_s.span(), format!("{key}.target: {m}")))?;
        let target_id = (!target.is_glob())
            .then(|| crate::target::Target::parse(&target.text).ok())
            .flatten()
            .map(|t| t.id);
        let reason = need(&e.reason, "reason")?.into_inner().trim().to_string();
        let subject = match &e.subject {
            Some(s) => Some(
                Pattern::new(s.get_ref())
                    .map_err(|m| err(s.span(), format!("{key}.subject: {m}")))?,
            ),
            None => None,
        };
        let fingerprint = match &e.fingerprint {
            Some(f) => {
                let v = f.get_ref().trim().to_ascii_lowercase();
                if v.len() != 32 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(err(
                        f.span(),
                        format!("{key}.fingerprint: expected 32 hex digits, as in a report"),
                    ));
                }
                if let Some(s) = &e.subject {
                    return Err(err(
                        s.span(),
                        format!("{key}: set subject or fingerprint, not both"),
                    ));
                }
                Some(v)
            }
            None => None,
        };
        let expires = match &e.expires {
            Some(v) => {
                let text_value = match v.get_ref() {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => {
                        d.to_string()
                    }
                    other => other.to_string(),
                };
                let date = parse_date(&text_value)
                    .map_err(|m| err(v.span(), format!("{key}.expires: {m}")))?;
                let cap = today + time::Duration::days(i64::from(policy.max_suppression_days));
                if date > cap {
                    return Err(err(
                        v.span(),
                        format!(
                            "{key}.expires: {} is more than {} days away (policy.max_suppression_days); the latest allowed is {}",
                            fmt_date(date),
                            policy.max_suppression_days,
                            fmt_date(cap)
                        ),
                    ));
                }
                Some(date)
            }
            None if policy.allow_permanent_suppressions => None,
            None => {
                return Err(err(
                    spanned.span(),
                    format!(
                        "{key}: missing key `expires` (YYYY-MM-DD; required unless policy.allow_permanent_suppressions = true)"
                    ),
                ));
            }
        };
        let line = lines.line(spanned.span().start);
        entries.push(Entry {
            rule,
            target,
            target_id,
            subject,
            fingerprint,
            reason,
            owner: e.owner.as_ref().map(|o| o.get_ref().clone()),
            expires,
            source: format!("{}:{line}", path.display()),
        });
    }
    Ok(Suppressions {
        path: Some(path.to_path_buf()),
        entries,
        today: Some(today),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> time::Date {
        time::macros::date!(2026 - 12 - 03)
    }

    fn parse_str(text: &str) -> Result<Suppressions> {
        parse(Path::new("s.toml"), text, &Policy::default(), today())
    }

    #[test]
    fn parses_an_entry() {
        let s = parse_str(
            "[[suppress]]\nrule = \"headers.csp.*\"\ntarget = \"https://shop.test\"\nreason = \"later\"\nexpires = 2027-01-31\n",
        )
        .unwrap();
        let e = &s.entries[0];
        assert!(e.covers("headers.csp.unsafe", "https://shop.test/"));
        assert!(!e.covers("headers.hsts.missing", "https://shop.test/"));
        assert_eq!(e.source, "s.toml:1");
        assert_eq!(e.expires.map(fmt_date).as_deref(), Some("2027-01-31"));
    }

    #[test]
    fn rejects_bad_entries_with_positions() {
        let cases = [
            (
                "[[suppress]]\nrule = \"headers.hsts.missing\"\ntarget = \"x\"\nreason = \"r\"\nexpires = \"2027-01-01\"\ncolour = 1\n",
                "s.toml:6:1: suppress[0]: unknown field `colour`",
            ),
            (
                "[[suppress]]\nrule = \"headers.hsts.missing\"\ntarget = \"x\"\nreason = \" \"\nexpires = \"2027-01-01\"\n",
                "s.toml:4:10: suppress[0].reason: must not be empty",
            ),
            (
                "[[suppress]]\nrule = \"headers.hsts.missing\"\ntarget = \"x\"\nreason = \"r\"\nexpires = \"2027-02-30\"\n",
                "s.toml:5:11: suppress[0].expires: '2027-02-30' is not a date",
            ),
            (
                "[[suppress]]\nrule = \"headers.hsts.missing\"\ntarget = \"x\"\nreason = \"r\"\nexpires = 2027-12-01\n",
                "s.toml:5:11: suppress[0].expires: 2027-12-01 is more than 180 days away",
            ),
            (
                "[[suppress]]\nrule = \"headers.hsts.missing\"\ntarget = \"x\"\nreason = \"r\"\n",
                "s.toml:1:1: suppress[0]: missing key `expires`",
            ),
            (
                "[[suppress]]\nrule = \"nope.*\"\ntarget = \"x\"\nreason = \"r\"\nexpires = 2027-01-01\n",
                "s.toml:2:8: suppress[0].rule: 'nope.*' names no rule",
            ),
        ];
        for (text, want) in cases {
            let e = parse_str(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}\nwanted: {want}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
