//! The load family's options, defined once: `[checks.load]` (scan level), `load = true` or
//! `load = { ... }` on a `[[target]]` (the target's opt-in, with its own values over the
//! scan's), and the `--load-*` flags feed this one parser, with the family's hard ceilings.
//! A value above a ceiling is a usage error (exit 2) naming the key, never a silent cap.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::mix;
use crate::endpoint::Role;
use crate::options::{EndpointOptions, Flag, FlagKind, OptionError, Options, value};

/// Requests per second, at most (hard ceiling).
pub const MAX_RATE: f64 = 20_000.0;
/// Seconds of traffic (warm-up, idle baseline and steady phase together), at most.
pub const MAX_DURATION_SECS: f64 = 600.0;
/// Connections held open at once, at most.
pub const MAX_CONNECTIONS: u32 = 50_000;
/// Requests sent to one target, at most.
pub const MAX_TOTAL_REQUESTS: u64 = 5_000_000;
/// The rate of the idle baseline phase (one connection), requests per second.
pub const IDLE_RATE: f64 = 20.0;

/// Default steady rate: 100 requests per second (6,000 per minute, above the plan's 5,000).
pub const DEFAULT_RATE: f64 = 100.0;
/// Default steady phase: 30 s, so 3,000 requests, enough to show an error rate under 0.1 %.
pub const DEFAULT_DURATION: f64 = 30.0;
/// Default warm-up (not judged).
pub const DEFAULT_WARMUP: f64 = 5.0;
/// Default idle baseline: 10 s at [`IDLE_RATE`], 200 samples, enough for its p95.
pub const DEFAULT_IDLE: f64 = 10.0;
/// Default hold of the concurrency phase, seconds.
pub const DEFAULT_HOLD: f64 = 10.0;
/// Default connections of the steady phase.
pub const DEFAULT_CONNECTIONS: u32 = 32;
/// Default concurrent streams per HTTP/2 connection.
pub const DEFAULT_STREAMS: u32 = 8;
/// Concurrent streams per HTTP/2 connection, at most (100 is the least a server should
/// allow, RFC 9113 section 6.5.2).
pub const MAX_STREAMS: u32 = 100;
/// Addresses of a `source_range`, at most (a /16).
pub const MAX_SOURCES: u64 = 65_536;

/// The HTTP method of the load requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMethod {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// POST (with `body`).
    Post,
}

impl LoadMethod {
    /// As an HTTP method.
    pub fn as_method(self) -> hyper::Method {
        match self {
            LoadMethod::Get => hyper::Method::GET,
            LoadMethod::Head => hyper::Method::HEAD,
            LoadMethod::Post => hyper::Method::POST,
        }
    }
}

