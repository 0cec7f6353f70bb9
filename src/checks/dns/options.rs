//! The dns family's options, defined once: `mail_domains` in `[checks.dns]` (or `[scan]`)
//! and per `[[target]]` (added to the scan's), and `--mail-domain` (repeatable) feed this one
//! parser.

use serde::Deserialize;
use toml::Spanned;

use crate::options::{EndpointOptions, Flag, FlagKind, NoKeys, OptionError, Options};

/// The dns family's options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsOptions {
    /// Domains whose SPF and DMARC are judged with every target the family runs on (the
    /// scan's and the target's own).
    pub mail_domains: Vec<String>,
}

/// Scan-level keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    #[serde(default)]
    mail_domains: Vec<Spanned<String>>,
}

/// Target-level keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    mail_domains: Vec<Spanned<String>>,
}

/// A mail domain: a DNS name with at least two labels.
pub fn mail_domain(value: &str) -> Result<String, String> {
    let v = value.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels_ok =
        !v.is_empty() && v.split('.').all(|l| !l.is_empty() && l.len() <= 63) && v.len() <= 253;
    match url::Host::parse(&v) {
        Ok(url::Host::Domain(d)) if labels_ok && d.contains('.') && !d.contains(':') => Ok(d),
        _ => Err(format!("'{value}' is not a domain name")),
    }
}

fn domains(list: &[Spanned<String>]) -> Result<Vec<String>, OptionError> {
    list.iter()
        .map(|d| mail_domain(d.get_ref()).map_err(|m| OptionError::at(d.span(), m)))
        .collect()
}

impl Options for DnsOptions {
    type Scan = Scan;
    type Target = Target;
    type Endpoint = NoKeys;
    const LEGACY_SCAN_KEYS: &'static [&'static str] = &["mail_domains"];
    const TARGET_KEYS: &'static [&'static str] = &["mail_domains"];
    const FLAGS: &'static [Flag] = &[Flag {
        long: "mail-domain",
        key: "mail_domains",
        value_name: "DOMAIN",
        help: "A mail domain whose SPF and DMARC records the dns family checks. Repeatable",
        kind: FlagKind::Repeated,
    }];

    fn scan(raw: Scan) -> Result<DnsOptions, OptionError> {
        Ok(DnsOptions {
            mail_domains: domains(&raw.mail_domains)?,
        })
    }

    fn target(
        &self,
        raw: Target,
        _: Vec<EndpointOptions<NoKeys>>,
    ) -> Result<DnsOptions, OptionError> {
        let mut o = self.clone();
        for d in domains(&raw.mail_domains)? {
            if !o.mail_domains.contains(&d) {
                o.mail_domains.push(d);
            }
        }
        Ok(o)
    }
}
