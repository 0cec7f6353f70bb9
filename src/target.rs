//! Targets: what the user asked to scan, parsed once into a typed value with a stable id.
//!
//! Three kinds exist: URLs (`https://host:port/path`, `http://...`), hosts (`host`,
//! `host:port`, IPv4 literals, IPv6 literals bare or in brackets) and CIDR ranges
//! (`10.0.0.0/24`, `fd00::/120`) for the port sweep. The id is the canonical spelling
//! (lower-case host, default port dropped, a range by its network address), used in reports and
//! fingerprints.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use url::Url;

/// Where a target was declared, for SARIF locations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The config file, as given on the command line.
    pub file: PathBuf,
    /// 1-based line of the `url`/`host` key.
    pub line: usize,
}

/// The parsed form of a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// An http:// or https:// URL.
    Url(Url),
    /// A host name or IP literal, with an optional port.
    Host {
        /// The host.
        host: url::Host<String>,
        /// The port, if given.
        port: Option<u16>,
    },
    /// A CIDR range of addresses (network address and prefix length).
    Cidr {
        /// The network address (host bits cleared).
        network: IpAddr,
        /// The prefix length.
        prefix: u8,
    },
}

/// The most addresses a CIDR target may hold without `--allow-large-range`.
pub const MAX_RANGE_ADDRESSES: u128 = 65_536;
/// The most addresses a CIDR target may hold at all.
pub const MAX_RANGE_ADDRESSES_FORCED: u128 = 1 << 24;

/// One target of a scan, with its per-target settings.
#[derive(Clone, Debug)]
pub struct Target {
    /// Canonical id (see module docs).
    pub id: String,
    /// What it is.
    pub kind: TargetKind,
    /// Where it was declared, when it came from a config file.
    pub origin: Option<Origin>,
    /// Families to run on this target, overriding the scan's list.
    pub families: Option<Vec<&'static str>>,
    /// Plain-HTTP port to probe for `http.no_https_redirect` (default: the scan's, 80).
    pub http_port: Option<u16>,
    /// `--resolve`-style overrides that apply to this target only.
    pub resolve: Vec<ResolveEntry>,
    /// Named endpoints for the behaviour families (config `[[target.endpoint]]`).
    pub endpoints: Vec<crate::endpoint::Endpoint>,
    /// Family options for this target (its own keys over the scan's), by family.
    pub options: crate::options::OptionSet,
    /// A derived target: the id of the target whose port sweep discovered it.
    pub parent: Option<String>,
    /// PostgreSQL offering TLS after an SSLRequest: the TLS family sends one on every
    /// connection before its ClientHello (a derived target of a PostgreSQL port).
    pub postgres_tls: bool,
    /// The families that audit what this target's port sweep discovers, when the plan narrowed
    /// them (`scan.chain` within the families asked for); `None`: the scan's `scan.chain`.
    pub chain: Option<Vec<&'static str>>,
    /// In a shard (`crate::shard`): the slices of this target's sweep that the shard runs
    /// (empty: the whole sweep, or none of it when the family is not the shard's).
    pub slices: Vec<crate::model::Slice>,
}

impl Target {
    /// Parse a target string as typed on the command line.
    pub fn parse(input: &str) -> Result<Target, String> {
        let kind = parse_kind(input)?;
        Ok(Target {
            id: canonical_id(&kind),
            kind,
            origin: None,
            families: None,
            http_port: None,
            resolve: Vec::new(),
            endpoints: Vec::new(),
            options: crate::options::OptionSet::default(),
            parent: None,
            postgres_tls: false,
            chain: None,
            slices: Vec::new(),
        })
    }

    /// Parse a URL (for the config file's `url` key): the scheme is required.
    pub fn parse_url(input: &str) -> Result<Target, String> {
        if !input.contains("://") {
            return Err(format!(
                "'{input}' is not a URL (expected http:// or https://)"
            ));
        }
        Target::parse(input)
    }

    /// Parse a host (for the config file's `host` key): no scheme, no path; a CIDR range is
    /// accepted.
    pub fn parse_host(input: &str) -> Result<Target, String> {
        if input.contains("://") {
            return Err(format!(
                "'{input}' is not a host (expected host, host:port, an IP literal or a CIDR range)"
            ));
        }
        Target::parse(input)
    }

    /// The number of addresses of a CIDR target (1 for other kinds).
    pub fn address_count(&self) -> u128 {
        match &self.kind {
            TargetKind::Cidr { network, prefix } => {
                let bits: u32 = if network.is_ipv4() { 32 } else { 128 };
                let host_bits = bits.saturating_sub(u32::from(*prefix));
                1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
            }
            _ => 1,
        }
    }