/// The load family's options for one target.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// The target opted in (`load = true` or `load = { ... }` on the target).
    pub opt_in: bool,
    /// Steady-phase arrival rate, requests per second.
    pub rate: f64,
    /// Steady phase.
    pub duration: Duration,
    /// Warm-up at the steady rate (not judged).
    pub warmup: Duration,
    /// Idle baseline at [`IDLE_RATE`] on one connection (zero: no baseline, and
    /// `load.degradation` is skipped).
    pub idle: Duration,
    /// Connections of the steady phase.
    pub connections: u32,
    /// `load.latency_p95` threshold.
    pub p95: Duration,
    /// Optional p99 threshold (same rule).
    pub p99: Option<Duration>,
    /// Optional max threshold (same rule).
    pub max: Option<Duration>,
    /// `load.error_rate` threshold, a fraction (0.001 = 0.1 %).
    pub error_rate: f64,
    /// `load.degradation`: p95 under load may be at most this many times the idle p95.
    pub degradation: f64,
    /// Request method.
    pub method: LoadMethod,
    /// Path and query (default: the target URL's).
    pub path: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Request body (POST).
    pub body: Option<String>,
    /// Several request templates mixed by weight ([`mix`]); empty: the single request above.
    pub mix: Vec<mix::Entry>,
    /// Stop early when the error rate stays over 10× its threshold for 5 s in a row.
    pub abort_on_fail: bool,
    /// Connections the concurrency phase holds (0: no concurrency phase, and
    /// `load.concurrency` is skipped).
    pub hold_connections: u32,
    /// How long the concurrency phase holds them.
    pub hold: Duration,
    /// The ramp's last rate (0: no ramp, and `load.breaking_point` is skipped).
    pub ramp_to: f64,
    /// Steps of the ramp, from above `rate` up to `ramp_to`.
    pub ramp_steps: u32,
    /// Seconds of each ramp step.
    pub ramp_step: Duration,
    /// HTTP/2 (ALPN `h2` over TLS, prior knowledge over plain TCP) instead of HTTP/1.1.
    pub http2: bool,
    /// HTTP/2: concurrent streams per connection (the workers of a phase are
    /// `connections × streams`).
    pub streams: u32,
    /// The local addresses connections come from, in turn (default: the kernel's choice,
    /// or 127.0.0.1–127.0.0.64 for a loopback target).
    pub source_range: Option<ipnet::IpNet>,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            opt_in: false,
            rate: DEFAULT_RATE,
            duration: Duration::from_secs_f64(DEFAULT_DURATION),
            warmup: Duration::from_secs_f64(DEFAULT_WARMUP),
            idle: Duration::from_secs_f64(DEFAULT_IDLE),
            connections: DEFAULT_CONNECTIONS,
            p95: Duration::from_millis(50),
            p99: None,
            max: None,
            error_rate: 0.001,
            degradation: 3.0,
            method: LoadMethod::Get,
            path: None,
            headers: Vec::new(),
            body: None,
            mix: Vec::new(),
            abort_on_fail: true,
            hold_connections: 0,
            hold: Duration::from_secs_f64(DEFAULT_HOLD),
            ramp_to: 0.0,
            ramp_steps: 5,
            ramp_step: Duration::from_secs(10),
            http2: false,
            streams: DEFAULT_STREAMS,
            source_range: None,
        }
    }
}

/// Requests a phase of `rate` per second for `d` sends (rounded down, as the generator does).
pub fn requests_in(rate: f64, d: Duration) -> u64 {
    // Both factors are bounded by the ceilings, so the product fits.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "bounded by the ceilings"
    )]
    let n = (rate * d.as_secs_f64()).floor().max(0.0) as u64;
    n
}

impl LoadOptions {
    /// Requests of the whole run: warm-up and steady at `rate`, plus the idle baseline.
    pub fn total_requests(&self) -> u64 {
        requests_in(self.rate, self.warmup + self.duration)
            + requests_in(IDLE_RATE, self.idle)
            + self
                .ramp_rates()
                .iter()
                .map(|r| requests_in(*r, self.ramp_step))
                .sum::<u64>()
            + self.hold_requests()
    }

    /// The rates of the ramp's steps (none without a ramp): geometric from `rate` to
    /// `ramp_to`, the first step above `rate`, the last at `ramp_to`.
    pub fn ramp_rates(&self) -> Vec<f64> {
        if self.ramp_to <= self.rate || self.ramp_steps == 0 {
            return Vec::new();
        }
        let ratio = self.ramp_to / self.rate;
        (1..=self.ramp_steps)
            .map(|k| {
                let r = self.rate * ratio.powf(f64::from(k) / f64::from(self.ramp_steps));
                (r * 10.0).round() / 10.0
            })
            .collect()
    }

    /// Requests of the concurrency phase.
    pub fn hold_requests(&self) -> u64 {
        if self.hold_connections == 0 {
            0
        } else {
            super::hold::requests(self.hold_connections, self.hold)
        }
    }

    /// Seconds of traffic in all.
    pub fn total_duration(&self) -> Duration {
        let hold = if self.hold_connections == 0 {
            Duration::ZERO
        } else {
            self.hold
        };
        self.warmup + self.idle + self.duration + hold
    }
}

