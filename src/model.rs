//! Core result types, shared by every stage and depending on none: severities, statuses,
//! results and their findings, evidence, and what happened to each target.
//!
//! - A **result** ([`Outcome`]) is one evaluated control: one rule on one target, with its
//!   status and severity. It is what the score counts.
//! - A failed result carries one or more **findings** ([`Finding`]), each about one
//!   [`Subject`] below the target: a port, an endpoint, a cookie, a certificate, a DNS name, a
//!   header. A finding has its own message, evidence and fingerprint (a hash of the rule id,
//!   the target and the subject key, never of observed values), so it can be tracked,
//!   suppressed and reported on its own. A rule with nothing finer than the target uses the
//!   target as its subject.
//! - A result also lists the subjects it evaluated that passed or stayed undecided
//!   ([`Checked`]), so one subject's inconclusive never hides what the others showed.
//!
//! A family never decides a severity: it emits `(rule_id, status, message, evidence)` through
//! the engine's `Emitter`, which fills in the severity and title from the rule catalogue.

use std::fmt;

use base64::Engine as _;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// The request budget was spent (the family's, or `--max-requests`), or the target kept
    /// asking secgate to back off longer than it waits.
    Budget,
    /// secgate itself failed (a panic or a rule left unreported); please report it.
    Bug,
    /// Nothing answered on any port swept on a host that should offer a service: a mistyped
    /// address or a service that is down, never a pass (`expect_closed = true` says otherwise).
    NoService,
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
            ReasonKind::Budget => "budget",
            ReasonKind::Bug => "bug",
            ReasonKind::NoService => "no_service",
        }
    }
}

/// A reason with a one-line human detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// One per failed subject (empty unless the result failed).
    pub findings: Vec<Finding>,
    /// Subjects evaluated that passed, stayed undecided or did not apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<Checked>,
    /// Set by triage: every finding of this failed result is suppressed, or this inconclusive
    /// result is suppressed by fingerprint. Such a result is out of the score and the counts.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
    /// The suppression of an inconclusive result (by fingerprint only), set by triage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppressed>,
}

impl Outcome {
    /// True for a failed control.
    pub fn is_finding(&self) -> bool {
        self.status == Status::Fail
    }

    /// Add a finding about `subject` (its fingerprint derives from rule, target and subject).
    pub fn finding(&mut self, subject: Subject, message: impl Into<String>, evidence: Evidence) {
        let fingerprint = finding_fingerprint(self.rule_id, &self.target, &subject);
        self.findings.push(Finding {
            subject,
            message: one_line(&message.into(), 400),
            evidence,
            fingerprint,
            suppression: None,
            baseline_state: None,
        });
    }

    /// Record a subject that was evaluated and did not fail.
    pub fn checked(
        &mut self,
        subject: Subject,
        status: Status,
        message: impl Into<String>,
        reason: Option<Reason>,
    ) {
        self.subjects.push(Checked {
            subject,
            status,
            message: one_line(&message.into(), 400),
            reason,
        });
    }

    /// Give a failed result without findings its one finding, about the target itself.
    pub fn complete_findings(&mut self) {
        if self.status == Status::Fail && self.findings.is_empty() {
            let (message, evidence) = (self.message.clone(), self.evidence.clone());
            self.finding(Subject::target(), message, evidence);
        }
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
        fn walk(v: &mut Observed, scrub: &dyn Fn(&mut String)) {
            match v {
                Observed::Text(t) => scrub(t),
                Observed::List(items) => items.iter_mut().for_each(|i| walk(i, scrub)),
                Observed::Bytes(_) | Observed::Number(_) | Observed::Bool(_) => {}
            }
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
        for f in &mut self.findings {
            scrub(&mut f.message);
            scrub(&mut f.subject.key);
            for (_, v) in &mut f.evidence.0 {
                walk(v, &scrub);
            }
        }
        for c in &mut self.subjects {
            scrub(&mut c.message);
            scrub(&mut c.subject.key);
            if let Some(r) = &mut c.reason {
                scrub(&mut r.detail);
            }
        }
        for (_, v) in &mut self.evidence.0 {
            walk(v, &scrub);
        }
    }
}

/// What a finding is about, below its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SubjectKind {
    /// The target as a whole (nothing finer applies).
    Target,
    /// A TCP port (`tcp/6379`), or an address and port in a range (`10.0.0.5/tcp/6379`).
    Port,
    /// A named endpoint of the configuration (`login`).
    Endpoint,
    /// A cookie, by name.
    Cookie,
    /// A certificate, by its subject name and key type.
    Certificate,
    /// A DNS name.
    Name,
    /// An HTTP response header, by name.
    Header,
    /// An Origin sent by the CORS probe.
    Origin,
}