    /// The addresses of a CIDR target, in order (empty for other kinds). Capped at
    /// [`MAX_RANGE_ADDRESSES_FORCED`], which the command line enforces anyway.
    pub fn range_addresses(&self) -> Vec<IpAddr> {
        let TargetKind::Cidr { network, .. } = &self.kind else {
            return Vec::new();
        };
        let count = self.address_count().min(MAX_RANGE_ADDRESSES_FORCED);
        match network {
            IpAddr::V4(v4) => {
                let base = u32::from(*v4);
                (0..count)
                    .filter_map(|i| u32::try_from(i).ok())
                    .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(base.wrapping_add(i))))
                    .collect()
            }
            IpAddr::V6(v6) => {
                let base = u128::from(*v6);
                (0..count)
                    .map(|i| IpAddr::V6(std::net::Ipv6Addr::from(base.wrapping_add(i))))
                    .collect()
            }
        }
    }

    /// Whether this target names a DNS name (not an IP literal or a range).
    pub fn domain(&self) -> Option<String> {
        match &self.kind {
            TargetKind::Url(url) => match url.host() {
                Some(url::Host::Domain(d)) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
                _ => None,
            },
            TargetKind::Host {
                host: url::Host::Domain(d),
                ..
            } => Some(d.trim_end_matches('.').to_ascii_lowercase()),
            _ => None,
        }
    }

    /// The host name or IP literal, lower-case, IPv6 without brackets.
    pub fn host(&self) -> String {
        match &self.kind {
            TargetKind::Url(url) => match url.host() {
                Some(url::Host::Ipv6(ip)) => ip.to_string(),
                Some(h) => h.to_string(),
                None => String::new(),
            },
            TargetKind::Host { host, .. } => match host {
                url::Host::Ipv6(ip) => ip.to_string(),
                h => h.to_string(),
            },
            TargetKind::Cidr { .. } => self.id.clone(),
        }
    }

    /// The IP address when the host is a literal.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        let host = match &self.kind {
            TargetKind::Url(url) => url.host()?.to_owned(),
            TargetKind::Host { host, .. } => host.clone(),
            TargetKind::Cidr { .. } => return None,
        };
        match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        }
    }

    /// The port a connectivity test should use: the URL's (explicit or scheme default), the
    /// host's explicit port, else none (a bare host has no single service port).
    pub fn port(&self) -> Option<u16> {
        match &self.kind {
            TargetKind::Url(url) => url.port_or_known_default(),
            TargetKind::Host { port, .. } => *port,
            TargetKind::Cidr { .. } => None,
        }
    }

    /// The origin (`scheme://host:port/`) endpoints are relative to: the HTTP URL's.
    pub fn origin_url(&self) -> Option<Url> {
        let mut url = self.http_url()?;
        url.set_path("/");
        url.set_query(None);
        url.set_fragment(None);
        Some(url)
    }

    /// Endpoints with `role`.
    pub fn endpoints_with(
        &self,
        role: crate::endpoint::Role,
    ) -> impl Iterator<Item = &crate::endpoint::Endpoint> {
        self.endpoints.iter().filter(move |e| e.role == role)
    }

    /// The URL the HTTP families fetch: the URL itself; `https://host/` for a bare host or
    /// `host:443`; `http://host/` for `host:80`; none for other ports.
    pub fn http_url(&self) -> Option<Url> {
        match &self.kind {
            TargetKind::Url(url) => Some(url.clone()),
            TargetKind::Host { host, port } => {
                let host = match host {
                    url::Host::Ipv6(ip) => format!("[{ip}]"),
                    h => h.to_string(),
                };
                match port {
                    None | Some(443) => Url::parse(&format!("https://{host}/")).ok(),
                    Some(80) => Url::parse(&format!("http://{host}/")).ok(),
                    Some(_) => None,
                }
            }
            TargetKind::Cidr { .. } => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

fn parse_kind(input: &str) -> Result<TargetKind, String> {
    let input = input.trim();
    let original = input;
    if input.is_empty() {
        return Err("empty target".into());
    }
    if let Some((scheme, rest)) = input.split_once("://") {
        // Messages show the URL without its user information, which may hold a password.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let shown = match rest[..authority_end].rfind('@') {
            Some(at) => format!("{scheme}://[REDACTED]@{}", &rest[at + 1..]),
            None => input.to_string(),
        };
        let input = shown.as_str();
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "'{input}': unsupported scheme '{scheme}' (expected http or https)"
            ));
        }
        let url = Url::parse(original).map_err(|e| format!("'{input}': invalid URL: {e}"))?;
        if url.host().is_none() {
            return Err(format!("'{input}': URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "'{input}': credentials in the URL are not accepted (they would appear in reports)"
            ));
        }
        return Ok(TargetKind::Url(url));
    }
    if let Some((addr, prefix)) = input.split_once('/') {
        return parse_cidr(input, addr, prefix);
    }
    // Bare IPv6 literal (more than one colon, no brackets).
    if !input.starts_with('[') && input.matches(':').count() > 1 {
        let ip: std::net::Ipv6Addr = input
            .parse()
            .map_err(|_| format!("'{input}': invalid IPv6 address"))?;
        return Ok(TargetKind::Host {
            host: url::Host::Ipv6(ip),
            port: None,
        });
    }
    let (host_part, port) = split_host_port(input)?;
    let host = url::Host::parse(host_part).map_err(|e| format!("'{input}': invalid host: {e}"))?;
    Ok(TargetKind::Host { host, port })
}