/// The keys of `[checks.load]` and of a target's `load = { ... }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    rate: Option<Spanned<value::Number>>,
    duration: Option<Spanned<value::Number>>,
    warmup: Option<Spanned<value::Number>>,
    idle: Option<Spanned<value::Number>>,
    connections: Option<Spanned<i64>>,
    p95_ms: Option<Spanned<value::Number>>,
    p99_ms: Option<Spanned<value::Number>>,
    max_ms: Option<Spanned<value::Number>>,
    error_rate: Option<Spanned<value::Number>>,
    degradation: Option<Spanned<value::Number>>,
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    headers: Option<std::collections::BTreeMap<String, Spanned<String>>>,
    body: Option<Spanned<String>>,
    requests: Option<Spanned<Vec<Spanned<mix::RequestKeys>>>>,
    abort_on_fail: Option<bool>,
    hold_connections: Option<Spanned<i64>>,
    hold: Option<Spanned<value::Number>>,
    ramp_to: Option<Spanned<value::Number>>,
    ramp_steps: Option<Spanned<i64>>,
    ramp_step: Option<Spanned<value::Number>>,
    http2: Option<Spanned<bool>>,
    streams: Option<Spanned<i64>>,
    source_range: Option<Spanned<String>>,
}

/// Scan-level keys (`[checks.load]`).
pub type Scan = Keys;

/// A target's `load` key: `true` / `false`, or a table of [`Keys`] (which opts in).
#[derive(Debug, Default)]
pub enum TargetLoad {
    /// Not set.
    #[default]
    Unset,
    /// `load = true` or `load = false`.
    Flag(bool),
    /// `load = { ... }`.
    Table(Box<Keys>),
}

