//! The plan: what a scan will do, validated before any packet is sent. The command line and
//! the config file are merged here (flags win over the file, the file over defaults) into a
//! [`ScanPlan`]: the targets, the families asked for, the engine's [`Settings`], every
//! family's options ([`crate::options`]) and the gate's [`Policy`].
//!
//! Bad input stops here, with one line naming the flag or `file:line:column: key`, and exit 2.

use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use crate::cli::ScanArgs;
use crate::config::{self, Config, limits};
use crate::endpoint::Secret;
use crate::error::{Error, Result};
use crate::options::{self, FamilyOptions, Located, OptionSet, ParseFailure};
use crate::policy::{GateOn, Policy};
use crate::suppress::Suppressions;
use crate::target::{ResolveEntry, Target};

/// The engine's knobs: how hard and how long secgate talks to targets, and whom it trusts.
/// Family options live with their families, not here.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Timeout of each network operation (connect, TLS handshake, read).
    pub timeout: Duration,
    /// (target, family) tasks running at once.
    pub concurrency: usize,
    /// Connections to one host at once.
    pub per_host: usize,
    /// Redirects followed per fetch, within the scan's hosts.
    pub max_redirects: u32,
    /// Skip certificate verification for HTTP requests (the TLS family still judges them).
    pub insecure: bool,
    /// Extra trust anchors (`--ca-file`).
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// Scan-wide `--resolve` overrides.
    pub resolve: crate::target::ResolveTable,
    /// Cap on secgate's own requests per second over the whole scan (`--max-rps`).
    pub max_rps: Option<f64>,
    /// Cap on secgate's requests per target, over all families (`--max-requests`).
    pub max_requests: Option<u32>,
    /// `--dns-server`: the DNS server for every lookup (default: the system's resolver).
    pub dns_server: Option<std::net::SocketAddr>,
    /// Where the scan reports its progress (`--progress`; hidden by default).
    pub progress: crate::progress::Progress,
    /// The HTTP families' proxy (`--proxy`); none by default, and never the environment's
    /// unless `--proxy env`.
    pub proxy: Option<Proxy>,
    /// The policy profile (`--profile`): its rule parameters, read by the families.
    pub profile: std::sync::Arc<crate::profile::Profile>,
    /// The families that audit the TLS and HTTP services the port sweep discovers, as derived
    /// targets (`scan.chain`; none with `--no-chain`).
    pub chain: Vec<&'static str>,
}

/// The proxy of the HTTP families: an HTTP proxy, reached at an address (its name was looked
/// up when the plan was made), used with CONNECT for `https://` and as a forward proxy for
/// `http://`.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// For `https://` URLs.
    pub https: Option<url::Url>,
    /// For `http://` URLs.
    pub http: Option<url::Url>,
    /// Hosts that bypass it (`NO_PROXY`, with `--proxy env` only).
    pub no_proxy: Option<String>,
}

/// Debug without the proxy's credentials (a password in its URL is a secret).
impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |u: &Option<url::Url>| {
            u.as_ref().map(|u| {
                let mut u = u.clone();
                if u.password().is_some() {
                    let _ = u.set_password(Some("[REDACTED]"));
                }
                u.to_string()
            })
        };
        f.debug_struct("Proxy")
            .field("https", &shown(&self.https))
            .field("http", &shown(&self.http))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// curl's default port of a proxy URL without one.
pub const DEFAULT_PROXY_PORT: u16 = 1080;

/// `--proxy URL` or `--proxy env` (`env`: the environment's variables, as `var`
/// reads them). Errors name the flag, or the variable.
pub fn proxy(value: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Proxy>> {
    if value != "env" {
        let url = proxy_url(value).map_err(|m| Error::usage("--proxy", m))?;
        return Ok(Some(Proxy {
            https: Some(url.clone()),
            http: Some(url),
            no_proxy: None,
        }));
    }
    let first = |names: &[&str]| -> Result<Option<url::Url>> {
        for name in names {
            if let Some(v) = var(name).filter(|v| !v.trim().is_empty()) {
                return proxy_url(v.trim())
                    .map(Some)
                    .map_err(|m| Error::usage("--proxy", format!("env: {name}: {m}")));
            }
        }
        Ok(None)
    };
    let https = first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"])?;
    let http = first(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])?;
    if https.is_none() && http.is_none() {
        return Ok(None);
    }
    let no_proxy = var("NO_PROXY").or_else(|| var("no_proxy"));
    Ok(Some(Proxy {
        https,
        http,
        no_proxy,
    }))
}

