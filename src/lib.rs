//! # secgate
//!
//! A security scanning orchestrator: it audits endpoints from the outside and answers "can we
//! ship?" with a score, a gate and reports that people and CI read.
//!
//! The pipeline, one module per stage, data flowing one way:
//!
//! ```text
//! plan ──► connectivity ──► schedule ──► collect ──► triage ──► summarise ──► render
//! ```
//! 1. [`plan`]: [`cli`] flags and the [`config`] file become a [`plan::ScanPlan`]: targets,
//!    families, engine [`plan::Settings`], every family's options ([`options`]) and the
//!    [`policy`]. Bad input stops here with one line naming the flag or key, and exit code 2.
//! 2. [`engine::connectivity`]: each [`target::Target`] is resolved once and, when it names a
//!    port, connected to once.
//! 3. [`engine::schedule`]: every (target, family) job runs under the global and per-host
//!    limits; families reach the network only through the facade [`engine::Cx`] (permits,
//!    back-off, pacing, timeouts, byte caps, request budgets, counting).
//! 4. [`engine::collect`]: exactly one result per rule and target ([`model::Outcome`]), each
//!    failed result with its per-subject [`model::Finding`]s.
//!    [`engine::chain`] feeds collect back into schedule: the TLS and HTTP services a finished
//!    port sweep discovered become derived targets (with their parent) whose jobs start at
//!    once.
//! 5. [`triage`]: what the gate makes of each finding: [`suppress`]ions (with expiry and
//!    stale entries) and a [`baseline`] of an earlier report (new, updated, fixed).
//! 6. [`summarise`]: the score and the gate, a pure function of the triaged results and the
//!    policy.
//! 7. [`report`]: target text escaped once, then one writer per format.
//!
//! The families ([`checks`]) are handed to the stages by [`run`]; no stage names one.

pub mod baseline;
pub mod catalogue;
pub mod checks;
pub mod cli;
pub mod compliance;
pub mod config;
pub mod demo;
pub mod dryrun;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod lab;
pub mod merge;
pub mod model;
pub mod options;
pub mod plan;
pub mod policy;
pub mod profile;
pub mod progress;
pub mod report;
pub mod shard;
pub mod summarise;
pub mod suppress;
pub mod target;
pub mod triage;

use std::io::Write;
use std::process::ExitCode;

/// `println!` that ends quietly when standard output is closed (`secgate demo | head -1`):
/// a broken pipe is not an error, any other failure is (`Error::Io` on `<stdout>`).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stdout_line(format_args!($($arg)*))
    };
}

/// `eprintln!` that cannot panic: a closed or broken standard error loses the line, nothing more.
macro_rules! esay {
    ($($arg:tt)*) => {
        $crate::stderr_line(format_args!($($arg)*))
    };
}

use cli::{Cli, Command, Outputs};
use error::{Error, Result};
use options::FamilyOptions;
use report::ScanReport;
use summarise::Verdict;

