//! The HTTP security headers family (`--checks headers`).
//!
//! **Probe** (all network I/O, in this file): fetch the target URL, following redirects by hand
//! up to `max_redirects` and only to hosts that are themselves targets of the scan, recording
//! every hop; send the final URL two cross-origin requests (CORS); when the final page is
//! HTTPS, fetch it once more with `Accept-Encoding: gzip` and a random marker in the query
//! (BREACH, its body read up to a cap); and, for an https:// target, fetch the same path over
//! plain HTTP on `http_port`. At most one request is in flight per target at a time, each
//! under the per-host connection limit.
//!
//! **Rules** (pure, one file each): they read the [`HttpObservation`] and emit one outcome per
//! rule id. HSTS is judged on the target's own HTTPS response (as browsers do), content headers
//! (CSP, X-Content-Type-Options, framing, Referrer-Policy) on the final response, and cookies
//! and version banners on every response seen.

use std::borrow::Cow;

use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use crate::engine::Emitter;
use crate::engine::net::FetchError;
use crate::engine::{Cx, Family, HttpRequest};
use crate::model::{Outcome, Reason, ReasonKind};
use crate::options::{FamilyOptions, NoOptions, OptionsSpec, Spec};
use crate::target::Target;

pub use breach::{BreachProbe, BreachResponse};

mod breach;
mod cookies;
mod cors;
mod csp;
mod framing;
mod hsts;
mod redirect;
mod referrer;
mod version;
mod xcto;

/// The headers family.
#[derive(Debug)]
pub struct Headers;

/// Family name.
pub const FAMILY: &str = "headers";

/// Every rule id of the family, in catalogue order.
pub const RULE_IDS: &[&str] = &[
    hsts::MISSING,
    hsts::SHORT,
    hsts::NO_INCLUDE_SUBDOMAINS,
    csp::MISSING,
    csp::UNSAFE,
    csp::NO_OBJECT_SRC,
    csp::NO_BASE_URI,
    xcto::MISSING,
    framing::MISSING,
    referrer::MISSING,
    cookies::INSECURE,
    cookies::NO_HTTPONLY,
    cookies::NO_SAMESITE,
    cors::REFLECT_CREDENTIALS,
    cors::WILDCARD_CREDENTIALS,
    version::DISCLOSURE,
    redirect::NO_HTTPS_REDIRECT,
    breach::BREACH,
];

/// A rule of this family (see [`crate::checks::Rule`]).
pub type Rule = crate::engine::Rule<HttpObservation>;

/// The rules, in evaluation order.
pub static RULES: &[Rule] = &[
    hsts::RULE,
    csp::RULE,
    xcto::RULE,
    framing::RULE,
    referrer::RULE,
    cookies::RULE,
    cors::RULE,
    version::RULE,
    redirect::RULE,
    breach::RULE,
];

/// The family's options: none (the HTTP knobs are the engine's).
static OPTIONS: Spec<NoOptions> = Spec::new();

impl FamilyOptions for Headers {
    fn family(&self) -> &'static str {
        FAMILY
    }

    fn options(&self) -> &'static dyn OptionsSpec {
        &OPTIONS
    }

    /// A login endpoint: the family logs in once to judge the session cookies it sets.
    fn reads_secrets_of(&self, endpoint: &crate::endpoint::Endpoint) -> bool {
        endpoint.role == crate::endpoint::Role::Login
    }
}

