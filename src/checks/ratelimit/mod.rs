//! The rate-limiting family (`--checks ratelimit`).
//!
//! **Probe**: for every `api` and `login` endpoint of a target, a bounded burst: up to
//! `max_requests` requests (default 200, hard ceiling 500) paced at `rps` (default 50, ceiling
//! 100), at most `per_host` in flight, stopping at the first clear limit. Login endpoints are
//! sent an unknown username with a wrong password, so the burst never locks a real account.
//!
//! A clear limit is a 429, a 503 with Retry-After, or refused/reset connections after the
//! endpoint had answered. `RateLimit`, `RateLimit-Policy` and `X-RateLimit-*` headers are
//! recorded: an advertised limit that the burst did not reach counts as a limit, and one whose
//! remaining count reached 0 while requests kept being served counts as not enforced.
//!
//! The family is *exclusive*: it never runs at the same time as the auth family on a target.

mod missing;
pub mod options;
mod retry_after;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use reqwest::header::HeaderMap;

use super::behaviour::{Requester, random_hex, wrong_password};
use crate::endpoint::{Endpoint, Role};
use crate::engine::Emitter;
use crate::engine::{self, Cx, Family};
use crate::model::{Outcome, Reason, ReasonKind};
use crate::options::{FamilyOptions, OptionsSpec, Spec};
use crate::plan::Settings;
use crate::target::Target;

/// The rate-limiting family.
#[derive(Debug)]
pub struct RateLimit;

/// Family name.
pub const FAMILY: &str = "ratelimit";

/// Every rule id, in catalogue order.
pub const RULE_IDS: &[&str] = &[
    missing::MISSING,
    missing::AUTH_MISSING,
    retry_after::NO_RETRY_AFTER,
];

static OPTIONS: Spec<options::RateLimitOptions> = Spec::new();

impl FamilyOptions for RateLimit {
    fn family(&self) -> &'static str {
        FAMILY
    }

    fn options(&self) -> &'static dyn OptionsSpec {
        &OPTIONS
    }

    /// The endpoints it bursts (their secret headers go with every request).
    fn reads_secrets_of(&self, endpoint: &Endpoint) -> bool {
        matches!(endpoint.role, Role::Api | Role::Login)
    }
}

fn target_options(target: &Target) -> options::RateLimitOptions {
    target
        .options
        .get::<options::RateLimitOptions>(FAMILY)
        .cloned()
        .unwrap_or_default()
}

impl Family for RateLimit {
    fn summary(&self) -> &'static str {
        "bounded request bursts against configured API and login endpoints"
    }

    fn rule_ids(&self) -> &'static [&'static str] {
        RULE_IDS
    }

    fn applies_to(&self, target: &Target) -> bool {
        target.http_url().is_some() && burst_endpoints(target).next().is_some()
    }

    fn exclusive(&self, _target: &Target) -> bool {
        true
    }

    fn needs_endpoints(&self) -> bool {
        true
    }

    /// Each burst's `max_requests`.
    fn budget(&self, target: &Target, _settings: &Settings) -> u32 {
        let opts = target_options(target);
        burst_endpoints(target)
            .map(|e| opts.burst(&e.name).max_requests)
            .sum()
    }

    fn deadline(&self, settings: &Settings, target: &Target) -> Duration {
        // Each burst takes max_requests / rps, plus a request deadline for the stragglers.
        let opts = target_options(target);
        let bursts: f64 = burst_endpoints(target)
            .map(|e| {
                let b = opts.burst(&e.name);
                f64::from(b.max_requests) / burst_rps(b.rps, settings).max(0.01)
            })
            .sum();
        let per_burst = engine::net::request_deadline(settings.timeout) * 2;
        let n = u32::try_from(burst_endpoints(target).count()).unwrap_or(u32::MAX);
        Duration::from_secs_f64(bursts) + per_burst.saturating_mul(n) + engine::MAX_BACKOFF_WAIT
    }

    fn run<'a>(&'a self, cx: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let target = cx.target();
            let mut out = Emitter::new(FAMILY, target.target.id.clone());
            let requester = match Requester::new(cx) {
                Ok(r) => r.measuring(),
                Err(reason) => {
                    for id in RULE_IDS {
                        out.inconclusive(id, &reason);
                    }
                    return out.finish();
                }
            };
            let opts = cx.options::<options::RateLimitOptions>();
            let mut bursts = Vec::new();
            for endpoint in burst_endpoints(&target.target) {
                bursts.push(burst(cx, &requester, endpoint, opts.burst(&endpoint.name)).await);
            }
            evaluate(&bursts, &mut out);
            out.finish()
        })
    }
}

fn burst_endpoints(target: &Target) -> impl Iterator<Item = &Endpoint> {
    target
        .endpoints
        .iter()
        .filter(|e| matches!(e.role, Role::Api | Role::Login))
}

