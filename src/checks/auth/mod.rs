//! The authentication family (`--checks auth`), on the endpoints a target's config names.
//!
//! **Probe**, in this order (the lockout test goes last because it may lock the test account):
//! 1. every `protected` and `jwt` route without credentials, then, where GET is refused, with
//!    HEAD, an arbitrary verb, POST, and POST with method-override headers (5 requests);
//! 2. every `login`, `protected` and `jwt` route over plain HTTP (one GET, never a credential);
//! 3. every `jwt` route with the configured token, without it, with `alg: none` variants (up to
//!    4), with a tampered payload, and with an expired token (forged when the HMAC secret is
//!    found in the embedded wordlist, which is searched offline);
//! 4. every `login` route: one login with the real password (it must succeed, or the login tests
//!    are inconclusive), then `samples` interleaved failed logins for an unknown user and for
//!    the test account (user enumeration), then `attempts` failed logins for the test account
//!    (lockout).
//!
//! **Rules** (pure, one file each) judge the observation. The family is *exclusive*: it never
//! runs at the same time as the rate-limit bursts on a target.

mod cleartext;
pub mod enumeration;
mod jwt;
mod lockout;
pub mod options;
pub mod stats;
pub mod token;
mod unprotected;
mod verbs;

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use url::Url;

use super::behaviour::{Requester, wrong_password};
use crate::endpoint::{Endpoint, Role, Secret};
use crate::engine::Emitter;
use crate::engine::net::{Exchange, FetchError};
use crate::engine::{Cx, Family};
use crate::model::{Outcome, Reason, ReasonKind};
use crate::options::{FamilyOptions, OptionsSpec, Spec};
use crate::plan::Settings;
use crate::target::Target;

/// The authentication family.
#[derive(Debug)]
pub struct Auth;

/// Family name.
pub const FAMILY: &str = "auth";

/// Every rule id, in catalogue order.
pub const RULE_IDS: &[&str] = &[
    unprotected::UNPROTECTED,
    verbs::VERB_TAMPERING,
    cleartext::CLEARTEXT,
    lockout::NO_LOCKOUT,
    enumeration::USER_ENUMERATION,
    jwt::ALG_NONE,
    jwt::SIGNATURE_NOT_VERIFIED,
    jwt::WEAK_SECRET,
    jwt::EXPIRED_ACCEPTED,
];

/// The `alg` values tried for unsigned tokens (libraries have matched case-sensitively).
pub const NONE_VARIANTS: [&str; 4] = ["none", "None", "NONE", "nOnE"];

/// The requests of the verb-tampering probe: a label, the method, and an override header.
pub const VERB_PROBES: [(&str, &str, Option<&str>); 5] = [
    ("HEAD", "HEAD", None),
    ("SECGATE (arbitrary verb)", "SECGATE", None),
    ("POST", "POST", None),
    (
        "POST + X-HTTP-Method-Override: GET",
        "POST",
        Some("x-http-method-override"),
    ),
    (
        "POST + X-Method-Override: GET",
        "POST",
        Some("x-method-override"),
    ),
];

static OPTIONS: Spec<options::AuthOptions> = Spec::new();

impl FamilyOptions for Auth {
    fn family(&self) -> &'static str {
        FAMILY
    }

    fn options(&self) -> &'static dyn OptionsSpec {
        &OPTIONS
    }

    /// Every role: logins, tokens and the headers of protected routes.
    fn reads_secrets_of(&self, _endpoint: &crate::endpoint::Endpoint) -> bool {
        true
    }
}

/// Requests of the probe of one endpoint (README, "Behaviour checks").
pub fn endpoint_budget(role: Role, login: options::LoginOptions) -> u32 {
    match role {
        // Anonymous (following up to two slash redirects), six verb probes, plain HTTP.
        Role::Protected => 3 + 6 + 1,
        // The same, then the token, no token, five unsigned variants, tampered, expired.
        Role::Jwt => 3 + 6 + 1 + 2 + 5 + 2,
        // Plain HTTP, the real login, the interleaved samples with a real login every few,
        // retries after Retry-After (one per second of the sampling wait), the failed
        // logins, and the real login again.
        Role::Login => {
            let retries = u32::try_from(MAX_SAMPLING_WAIT.as_secs()).unwrap_or(u32::MAX);
            1 + 1 + 2 * login.samples + login.samples / 3 + retries + login.attempts + 1
        }
        Role::Api => 0,
    }
}

