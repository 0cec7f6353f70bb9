//! What the behaviour families (`ratelimit`, `auth`) share: a request sender that counts what
//! it sends, holds a per-host connection slot per request and obeys `--max-rps`, and helpers
//! to build endpoint requests.

use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use url::Url;

use crate::endpoint::Endpoint;
use crate::engine::net::{self, Exchange, FetchError};
use crate::engine::{ScanCx, ScanTarget};
use crate::model::{Reason, ReasonKind};

/// Sends the behaviour probes' requests for one target.
#[derive(Debug)]
pub struct Requester<'a> {
    cx: &'a ScanCx,
    client: reqwest::Client,
    /// The target's origin, endpoints are joined to it.
    pub base: Url,
    sent: AtomicU32,
    /// The target's credentials, scrubbed from every answer before anything reads it.
    secrets: Vec<String>,
}

impl<'a> Requester<'a> {
    /// A requester for `target` (its HTTP origin).
    pub fn new(cx: &'a ScanCx, target: &ScanTarget) -> Result<Requester<'a>, Reason> {
        let base = target.target.origin_url().ok_or_else(|| {
            Reason::new(ReasonKind::Bug, "endpoints need a target with an HTTP URL")
        })?;
        let mut opts = cx.http_options(target);
        // Bursts reuse connections; the per-host limit still bounds how many are open.
        opts.pool_idle = cx.settings.per_host;
        let secrets = target
            .target
            .endpoints
            .iter()
            .flat_map(|e| {
                e.password
                    .iter()
                    .chain(e.token.iter())
                    .chain(e.expired_token.iter())
                    .chain(e.secret_headers.iter().map(|(_, s)| s))
            })
            .filter_map(|s| s.get().map(|v| v.expose().to_string()))
            .collect();
        Ok(Requester {
            cx,
            client: net::http_client(&opts)?,
            base,
            sent: AtomicU32::new(0),
            secrets,
        })
    }

    /// Requests sent so far.
    pub fn sent(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The URL of an endpoint.
    pub fn url(&self, endpoint: &Endpoint) -> Result<Url, Reason> {
        endpoint
            .url(&self.base)
            .map_err(|m| Reason::new(ReasonKind::Bug, m))
    }

    /// Send one request (under the per-host limit and `--max-rps`), reading the body up to
    /// [`net::BODY_CAP`].
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Exchange, FetchError> {
        let _permit = self
            .cx
            .limits
            .connection(&self.cx.host_key(url.host_str().unwrap_or_default()))
            .await;
        self.cx.pace().await;
        self.sent.fetch_add(1, Ordering::Relaxed);
        let mut headers = headers;
        let body = body.map(|(bytes, content_type)| {
            if let Ok(v) = HeaderValue::from_str(content_type) {
                headers.insert(CONTENT_TYPE, v);
            }
            bytes
        });
        let mut answer = net::exchange(
            &self.client,
            method,
            url,
            headers,
            body,
            self.cx.settings.timeout,
            net::BODY_CAP,
        )
        .await?;
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        answer.scrub(&secrets);
        Ok(answer)
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