/// A proxy URL, checked and with its host looked up: `http://HOST[:PORT]` (port 1080 when
/// none is given, as curl does). Credentials (`user:pass@`) are kept for the proxy and never
/// shown: messages name the URL without them.
fn proxy_url(value: &str) -> std::result::Result<url::Url, String> {
    use std::net::ToSocketAddrs;
    let mut url = url::Url::parse(value).map_err(|e| {
        format!(
            "'{}' is not a proxy URL ({e}); expected http://HOST:PORT",
            redact_userinfo(value)
        )
    })?;
    let shown = {
        let mut u = url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.to_string()
    };
    if url.scheme() != "http" {
        return Err(format!(
            "{shown}: only HTTP proxies are supported (http://HOST:PORT, HTTP CONNECT), not {}://",
            url.scheme()
        ));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{shown}: a proxy URL has no path or query"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(format!("{shown}: no host")),
    };
    let port = url.port().unwrap_or(DEFAULT_PROXY_PORT);
    let ip = if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        ip
    } else {
        (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("{shown}: cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{shown}: {host} has no address"))?
            .ip()
    };
    // The scan's HTTP client resolves only the scan's own hosts: reach the proxy by address.
    url.set_ip_host(ip)
        .map_err(|()| format!("{shown}: cannot use address {ip}"))?;
    url.set_port(Some(port))
        .map_err(|()| format!("{shown}: cannot use port {port}"))?;
    Ok(url)
}

/// `value` with any `user:pass@` taken out, for messages.
fn redact_userinfo(value: &str) -> String {
    match (value.find("://"), value.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!(
            "{}{}",
            value.get(..s + 3).unwrap_or(""),
            value.get(at + 1..).unwrap_or("")
        ),
        _ => value.to_string(),
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timeout: Duration::from_secs(5),
            concurrency: 64,
            per_host: 8,
            max_redirects: 5,
            insecure: false,
            ca_certs: Vec::new(),
            resolve: crate::target::ResolveTable::default(),
            max_rps: None,
            max_requests: None,
            dns_server: None,
            progress: crate::progress::Progress::hidden(),
            proxy: None,
            profile: crate::profile::default_profile(),
            chain: crate::engine::chain::DEFAULT.to_vec(),
        }
    }
}

/// The plain-HTTP port probed for `https://` targets that do not name their own.
pub const DEFAULT_HTTP_PORT: u16 = 80;

