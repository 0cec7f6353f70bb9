//! Sharding: one scan split over N machines (a CI matrix, a Kubernetes Indexed Job), each
//! running the jobs of one shard, merged afterwards by [`crate::merge`].
//!
//! A **job** is a (target, family) pair, exactly as the scheduler sees it
//! ([`crate::engine::schedule::selected`]), including a family asked for by name that does not
//! apply (it still owes its `skipped` results). The partition is a pure function of the plan:
//!
//! 1. every job gets an estimated cost, its request budget on the target
//!    ([`crate::engine::Family::budget`]; a ports sweep of a /24 costs 256 times a host's), and
//!    a stable key hash (SHA-256 of `target id \0 family`);
//! 2. jobs are taken by decreasing cost, ties by key hash, and each goes to the shard with the
//!    least cost so far (ties to the lowest index): the longest-processing-time rule.
//!
//! **Slices.** A sweep that can be cut ([`Family::sweep_shape`]: the ports family on a range,
//! or over more than 1,024 ports) costs its (address, port) pairs on top of its budget. With
//! more than one shard, such a job whose cost exceeds `total / (4 N)` is cut into
//! `ceil(cost / (total / (4 N)))` slices ([`slices`]: CIDR sub-blocks of the range, a power of
//! two of them; past one address per block, or on a single host, runs of the port list), each
//! a job of its own, keyed `target \0 family \0 slice index/count`. Every (address, port) pair
//! is in exactly one slice, and the slices are a pure function of (addresses, ports, count),
//! which the merge recomputes to check them. A shard sweeps its slices and records what each
//! observed; the merge joins them and runs the rules once (see [`crate::merge`]).
//!
//! Nothing depends on the machine, the clock or the order of a hash map, so every shard of one
//! plan computes the same assignment, and every job lands in exactly one shard.
//!
//! The plan's identity ([`plan_id`]) is a hash of what decides the results (targets, families,
//! their options, the settings that change what is observed, the policy), never of secrets nor
//! of performance knobs (`--concurrency`, `--per-host`), so shards may run on machines tuned
//! differently but not on different plans.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::engine::Family;
use crate::engine::schedule::selected;
use crate::error::{Error, Result};
use crate::model::Slice;
use crate::plan::ScanPlan;

/// The most slices one job is cut into.
pub const MAX_SLICES: u32 = 4096;

/// The most shards a scan may be split into.
pub const MAX_SHARDS: u32 = 10_000;

/// Which shard this run is: `index` of `count`, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// 1..=count.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl ShardSpec {
    /// Parse `I/N` (1-based).
    pub fn parse(s: &str) -> std::result::Result<ShardSpec, String> {
        let (i, n) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("expected I/N (e.g. 2/5), got '{s}'"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index '{i}' is not a whole number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count '{n}' is not a whole number"))?;
        ShardSpec::new(index, count)
    }

    /// Check `index` in `1..=count`, `count` in `1..=MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> std::result::Result<ShardSpec, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "shard count must be 1 to {MAX_SHARDS}, got {count}"
            ));
        }
        if index == 0 || index > count {
            return Err(format!(
                "shard index must be 1 to {count} (1-based), got {index}"
            ));
        }
        Ok(ShardSpec { index, count })
    }
}

/// Where the shard comes from on the command line and in the environment.
#[derive(Clone, Debug, Default)]
pub struct ShardSource {
    /// `--shard I/N`.
    pub flag: Option<String>,
    /// `--shard-from-env`.
    pub from_env: bool,
    /// `--shards N` (with `--shard-from-env` and `JOB_COMPLETION_INDEX`).
    pub shards: Option<i64>,
}

