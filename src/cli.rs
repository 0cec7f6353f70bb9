//! Command-line interface (clap). The flags of the core are declared here; each family's
//! flags are declared with its options ([`crate::options::Flag`]) and added to `scan` by
//! [`command`], so a family's option is defined in one place. [`crate::plan`] merges all of
//! them over the config file.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::options::FamilyOptions;
use crate::report::ReportFormat;

/// Exit codes, shown in `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    gate passed
  1    gate failed on findings (over a severity limit: --max-critical, --max-high, --fail-on...;
       score under --min-score; a stale suppression with --fail-on-stale)
  2    usage or configuration error
  3    gate not decided: it fails only because of inconclusive results or unreachable targets
  130  interrupted (Ctrl-C); reports are still written, marked incomplete

Scan only systems you are authorised to test.";

/// secgate: audit an endpoint from the outside and answer "can we ship?".
#[derive(Debug, Parser)]
#[command(name = "secgate", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan targets, score the results and apply the go-live gate.
    #[command(after_help = EXIT_CODES)]
    Scan(Box<ScanArgs>),
    /// List the rule catalogue (id, family, severity, title).
    Rules(RulesArgs),
    /// Print one rule's documentation: what it checks, why it matters, how to fix it; or
    /// what a policy profile changes (--profile).
    Explain(ExplainArgs),
    /// List the policy profiles (name, version, description).
    Profiles(ProfilesArgs),
    /// Check a configuration file without scanning.
    Validate(ValidateArgs),
    /// Start a lab of misconfigured servers on loopback and scan it (no network needed).
    #[command(
        after_help = "Exit codes:\n  0    the demo ran (its gate fails on purpose; the report says what `scan` would exit with)\n  2    usage error\n  130  interrupted (Ctrl-C); reports are still written, marked incomplete"
    )]
    Demo(DemoArgs),
    /// Compare two JSON reports: new, fixed and unchanged findings per target and severity.
    #[command(
        after_help = "Exit codes:\n  0    no new finding at or above --fail-on\n  1    a new finding at or above --fail-on\n  2    usage error (a file that is not a secgate JSON report)"
    )]
    Diff(DiffArgs),
    /// Write a shell completion script to standard output.
    #[command(
        after_help = "Install, e.g.: secgate completions bash > ~/.local/share/bash-completion/completions/secgate"
    )]
    Completions(CompletionsArgs),
    /// Write the manual page (roff) to standard output: secgate man | man -l -
    Man,
    /// Merge the JSON reports of a sharded scan (`scan --shard I/N`) into one report and gate.
    #[command(
        after_help = "Exit codes:\n  0    gate passed\n  1    gate failed on findings\n  2    usage error\n  3    gate not decided, or the shards do not make one complete scan (missing, duplicated, foreign, truncated or incomplete shard)"
    )]
    Merge(crate::merge::MergeArgs),
    /// Serve a benchmark lab of N HTTPS sites on 127.0.x.y until killed (for bench/).
    #[command(hide = true)]
    Lab(LabArgs),
}

