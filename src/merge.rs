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
//! - no (rule, target) result appears twice;
//! - the slices of a sliced sweep ([`crate::shard`]) are each in exactly one shard, are the
//!   slices their count names (recomputed with [`crate::shard::slices`]), and each recorded
//!   its observation; the merge joins them and runs the family's rules once over the whole
//!   ([`join_slices`]), with the severities and the suppression and baseline marks the
//!   shards' triage gave the slices' own results.
//!
//! Anything else is exit 3 with one line naming the file (or the missing shard): a merge never
//! passes on a partial scan.
//!
//! **Streaming.** The first pass holds one file in memory at a time: its head is kept, each
//! result is checked, tallied for the summary ([`crate::summarise::Tally`]) and dropped, and
//! only an [`Entry`] (file, offset, length, hash of its bytes, target, rule) stays. The
//! cross-file checks then run on the heads and entries. When only JSON reports are asked
//! for (and no terminal report), each is written while a second thread reads every result
//! again from its file in report order, checks its bytes hash as in the first pass (a file
//! changed in between is exit 3), and escapes it; memory does not grow with the results.
//! Other writers get the results read back into memory.

use std::borrow::Cow;
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
    let mut pass = FirstPass::default();
    for path in &args.files {
        let bytes = read_capped(path)?;
        let read = pass.read(path, &bytes);
        drop(bytes);
        if let Err(Rejected(m)) = read {
            return Ok(reject(&m));
        }
    }
    let merged = match pass.finish() {
        Ok(m) => m,
        Err(Rejected(m)) => return Ok(reject(&m)),
    };
    // Only JSON reports and no terminal report: the results are streamed from the shard
    // files into each report, never all in memory. Any other writer reads them from memory.
    // The compliance views are computed from every result: in memory too.
    let streams = outputs.quiet
        && merged.compliance.is_empty()
        && outputs.github_summary.is_none()
        && outputs
            .reports
            .iter()
            .all(|(f, _)| *f == ReportFormat::Json);
    if !streams {
        let report = match merged.report() {
            Ok(r) => r,
            Err(Rejected(m)) => return Ok(reject(&m)),
        };
        return Ok(ExitCode::from(crate::render(report, &outputs)?));
    }
    let mut head = merged.head.clone();
    crate::report::escape::sanitize(&mut head);
    for (_, path) in &outputs.reports {
        let stream = Streamed {
            reader: std::cell::RefCell::new(Reader::new(&merged, true)),
            len: merged.order.len(),
            failed: std::cell::RefCell::new(None),
        };
        let report = head.clone().with_results(&stream);
        let mut body = |out: &mut dyn std::io::Write| -> std::io::Result<()> {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
            out.flush()
        };
        let written = if crate::cli::is_stdout(path) {
            let mut stdout = std::io::stdout().lock();
            match body(&mut stdout) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => r,
            }
        } else {
            crate::report::write_file_with(path, &mut body)
        };
        if let Some(Rejected(m)) = stream.failed.borrow_mut().take() {
            return Ok(reject(&m));
        }
        written.map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
    }
    if outputs.summary_to_stderr {
        let (score, gate) = crate::report::summary_lines(&head);
        eprintln!("{score}\n{gate}");
    }
    Ok(ExitCode::from(crate::exit_code(&head)))
}

fn reject(line: &str) -> ExitCode {
    crate::stderr_line(format_args!("error: merge: {line}"));
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

/// One shard file as the first pass read it: everything but its results, which stay in the
/// file ([`Entry`]).
#[derive(Debug)]
struct Head {
    path: PathBuf,
    file: String,
    plan_id: String,
    info: ShardInfo,
    started_at: time::OffsetDateTime,
    finished_at: time::OffsetDateTime,
    policy: Policy,
    targets: Vec<TargetResult>,
    /// Its results' entries, `entries[results]`.
    results: std::ops::Range<usize>,
    /// The compliance views the shard carried (every shard of a plan asks for the same).
    compliance: Vec<&'static str>,
    /// What its slices of sliced sweeps observed.
    slices: Vec<RawSlice>,
}

/// One slice's record in a shard file ([`crate::model::SliceOutput`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlice {
    target: String,
    family: String,
    slice: crate::model::Slice,
    observation: serde_json::Value,
    marks: Vec<crate::model::Marks>,
}

/// The most slice records one shard file may hold.
pub const MAX_SHARD_SLICES: usize = 65_536;

/// A compliance view as read: only which framework it is (the merge computes it afresh).
#[derive(Deserialize)]
struct RawView {
    framework: String,
}

/// Where one result is in its file and what it is: all the merge keeps of it in memory.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Byte offset of its JSON text in the file.
    offset: u64,
    /// Length of that text.
    len: u32,
    /// Index of the file in [`FirstPass::heads`].
    file: u32,
    /// Interned target.
    target: u32,
    /// Catalogue index of the rule.
    rule: u16,
    /// Hash of its bytes: the second read must find the same ones.
    hash: u64,
}