impl Family for Headers {
    fn summary(&self) -> &'static str {
        "HTTP security headers, cookies, CORS, version banners and the HTTP→HTTPS redirect"
    }

    fn rule_ids(&self) -> &'static [&'static str] {
        RULE_IDS
    }

    fn applies_to(&self, target: &Target) -> bool {
        target.http_url().is_some()
    }

    /// With a login endpoint configured, the family logs in once to judge the session
    /// cookies the login sets; that real login must not land in the middle of the auth
    /// family's lockout and enumeration measurements, so the two take turns.
    fn exclusive(&self, target: &Target) -> bool {
        login_endpoint(target).is_some()
    }

    /// The main chain and the plain-HTTP chain (each up to `max_redirects` + 1 requests), two
    /// CORS requests, the BREACH request for an https:// target, and one real login when a
    /// login endpoint is configured.
    fn budget(&self, target: &Target, settings: &crate::plan::Settings) -> u32 {
        let https = target.http_url().is_some_and(|u| u.scheme() == "https");
        2 * (settings.max_redirects + 1)
            + 2
            + u32::from(https)
            + u32::from(login_endpoint(target).is_some())
    }

    /// One request at a time.
    fn parallelism(&self, _: &crate::plan::Settings) -> u32 {
        1
    }

    fn run<'a>(&'a self, cx: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let target = cx.target();
            let Some(url) = target.target.http_url() else {
                let mut out = Emitter::new(FAMILY, target.target.id.clone());
                skipped_all(&mut out, RULE_IDS, "this target has no HTTP URL");
                return out.finish();
            };
            let obs = probe(cx, url).await;
            // A bare host (no scheme, no port) is fetched as https://host/ on the chance that
            // it serves HTTPS; when nothing even accepts the connection, it has no web service
            // to judge, which is not a reason to leave the gate undecided.
            let bare_host = matches!(
                target.target.kind,
                crate::target::TargetKind::Host { port: None, .. }
            );
            if let (true, true, Err(reason)) = (bare_host, obs.main_before_connect, &obs.main) {
                let mut out = Emitter::new(FAMILY, target.target.id.clone());
                let why = format!(
                    "no web service: {} ({})",
                    reason.detail,
                    reason.kind.as_str()
                );
                skipped_all(&mut out, RULE_IDS, &why);
                return out.finish();
            }
            evaluate(&obs, &target.target.id)
        })
    }
}

/// The login endpoint whose session cookies are judged, when one is configured.
fn login_endpoint(target: &Target) -> Option<&crate::endpoint::Endpoint> {
    target
        .endpoints_with(crate::endpoint::Role::Login)
        .find(|e| e.password.as_ref().is_some_and(|p| p.get().is_some()))
}

/// Run every rule on an observation.
pub fn evaluate(obs: &HttpObservation, target_id: &str) -> Vec<Outcome> {
    let mut out = Emitter::new(FAMILY, target_id);
    crate::engine::evaluate_rules(RULES, obs, &mut out);
    out.finish()
}

/// One response head seen while fetching.
#[derive(Clone, Debug)]
pub struct Hop {
    /// The URL requested.
    pub url: Url,
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
}

impl Hop {
    /// All values of a header, as raw bytes.
    pub fn values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    }

    /// The first value of a header, as (lossy) text.
    pub fn first(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
    }

    /// Whether the status is a redirect that carries a Location.
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }

    /// Where a redirect points, resolved against this hop's URL.
    pub fn location(&self) -> Option<Result<Url, String>> {
        if !self.is_redirect() {
            return None;
        }
        let raw = self.first("location")?;
        Some(match self.url.join(raw.trim()) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(u),
            Ok(u) => Err(format!("redirect to unsupported scheme: {u}")),
            Err(e) => Err(format!("invalid Location '{}': {e}", raw.trim())),
        })
    }
}

/// How a fetch chain ended.
#[derive(Clone, Debug)]
pub enum ChainEnd {
    /// The last hop is a final (non-redirect) response.
    Final,
    /// The last hop redirects to a host that is not a scan target; not followed.
    OutOfScope(Url),
    /// More than `max_redirects` redirects.
    TooManyRedirects(u32),
    /// The last hop's Location is unusable.
    BadLocation(String),
    /// A request after the first failed.
    Failed(Reason),
}

/// The responses seen while fetching one URL, and how the fetch ended.
#[derive(Clone, Debug)]
pub struct Chain {
    /// At least one hop.
    pub hops: Vec<Hop>,
    /// How it ended.
    pub end: ChainEnd,
}

impl Chain {
    /// The final response, or why there is none to judge.
    pub fn final_hop(&self) -> Result<&Hop, Reason> {
        let last = self
            .hops
            .last()
            .ok_or_else(|| Reason::new(ReasonKind::Bug, "empty fetch chain"))?;
        match &self.end {
            ChainEnd::Final => Ok(last),
            ChainEnd::OutOfScope(url) => Err(Reason::new(
                ReasonKind::Redirect,
                format!(
                    "{} redirects to {url}, which is not a scan target (add it as a target to judge it)",
                    last.url
                ),
            )),
            ChainEnd::TooManyRedirects(n) => Err(Reason::new(
                ReasonKind::Redirect,
                format!(
                    "more than {n} redirects from {}",
                    self.hops.first().map_or(&last.url, |h| &h.url)
                ),
            )),
            ChainEnd::BadLocation(why) => Err(Reason::new(
                ReasonKind::Redirect,
                format!("{}: {why}", last.url),
            )),
            ChainEnd::Failed(reason) => Err(reason.clone()),
        }
    }
}

