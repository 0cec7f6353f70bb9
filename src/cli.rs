//! Command-line interface (clap) and the merge of flags over the config file into a
//! [`ScanPlan`]. Flags win over the config file; the config file wins over defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::checks;
use crate::config::{self, limits};
use crate::engine::{ScanPlan, Settings};
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::target::{ResolveEntry, Target};

/// Exit codes, shown in `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    gate passed
  1    gate failed on findings (critical findings over --max-critical, or score under --min-score)
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
    /// Print one rule's documentation: what it checks, why it matters, how to fix it.
    Explain(ExplainArgs),
    /// Check a configuration file without scanning.
    Validate(ValidateArgs),
    /// Start a lab of misconfigured servers on loopback and scan it (no network needed).
    #[command(
        after_help = "Exit codes:\n  0    the demo ran (its gate fails on purpose; the report says what `scan` would exit with)\n  2    usage error\n  130  interrupted (Ctrl-C); reports are still written, marked incomplete"
    )]
    Demo(DemoArgs),
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
    /// Fail tls.cert.expiring_soon when a certificate expires within DAYS [default: 30].
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
    pub cert_expiry_days: Option<i64>,
    /// Ports to sweep: 22,80,443 / 1-1024 / top100 / top1000 / all, mixed with commas
    /// [default: a host:port target's port, else top1000].
    #[arg(long, value_name = "LIST")]
    pub ports: Option<String>,
    /// Ports allowed open (ports.unexpected_open), for targets without their own [default: 80,443].
    #[arg(long, value_name = "LIST")]
    pub allowed_ports: Option<String>,
    /// Sockets in flight during a port sweep, lowered to fit the open-file limit [default: 2048].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub port_concurrency: Option<i64>,
    /// Accept CIDR targets of more than 65,536 addresses (up to 2^24).
    #[arg(long)]
    pub allow_large_range: bool,
    /// DNS server for every lookup, ADDR:PORT [default: the system's resolver].
    #[arg(long, value_name = "ADDR:PORT")]
    pub dns_server: Option<String>,
    /// A mail domain whose SPF and DMARC records the dns family checks. Repeatable.
    #[arg(long, value_name = "DOMAIN")]
    pub mail_domain: Vec<String>,
    /// Write the JSON report here (`-`: standard output, instead of the terminal report).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write a SARIF 2.1.0 report here (GitHub code scanning; `-`: standard output).
    #[arg(long, value_name = "PATH")]
    pub sarif: Option<PathBuf>,
    /// Cap on secgate's own HTTP requests per second over the whole scan [default: none;
    /// rate-limit bursts are paced per endpoint].
    #[arg(long, value_name = "RPS", allow_negative_numbers = true)]
    pub max_rps: Option<f64>,
    /// Lowest passing score, 0-100 [default: 95].
    #[arg(long, value_name = "SCORE", allow_negative_numbers = true)]
    pub min_score: Option<f64>,
    /// Most critical findings allowed [default: 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_critical: Option<i64>,
    #[command(flatten)]
    pub output: OutputArgs,
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
    /// No colours (also: NO_COLOR set in the environment).
    #[arg(long)]
    pub no_color: bool,
}

