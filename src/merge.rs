//! `secgate merge`: the JSON reports of one sharded scan ([`crate::shard`]) become one report
//! and one gate, through the same triage, summarise and render stages as a scan.
//!
//! Shard files are untrusted input. Each is read up to [`MAX_SHARD_BYTES`], parsed strictly
//! (no panics: every field is checked, rule ids and families must be in this build's
//! catalogue, fingerprints must be the ones this build computes), and the set of shards must
//! make exactly one complete scan:
//!
//! - every file is a complete shard report of the same plan ([`crate::shard::plan_id`]) and
//!   the same shard count;
//! - every index 1..=N is present exactly once;
//! - the shards' jobs are disjoint and add up to the plan's, and every result belongs to a
//!   job of its shard;
//! - no (rule, target) result appears twice.
//!
//! Anything else is exit 3 with one line naming the file (or the missing shard): a merge never
//! passes on a partial scan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use clap::Args;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use crate::cli::OutputArgs;
use crate::error::{Error, Result};
use crate::model::{
    Backoff, Checked, Evidence, Finding, Observed, Outcome, Reason, ScanResult, Severity, Status,
    Subject, TargetResult, TargetStatus,
};
use crate::policy::Policy;
use crate::report::{ReportFormat, SCHEMA_VERSION, ScanReport};
use crate::shard::{JobRecord, ShardInfo};

/// The largest shard file read.
pub const MAX_SHARD_BYTES: u64 = 512 * 1024 * 1024;
/// The most distinct evidence keys over all shards (keys are interned for the report's
/// `&'static str` keys; a hostile file cannot grow that set without bound).
pub const MAX_EVIDENCE_KEYS: usize = 4096;
/// The longest evidence key.
pub const MAX_EVIDENCE_KEY_LEN: usize = 128;

/// `secgate merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' JSON reports (`secgate scan --shard I/N --json FILE`), all N of them.
    #[arg(value_name = "SHARD.json", required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged JSON report here (`-`: standard output).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write a SARIF 2.1.0 report here (`-`: standard output).
    #[arg(long, value_name = "PATH")]
    pub sarif: Option<PathBuf>,
    /// Write a report in FORMAT to PATH (`-`: standard output). Repeatable.
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = crate::cli::parse_report)]
    pub reports: Vec<(ReportFormat, PathBuf)>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Why the shards do not make one scan: one line, naming the file or the missing shard.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected(pub String);

/// Run `secgate merge`.
pub fn run(args: &MergeArgs) -> Result<ExitCode> {
    let outputs = args
        .output
        .outputs(args.json.clone(), args.sarif.clone(), &args.reports)?;
    let mut shards = Vec::new();
    for path in &args.files {
        let bytes = read_capped(path)?;
        match parse(path, &bytes) {
            Ok(s) => shards.push(s),
            Err(Rejected(m)) => return Ok(reject(&m)),
        }
    }
    let report = match merge(shards) {
        Ok(r) => r,
        Err(Rejected(m)) => return Ok(reject(&m)),
    };
    let code = crate::render(report, &outputs)?;
    Ok(ExitCode::from(code))
}

fn reject(line: &str) -> ExitCode {
    eprintln!("error: merge: {line}");
    ExitCode::from(crate::EXIT_UNDECIDED)
}

fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(MAX_SHARD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// One shard report, as read.
#[derive(Debug)]
pub struct Shard {
    file: String,
    plan_id: String,
    info: ShardInfo,
    started_at: time::OffsetDateTime,
    finished_at: time::OffsetDateTime,
    policy: Policy,
    targets: Vec<TargetResult>,
    results: Vec<Outcome>,
}

#[derive(Deserialize)]
struct RawReport {
    schema_version: u32,
    #[serde(default)]
    plan_id: Option<String>,
    #[serde(default)]
    shard: Option<ShardInfo>,
    complete: bool,
    started_at: String,
    finished_at: String,
    policy: Policy,
    targets: Vec<RawTarget>,
    results: Vec<RawOutcome>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    target: String,
    address: Option<String>,
    status: TargetStatus,
    error: Option<Reason>,
    requests: BTreeMap<String, u32>,
    #[serde(default)]
    backoff: Option<Backoff>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    chain: Option<crate::model::ChainReport>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutcome {
    rule_id: String,
    family: String,
    target: String,
    status: Status,
    severity: Severity,
    title: String,
    message: String,
    evidence: RawEvidence,
    #[serde(default)]
    reason: Option<Reason>,
    fingerprint: String,
    findings: Vec<RawFinding>,
    #[serde(default)]
    subjects: Vec<RawChecked>,
    /// Set by the shard's triage (its suppressions file): kept, so the merge scores alike.
    #[serde(default)]
    suppressed: bool,
    #[serde(default)]
    suppression: Option<crate::model::Suppressed>,
    /// Written from the findings' states; read back from them.
    #[serde(default, rename = "baseline_state")]
    _baseline_state: Option<crate::model::BaselineState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinding {
    subject: Subject,
    message: String,
    evidence: RawEvidence,
    fingerprint: String,
    #[serde(default)]
    suppression: Option<crate::model::Suppressed>,
    #[serde(default)]
    baseline_state: Option<crate::model::BaselineState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChecked {
    subject: Subject,
    status: Status,
    message: String,
    #[serde(default)]
    reason: Option<Reason>,
}

/// Evidence in file order (a JSON object read as a list of entries).
struct RawEvidence(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for RawEvidence {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEvidence;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an evidence object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawEvidence, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    out.push((k, v));
                }
                Ok(RawEvidence(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn intern(key: &str) -> std::result::Result<&'static str, String> {
    static KEYS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    if key.len() > MAX_EVIDENCE_KEY_LEN {
        return Err(format!(
            "an evidence key is longer than {MAX_EVIDENCE_KEY_LEN} bytes"
        ));
    }
    let mut keys = KEYS
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .map_err(|_| "internal error: evidence keys poisoned".to_string())?;
    if let Some(k) = keys.get(key) {
        return Ok(k);
    }
    if keys.len() >= MAX_EVIDENCE_KEYS {
        return Err(format!(
            "more than {MAX_EVIDENCE_KEYS} distinct evidence keys"
        ));
    }
    let leaked: &'static str = Box::leak(key.to_string().into_boxed_str());
    keys.insert(leaked);
    Ok(leaked)
}

fn observed(v: serde_json::Value) -> std::result::Result<Observed, String> {
    use serde_json::Value;
    Ok(match v {
        Value::String(s) => Observed::Text(s),
        Value::Bool(b) => Observed::Bool(b),
        Value::Number(n) => Observed::Number(
            n.as_i64()
                .ok_or_else(|| format!("evidence number {n} is not a 64-bit integer"))?,
        ),
        Value::Array(items) => Observed::List(
            items
                .into_iter()
                .map(observed)
                .collect::<std::result::Result<_, _>>()?,
        ),
        Value::Object(m) => match (m.len(), m.get("bytes")) {
            (1, Some(Value::String(b))) => Observed::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| format!("evidence bytes are not base64: {e}"))?,
            ),
            _ => return Err("evidence object other than {\"bytes\": ...}".to_string()),
        },
        Value::Null => return Err("null evidence value".to_string()),
    })
}

fn evidence(raw: RawEvidence) -> std::result::Result<Evidence, String> {
    let mut out = Vec::with_capacity(raw.0.len());
    for (k, v) in raw.0 {
        out.push((intern(&k)?, observed(v)?));
    }
    Ok(Evidence(out))
}

fn time(s: &str, what: &str) -> std::result::Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
        format!(
            "{what} '{}' is not RFC 3339: {e}",
            crate::model::one_line(s, 40)
        )
    })
}

/// Parse and check one shard file on its own.
pub fn parse(path: &Path, bytes: &[u8]) -> std::result::Result<Shard, Rejected> {
    let file = path.display().to_string();
    let bad = |m: String| Rejected(format!("{file}: {m}"));
    if bytes.len() as u64 > MAX_SHARD_BYTES {
        return Err(bad(format!(
            "larger than {} MiB; not a shard report",
            MAX_SHARD_BYTES / (1024 * 1024)
        )));
    }
    let raw: RawReport = serde_json::from_slice(bytes).map_err(|e| {
        bad(format!(
            "not a secgate report ({}): {e}",
            if e.is_eof() { "truncated" } else { "malformed" }
        ))
    })?;
    if raw.schema_version != SCHEMA_VERSION {
        return Err(bad(format!(
            "report schema version {} (this secgate reads {SCHEMA_VERSION})",
            raw.schema_version
        )));
    }
    let (Some(plan_id), Some(info)) = (raw.plan_id, raw.shard) else {
        return Err(bad(
            "not a shard report (no plan_id and shard; write shards with `secgate scan --shard I/N --json FILE`)".into(),
        ));
    };
    crate::shard::ShardSpec::new(info.index, info.count)
        .map_err(|m| bad(format!("bad shard: {m}")))?;
    let label = format!("shard {}/{}", info.index, info.count);
    if !raw.complete {
        return Err(bad(format!(
            "{label} is incomplete (the scan was interrupted); run it again"
        )));
    }
    let started_at = time(&raw.started_at, "started_at").map_err(&bad)?;
    let finished_at = time(&raw.finished_at, "finished_at").map_err(&bad)?;
    let mut targets = Vec::with_capacity(raw.targets.len());
    for t in raw.targets {
        let mut requests = BTreeMap::new();
        for (f, n) in t.requests {
            let family = crate::checks::family(&f)
                .ok_or_else(|| bad(format!("target {}: unknown family '{f}'", t.target)))?;
            requests.insert(family.family(), n);
        }
        targets.push(TargetResult {
            target: t.target,
            address: t.address,
            status: t.status,
            error: t.error,
            requests,
            backoff: t.backoff,
            parent: t.parent,
            chain: t.chain,
        });
    }
    let mut results = Vec::with_capacity(raw.results.len());
    for r in raw.results {
        let at = |m: String| bad(format!("result {} on {}: {m}", r.rule_id, r.target));
        let rule = crate::catalogue::get(&r.rule_id)
            .ok_or_else(|| at("unknown rule (a shard of another secgate version?)".into()))?;
        if rule.family != r.family {
            return Err(at(format!("family '{}' is not the rule's", r.family)));
        }
        let family = crate::checks::family(&rule.family)
            .ok_or_else(|| at("the rule's family is not in this build".into()))?;
        if r.severity != rule.severity || r.title != rule.title {
            return Err(at("severity or title differs from the catalogue".into()));
        }
        let mut o = Outcome {
            rule_id: rule.id.as_str(),
            family: family.family(),
            target: r.target.clone(),
            status: r.status,
            severity: rule.severity,
            title: rule.title.as_str(),
            message: r.message,
            evidence: evidence(r.evidence).map_err(&at)?,
            reason: r.reason,
            fingerprint: crate::model::fingerprint(rule.id.as_str(), &r.target),
            findings: Vec::with_capacity(r.findings.len()),
            subjects: Vec::with_capacity(r.subjects.len()),
            suppressed: r.suppressed,
            suppression: r.suppression,
        };
        if o.fingerprint != r.fingerprint {
            return Err(at("fingerprint does not match the rule and target".into()));
        }
        for f in r.findings {
            let fp = crate::model::finding_fingerprint(o.rule_id, &o.target, &f.subject);
            if fp != f.fingerprint {
                return Err(at(format!(
                    "finding on {} has a fingerprint that does not match",
                    f.subject.key
                )));
            }
            o.findings.push(Finding {
                subject: f.subject,
                message: f.message,
                evidence: evidence(f.evidence).map_err(&at)?,
                fingerprint: fp,
                suppression: f.suppression,
                baseline_state: f.baseline_state,
            });
        }
        for c in r.subjects {
            o.subjects.push(Checked {
                subject: c.subject,
                status: c.status,
                message: c.message,
                reason: c.reason,
            });
        }
        results.push(o);
    }
    Ok(Shard {
        file,
        plan_id,
        info,
        started_at,
        finished_at,
        policy: raw.policy,
        targets,
        results,
    })
}

/// Check that `shards` make one complete scan and assemble its report (triaged and
/// summarised; not yet rendered).
pub fn merge(mut shards: Vec<Shard>) -> std::result::Result<ScanReport, Rejected> {
    let Some(first) = shards.first() else {
        return Err(Rejected("no shard given".into()));
    };
    let (plan_id, count, plan_jobs, first_file) = (
        first.plan_id.clone(),
        first.info.count,
        first.info.plan_jobs,
        first.file.clone(),
    );
    let mut by_index: HashMap<u32, String> = HashMap::new();
    for s in &shards {
        let label = format!("shard {}/{}", s.info.index, s.info.count);
        if s.plan_id != plan_id {
            return Err(Rejected(format!(
                "{}: {label} is of another plan ({}; {first_file} is of {plan_id})",
                s.file, s.plan_id
            )));
        }
        if s.info.count != count || s.info.plan_jobs != plan_jobs {
            return Err(Rejected(format!(
                "{}: {label} disagrees with {first_file} on the shard count or the plan's jobs",
                s.file
            )));
        }
        if let Some(other) = by_index.insert(s.info.index, s.file.clone()) {
            return Err(Rejected(format!(
                "{}: {label} given twice (also {other})",
                s.file
            )));
        }
    }
    if let Some(missing) = (1..=count).find(|i| !by_index.contains_key(i)) {
        let n_missing = (1..=count).filter(|i| !by_index.contains_key(i)).count();
        return Err(Rejected(format!(
            "shard {missing}/{count} is missing ({n_missing} of {count} missing; {} given)",
            shards.len()
        )));
    }
    shards.sort_by_key(|s| s.info.index);

    // Jobs: disjoint, adding up to the plan's; targets in plan order.
    let mut owner: HashMap<(&str, &str), &str> = HashMap::new();
    let mut target_index: HashMap<&str, usize> = HashMap::new();
    for s in &shards {
        for j in &s.info.jobs {
            let JobRecord {
                index,
                target,
                family,
            } = j;
            if let Some(other) = owner.insert((target, family), &s.file) {
                return Err(Rejected(format!(
                    "{}: job ({target}, {family}) is also in {other}",
                    s.file
                )));
            }
            if *target_index.entry(target).or_insert(*index) != *index {
                return Err(Rejected(format!(
                    "{}: target {target} has another plan position than in another shard",
                    s.file
                )));
            }
        }
    }
    if owner.len() != plan_jobs {
        return Err(Rejected(format!(
            "the shards hold {} of their plan's {plan_jobs} jobs: a shard's job list was cut or altered",
            owner.len()
        )));
    }
    // A derived target (found by a port sweep) belongs to the shard that ran its parent's
    // sweep, which lists it with its parent; its results are that shard's.
    let mut derived: HashMap<&str, (&str, &str)> = HashMap::new();
    for s in &shards {
        for t in &s.targets {
            if let Some(parent) = &t.parent {
                if owner.get(&(parent.as_str(), "ports")) != Some(&s.file.as_str()) {
                    return Err(Rejected(format!(
                        "{}: target {} is derived from {parent}, whose port sweep is not this shard's",
                        s.file, t.target
                    )));
                }
                if let Some((other, _)) = derived.insert(&t.target, (&s.file, parent)) {
                    return Err(Rejected(format!(
                        "{}: derived target {} is also in {other}",
                        s.file, t.target
                    )));
                }
            }
        }
    }
    let mut seen: HashMap<(&str, &str), &str> = HashMap::new();
    for s in &shards {
        for o in &s.results {
            let derived_here = derived
                .get(o.target.as_str())
                .is_some_and(|(file, _)| *file == s.file.as_str());
            if !derived_here && owner.get(&(o.target.as_str(), o.family)) != Some(&s.file.as_str())
            {
                return Err(Rejected(format!(
                    "{}: result {} on {} is not one of the shard's jobs",
                    s.file, o.rule_id, o.target
                )));
            }
            if let Some(other) = seen.insert((o.rule_id, o.target.as_str()), &s.file) {
                return Err(Rejected(format!(
                    "{}: duplicate result {} on {} (also in {other})",
                    s.file, o.rule_id, o.target
                )));
            }
        }
        for t in &s.targets {
            if t.parent.is_none() && !target_index.contains_key(t.target.as_str()) {
                return Err(Rejected(format!(
                    "{}: target {} has no job in the shard",
                    s.file, t.target
                )));
            }
        }
    }
    // Report order: plan order, each derived target after its parent in its shard's order.
    let mut position: HashMap<String, (usize, usize)> = target_index
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v, 0)))
        .collect();
    for s in &shards {
        for (n, t) in s.targets.iter().enumerate() {
            if let Some(parent) = &t.parent {
                let at = target_index
                    .get(parent.as_str())
                    .copied()
                    .unwrap_or(usize::MAX);
                position.insert(t.target.clone(), (at, n + 1));
            }
        }
    }
    drop(derived);
    drop(seen);
    drop(owner);

    let policy = shards.first().map(|s| s.policy.clone()).unwrap_or_default();
    let started_at = shards.iter().map(|s| s.started_at).min();
    let finished_at = shards.iter().map(|s| s.finished_at).max();
    let mut targets: BTreeMap<(usize, usize), TargetResult> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(shards.iter().map(|s| s.results.len()).sum());
    for s in shards {
        for t in s.targets {
            let at = position
                .get(&t.target)
                .copied()
                .unwrap_or((usize::MAX, usize::MAX));
            match targets.get_mut(&at) {
                None => {
                    targets.insert(at, t);
                }
                Some(m) => {
                    m.requests.extend(t.requests);
                    if m.address.is_none() {
                        m.address = t.address;
                    }
                    if m.chain.is_none() {
                        m.chain = t.chain;
                    }
                    m.backoff = match (m.backoff, t.backoff) {
                        (Some(a), Some(b)) => Some(Backoff {
                            events: a.events.saturating_add(b.events),
                            waited_ms: a.waited_ms.saturating_add(b.waited_ms),
                        }),
                        (a, b) => a.or(b),
                    };
                }
            }
        }
        outcomes.extend(s.results);
    }
    outcomes.sort_by_cached_key(|o| {
        (
            position
                .get(&o.target)
                .copied()
                .unwrap_or((usize::MAX, usize::MAX)),
            crate::catalogue::index(o.rule_id).unwrap_or(usize::MAX),
        )
    });
    let now = time::OffsetDateTime::now_utc();
    let result = ScanResult {
        started_at: started_at.unwrap_or(now),
        finished_at: finished_at.unwrap_or(now),
        complete: true,
        targets: targets.into_values().collect(),
        outcomes,
    };
    let triaged = crate::triage::triage(result);
    let r = &triaged.result;
    let summary = crate::summarise::summarise(&r.outcomes, &r.targets, r.complete, &policy);
    let mut report = ScanReport::of(triaged.result, policy, summary);
    report.plan_id = Some(plan_id);
    Ok(report)
}