/// One cross-origin request and its answer.
#[derive(Clone, Debug)]
pub struct CorsProbe {
    /// The Origin sent.
    pub origin: &'static str,
    /// The response, or why there is none.
    pub response: Result<Hop, Reason>,
}

/// The plain-HTTP side of the target.
#[derive(Clone, Debug)]
pub enum PlainProbe {
    /// The target is itself an http:// URL: its main fetch is the plain-HTTP observation.
    IsTarget,
    /// Nothing accepted a connection on the plain-HTTP port.
    NoListener {
        /// The port probed.
        port: u16,
        /// Why the connection failed (refused, timed out).
        reason: Reason,
    },
    /// The plain-HTTP fetch, or why it failed after connecting.
    Fetched(Result<Chain, Reason>),
}

/// Everything the headers rules judge.
#[derive(Clone, Debug)]
pub struct HttpObservation {
    /// The target URL.
    pub url: Url,
    /// The fetch of the target URL, or why it failed.
    pub main: Result<Chain, Reason>,
    /// Cross-origin requests to the final URL (empty when there is no final URL).
    pub cors: Vec<CorsProbe>,
    /// The plain-HTTP probe.
    pub plain: PlainProbe,
    /// Why the certificate of the first HTTPS response failed verification (only possible with
    /// `--insecure`, which lets such connections through).
    pub cert_error: Option<String>,
    /// The main fetch failed before a TCP connection was made (refused, filtered).
    pub main_before_connect: bool,
    /// The answer to one real login at the configured login endpoint (its Set-Cookie headers
    /// are judged with the others), when one is configured.
    pub login: Option<Result<Hop, Reason>>,
    /// The HSTS max-age `headers.hsts.short` asks for, and the profile that set it (`None`:
    /// the catalogue's 180 days).
    pub hsts_min_max_age: (u64, Option<String>),
    /// The BREACH probe of the final URL, when the target is https:// and its fetch ended on
    /// an https:// page.
    pub breach: Option<BreachProbe>,
}

impl HttpObservation {
    /// Whether the target URL is https://.
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The target's own (first) response.
    pub fn first_response(&self) -> Result<&Hop, Reason> {
        let chain = self.main.as_ref().map_err(Clone::clone)?;
        chain
            .hops
            .first()
            .ok_or_else(|| Reason::new(ReasonKind::Bug, "empty fetch chain"))
    }

    /// The first HTTPS response of the target fetch (the target's own for an https:// target),
    /// or `None` when the fetch never reached HTTPS.
    pub fn first_https_response(&self) -> Result<Option<&Hop>, Reason> {
        let chain = self.main.as_ref().map_err(Clone::clone)?;
        Ok(chain.hops.iter().find(|h| h.url.scheme() == "https"))
    }

    /// The final response of the target fetch.
    pub fn final_response(&self) -> Result<&Hop, Reason> {
        self.main.as_ref().map_err(Clone::clone)?.final_hop()
    }

    /// Every response seen from the service: the main chain, then the plain-HTTP chain, and
    /// why the main chain is incomplete when it is (a redirect loop, a bad Location, a hop that
    /// failed): rules may then fail on what they saw, but not pass. A redirect out of scope is
    /// complete: the rest belongs to another site. Errors only when the main fetch failed.
    pub fn all_hops(&self) -> Result<(Vec<&Hop>, Option<Reason>), Reason> {
        let main = self.main.as_ref().map_err(Clone::clone)?;
        let mut hops: Vec<&Hop> = main.hops.iter().collect();
        if let PlainProbe::Fetched(Ok(chain)) = &self.plain {
            hops.extend(chain.hops.iter());
        }
        if let Some(Ok(login)) = &self.login {
            hops.push(login);
        }
        let incomplete = match &main.end {
            ChainEnd::Final | ChainEnd::OutOfScope(_) => None,
            _ => main.final_hop().err(),
        };
        Ok((hops, incomplete))
    }
}

/// The Origin values sent by the CORS probe.
pub const CORS_ORIGINS: [&str; 2] = ["https://secgate-cors-probe.invalid", "null"];