impl Family for Auth {
    fn summary(&self) -> &'static str {
        "login lockout, user enumeration, unprotected routes, verb tampering, cleartext credentials, JWT attacks"
    }

    fn rule_ids(&self) -> &'static [&'static str] {
        RULE_IDS
    }

    fn applies_to(&self, target: &Target) -> bool {
        target.http_url().is_some()
            && target
                .endpoints
                .iter()
                .any(|e| matches!(e.role, Role::Login | Role::Protected | Role::Jwt))
    }

    fn exclusive(&self, _target: &Target) -> bool {
        true
    }

    fn needs_endpoints(&self) -> bool {
        true
    }

    fn budget(&self, target: &Target, _settings: &Settings) -> u32 {
        let opts = target
            .options
            .get::<options::AuthOptions>(FAMILY)
            .cloned()
            .unwrap_or_default();
        target
            .endpoints
            .iter()
            .map(|e| endpoint_budget(e.role, opts.login(&e.name)))
            .sum()
    }

    /// One request at a time.
    fn parallelism(&self, _: &Settings) -> u32 {
        1
    }

    fn deadline(&self, settings: &Settings, target: &Target) -> Duration {
        let logins = u32::try_from(target.endpoints_with(Role::Login).count()).unwrap_or(u32::MAX);
        crate::engine::deadline_for(settings, self.budget(target, settings), 1)
            + MAX_SAMPLING_WAIT.saturating_mul(logins)
    }

    fn run<'a>(&'a self, cx: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let mut out = Emitter::new(FAMILY, cx.target().target.id.clone());
            match Requester::new(cx) {
                Ok(requester) => {
                    let obs = probe(cx, &requester).await;
                    evaluate(&obs, &mut out);
                }
                Err(reason) => {
                    for id in RULE_IDS {
                        out.inconclusive(id, &reason);
                    }
                }
            }
            out.finish()
        })
    }
}

/// Run every rule on an observation.
pub fn evaluate(obs: &AuthObservation, out: &mut Emitter) {
    unprotected::eval(obs, out);
    verbs::eval(obs, out);
    cleartext::eval(obs, out);
    lockout::eval(obs, out);
    enumeration::eval(obs, out);
    jwt::eval(obs, out);
}

/// One exchange's outcome.
pub type Answer = Result<Exchange, Reason>;

/// A protected (or JWT) route, probed without credentials.
#[derive(Clone, Debug)]
pub struct ProtectedProbe {
    /// Endpoint name.
    pub name: String,
    /// The route's URL.
    pub url: Url,
    /// The route's own method, without credentials, after following redirects that only add
    /// or drop a trailing slash.
    pub anonymous: Answer,
    /// Verb-tampering requests (empty unless the anonymous request was refused).
    pub verbs: Vec<(&'static str, Answer)>,
}

/// How a route answered a request without credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// It served the request (2xx).
    Served,
    /// It refused: 401, 403, or a redirect to another path (a login page).
    Refused(String),
    /// The answer says nothing about access control (404, 405, 429, 5xx...).
    Unclear(String),
}

/// Classify an answer to an anonymous request.
pub fn access(url: &Url, ex: &Exchange) -> Access {
    match ex.status {
        200..=299 => Access::Served,
        401 | 403 => Access::Refused(ex.status.to_string()),
        300..=399 => match ex.location().and_then(|l| url.join(&l).ok()) {
            Some(to) if same_path(url, &to) => {
                Access::Unclear(format!("{} redirects to itself ({to})", ex.status))
            }
            Some(to) => Access::Refused(format!("{} → {}", ex.status, to.path())),
            None => Access::Unclear(format!("{} without a usable Location", ex.status)),
        },
        404 | 410 => Access::Unclear(format!(
            "{}: a wrong path, or a route that hides itself",
            ex.status
        )),
        405 => Access::Unclear("405: the configured method is not allowed".into()),
        429 => Access::Unclear("429: throttled".into()),
        s => Access::Unclear(format!("status {s}")),
    }
}

/// Whether two URLs name the same resource but for a trailing slash.
fn same_path(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin() && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
}

/// A route requested over plain HTTP.
#[derive(Clone, Debug)]
pub struct CleartextProbe {
    /// Endpoint name.
    pub name: String,
    /// Endpoint role.
    pub role: Role,
    /// The plain-HTTP URL.
    pub url: Url,
    /// What happened.
    pub result: Cleartext,
}

