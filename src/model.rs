//! Core result types: severities, statuses, outcomes and their evidence.
//!
//! A check never decides a severity: it emits `(rule_id, status, message, evidence)` through an
//! [`Emitter`], and the emitter fills in the severity and title from the rule catalogue
//! (`checks/*.toml`). A *finding* is an [`Outcome`] whose status is [`Status::Fail`]; passes,
//! inconclusive and skipped results are kept too, because the score counts them.

use std::fmt;

use base64::Engine as _;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::catalogue;

/// How bad a failed control is. Declaration order is the order: `Info < Low < ... < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never changes the score.
    Info,
    /// Defence in depth.
    Low,
    /// A real weakness that needs another flaw to be exploited.
    Medium,
    /// Directly exploitable or exposing sensitive data.
    High,
    /// Blocks a launch on its own.
    Critical,
}

impl Severity {
    /// Every severity, most severe first (the order reports list them in).
    pub const DESCENDING: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// Weight of a control of this severity in the score.
    pub fn weight(self) -> u32 {
        match self {
            Severity::Critical => 10,
            Severity::High => 5,
            Severity::Medium => 2,
            Severity::Low => 1,
            Severity::Info => 0,
        }
    }

    /// SARIF `level` for a failed control of this severity.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low | Severity::Info => "note",
        }
    }

    /// GitHub code scanning `security-severity`, in the middle of GitHub's bands
    /// (> 9.0 critical, 7.0–8.9 high, 4.0–6.9 medium, ≤ 3.9 low). `None` for info.
    pub fn security_severity(self) -> Option<&'static str> {
        match self {
            Severity::Critical => Some("9.5"),
            Severity::High => Some("8.0"),
            Severity::Medium => Some("5.5"),
            Severity::Low => Some("2.0"),
            Severity::Info => None,
        }
    }

    /// Lower-case name, as in the catalogue and the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What evaluating one rule on one target concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The control is in place.
    Pass,
    /// The control is missing or weak: a finding.
    Fail,
    /// The scan could not decide (timeout, refused, malformed answer...); counts as not passed.
    Inconclusive,
    /// The rule does not apply to what was observed (e.g. HSTS on plain HTTP); not scored.
    Skipped,
}

impl Status {
    /// Lower-case name, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Inconclusive => "inconclusive",
            Status::Skipped => "skipped",
        }
    }
}

/// Why a result is inconclusive, or why a target could not be scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReasonKind {
    /// A connect, read or handshake did not finish within the timeout.
    Timeout,
    /// The connection was refused.
    Refused,
    /// The peer reset or closed the connection before answering.
    Reset,
    /// The TLS handshake failed (including an untrusted certificate).
    Tls,
    /// The answer was not valid for the protocol.
    Malformed,
    /// The answer exceeded a size cap.
    TooLarge,
    /// A redirect could not be followed (out of scope, too many, invalid).
    Redirect,
    /// The name did not resolve.
    Dns,
    /// The scan was interrupted before this was evaluated.
    Interrupted,
    /// Some other I/O error.
    Io,
    /// secgate itself failed (a panic or a rule left unreported); please report it.
    Bug,
}

impl ReasonKind {
    /// Snake-case name, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::Timeout => "timeout",
            ReasonKind::Refused => "refused",
            ReasonKind::Reset => "reset",
            ReasonKind::Tls => "tls",
            ReasonKind::Malformed => "malformed",
            ReasonKind::TooLarge => "too_large",
            ReasonKind::Redirect => "redirect",
            ReasonKind::Dns => "dns",
            ReasonKind::Interrupted => "interrupted",
            ReasonKind::Io => "io",
            ReasonKind::Bug => "bug",
        }
    }
}

/// A reason with a one-line human detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// Machine-readable class.
    pub kind: ReasonKind,
    /// One line for people, e.g. `connect to 127.0.0.1:443 timed out after 5s`.
    pub detail: String,
}