async fn probe(cx: &Cx<'_>, url: Url) -> HttpObservation {
    let target = cx.target();
    let main = fetch_chain(cx, url.clone()).await;
    let main_before_connect = main.as_ref().is_err_and(|e| e.before_connect);
    let main = main.map_err(|e| e.reason);

    let mut cors = Vec::new();
    if let Some(final_url) = main
        .as_ref()
        .ok()
        .and_then(|c| c.final_hop().ok())
        .map(|h| h.url.clone())
    {
        for origin in CORS_ORIGINS {
            let mut headers = HeaderMap::new();
            headers.insert("origin", HeaderValue::from_static(origin));
            let response = fetch_one(cx, &final_url, headers)
                .await
                .map_err(|e| e.reason);
            cors.push(CorsProbe { origin, response });
        }
    }
    let breach = match main.as_ref().ok().and_then(|c| c.final_hop().ok()) {
        Some(hop) if url.scheme() == "https" && hop.url.scheme() == "https" => {
            Some(breach_probe(cx, &hop.url).await)
        }
        _ => None,
    };

    let plain = if url.scheme() == "http" {
        PlainProbe::IsTarget
    } else {
        let mut plain_url = url.clone();
        let port = target
            .target
            .http_port
            .unwrap_or(crate::plan::DEFAULT_HTTP_PORT);
        let ok = plain_url.set_scheme("http").is_ok()
            && plain_url
                .set_port(if port == 80 { None } else { Some(port) })
                .is_ok();
        if ok {
            match fetch_chain(cx, plain_url).await {
                Ok(chain) => PlainProbe::Fetched(Ok(chain)),
                Err(e) if e.before_connect => PlainProbe::NoListener {
                    port,
                    reason: e.reason,
                },
                Err(e) => PlainProbe::Fetched(Err(e.reason)),
            }
        } else {
            PlainProbe::Fetched(Err(Reason::new(
                ReasonKind::Bug,
                format!("cannot build the plain-HTTP URL for {url}"),
            )))
        }
    };
    let cert_error = main
        .as_ref()
        .ok()
        .and_then(|c| c.hops.iter().find(|h| h.url.scheme() == "https"))
        .and_then(|h| cx.scan().cert_failure(h.url.host_str().unwrap_or_default()));
    // One real login, to see the session cookies it sets (secrets scrubbed from the answer).
    let login = match login_endpoint(&target.target) {
        Some(endpoint) => Some(login_once(cx, endpoint).await),
        None => None,
    };
    HttpObservation {
        url,
        main,
        cors,
        plain,
        cert_error,
        main_before_connect,
        login,
        hsts_min_max_age: hsts_minimum(&cx.settings().profile),
        breach,
    }
}

/// One GET of the final HTTPS URL with `Accept-Encoding: gzip` and a random marker in the
/// query string, its body read (as sent, still compressed) up to [`breach::BODY_CAP`].
async fn breach_probe(cx: &Cx<'_>, final_url: &Url) -> BreachProbe {
    let marker = super::behaviour::random_hex(8);
    let url = breach::probe_url(final_url, &marker);
    let mut req = HttpRequest::get(&url);
    req.headers
        .insert("accept-encoding", HeaderValue::from_static("gzip"));
    req.body_cap = breach::BODY_CAP;
    let response = cx
        .http(req)
        .await
        .map(|ex| BreachResponse {
            status: ex.status,
            headers: ex.headers,
            body: ex.body,
            truncated: ex.truncated,
        })
        .map_err(|e| e.reason);
    BreachProbe {
        url,
        marker,
        response,
    }
}

/// The HSTS max-age a profile asks for (the catalogue's 180 days when it sets none).
fn hsts_minimum(profile: &crate::profile::Profile) -> (u64, Option<String>) {
    match profile.headers.hsts_min_max_age {
        Some(s) => (s, Some(profile.label())),
        None => (hsts::MIN_MAX_AGE, None),
    }
}

#[cfg(test)]
fn failed_observation(url: Url, reason: Reason) -> HttpObservation {
    HttpObservation {
        url,
        main: Err(reason.clone()),
        cors: Vec::new(),
        plain: PlainProbe::Fetched(Err(reason)),
        cert_error: None,
        main_before_connect: false,
        login: None,
        hsts_min_max_age: (hsts::MIN_MAX_AGE, None),
        breach: None,
    }
}

async fn login_once(cx: &Cx<'_>, endpoint: &crate::endpoint::Endpoint) -> Result<Hop, Reason> {
    let requester = super::behaviour::Requester::new(cx)?;
    let url = requester.url(endpoint)?;
    let user = endpoint.username.clone().unwrap_or_default();
    let password = endpoint
        .password
        .as_ref()
        .and_then(|p| p.get())
        .map(|p| p.expose().to_string())
        .unwrap_or_default();
    let ex = requester
        .endpoint(endpoint, Some((&user, &password)), HeaderMap::new(), false)
        .await
        .map_err(|e| e.reason)?;
    Ok(Hop {
        url,
        status: ex.status,
        headers: ex.headers,
    })
}