impl SubjectKind {
    /// Lower-case name, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Target => "target",
            SubjectKind::Port => "port",
            SubjectKind::Endpoint => "endpoint",
            SubjectKind::Cookie => "cookie",
            SubjectKind::Certificate => "certificate",
            SubjectKind::Name => "name",
            SubjectKind::Header => "header",
            SubjectKind::Origin => "origin",
        }
    }
}

/// The subject of a finding: its kind and a stable key. The key is part of the finding's
/// identity (its fingerprint), so it holds only what names the thing, never observed values
/// that change between runs (timings, banners, serial numbers).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// What kind of thing it is.
    pub kind: SubjectKind,
    /// Its stable key: `tcp/6379`, `login`, `sessionid`, `example.com`; empty for the target.
    pub key: String,
}

impl Subject {
    /// The target itself.
    pub fn target() -> Subject {
        Subject {
            kind: SubjectKind::Target,
            key: String::new(),
        }
    }

    /// A subject of `kind` named `key` (made safe for one line, bounded).
    pub fn new(kind: SubjectKind, key: impl Into<String>) -> Subject {
        Subject {
            kind,
            key: one_line(&key.into(), 200),
        }
    }

    /// A TCP port on a host target (`tcp/6379`).
    pub fn port(port: u16) -> Subject {
        Subject::new(SubjectKind::Port, format!("tcp/{port}"))
    }

    /// A TCP port at one address of a range (`10.0.0.5/tcp/6379`).
    pub fn address_port(addr: std::net::SocketAddr) -> Subject {
        Subject::new(
            SubjectKind::Port,
            format!("{}/tcp/{}", addr.ip(), addr.port()),
        )
    }

    /// A configured endpoint, by name.
    pub fn endpoint(name: &str) -> Subject {
        Subject::new(SubjectKind::Endpoint, name)
    }

    /// Whether this is the target itself.
    pub fn is_target(&self) -> bool {
        self.kind == SubjectKind::Target
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_target() {
            f.write_str("target")
        } else {
            write!(f, "{} {}", self.kind.as_str(), self.key)
        }
    }
}

/// One failed subject of a result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// What it is about.
    pub subject: Subject,
    /// One line for people.
    pub message: String,
    /// What was observed about this subject.
    pub evidence: Evidence,
    /// Hash of (rule id, target, subject key): stable across runs.
    pub fingerprint: String,
    /// The suppression entry that applies to it (set by triage), `null` when none does.
    pub suppression: Option<Suppressed>,
    /// Against a baseline report (set by triage): new, unchanged or updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_state: Option<BaselineState>,
}

/// The suppression applied to a finding: the entry's reason, owner, expiry and where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppressed {
    /// Why the team accepts it.
    pub reason: String,
    /// Who decided, when the entry says.
    pub owner: Option<String>,
    /// `YYYY-MM-DD`, or `null` for a permanent entry.
    pub expires: Option<String>,
    /// `FILE:LINE` of the entry.
    pub source: String,
}

/// A finding compared with a baseline report (SARIF `baselineState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineState {
    /// Not in the baseline.
    New,
    /// In the baseline with the same severity and evidence.
    Unchanged,
    /// In the baseline (same fingerprint) with another severity or evidence.
    Updated,
}

impl BaselineState {
    /// Lower-case name, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineState::New => "new",
            BaselineState::Unchanged => "unchanged",
            BaselineState::Updated => "updated",
        }
    }
}

/// A subject that was evaluated and did not fail.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checked {
    /// What was evaluated.
    pub subject: Subject,
    /// `pass`, `inconclusive` or `skipped`.
    pub status: Status,
    /// One line for people.
    pub message: String,
    /// Why it stayed undecided, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Fingerprint of a (rule, target) pair: the first 16 bytes of SHA-256, hex. It hashes only
/// stable identifiers, never observed values, so it survives a changed header value or message.
pub fn fingerprint(rule_id: &str, target: &str) -> String {
    digest(&[rule_id.as_bytes(), target.as_bytes()])
}

