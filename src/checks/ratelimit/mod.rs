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
mod retry_after;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use reqwest::header::HeaderMap;

use super::Check;
use super::behaviour::{Requester, unknown_username, wrong_password};
use crate::endpoint::{Endpoint, Role};
use crate::engine::{self, ScanCx, ScanTarget, Settings};
use crate::model::{Emitter, Outcome, Reason, ReasonKind};
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

impl Check for RateLimit {
    fn family(&self) -> &'static str {
        FAMILY
    }

    fn summary(&self) -> &'static str {
        "bounded request bursts against configured API and login endpoints"
    }

    fn rule_ids(&self) -> &'static [&'static str] {
        RULE_IDS
    }

    fn applies_to(&self, target: &Target) -> bool {
        target.http_url().is_some() && burst_endpoints(target).next().is_some()
    }

    fn exclusive(&self) -> bool {
        true
    }

    fn deadline(&self, settings: &Settings, target: &Target) -> Duration {
        // Each burst takes max_requests / rps, plus a request deadline for the stragglers.
        let bursts: f64 = burst_endpoints(target)
            .map(|e| f64::from(e.max_requests) / e.rps.max(0.01))
            .sum();
        let per_burst = engine::net::request_deadline(settings.timeout) * 2;
        let n = u32::try_from(burst_endpoints(target).count()).unwrap_or(u32::MAX);
        Duration::from_secs_f64(bursts)
            + per_burst.saturating_mul(n)
            + engine::check_deadline(settings)
    }

    fn run<'a>(&'a self, cx: &'a ScanCx, target: &'a ScanTarget) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let mut out = Emitter::new(FAMILY, target.target.id.clone());
            let requester = match Requester::new(cx, target) {
                Ok(r) => r,
                Err(reason) => {
                    for id in RULE_IDS {
                        out.inconclusive(id, &reason);
                    }
                    return out.finish();
                }
            };
            let mut bursts = Vec::new();
            for endpoint in burst_endpoints(&target.target) {
                bursts.push(burst(cx, &requester, endpoint).await);
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
    /// HTTP 503 with Retry-After.
    Unavailable,
    /// Connections refused or reset after the endpoint had answered.
    Refused,
}

impl Signal {
    fn describe(&self) -> &'static str {
        match self {
            Signal::TooManyRequests => "429 Too Many Requests",
            Signal::Unavailable => "503 with Retry-After",
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

/// Send one endpoint's burst.
async fn burst(cx: &ScanCx, requester: &Requester<'_>, endpoint: &Endpoint) -> Burst {
    let pacer = engine::pacer(endpoint.rps);
    let in_flight_max = cx.settings.per_host.max(1);
    let probe_user = unknown_username();
    let probe_password = wrong_password();
    let credentials =
        (endpoint.role == Role::Login).then_some((probe_user.as_str(), probe_password.as_str()));

    let started = tokio::time::Instant::now();
    let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
    let mut advertised = Vec::new();
    let mut answered = 0u32;
    let mut sent = 0u32;
    let mut exhausted_at: Option<u32> = None;
    let mut served_after_exhaustion = 0u32;
    let mut end: Option<BurstEnd> = None;
    let mut in_flight = FuturesUnordered::new();

    loop {
        while end.is_none() && sent < endpoint.max_requests && in_flight.len() < in_flight_max {
            pacer.until_ready().await;
            sent += 1;
            let n = sent;
            let at = started.elapsed().as_secs_f64();
            in_flight.push(async move {
                (
                    n,
                    at,
                    requester
                        .endpoint(endpoint, credentials, HeaderMap::new())
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
                let retry_after = ex
                    .headers
                    .get("retry-after")
                    .map(|v| crate::model::one_line(&String::from_utf8_lossy(v.as_bytes()), 60));
                if advertised.is_empty() {
                    advertised = rate_headers(&ex.headers);
                }
                let signal = match ex.status {
                    429 => Some(Signal::TooManyRequests),
                    503 if retry_after.is_some() => Some(Signal::Unavailable),
                    _ => None,
                };
                if let Some(signal) = signal {
                    end = Some(BurstEnd::Limited {
                        at: n,
                        after: at,
                        signal,
                        retry_after,
                    });
                } else if let Some(x) = exhausted_at {
                    if n > x {
                        served_after_exhaustion += 1;
                        if served_after_exhaustion >= NOT_ENFORCED_AFTER {
                            end = Some(BurstEnd::NotEnforced { exhausted_at: x });
                        }
                    }
                } else if remaining(&ex.headers) == Some(0) {
                    exhausted_at = Some(n);
                }
            }
            Err(e)
                if answered > 0
                    && matches!(e.reason.kind, ReasonKind::Refused | ReasonKind::Reset) =>
            {
                end = Some(BurstEnd::Limited {
                    at: n,
                    after: at,
                    signal: Signal::Refused,
                    retry_after: None,
                });
            }
            Err(e) => end = Some(BurstEnd::Undecided(e.reason)),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let end = end.unwrap_or_else(|| {
        let total: u32 = statuses.values().sum();
        let not_found = statuses.get(&404).copied().unwrap_or(0);
        if total > 0 && not_found == total {
            BurstEnd::Undecided(Reason::new(
                ReasonKind::Malformed,
                format!(
                    "endpoint {} answered 404 to every request; check its path",
                    endpoint.name
                ),
            ))
        } else if !advertised.is_empty() {
            BurstEnd::Advertised
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