/// The plain-HTTP side of a route.
#[derive(Clone, Debug)]
pub enum Cleartext {
    /// Nothing accepted a connection.
    NoListener(Reason),
    /// It answered.
    Answer(Exchange),
    /// It failed after connecting.
    Failed(Reason),
}

/// One enumeration sample.
#[derive(Clone, Debug)]
pub struct Sample {
    /// For the test account (true) or an unknown username (false).
    pub known: bool,
    /// The answer.
    pub answer: Answer,
}

/// A login route.
#[derive(Clone, Debug)]
pub struct LoginProbe {
    /// The endpoint (for its success and failure matchers).
    pub endpoint: Endpoint,
    /// The test account.
    pub username: String,
    /// The login with the real password.
    pub baseline: Answer,
    /// Interleaved failed logins for both classes, in the order sent.
    pub samples: Vec<Sample>,
    /// Why sampling stopped early, if it did.
    pub sampling_stopped: Option<String>,
    /// Failed logins for the test account.
    pub attempts: Vec<Answer>,
    /// The real password again after the failed logins (unless a hard lockout signal made
    /// it pointless): refused or slowed down means a lockout or throttle.
    pub after: Option<Answer>,
    /// The unknown username used.
    pub unknown_user: String,
}

impl LoginProbe {
    /// Whether an answer is a successful login.
    pub fn is_success(&self, ex: &Exchange) -> bool {
        self.endpoint
            .is_success(ex.status, &ex.body, ex.location().as_deref())
    }

    /// Whether the real password logged in.
    pub fn baseline_ok(&self) -> Result<(), Reason> {
        match &self.baseline {
            Ok(ex) if self.is_success(ex) => Ok(()),
            Ok(ex) => Err(Reason::new(
                ReasonKind::Malformed,
                format!(
                    "the configured credentials did not log in at {} (status {}); fix the login endpoint's username, password or success/failure settings",
                    self.endpoint.name, ex.status
                ),
            )),
            Err(r) => Err(r.clone()),
        }
    }

    /// Failed logins the test account received in all (samples and attempts).
    pub fn failures_sent(&self) -> usize {
        self.samples.iter().filter(|s| s.known).count() + self.attempts.len()
    }
}