/// Everything a scan needs, validated.
#[derive(Clone, Debug)]
pub struct ScanPlan {
    /// Targets in the order given (each with its family options).
    pub targets: Vec<Target>,
    /// Families requested for all targets; empty means every family that applies.
    pub families: Vec<&'static str>,
    /// Engine settings.
    pub settings: Settings,
    /// Scan-level options of every family (targets carry their own, over these).
    pub options: OptionSet,
    /// Gate thresholds.
    pub policy: Policy,
    /// The config file, when one was used.
    pub config_path: Option<PathBuf>,
    /// Every credential loaded for the scan; results are scrubbed of them.
    pub secrets: Vec<Secret>,
    /// The suppressions file's entries (none without one).
    pub suppressions: Suppressions,
    /// The baseline report (`--baseline`).
    pub baseline: Option<crate::baseline::Side>,
    /// `--sarif-suppressed include`: keep suppressed findings in SARIF, marked.
    pub sarif_include_suppressed: bool,
    /// Compliance views every report carries (`--compliance`, `policy.compliance`): framework
    /// names known to [`crate::compliance`].
    pub compliance: Vec<&'static str>,
    /// In a shard ([`crate::shard::restrict`]): the targets and families of the plan's jobs
    /// other shards run. Chaining counts them as audited, so that a shard derives what the
    /// whole scan would, and no more.
    pub elsewhere: Vec<(Target, Vec<&'static str>)>,
}

impl ScanPlan {
    /// A plan for `targets` with default settings, options and policy (the demo and tests
    /// fill in the rest). Every family's default options are set.
    pub fn new(targets: Vec<Target>, families: &[&dyn FamilyOptions]) -> ScanPlan {
        let mut options = OptionSet::default();
        for f in families {
            options.insert(f.family(), f.options().defaults());
        }
        ScanPlan {
            targets,
            families: Vec::new(),
            settings: Settings::default(),
            options,
            policy: Policy::default(),
            config_path: None,
            secrets: Vec::new(),
            suppressions: Suppressions::default(),
            baseline: None,
            sarif_include_suppressed: false,
            compliance: Vec::new(),
            elsewhere: Vec::new(),
        }
    }
}

fn int_flag(value: Option<i64>, flag: &str, lo: i64, hi: i64) -> Result<Option<i64>> {
    value
        .map(|v| limits::range(v, lo, hi).map_err(|m| Error::usage(flag, m)))
        .transpose()
}

/// Read the config file named by `--config`, if any (a missing file names the flag).
pub fn read_config(
    path: Option<&std::path::Path>,
    families: &[&dyn FamilyOptions],
) -> Result<Option<Config>> {
    match path {
        Some(path) => Ok(Some(config::load(path, families).map_err(|e| match e {
            Error::Io { .. } => Error::usage("--config", e.to_string()),
            other => other,
        })?)),
        None => Ok(None),
    }
}

/// The largest `--targets-file` read (a /8 written out address by address is 200 MB; ranges
/// say it in one line).
const TARGETS_FILE_CAP: u64 = 16 << 20;

/// `--targets-file FILE` (`-`: standard input): one target per line, as on the command line,
/// like nmap's `-iL` and nuclei's `-l`. Blank lines are skipped, and `#` at the start of a
/// line or after a space starts a comment. An error names the line.
pub fn read_targets_file(path: &std::path::Path) -> Result<Vec<Target>> {
    use std::io::Read;
    const FLAG: &str = "--targets-file";
    let stdin = path.as_os_str() == "-";
    let name = if stdin {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let reader: Box<dyn Read> = if stdin {
        Box::new(std::io::stdin())
    } else {
        if path.is_dir() {
            return Err(Error::usage(FLAG, format!("{name} is a directory")));
        }
        Box::new(std::fs::File::open(path).map_err(|e| Error::usage(FLAG, format!("{name}: {e}")))?)
    };
    let mut bytes = Vec::new();
    reader
        .take(TARGETS_FILE_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::usage(FLAG, format!("{name}: {e}")))?;
    if bytes.len() as u64 > TARGETS_FILE_CAP {
        return Err(Error::usage(
            FLAG,
            format!(
                "{name} is larger than {} MiB; use CIDR ranges",
                TARGETS_FILE_CAP >> 20
            ),
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| Error::usage(FLAG, format!("{name}: not UTF-8 text ({e})")))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = match line.find('#').map(|i| line.get(..i).unwrap_or_default()) {
            Some(before) if before.is_empty() || before.ends_with(char::is_whitespace) => before,
            _ => line,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        let t = Target::parse(line)
            .map_err(|m| Error::usage(FLAG, format!("{name}:{}: {m}", n + 1)))?;
        out.push(t);
    }
    if out.is_empty() {
        return Err(Error::usage(FLAG, format!("{name} names no target")));
    }
    Ok(out)
}

/// Merge flags and the config file into a plan.
pub fn build(args: &ScanArgs, families: &[&dyn FamilyOptions]) -> Result<ScanPlan> {
    let config = read_config(args.config.as_deref(), families)?;
    let cfg = config.clone().unwrap_or_default();
    let names: Vec<&'static str> = families.iter().map(|f| f.family()).collect();

    // Targets: the command line's, then the config's; one declared in both is the config's
    // (it carries its line for SARIF, its resolve entries, endpoints and options).
    let mut targets: Vec<(Target, Option<usize>)> = Vec::new();
    for raw in &args.targets {
        let t = Target::parse(raw).map_err(|m| Error::usage("TARGET", m))?;
        targets.push((t, None));
    }
    if let Some(path) = &args.targets_file {
        targets.extend(read_targets_file(path)?.into_iter().map(|t| (t, None)));
    }
    let mut index: std::collections::HashMap<String, usize> = targets
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (t.id.clone(), i))
        .collect();
    for (n, t) in cfg.targets.iter().enumerate() {
        match index.get(&t.id) {
            Some(&i) => {
                if let Some(slot) = targets.get_mut(i) {
                    *slot = (t.clone(), Some(n));
                }
            }
            None => {
                index.insert(t.id.clone(), targets.len());
                targets.push((t.clone(), Some(n)));
            }
        }
    }
    if targets.is_empty() {
        return Err(Error::usage(
            "TARGET",
            "no target given (pass a URL or host, or --config FILE with [[target]] entries; try `secgate demo`)",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    targets.retain(|(t, _)| seen.insert(t.id.clone()));
    let allow_large = args.allow_large_range || cfg.allow_large_range.unwrap_or(false);
    for (t, _) in &targets {
        check_range(t, allow_large)?;
    }

    let families_asked = match &args.checks {
        Some(list) => {
            // Flags win over the config, per-target `checks` included.
            for (t, _) in &mut targets {
                t.families = None;
            }
            config::parse_families(&names, std::slice::from_ref(list))
                .map_err(|m| Error::usage("--checks", m))?
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
    let http_port = int_flag(args.http_port, "--http-port", 1, 65535)?
        .and_then(|v| u16::try_from(v).ok())
        .or(cfg.http_port)
        .unwrap_or(DEFAULT_HTTP_PORT);
    for (t, _) in &mut targets {
        t.http_port = Some(t.http_port.unwrap_or(http_port));
    }
    settings.insecure = args.insecure || cfg.insecure.unwrap_or(false);
    settings.dns_server = match &args.dns_server {
        Some(d) => Some(limits::dns_server(d).map_err(|m| Error::usage("--dns-server", m))?),
        None => cfg.dns_server,
    };
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
    settings.resolve = resolve.into();
    if let Some(rps) = args.max_rps {
        if !(rps.is_finite() && rps > 0.0 && rps <= 100_000.0) {
            return Err(Error::usage(
                "--max-rps",
                format!("must be above 0 and at most 100000, got {rps}"),
            ));
        }
        settings.max_rps = Some(rps);
    }
    if let Some(p) = &args.proxy {
        settings.proxy = proxy(p, &|k| std::env::var(k).ok())?;
    }
    settings.max_requests = int_flag(args.max_requests, "--max-requests", 1, 100_000_000)?
        .and_then(|v| u32::try_from(v).ok())
        .or(cfg.max_requests);
    if args.no_chain {
        settings.chain = Vec::new();
    } else if let Some(chain) = &cfg.chain {
        settings.chain = chain.clone();
    }

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
    gate_policy(&mut policy, &args.triage, &cfg.policy)?;
    settings.profile = match (&args.profile, &args.profile_file) {
        (Some(name), _) => {
            crate::profile::resolve(name).map_err(|m| Error::usage("--profile", m))?
        }
        (None, Some(path)) => {
            std::sync::Arc::new(crate::profile::load_file(path, "--profile-file")?)
        }
        (None, None) => cfg
            .profile
            .clone()
            .unwrap_or_else(crate::profile::default_profile),
    };
    policy.profile = settings.profile.id();
    let suppressions = suppressions(
        args.triage.suppressions.as_deref(),
        config.as_ref(),
        &policy,
    )?;
    let baseline = match &args.triage.baseline {
        Some(path) => Some(crate::baseline::load(path)?),
        None => None,
    };

    // Family options: the file's keys, the flags over them, then each target's own.
    let options = scan_options(config.as_ref(), &args.family_flags, families)?;
    let mut targets: Vec<Target> = targets
        .into_iter()
        .map(|(mut t, n)| {
            t.options = target_options(config.as_ref(), n, families, &options)?;
            Ok(t)
        })
        .collect::<Result<_>>()?;

    let compliance = if args.compliance.is_empty() {
        cfg.compliance.clone()
    } else {
        crate::compliance::parse_names(&args.compliance)
            .map_err(|m| Error::usage("--compliance", m))?
    };
    // Chaining audits with the families asked for only: `--checks ports` sweeps and no more.
    for t in &mut targets {
        let asked = t.families.as_deref().unwrap_or(&families_asked);
        if !asked.is_empty() {
            t.chain = Some(
                settings
                    .chain
                    .iter()
                    .copied()
                    .filter(|f| asked.contains(f))
                    .collect(),
            );
        }
    }
    let secrets = load_secrets(&mut targets, &families_asked, families)?;
    Ok(ScanPlan {
        targets,
        families: families_asked,
        settings,
        options,
        policy,
        config_path: args.config.clone(),
        secrets,
        suppressions,
        baseline,
        sarif_include_suppressed: args.triage.sarif_suppressed.as_deref() == Some("include"),
        compliance,
        elsewhere: Vec::new(),
    })
}

/// The gate keys beyond score and criticals: flags over the file over defaults.
fn gate_policy(
    policy: &mut Policy,
    args: &crate::cli::TriageArgs,
    file: &crate::policy::FilePolicy,
) -> Result<()> {
    let limit = |v: Option<i64>, flag: &str, from_file: Option<u32>| -> Result<Option<u32>> {
        Ok(int_flag(v, flag, 0, 1_000_000)?
            .and_then(|v| u32::try_from(v).ok())
            .or(from_file))
    };
    policy.max_high = limit(args.max_high, "--max-high", file.max_high)?;
    policy.max_medium = limit(args.max_medium, "--max-medium", file.max_medium)?;
    policy.max_low = limit(args.max_low, "--max-low", file.max_low)?;
    policy.fail_on = match &args.fail_on {
        Some(s) => {
            Some(crate::policy::parse_severity(s).map_err(|m| Error::usage("--fail-on", m))?)
        }
        None => file.fail_on,
    };
    policy.gate_on = match &args.gate_on {
        Some(s) => GateOn::parse(s).map_err(|m| Error::usage("--gate-on", m))?,
        None => file.gate_on.unwrap_or_default(),
    };
    policy.fail_on_stale = args.fail_on_stale || file.fail_on_stale.unwrap_or(false);
    file_only_policy(policy, file);
    Ok(())
}

/// The `[policy]` keys that only the config file sets (how suppressions are judged).
pub fn file_only_policy(policy: &mut Policy, file: &crate::policy::FilePolicy) {
    policy.allow_permanent_suppressions = file.allow_permanent_suppressions.unwrap_or(false);
    if let Some(d) = file.max_suppression_days {
        policy.max_suppression_days = d;
    }
}

/// The suppressions file: `--suppressions` (`flag`), else `scan.suppressions`, else
/// `.secgate-suppressions.toml` beside the config file when it exists.
pub fn suppressions(
    flag: Option<&std::path::Path>,
    config: Option<&Config>,
    policy: &Policy,
) -> Result<Suppressions> {
    let today = time::OffsetDateTime::now_utc().date();
    let read = |path: &std::path::Path, missing: &dyn Fn(String) -> Error| {
        crate::suppress::load(path, policy, today).map_err(|e| match e {
            Error::Io { .. } => missing(e.to_string()),
            other => other,
        })
    };
    if let Some(path) = flag {
        return read(path, &|m| Error::usage("--suppressions", m));
    }
    let Some(c) = config else {
        return Ok(Suppressions::default());
    };
    if let Some((path, line, column)) = &c.suppressions {
        return read(path, &|m| Error::Config {
            path: c.path.clone(),
            line: *line,
            column: *column,
            message: format!("scan.suppressions: {m}"),
        });
    }
    let default = c
        .path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(crate::suppress::DEFAULT_FILE);
    if default.is_file() {
        return read(&default, &|m| Error::Usage(m));
    }
    Ok(Suppressions::default())
}

fn check_range(t: &Target, allow_large: bool) -> Result<()> {
    let n = t.address_count();
    let limit = if allow_large {
        crate::target::MAX_RANGE_ADDRESSES_FORCED
    } else {
        crate::target::MAX_RANGE_ADDRESSES
    };
    if n <= limit {
        return Ok(());
    }
    let hint = if allow_large {
        "the most secgate sweeps in one target; split it".to_string()
    } else {
        "pass --allow-large-range (or scan.allow_large_range = true) to sweep it".to_string()
    };
    let message = format!("'{}' holds {n} addresses, more than {limit}; {hint}", t.id);
    Err(match &t.origin {
        Some(o) => Error::Usage(format!(
            "{}:{}: target: {message}",
            o.file.display(),
            o.line
        )),
        None => Error::usage("TARGET", message),
    })
}

/// The flags a family owns, as given: `(long name, values)`.
pub type FamilyFlags = Vec<(String, Vec<String>)>;

/// Parse every family's scan-level options: the config's keys, then the flags over them.
pub fn scan_options(
    config: Option<&Config>,
    flags: &FamilyFlags,
    families: &[&dyn FamilyOptions],
) -> Result<OptionSet> {
    let mut set = OptionSet::default();
    for (fi, family) in families.iter().enumerate() {
        let spec = family.options();
        let raw = config.and_then(|c| c.family_scan.get(family.family()));
        let text = config.map_or("", |c| c.text.as_str());
        let mut entries: Vec<(
            String,
            std::ops::Range<usize>,
            toml::Spanned<toml::de::DeValue<'_>>,
        )> = Vec::new();
        let mut located: Vec<Located> = Vec::new();
        let span = raw.map_or(0..0, |r| r.span.clone());
        if let Some(raw) = raw
            && let toml::de::DeValue::Table(t) = raw.value(text).into_inner()
        {
            for (k, v) in t {
                entries.push((k.get_ref().to_string(), k.span(), v));
            }
        }
        for (gi, flag) in spec.flags().iter().enumerate() {
            let Some((_, values)) = flags.iter().find(|(long, _)| long == flag.long) else {
                continue;
            };
            let at = options::FLAG_SPAN_BASE + fi * 64 + gi;
            located.push(Located {
                key: format!("--{}", flag.long),
                span: at..at + 1,
                flag: true,
            });
            entries.retain(|(k, _, _)| k != flag.key);
            entries.push((
                flag.key.to_string(),
                at..at + 1,
                options::flag_value(values, flag.kind, at..at + 1),
            ));
        }
        let value = options::table(entries, span);
        if let Some(c) = config {
            located.extend(c.located.iter().cloned());
        }
        let parsed = spec
            .parse_scan(value)
            .map_err(|f| option_error(config, &located, &f, family.family()))?;
        set.insert(family.family(), parsed);
    }
    Ok(set)
}

/// One target's options over the scan's: config target `n`'s keys (none for a target from
/// the command line).
pub fn target_options(
    config: Option<&Config>,
    n: Option<usize>,
    families: &[&dyn FamilyOptions],
    scan: &OptionSet,
) -> Result<OptionSet> {
    let mut set = OptionSet::default();
    let text = config.map_or("", |c| c.text.as_str());
    for family in families {
        let name = family.family();
        let Some(base) = scan.get_any(name) else {
            continue;
        };
        let raw = match (config, n) {
            (Some(c), Some(n)) => c.family_targets.get(n).and_then(|m| m.get(name)),
            _ => None,
        };
        let (table, endpoints) = match raw {
            Some(r) => (
                r.table.value(text),
                r.endpoints
                    .iter()
                    .map(|e| options::EndpointOptions {
                        name: e.name.clone(),
                        role: e.role,
                        span: e.span.clone(),
                        raw: e.raw.value(text),
                    })
                    .collect(),
            ),
            None => (options::table(Vec::new(), 0..0), Vec::new()),
        };
        let parsed = family
            .options()
            .parse_target(base, table, endpoints)
            .map_err(|f| {
                option_error(
                    config,
                    &config.map(|c| c.located.clone()).unwrap_or_default(),
                    &f,
                    name,
                )
            })?;
        set.insert(name, parsed);
    }
    Ok(set)
}

/// One line for a family's option problem: the flag, or the file position and key.
pub fn option_error(
    config: Option<&Config>,
    located: &[Located],
    failure: &ParseFailure,
    family: &str,
) -> Error {
    let (span, message) = match failure {
        ParseFailure::Serde(e) => (e.span().unwrap_or(0..0), options::tidy(e.message())),
        ParseFailure::Invalid(o) => (o.span.clone(), o.message.clone()),
    };
    let found = options::locate(located, span.start);
    match (found, config) {
        (Some(l), _) if l.flag => Error::usage(&l.key, message),
        (Some(l), Some(c)) => {
            let (line, column) = config::line_col(&c.text, span.start);
            Error::Config {
                path: c.path.clone(),
                line,
                column,
                message: format!("{}: {message}", l.key),
            }
        }
        (None, Some(c)) if span.start < options::FLAG_SPAN_BASE && span != (0..0) => {
            let (line, column) = config::line_col(&c.text, span.start);
            Error::Config {
                path: c.path.clone(),
                line,
                column,
                message,
            }
        }
        _ => Error::Usage(format!("{family} options: {message}")),
    }
}

/// Load the secrets of the endpoints that the families which will run use (environment
/// variables, files); errors name the config key.
pub fn load_secrets(
    targets: &mut [Target],
    asked: &[&'static str],
    owners: &[&dyn FamilyOptions],
) -> Result<Vec<Secret>> {
    let mut loaded = Vec::new();
    for target in targets {
        // The families that may run on this target: its own `checks`, else the scan's, else all.
        let running: Vec<&dyn FamilyOptions> = {
            let named: &[&'static str] = target.families.as_deref().unwrap_or(asked);
            owners
                .iter()
                .copied()
                .filter(|o| named.is_empty() || named.contains(&o.family()))
                .collect()
        };
        for endpoint in &mut target.endpoints {
            if !running.iter().any(|o| o.reads_secrets_of(endpoint)) {
                continue;
            }
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

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests: a failed assumption is a failed test"
    )]
    use super::*;

    #[test]
    fn a_proxy_url_is_checked_and_its_password_never_shown() {
        let env = |_: &str| None;
        let p = proxy("http://user:s3cret@127.0.0.1:3128", &env)
            .unwrap()
            .unwrap();
        let https = p.https.clone().unwrap();
        assert_eq!(https.password(), Some("s3cret"), "kept for the proxy");
        assert!(!format!("{p:?}").contains("s3cret"), "{p:?}");
        let p = proxy("http://127.0.0.1", &env).unwrap().unwrap();
        assert_eq!(p.http.unwrap().port(), Some(DEFAULT_PROXY_PORT));
        let vars = |k: &str| match k {
            "https_proxy" => Some("http://127.0.0.1:8080".to_string()),
            "NO_PROXY" => Some("internal.test".to_string()),
            _ => None,
        };
        let p = proxy("env", &vars).unwrap().unwrap();
        assert_eq!(p.https.unwrap().as_str(), "http://127.0.0.1:8080/");
        assert_eq!(p.http, None);
        assert_eq!(p.no_proxy.as_deref(), Some("internal.test"));
        assert_eq!(proxy("env", &env).unwrap(), None);
        let e = proxy("env", &|k| {
            (k == "HTTP_PROXY").then(|| "ftp://x:y@h".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--proxy: env: HTTP_PROXY: ") && !e.contains("x:y"),
            "{e}"
        );
    }
}