/// `secgate scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Targets: https://host[:port]/path, http://..., host, host:port, IPv4/IPv6 literals,
    /// CIDR ranges (10.0.0.0/24). By default the HTTP families run on URLs and hosts, the
    /// ports family (a top1000 sweep) on hosts and ranges, the dns family on DNS names not
    /// pinned with --resolve; --checks picks families explicitly.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Configuration file (TOML): targets, overrides, families, limits, policy.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Read targets from FILE (`-`: standard input), one per line; `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    pub targets_file: Option<PathBuf>,
    /// Families to run, comma-separated (default: every family that applies to each target).
    #[arg(long, value_name = "FAMILIES")]
    pub checks: Option<String>,
    /// Connect to ADDR for HOST:PORT, keeping HOST for Host and SNI (like curl). Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// Extra trust anchors (PEM), e.g. an internal CA.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify certificates for HTTP checks (the TLS family still judges them).
    #[arg(long)]
    pub insecure: bool,
    /// Timeout of each network operation, in seconds [default: 5].
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub timeout: Option<f64>,
    /// Checks running at once across all targets [default: 64].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub concurrency: Option<i64>,
    /// Connections to one host at once [default: 8].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub per_host: Option<i64>,
    /// Redirects followed per request, within the scan's hosts only [default: 5].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_redirects: Option<i64>,
    /// Plain-HTTP port probed for https:// targets [default: 80].
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    pub http_port: Option<i64>,
    /// Accept CIDR targets of more than 65,536 addresses (up to 2^24).
    #[arg(long)]
    pub allow_large_range: bool,
    /// Do not audit what the port sweep discovers: no TLS and headers checks on the TLS and
    /// HTTP services it finds (scan.chain = [] in a config file).
    #[arg(long)]
    pub no_chain: bool,
    /// DNS server for every lookup, ADDR:PORT [default: the system's resolver].
    #[arg(long, value_name = "ADDR:PORT")]
    pub dns_server: Option<String>,
    /// HTTP proxy for the HTTP families (headers, auth, ratelimit): http://HOST[:PORT]
    /// (CONNECT for https:// targets; port 1080 if none), or `env` for HTTPS_PROXY,
    /// HTTP_PROXY, ALL_PROXY and NO_PROXY [default: none; the environment is ignored].
    #[arg(long, value_name = "URL|env")]
    pub proxy: Option<String>,
    /// Write the JSON report here (`-`: standard output, instead of the terminal report).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write a SARIF 2.1.0 report here (GitHub code scanning; `-`: standard output).
    #[arg(long, value_name = "PATH")]
    pub sarif: Option<PathBuf>,
    /// Write a report in FORMAT to PATH (`-`: standard output). Repeatable. Formats: json, sarif,
    /// junit, markdown, html.
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = parse_report)]
    pub reports: Vec<(ReportFormat, PathBuf)>,
    /// Cap on secgate's own requests per second over the whole scan [default: none;
    /// rate-limit bursts are paced per endpoint].
    #[arg(long, value_name = "RPS", allow_negative_numbers = true)]
    pub max_rps: Option<f64>,
    /// Cap on secgate's requests to one target, over all families [default: each family's
    /// own budget].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_requests: Option<i64>,
    /// Add a compliance view to every report: per requirement of the framework, the rules
    /// that evidence it, their results and met / not met / not assessed. Repeatable or
    /// comma-separated: pci-dss, asvs, nist-800-52.
    #[arg(long, value_name = "FRAMEWORK")]
    pub compliance: Vec<String>,
    /// Lowest passing score, 0-100 [default: 95].
    #[arg(long, value_name = "SCORE", allow_negative_numbers = true)]
    pub min_score: Option<f64>,
    /// Most critical findings allowed [default: 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_critical: Option<i64>,
    /// Policy profile: severities, rules and rule parameters (`secgate profiles` lists them;
    /// NAME is the newest version, NAME@VERSION another) [default: default].
    #[arg(long, value_name = "NAME", conflicts_with = "profile_file")]
    pub profile: Option<String>,
    /// A profile of your own (TOML, the shape of checks/profiles/*.toml).
    #[arg(long, value_name = "FILE")]
    pub profile_file: Option<PathBuf>,
    /// Print the plan (per target: the families that would run and what each would do; the
    /// load family's phases, rates, durations, connections, totals and ceilings) and exit,
    /// sending nothing and writing no report.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub triage: TriageArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub shard: ShardArgs,
    /// The families' own flags as given: `(long name, values)` (filled by [`parse`]).
    #[arg(skip)]
    pub family_flags: Vec<(String, Vec<String>)>,
}

/// Suppressions, baseline and the gate's severity limits (`scan`).
#[derive(Debug, Args)]
pub struct TriageArgs {
    /// Most high findings allowed [default: unlimited].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_high: Option<i64>,
    /// Most medium findings allowed [default: unlimited].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_medium: Option<i64>,
    /// Most low findings allowed [default: unlimited].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_low: Option<i64>,
    /// Fail the gate on any finding at or above SEVERITY (critical, high, medium, low, info).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<String>,
    /// Suppressions file (TOML) [default: .secgate-suppressions.toml beside the config file].
    #[arg(long, value_name = "FILE")]
    pub suppressions: Option<PathBuf>,
    /// Fail the gate on a stale suppression (one that matched nothing it names).
    #[arg(long)]
    pub fail_on_stale: bool,
    /// A JSON report of an earlier run: mark findings new, unchanged or updated, list fixed ones.
    #[arg(long, value_name = "PREVIOUS.json")]
    pub baseline: Option<PathBuf>,
    /// Which findings count toward the severity limits: all, or only new and updated ones
    /// (against --baseline) [default: all].
    #[arg(long, value_name = "all|new")]
    pub gate_on: Option<String>,
    /// Suppressed findings in SARIF: omit them (GitHub code scanning ignores SARIF
    /// suppressions), or include them with `suppressions` [default: omit].
    #[arg(long, value_name = "omit|include", value_parser = ["omit", "include"])]
    pub sarif_suppressed: Option<String>,
}