/// A JWT-protected route.
#[derive(Clone, Debug)]
pub struct JwtProbe {
    /// Endpoint name.
    pub name: String,
    /// The configured token, parsed (or why it is not a JWT).
    pub token: Result<token::Jwt, String>,
    /// The offline search for a weak HMAC secret: found or not, or why it could not run.
    pub cracked: Result<Option<usize>, String>,
    /// With the valid token.
    pub valid: Answer,
    /// Without any token.
    pub anonymous: Answer,
    /// `alg: none` variants tried, in order, stopping at the first accepted.
    pub unsigned: Vec<(&'static str, Answer)>,
    /// With a tampered payload and the original signature.
    pub tampered: Option<Answer>,
    /// With an expired token, and where it came from; or why no expired token could be used.
    pub expired: Result<Option<(&'static str, Answer)>, String>,
}

fn answer(r: Result<Exchange, FetchError>) -> Answer {
    r.map_err(|e| e.reason)
}

/// Send the endpoint's own anonymous request, following redirects that only add or drop a
/// trailing slash (at most two).
async fn anonymous_request(req: &Requester<'_>, endpoint: &Endpoint, url: &Url) -> Answer {
    let mut ex = answer(req.endpoint(endpoint, None, HeaderMap::new(), true).await)?;
    let mut at = url.clone();
    for _ in 0..2 {
        let Some(next) = ex.location().and_then(|l| at.join(&l).ok()) else {
            break;
        };
        if !(300..400).contains(&ex.status) || !same_path(&at, &next) || next == at {
            break;
        }
        ex = answer(
            req.send(
                endpoint.method.clone(),
                &next,
                endpoint.header_map(false),
                None,
            )
            .await,
        )?;
        at = next;
    }
    Ok(ex)
}

/// Probe every configured endpoint of the target.
async fn probe(cx: &Cx<'_>, req: &Requester<'_>) -> AuthObservation {
    let t = &cx.target().target;
    let opts = cx.options::<options::AuthOptions>();
    let mut obs = AuthObservation::default();

    for endpoint in t
        .endpoints
        .iter()
        .filter(|e| matches!(e.role, Role::Protected | Role::Jwt))
    {
        let Ok(url) = req.url(endpoint) else { continue };
        let anonymous = anonymous_request(req, endpoint, &url).await;
        let refused = anonymous
            .as_ref()
            .is_ok_and(|ex| matches!(access(&url, ex), Access::Refused(_)));
        let mut verbs = Vec::new();
        if refused {
            // A route configured with another method is also tried with GET.
            let get = (endpoint.method != reqwest::Method::GET).then_some(("GET", "GET", None));
            for (label, method, override_header) in get.into_iter().chain(VERB_PROBES) {
                let mut headers = endpoint.header_map(false);
                if let Some(h) = override_header {
                    headers.insert(h, HeaderValue::from_static("GET"));
                }
                let method =
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::HEAD);
                let body = (method == reqwest::Method::POST)
                    .then(|| (Vec::new(), "application/x-www-form-urlencoded"));
                verbs.push((label, answer(req.send(method, &url, headers, body).await)));
            }
        }
        obs.protected.push(ProtectedProbe {
            name: endpoint.name.clone(),
            url,
            anonymous,
            verbs,
        });
    }

    let plain_port = t.http_port.unwrap_or(crate::plan::DEFAULT_HTTP_PORT);
    for endpoint in t
        .endpoints
        .iter()
        .filter(|e| matches!(e.role, Role::Login | Role::Protected | Role::Jwt))
    {
        let Ok(mut url) = req.url(endpoint) else {
            continue;
        };
        if url.scheme() == "https" {
            let ok = url.set_scheme("http").is_ok()
                && url
                    .set_port(if plain_port == 80 {
                        None
                    } else {
                        Some(plain_port)
                    })
                    .is_ok();
            if !ok {
                continue;
            }
        }
        let result = match req
            .send(reqwest::Method::GET, &url, HeaderMap::new(), None)
            .await
        {
            Ok(ex) => Cleartext::Answer(ex),
            Err(e) if e.before_connect => Cleartext::NoListener(e.reason),
            Err(e) => Cleartext::Failed(e.reason),
        };
        obs.cleartext.push(CleartextProbe {
            name: endpoint.name.clone(),
            role: endpoint.role,
            url,
            result,
        });
    }

    for endpoint in t.endpoints_with(Role::Jwt) {
        obs.jwt.push(probe_jwt(req, endpoint).await);
    }

    for endpoint in t.endpoints_with(Role::Login) {
        obs.logins
            .push(probe_login(req, endpoint, opts.login(&endpoint.name)).await);
    }
    obs.requests = req.sent();
    obs
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
        h.insert(AUTHORIZATION, v);
    }
    h
}

