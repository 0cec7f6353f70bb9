//! The auth family's options, defined once: `attempts` and `samples` of each login
//! `[[target.endpoint]]` feed this one parser, with the family's hard ceilings.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::endpoint::Role;
use crate::options::{EndpointOptions, NoKeys, OptionError, Options, value};

/// Failed logins sent by the lockout test, at most.
pub const MAX_ATTEMPTS: u32 = 50;
/// Samples per class in the user-enumeration test, at most.
pub const MAX_SAMPLES: u32 = 30;
/// Failed logins sent by the lockout test, by default.
pub const DEFAULT_ATTEMPTS: u32 = 10;
/// Samples per class, by default.
pub const DEFAULT_SAMPLES: u32 = 10;

/// How hard the auth family probes one login endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginOptions {
    /// Failed logins for the lockout test.
    pub attempts: u32,
    /// Samples per class for user enumeration.
    pub samples: u32,
}

impl Default for LoginOptions {
    fn default() -> LoginOptions {
        LoginOptions {
            attempts: DEFAULT_ATTEMPTS,
            samples: DEFAULT_SAMPLES,
        }
    }
}

/// The auth family's options for one target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthOptions {
    /// Per login endpoint, by name (the defaults for any not listed).
    pub logins: BTreeMap<String, LoginOptions>,
}

impl AuthOptions {
    /// The options of login endpoint `name`.
    pub fn login(&self, name: &str) -> LoginOptions {
        self.logins.get(name).copied().unwrap_or_default()
    }
}

/// Endpoint-level keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    attempts: Option<Spanned<i64>>,
    samples: Option<Spanned<i64>>,
}

impl Options for AuthOptions {
    type Scan = NoKeys;
    type Target = NoKeys;
    type Endpoint = Endpoint;
    const ENDPOINT_KEYS: &'static [&'static str] = &["attempts", "samples"];

    fn scan(_: NoKeys) -> Result<AuthOptions, OptionError> {
        Ok(AuthOptions::default())
    }

    fn target(
        &self,
        _: NoKeys,
        endpoints: Vec<EndpointOptions<Endpoint>>,
    ) -> Result<AuthOptions, OptionError> {
        let mut o = self.clone();
        for e in endpoints {
            let set = e.raw.attempts.as_ref().map(|_| "attempts").or(e
                .raw
                .samples
                .as_ref()
                .map(|_| "samples"));
            if e.role != Role::Login {
                if let Some(key) = set {
                    return Err(OptionError::at(
                        e.span,
                        format!("`{key}` does not apply to a {} endpoint", e.role.as_str()),
                    ));
                }
                continue;
            }
            let mut login = LoginOptions::default();
            if let Some(a) = &e.raw.attempts {
                login.attempts = value::int_as(a, 1, i64::from(MAX_ATTEMPTS), " (hard ceiling)")?;
            }
            if let Some(s) = &e.raw.samples {
                // Fewer samples than the timing test needs would leave user enumeration
                // undecided on every login whose statuses and bodies agree.
                let lo = super::enumeration::MIN_TIMING_SAMPLES as i64;
                login.samples = value::int_as(
                    s,
                    lo,
                    i64::from(MAX_SAMPLES),
                    &format!(" (the timing test needs {lo} per class)"),
                )?;
            }
            o.logins.insert(e.name, login);
        }
        Ok(o)
    }
}