/// Sharding flags of `scan` (see [`crate::shard`]).
#[derive(Debug, Args)]
#[command(next_help_heading = "Sharding")]
pub struct ShardArgs {
    /// Run only shard I of N (1-based); also SECGATE_SHARD=I/N. The shard does not apply the
    /// gate (exit 0 when it ran) unless --gate; `secgate merge` does.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Take the shard from the environment: JOB_COMPLETION_INDEX (Kubernetes Indexed Job,
    /// 0-based, with --shards N) or CI_NODE_INDEX/CI_NODE_TOTAL (GitLab parallel, 1-based).
    #[arg(long)]
    pub shard_from_env: bool,
    /// Number of shards, with --shard-from-env and JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shards: Option<i64>,
    /// Apply the gate to this shard's results alone (exit 0/1/3 as a scan).
    #[arg(long)]
    pub gate: bool,
}

/// Terminal output flags shared by `scan` and `demo`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print nothing on standard output (the exit code and report files still tell).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// List passed and skipped results and the evidence of findings.
    #[arg(short, long)]
    pub verbose: bool,
    /// No colours (the same as --color never).
    #[arg(long)]
    pub no_color: bool,
    /// Colour the terminal report: auto (a TTY, unless NO_COLOR is set), always, never.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = When::Auto)]
    pub color: When,
    /// Progress on standard error: auto (when it is a TTY), always, never; none with --quiet.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = When::Auto)]
    pub progress: When,
    /// Append the Markdown summary to $GITHUB_STEP_SUMMARY (the GitHub Actions job page).
    #[arg(long)]
    pub github: bool,
}

/// `--color` (and `--progress`): when to use the terminal's features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// When the stream is a terminal (and, for colour, NO_COLOR is not set).
    #[default]
    Auto,
    /// Always, even into a pipe or a file (and despite NO_COLOR).
    Always,
    /// Never.
    Never,
}

/// `secgate rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Only these families, comma-separated as for `scan --checks` (tls,dns).
    #[arg(long, value_name = "FAMILIES")]
    pub family: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `secgate explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The rule id, e.g. headers.hsts.missing (optional with --profile).
    #[arg(required_unless_present_any = ["profile", "profile_file"])]
    pub rule_id: Option<String>,
    /// Show what a profile changes (with RULE_ID: what it changes for that rule).
    #[arg(long, value_name = "NAME", conflicts_with = "profile_file")]
    pub profile: Option<String>,
    /// The same for a profile file of your own.
    #[arg(long, value_name = "FILE")]
    pub profile_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `secgate profiles`.
#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `secgate diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier JSON report.
    pub old: PathBuf,
    /// The later JSON report.
    pub new: PathBuf,
    /// Write the diff as JSON here (`-`: standard output, instead of the text).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Exit 1 when a new finding is at or above SEVERITY [default: high].
    #[arg(long, value_name = "SEVERITY", default_value = "high")]
    pub fail_on: String,
}

/// `secgate validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The configuration file.
    pub config: PathBuf,
}