/// One GET through the facade (the head only).
async fn fetch_one(cx: &Cx<'_>, url: &Url, headers: HeaderMap) -> Result<Hop, FetchError> {
    let mut req = HttpRequest::get(url);
    req.headers = headers;
    let resp = cx.http(req).await?;
    Ok(Hop {
        url: url.clone(),
        status: resp.status,
        headers: resp.headers,
    })
}

/// Fetch `url`, following redirects within scope. Fails only when the first request fails.
async fn fetch_chain(cx: &Cx<'_>, url: Url) -> Result<Chain, FetchError> {
    let max = cx.settings().max_redirects;
    let mut hops: Vec<Hop> = Vec::new();
    let mut next = url;
    loop {
        let hop = match fetch_one(cx, &next, HeaderMap::new()).await {
            Ok(hop) => hop,
            Err(e) if hops.is_empty() => return Err(e),
            Err(e) => {
                return Ok(Chain {
                    hops,
                    end: ChainEnd::Failed(e.reason),
                });
            }
        };
        let location = hop.location();
        hops.push(hop);
        let end = match location {
            None => ChainEnd::Final,
            Some(Err(why)) => ChainEnd::BadLocation(why),
            Some(Ok(to)) if !cx.scan().scope.allows(to.host_str().unwrap_or_default()) => {
                ChainEnd::OutOfScope(to)
            }
            Some(Ok(_)) if hops.len() > max as usize => ChainEnd::TooManyRedirects(max),
            Some(Ok(to)) => {
                next = to;
                continue;
            }
        };
        return Ok(Chain { hops, end });
    }
}

/// Emit the same inconclusive reason for several rules.
fn inconclusive_all(out: &mut Emitter, ids: &[&'static str], reason: &Reason) {
    for id in ids {
        out.inconclusive(id, reason);
    }
}

/// Emit the same skip for several rules.
fn skipped_all(out: &mut Emitter, ids: &[&'static str], why: &str) {
    for id in ids {
        out.skipped(id, why);
    }
}

/// Hand-built observations for the rules' unit tests.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    /// A chain of one final response with `headers` at `url`.
    pub fn hop(url: &str, status: u16, headers: &[(&str, &str)]) -> Hop {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Hop {
            url: Url::parse(url).unwrap(),
            status,
            headers: map,
        }
    }

    /// An https:// observation with one 200 response carrying `headers`, no CORS answers,
    /// and nothing on plain HTTP.
    pub fn https(headers: &[(&str, &str)]) -> HttpObservation {
        let url = "https://app.test/";
        HttpObservation {
            url: Url::parse(url).unwrap(),
            main: Ok(Chain {
                hops: vec![hop(url, 200, headers)],
                end: ChainEnd::Final,
            }),
            cors: Vec::new(),
            plain: PlainProbe::NoListener {
                port: 80,
                reason: Reason::new(ReasonKind::Refused, "refused"),
            },
            cert_error: None,
            main_before_connect: false,
            login: None,
            hsts_min_max_age: (hsts::MIN_MAX_AGE, None),
            breach: None,
        }
    }

    /// Evaluate one rule and return `(rule_id, status, message)` triples.
    pub fn run(
        rule: &Rule,
        obs: &HttpObservation,
    ) -> Vec<(&'static str, crate::model::Status, String)> {
        let mut out = Emitter::new(FAMILY, "https://app.test/");
        (rule.eval)(obs, &mut out);
        out.finish()
            .into_iter()
            .map(|o| (o.rule_id, o.status, o.message))
            .collect()
    }

    /// The status of `id` after evaluating `rule`.
    pub fn status(rule: &Rule, obs: &HttpObservation, id: &str) -> crate::model::Status {
        run(rule, obs)
            .into_iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, s, _)| s)
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_match_rules() {
        let from_rules: Vec<&str> = RULES.iter().flat_map(|r| r.ids.iter().copied()).collect();
        let mut a = from_rules.clone();
        let mut b = RULE_IDS.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }

    #[test]
    fn every_rule_emits_each_id_once_even_on_failure() {
        let failed = failed_observation(
            Url::parse("https://app.test/").unwrap(),
            Reason::new(ReasonKind::Timeout, "t"),
        );
        for obs in [fixture::https(&[]), failed] {
            for rule in RULES {
                let ids: Vec<_> = fixture::run(rule, &obs)
                    .into_iter()
                    .map(|(i, _, _)| i)
                    .collect();
                assert_eq!(ids, rule.ids.to_vec());
            }
        }
    }
}