fn accepted(a: &Answer) -> bool {
    a.as_ref().is_ok_and(|ex| (200..300).contains(&ex.status))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

async fn probe_jwt(req: &Requester<'_>, endpoint: &Endpoint) -> JwtProbe {
    let secret = endpoint
        .token
        .as_ref()
        .and_then(|s| s.get())
        .map(Secret::expose)
        .unwrap_or_default();
    let token = token::Jwt::parse(secret);
    // The weak-secret search is offline: it runs whatever the route does.
    let found = token.as_ref().ok().map(|jwt| jwt.crack(token::wordlist()));
    let cracked = match (&token, &found) {
        (Err(e), _) => Err(e.clone()),
        (Ok(jwt), _) if jwt.hmac().is_none() => Ok(None),
        (Ok(_), Some(Ok(hit))) => Ok(hit.map(|(_, word)| word.len())),
        (Ok(_), Some(Err(e))) => Err(e.clone()),
        (Ok(_), None) => Ok(None),
    };
    let valid = answer(req.endpoint(endpoint, None, bearer(secret), false).await);
    let anonymous = answer(req.endpoint(endpoint, None, HeaderMap::new(), true).await);
    let mut probe = JwtProbe {
        name: endpoint.name.clone(),
        token: token.clone(),
        cracked,
        valid,
        anonymous,
        unsigned: Vec::new(),
        tampered: None,
        expired: Ok(None),
    };
    // The attacks only mean something when the route takes the token and refuses no token.
    let (Ok(jwt), true, false) = (&token, accepted(&probe.valid), accepted(&probe.anonymous))
    else {
        return probe;
    };
    for (variant, keep_signature) in NONE_VARIANTS
        .iter()
        .map(|v| (*v, false))
        .chain([("none", true)])
    {
        let forged = if keep_signature {
            jwt.unsigned_with_signature(variant)
        } else {
            jwt.unsigned(variant)
        };
        let a = answer(req.endpoint(endpoint, None, bearer(&forged), false).await);
        let stop = accepted(&a);
        probe.unsigned.push((
            if keep_signature {
                "none (signature kept)"
            } else {
                variant
            },
            a,
        ));
        if stop {
            break;
        }
    }
    probe.tampered = Some(answer(
        req.endpoint(endpoint, None, bearer(&jwt.tampered()), false)
            .await,
    ));
    let now = unix_now();
    probe.expired = match (
        found.and_then(Result::ok).flatten(),
        jwt.hmac(),
        endpoint.expired_token.as_ref().and_then(|s| s.get()),
    ) {
        (Some((_, word)), Some(alg), _) => {
            let forged = jwt.forge_expired(alg, word.as_bytes(), now);
            Ok(Some((
                "forged with the cracked secret",
                answer(req.endpoint(endpoint, None, bearer(&forged), false).await),
            )))
        }
        (_, _, Some(expired)) => match token::Jwt::parse(expired.expose()).map(|t| t.expiry()) {
            Ok(Some(exp)) if exp < now => Ok(Some((
                "expired_token from the configuration",
                answer(
                    req.endpoint(endpoint, None, bearer(expired.expose()), false)
                        .await,
                ),
            ))),
            Ok(Some(exp)) => Err(format!(
                "the configured expired_token is not expired (exp {exp} is in the future)"
            )),
            Ok(None) => Err("the configured expired_token has no exp claim".into()),
            Err(e) => Err(format!("the configured expired_token is not a JWT: {e}")),
        },
        _ => Ok(None),
    };
    probe
}

/// Failed logins for the test account between two real logins during sampling: the real
/// login resets the failure counter of most lockout schemes, so sampling does not lock the
/// account before the lockout test.
pub const RESET_EVERY: usize = 3;

/// The longest the enumeration sampling waits out Retry-After answers in all.
pub const MAX_SAMPLING_WAIT: Duration = Duration::from_secs(20);

/// How long a 429 or 503 asks the client to wait (Retry-After in seconds, 1 to 10).
fn retry_after(ex: &Exchange) -> Option<Duration> {
    if !matches!(ex.status, 429 | 503) {
        return None;
    }
    let secs: u64 = ex
        .headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (1..=10).contains(&secs).then(|| Duration::from_secs(secs))
}

fn timed_out(a: &Answer) -> bool {
    matches!(a, Err(r) if r.kind == ReasonKind::Timeout)
}

async fn probe_login(
    req: &Requester<'_>,
    endpoint: &Endpoint,
    opts: options::LoginOptions,
) -> LoginProbe {
    let username = endpoint.username.clone().unwrap_or_default();
    let password = endpoint
        .password
        .as_ref()
        .and_then(|s| s.get())
        .map(Secret::expose)
        .unwrap_or_default();
    let unknown_user = endpoint.unknown_username(&super::behaviour::random_hex(6));
    let login = |user: &str, pass: &str| {
        let (user, pass) = (user.to_string(), pass.to_string());
        async move {
            answer(
                req.endpoint(endpoint, Some((&user, &pass)), HeaderMap::new(), false)
                    .await,
            )
        }
    };
    let baseline = login(&username, password).await;
    let mut probe = LoginProbe {
        endpoint: endpoint.clone(),
        username: username.clone(),
        baseline,
        samples: Vec::new(),
        sampling_stopped: None,
        attempts: Vec::new(),
        after: None,
        unknown_user: unknown_user.clone(),
    };
    if probe.baseline_ok().is_err() {
        return probe;
    }
    // Interleave the two classes, alternating which goes first, so drift hits both alike;
    // a real login every few failures keeps the account from locking while sampling.
    let mut known_since_reset = 0;
    let mut waited = Duration::ZERO;
    'rounds: for round in 0..opts.samples {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for known in order {
            if known && known_since_reset == RESET_EVERY {
                let mut reset = login(&username, password).await;
                while let Some(wait) = reset
                    .as_ref()
                    .ok()
                    .and_then(retry_after)
                    .filter(|w| waited + *w <= MAX_SAMPLING_WAIT)
                {
                    // The facade holds the next request until the Retry-After has passed.
                    waited += wait;
                    reset = login(&username, password).await;
                }
                if !reset.as_ref().is_ok_and(|ex| probe.is_success(ex)) {
                    probe.sampling_stopped = Some(
                        "the real password stopped working during sampling (the account locked)"
                            .into(),
                    );
                    break 'rounds;
                }
                known_since_reset = 0;
            }
            let user = if known {
                username.as_str()
            } else {
                unknown_user.as_str()
            };
            let mut a = login(user, &wrong_password()).await;
            // A throttle that says when to come back is waited out (up to a total budget), so a
            // well-defended login can still be measured; other signals end the sampling.
            while let Some(wait) = a
                .as_ref()
                .ok()
                .and_then(retry_after)
                .filter(|w| waited + *w <= MAX_SAMPLING_WAIT)
            {
                // The facade holds the next request until the Retry-After has passed.
                waited += wait;
                a = login(user, &wrong_password()).await;
            }
            known_since_reset += usize::from(known);
            let stop = timed_out(&a);
            probe.samples.push(Sample { known, answer: a });
            if stop {
                probe.sampling_stopped = Some("a login timed out".into());
                break 'rounds;
            }
        }
    }
    // The lockout test: failed logins until a signal, a timeout, or `attempts`.
    for _ in 0..opts.attempts {
        let a = login(&username, &wrong_password()).await;
        let stop = timed_out(&a);
        probe.attempts.push(a);
        if stop || lockout::signal(&probe.attempts).is_some() {
            break;
        }
    }
    // A hard signal settles it; anything else is confirmed (or not) by the real password.
    if !matches!(
        lockout::signal(&probe.attempts),
        Some((_, lockout::Signal::Hard(_)))
    ) {
        probe.after = Some(login(&username, password).await);
    }
    probe
}