impl Reason {
    /// Build a reason; the detail is sanitised to one bounded line.
    pub fn new(kind: ReasonKind, detail: impl Into<String>) -> Reason {
        Reason {
            kind,
            detail: one_line(&detail.into(), 300),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

/// One observed value. Text from targets is kept losslessly: valid UTF-8 is text, anything else
/// is base64 bytes (`{"bytes": "..."}` in JSON), as ripgrep's JSON printer does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// UTF-8 text (already capped in length).
    Text(String),
    /// Bytes that are not UTF-8.
    Bytes(Vec<u8>),
    /// An integer (status code, max-age...).
    Number(i64),
    /// A flag.
    Bool(bool),
    /// Several values.
    List(Vec<Observed>),
}

/// The longest text value kept in evidence, in bytes; longer values are cut with a marker.
pub const EVIDENCE_TEXT_CAP: usize = 512;

impl Observed {
    /// Evidence from raw bytes (e.g. a header value): UTF-8 becomes capped text, else bytes.
    pub fn from_bytes(bytes: &[u8]) -> Observed {
        let capped = bytes.get(..EVIDENCE_TEXT_CAP).unwrap_or(bytes);
        match std::str::from_utf8(capped) {
            Ok(s) => Observed::text(
                s.to_string()
                    + if capped.len() < bytes.len() {
                        "…"
                    } else {
                        ""
                    },
            ),
            Err(e) if e.valid_up_to() + 4 > capped.len() && capped.len() < bytes.len() => {
                // The cut fell inside a multi-byte character.
                let ok = capped.get(..e.valid_up_to()).unwrap_or_default();
                Observed::Text(String::from_utf8_lossy(ok).into_owned() + "…")
            }
            Err(_) => Observed::Bytes(capped.to_vec()),
        }
    }

    /// Evidence text, capped at [`EVIDENCE_TEXT_CAP`] bytes.
    pub fn text(s: impl Into<String>) -> Observed {
        let mut s: String = s.into();
        if s.len() > EVIDENCE_TEXT_CAP {
            let mut cut = EVIDENCE_TEXT_CAP;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push('…');
        }
        Observed::Text(s)
    }

    /// A list of text values.
    pub fn texts<I, S>(items: I) -> Observed
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Observed::List(items.into_iter().map(Observed::text).collect())
    }

    /// A short, printable rendering for terminal output.
    pub fn display(&self) -> String {
        match self {
            Observed::Text(s) => one_line(s, 200),
            Observed::Bytes(b) => escaped_bytes(b, 200),
            Observed::Number(n) => n.to_string(),
            Observed::Bool(b) => b.to_string(),
            Observed::List(items) => items
                .iter()
                .map(Observed::display)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Bytes as printable text, the way nmap shows banners: printable ASCII as is, anything else
/// as `\xNN`, cut at about `max` characters.
fn escaped_bytes(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in bytes {
        if out.len() >= max {
            out.push('…');
            break;
        }
        if b == b' ' || b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

impl Serialize for Observed {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            Observed::Text(s) => ser.serialize_str(s),
            Observed::Bytes(b) => {
                let mut map = ser.serialize_map(Some(1))?;
                map.serialize_entry(
                    "bytes",
                    &base64::engine::general_purpose::STANDARD.encode(b),
                )?;
                map.end()
            }
            Observed::Number(n) => ser.serialize_i64(*n),
            Observed::Bool(b) => ser.serialize_bool(*b),
            Observed::List(items) => items.serialize(ser),
        }
    }
}

/// What was observed, as ordered `key: value` pairs (a JSON object in reports).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence(pub Vec<(&'static str, Observed)>);

impl Evidence {
    /// No evidence.
    pub fn none() -> Evidence {
        Evidence(Vec::new())
    }

    /// Add one pair (builder style).
    pub fn with(mut self, key: &'static str, value: Observed) -> Evidence {
        self.0.push((key, value));
        self
    }

    /// Add one text pair (builder style).
    pub fn text(self, key: &'static str, value: impl Into<String>) -> Evidence {
        self.with(key, Observed::text(value))
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Evidence {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The result of evaluating one rule on one target.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Stable dotted rule id, e.g. `headers.hsts.missing`.
    pub rule_id: &'static str,
    /// Check family that evaluated it (`headers`, ...).
    pub family: &'static str,
    /// Canonical target id (see [`crate::target::Target::id`]).
    pub target: String,
    /// What was concluded.
    pub status: Status,
    /// Severity, from the catalogue.
    pub severity: Severity,
    /// Rule title, from the catalogue.
    pub title: &'static str,
    /// One line for people.
    pub message: String,
    /// What was observed.
    pub evidence: Evidence,
    /// Why the result is inconclusive (or skipped), when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Stable across runs for the same rule on the same target (hex SHA-256 prefix).
    pub fingerprint: String,
}

impl Outcome {
    /// True for a failed control.
    pub fn is_finding(&self) -> bool {
        self.status == Status::Fail
    }

    /// Replace every occurrence of a secret (4 characters or longer) in the message, the
    /// evidence and the reason with `[REDACTED]`: the last line of defence that keeps
    /// credentials out of reports.
    pub fn redact(&mut self, secrets: &[crate::endpoint::Secret]) {
        let secrets: Vec<&str> = secrets
            .iter()
            .map(crate::endpoint::Secret::expose)
            .filter(|s| s.len() >= 4)
            .collect();
        if secrets.is_empty() {
            return;
        }
        let scrub = |text: &mut String| {
            for s in &secrets {
                if text.contains(s) {
                    *text = text.replace(s, "[REDACTED]");
                }
            }
        };
        scrub(&mut self.message);
        if let Some(r) = &mut self.reason {
            scrub(&mut r.detail);
        }
        fn walk(v: &mut Observed, scrub: &dyn Fn(&mut String)) {
            match v {
                Observed::Text(t) => scrub(t),
                Observed::List(items) => items.iter_mut().for_each(|i| walk(i, scrub)),
                Observed::Bytes(_) | Observed::Number(_) | Observed::Bool(_) => {}
            }
        }
        for (_, v) in &mut self.evidence.0 {
            walk(v, &scrub);
        }
    }
}

/// Fingerprint of a (rule, target) pair: the first 16 bytes of SHA-256, hex. It hashes only
/// stable identifiers, never observed values, so it survives a changed header value or message.
pub fn fingerprint(rule_id: &str, target: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"secgate/v1\0");
    ctx.update(rule_id.as_bytes());
    ctx.update(b"\0");
    ctx.update(target.as_bytes());
    let digest = ctx.finish();
    digest
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Collects the outcomes of one family on one target, filling severity and title from the
/// catalogue so that rules only state what they saw.
#[derive(Debug)]
pub struct Emitter {
    family: &'static str,
    target: String,
    outcomes: Vec<Outcome>,
}

impl Emitter {
    /// A new emitter for `family` on `target`.
    pub fn new(family: &'static str, target: impl Into<String>) -> Emitter {
        Emitter {
            family,
            target: target.into(),
            outcomes: Vec::new(),
        }
    }

    /// Record a result. Unknown rule ids are a bug (the catalogue test guards against them);
    /// in release builds they are reported as `high` so that they are not silently dropped.
    pub fn emit(
        &mut self,
        rule_id: &'static str,
        status: Status,
        message: impl Into<String>,
        evidence: Evidence,
        reason: Option<Reason>,
    ) {
        let rule = catalogue::get(rule_id);
        debug_assert!(rule.is_some(), "rule {rule_id} missing from the catalogue");
        let (severity, title) = rule.map_or((Severity::High, "unknown rule"), |r| {
            (r.severity, r.title.as_str())
        });
        self.outcomes.push(Outcome {
            rule_id,
            family: self.family,
            target: self.target.clone(),
            status,
            severity,
            title,
            message: one_line(&message.into(), 400),
            evidence,
            reason,
            fingerprint: fingerprint(rule_id, &self.target),
        });
    }

    /// The control is in place.
    pub fn pass(&mut self, rule_id: &'static str, message: impl Into<String>, evidence: Evidence) {
        self.emit(rule_id, Status::Pass, message, evidence, None);
    }

    /// The control is missing or weak.
    pub fn fail(&mut self, rule_id: &'static str, message: impl Into<String>, evidence: Evidence) {
        self.emit(rule_id, Status::Fail, message, evidence, None);
    }

    /// The rule could not be decided.
    pub fn inconclusive(&mut self, rule_id: &'static str, reason: &Reason) {
        let message = format!("could not decide: {}", reason.detail);
        self.emit(
            rule_id,
            Status::Inconclusive,
            message,
            Evidence::none(),
            Some(reason.clone()),
        );
    }

    /// The rule does not apply to what was observed.
    pub fn skipped(&mut self, rule_id: &'static str, why: impl Into<String>) {
        self.emit(rule_id, Status::Skipped, why, Evidence::none(), None);
    }

    /// Whether a result for `rule_id` was already recorded.
    pub fn has(&self, rule_id: &str) -> bool {
        self.outcomes.iter().any(|o| o.rule_id == rule_id)
    }

    /// The recorded outcomes.
    pub fn finish(self) -> Vec<Outcome> {
        self.outcomes
    }
}

/// Make target-controlled text safe for one line: control characters become `\u{..}` escapes,
/// and the result is cut at `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 8));
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_table_is_pinned() {
        let table: Vec<_> = Severity::DESCENDING
            .iter()
            .map(|s| {
                (
                    s.as_str(),
                    s.weight(),
                    s.sarif_level(),
                    s.security_severity(),
                )
            })
            .collect();
        assert_eq!(
            table,
            vec![
                ("critical", 10, "error", Some("9.5")),
                ("high", 5, "error", Some("8.0")),
                ("medium", 2, "warning", Some("5.5")),
                ("low", 1, "note", Some("2.0")),
                ("info", 0, "note", None),
            ]
        );
        assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
    }

    #[test]
    fn observed_keeps_non_utf8_as_bytes() {
        assert_eq!(
            Observed::Bytes(b"\xff\xfd\x18login: ".to_vec()).display(),
            "\\xFF\\xFD\\x18login: "
        );
        let v = serde_json::to_value(Observed::from_bytes(b"ok\xff")).unwrap();
        assert_eq!(v, serde_json::json!({"bytes": "b2v/"}));
        let v = serde_json::to_value(Observed::from_bytes(b"nginx/1.2")).unwrap();
        assert_eq!(v, serde_json::json!("nginx/1.2"));
    }

    #[test]
    fn observed_caps_long_text() {
        let long = "é".repeat(600);
        let Observed::Text(s) = Observed::from_bytes(long.as_bytes()) else {
            panic!("expected text")
        };
        assert!(s.len() <= EVIDENCE_TEXT_CAP + 3 && s.ends_with('…'));
        let Observed::Text(s) = Observed::text("x".repeat(2000)) else {
            panic!("expected text")
        };
        assert_eq!(s.len(), EVIDENCE_TEXT_CAP + '…'.len_utf8());
    }

    #[test]
    fn one_line_escapes_controls() {
        assert_eq!(one_line("a\r\nb\u{1b}[31m", 100), "a\\r\\nb\\u{1b}[31m");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }

    #[test]
    fn fingerprint_is_stable_and_distinct() {
        let a = fingerprint("headers.hsts.missing", "https://a.test/");
        assert_eq!(a, fingerprint("headers.hsts.missing", "https://a.test/"));
        assert_ne!(a, fingerprint("headers.hsts.short", "https://a.test/"));
        assert_eq!(a.len(), 32);
    }
}
