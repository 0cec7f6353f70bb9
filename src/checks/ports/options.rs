//! The ports family's options, defined once: the config file (`[checks.ports]`, the same keys
//! under `[scan]`, and `ports` / `allowed_ports` per `[[target]]`) and the flags `--ports`,
//! `--allowed-ports` and `--port-concurrency` feed this one parser.

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use super::spec::PortSpec;
use crate::options::{EndpointOptions, Flag, FlagKind, NoKeys, OptionError, Options, value};

/// Ports allowed when neither the target nor the scan says otherwise.
pub const DEFAULT_ALLOWED: &[u16] = &[80, 443];
/// Default `--port-concurrency`: sockets in flight during a sweep.
pub const DEFAULT_PORT_CONCURRENCY: usize = 2048;
/// Highest `port_concurrency`.
pub const MAX_PORT_CONCURRENCY: i64 = 65_536;

/// The ports family's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortsOptions {
    /// Ports to sweep (`None`: the target's port for `host:port`, else top1000).
    pub ports: Option<PortSpec>,
    /// Ports allowed open.
    pub allowed_ports: Vec<u16>,
    /// Sockets in flight during a sweep (lowered to fit the open-file limit).
    pub port_concurrency: usize,
    /// The target is meant to offer nothing (`expect_closed = true` on its `[[target]]`): a
    /// sweep where nothing is open passes instead of being "no service found".
    pub expect_closed: bool,
}

impl Default for PortsOptions {
    fn default() -> PortsOptions {
        PortsOptions {
            ports: None,
            allowed_ports: DEFAULT_ALLOWED.to_vec(),
            port_concurrency: DEFAULT_PORT_CONCURRENCY,
            expect_closed: false,
        }
    }
}

/// A port list as written: `[22, 443]`, or `"22,443"` (as the flag takes it).
#[derive(Clone, Debug)]
pub enum PortList {
    /// A TOML array, each port with its position.
    List(Vec<Spanned<i64>>),
    /// A string in `--ports` syntax.
    Text(String),
}

impl<'de> Deserialize<'de> for PortList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PortList, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of ports or a string such as \"22,443\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortList, E> {
                Ok(PortList::Text(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PortList, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<Spanned<i64>>()? {
                    out.push(p);
                }
                Ok(PortList::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Scan-level keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    ports: Option<Spanned<String>>,
    allowed_ports: Option<Spanned<PortList>>,
    port_concurrency: Option<Spanned<i64>>,
}

/// Target-level keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    ports: Option<Spanned<String>>,
    allowed_ports: Option<Spanned<PortList>>,
    expect_closed: Option<bool>,
}

fn spec(v: &Spanned<String>) -> Result<PortSpec, OptionError> {
    PortSpec::parse(v.get_ref()).map_err(|m| OptionError::at(v.span(), m))
}

fn allowed(v: &Spanned<PortList>) -> Result<Vec<u16>, OptionError> {
    match v.get_ref() {
        PortList::Text(t) => PortSpec::parse(t)
            .map(|s| s.ports)
            .map_err(|m| OptionError::at(v.span(), m)),
        PortList::List(list) => list
            .iter()
            .map(|p| {
                u16::try_from(*p.get_ref())
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        OptionError::at(
                            p.span(),
                            format!("invalid port {} (expected 1-65535)", p.get_ref()),
                        )
                    })
            })
            .collect(),
    }
}

impl Options for PortsOptions {
    type Scan = Scan;
    type Target = Target;
    type Endpoint = NoKeys;
    const LEGACY_SCAN_KEYS: &'static [&'static str] =
        &["ports", "allowed_ports", "port_concurrency"];
    const TARGET_KEYS: &'static [&'static str] = &["ports", "allowed_ports", "expect_closed"];
    const FLAGS: &'static [Flag] = &[
        Flag {
            long: "ports",
            key: "ports",
            value_name: "LIST",
            help: "Ports to sweep: 22,80,443 / 1-1024 / top100 / top1000 / all, mixed with commas [default: a host:port target's port, else top1000]",
            kind: FlagKind::Text,
        },
        Flag {
            long: "allowed-ports",
            key: "allowed_ports",
            value_name: "LIST",
            help: "Ports allowed open (ports.unexpected_open), for targets without their own [default: 80,443]",
            kind: FlagKind::Text,
        },
        Flag {
            long: "port-concurrency",
            key: "port_concurrency",
            value_name: "N",
            help: "Sockets in flight during a port sweep, lowered to fit the open-file limit [default: 2048]",
            kind: FlagKind::Number,
        },
    ];

    fn scan(raw: Scan) -> Result<PortsOptions, OptionError> {
        let mut o = PortsOptions::default();
        if let Some(p) = &raw.ports {
            o.ports = Some(spec(p)?);
        }
        if let Some(a) = &raw.allowed_ports {
            o.allowed_ports = allowed(a)?;
        }
        if let Some(c) = &raw.port_concurrency {
            o.port_concurrency = value::int_as(c, 1, MAX_PORT_CONCURRENCY, "")?;
        }
        Ok(o)
    }

    fn target(
        &self,
        raw: Target,
        _: Vec<EndpointOptions<NoKeys>>,
    ) -> Result<PortsOptions, OptionError> {
        let mut o = self.clone();
        if let Some(p) = &raw.ports {
            o.ports = Some(spec(p)?);
        }
        if let Some(a) = &raw.allowed_ports {
            o.allowed_ports = allowed(a)?;
        }
        if let Some(c) = raw.expect_closed {
            o.expect_closed = c;
        }
        Ok(o)
    }
}