fn hash_bytes(b: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

/// The first pass: each file read, checked and tallied on its own, one at a time.
#[derive(Default)]
struct FirstPass {
    heads: Vec<Head>,
    entries: Vec<Entry>,
    targets: HashMap<String, u32>,
    target_names: Vec<String>,
    tally: Option<crate::summarise::Tally>,
    /// Results judged across the whole scan (`tls.vuln.drown`), by entry: held back from the
    /// tally until every shard is read, then joined (see [`crate::checks::tls::drown::join`]).
    drown: Vec<(u32, Outcome)>,
}

impl FirstPass {
    fn intern_target(&mut self, t: &str) -> u32 {
        if let Some(n) = self.targets.get(t) {
            return *n;
        }
        let n = u32::try_from(self.target_names.len()).unwrap_or(u32::MAX);
        self.targets.insert(t.to_string(), n);
        self.target_names.push(t.to_string());
        n
    }

    /// Read one shard file: its head, then each result (checked and tallied, then dropped).
    fn read(&mut self, path: &Path, bytes: &[u8]) -> std::result::Result<(), Rejected> {
        let file = path.display().to_string();
        let bad = |m: String| Rejected(format!("{file}: {m}"));
        if bytes.len() as u64 > MAX_SHARD_BYTES {
            return Err(bad(format!(
                "larger than {} MiB; not a shard report",
                MAX_SHARD_BYTES / (1024 * 1024)
            )));
        }
        let raw: RawReport<'_> = serde_json::from_slice(bytes).map_err(|e| {
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
        let file_no =
            u32::try_from(self.heads.len()).map_err(|_| bad("too many shard files".into()))?;
        let mut tally = self
            .tally
            .take()
            .unwrap_or_else(|| crate::summarise::Tally::new(&raw.policy));
        let first = self.entries.len();
        let base = bytes.as_ptr() as usize;
        // A profile gives rules other severities: a shipped one is checked against, a team's
        // own (which the merge cannot read) is taken as the shards say.
        let id = &raw.policy.profile;
        let profile = crate::profile::resolve(&id.spec())
            .ok()
            .filter(|p| p.id() == *id);
        for (n, r) in raw.results.iter().enumerate() {
            let at = |m: String| bad(format!("result {}: {m}", n + 1));
            let text = r.get();
            let o = convert(text, Some(profile.as_deref())).map_err(at)?;
            if o.rule_id == crate::checks::tls::drown::DROWN {
                let entry =
                    u32::try_from(self.entries.len()).map_err(|_| at("too many results".into()))?;
                self.drown.push((entry, o.clone()));
            } else {
                tally.add(&o);
            }
            let offset = (text.as_ptr() as usize).wrapping_sub(base);
            if bytes.get(offset..offset.saturating_add(text.len())) != Some(text.as_bytes()) {
                return Err(at("not where the parser read it".into()));
            }
            let rule = crate::catalogue::index(o.rule_id)
                .and_then(|i| u16::try_from(i).ok())
                .ok_or_else(|| at("unknown rule".into()))?;
            let target = self.intern_target(&o.target);
            self.entries.push(Entry {
                offset: offset as u64,
                len: u32::try_from(text.len()).map_err(|_| at("over 4 GiB".into()))?,
                file: file_no,
                target,
                rule,
                hash: hash_bytes(text.as_bytes()),
            });
        }
        self.tally = Some(tally);
        if raw.slices.len() > MAX_SHARD_SLICES {
            return Err(bad(format!("more than {MAX_SHARD_SLICES} slice records")));
        }
        self.heads.push(Head {
            path: path.to_path_buf(),
            file,
            plan_id,
            info,
            started_at,
            finished_at,
            policy: raw.policy,
            targets,
            results: first..self.entries.len(),
            compliance: raw
                .compliance
                .iter()
                .filter_map(|v| crate::compliance::get(&v.framework))
                .map(|f| f.info.id.as_str())
                .collect(),
            slices: raw.slices,
        });
        Ok(())
    }

    /// Check that the files make one complete scan, and put its results in report order.
    fn finish(self) -> std::result::Result<Merged, Rejected> {
        let FirstPass {
            heads,
            mut entries,
            mut targets,
            mut target_names,
            tally,
            mut drown,
        } = self;
        let mut tally = tally;
        let Some(first) = heads.first() else {
            return Err(Rejected("no shard given".into()));
        };
        let compliance = first.compliance.clone();
        let (plan_id, count, plan_jobs, first_file) = (
            first.plan_id.clone(),
            first.info.count,
            first.info.plan_jobs,
            first.file.clone(),
        );
        let mut by_index: HashMap<u32, String> = HashMap::new();
        for s in &heads {
            let label = format!("shard {}/{}", s.info.index, s.info.count);
            if s.plan_id != plan_id {
                return Err(Rejected(format!(
                    "{}: {label} is of another plan ({}; {first_file} is of {plan_id})",
                    s.file, s.plan_id
                )));
            }
            // The plan's identity hashes the score and critical limits only; the merge
            // gates with one policy, so every shard must have been run with it.
            if s.policy != first.policy {
                return Err(Rejected(format!(
                    "{}: {label} was run with another policy than {first_file}",
                    s.file
                )));
            }
            if s.compliance != first.compliance {
                return Err(Rejected(format!(
                    "{}: {label} was run with other compliance views than {first_file}",
                    s.file
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
                heads.len()
            )));
        }
        let mut in_order: Vec<usize> = (0..heads.len()).collect();
        in_order.sort_by_key(|n| heads.get(*n).map_or(0, |h| h.info.index));

        // Jobs: disjoint, adding up to the plan's; targets in plan order. A slice of a sweep
        // is a job of its own (its index and count in the key).
        let mut owner: HashMap<JobKey<'_>, usize> = HashMap::new();
        let mut target_index: HashMap<&str, usize> = HashMap::new();
        for &n in &in_order {
            let Some(s) = heads.get(n) else { continue };
            for j in &s.info.jobs {
                let JobRecord {
                    index,
                    target,
                    family,
                    slice,
                } = j;
                let part = slice.map(|s| (s.index, s.count));
                if let Some(other) = owner.insert((target, family, part), n) {
                    let other = heads.get(other).map_or("", |h| h.file.as_str());
                    let what = slice.map_or(String::new(), |s| {
                        format!(", slice {}/{}", s.index, s.count)
                    });
                    return Err(Rejected(format!(
                        "{}: job ({target}, {family}{what}) is also in {other}",
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
        let sliced = check_slices(&heads)?;
        if owner.len() != plan_jobs {
            return Err(Rejected(format!(
                "the shards hold {} of their plan's {plan_jobs} jobs: a shard's job list was cut or altered",
                owner.len()
            )));
        }
        // A derived target (found by a port sweep) belongs to the shard that ran its parent's
        // sweep, which lists it with its parent; its results are that shard's.
        let mut derived: HashMap<&str, (usize, &str)> = HashMap::new();
        for &n in &in_order {
            let Some(s) = heads.get(n) else { continue };
            for t in &s.targets {
                if let Some(parent) = &t.parent {
                    if target_index.contains_key(t.target.as_str()) {
                        return Err(Rejected(format!(
                            "{}: derived target {} is also a target of the plan",
                            s.file, t.target
                        )));
                    }
                    let sweeps_here =
                        s.info.jobs.iter().any(|j| {
                            j.target == *parent && j.family == crate::checks::ports::FAMILY
                        });
                    if !sweeps_here {
                        return Err(Rejected(format!(
                            "{}: target {} is derived from {parent}, whose port sweep is not this shard's",
                            s.file, t.target
                        )));
                    }
                    if let Some((other, _)) = derived.insert(&t.target, (n, parent)) {
                        let other = heads.get(other).map_or("", |h| h.file.as_str());
                        return Err(Rejected(format!(
                            "{}: derived target {} is also in {other}",
                            s.file, t.target
                        )));
                    }
                }
            }
        }
        let name = |t: u32| target_names.get(t as usize).map_or("", String::as_str);
        let rule_of = |r: u16| crate::catalogue::all().get(usize::from(r));
        let mut seen: HashMap<u64, usize> = HashMap::with_capacity(entries.len());
        for &n in &in_order {
            let Some(s) = heads.get(n) else { continue };
            for e in entries.get(s.results.clone()).unwrap_or_default() {
                let Some(rule) = rule_of(e.rule) else {
                    continue;
                };
                let target = name(e.target);
                let derived_here = derived.get(target).is_some_and(|(file, _)| *file == n);
                if !derived_here && owner.get(&(target, rule.family.as_str(), None)) != Some(&n) {
                    return Err(Rejected(format!(
                        "{}: result {} on {target} is not one of the shard's jobs",
                        s.file, rule.id
                    )));
                }
                let key = (u64::from(e.target) << 16) | u64::from(e.rule);
                if let Some(other) = seen.insert(key, n) {
                    let other = heads.get(other).map_or("", |h| h.file.as_str());
                    return Err(Rejected(format!(
                        "{}: duplicate result {} on {target} (also in {other})",
                        s.file, rule.id
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
        drop(seen);
        // The sliced sweeps, joined and judged once: their results join the others.
        let policy = heads.first().map(|s| s.policy.clone()).unwrap_or_default();
        let joined = join_slices(&heads, &sliced, &policy)?;
        let mut tally = tally
            .take()
            .unwrap_or_else(|| crate::summarise::Tally::new(&policy));
        for (n, o) in joined.iter().enumerate() {
            tally.add(o);
            let target = match targets.get(o.target.as_str()) {
                Some(t) => *t,
                None => {
                    let t = u32::try_from(target_names.len()).unwrap_or(u32::MAX);
                    targets.insert(o.target.clone(), t);
                    target_names.push(o.target.clone());
                    t
                }
            };
            entries.push(Entry {
                offset: n as u64,
                len: 0,
                file: JOINED,
                target,
                rule: crate::catalogue::index(o.rule_id)
                    .and_then(|i| u16::try_from(i).ok())
                    .unwrap_or(u16::MAX),
                hash: 0,
            });
        }
        drop(targets);
        // Report order: plan order, each derived target after its parent in the order its
        // (joined) chain report lists it.
        let mut position: HashMap<String, (usize, usize)> = target_index
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v, 0)))
            .collect();
        let chains = joined_chains(&heads);
        for s in &heads {
            for (n, t) in s.targets.iter().enumerate() {
                if let Some(parent) = &t.parent {
                    let at = target_index
                        .get(parent.as_str())
                        .copied()
                        .unwrap_or(usize::MAX);
                    let rank = chains
                        .get(parent.as_str())
                        .and_then(|c| c.chained.iter().position(|c| c.target == t.target))
                        .map_or(usize::MAX / 2 + n, |r| r + 1);
                    position.insert(t.target.clone(), (at, rank));
                }
            }
        }
        drop(derived);
        drop(owner);
        drop(target_index);

        // Results in report order: by target (plan order), then catalogue order.
        const LAST: (usize, usize) = (usize::MAX, usize::MAX);
        let target_position: Vec<(usize, usize)> = target_names
            .iter()
            .map(|t| position.get(t).copied().unwrap_or(LAST))
            .collect();
        let mut order: Vec<u32> = (0..u32::try_from(entries.len()).unwrap_or(u32::MAX)).collect();
        order.sort_by_key(|n| {
            entries.get(*n as usize).map_or((LAST, u16::MAX), |e| {
                (
                    target_position
                        .get(e.target as usize)
                        .copied()
                        .unwrap_or(LAST),
                    e.rule,
                )
            })
        });
        let mut families: Vec<&'static str> = Vec::new();
        for n in &order {
            if let Some(rule) = entries.get(*n as usize).and_then(|e| rule_of(e.rule))
                && let Some(f) = crate::checks::family(&rule.family)
                && !families.contains(&f.family())
            {
                families.push(f.family());
            }
        }

        let started_at = heads.iter().map(|s| s.started_at).min();
        let finished_at = heads.iter().map(|s| s.finished_at).max();
        let mut targets: BTreeMap<(usize, usize), TargetResult> = BTreeMap::new();
        let mut files = Vec::with_capacity(heads.len());
        for s in heads {
            files.push((s.path, s.file));
            for t in s.targets {
                let at = position.get(&t.target).copied().unwrap_or(LAST);
                match targets.get_mut(&at) {
                    None => {
                        targets.insert(at, t);
                    }
                    Some(m) => join_target(m, t),
                }
            }
        }
        for t in targets.values_mut() {
            if let Some(c) = chains.get(t.target.as_str()) {
                t.chain = Some(c.clone());
            }
        }
        let now = time::OffsetDateTime::now_utc();
        let result = ScanResult {
            started_at: started_at.unwrap_or(now),
            finished_at: finished_at.unwrap_or(now),
            complete: true,
            targets: targets.into_values().collect(),
            outcomes: Vec::new(),
        };
        // A shard could not see the others' endpoints: the whole scan decides DROWN again,
        // in report order (as one scan's engine does).
        let rank: HashMap<u32, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        drown.sort_by_key(|(n, _)| rank.get(n).copied().unwrap_or(usize::MAX));
        {
            // The shards triaged these results; the join rebuilds their findings, so what
            // triage marked (suppressions, baseline states) is carried over by subject.
            let marks: Vec<crate::model::Marks> = drown
                .iter()
                .map(|(_, o)| crate::model::Marks::of(o))
                .collect();
            let mut refs: Vec<&mut Outcome> = drown.iter_mut().map(|(_, o)| o).collect();
            crate::checks::tls::drown::join(&mut refs, None);
            for ((_, o), m) in drown.iter_mut().zip(&marks) {
                remark(o, m);
            }
        }
        for (_, o) in &drown {
            tally.add(o);
        }
        let drown: HashMap<u32, Outcome> = drown.into_iter().collect();
        // Triage of a merge adds nothing to what each shard's did (see `convert`, and
        // `join_slices` for the marks of sliced sweeps), and the summary is the tally of every
        // result the first pass read and of the joined ones.
        let summary = tally.finish(
            &result.targets,
            result.complete,
            &policy,
            &crate::summarise::GateNotes::default(),
        );
        let mut head = ScanReport::of(result, policy, summary);
        head.families = families;
        head.plan_id = Some(plan_id);
        Ok(Merged {
            head,
            files,
            entries,
            order,
            target_names,
            compliance,
            joined,
            drown,
        })
    }
}

/// A job as the merge tells jobs apart: (target, family, slice index and count).
type JobKey<'a> = (&'a str, &'a str, Option<(u32, u32)>);

/// The sliced sweeps of the shards, by (target, family): every slice once, in index order,
/// with the index of the shard file that ran it.
type Sliced = BTreeMap<(String, String), Vec<(usize, crate::model::Slice)>>;

/// Check the slices of every sliced sweep: each is the slice its count names (so no two
/// overlap and together they cover the sweep), none is missing, none is also run whole, and
/// each recorded one observation in the shard that ran it (and no shard records another's).
/// A slice listed twice is caught with the jobs.
fn check_slices(heads: &[Head]) -> std::result::Result<Sliced, Rejected> {
    let file = |n: usize| heads.get(n).map_or("", |h| h.file.as_str());
    let mut out: Sliced = BTreeMap::new();
    let mut whole: HashSet<(&str, &str)> = HashSet::new();
    for (n, h) in heads.iter().enumerate() {
        for j in &h.info.jobs {
            match j.slice {
                Some(s) => out
                    .entry((j.target.clone(), j.family.clone()))
                    .or_default()
                    .push((n, s)),
                None => {
                    whole.insert((&j.target, &j.family));
                }
            }
        }
    }
    for ((target, family), list) in &mut out {
        list.sort_by_key(|(_, s)| s.index);
        let Some(&(n0, first)) = list.first() else {
            continue;
        };
        let name = format!("({target}, {family})");
        let at = |n: usize, s: &crate::model::Slice| {
            format!("{}: slice {}/{} of {name}", file(n), s.index, s.count)
        };
        if whole.contains(&(target.as_str(), family.as_str())) {
            return Err(Rejected(format!(
                "{} is also a whole job in another shard (shards of different plans)",
                at(n0, &first)
            )));
        }
        if !crate::checks::family(family).is_some_and(|f| f.sliceable()) {
            return Err(Rejected(format!(
                "{}: the family is not one whose sweeps are sliced",
                at(n0, &first)
            )));
        }
        let t = crate::target::Target::parse(target)
            .map_err(|_| Rejected(format!("{}: not a target", at(n0, &first))))?;
        let addresses = u64::try_from(t.address_count()).unwrap_or(u64::MAX);
        let expected = crate::shard::slices(addresses, first.port_count, first.count);
        if expected.len() != first.count as usize {
            return Err(Rejected(format!(
                "{}: {} is not a slice count of this sweep (altered, or of another plan)",
                at(n0, &first),
                first.count
            )));
        }
        for &(n, s) in list.iter() {
            if s.count != first.count || s.port_count != first.port_count {
                return Err(Rejected(format!(
                    "{} overlaps slice {}/{} in {} (another slice count or port list: a slice of another plan)",
                    at(n, &s),
                    first.index,
                    first.count,
                    file(n0)
                )));
            }
            if s.index == 0 || expected.get(s.index as usize - 1) != Some(&s) {
                return Err(Rejected(format!(
                    "{} is not the slice its count names (its addresses or ports were altered, or it is of another plan)",
                    at(n, &s)
                )));
            }
        }
        if let Some(missing) = (1..=first.count).find(|i| !list.iter().any(|(_, s)| s.index == *i))
        {
            let n_missing = (1..=first.count)
                .filter(|i| !list.iter().any(|(_, s)| s.index == *i))
                .count();
            return Err(Rejected(format!(
                "slice {missing}/{} of {name} is missing ({n_missing} of its {} slices are in no shard's jobs)",
                first.count, first.count
            )));
        }
    }
    for (n, h) in heads.iter().enumerate() {
        let mut seen: HashSet<(&str, &str, u32)> = HashSet::new();
        for r in &h.slices {
            let key = (r.target.clone(), r.family.clone());
            let name = format!(
                "slice {}/{} of ({}, {})",
                r.slice.index, r.slice.count, r.target, r.family
            );
            let ran_here = out
                .get(&key)
                .is_some_and(|l| l.iter().any(|(m, s)| *m == n && *s == r.slice));
            if !ran_here {
                return Err(Rejected(format!(
                    "{}: an observation of {name}, which is not one of the shard's jobs",
                    h.file
                )));
            }
            if !seen.insert((&r.target, &r.family, r.slice.index)) {
                return Err(Rejected(format!("{}: {name} is recorded twice", h.file)));
            }
        }
        for j in &h.info.jobs {
            let Some(s) = j.slice else { continue };
            // A target this shard could not reach ran no check: nothing to record.
            if unreachable_in(h, &j.target) {
                continue;
            }
            if !h
                .slices
                .iter()
                .any(|r| r.target == j.target && r.family == j.family && r.slice == s)
            {
                return Err(Rejected(format!(
                    "{}: slice {}/{} of ({}, {}) recorded no observation (its sweep did not run to its end)",
                    h.file, s.index, s.count, j.target, j.family
                )));
            }
        }
    }
    Ok(out)
}

/// Whether the shard could not reach `target` (no check ran there).
fn unreachable_in(h: &Head, target: &str) -> bool {
    h.targets
        .iter()
        .any(|t| t.target == target && t.status == TargetStatus::Unreachable)
}

/// Join the slices of every sliced sweep and run the family's rules once over the whole, as
/// one unsharded sweep would (a target no shard reached gets no results, as in one scan; one
/// that only some reached is inconclusive, naming the first slice that was not swept); the results get the marks the shards' triage gave the slices'
/// own results ([`apply_marks`]).
fn join_slices(
    heads: &[Head],
    sliced: &Sliced,
    policy: &Policy,
) -> std::result::Result<Vec<Outcome>, Rejected> {
    use crate::checks::ports;
    let id = &policy.profile;
    let profile = crate::profile::resolve(&id.spec())
        .ok()
        .filter(|p| p.id() == *id);
    let mut out = Vec::new();
    for ((target, family), list) in sliced {
        let name = format!("({target}, {family})");
        if family != ports::FAMILY {
            return Err(Rejected(format!(
                "{name}: the family is not one whose sweeps are sliced"
            )));
        }
        let t = crate::target::Target::parse(target)
            .map_err(|_| Rejected(format!("sliced {name}: not a target")))?;
        let mut parts = Vec::with_capacity(list.len());
        let mut marks: Vec<&crate::model::Marks> = Vec::new();
        let mut unswept: Option<crate::model::Slice> = None;
        for &(n, s) in list {
            let h = heads
                .get(n)
                .ok_or_else(|| Rejected("internal error: a slice of no file".into()))?;
            if unreachable_in(h, target) {
                unswept = unswept.or(Some(s));
                continue;
            }
            let at = |m: String| {
                Rejected(format!(
                    "{}: slice {}/{} of {name}: {m}",
                    h.file, s.index, s.count
                ))
            };
            let r = h
                .slices
                .iter()
                .find(|r| r.target == *target && r.family == *family && r.slice == s)
                .ok_or_else(|| at("recorded no observation".into()))?;
            parts.push((s, ports::slice::read(&t, &s, &r.observation).map_err(at)?));
            marks.extend(&r.marks);
        }
        if parts.is_empty() {
            continue;
        }
        let mut whole = ports::slice::join(parts).map_err(|m| Rejected(format!("{name}: {m}")))?;
        if let Some(s) = unswept {
            whole.failure = Some(crate::model::Reason::new(
                crate::model::ReasonKind::Refused,
                format!(
                    "the shard that held slice {}/{} of the sweep could not reach the target",
                    s.index, s.count
                ),
            ));
        }
        let mut results = ports::evaluate(&whole, target);
        apply_marks(&mut results, &marks, profile.as_deref(), id)
            .map_err(|m| Rejected(format!("{name}: {m}")))?;
        out.extend(results);
    }
    Ok(out)
}

/// Give the results judged over joined slices what triage gave the slices' own results:
/// the severity (checked against a shipped profile, as every result is), a finding's
/// suppression and baseline state by its subject, and an inconclusive result's suppression.
fn apply_marks(
    results: &mut [Outcome],
    marks: &[&crate::model::Marks],
    profile: Option<&crate::profile::Profile>,
    id: &crate::profile::ProfileId,
) -> std::result::Result<(), String> {
    for o in results {
        let mine: Vec<&crate::model::Marks> = marks
            .iter()
            .copied()
            .filter(|m| m.rule_id == o.rule_id)
            .collect();
        let Some(first) = mine.first() else {
            return Err(format!("no slice recorded the marks of {}", o.rule_id));
        };
        if mine
            .iter()
            .any(|m| m.severity != first.severity || m.disabled != first.disabled)
        {
            return Err(format!(
                "the slices disagree on the severity of {}",
                o.rule_id
            ));
        }
        match profile {
            Some(p) => {
                p.apply(std::slice::from_mut(o));
                if o.severity != first.severity || (o.status == Status::Skipped) != first.disabled {
                    return Err(format!(
                        "the slices' severity of {} differs from the catalogue and the profile",
                        o.rule_id
                    ));
                }
            }
            // A team's own profile, which the merge cannot read: as the shards say.
            None => {
                o.severity = first.severity;
                if first.disabled {
                    o.status = Status::Skipped;
                    o.message = format!("disabled by the profile {}", id.label());
                    o.evidence = Evidence::none();
                    o.reason = None;
                    o.findings.clear();
                    o.subjects.clear();
                }
            }
        }
        for f in &mut o.findings {
            if let Some(m) = mine
                .iter()
                .flat_map(|m| &m.findings)
                .find(|m| m.subject == f.subject.key)
            {
                f.suppression = m.suppression.clone();
                f.baseline_state = m.baseline_state;
            }
        }
        match o.status {
            Status::Fail => o.suppressed = crate::triage::fully_suppressed(o),
            Status::Inconclusive => {
                if let Some(s) = mine.iter().find_map(|m| m.suppression.clone()) {
                    o.suppression = Some(s);
                    o.suppressed = true;
                }
            }
            Status::Pass | Status::Skipped => {}
        }
    }
    Ok(())
}

/// Give a result judged again by the merge what triage gave it in its shard: each finding's
/// suppression and baseline state by subject key, and the result's own suppression only while
/// it stays inconclusive (a fail is suppressed only when all its findings are).
fn remark(o: &mut Outcome, m: &crate::model::Marks) {
    for f in &mut o.findings {
        let mark = m.findings.iter().find(|x| x.subject == f.subject.key);
        f.suppression = mark.and_then(|x| x.suppression.clone());
        f.baseline_state = mark.and_then(|x| x.baseline_state);
    }
    match o.status {
        Status::Fail => {
            o.suppression = None;
            o.suppressed = crate::triage::fully_suppressed(o);
        }
        Status::Inconclusive => {
            o.suppression = m.suppression.clone();
            o.suppressed = o.suppression.is_some();
        }
        Status::Pass | Status::Skipped => {
            o.suppression = None;
            o.suppressed = false;
        }
    }
}

/// Every target's chain report, joined over the shards (a sliced sweep chains in each shard
/// that ran a slice), in the order one scan lists them: by address and port.
fn joined_chains(heads: &[Head]) -> HashMap<String, crate::model::ChainReport> {
    let mut out: HashMap<String, crate::model::ChainReport> = HashMap::new();
    for h in heads {
        for t in &h.targets {
            if let Some(c) = &t.chain {
                let e = out.entry(t.target.clone()).or_default();
                e.chained.extend(c.chained.iter().cloned());
                e.not_chained.extend(c.not_chained.iter().cloned());
            }
        }
    }
    let key = |a: &str| {
        a.parse::<std::net::SocketAddr>()
            .map_or((1, None), |a| (0, Some((a.ip(), a.port()))))
    };
    for c in out.values_mut() {
        c.chained.sort_by_cached_key(|c| key(&c.address));
        c.not_chained.sort_by_cached_key(|c| key(&c.address));
    }
    out
}

/// One target as several shards saw it (its families, or its slices, in several): requests
/// and back-off added up, the first address kept (the chain is [`joined_chains`]'s).
fn join_target(m: &mut TargetResult, t: TargetResult) {
    for (f, n) in t.requests {
        let e = m.requests.entry(f).or_default();
        *e = e.saturating_add(n);
    }
    if m.address.is_none() {
        m.address = t.address;
    }
    m.backoff = match (m.backoff, t.backoff) {
        (Some(a), Some(b)) => Some(Backoff {
            events: a.events.saturating_add(b.events),
            waited_ms: a.waited_ms.saturating_add(b.waited_ms),
        }),
        (a, b) => a.or(b),
    };
}

/// The checked shards: the merged report without its results, and where those are.
struct Merged {
    head: ScanReport,
    /// (path, name in messages) of every file.
    files: Vec<(PathBuf, String)>,
    entries: Vec<Entry>,
    /// Indexes into `entries`, in report order.
    order: Vec<u32>,
    target_names: Vec<String>,
    /// The compliance views asked for (the first shard's).
    compliance: Vec<&'static str>,
    /// The results of the sliced sweeps, judged by the merge (entries of file [`JOINED`]).
    joined: Vec<Outcome>,
    /// Results decided again across the shards (`tls.vuln.drown`), by entry: they replace what
    /// the shard said.
    drown: HashMap<u32, Outcome>,
}

/// The `file` of an [`Entry`] that is a result of a joined sliced sweep: its `offset` indexes
/// [`Merged::joined`].
const JOINED: u32 = u32::MAX;

impl Merged {
    /// The whole report in memory (for the writers other than JSON).
    fn report(&self) -> std::result::Result<ScanReport, Rejected> {
        let mut reader = Reader::new(self, false);
        let mut results = Vec::with_capacity(self.order.len());
        while let Some(o) = reader.next() {
            results.push(o?);
        }
        let mut report = self.head.clone();
        report.results = results;
        report.compliance = crate::compliance::views(&self.compliance, &report.results);
        Ok(report)
    }
}

/// The second pass: the results read again from their files, in report order.
struct Reader<'m> {
    merged: &'m Merged,
    sanitize: bool,
    files: Vec<Option<(std::io::BufReader<std::fs::File>, u64)>>,
    next: usize,
    buf: Vec<u8>,
}

impl<'m> Reader<'m> {
    fn new(merged: &'m Merged, sanitize: bool) -> Reader<'m> {
        // One open file per shard while the results are read again.
        let _ = crate::checks::ports::sweep::raise_fd_limit();
        Reader {
            merged,
            sanitize,
            files: (0..merged.files.len()).map(|_| None).collect(),
            next: 0,
            buf: Vec::new(),
        }
    }

    fn next(&mut self) -> Option<std::result::Result<Outcome, Rejected>> {
        let n = *self.merged.order.get(self.next)?;
        self.next += 1;
        let e = *self.merged.entries.get(n as usize)?;
        let read = self.read(e);
        Some(match (read, self.merged.drown.get(&n)) {
            (Ok(_), Some(joined)) => {
                let mut o = joined.clone();
                if self.sanitize {
                    crate::report::escape::outcome(&mut o);
                }
                Ok(o)
            }
            (read, _) => read,
        })
    }

    fn read(&mut self, e: Entry) -> std::result::Result<Outcome, Rejected> {
        use std::io::{Seek, SeekFrom};
        if e.file == JOINED {
            let mut o = usize::try_from(e.offset)
                .ok()
                .and_then(|n| self.merged.joined.get(n))
                .cloned()
                .ok_or_else(|| Rejected("internal error: a joined result is missing".into()))?;
            if self.sanitize {
                crate::report::escape::outcome(&mut o);
            }
            return Ok(o);
        }
        let (path, file) = self
            .merged
            .files
            .get(e.file as usize)
            .ok_or_else(|| Rejected("internal error: a result of no file".into()))?;
        let bad = |m: String| Rejected(format!("{file}: {m}"));
        let slot = self
            .files
            .get_mut(e.file as usize)
            .ok_or_else(|| bad("internal error: no reader".into()))?;
        if slot.is_none() {
            let f = std::fs::File::open(path)
                .map_err(|err| bad(format!("cannot be read again: {err}")))?;
            *slot = Some((std::io::BufReader::with_capacity(1 << 16, f), 0));
        }
        let Some((reader, at)) = slot.as_mut() else {
            return Err(bad("internal error: no reader".into()));
        };
        let io = |err: std::io::Error| bad(format!("cannot be read again: {err}"));
        match e
            .offset
            .checked_sub(*at)
            .and_then(|d| i64::try_from(d).ok())
        {
            Some(ahead) => reader.seek_relative(ahead).map_err(io)?,
            None => {
                reader.seek(SeekFrom::Start(e.offset)).map_err(io)?;
            }
        }
        self.buf.resize(e.len as usize, 0);
        reader.read_exact(&mut self.buf).map_err(|err| {
            bad(format!(
                "changed while it was merged (cannot read a result again: {err})"
            ))
        })?;
        *at = e.offset.saturating_add(u64::from(e.len));
        if hash_bytes(&self.buf) != e.hash {
            return Err(bad("changed while it was merged".into()));
        }
        let text = std::str::from_utf8(&self.buf)
            .map_err(|_| bad("changed while it was merged".into()))?;
        let mut o =
            convert(text, None).map_err(|m| bad(format!("changed while it was merged: {m}")))?;
        let expected = self.merged.target_names.get(e.target as usize);
        if expected != Some(&o.target)
            || crate::catalogue::index(o.rule_id) != Some(usize::from(e.rule))
        {
            return Err(bad("changed while it was merged".into()));
        }
        if self.sanitize {
            crate::report::escape::outcome(&mut o);
        }
        Ok(o)
    }
}

/// The results of a merged JSON report, read from the shard files as they are written.
struct Streamed<'m> {
    reader: std::cell::RefCell<Reader<'m>>,
    len: usize,
    /// Why the stream stopped early, when it did.
    failed: std::cell::RefCell<Option<Rejected>>,
}

impl serde::Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let mut reader = self
            .reader
            .try_borrow_mut()
            .map_err(|_| S::Error::custom("the merged results are already being written"))?;
        let mut seq = ser.serialize_seq(Some(self.len))?;
        // Results are read and checked on a second thread while this one writes them.
        let reader: &mut Reader<'_> = &mut reader;
        let mut failed = None;
        let written = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(256);
            scope.spawn(move || {
                while let Some(next) = reader.next() {
                    let stop = next.is_err();
                    if tx.send(next).is_err() || stop {
                        break;
                    }
                }
                reader
            });
            for next in rx {
                match next {
                    Ok(o) => seq.serialize_element(&o)?,
                    Err(rejected) => {
                        let line = rejected.0.clone();
                        failed = Some(rejected);
                        return Err(S::Error::custom(line));
                    }
                }
            }
            Ok(())
        });
        if let Some(rejected) = failed {
            self.failed.replace(Some(rejected));
        }
        written?;
        seq.end()
    }
}

#[derive(Deserialize)]
struct RawReport<'a> {
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
    /// Each result as its bytes in the file: checked one at a time, then read again from
    /// the file when the report is written.
    #[serde(borrow)]
    results: Vec<&'a serde_json::value::RawValue>,
    #[serde(default)]
    compliance: Vec<RawView>,
    #[serde(default)]
    slices: Vec<RawSlice>,
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
struct RawOutcome<'a> {
    #[serde(borrow)]
    rule_id: Cow<'a, str>,
    #[serde(borrow)]
    family: Cow<'a, str>,
    target: String,
    status: Status,
    severity: Severity,
    #[serde(borrow)]
    title: Cow<'a, str>,
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

/// Evidence in file order (a JSON object read as a list of entries), read straight into
/// [`Evidence`]: keys interned, values as [`Observed`].
struct RawEvidence(Evidence);

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
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    let key = intern(&k).map_err(serde::de::Error::custom)?;
                    let RawObserved(v) = map.next_value()?;
                    out.push((key, v));
                }
                Ok(RawEvidence(Evidence(out)))
            }
        }
        d.deserialize_map(V)
    }
}

/// One evidence value: text, an integer, a flag, a list, or `{"bytes": base64}`.
struct RawObserved(Observed);

impl<'de> Deserialize<'de> for RawObserved {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObserved;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "an evidence value (text, integer, boolean, list or {\"bytes\": base64})",
                )
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<RawObserved, E> {
                Ok(RawObserved(Observed::Text(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(
                self,
                v: String,
            ) -> std::result::Result<RawObserved, E> {
                Ok(RawObserved(Observed::Text(v)))
            }
            fn visit_bool<E: serde::de::Error>(
                self,
                v: bool,
            ) -> std::result::Result<RawObserved, E> {
                Ok(RawObserved(Observed::Bool(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<RawObserved, E> {
                Ok(RawObserved(Observed::Number(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<RawObserved, E> {
                i64::try_from(v)
                    .map(|n| RawObserved(Observed::Number(n)))
                    .map_err(|_| E::custom(format!("evidence number {v} is not a 64-bit integer")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<RawObserved, E> {
                Err(E::custom(format!(
                    "evidence number {v} is not a 64-bit integer"
                )))
            }
            fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<RawObserved, E> {
                Err(E::custom("null evidence value"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<RawObserved, A::Error> {
                let mut items = Vec::new();
                while let Some(RawObserved(v)) = seq.next_element()? {
                    items.push(v);
                }
                Ok(RawObserved(Observed::List(items)))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawObserved, A::Error> {
                let other = || A::Error::custom("evidence object other than {\"bytes\": ...}");
                let Some(key) = map.next_key::<Cow<'de, str>>()? else {
                    return Err(other());
                };
                if key != "bytes" {
                    return Err(other());
                }
                let b: Cow<'de, str> = map.next_value()?;
                if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(other());
                }
                base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map(|b| RawObserved(Observed::Bytes(b)))
                    .map_err(|e| A::Error::custom(format!("evidence bytes are not base64: {e}")))
            }
        }
        d.deserialize_any(V)
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

fn time(s: &str, what: &str) -> std::result::Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
        format!(
            "{what} '{}' is not RFC 3339: {e}",
            crate::model::one_line(s, 40)
        )
    })
}

/// One result of a shard file, checked against this build's catalogue: rule, family,
/// severity and title must be the catalogue's, and (with `verify`) the result's and its
/// findings' fingerprints the ones secgate computes. The second pass reads bytes the first
/// verified (their hash is checked), so it need not hash them again.
///
/// A failed result is marked suppressed exactly when all its findings are (what triage does;
/// a merge reads no suppressions file of its own, so triage adds nothing else).
fn convert(
    text: &str,
    verify: Option<Option<&crate::profile::Profile>>,
) -> std::result::Result<Outcome, String> {
    // `verify`: check everything (pass 1), with the shards' profile when it is a shipped one;
    // `None`: bytes already checked (pass 2).
    let profile = verify.flatten();
    let verify = verify.is_some();
    let r: RawOutcome<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let at = |m: &str| {
        format!(
            "{} on {}: {m}",
            crate::model::one_line(&r.rule_id, 80),
            crate::model::one_line(&r.target, 200)
        )
    };
    let rule = crate::catalogue::get(&r.rule_id)
        .ok_or_else(|| at("unknown rule (a shard of another secgate version?)"))?;
    if rule.family != r.family {
        return Err(at(&format!(
            "family '{}' is not the rule's",
            crate::model::one_line(&r.family, 40)
        )));
    }
    let family = crate::checks::family(&rule.family)
        .ok_or_else(|| at("the rule's family is not in this build"))?;
    let expected = profile.map_or(r.severity, |p| p.severity(rule.id.as_str(), rule.severity));
    if (verify && r.severity != expected) || r.title != rule.title {
        return Err(at(
            "severity or title differs from the catalogue and the profile",
        ));
    }
    if verify && crate::model::fingerprint(rule.id.as_str(), &r.target) != r.fingerprint {
        return Err(at("fingerprint does not match the rule and target"));
    }
    let mut findings = Vec::with_capacity(r.findings.len());
    for f in r.findings {
        if verify
            && crate::model::finding_fingerprint(rule.id.as_str(), &r.target, &f.subject)
                != f.fingerprint
        {
            return Err(at(&format!(
                "finding on {} has a fingerprint that does not match",
                crate::model::one_line(&f.subject.key, 200)
            )));
        }
        findings.push(Finding {
            subject: f.subject,
            message: f.message,
            evidence: f.evidence.0,
            fingerprint: f.fingerprint,
            suppression: f.suppression,
            baseline_state: f.baseline_state,
        });
    }
    let mut o = Outcome {
        rule_id: rule.id.as_str(),
        family: family.family(),
        target: r.target,
        status: r.status,
        severity: r.severity,
        title: rule.title.as_str(),
        message: r.message,
        evidence: r.evidence.0,
        reason: r.reason,
        fingerprint: r.fingerprint,
        findings,
        subjects: r
            .subjects
            .into_iter()
            .map(|c| Checked {
                subject: c.subject,
                status: c.status,
                message: c.message,
                reason: c.reason,
            })
            .collect(),
        suppressed: r.suppressed,
        suppression: r.suppression,
    };
    if o.status == Status::Fail {
        o.suppressed = crate::triage::fully_suppressed(&o);
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests: a failed assumption is a failed test"
    )]

    use super::*;

    /// A one-shard report of two passed headers results, as `secgate scan --shard 1/1` writes it.
    fn shard_json(message: &str) -> String {
        let target = "https://a.test/";
        let mut e = crate::engine::Emitter::new("headers", target);
        e.pass("headers.hsts.missing", message, Evidence::none());
        e.pass("headers.xcto.missing", message, Evidence::none());
        let now = time::OffsetDateTime::now_utc();
        let result = ScanResult {
            started_at: now,
            finished_at: now,
            complete: true,
            targets: Vec::new(),
            outcomes: e.finish(),
        };
        let policy = Policy::default();
        let summary = crate::summarise::summarise(&result.outcomes, &result.targets, true, &policy);
        let mut report = ScanReport::of(result, policy, summary);
        report.plan_id = Some("0123456789abcdef0123456789abcdef".into());
        report.shard = Some(ShardInfo {
            index: 1,
            count: 1,
            plan_jobs: 1,
            jobs: vec![JobRecord {
                index: 0,
                target: target.into(),
                family: "headers".into(),
                slice: None,
            }],
        });
        serde_json::to_string_pretty(&report).unwrap()
    }

    fn first_pass(path: &Path) -> Merged {
        let mut pass = FirstPass::default();
        pass.read(path, &std::fs::read(path).unwrap()).unwrap();
        pass.finish().unwrap()
    }

    #[test]
    fn the_second_pass_reads_back_what_the_first_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-1.json");
        std::fs::write(&path, shard_json("served over HTTPS")).unwrap();
        let merged = first_pass(&path);
        assert_eq!(merged.head.summary.results.pass, 2);
        let report = merged.report().unwrap();
        let ids: Vec<&str> = report.results.iter().map(|o| o.rule_id).collect();
        assert_eq!(ids, ["headers.hsts.missing", "headers.xcto.missing"]);
        assert_eq!(report.results[0].message, "served over HTTPS");
    }

    #[test]
    fn a_file_changed_between_the_passes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-1.json");
        std::fs::write(&path, shard_json("served over HTTPS")).unwrap();
        let merged = first_pass(&path);
        // The same length, another message: offsets still fit, the bytes do not.
        std::fs::write(&path, shard_json("served over HTTPX")).unwrap();
        let Err(Rejected(line)) = merged.report() else {
            panic!("a changed file was read as if it were the one checked")
        };
        assert!(
            line.contains("shard-1.json") && line.contains("changed while it was merged"),
            "{line}"
        );
        // Cut short: the same.
        std::fs::write(&path, "{}").unwrap();
        let Err(Rejected(line)) = merged.report() else {
            panic!("a truncated file was read")
        };
        assert!(line.contains("changed while it was merged"), "{line}");
    }

    #[test]
    fn evidence_is_read_into_its_types_and_odd_values_are_refused() {
        let ok: RawObserved = serde_json::from_str(r#"{"bytes": "b2v/"}"#).unwrap();
        assert_eq!(ok.0, Observed::Bytes(b"ok\xff".to_vec()));
        let list: RawObserved = serde_json::from_str(r#"["a", 7, true]"#).unwrap();
        assert_eq!(
            list.0,
            Observed::List(vec![
                Observed::Text("a".into()),
                Observed::Number(7),
                Observed::Bool(true)
            ])
        );
        for bad in [
            "null",
            "1.5",
            "18446744073709551615",
            r#"{"bytes": "!!"}"#,
            r#"{"bytes": "b2v/", "x": 1}"#,
            r#"{"text": "a"}"#,
        ] {
            assert!(serde_json::from_str::<RawObserved>(bad).is_err(), "{bad}");
        }
    }
}
