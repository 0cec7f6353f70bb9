//! The scan's DNS resolver (hickory): one per scan, shared by the connectivity phase (A and
//! AAAA of every target name, for every family) and the dns family's queries.
//!
//! `--dns-server ADDR:PORT` sends every query to that server (UDP, then TCP on truncation) and
//! ignores `/etc/hosts`; target names are then absolute. Without it the system configuration
//! (`/etc/resolv.conf` and the hosts file) is used as the C library would: a target name is
//! passed as given, so the `search` list and `ndots` apply, and when hickory finds no address
//! the C library (`getaddrinfo`, with nsswitch) is asked too. Each query is bounded by the
//! scan's timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, Record, RecordType};

use crate::model::{Reason, ReasonKind};

/// The answer to one query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Records of the asked type (CNAMEs followed by the resolver are dropped).
    Records(Vec<Record>),
    /// The name exists but has no record of this type (NOERROR, no data).
    NoData,
    /// The name does not exist (NXDOMAIN).
    NxDomain,
}

/// A server's refusal to answer, as opposed to an answer (records, no data, no such name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    /// SERVFAIL: the server could not get an answer (broken or lame delegation, DNSSEC
    /// failure, outage).
    ServFail,
    /// REFUSED: the server will not answer for this name (not its zone, or policy).
    Refused,
}

/// Why a query got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    /// The server's response code, when it answered with SERVFAIL or REFUSED.
    pub rcode: Option<Rcode>,
    /// What went wrong, for reports.
    pub reason: Reason,
}

/// The scan's resolver.
#[derive(Clone)]
pub struct Dns {
    resolver: Option<TokioResolver>,
    /// Where queries go, for messages: `127.0.0.53:53` or `system`.
    pub server: String,
    timeout: Duration,
    /// Resolve target names as the system does (search list, ndots, then the C library).
    system: bool,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns").field("server", &self.server).finish()
    }
}