/// Run every rule on the bursts.
pub fn evaluate(bursts: &[Burst], out: &mut Emitter) {
    missing::eval(bursts, out);
    retry_after::eval(bursts, out);
}

/// What showed a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// HTTP 429.
    TooManyRequests,
    /// HTTP 503 with Retry-After, or 503s in a row after requests were served.
    Unavailable,
    /// Connections refused or reset after the endpoint had answered.
    Refused,
}

impl Signal {
    fn describe(&self) -> &'static str {
        match self {
            Signal::TooManyRequests => "429 Too Many Requests",
            Signal::Unavailable => "503 Service Unavailable",
            Signal::Refused => "connections refused mid-burst",
        }
    }
}

/// How a burst ended.
#[derive(Clone, Debug, PartialEq)]
pub enum BurstEnd {
    /// A clear limit at request `at` (1-based).
    Limited {
        /// Request number that was limited first.
        at: u32,
        /// Seconds from the first request to the limited one.
        after: f64,
        /// What showed it.
        signal: Signal,
        /// The Retry-After value, if any.
        retry_after: Option<String>,
    },
    /// Every request was served; a limit is advertised in headers but was not reached.
    Advertised,
    /// The advertised remaining count reached 0 at request `exhausted_at`, yet requests kept
    /// being served.
    NotEnforced {
        /// Request at which remaining reached 0.
        exhausted_at: u32,
    },
    /// Every request was served, no limit seen or advertised.
    Unlimited,
    /// The burst could not be judged.
    Undecided(Reason),
}

/// One endpoint's burst.
#[derive(Clone, Debug, PartialEq)]
pub struct Burst {
    /// Endpoint name.
    pub endpoint: String,
    /// Endpoint role (api or login).
    pub role: Role,
    /// Requests sent.
    pub sent: u32,
    /// Seconds the burst took.
    pub seconds: f64,
    /// Statuses seen, with counts.
    pub statuses: BTreeMap<u16, u32>,
    /// Rate-limit headers seen on the first response that carried any.
    pub advertised: Vec<(String, String)>,
    /// How it ended.
    pub end: BurstEnd,
}

impl Burst {
    /// One line for evidence.
    pub fn describe(&self) -> String {
        let rate = if self.seconds > 0.0 {
            f64::from(self.sent) / self.seconds
        } else {
            0.0
        };
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}×{n}"))
            .collect();
        let what = match &self.end {
            BurstEnd::Limited {
                at,
                after,
                signal,
                retry_after,
            } => format!(
                "limited at request {at} after {after:.1} s: {}{}",
                signal.describe(),
                retry_after
                    .as_ref()
                    .map(|r| format!(", Retry-After: {r}"))
                    .unwrap_or_default()
            ),
            BurstEnd::Advertised => format!(
                "limit advertised ({}) but not reached",
                headers_line(&self.advertised)
            ),
            BurstEnd::NotEnforced { exhausted_at } => format!(
                "advertised remaining reached 0 at request {exhausted_at}, yet later requests were served"
            ),
            BurstEnd::Unlimited => "no throttling".to_string(),
            BurstEnd::Undecided(r) => format!("undecided: {}", r.detail),
        };
        format!(
            "{}: {} requests in {:.1} s ({rate:.0}/s), statuses {}; {what}",
            self.endpoint,
            self.sent,
            self.seconds,
            if statuses.is_empty() {
                "none".to_string()
            } else {
                statuses.join(" ")
            },
        )
    }
}

fn headers_line(h: &[(String, String)]) -> String {
    h.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Rate-limit headers in a response (IETF draft `RateLimit*`, and `X-RateLimit-*`).
fn rate_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n.starts_with("ratelimit")
                || n.starts_with("x-ratelimit")
                || n.starts_with("x-rate-limit")
        })
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                crate::model::one_line(&String::from_utf8_lossy(v.as_bytes()), 120),
            )
        })
        .collect()
}

/// The advertised remaining count, from `X-RateLimit-Remaining`, `RateLimit-Remaining`, or the
/// draft `RateLimit` field (`remaining=N` in draft 3–7, `r=N` in draft 8+).
pub fn remaining(headers: &HeaderMap) -> Option<u64> {
    for name in [
        "x-ratelimit-remaining",
        "ratelimit-remaining",
        "x-rate-limit-remaining",
    ] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            return v.trim().parse().ok();
        }
    }
    let field = headers.get("ratelimit")?.to_str().ok()?;
    field
        .split([',', ';'])
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| matches!(k.trim(), "remaining" | "r"))
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Requests still served after the advertised remaining reached 0 before we call it unenforced.
const NOT_ENFORCED_AFTER: u32 = 3;

