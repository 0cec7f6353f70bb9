//! What the behaviour families (`ratelimit`, `auth`, and the headers family's login) share: a
//! request sender for a target's endpoints, over the engine's facade (which holds the per-host
//! slot, obeys `--max-rps` and the host-wide back-off, counts against the family's budget, and
//! scrubs the target's credentials from every answer), and helpers to build endpoint requests.

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use url::Url;

use crate::endpoint::Endpoint;
use crate::engine::net::{self, Exchange, FetchError};
use crate::engine::{Cx, HttpRequest};
use crate::model::{Reason, ReasonKind};

/// Sends the behaviour probes' requests for one target.
#[derive(Debug)]
pub struct Requester<'a> {
    cx: &'a Cx<'a>,
    /// The target's origin, endpoints are joined to it.
    pub base: Url,
    /// Requests measure the host's rate limit (the bursts): a back-off without Retry-After
    /// does not hold them.
    measuring: bool,
}

impl<'a> Requester<'a> {
    /// A requester for the target of `cx` (its HTTP origin).
    pub fn new(cx: &'a Cx<'a>) -> Result<Requester<'a>, Reason> {
        let base = cx.target().target.origin_url().ok_or_else(|| {
            Reason::new(ReasonKind::Bug, "endpoints need a target with an HTTP URL")
        })?;
        Ok(Requester {
            cx,
            base,
            measuring: false,
        })
    }

    /// The same requester, for requests that measure the rate limit.
    pub fn measuring(mut self) -> Requester<'a> {
        self.measuring = true;
        self
    }

    /// Requests sent so far by this family on this target.
    pub fn sent(&self) -> u32 {
        self.cx.sent()
    }

    /// The URL of an endpoint.
    pub fn url(&self, endpoint: &Endpoint) -> Result<Url, Reason> {
        endpoint
            .url(&self.base)
            .map_err(|m| Reason::new(ReasonKind::Bug, m))
    }

    /// Send one request, reading the body up to [`net::BODY_CAP`].
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Exchange, FetchError> {
        let mut headers = headers;
        let body = body.map(|(bytes, content_type)| {
            if let Ok(v) = HeaderValue::from_str(content_type) {
                headers.insert(CONTENT_TYPE, v);
            }
            bytes
        });
        self.cx
            .http(HttpRequest {
                method,
                url: url.clone(),
                headers,
                body,
                body_cap: net::BODY_CAP,
                measuring: self.measuring,
            })
            .await
    }

    /// Send the endpoint's own request: its method and headers, a login body when
    /// `credentials` are given, and its secret headers unless `anonymous`.
    pub async fn endpoint(
        &self,
        endpoint: &Endpoint,
        credentials: Option<(&str, &str)>,
        extra: HeaderMap,
        anonymous: bool,
    ) -> Result<Exchange, FetchError> {
        let url = self.url(endpoint).map_err(|reason| FetchError {
            reason,
            before_connect: true,
        })?;
        let mut headers = endpoint.header_map(!anonymous);
        headers.extend(extra);
        let body = credentials.map(|(u, p)| endpoint.login_body(u, p));
        self.send(endpoint.method.clone(), &url, headers, body)
            .await
    }
}

/// `n` random bytes as lower-case hex (for probe usernames and wrong passwords).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // The system RNG failing is not a reason to stop a scan; fall back to the clock.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        return format!("{nanos:x}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A password that is not the account's.
pub fn wrong_password() -> String {
    format!("Wrong-{}!", random_hex(8))
}