/// Parse `ADDR/PREFIX` into a range with its host bits cleared.
fn parse_cidr(input: &str, addr: &str, prefix: &str) -> Result<TargetKind, String> {
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = addr.parse().map_err(|_| {
        format!("'{input}': a path needs a scheme (https://host/path), and a CIDR range needs an IP address before '/'")
    })?;
    let bits: u8 = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= bits).ok_or_else(|| {
        format!("'{input}': invalid prefix length '{prefix}' (expected 0-{bits})")
    })?;
    let network = match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    };
    Ok(TargetKind::Cidr { network, prefix })
}

/// Split `host:port` / `[v6]:port` / `host`; the port must be 1–65535.
fn split_host_port(input: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = input.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{input}': missing ']'"))?;
        // url::Host::parse wants the brackets back for IPv6.
        let host_with_brackets = input.get(..inside.len() + 2).unwrap_or(input);
        match after.strip_prefix(':') {
            Some(p) => (host_with_brackets, Some(p)),
            None if after.is_empty() => (host_with_brackets, None),
            None => return Err(format!("'{input}': unexpected text after ']'")),
        }
    } else {
        match input.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (input, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).map_err(|e| format!("'{input}': {e}"))?),
    };
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("invalid port '{p}' (expected 1-65535)")),
        Ok(n) => Ok(n),
    }
}

fn canonical_id(kind: &TargetKind) -> String {
    match kind {
        TargetKind::Url(url) => url.as_str().to_string(),
        TargetKind::Host { host, port } => {
            let h = match host {
                url::Host::Ipv6(ip) if port.is_some() => format!("[{ip}]"),
                url::Host::Ipv6(ip) => ip.to_string(),
                h => h.to_string(),
            };
            match port {
                Some(p) => format!("{h}:{p}"),
                None => h,
            }
        }
        TargetKind::Cidr { network, prefix } => format!("{network}/{prefix}"),
    }
}

/// A curl-style `--resolve HOST:PORT:ADDR[,ADDR...]` override: connect to ADDR for HOST:PORT
/// while keeping HOST for the Host header and TLS SNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveEntry {
    /// Lower-case host name.
    pub host: String,
    /// Port the entry applies to.
    pub port: u16,
    /// Addresses to use, in order.
    pub addrs: Vec<IpAddr>,
}

impl ResolveEntry {
    /// Parse `HOST:PORT:ADDR[,ADDR...]`; IPv6 addresses may be bracketed.
    pub fn parse(input: &str) -> Result<ResolveEntry, String> {
        let bad = || format!("'{input}': expected HOST:PORT:ADDR (e.g. shop.test:443:127.0.0.1)");
        let (host, rest) = if let Some(r) = input.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or_else(bad)?;
            (h, after.strip_prefix(':').ok_or_else(bad)?)
        } else {
            input.split_once(':').ok_or_else(bad)?
        };
        let (port, addrs) = rest.split_once(':').ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        let port = parse_port(port).map_err(|e| format!("'{input}': {e}"))?;
        let addrs = addrs
            .split(',')
            .map(|a| {
                let a = a.trim().trim_start_matches('[').trim_end_matches(']');
                a.parse::<IpAddr>()
                    .map_err(|_| format!("'{input}': invalid address '{a}'"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ResolveEntry {
            host: host.to_ascii_lowercase(),
            port,
            addrs,
        })
    }

    /// The socket addresses this entry maps to.
    pub fn socket_addrs(&self) -> Vec<SocketAddr> {
        self.addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, self.port))
            .collect()
    }
}

/// The scan-wide `--resolve` entries, indexed by host name, so that finding a host's entry
/// costs the same with five entries or fifty thousand (a lab or a big config pins every name).
#[derive(Clone, Debug, Default)]
pub struct ResolveTable {
    entries: Vec<ResolveEntry>,
    by_host: std::collections::HashMap<String, Vec<usize>>,
}