/// Failures in a row that make a pattern: refused connections as a limit, 503s as a limit,
/// other errors as an undecided burst. One alone is noise.
const IN_A_ROW: u32 = 3;

/// A burst may run at most this much slower than its `rps` under `--max-rps` before its
/// "all served" stops meaning anything.
const SLOWED_BELOW: f64 = 0.8;

/// Why a burst that was served in full proves nothing, when secgate's own cap (`--max-rps`,
/// which every family's requests share) held it below the rate the endpoint asks for.
fn slowed_by_own_cap(
    endpoint: &Endpoint,
    rps: f64,
    sent: u32,
    seconds: f64,
    settings: &Settings,
) -> Option<Reason> {
    let cap = settings.max_rps?;
    let achieved = f64::from(sent) / seconds.max(0.001);
    if cap >= rps && achieved >= rps * SLOWED_BELOW {
        return None;
    }
    Some(Reason::new(
        ReasonKind::Budget,
        format!(
            "{}: the burst ran at {achieved:.0}/s, held below the {rps:.0}/s it needs by secgate's own cap (--max-rps {cap}); that its {sent} requests were all served proves no limit is missing (raise --max-rps to at least {rps:.0})",
            endpoint.name
        ),
    ))
}

/// The rate a burst really runs at: the endpoint's, capped by `--max-rps`.
fn burst_rps(rps: f64, settings: &Settings) -> f64 {
    settings.max_rps.map_or(rps, |m| rps.min(m))
}

/// The numeric limit a response advertises (`X-RateLimit-Limit`, `RateLimit-Limit`, or the
/// draft `RateLimit` field's `limit=` / `q=` from `RateLimit-Policy`).
fn advertised_limit(headers: &HeaderMap) -> Option<u64> {
    for name in ["x-ratelimit-limit", "ratelimit-limit", "x-rate-limit-limit"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            return v
                .split([',', ';'])
                .next()
                .and_then(|n| n.trim().parse().ok());
        }
    }
    for name in ["ratelimit", "ratelimit-policy"] {
        let Some(field) = headers.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Some(n) = field
            .split([',', ';'])
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| matches!(k.trim(), "limit" | "q"))
            .and_then(|(_, v)| v.trim().parse().ok())
        {
            return Some(n);
        }
    }
    None
}

