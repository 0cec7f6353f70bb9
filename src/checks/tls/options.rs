//! The TLS family's options, defined once: `[checks.tls]` (or `scan.cert_expiry_days`) and
//! `--cert-expiry-days` feed this one parser.

use serde::Deserialize;
use toml::Spanned;

use crate::options::{Flag, FlagKind, NoKeys, OptionError, Options, value};

/// Longest certificate-expiry warning window, in days.
pub const MAX_CERT_EXPIRY_DAYS: i64 = 3650;

/// The TLS family's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    /// `tls.cert.expiring_soon` fails when a certificate expires within this many days.
    pub cert_expiry_days: u32,
    /// `tls.ct.missing` also judges chains that anchor in a `--ca-file` CA (a private CA that
    /// logs to a CT log, e.g. a staging CA); off: such chains are skipped.
    pub ct_private_ca: bool,
}

impl Default for TlsOptions {
    fn default() -> TlsOptions {
        TlsOptions {
            cert_expiry_days: 30,
            ct_private_ca: false,
        }
    }
}

/// Scan-level keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    cert_expiry_days: Option<Spanned<i64>>,
    ct_private_ca: Option<bool>,
}

impl Options for TlsOptions {
    type Scan = Scan;
    type Target = NoKeys;
    type Endpoint = NoKeys;
    const LEGACY_SCAN_KEYS: &'static [&'static str] = &["cert_expiry_days"];
    const FLAGS: &'static [Flag] = &[Flag {
        long: "cert-expiry-days",
        key: "cert_expiry_days",
        value_name: "DAYS",
        help: "Fail tls.cert.expiring_soon when a certificate expires within DAYS [default: 30]",
        kind: FlagKind::Number,
    }];

    fn scan(raw: Scan) -> Result<TlsOptions, OptionError> {
        let mut o = TlsOptions::default();
        if let Some(d) = &raw.cert_expiry_days {
            o.cert_expiry_days = value::int_as(d, 0, MAX_CERT_EXPIRY_DAYS, "")?;
        }
        if let Some(b) = raw.ct_private_ca {
            o.ct_private_ca = b;
        }
        Ok(o)
    }
}