/// `secgate rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Only this family.
    #[arg(long, value_name = "FAMILY")]
    pub family: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `secgate explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The rule id, e.g. headers.hsts.missing.
    pub rule_id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
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
    #[command(flatten)]
    pub output: OutputArgs,
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

/// Where reports go.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// `--json`.
    pub json: Option<PathBuf>,
    /// `--sarif`.
    pub sarif: Option<PathBuf>,
    /// `--quiet`.
    pub quiet: bool,
    /// `--verbose`.
    pub verbose: bool,
    /// Colour decided from `--no-color`, `NO_COLOR` and the TTY.
    pub color: bool,
}

impl OutputArgs {
    /// Resolve colour and verbosity.
    pub fn outputs(&self, json: Option<PathBuf>, sarif: Option<PathBuf>) -> Outputs {
        use std::io::IsTerminal;
        let color = !self.no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stdout().is_terminal();
        // A report on standard output replaces the terminal report there.
        let to_stdout = [&json, &sarif]
            .iter()
            .any(|p| p.as_deref().is_some_and(is_stdout));
        Outputs {
            json,
            sarif,
            quiet: self.quiet || to_stdout,
            verbose: self.verbose,
            color,
        }
    }
}

/// `-` as a report path: standard output.
pub fn is_stdout(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

fn int_flag(value: Option<i64>, flag: &str, lo: i64, hi: i64) -> Result<Option<i64>> {
    value
        .map(|v| limits::range(v, lo, hi).map_err(|m| Error::usage(flag, m)))
        .transpose()
}

/// Merge flags and the config file into a plan.
pub fn build_plan(args: &ScanArgs) -> Result<(ScanPlan, Outputs)> {
    let config = match &args.config {
        Some(path) => Some(config::load(path).map_err(|e| match e {
            Error::Io { .. } => Error::usage("--config", e.to_string()),
            other => other,
        })?),
        None => None,
    };
    let cfg = config.clone().unwrap_or_default();

    let mut targets: Vec<Target> = Vec::new();
    for raw in &args.targets {
        let t = Target::parse(raw).map_err(|m| Error::usage("TARGET", m))?;
        targets.push(t);
    }
    // A target given on the command line and declared in the config is the config's (it
    // carries its line for SARIF, its resolve entries, endpoints and ports).
    for t in &cfg.targets {
        match targets.iter_mut().find(|x| x.id == t.id) {
            Some(existing) => *existing = t.clone(),
            None => targets.push(t.clone()),
        }
    }
    if targets.is_empty() {
        return Err(Error::usage(
            "TARGET",
            "no target given (pass a URL or host, or --config FILE with [[target]] entries; try `secgate demo`)",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| seen.insert(t.id.clone()));
    let allow_large = args.allow_large_range || cfg.allow_large_range.unwrap_or(false);
    for t in &targets {
        let n = t.address_count();
        let limit = if allow_large {
            crate::target::MAX_RANGE_ADDRESSES_FORCED
        } else {
            crate::target::MAX_RANGE_ADDRESSES
        };
        if n > limit {
            let hint = if allow_large {
                "the most secgate sweeps in one target; split it".to_string()
            } else {
                "pass --allow-large-range (or scan.allow_large_range = true) to sweep it"
                    .to_string()
            };
            let message = format!("'{}' holds {n} addresses, more than {limit}; {hint}", t.id);
            return Err(match &t.origin {
                Some(o) => Error::Usage(format!(
                    "{}:{}: target: {message}",
                    o.file.display(),
                    o.line
                )),
                None => Error::usage("TARGET", message),
            });
        }
    }

    let families = match &args.checks {
        Some(list) => {
            // Flags win over the config, per-target `checks` included.
            for t in &mut targets {
                t.families = None;
            }
            checks::parse_families(list).map_err(|m| Error::usage("--checks", m))?
        }
        None => cfg.families.clone().unwrap_or_default(),
    };

    let mut settings = Settings::default();
    if let Some(t) = args.timeout {
        settings.timeout = limits::timeout(t).map_err(|m| Error::usage("--timeout", m))?;
    } else if let Some(t) = cfg.timeout {
        settings.timeout = t;
    }
    let concurrency = int_flag(
        args.concurrency,
        "--concurrency",
        1,
        limits::MAX_CONCURRENCY,
    )?;
    settings.concurrency = concurrency
        .and_then(|v| usize::try_from(v).ok())
        .or(cfg.concurrency)
        .unwrap_or(settings.concurrency);
    let per_host = int_flag(args.per_host, "--per-host", 1, limits::MAX_PER_HOST)?;
    settings.per_host = per_host
        .and_then(|v| usize::try_from(v).ok())
        .or(cfg.per_host)
        .unwrap_or(settings.per_host);
    let redirects = int_flag(
        args.max_redirects,
        "--max-redirects",
        0,
        limits::MAX_REDIRECTS,
    )?;
    settings.max_redirects = redirects
        .and_then(|v| u32::try_from(v).ok())
        .or(cfg.max_redirects)
        .unwrap_or(settings.max_redirects);
    let http_port = int_flag(args.http_port, "--http-port", 1, 65535)?;
    settings.http_port = http_port
        .and_then(|v| u16::try_from(v).ok())
        .or(cfg.http_port)
        .unwrap_or(settings.http_port);
    settings.insecure = args.insecure || cfg.insecure.unwrap_or(false);
    let expiry = int_flag(
        args.cert_expiry_days,
        "--cert-expiry-days",
        0,
        limits::MAX_CERT_EXPIRY_DAYS,
    )?;
    settings.cert_expiry_days = expiry
        .and_then(|v| u32::try_from(v).ok())
        .or(cfg.cert_expiry_days)
        .unwrap_or(settings.cert_expiry_days);
    settings.ports = match &args.ports {
        Some(p) => {
            Some(crate::checks::ports::PortSpec::parse(p).map_err(|m| Error::usage("--ports", m))?)
        }
        None => cfg.ports.clone(),
    };
    settings.allowed_ports = match &args.allowed_ports {
        Some(p) => Some(
            crate::checks::ports::PortSpec::parse(p)
                .map_err(|m| Error::usage("--allowed-ports", m))?
                .ports,
        ),
        None => cfg.allowed_ports.clone(),
    };
    let port_concurrency = int_flag(
        args.port_concurrency,
        "--port-concurrency",
        1,
        limits::MAX_PORT_CONCURRENCY,
    )?;
    settings.port_concurrency = port_concurrency
        .and_then(|v| usize::try_from(v).ok())
        .or(cfg.port_concurrency)
        .unwrap_or(settings.port_concurrency);
    settings.dns_server = match &args.dns_server {
        Some(d) => Some(limits::dns_server(d).map_err(|m| Error::usage("--dns-server", m))?),
        None => cfg.dns_server,
    };
    let mut mail_domains = Vec::new();
    for d in &args.mail_domain {
        mail_domains.push(limits::mail_domain(d).map_err(|m| Error::usage("--mail-domain", m))?);
    }
    mail_domains.extend(cfg.mail_domains.iter().cloned());
    settings.mail_domains = mail_domains;

    if let Some(path) = &args.ca_file {
        settings.ca_certs =
            crate::engine::net::read_ca_file(path).map_err(|m| Error::usage("--ca-file", m))?;
    } else {
        settings.ca_certs = cfg.ca_certs.clone();
    }
    let mut resolve = Vec::new();
    for raw in &args.resolve {
        resolve.push(ResolveEntry::parse(raw).map_err(|m| Error::usage("--resolve", m))?);
    }
    resolve.extend(cfg.resolve.iter().cloned());
    settings.resolve = resolve;

    let mut policy = Policy::default();
    if let Some(s) = args.min_score {
        policy.min_score = limits::min_score(s).map_err(|m| Error::usage("--min-score", m))?;
    } else if let Some(s) = cfg.min_score {
        policy.min_score = s;
    }
    let max_critical = int_flag(args.max_critical, "--max-critical", 0, 1_000_000)?;
    policy.max_critical = max_critical
        .and_then(|v| u32::try_from(v).ok())
        .or(cfg.max_critical)
        .unwrap_or(policy.max_critical);

    if let Some(rps) = args.max_rps {
        if !(rps.is_finite() && rps > 0.0 && rps <= 100_000.0) {
            return Err(Error::usage(
                "--max-rps",
                format!("must be above 0 and at most 100000, got {rps}"),
            ));
        }
        settings.max_rps = Some(rps);
    }
    let secrets = load_secrets(&mut targets)?;

    let outputs = args.output.outputs(args.json.clone(), args.sarif.clone());
    check_outputs(&outputs)?;
    Ok((
        ScanPlan {
            targets,
            families,
            settings,
            policy,
            config_path: args.config.clone(),
            secrets,
        },
        outputs,
    ))
}

/// Load every endpoint secret (environment variables, files); errors name the config key.
pub fn load_secrets(targets: &mut [Target]) -> Result<Vec<crate::endpoint::Secret>> {
    let mut loaded = Vec::new();
    for target in targets {
        for endpoint in &mut target.endpoints {
            for secret in endpoint.secrets_mut() {
                let value = secret
                    .source
                    .load()
                    .map_err(|m| Error::usage(&secret.key, m))?;
                loaded.push(value.clone());
                secret.value = Some(value);
            }
        }
    }
    Ok(loaded)
}

/// Fail early (exit 2) when a report cannot be written where asked, instead of after the scan.
pub fn check_outputs(outputs: &Outputs) -> Result<()> {
    for (flag, path) in [("--json", &outputs.json), ("--sarif", &outputs.sarif)] {
        if let Some(p) = path {
            check_writable(flag, p)?;
        }
    }
    if [&outputs.json, &outputs.sarif]
        .iter()
        .all(|p| p.as_deref().is_some_and(is_stdout))
    {
        return Err(Error::usage(
            "--sarif",
            "only one report can go to standard output, and --json already does",
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