impl ResolveTable {
    /// Index `entries`, keeping their order (the first entry for a host and port wins).
    pub fn new(entries: Vec<ResolveEntry>) -> ResolveTable {
        let mut by_host: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_host.entry(table_key(&e.host)).or_default().push(i);
        }
        ResolveTable { entries, by_host }
    }

    /// The first entry for `host` on `port` (any port when `None`).
    pub fn find(&self, host: &str, port: Option<u16>) -> Option<&ResolveEntry> {
        self.by_host
            .get(&table_key(host))?
            .iter()
            .filter_map(|i| self.entries.get(*i))
            .find(|e| port.is_none_or(|p| e.port == p))
    }

    /// Whether any entry pins `host`.
    pub fn pins(&self, host: &str) -> bool {
        self.by_host.contains_key(&table_key(host))
    }

    /// The entries, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ResolveEntry> {
        self.entries.iter()
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl From<Vec<ResolveEntry>> for ResolveTable {
    fn from(entries: Vec<ResolveEntry>) -> ResolveTable {
        ResolveTable::new(entries)
    }
}

fn table_key(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_hosts() {
        let t = Target::parse("HTTPS://Shop.Example.com:443/login").unwrap();
        assert_eq!(t.id, "https://shop.example.com/login");
        assert_eq!(t.port(), Some(443));
        assert_eq!(t.host(), "shop.example.com");

        let t = Target::parse("example.com").unwrap();
        assert_eq!(t.id, "example.com");
        assert_eq!(t.port(), None);
        assert_eq!(t.http_url().unwrap().as_str(), "https://example.com/");

        let t = Target::parse("10.0.0.1:8443").unwrap();
        assert_eq!(t.id, "10.0.0.1:8443");
        assert_eq!(t.http_url(), None);
        assert_eq!(t.ip_literal(), Some("10.0.0.1".parse().unwrap()));

        let t = Target::parse("[::1]:443").unwrap();
        assert_eq!(t.id, "[::1]:443");
        assert_eq!(t.host(), "::1");
        assert_eq!(t.http_url().unwrap().as_str(), "https://[::1]/");

        let t = Target::parse("::1").unwrap();
        assert_eq!(t.id, "::1");
        let t = Target::parse("https://[::1]:8443/").unwrap();
        assert_eq!(t.host(), "::1");
        assert_eq!(t.ip_literal(), Some("::1".parse().unwrap()));
    }

    #[test]
    fn rejects_bad_targets() {
        for bad in [
            "",
            "ftp://x",
            "https://",
            "http://exa mple.com",
            "host:0",
            "host:99999",
            "10.0.0.0/33",
            "example.com/24",
            "10.0.0.0/x",
            "[::1",
            "https://user:pw@example.com/",
            "1:2:3",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Target::parse_url("example.com").is_err());
        assert!(Target::parse_host("https://example.com").is_err());
    }

    #[test]
    fn parses_cidr_ranges() {
        let t = Target::parse("127.0.3.77/24").unwrap();
        assert_eq!(t.id, "127.0.3.0/24");
        assert_eq!(t.address_count(), 256);
        let addrs = t.range_addresses();
        assert_eq!(addrs.len(), 256);
        assert_eq!(addrs[0], "127.0.3.0".parse::<IpAddr>().unwrap());
        assert_eq!(addrs[255], "127.0.3.255".parse::<IpAddr>().unwrap());
        assert_eq!(t.port(), None);
        assert_eq!(t.http_url(), None);
        assert_eq!(t.ip_literal(), None);
        let t = Target::parse("::1/128").unwrap();
        assert_eq!((t.id.as_str(), t.address_count()), ("::1/128", 1));
        assert_eq!(Target::parse("0.0.0.0/0").unwrap().address_count(), 1 << 32);
        assert_eq!(Target::parse("fd00::/64").unwrap().address_count(), 1 << 64);
        assert!(Target::parse_host("10.0.0.0/16").is_ok());
    }

    #[test]
    fn parses_resolve_entries() {
        let e = ResolveEntry::parse("Shop.test:443:127.0.0.2").unwrap();
        assert_eq!(e.host, "shop.test");
        assert_eq!(e.port, 443);
        assert_eq!(
            e.socket_addrs(),
            vec!["127.0.0.2:443".parse::<SocketAddr>().unwrap()]
        );
        let e = ResolveEntry::parse("a.test:8443:[::1],127.0.0.1").unwrap();
        assert_eq!(e.addrs.len(), 2);
        for bad in [
            "a.test",
            "a.test:443",
            "a.test:x:127.0.0.1",
            ":443:127.0.0.1",
            "a:443:nope",
        ] {
            assert!(ResolveEntry::parse(bad).is_err(), "{bad}");
        }
    }
}