impl Dns {
    /// A resolver for `server`, or the system's configuration when `None`.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Dns {
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let (resolver, label) = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_parts(None, Vec::new(), vec![ns]);
                opts.use_hosts_file = ResolveHosts::Never;
                opts.ndots = 0;
                let mut builder =
                    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
                *builder.options_mut() = opts;
                return Dns {
                    resolver: builder.build().ok(),
                    server: addr.to_string(),
                    timeout,
                    system: false,
                };
            }
            None => {
                let resolver = TokioResolver::builder_tokio().ok().and_then(|mut b| {
                    let sys = b.options_mut();
                    sys.timeout = timeout;
                    sys.attempts = 2;
                    sys.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
                    sys.use_hosts_file = ResolveHosts::Always;
                    b.build().ok()
                });
                (resolver, "system".to_string())
            }
        };
        Dns {
            resolver,
            server: label,
            timeout,
            system: true,
        }
    }

    /// A resolver that treats names as the system configuration does, with the `search` list
    /// and `ndots` of a resolv.conf, but whose name server may listen on any port (resolv.conf
    /// cannot say so): how tests check the system path against their own server.
    pub fn with_search(
        server: SocketAddr,
        search: &[&str],
        ndots: usize,
        timeout: Duration,
    ) -> Dns {
        let mut udp = ConnectionConfig::udp();
        udp.port = server.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = server.port();
        let ns = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
        let search: Vec<Name> = search
            .iter()
            .filter_map(|d| Name::from_ascii(fqdn(d)).ok())
            .collect();
        let config = ResolverConfig::from_parts(None, search, vec![ns]);
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = ndots;
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = opts;
        Dns {
            resolver: builder.build().ok(),
            server: server.to_string(),
            timeout,
            system: true,
        }
    }

    /// The addresses of `host` (A and AAAA), each with `port`.
    pub async fn lookup_ip(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Reason> {
        let Some(resolver) = &self.resolver else {
            // No usable resolver configuration: fall back to the C library.
            return self.system_lookup(host, port).await;
        };
        // The system's way: the name as given, so that resolv.conf's search list and ndots
        // apply (getaddrinfo did that before hickory). --dns-server: absolute names.
        let name = if self.system {
            host.trim().to_string()
        } else {
            fqdn(host)
        };
        let deadline = self.timeout.saturating_mul(3);
        let answer = tokio::time::timeout(deadline, resolver.lookup_ip(name.as_str())).await;
        if self.system
            && matches!(&answer, Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found())
            && let Ok(addrs) = self.system_lookup(host, port).await
        {
            // Found by the C library (nsswitch: mDNS, LDAP, a hosts file elsewhere...).
            return Ok(addrs);
        }
        match answer {
            Ok(Ok(lookup)) => {
                let addrs: Vec<SocketAddr> = lookup
                    .iter()
                    .map(|ip: IpAddr| SocketAddr::new(ip, port))
                    .collect();
                if addrs.is_empty() {
                    Err(Reason::new(
                        ReasonKind::Dns,
                        format!("{host}: no address found"),
                    ))
                } else {
                    Ok(addrs)
                }
            }
            Ok(Err(e)) if e.is_nx_domain() => Err(Reason::new(
                ReasonKind::Dns,
                format!("{host}: no such name (NXDOMAIN from {})", self.server),
            )),
            Ok(Err(e)) if e.is_no_records_found() => Err(Reason::new(
                ReasonKind::Dns,
                format!("{host}: no A or AAAA record"),
            )),
            Ok(Err(e)) => Err(net_reason(host, &e, &self.server)),
            Err(_) => Err(timeout_reason(host, deadline)),
        }
    }

    async fn system_lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Reason> {
        match tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    Err(Reason::new(
                        ReasonKind::Dns,
                        format!("{host}: no address found"),
                    ))
                } else {
                    Ok(addrs)
                }
            }
            Ok(Err(e)) => Err(Reason::new(
                ReasonKind::Dns,
                format!("{host}: cannot resolve: {e}"),
            )),
            Err(_) => Err(timeout_reason(host, self.timeout)),
        }
    }

    /// One query of `rtype` for `name` (absolute: no search domains).
    pub async fn query(&self, name: &str, rtype: RecordType) -> Result<Answer, Reason> {
        self.query_detailed(name, rtype).await.map_err(|e| e.reason)
    }

    /// [`Dns::query`], telling SERVFAIL and REFUSED apart from other failures.
    pub async fn query_detailed(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<Answer, QueryError> {
        let plain = |reason: Reason| QueryError {
            rcode: None,
            reason,
        };
        let Some(resolver) = &self.resolver else {
            return Err(plain(Reason::new(
                ReasonKind::Dns,
                "no DNS resolver configuration (/etc/resolv.conf unreadable); pass --dns-server",
            )));
        };
        let fq = fqdn(name);
        let parsed = Name::from_ascii(&fq).map_err(|e| {
            plain(Reason::new(
                ReasonKind::Malformed,
                format!("{name}: invalid name: {e}"),
            ))
        })?;
        let deadline = self.timeout.saturating_mul(3);
        match tokio::time::timeout(deadline, resolver.lookup(parsed, rtype)).await {
            Ok(Ok(lookup)) => {
                let records: Vec<Record> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .cloned()
                    .collect();
                Ok(if records.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Records(records)
                })
            }
            Ok(Err(e)) if e.is_nx_domain() => Ok(Answer::NxDomain),
            Ok(Err(e)) if e.is_no_records_found() => Ok(Answer::NoData),
            Ok(Err(e)) => {
                let rcode = match &e {
                    NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
                        Some(Rcode::ServFail)
                    }
                    NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
                        Some(Rcode::Refused)
                    }
                    _ => None,
                };
                Err(QueryError {
                    rcode,
                    reason: net_reason(&format!("{name} {rtype}"), &e, &self.server),
                })
            }
            Err(_) => Err(plain(timeout_reason(&format!("{name} {rtype}"), deadline))),
        }
    }
}

/// `name.` (absolute), lower-case.
pub fn fqdn(name: &str) -> String {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    format!("{n}.")
}

fn net_reason(what: &str, e: &NetError, server: &str) -> Reason {
    match e {
        NetError::Timeout => Reason::new(
            ReasonKind::Timeout,
            format!("{what}: the DNS server ({server}) did not answer in time"),
        ),
        other => Reason::new(
            ReasonKind::Dns,
            format!("{what}: DNS query failed ({server}): {other}"),
        ),
    }
}

fn timeout_reason(what: &str, after: Duration) -> Reason {
    Reason::new(
        ReasonKind::Timeout,
        format!(
            "{what}: name resolution timed out after {}",
            super::net::secs(after)
        ),
    )
}