/// Exit code: the gate passed.
pub const EXIT_PASSED: u8 = 0;
/// Exit code: the gate failed on findings.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the gate is undecided (inconclusive results or unreachable targets only).
pub const EXIT_UNDECIDED: u8 = 3;
/// Exit code: interrupted.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(e) = catalogue::load_error() {
        return Err(Error::Usage(format!(
            "internal error: the embedded rule catalogue is invalid: {e}"
        )));
    }
    if let Some(e) = compliance::load_error() {
        return Err(Error::Usage(format!(
            "internal error: the embedded compliance frameworks are invalid: {e}"
        )));
    }
    if let Some(e) = profile::load_error() {
        return Err(Error::Usage(format!(
            "internal error: a shipped profile is invalid: {e}"
        )));
    }
    match cli.command {
        Command::Scan(args) => {
            let plan = plan::build(&args, &family_options())?;
            for note in engine::schedule::notes(&plan, checks::FAMILIES) {
                esay!("secgate: note: {note}");
            }
            if args.proxy.as_deref() == Some("env") && plan.settings.proxy.is_none() {
                esay!(
                    "secgate: note: --proxy env: none of HTTPS_PROXY, HTTP_PROXY, ALL_PROXY is set; the HTTP families connect directly"
                );
            }
            let source = shard::ShardSource {
                flag: args.shard.shard.clone(),
                from_env: args.shard.shard_from_env,
                shards: args.shard.shards,
            };
            let shard = shard::resolve(&source, &|k| std::env::var(k).ok())?;
            if args.dry_run {
                if !args.output.quiet {
                    let text = match shard {
                        Some(spec) => format!(
                            "shard {} of {}: only its jobs are shown\n{}",
                            spec.index,
                            spec.count,
                            dryrun::describe(&shard::restrict(&plan, checks::FAMILIES, spec).0, checks::FAMILIES)
                        ),
                        None => dryrun::describe(&plan, checks::FAMILIES),
                    };
                    ignore_broken_pipe(std::io::stdout().lock().write_all(text.as_bytes()))?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let outputs = args
                .output
                .outputs(args.json.clone(), args.sarif.clone(), &args.reports)?;
            let code = match shard {
                Some(spec) => runtime()?.block_on(shard::scan(plan, spec, args.shard.gate, outputs))?,
                None if args.shard.gate => {
                    return Err(Error::usage("--gate", "only means something with a shard (--shard, --shard-from-env or SECGATE_SHARD)"));
                }
                None => runtime()?.block_on(scan(plan, outputs))?,
            };
            Ok(ExitCode::from(code))
        }
        Command::Merge(args) => merge::run(&args),
        Command::Rules(args) => rules(&args),
        Command::Diff(args) => baseline::command(&args),
        Command::Explain(args) => explain(&args),
        Command::Profiles(args) => profiles(&args),
        Command::Validate(args) => {
            let owners = family_options();
            let cfg = config::load(&args.config, &owners)?;
            // Family options are validated as a scan would (file keys only).
            let scan = plan::scan_options(Some(&cfg), &Vec::new(), &owners)?;
            for n in 0..cfg.targets.len() {
                plan::target_options(Some(&cfg), Some(n), &owners, &scan)?;
            }
            // The suppressions file a scan with this config would read.
            let mut policy = policy::Policy::default();
            plan::file_only_policy(&mut policy, &cfg.policy);
            let suppressions = plan::suppressions(None, Some(&cfg), &policy)?;
            let families = cfg.families.as_ref().map_or_else(|| "all that apply".to_string(), |f| f.join(", "));
            say!(
                "{}: OK ({} target{}, families: {families})",
                args.config.display(),
                cfg.targets.len(),
                if cfg.targets.len() == 1 { "" } else { "s" }
            )?;
            if let Some(p) = &cfg.profile {
                say!("profile: {} ({})", p.label(), p.description)?;
            }
            if let Some(path) = &suppressions.path {
                say!(
                    "{}: OK ({} suppression{})",
                    path.display(),
                    suppressions.entries.len(),
                    if suppressions.entries.len() == 1 { "" } else { "s" }
                )?;
            }
            // Secrets may be absent where a config is linted; say what a scan here would refuse.
            for target in &cfg.targets {
                for endpoint in &target.endpoints {
                    for secret in endpoint.secrets() {
                        if let Err(m) = secret.source.load() {
                            say!("note: {}: {m} here; a scan refuses to start without it", secret.key)?;
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => runtime()?.block_on(async move {
            let outputs = args
                .output
                .outputs(args.json.clone(), args.sarif.clone(), &args.reports)?;
            let frameworks = compliance::parse_names(&args.compliance)
                .map_err(|m| Error::usage("--compliance", m))?;
            let mut lab = demo::start().await.map_err(|e| Error::Usage(format!("demo: {e}")))?;
            lab.plan.compliance = frameworks;
            if !outputs.quiet {
                say!("Started a lab of {} servers on 127.0.0.1; scanning it.\n", lab.servers.len())?;
            }
            let code = scan(lab.plan.clone(), outputs.clone()).await?;
            if code == EXIT_INTERRUPTED {
                drop(lab);
                return Ok(ExitCode::from(code));
            }
            if !outputs.quiet {
                say!(
                    "\nThis was `secgate demo`. Scan your own service with `secgate scan https://your.host/`;\n\
                     `secgate explain RULE_ID` explains a rule. In CI, this scan would exit with {code}."
                )?;
            }
            drop(lab);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Completions(args) => {
            // Generated in memory, then written: a closed pipe ends quietly.
            let mut cmd = cli::command(&family_options());
            let mut buf = Vec::new();
            clap_complete::generate(args.shell, &mut cmd, "secgate", &mut buf);
            ignore_broken_pipe(std::io::stdout().lock().write_all(&buf))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            ignore_broken_pipe(std::io::stdout().lock().write_all(&man_page()?))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Lab(args) if args.profile == "behaviour" => runtime()?.block_on(async move {
            let (servers, hits) = demo::start_behaviour_bench(&args.out).await.map_err(Error::Usage)?;
            say!(
                "serving {} sites; config in {}; password {}",
                servers.len(),
                args.out.join("secgate.toml").display(),
                demo::lab_password()
            )?;
            interrupted().await;
            for (route, h) in &hits {
                say!("requests {route}: {}", h.get())?;
            }
            drop(servers);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Lab(args) => runtime()?.block_on(async move {
            let servers = demo::start_bench(args.targets, &args.profile, &args.out)
                .await
                .map_err(Error::Usage)?;
            say!("serving {} sites; config in {}", servers.len(), args.out.join("secgate.toml").display())?;
            let _ = tokio::signal::ctrl_c().await;
            drop(servers);
            Ok(ExitCode::SUCCESS)
        }),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))
}

/// The families as the options layer sees them.
pub fn family_options() -> Vec<&'static dyn FamilyOptions> {
    checks::FAMILIES
        .iter()
        .map(|f| *f as &'static dyn FamilyOptions)
        .collect()
}

/// Run a scan through every stage of the pipeline, write its reports, and return the exit code.
pub async fn scan(mut plan: plan::ScanPlan, outputs: Outputs) -> Result<u8> {
    plan.settings.progress = outputs.progress.clone();
    let report = scan_report(&plan).await;
    outputs.progress.finish();
    render(report, &outputs)
}

/// Stages 1 to 6: run `plan` and assemble its report (not yet rendered).
pub async fn scan_report(plan: &plan::ScanPlan) -> ScanReport {
    let (mut result, mut slices) = engine::run_sliced(plan, checks::FAMILIES, interrupted()).await;
    // A shard's slices of a sweep: the results each slice alone gives go through the profile
    // and triage with the others, then leave as the marks the merge gives the results it
    // judges over the joined slices ([`model::Marks`], `merge::apply_marks`).
    let kept = result.outcomes.len();
    let lens: Vec<usize> = slices.iter().map(|s| s.partial.len()).collect();
    for s in &mut slices {
        result.outcomes.append(&mut s.partial);
    }
    plan.settings.profile.apply(&mut result.outcomes);
    let mut triaged = triage::triage_with(result, &plan.suppressions, plan.baseline.as_ref());
    let mut partial = triaged
        .result
        .outcomes
        .split_off(kept.min(triaged.result.outcomes.len()));
    for (s, n) in slices.iter_mut().zip(lens) {
        let rest = partial.split_off(n.min(partial.len()));
        s.marks = partial.iter().map(model::Marks::of).collect();
        partial = rest;
    }
    let summary = summarise::summarise_triaged(&triaged, &plan.policy);
    let mut report = ScanReport::build(plan, triaged, summary);
    report.slices = slices;
    report
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what CI systems send when they cancel a job);
/// never, if no handler can be installed.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The exit code for a report.
pub fn exit_code(report: &ScanReport) -> u8 {
    if !report.complete {
        return EXIT_INTERRUPTED;
    }
    match report.summary.gate.verdict {
        Verdict::Passed => EXIT_PASSED,
        Verdict::Failed => EXIT_FINDINGS,
        Verdict::Undecided => EXIT_UNDECIDED,
    }
}

/// Stage 7: escape what targets sent, then write every report asked for and the terminal
/// report; returns the exit code.
pub fn render(mut report: ScanReport, outputs: &Outputs) -> Result<u8> {
    report::escape::sanitize(&mut report);
    for (format, path) in &outputs.reports {
        if cli::is_stdout(path) {
            let mut stdout = std::io::stdout().lock();
            ignore_broken_pipe(
                report::write(*format, &report, &mut stdout)
                    .and_then(|()| std::io::Write::flush(&mut stdout)),
            )?;
        } else {
            report::write_file(*format, &report, path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
    }
    if let Some(path) = &outputs.github_summary {
        append_step_summary(&report, path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
    }
    if outputs.summary_to_stderr {
        // Standard output holds a report: a CI log still shows the verdict.
        let (score, gate) = report::summary_lines(&report);
        esay!("{score}\n{gate}");
    }
    if !outputs.quiet {
        let opts = report::terminal::Options {
            color: outputs.color,
            verbose: outputs.verbose,
        };
        let mut stdout = std::io::stdout().lock();
        ignore_broken_pipe(report::terminal::write(&report, &mut stdout, opts))?;
    }
    let code = exit_code(&report);
    // Freeing a large report (hundreds of thousands of small allocations) takes a good
    // part of a second that nothing waits for: a thread of its own does it, and the process
    // exits without waiting when `secgate` is done.
    // (Dropped here when no thread can be had.)
    let _ = std::thread::Builder::new().spawn(move || drop(report));
    Ok(code)
}

/// `--github`: append the Markdown summary to the job summary file GitHub Actions names in
/// `GITHUB_STEP_SUMMARY` (appended, as GitHub expects; created if the runner has not yet).
fn append_step_summary(report: &ScanReport, path: &std::path::Path) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    f.write_all(report::markdown::render(report).as_bytes())?;
    f.write_all(b"\n")
}

/// `secgate man`: the page of `secgate` followed by a section per subcommand (its synopsis,
/// description and options, with every family's flags under `scan`).
fn man_page() -> Result<Vec<u8>> {
    let cmd = cli::command(&family_options());
    let mut buf = Vec::new();
    let io = |e: std::io::Error| Error::Io {
        path: "<man page>".into(),
        source: e,
    };
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .map_err(io)?;
    let mut subs: Vec<&clap::Command> =
        cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    // `scan` first (adding the families' flags moved it to the end).
    subs.sort_by_key(|s| s.get_name() != "scan");
    for sub in subs {
        let extra = sub.get_after_help().is_some() || sub.get_after_long_help().is_some();
        let name = format!("secgate {}", sub.get_name());
        let sub = sub.clone().name(name.clone()).bin_name(name.clone());
        let man = clap_mangen::Man::new(sub);
        buf.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        man.render_synopsis_section(&mut buf).map_err(io)?;
        man.render_description_section(&mut buf).map_err(io)?;
        man.render_options_section(&mut buf).map_err(io)?;
        if extra {
            man.render_extra_section(&mut buf).map_err(io)?;
        }
    }
    Ok(buf)
}

/// One line on standard output; a closed pipe ends it quietly ([`say!`]).
pub(crate) fn stdout_line(args: std::fmt::Arguments<'_>) -> Result<()> {
    ignore_broken_pipe(writeln!(std::io::stdout().lock(), "{args}"))
}

/// One line on standard error, whatever becomes of it ([`esay!`]).
pub fn stderr_line(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// A write to standard output whose reader left (`| head`) ends quietly; other errors stay.
pub(crate) fn ignore_broken_pipe(r: std::io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: "<stdout>".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn rules(args: &cli::RulesArgs) -> Result<ExitCode> {
    // A comma-separated list, as `--checks` takes it.
    let families = match &args.family {
        Some(list) => config::parse_families(&checks::family_names(), std::slice::from_ref(list))
            .map_err(|m| Error::usage("--family", m))?,
        None => Vec::new(),
    };
    let rules: Vec<&catalogue::RuleDoc> = catalogue::all()
        .iter()
        .filter(|r| families.is_empty() || families.contains(&r.family.as_str()))
        .collect();
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        serde_json::to_writer_pretty(&mut out, &rules)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        let w = rules.iter().map(|r| r.id.len()).max().unwrap_or(10);
        (|| {
            writeln!(
                out,
                "{:<w$}  {:<8}  {:<8}  TITLE",
                "ID", "FAMILY", "SEVERITY"
            )?;
            for r in &rules {
                writeln!(
                    out,
                    "{:<w$}  {:<8}  {:<8}  {}",
                    r.id,
                    r.family,
                    r.severity.as_str(),
                    r.title
                )?;
            }
            writeln!(
                out,
                "\n{} rules. `secgate explain ID` prints one in full.",
                rules.len()
            )
        })()
    };
    ignore_broken_pipe(r)?;
    Ok(ExitCode::SUCCESS)
}

fn profiles(args: &cli::ProfilesArgs) -> Result<ExitCode> {
    let all = profile::builtins();
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "version": p.version,
                    "spec": p.spec(),
                    "newest": profile::resolve(&p.name).is_ok_and(|n| n.spec() == p.spec()),
                    "description": p.description,
                    "source": p.source,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        let w = all.iter().map(|p| p.name.len()).max().unwrap_or(4).max(4);
        (|| {
            writeln!(out, "{:<w$}  {:<7}  DESCRIPTION", "NAME", "VERSION")?;
            for p in all {
                writeln!(
                    out,
                    "{:<w$}  {:<7}  {}",
                    p.name,
                    p.version.as_deref().unwrap_or("-"),
                    p.description
                )?;
            }
            writeln!(
                out,
                "\n{} profiles. `--profile NAME` picks the newest version of NAME, NAME@VERSION another;\n`secgate explain --profile NAME` shows what one changes.",
                all.len()
            )
        })()
    };
    ignore_broken_pipe(r)?;
    Ok(ExitCode::SUCCESS)
}

fn explain(args: &cli::ExplainArgs) -> Result<ExitCode> {
    let chosen = match (&args.profile, &args.profile_file) {
        (Some(name), _) => Some(profile::resolve(name).map_err(|m| Error::usage("--profile", m))?),
        (None, Some(path)) => Some(std::sync::Arc::new(profile::load_file(
            path,
            "--profile-file",
        )?)),
        (None, None) => None,
    };
    let Some(rule_id) = &args.rule_id else {
        let Some(p) = chosen else {
            return Err(Error::usage("RULE_ID", "missing (or pass --profile NAME)"));
        };
        let mut out = std::io::stdout().lock();
        let r = if args.json {
            let changes: Vec<serde_json::Value> = p
                .changes()
                .into_iter()
                .map(|(id, from, to, on)| {
                    serde_json::json!({"rule_id": id, "catalogue_severity": from, "severity": to, "enabled": on})
                })
                .collect();
            let params: Vec<serde_json::Value> = p
                .parameters()
                .into_iter()
                .map(|(id, what)| serde_json::json!({"rule_id": id, "requires": what}))
                .collect();
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({"profile": &*p, "changes": changes, "parameters": params}),
            )
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
        } else {
            write!(out, "{}", p.explain())
        };
        ignore_broken_pipe(r)?;
        return Ok(ExitCode::SUCCESS);
    };
    // Rule ids are lower case; `TLS.CERT.EXPIRED` or ` tls.cert.expired ` name the same rule.
    let wanted = rule_id.trim().to_ascii_lowercase();
    let Some(rule) = catalogue::get(&wanted) else {
        let close: Vec<&str> = catalogue::all()
            .iter()
            .map(|r| r.id.as_str())
            .filter(|id| {
                let prefix = wanted.split('.').next().unwrap_or_default();
                !prefix.is_empty() && id.starts_with(prefix)
            })
            .take(5)
            .collect();
        let hint = if close.is_empty() {
            "run `secgate rules` for the list".to_string()
        } else {
            format!("did you mean one of: {}?", close.join(", "))
        };
        return Err(Error::usage(
            "RULE_ID",
            format!("unknown rule '{rule_id}'; {hint}"),
        ));
    };
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        serde_json::to_writer_pretty(&mut out, rule)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        let mut text = rule.explain();
        if let Some(p) = &chosen {
            text.push_str(&format!("\nUnder the profile {}\n", p.label()));
            let sev = p.severity(&rule.id, rule.severity);
            if !p.enabled(&rule.id) {
                text.push_str("  disabled (its results are skipped)\n");
            } else if sev == rule.severity {
                text.push_str(&format!("  severity {sev} (as in the catalogue)\n"));
            } else {
                text.push_str(&format!(
                    "  severity {sev} (catalogue: {})\n",
                    rule.severity
                ));
            }
            for (_, what) in p.parameters().into_iter().filter(|(id, _)| *id == rule.id) {
                text.push_str(&format!("  requires {what}\n"));
            }
        }
        write!(out, "{text}")
    };
    ignore_broken_pipe(r)?;
    Ok(ExitCode::SUCCESS)
}