/// Fingerprint of a finding: the result's fingerprint when the subject is the target (so
/// reports of schema 1.0, which had one finding per result, match), else a hash of the rule
/// id, the target and the subject key.
pub fn finding_fingerprint(rule_id: &str, target: &str, subject: &Subject) -> String {
    if subject.is_target() {
        fingerprint(rule_id, target)
    } else {
        digest(&[
            rule_id.as_bytes(),
            target.as_bytes(),
            subject.key.as_bytes(),
        ])
    }
}

fn digest(parts: &[&[u8]]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"secgate/v1\0");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            ctx.update(b"\0");
        }
        ctx.update(p);
    }
    let mut out = String::with_capacity(32);
    for b in ctx.finish().as_ref().iter().take(16) {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    out
}

/// What happened to a target as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetStatus {
    /// Reached and scanned (its results say how each check went).
    Scanned,
    /// Not resolved or not reachable; no check ran.
    Unreachable,
    /// The scan was interrupted before the target was done.
    Interrupted,
}

/// Per-target summary for reports.
#[derive(Clone, Debug, Serialize)]
pub struct TargetResult {
    /// Target id.
    pub target: String,
    /// The address used, when resolved.
    pub address: Option<String>,
    /// What happened.
    pub status: TargetStatus,
    /// Why it was not scanned.
    pub error: Option<Reason>,
    /// Requests secgate sent to this target, by family.
    pub requests: std::collections::BTreeMap<&'static str, u32>,
    /// Host-wide back-off: how often the target asked secgate to slow down, and the wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// A derived target: the id of the target whose port sweep discovered it (since 1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// What the port sweep of this target discovered and what became of it: the derived
    /// targets audited, and the open ports not chained, with why (since 1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainReport>,
}

/// What chaining made of one target's discovered services.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainReport {
    /// Derived targets audited, in report order.
    pub chained: Vec<Chained>,
    /// Open ports that were not chained, with the reason.
    pub not_chained: Vec<NotChained>,
}

/// One derived target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chained {
    /// The derived target's id (`https://10.0.0.5:8443/`).
    pub target: String,
    /// Where the service answered (`10.0.0.5:8443`).
    pub address: String,
    /// The service as the sweep identified it (`tls`, `http`, `tls (likely redis)`).
    pub service: String,
    /// The families that audit it.
    pub families: Vec<String>,
}

/// One open port that was not chained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotChained {
    /// Where it answered (`10.0.0.5:9999`).
    pub address: String,
    /// The service as identified (`unknown` when it was not).
    pub service: String,
    /// Why it was not chained.
    pub reason: String,
}

/// The back-off a target asked for (429 or 503 answers, Retry-After).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// Answers that asked for it.
    pub events: u32,
    /// Milliseconds secgate waited in all because of them.
    pub waited_ms: u64,
}

/// The raw outcome of a scan, before triage and scoring.
#[derive(Clone, Debug)]
pub struct ScanResult {
    /// When the scan started.
    pub started_at: time::OffsetDateTime,
    /// When it finished.
    pub finished_at: time::OffsetDateTime,
    /// False when interrupted.
    pub complete: bool,
    /// One entry per target, in plan order.
    pub targets: Vec<TargetResult>,
    /// Every result, sorted by target (plan order), then catalogue order.
    pub outcomes: Vec<Outcome>,
}

/// One slice of a sliced sweep job (see `crate::shard`): a CIDR sub-block of a range's
/// addresses and a contiguous run of its port list (for a single host, a run of ports). The
/// slices of one (target, family) are a pure function of (`addresses` of the whole target,
/// `port_count`, `count`), so a merge can recompute and check them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slice {
    /// 1..=count.
    pub index: u32,
    /// Slices of the job.
    pub count: u32,
    /// Offsets `[first, end)` into the range's addresses (`[0, 1)`: every address of a name).
    pub addresses: [u64; 2],
    /// Indexes `[first, end)` into the target's port list.
    pub ports: [u32; 2],
    /// Length of the target's whole port list.
    pub port_count: u32,
}

impl Slice {
    /// (address, port) pairs of the slice, counting a name's addresses as one.
    pub fn size(&self) -> u64 {
        let [a0, a1] = self.addresses;
        let [p0, p1] = self.ports;
        a1.saturating_sub(a0)
            .saturating_mul(u64::from(p1.saturating_sub(p0)))
    }
}