/// Decide the shard: `--shard`, then `--shard-from-env` (Kubernetes `JOB_COMPLETION_INDEX`,
/// 0-based, with `--shards N`; else GitLab `CI_NODE_INDEX`/`CI_NODE_TOTAL`, 1-based), then
/// `SECGATE_SHARD=I/N`. `env` looks a variable up (the process environment in `secgate`).
pub fn resolve(
    src: &ShardSource,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ShardSpec>> {
    if src.flag.is_some() && src.from_env {
        return Err(Error::usage(
            "--shard",
            "give either --shard I/N or --shard-from-env, not both",
        ));
    }
    if src.shards.is_some() && !src.from_env {
        return Err(Error::usage(
            "--shards",
            "only means something with --shard-from-env",
        ));
    }
    if let Some(s) = &src.flag {
        return ShardSpec::parse(s)
            .map(Some)
            .map_err(|m| Error::usage("--shard", m));
    }
    if src.from_env {
        let num = |name: &str, v: &str| -> Result<u32> {
            v.trim().parse::<u32>().map_err(|_| {
                Error::usage(
                    "--shard-from-env",
                    format!("{name}='{v}' is not a whole number"),
                )
            })
        };
        if let Some(k) = env("JOB_COMPLETION_INDEX") {
            let Some(n) = src.shards else {
                return Err(Error::usage(
                    "--shards",
                    "JOB_COMPLETION_INDEX is set: give the number of shards with --shards N (the Job's completions)",
                ));
            };
            let count = u32::try_from(n).map_err(|_| {
                Error::usage("--shards", format!("must be 1 to {MAX_SHARDS}, got {n}"))
            })?;
            let index = num("JOB_COMPLETION_INDEX", &k)?;
            return ShardSpec::new(index.saturating_add(1), count)
                .map(Some)
                .map_err(|m| {
                    Error::usage(
                        "--shard-from-env",
                        format!("JOB_COMPLETION_INDEX={k} (0-based), --shards {n}: {m}"),
                    )
                });
        }
        if let (Some(i), Some(n)) = (env("CI_NODE_INDEX"), env("CI_NODE_TOTAL")) {
            let (index, count) = (num("CI_NODE_INDEX", &i)?, num("CI_NODE_TOTAL", &n)?);
            if let Some(s) = src.shards.filter(|s| u32::try_from(*s).ok() != Some(count)) {
                return Err(Error::usage(
                    "--shards",
                    format!("{s} disagrees with CI_NODE_TOTAL={n}"),
                ));
            }
            return ShardSpec::new(index, count).map(Some).map_err(|m| {
                Error::usage(
                    "--shard-from-env",
                    format!("CI_NODE_INDEX={i}, CI_NODE_TOTAL={n}: {m}"),
                )
            });
        }
        return Err(Error::usage(
            "--shard-from-env",
            "neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor CI_NODE_INDEX and CI_NODE_TOTAL (GitLab parallel) is set",
        ));
    }
    match env("SECGATE_SHARD").filter(|v| !v.trim().is_empty()) {
        Some(v) => ShardSpec::parse(&v)
            .map(Some)
            .map_err(|m| Error::Usage(format!("SECGATE_SHARD: {m}"))),
        None => Ok(None),
    }
}

/// One (target, family) job of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Index of the target in the plan.
    pub target: usize,
    /// Target id.
    pub target_id: String,
    /// Family name.
    pub family: &'static str,
    /// Estimated cost (requests).
    pub cost: u64,
    /// Whether the family applies (a family asked for by name that does not only owes its
    /// `skipped` results).
    pub applies: bool,
    /// The slice of the sweep, when the job is one.
    pub slice: Option<Slice>,
}

/// A job as a shard report lists it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRecord {
    /// Index of the target in the plan (the merged report keeps plan order).
    pub index: usize,
    /// Target id.
    pub target: String,
    /// Family name.
    pub family: String,
    /// The slice of the family's sweep, when the job is one (since 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<Slice>,
}

/// The `shard` object of a shard's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// 1-based.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
    /// Jobs of the whole plan (over all shards).
    pub plan_jobs: usize,
    /// The jobs this shard ran, in plan order.
    pub jobs: Vec<JobRecord>,
}