impl<'de> Deserialize<'de> for TargetLoad {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TargetLoad, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TargetLoad;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false, or a table of load options")
            }
            fn visit_bool<E>(self, v: bool) -> Result<TargetLoad, E> {
                Ok(TargetLoad::Flag(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TargetLoad, A::Error> {
                Keys::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|k| TargetLoad::Table(Box::new(k)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Target-level keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    load: TargetLoad,
}

fn number(v: &Spanned<value::Number>, lo: f64, hi: f64, note: &str) -> Result<f64, OptionError> {
    let n = v.get_ref().as_f64();
    if n.is_finite() && n >= lo && n <= hi {
        Ok(n)
    } else {
        Err(OptionError::at(
            v.span(),
            format!("must be between {lo} and {hi}{note}, got {n}"),
        ))
    }
}

const CEILING: &str = " (the load family's hard ceiling)";

impl LoadOptions {
    /// Apply `keys` over `self`, validating each value; `at` is the span errors about the
    /// whole run (its total duration or requests) point at.
    fn apply(&self, keys: Keys, at: std::ops::Range<usize>) -> Result<LoadOptions, OptionError> {
        let mut o = self.clone();
        let secs = |v: &Spanned<value::Number>, lo: f64| {
            number(v, lo, MAX_DURATION_SECS, CEILING).map(Duration::from_secs_f64)
        };
        let ms = |v: &Spanned<value::Number>| {
            number(v, 0.001, 60_000.0, "").map(|m| Duration::from_secs_f64(m / 1000.0))
        };
        let mut whole = at;
        if let Some(v) = &keys.rate {
            o.rate = number(v, 0.1, MAX_RATE, CEILING)?;
            whole = v.span();
        }
        if let Some(v) = &keys.duration {
            o.duration = secs(v, 1.0)?;
            whole = v.span();
        }
        if let Some(v) = &keys.warmup {
            o.warmup = secs(v, 0.0)?;
        }
        if let Some(v) = &keys.idle {
            o.idle = secs(v, 0.0)?;
        }
        if let Some(v) = &keys.connections {
            o.connections = value::int_as(v, 1, i64::from(MAX_CONNECTIONS), CEILING)?;
        }
        if let Some(v) = &keys.p95_ms {
            o.p95 = ms(v)?;
        }
        if let Some(v) = &keys.p99_ms {
            o.p99 = Some(ms(v)?);
        }
        if let Some(v) = &keys.max_ms {
            o.max = Some(ms(v)?);
        }
        if let Some(v) = &keys.error_rate {
            o.error_rate = number(v, 0.000_01, 0.5, " (a fraction: 0.001 is 0.1 %)")?;
        }
        if let Some(v) = &keys.degradation {
            o.degradation = number(v, 1.0, 1000.0, "")?;
        }
        if let Some(v) = &keys.method {
            o.method = mix::method(v, "")?;
        }
        if let Some(v) = &keys.path {
            o.path = Some(mix::path(v, "")?);
        }
        if let Some(h) = &keys.headers {
            o.headers.clear();
            for (name, v) in h {
                if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                    || hyper::header::HeaderValue::from_str(v.get_ref()).is_err()
                {
                    return Err(OptionError::at(
                        v.span(),
                        format!("'{name}' is not a valid header name and value"),
                    ));
                }
                o.headers.push((name.clone(), v.get_ref().clone()));
            }
        }
        if let Some(v) = &keys.body {
            o.body = Some(v.get_ref().clone());
        }
        if let Some(list) = &keys.requests {
            o.mix = mix::entries(list.get_ref(), list.span())?;
            mix::check(&o.mix, list.span())?;
        }
        if let Some(b) = keys.abort_on_fail {
            o.abort_on_fail = b;
        }
        if let Some(v) = &keys.hold_connections {
            o.hold_connections = value::int_as(v, 0, i64::from(MAX_CONNECTIONS), CEILING)?;
            whole = v.span();
        }
        if let Some(v) = &keys.hold {
            o.hold = secs(v, 1.0)?;
        }
        if let Some(v) = &keys.ramp_to {
            o.ramp_to = number(v, 0.0, MAX_RATE, CEILING)?;
            if o.ramp_to > 0.0 && o.ramp_to <= o.rate {
                return Err(OptionError::at(
                    v.span(),
                    format!(
                        "must be above rate ({}) to ramp up, or 0 for no ramp",
                        o.rate
                    ),
                ));
            }
            whole = v.span();
        }
        if let Some(v) = &keys.ramp_steps {
            o.ramp_steps = value::int_as(v, 1, 20, "")?;
        }
        if let Some(v) = &keys.ramp_step {
            o.ramp_step = secs(v, 1.0)?;
        }
        if let Some(v) = &keys.http2 {
            o.http2 = *v.get_ref();
        }
        if let Some(v) = &keys.streams {
            o.streams = value::int_as(v, 1, i64::from(MAX_STREAMS), "")?;
            if !o.http2 {
                return Err(OptionError::at(
                    v.span(),
                    "streams are HTTP/2's: set http2 = true, or drop streams (HTTP/1.1 sends one request at a time per connection)".to_string(),
                ));
            }
        }
        if o.http2 && u64::from(o.connections) * u64::from(o.streams) > u64::from(MAX_CONNECTIONS) {
            let at = keys
                .streams
                .as_ref()
                .or(keys.connections.as_ref())
                .map_or(whole.clone(), Spanned::span);
            return Err(OptionError::at(
                at,
                format!(
                    "connections × streams is {}, more than {MAX_CONNECTIONS} concurrent requests{CEILING}",
                    u64::from(o.connections) * u64::from(o.streams)
                ),
            ));
        }
        if let Some(v) = &keys.source_range {
            o.source_range = Some(source_range(v)?);
        }
        if o.total_duration().as_secs_f64() > MAX_DURATION_SECS {
            return Err(OptionError::at(
                whole,
                format!(
                    "warm-up, idle, steady, ramp and concurrency phases add up to {} s, more than {MAX_DURATION_SECS} s{CEILING}",
                    o.total_duration().as_secs_f64()
                ),
            ));
        }
        if o.total_requests() > MAX_TOTAL_REQUESTS {
            return Err(OptionError::at(
                whole,
                format!(
                    "the run would send {} requests, more than {MAX_TOTAL_REQUESTS}{CEILING}",
                    o.total_requests()
                ),
            ));
        }
        Ok(o)
    }
}

/// A `source_range`: a CIDR range of at most [`MAX_SOURCES`] addresses, whose first and last
/// usable addresses this machine can bind (they are its own).
fn source_range(v: &Spanned<String>) -> Result<ipnet::IpNet, OptionError> {
    let text = v.get_ref().trim();
    let range: ipnet::IpNet = text
        .parse()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            OptionError::at(
                v.span(),
                format!("'{text}' is not a CIDR range (like 10.0.0.0/24 or fd00::/120)"),
            )
        })?
        .trunc();
    let count = super::client::host_count(&range);
    if count > MAX_SOURCES {
        return Err(OptionError::at(
            v.span(),
            format!("'{range}' has {count} addresses, more than {MAX_SOURCES} (a /16)"),
        ));
    }
    let last = u32::try_from(count.saturating_sub(1)).unwrap_or(u32::MAX);
    for slot in [0, last] {
        let ip = super::client::nth_host(&range, slot);
        let bound = ip.map(|ip| std::net::UdpSocket::bind((ip, 0)));
        if !matches!(bound, Some(Ok(_))) {
            return Err(OptionError::at(
                v.span(),
                format!(
                    "'{range}' is not a range of this machine's addresses: cannot bind {}",
                    ip.map_or_else(|| "its addresses".to_string(), |ip| ip.to_string())
                ),
            ));
        }
    }
    Ok(range)
}

impl Options for LoadOptions {
    type Scan = Scan;
    type Target = Target;
    type Endpoint = mix::EndpointKeys;
    const TARGET_KEYS: &'static [&'static str] = &["load"];
    const ENDPOINT_KEYS: &'static [&'static str] = &["weight"];
    const FLAGS: &'static [Flag] = &[
        Flag {
            long: "load-rate",
            key: "rate",
            value_name: "RPS",
            help: "Load family: steady arrival rate in requests per second (default 100, ceiling 20000)",
            kind: FlagKind::Number,
        },
        Flag {
            long: "load-duration",
            key: "duration",
            value_name: "SECS",
            help: "Load family: seconds of the steady phase (default 30; all phases at most 600)",
            kind: FlagKind::Number,
        },
        Flag {
            long: "load-connections",
            key: "connections",
            value_name: "N",
            help: "Load family: connections of the steady phase (default 32, ceiling 50000)",
            kind: FlagKind::Number,
        },
    ];

    fn scan(raw: Scan) -> Result<LoadOptions, OptionError> {
        LoadOptions::default().apply(raw, 0..0)
    }

    fn target(
        &self,
        raw: Target,
        endpoints: Vec<EndpointOptions<mix::EndpointKeys>>,
    ) -> Result<LoadOptions, OptionError> {
        let mut o = match raw.load {
            TargetLoad::Unset => self.clone(),
            TargetLoad::Flag(on) => LoadOptions {
                opt_in: on,
                ..self.clone()
            },
            TargetLoad::Table(keys) => {
                let mut o = self.apply(*keys, 0..0)?;
                o.opt_in = true;
                o
            }
        };
        let mut last = 0..0;
        for e in endpoints {
            let Some(w) = &e.raw.weight else { continue };
            if !o.opt_in {
                return Err(OptionError::at(
                    w.span(),
                    "only means something on a target with `load = true` (or `load = { ... }`)",
                ));
            }
            if matches!(e.role, Role::Login | Role::Jwt) {
                return Err(OptionError::at(
                    w.span(),
                    format!(
                        "a {} endpoint cannot join the load mix: the load family sends no credentials (use an api or protected endpoint)",
                        e.role.as_str()
                    ),
                ));
            }
            o.mix.push(mix::Entry {
                name: e.name.clone(),
                source: mix::Source::Endpoint,
                weight: mix::weight(w, "")?,
            });
            last = w.span();
        }
        mix::check(&o.mix, last)?;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_the_rule_of_three() {
        let o = LoadOptions::default();
        // 30 s at 100/s: 3,000 judged requests, over the 2,996 a 0.1 % error rate needs.
        assert_eq!(requests_in(o.rate, o.duration), 3000);
        assert_eq!(o.total_requests(), 3500 + 200);
        assert!(!o.opt_in);
    }
}
