//! The ratelimit family's options, defined once: `max_requests` and `rps` of each `api` or
//! `login` `[[target.endpoint]]` feed this one parser, with the family's hard ceilings.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::endpoint::Role;
use crate::options::{EndpointOptions, NoKeys, OptionError, Options, value};

/// Requests in one burst, at most.
pub const MAX_BURST_REQUESTS: u32 = 500;
/// Requests per second in a burst, at most.
pub const MAX_BURST_RPS: f64 = 100.0;
/// Burst requests over all endpoints of one target, at most.
pub const MAX_TARGET_BURST_REQUESTS: u32 = 1000;
/// Requests in one burst, by default.
pub const DEFAULT_BURST_REQUESTS: u32 = 200;
/// Requests per second in a burst, by default.
pub const DEFAULT_BURST_RPS: f64 = 50.0;

/// How hard the family bursts one endpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurstOptions {
    /// Requests in the burst.
    pub max_requests: u32,
    /// Requests per second.
    pub rps: f64,
}

impl Default for BurstOptions {
    fn default() -> BurstOptions {
        BurstOptions {
            max_requests: DEFAULT_BURST_REQUESTS,
            rps: DEFAULT_BURST_RPS,
        }
    }
}

/// The ratelimit family's options for one target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateLimitOptions {
    /// Per burst endpoint, by name (the defaults for any not listed).
    pub bursts: BTreeMap<String, BurstOptions>,
}

impl RateLimitOptions {
    /// The burst options of endpoint `name`.
    pub fn burst(&self, name: &str) -> BurstOptions {
        self.bursts.get(name).copied().unwrap_or_default()
    }
}

/// Endpoint-level keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    max_requests: Option<Spanned<i64>>,
    rps: Option<Spanned<value::Number>>,
}

impl Options for RateLimitOptions {
    type Scan = NoKeys;
    type Target = NoKeys;
    type Endpoint = Endpoint;
    const ENDPOINT_KEYS: &'static [&'static str] = &["max_requests", "rps"];

    fn scan(_: NoKeys) -> Result<RateLimitOptions, OptionError> {
        Ok(RateLimitOptions::default())
    }

    fn target(
        &self,
        _: NoKeys,
        endpoints: Vec<EndpointOptions<Endpoint>>,
    ) -> Result<RateLimitOptions, OptionError> {
        let mut o = self.clone();
        let mut total = 0u32;
        let mut last_span = 0..0;
        for e in endpoints {
            let set = e.raw.max_requests.as_ref().map(|_| "max_requests").or(e
                .raw
                .rps
                .as_ref()
                .map(|_| "rps"));
            if !matches!(e.role, Role::Api | Role::Login) {
                if let Some(key) = set {
                    return Err(OptionError::at(
                        e.span,
                        format!("`{key}` does not apply to a {} endpoint", e.role.as_str()),
                    ));
                }
                continue;
            }
            let mut b = BurstOptions::default();
            if let Some(m) = &e.raw.max_requests {
                b.max_requests =
                    value::int_as(m, 1, i64::from(MAX_BURST_REQUESTS), " (hard ceiling)")?;
            }
            if let Some(r) = &e.raw.rps {
                let rps = r.get_ref().as_f64();
                if !(rps.is_finite() && rps > 0.0 && rps <= MAX_BURST_RPS) {
                    return Err(OptionError::at(
                        r.span(),
                        format!(
                            "must be above 0 and at most {MAX_BURST_RPS} (hard ceiling), got {rps}"
                        ),
                    ));
                }
                b.rps = rps;
            }
            total = total.saturating_add(b.max_requests);
            last_span = e.span.clone();
            o.bursts.insert(e.name, b);
        }
        if total > MAX_TARGET_BURST_REQUESTS {
            return Err(OptionError::at(
                last_span,
                format!(
                    "the rate-limit bursts of its endpoints add up to {total} requests, over the hard ceiling of {MAX_TARGET_BURST_REQUESTS} per target; lower max_requests"
                ),
            ));
        }
        Ok(o)
    }
}