/// Send one endpoint's burst.
async fn burst(
    cx: &Cx<'_>,
    requester: &Requester<'_>,
    endpoint: &Endpoint,
    opts: options::BurstOptions,
) -> Burst {
    let pacer = engine::pacer(burst_rps(opts.rps, cx.settings()));
    let in_flight_max = cx.settings().per_host.max(1);
    let probe_user = endpoint.unknown_username(&random_hex(6));
    let probe_password = wrong_password();
    let credentials =
        (endpoint.role == Role::Login).then_some((probe_user.as_str(), probe_password.as_str()));

    let started = tokio::time::Instant::now();
    let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
    let mut advertised = Vec::new();
    let mut answered = 0u32;
    let mut served = 0u32;
    let mut sent = 0u32;
    let mut exhausted_at: Option<u32> = None;
    let mut served_after_exhaustion = 0u32;
    // Advertised headers count only if the remaining count goes down (a static header proves
    // nothing) and the limit is not already below what we sent.
    // Answers arrive in any order (several requests are in flight), so the test is that the
    // count took more than one value, not that the first answer carried the highest.
    let mut most_remaining: Option<u64> = None;
    let mut least_remaining: Option<u64> = None;
    let mut limit_value: Option<u64> = None;
    let (mut refused_in_a_row, mut errors_in_a_row, mut unavailable_in_a_row) = (0u32, 0u32, 0u32);
    let mut last_error: Option<Reason> = None;
    let mut end: Option<BurstEnd> = None;
    let mut in_flight = FuturesUnordered::new();

    loop {
        while end.is_none() && sent < opts.max_requests && in_flight.len() < in_flight_max {
            pacer.until_ready().await;
            sent += 1;
            let n = sent;
            let at = started.elapsed().as_secs_f64();
            in_flight.push(async move {
                (
                    n,
                    at,
                    requester
                        .endpoint(endpoint, credentials, HeaderMap::new(), false)
                        .await,
                )
            });
        }
        let Some((n, at, result)) = in_flight.next().await else {
            break;
        };
        if end.is_some() {
            // Stragglers after the decision are counted but do not change it.
            if let Ok(ex) = &result {
                *statuses.entry(ex.status).or_default() += 1;
            }
            continue;
        }
        match result {
            Ok(ex) => {
                *statuses.entry(ex.status).or_default() += 1;
                answered += 1;
                refused_in_a_row = 0;
                errors_in_a_row = 0;
                let retry_after = ex
                    .headers
                    .get("retry-after")
                    .map(|v| crate::model::one_line(&String::from_utf8_lossy(v.as_bytes()), 60));
                if advertised.is_empty() {
                    advertised = rate_headers(&ex.headers);
                }
                if let Some(r) = remaining(&ex.headers) {
                    most_remaining = Some(most_remaining.map_or(r, |m| m.max(r)));
                    least_remaining = Some(least_remaining.map_or(r, |l| l.min(r)));
                }
                if let Some(l) = advertised_limit(&ex.headers) {
                    limit_value.get_or_insert(l);
                }
                unavailable_in_a_row = if ex.status == 503 {
                    unavailable_in_a_row + 1
                } else {
                    0
                };
                let signal = match ex.status {
                    429 => Some((Signal::TooManyRequests, n)),
                    503 if retry_after.is_some() => Some((Signal::Unavailable, n)),
                    // A limiter that answers a plain 503 (nginx limit_req's default) shows as
                    // 503s in a row after requests were served.
                    503 if unavailable_in_a_row >= IN_A_ROW && served > 0 => {
                        Some((Signal::Unavailable, n + 1 - IN_A_ROW))
                    }
                    _ => None,
                };
                if (200..300).contains(&ex.status) || (400..500).contains(&ex.status) {
                    served += 1;
                }
                if let Some((signal, first)) = signal {
                    end = Some(BurstEnd::Limited {
                        at: first,
                        after: at,
                        signal,
                        retry_after,
                    });
                } else if let Some(x) = exhausted_at {
                    if n > x && (200..300).contains(&ex.status) {
                        served_after_exhaustion += 1;
                        if served_after_exhaustion >= NOT_ENFORCED_AFTER {
                            end = Some(BurstEnd::NotEnforced { exhausted_at: x });
                        }
                    }
                } else if remaining(&ex.headers) == Some(0) {
                    exhausted_at = Some(n);
                }
            }
            // Connections refused before connecting, several in a row after the endpoint had
            // answered: the client is being turned away.
            Err(e) if e.before_connect && answered > 0 => {
                refused_in_a_row += 1;
                if refused_in_a_row >= IN_A_ROW {
                    end = Some(BurstEnd::Limited {
                        at: n + 1 - IN_A_ROW,
                        after: at,
                        signal: Signal::Refused,
                        retry_after: None,
                    });
                }
                last_error = Some(e.reason);
            }
            Err(e) => {
                errors_in_a_row += 1;
                refused_in_a_row = 0;
                if answered == 0 || errors_in_a_row >= IN_A_ROW {
                    end = Some(BurstEnd::Undecided(e.reason.clone()));
                }
                last_error = Some(e.reason);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let total: u32 = statuses.values().sum();
    let server_errors: u32 = statuses
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum();
    let not_found = statuses.get(&404).copied().unwrap_or(0);
    let honest_advert = matches!((most_remaining, least_remaining), (Some(m), Some(l)) if l < m)
        && limit_value.is_none_or(|l| l >= u64::from(sent));
    let end = end.unwrap_or_else(|| {
        if total > 0 && not_found == total {
            BurstEnd::Undecided(Reason::new(
                ReasonKind::Malformed,
                format!("endpoint {} answered 404 to every request; check its path", endpoint.name),
            ))
        } else if server_errors * 2 > total {
            BurstEnd::Undecided(Reason::new(
                ReasonKind::Malformed,
                format!("endpoint {} failed under the burst ({server_errors} of {total} answers were 5xx)", endpoint.name),
            ))
        } else if let (0, Some(r)) = (total, last_error) {
            BurstEnd::Undecided(r)
        } else if honest_advert {
            BurstEnd::Advertised
        } else if let Some(reason) = slowed_by_own_cap(endpoint, opts.rps, sent, seconds, cx.settings()) {
            // Served in full, but slower than asked: a limit above the rate sent cannot show.
            BurstEnd::Undecided(reason)
        } else {
            BurstEnd::Unlimited
        }
    });
    Burst {
        endpoint: endpoint.name.clone(),
        role: endpoint.role,
        sent,
        seconds,
        statuses,
        advertised,
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_remaining_in_every_dialect() {
        let h = |k: &'static str, v: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(k, reqwest::header::HeaderValue::from_static(v));
            m
        };
        assert_eq!(remaining(&h("x-ratelimit-remaining", "0")), Some(0));
        assert_eq!(remaining(&h("ratelimit-remaining", " 7")), Some(7));
        assert_eq!(
            remaining(&h("ratelimit", "limit=100, remaining=5, reset=30")),
            Some(5)
        );
        assert_eq!(remaining(&h("ratelimit", "\"default\";r=0;t=30")), Some(0));
        assert_eq!(remaining(&h("ratelimit", "garbage")), None);
        assert_eq!(remaining(&HeaderMap::new()), None);
    }
}