/// Everything the auth rules judge.
#[derive(Clone, Debug, Default)]
pub struct AuthObservation {
    /// Protected and JWT routes without credentials.
    pub protected: Vec<ProtectedProbe>,
    /// Routes over plain HTTP.
    pub cleartext: Vec<CleartextProbe>,
    /// Login routes.
    pub logins: Vec<LoginProbe>,
    /// JWT routes.
    pub jwt: Vec<JwtProbe>,
    /// Requests sent by the whole probe.
    pub requests: u32,
}

/// Words in a response body that say the account or client is being held back. They count
/// only when the first failed login did not already contain them (many login pages mention
/// "locked" accounts or load a CAPTCHA script on every answer).
pub const LOCKOUT_WORDS: &[&str] = &[
    "locked",
    "lockout",
    "too many",
    "try again later",
    "temporarily",
    "suspended",
    "blocked",
    "captcha",
    "rate limit",
];

/// A hard "held back" answer: 429, 423, or a Retry-After header.
pub fn throttled(ex: &Exchange) -> Option<String> {
    if matches!(ex.status, 429 | 423) {
        return Some(format!("status {}", ex.status));
    }
    ex.headers
        .contains_key("retry-after")
        .then(|| "Retry-After header".to_string())
}

/// One route's judgement for a rule; [`judge`] folds them into one result.
pub use crate::engine::Verdict;

/// Fold per-route verdicts into one result with one finding per bad route: fail if any route
/// is bad, else inconclusive if any is undecided, else pass if any is good, else skipped. The
/// evidence lists every route, and every route that did not fail is listed with its verdict.
pub fn judge(out: &mut Emitter, id: &'static str, verdicts: &[(String, Verdict)], none: &str) {
    let verdicts: Vec<(crate::model::Subject, Verdict)> = verdicts
        .iter()
        .map(|(name, v)| (crate::model::Subject::endpoint(name), v.clone()))
        .collect();
    out.judge(id, &verdicts, "routes", none);
}

/// Judge every login route with `verdict` and fold the verdicts into one outcome.
fn judge_logins(
    obs: &AuthObservation,
    out: &mut Emitter,
    id: &'static str,
    verdict: fn(&LoginProbe) -> Verdict,
) {
    let verdicts: Vec<(String, Verdict)> = obs
        .logins
        .iter()
        .map(|p| (p.endpoint.name.clone(), verdict(p)))
        .collect();
    judge(out, id, &verdicts, "no login endpoint is configured");
}

/// The verdict when a wrong password got what looks like a successful login.
fn wrong_password_accepted() -> Verdict {
    Verdict::Undecided(Reason::new(
        ReasonKind::Malformed,
        "a wrong password looked like a successful login; set success_status / failure_status for this endpoint",
    ))
}

/// `status` and, for redirects, where to.
pub fn describe(ex: &Exchange) -> String {
    match ex.headers.get("location") {
        Some(l) if (300..400).contains(&ex.status) => {
            format!(
                "{} → {}",
                ex.status,
                crate::model::one_line(&String::from_utf8_lossy(l.as_bytes()), 120)
            )
        }
        _ => ex.status.to_string(),
    }
}