/// Every job of `plan`, in plan order (target, then family-list order).
pub fn jobs(plan: &ScanPlan, families: &[&'static dyn Family]) -> Vec<Job> {
    let mut out = Vec::new();
    for (i, t) in plan.targets.iter().enumerate() {
        for (family, applies) in selected(plan, families, t) {
            let cost = if applies {
                let sweep = family
                    .sweep_shape(t, &plan.options)
                    .map_or(0, |(a, p)| a.saturating_mul(u64::from(p)));
                u64::from(family.budget(t, &plan.settings))
                    .saturating_add(sweep)
                    .max(1)
            } else {
                1
            };
            out.push(Job {
                target: i,
                target_id: t.id.clone(),
                family: family.family(),
                cost,
                applies,
                slice: None,
            });
        }
    }
    out
}

/// Every job of `plan` split over `count` shards: [`jobs`], with each sweep that costs more
/// than `total / (4 count)` cut into slices (none with one shard: nothing to balance).
pub fn sliced_jobs(plan: &ScanPlan, families: &[&'static dyn Family], count: u32) -> Vec<Job> {
    let whole = jobs(plan, families);
    if count <= 1 {
        return whole;
    }
    let total: u64 = whole.iter().map(|j| j.cost).fold(0, u64::saturating_add);
    let limit = (total / (4 * u64::from(count))).max(1);
    let mut out = Vec::with_capacity(whole.len());
    for job in whole {
        let shape = plan.targets.get(job.target).and_then(|t| {
            let family = families.iter().find(|f| f.family() == job.family)?;
            family.sweep_shape(t, &plan.options)
        });
        let Some((addresses, ports)) = shape.filter(|_| job.applies && job.cost > limit) else {
            out.push(job);
            continue;
        };
        let k = u32::try_from(job.cost.div_ceil(limit)).unwrap_or(MAX_SLICES);
        let parts = slices(addresses, ports, k.min(MAX_SLICES));
        if parts.len() <= 1 {
            out.push(job);
            continue;
        }
        let pairs = addresses.saturating_mul(u64::from(ports)).max(1);
        for s in parts {
            let share = u128::from(job.cost) * u128::from(s.size()) / u128::from(pairs);
            out.push(Job {
                cost: u64::try_from(share).unwrap_or(u64::MAX).max(1),
                slice: Some(s),
                ..job.clone()
            });
        }
    }
    out
}

/// The slices of a sweep of `addresses` (a power of two for a range; 1 for a name) over
/// `ports` ports, about `k` of them: `b` CIDR sub-blocks (`b`, a power of two, at most one
/// address each), each cut into `r` runs of ports when `k` is larger than `b` (or on a
/// name). Exactly `b * r` slices, every pair in one; `slices(a, p, slices(a, p, k).len())` is
/// `slices(a, p, k)`, so a count names its geometry.
pub fn slices(addresses: u64, ports: u32, k: u32) -> Vec<Slice> {
    let k = k.max(1);
    let addresses = addresses.max(1);
    let blocks = if addresses > 1 && addresses.is_power_of_two() {
        u64::from(k).next_power_of_two().min(addresses)
    } else {
        1
    };
    let size = addresses / blocks;
    let runs = u64::from(k).div_ceil(blocks).min(u64::from(ports)).max(1);
    let (Ok(b32), Ok(r32)) = (u32::try_from(blocks), u32::try_from(runs)) else {
        return Vec::new();
    };
    let Some(count) = b32.checked_mul(r32) else {
        return Vec::new();
    };
    let run = |r: u64| u32::try_from(r * u64::from(ports) / runs).unwrap_or(ports);
    let mut out = Vec::new();
    for b in 0..blocks {
        let first = if addresses > 1 { b * size } else { 0 };
        let end = if addresses > 1 { first + size } else { 1 };
        for r in 0..runs {
            out.push(Slice {
                index: u32::try_from(b * runs + r + 1).unwrap_or(u32::MAX),
                count,
                addresses: [first, end],
                ports: [run(r), run(r + 1)],
                port_count: ports,
            });
        }
    }
    out
}

fn key_hash(job: &Job) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(job.target_id.as_bytes());
    ctx.update(b"\0");
    ctx.update(job.family.as_bytes());
    if let Some(s) = &job.slice {
        ctx.update(format!("\0{}/{}", s.index, s.count).as_bytes());
    }
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The shard (1-based) of every job, by the longest-processing-time rule over stable hashes.
pub fn assign(jobs: &[Job], count: u32) -> Vec<u32> {
    let count = count.max(1);
    let mut order: Vec<(u64, [u8; 32], usize)> = jobs
        .iter()
        .enumerate()
        .map(|(n, j)| (j.cost, key_hash(j), n))
        .collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut load = vec![0u64; count as usize];
    let mut out = vec![1u32; jobs.len()];
    for (cost, _, n) in order {
        let (best, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(i, l)| (**l, *i))
            .unwrap_or((0, &0));
        if let Some(l) = load.get_mut(best) {
            *l = l.saturating_add(cost);
        }
        if let Some(o) = out.get_mut(n) {
            *o = u32::try_from(best).unwrap_or(0) + 1;
        }
    }
    out
}

/// The plan restricted to one shard's jobs, and the shard's report section. A target keeps
/// only its families of the shard; a target with none is left out.
pub fn restrict(
    plan: &ScanPlan,
    families: &[&'static dyn Family],
    spec: ShardSpec,
) -> (ScanPlan, ShardInfo) {
    let all = sliced_jobs(plan, families, spec.count);
    let shards = assign(&all, spec.count);
    let mut mine: Vec<&Job> = Vec::new();
    for (job, s) in all.iter().zip(&shards) {
        if *s == spec.index {
            mine.push(job);
        }
    }
    let mut sub = plan.clone();
    sub.targets = Vec::new();
    for (i, t) in plan.targets.iter().enumerate() {
        let mut theirs: Vec<&'static str> = Vec::new();
        for (j, s) in all.iter().zip(&shards) {
            if j.target == i && *s != spec.index && !theirs.contains(&j.family) {
                theirs.push(j.family);
            }
        }
        if !theirs.is_empty() {
            sub.elsewhere.push((t.clone(), theirs));
        }
        let mut fams: Vec<&'static str> = Vec::new();
        for j in mine.iter().filter(|j| j.target == i) {
            if !fams.contains(&j.family) {
                fams.push(j.family);
            }
        }
        if fams.is_empty() {
            continue;
        }
        let mut t = t.clone();
        t.families = Some(fams);
        t.slices = mine
            .iter()
            .filter(|j| j.target == i)
            .filter_map(|j| j.slice)
            .collect();
        sub.targets.push(t);
    }
    let info = ShardInfo {
        index: spec.index,
        count: spec.count,
        plan_jobs: all.len(),
        jobs: mine
            .iter()
            .map(|j| JobRecord {
                index: j.target,
                target: j.target_id.clone(),
                family: j.family.to_string(),
                slice: j.slice,
            })
            .collect(),
    };
    (sub, info)
}

/// The plan's identity: a hex SHA-256 (first 16 bytes) of a canonical description of what
/// decides its results.
pub fn plan_id(plan: &ScanPlan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "secgate-plan/1 {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(s, "families {:?}", plan.families);
    let st = &plan.settings;
    let _ = writeln!(
        s,
        "settings timeout={:?} redirects={} insecure={} rps={:?} max_requests={:?} dns={:?} resolve={:?} chain={:?}",
        st.timeout,
        st.max_redirects,
        st.insecure,
        st.max_rps,
        st.max_requests,
        st.dns_server,
        st.resolve.iter().collect::<Vec<_>>(),
        st.chain
    );
    for c in &st.ca_certs {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, c.as_ref());
        let _ = writeln!(s, "ca {}", hex(d.as_ref()));
    }
    let _ = writeln!(s, "options {:?}", plan.options);
    let _ = writeln!(
        s,
        "policy {} {}",
        plan.policy.min_score, plan.policy.max_critical
    );
    // Shards judged under different profiles are not one scan (the default profile adds
    // nothing, so plans made before profiles keep their id).
    if *plan.settings.profile != *crate::profile::default_profile() {
        let _ = writeln!(s, "profile {:?}", plan.settings.profile);
    }
    for t in &plan.targets {
        // Secrets print as [REDACTED] (their Debug), so they never reach the hash.
        let _ = writeln!(
            s,
            "target {} {:?} families={:?} http_port={:?} resolve={:?} endpoints={:?} options={:?}",
            t.id, t.kind, t.families, t.http_port, t.resolve, t.endpoints, t.options
        );
    }
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    hex(d.as_ref().get(..16).unwrap_or_default())
}

/// Run one shard of `plan` and write its reports. The exit code is 0 when the shard ran
/// (130 when interrupted); with `gate`, the gate's on the shard's results alone.
pub async fn scan(
    plan: ScanPlan,
    spec: ShardSpec,
    gate: bool,
    outputs: crate::cli::Outputs,
) -> Result<u8> {
    let id = plan_id(&plan);
    let (sub, info) = restrict(&plan, crate::checks::FAMILIES, spec);
    let mut report = crate::scan_report(&sub).await;
    report.plan_id = Some(id);
    report.shard = Some(info);
    let code = crate::render(report, &outputs)?;
    Ok(if gate || code == crate::EXIT_INTERRUPTED {
        code
    } else {
        crate::EXIT_PASSED
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(t: usize, f: &'static str, cost: u64) -> Job {
        Job {
            target: t,
            target_id: format!("host{t}"),
            family: f,
            cost,
            applies: true,
            slice: None,
        }
    }

    #[test]
    fn parses_and_rejects_shard_specs() {
        assert_eq!(
            ShardSpec::parse("2/5"),
            Ok(ShardSpec { index: 2, count: 5 })
        );
        assert!(ShardSpec::parse("0/5").unwrap_err().contains("1-based"));
        assert!(ShardSpec::parse("6/5").is_err());
        assert!(ShardSpec::parse("1/0").is_err());
        assert!(ShardSpec::parse("3").is_err());
        assert!(ShardSpec::parse("a/b").is_err());
    }

    #[test]
    fn environment_sources() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = ShardSource {
            from_env: true,
            shards: Some(4),
            ..ShardSource::default()
        };
        assert_eq!(
            resolve(&k8s, &env(&[("JOB_COMPLETION_INDEX", "0")])).unwrap(),
            Some(ShardSpec { index: 1, count: 4 })
        );
        assert!(resolve(&k8s, &env(&[("JOB_COMPLETION_INDEX", "4")])).is_err());
        let gitlab = ShardSource {
            from_env: true,
            ..ShardSource::default()
        };
        assert_eq!(
            resolve(
                &gitlab,
                &env(&[("CI_NODE_INDEX", "3"), ("CI_NODE_TOTAL", "3")])
            )
            .unwrap(),
            Some(ShardSpec { index: 3, count: 3 })
        );
        assert!(resolve(&gitlab, &env(&[])).is_err());
        let none = ShardSource::default();
        assert_eq!(
            resolve(&none, &env(&[("SECGATE_SHARD", "2/7")])).unwrap(),
            Some(ShardSpec { index: 2, count: 7 })
        );
        assert_eq!(resolve(&none, &env(&[])).unwrap(), None);
    }

    #[test]
    fn every_job_lands_in_exactly_one_shard_and_big_jobs_spread() {
        let mut jobs: Vec<Job> = (0..200).map(|t| job(t, "headers", 2)).collect();
        jobs.push(job(900, "ports", 256 * 3));
        jobs.push(job(901, "ports", 256 * 3));
        for n in [1u32, 3, 7] {
            let a = assign(&jobs, n);
            assert_eq!(a.len(), jobs.len());
            assert!(a.iter().all(|s| (1..=n).contains(s)));
            assert_eq!(a, assign(&jobs, n), "deterministic");
            let mut load = vec![0u64; n as usize];
            for (j, s) in jobs.iter().zip(&a) {
                load[(*s - 1) as usize] += j.cost;
            }
            let (min, max) = (load.iter().min().unwrap(), load.iter().max().unwrap());
            // LPT: no shard exceeds the lightest by more than the largest job.
            assert!(max - min <= 768, "n={n}: {load:?}");
        }
        let a = assign(&jobs, 3);
        assert_ne!(a[200], a[201], "the two sweeps go to different shards");
    }

    #[test]
    fn slices_tile_the_sweep_and_a_count_names_its_geometry() {
        for (addresses, ports, k) in [
            (256u64, 1000u32, 12u32),
            (256, 4, 1000),
            (4, 4, 3),
            (1, 65_535, 7),
            (1, 3, 10),
            (64, 4, 28),
        ] {
            let s = slices(addresses, ports, k);
            assert!(!s.is_empty());
            assert_eq!(s.len() as u32, s[0].count, "{addresses} {ports} {k}");
            // Every (address, port) pair in exactly one slice.
            let mut seen = vec![0u8; (addresses * u64::from(ports)) as usize];
            for (n, x) in s.iter().enumerate() {
                assert_eq!(x.index as usize, n + 1);
                for a in x.addresses[0]..x.addresses[1] {
                    for p in x.ports[0]..x.ports[1] {
                        seen[(a * u64::from(ports) + u64::from(p)) as usize] += 1;
                    }
                }
                // A range's slice is a CIDR sub-block: aligned, a power of two.
                let size = x.addresses[1] - x.addresses[0];
                assert!(size.is_power_of_two() && x.addresses[0] % size == 0);
            }
            assert!(seen.iter().all(|c| *c == 1), "{addresses} {ports} {k}");
            assert_eq!(slices(addresses, ports, s.len() as u32), s);
        }
        assert_eq!(slices(256, 1000, 12).len(), 16, "a power of two of blocks");
        assert_eq!(
            slices(4, 100, 10).len(),
            12,
            "one address each, then port runs"
        );
    }

    #[test]
    fn a_range_among_many_small_jobs_is_cut_into_balanced_slices() {
        let mut targets: Vec<crate::target::Target> = (0..200)
            .map(|i| crate::target::Target::parse(&format!("https://h{i}.test/")).unwrap())
            .collect();
        targets.push(crate::target::Target::parse("10.9.0.0/24").unwrap());
        let plan = ScanPlan::new(targets, &crate::family_options());
        let families = crate::checks::FAMILIES;
        let range = jobs(&plan, families)
            .into_iter()
            .find(|j| j.target == 200 && j.family == "ports")
            .unwrap();
        assert_eq!(sliced_jobs(&plan, families, 1), jobs(&plan, families));
        for n in [3u32, 7] {
            let all = sliced_jobs(&plan, families, n);
            let parts: Vec<&Job> = all.iter().filter(|j| j.slice.is_some()).collect();
            assert!(
                parts.len() >= 4 * n as usize / 2,
                "n={n}: {} slices",
                parts.len()
            );
            assert!(parts.iter().all(|j| j.target == 200 && j.family == "ports"));
            let a = assign(&all, n);
            assert_eq!(a, assign(&all, n), "deterministic");
            let biggest = parts.iter().map(|j| j.cost).max().unwrap();
            let mut range_load = vec![0u64; n as usize];
            for (j, s) in all.iter().zip(&a) {
                if j.slice.is_some() {
                    range_load[(*s - 1) as usize] += j.cost;
                }
            }
            let total: u64 = range_load.iter().sum();
            assert!(
                total.abs_diff(range.cost) <= parts.len() as u64,
                "costs add up"
            );
            for l in &range_load {
                assert!(
                    *l <= total / u64::from(n) + biggest,
                    "n={n}: {range_load:?}"
                );
            }
        }
    }
}