/// What one slice of a sliced sweep recorded in its shard's report, for the merge to join:
/// the family's raw observation of the slice (its own format, read back by the family) and
/// the triage marks of the results the slice alone would give (what the shard's
/// suppressions and baseline made of them), never results of their own.
#[derive(Clone, Debug, Serialize)]
pub struct SliceOutput {
    /// Target id.
    pub target: String,
    /// Family name.
    pub family: &'static str,
    /// Which slice.
    pub slice: Slice,
    /// The family's observation of the slice.
    pub observation: serde_json::Value,
    /// Per rule: the marks triage gave the slice's own results.
    pub marks: Vec<Marks>,
    /// The slice's own results, until triage turns them into `marks`; never in a report.
    #[serde(skip)]
    pub partial: Vec<Outcome>,
}

/// The triage marks of one rule's result on one slice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marks {
    /// Rule id.
    pub rule_id: String,
    /// Severity (after the profile).
    pub severity: Severity,
    /// The profile disables the rule (its result is `skipped`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// The suppression of an inconclusive result (an entry naming its fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppressed>,
    /// The marks of each finding, by subject key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingMarks>,
}

/// The triage marks of one finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingMarks {
    /// Subject key.
    pub subject: String,
    /// Its suppression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<Suppressed>,
    /// Its state against the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_state: Option<BaselineState>,
}

impl Marks {
    /// The marks of a triaged result.
    pub fn of(o: &Outcome) -> Marks {
        Marks {
            rule_id: o.rule_id.to_string(),
            severity: o.severity,
            disabled: o.status == Status::Skipped,
            suppression: (o.status == Status::Inconclusive)
                .then(|| o.suppression.clone())
                .flatten(),
            findings: o
                .findings
                .iter()
                .filter(|f| f.suppression.is_some() || f.baseline_state.is_some())
                .map(|f| FindingMarks {
                    subject: f.subject.key.clone(),
                    suppression: f.suppression.clone(),
                    baseline_state: f.baseline_state,
                })
                .collect(),
        }
    }
}

/// Characters a target must not get into a report as they are: C0 and C1 controls (ANSI
/// escapes start with ESC), DEL, and the Unicode bidirectional and invisible formatting
/// characters that reorder or hide text (U+061C, U+200B–U+200F, U+202A–U+202E,
/// U+2060–U+2069, U+FEFF): "Trojan Source" spoofing in a terminal, a browser or a code viewer.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `s` with every [`is_unsafe_char`] written as a `\u{..}` escape (`\n`, `\r`, `\t` for
/// those three). Borrowed when nothing needed escaping.
pub fn escape_unsafe(s: &str) -> std::borrow::Cow<'_, str> {
    // Most text is printable ASCII: one pass over the bytes decides (no unsafe character is
    // in 0x20..=0x7E), the character-wise check only runs on the rest.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) || !s.chars().any(is_unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Make target-controlled text safe for one line: unsafe characters (controls, ANSI escapes,
/// bidi overrides; see [`is_unsafe_char`]) become `\u{..}` escapes, and the result is cut at
/// `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 8));
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if is_unsafe_char(c) {
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
    fn unsafe_characters_are_escaped() {
        assert_eq!(
            escape_unsafe("a\u{1b}[2Jb\u{202e}c"),
            "a\\u{1b}[2Jb\\u{202e}c"
        );
        assert!(matches!(
            escape_unsafe("plain é"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(one_line("x\u{2066}y", 10), "x\\u{2066}y");
    }

    #[test]
    fn finding_fingerprints_name_the_subject() {
        let t = "db.test";
        let a = finding_fingerprint("ports.unexpected_open", t, &Subject::port(22));
        let b = finding_fingerprint("ports.unexpected_open", t, &Subject::port(23));
        assert_ne!(a, b);
        assert_eq!(
            a,
            finding_fingerprint("ports.unexpected_open", t, &Subject::port(22))
        );
        assert_eq!(
            finding_fingerprint("ports.unexpected_open", t, &Subject::target()),
            fingerprint("ports.unexpected_open", t)
        );
    }

    #[test]
    fn fingerprint_is_stable_and_distinct() {
        let a = fingerprint("headers.hsts.missing", "https://a.test/");
        assert_eq!(a, fingerprint("headers.hsts.missing", "https://a.test/"));
        assert_ne!(a, fingerprint("headers.hsts.short", "https://a.test/"));
        assert_eq!(a.len(), 32);
    }
}