/// `secgate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Write the JSON report here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write a SARIF report here.
    #[arg(long, value_name = "PATH")]
    pub sarif: Option<PathBuf>,
    /// Write a report in FORMAT to PATH (`-`: standard output). Repeatable.
    #[arg(long = "report", value_name = "FORMAT=PATH", value_parser = parse_report)]
    pub reports: Vec<(ReportFormat, PathBuf)>,
    /// Add a compliance view to every report (pci-dss, asvs, nist-800-52). Repeatable.
    #[arg(long, value_name = "FRAMEWORK")]
    pub compliance: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `secgate completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `secgate lab` (hidden).
#[derive(Debug, Args)]
pub struct LabArgs {
    /// Number of HTTPS sites, each on its own 127.0.x.y address.
    #[arg(long, default_value_t = 200)]
    pub targets: u32,
    /// Site profile: hardened or legacy.
    #[arg(long, default_value = "hardened")]
    pub profile: String,
    /// Directory for the generated secgate.toml and ca.pem.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Where reports go, and how the terminal report looks.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Report files (`--report`, `--json`, `--sarif`), in the order given.
    pub reports: Vec<(ReportFormat, PathBuf)>,
    /// `--quiet` (or a report on standard output).
    pub quiet: bool,
    /// `--verbose`.
    pub verbose: bool,
    /// Colour decided from `--no-color`, `NO_COLOR` and the TTY.
    pub color: bool,
    /// A report goes to standard output: the verdict goes to standard error instead.
    pub summary_to_stderr: bool,
    /// `--github`: the job summary file (`$GITHUB_STEP_SUMMARY`), when set.
    pub github_summary: Option<PathBuf>,
    /// Progress on standard error (`--progress`).
    pub progress: crate::progress::Progress,
}

impl OutputArgs {
    /// Resolve where reports go and how the terminal report looks. `--json P` and `--sarif P`
    /// are `--report json=P` and `--report sarif=P`.
    pub fn outputs(
        &self,
        json: Option<PathBuf>,
        sarif: Option<PathBuf>,
        reports: &[(ReportFormat, PathBuf)],
    ) -> Result<Outputs> {
        use std::io::IsTerminal;
        // A flag on the command line overrides NO_COLOR (no-color.org), which overrides auto.
        let color = match (self.no_color, self.color) {
            (true, _) | (false, When::Never) => false,
            (false, When::Always) => true,
            (false, When::Auto) => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        };
        let mut all: Vec<(ReportFormat, PathBuf, &str)> = Vec::new();
        all.extend(json.map(|p| (ReportFormat::Json, p, "--json")));
        all.extend(sarif.map(|p| (ReportFormat::Sarif, p, "--sarif")));
        all.extend(reports.iter().map(|(f, p)| (*f, p.clone(), "--report")));
        // A report on standard output replaces the terminal report there.
        let mut to_stdout = 0;
        for (format, path, flag) in &all {
            if is_stdout(path) {
                to_stdout += 1;
                if to_stdout > 1 {
                    return Err(Error::usage(
                        flag,
                        format!(
                            "only one report can go to standard output ({} cannot)",
                            format.name()
                        ),
                    ));
                }
            }
            check_writable(flag, path)?;
        }
        let github_summary = if self.github {
            let path = std::env::var_os("GITHUB_STEP_SUMMARY")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from);
            if path.is_none() {
                crate::stderr_line(format_args!(
                    "secgate: note: --github: GITHUB_STEP_SUMMARY is not set; no job summary is written"
                ));
            }
            path
        } else {
            None
        };
        Ok(Outputs {
            reports: all.into_iter().map(|(f, p, _)| (f, p)).collect(),
            quiet: self.quiet || to_stdout > 0,
            verbose: self.verbose,
            color,
            summary_to_stderr: to_stdout > 0 && !self.quiet,
            github_summary,
            progress: crate::progress::Progress::new(self.progress, self.quiet),
        })
    }
}

/// `FORMAT=PATH` for `--report`.
pub(crate) fn parse_report(value: &str) -> std::result::Result<(ReportFormat, PathBuf), String> {
    let (format, path) = value
        .split_once('=')
        .ok_or_else(|| format!("'{value}': expected FORMAT=PATH, e.g. json=report.json"))?;
    let format = ReportFormat::parse(format)?;
    if path.is_empty() {
        return Err(format!("'{value}': no path after '='"));
    }
    Ok((format, PathBuf::from(path)))
}

/// `-` as a report path: standard output.
pub fn is_stdout(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

/// Fail early (exit 2) when a report path cannot be written, instead of after the scan.
pub fn check_writable(flag: &str, path: &std::path::Path) -> Result<()> {
    if is_stdout(path) {
        return Ok(());
    }
    if path.is_dir() {
        return Err(Error::usage(
            flag,
            format!("{} is a directory", path.display()),
        ));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !parent.is_dir() {
        return Err(Error::usage(
            flag,
            format!("directory {} does not exist", parent.display()),
        ));
    }
    Ok(())
}

/// The clap command: the core's definitions, with every family's flags added to `scan`
/// under a heading per family.
pub fn command(families: &[&dyn FamilyOptions]) -> clap::Command {
    Cli::command().mut_subcommand("scan", |mut scan| {
        for family in families {
            for flag in family.options().flags() {
                let mut arg = clap::Arg::new(flag.long)
                    .long(flag.long)
                    .value_name(flag.value_name)
                    .help(flag.help)
                    .allow_negative_numbers(true)
                    .help_heading(format!("Options of the {} family", family.family()));
                arg = if flag.kind == crate::options::FlagKind::Repeated {
                    arg.action(clap::ArgAction::Append)
                } else {
                    arg.action(clap::ArgAction::Set)
                };
                scan = scan.arg(arg);
            }
        }
        scan
    })
}

/// Parse the command line (with the families' flags).
pub fn parse(
    families: &[&dyn FamilyOptions],
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> std::result::Result<Cli, clap::Error> {
    let matches = command(families).try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Command::Scan(scan), Some(("scan", sub))) = (&mut cli.command, matches.subcommand()) {
        for family in families {
            for flag in family.options().flags() {
                if let Some(values) = sub.get_many::<String>(flag.long) {
                    scan.family_flags
                        .push((flag.long.to_string(), values.cloned().collect()));
                }
            }
        }
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
