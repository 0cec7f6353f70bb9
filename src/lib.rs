//! # secgate
//!
//! A security scanning orchestrator: it audits endpoints from the outside and answers "can we
//! ship?" with a score, a gate and reports that people and CI read.
//!
//! The pipeline, one module per step:
//! 1. [`cli`] and [`config`] turn flags and a TOML file into an [`engine::ScanPlan`]; bad input
//!    stops here with one line naming the flag or key, and exit code 2.
//! 2. [`engine`] resolves each [`target::Target`] once, runs every applicable check family
//!    ([`checks::CHECKS`]) on every reachable target under global and per-host limits, with a
//!    timeout on every network operation ([`engine::net`]).
//! 3. Families probe the network once and hand one observation to pure rules, which emit
//!    [`model::Outcome`]s: pass, fail, inconclusive (with a [`model::Reason`]) or skipped. The
//!    severity and documentation of each rule come from the catalogue ([`catalogue`],
//!    `checks/*.toml`).
//! 4. [`policy`] scores the outcomes and applies the gate.
//! 5. [`report`] writes the terminal, JSON and SARIF reports.

pub mod catalogue;
pub mod checks;
pub mod cli;
pub mod config;
pub mod demo;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod lab;
pub mod model;
pub mod policy;
pub mod report;
pub mod target;

use std::io::Write;
use std::process::ExitCode;

use cli::{Cli, Command, Outputs};
use error::{Error, Result};
use policy::Verdict;
use report::{Format, ScanReport};

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
    match cli.command {
        Command::Scan(args) => {
            let (plan, outputs) = cli::build_plan(&args)?;
            let code = runtime()?.block_on(scan(plan, outputs))?;
            Ok(ExitCode::from(code))
        }
        Command::Rules(args) => rules(&args),
        Command::Explain(args) => explain(&args),
        Command::Validate(args) => {
            let cfg = config::load(&args.config)?;
            let families = cfg.families.as_ref().map_or_else(|| "all that apply".to_string(), |f| f.join(", "));
            println!(
                "{}: OK ({} target{}, families: {families})",
                args.config.display(),
                cfg.targets.len(),
                if cfg.targets.len() == 1 { "" } else { "s" }
            );
            // Secrets may be absent where a config is linted; say what a scan here would refuse.
            for target in &cfg.targets {
                for endpoint in &target.endpoints {
                    for secret in endpoint.secrets() {
                        if let Err(m) = secret.source.load() {
                            println!("note: {}: {m} here; a scan refuses to start without it", secret.key);
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => runtime()?.block_on(async move {
            let outputs = args.output.outputs(args.json.clone(), args.sarif.clone());
            cli::check_outputs(&outputs)?;
            let lab = demo::start().await.map_err(|e| Error::Usage(format!("demo: {e}")))?;
            if !outputs.quiet {
                println!("Started a lab of {} servers on 127.0.0.1; scanning it.\n", lab.servers.len());
            }
            let code = scan(lab.plan.clone(), outputs.clone()).await?;
            if code == EXIT_INTERRUPTED {
                drop(lab);
                return Ok(ExitCode::from(code));
            }
            if !outputs.quiet {
                println!(
                    "\nThis was `secgate demo`. Scan your own service with `secgate scan https://your.host/`;\n\
                     `secgate explain RULE_ID` explains a rule. In CI, this scan would exit with {code}."
                );
            }
            drop(lab);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Lab(args) if args.profile == "behaviour" => runtime()?.block_on(async move {
            let (servers, hits) = demo::start_behaviour_bench(&args.out).await.map_err(Error::Usage)?;
            println!(
                "serving {} sites; config in {}; password {}",
                servers.len(),
                args.out.join("secgate.toml").display(),
                demo::lab_password()
            );
            interrupted().await;
            for (route, h) in &hits {
                println!("requests {route}: {}", h.get());
            }
            drop(servers);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Lab(args) => runtime()?.block_on(async move {
            let servers = demo::start_bench(args.targets, &args.profile, &args.out)
                .await
                .map_err(Error::Usage)?;
            println!("serving {} sites; config in {}", servers.len(), args.out.join("secgate.toml").display());
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

/// Run a scan, write its reports, and return the exit code.
pub async fn scan(plan: engine::ScanPlan, outputs: Outputs) -> Result<u8> {
    let interrupt = interrupted();
    let result = engine::run(&plan, interrupt).await;
    let report = ScanReport::new(&plan, result);
    emit(&report, &outputs)?;
    Ok(exit_code(&report))
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

fn emit(report: &ScanReport, outputs: &Outputs) -> Result<()> {
    for (format, path) in [
        (Format::Json, &outputs.json),
        (Format::Sarif, &outputs.sarif),
    ] {
        match path {
            Some(path) if cli::is_stdout(path) => {
                let mut stdout = std::io::stdout().lock();
                ignore_broken_pipe(
                    report::write(format, report, &mut stdout)
                        .and_then(|()| std::io::Write::flush(&mut stdout)),
                )?;
            }
            Some(path) => {
                report::write_file(format, report, path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            None => {}
        }
    }
    if !outputs.quiet {
        let opts = report::terminal::Options {
            color: outputs.color,
            verbose: outputs.verbose,
        };
        let mut stdout = std::io::stdout().lock();
        ignore_broken_pipe(report::write(Format::Terminal(opts), report, &mut stdout))?;
    }
    Ok(())
}

fn ignore_broken_pipe(r: std::io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: "<stdout>".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn rules(args: &cli::RulesArgs) -> Result<ExitCode> {
    if let Some(f) = args.family.as_ref().filter(|f| checks::family(f).is_none()) {
        return Err(Error::usage(
            "--family",
            format!(
                "unknown family '{f}' (available: {})",
                checks::family_names().join(", ")
            ),
        ));
    }
    let rules: Vec<&catalogue::RuleDoc> = catalogue::all()
        .iter()
        .filter(|r| args.family.as_ref().is_none_or(|f| &r.family == f))
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

fn explain(args: &cli::ExplainArgs) -> Result<ExitCode> {
    let Some(rule) = catalogue::get(&args.rule_id) else {
        let close: Vec<&str> = catalogue::all()
            .iter()
            .map(|r| r.id.as_str())
            .filter(|id| {
                let prefix = args.rule_id.split('.').next().unwrap_or_default();
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
            format!("unknown rule '{}'; {hint}", args.rule_id),
        ));
    };
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        serde_json::to_writer_pretty(&mut out, rule)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write!(out, "{}", rule.explain())
    };
    ignore_broken_pipe(r)?;
    Ok(ExitCode::SUCCESS)
}
