//! One HTTP client per scan. Every host of the scan resolves through one shared map (the
//! addresses the connectivity phase reached), so the cost of a scan grows with its targets,
//! not with their square. The rare request whose host must go elsewhere (a `--resolve` entry
//! for exactly that host and port, or two targets sharing a name at different addresses) gets
//! a client of its own, built once and kept.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::model::{Reason, ReasonKind};
use crate::plan::Proxy;

/// Resolves a scan's host names from the addresses the scan already reached; any other name
/// is refused (secgate never looks a host up behind the scan's back).
#[derive(Debug)]
struct ScopeResolver {
    addrs: Arc<HashMap<String, IpAddr>>,
}

impl reqwest::dns::Resolve for ScopeResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let found = self
            .addrs
            .get(&name.as_str().trim_end_matches('.').to_ascii_lowercase())
            .copied();
        let host = name.as_str().to_string();
        Box::pin(async move {
            match found {
                Some(ip) => {
                    let addrs: reqwest::dns::Addrs =
                        Box::new(std::iter::once(SocketAddr::new(ip, 0)));
                    Ok(addrs)
                }
                None => Err(format!("{host} is not a host this scan reached").into()),
            }
        })
    }
}

/// The scan's HTTP clients.
#[derive(Debug)]
pub struct HttpPool {
    base: reqwest::Client,
    special: Mutex<HashMap<(String, IpAddr), reqwest::Client>>,
    addrs: Arc<HashMap<String, IpAddr>>,
    timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
    idle: usize,
    proxy: Option<Proxy>,
}

impl HttpPool {
    /// The pool for a scan whose hosts resolve as `addrs`.
    pub fn new(
        addrs: HashMap<String, IpAddr>,
        timeout: Duration,
        tls: Arc<rustls::ClientConfig>,
        idle: usize,
        proxy: Option<Proxy>,
    ) -> Result<HttpPool, Reason> {
        let addrs = Arc::new(addrs);
        let base = build(&addrs, timeout, &tls, idle, None, proxy.as_ref())?;
        Ok(HttpPool {
            base,
            special: Mutex::new(HashMap::new()),
            addrs,
            timeout,
            tls,
            idle,
            proxy,
        })
    }

    /// Where the scan resolves `host` (already normalised).
    pub fn address_of(&self, host: &str) -> Option<IpAddr> {
        self.addrs.get(host).copied()
    }

    /// The client that reaches `host` at `ip` (`None`: wherever the scan resolves it).
    pub fn client(&self, host: &str, ip: Option<IpAddr>) -> Result<reqwest::Client, Reason> {
        let Some(ip) = ip.filter(|ip| self.addrs.get(host) != Some(ip)) else {
            return Ok(self.base.clone());
        };
        let key = (host.to_string(), ip);
        let mut special = match self.special.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(c) = special.get(&key) {
            return Ok(c.clone());
        }
        let c = build(
            &self.addrs,
            self.timeout,
            &self.tls,
            self.idle,
            Some((host, SocketAddr::new(ip, 0))),
            self.proxy.as_ref(),
        )?;
        special.insert(key, c.clone());
        Ok(c)
    }
}

/// How long an idle connection stays in the pool.
const POOL_IDLE: Duration = Duration::from_millis(250);

/// An HTTP/1.1 client: no redirects, no decompression (and no Accept-Encoding of its own), bounded headers, and no proxy but the
/// one `--proxy` names (never one from the environment unless `--proxy env`).
fn build(
    addrs: &Arc<HashMap<String, IpAddr>>,
    timeout: Duration,
    tls: &Arc<rustls::ClientConfig>,
    idle: usize,
    pin: Option<(&str, SocketAddr)>,
    proxy: Option<&Proxy>,
) -> Result<reqwest::Client, Reason> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured((**tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        // Clears every proxy, including HTTP_PROXY / HTTPS_PROXY from the environment.
        .no_proxy()
        .http1_only()
        // Never decode a body: the headers family judges Content-Encoding and the compressed
        // bytes themselves (BREACH), and a decoder would also undo the body caps. These are
        // no-ops unless some crate in the tree turns reqwest's decoders on.
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .no_zstd()
        .http1_max_headers(super::net::MAX_RESPONSE_HEADERS)
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .timeout(super::net::request_deadline(timeout))
        .pool_max_idle_per_host(idle)
        // A scan moves from target to target: a family's requests to one target follow each
        // other at once, and a connection idle for a quarter of a second is not reused; at
        // 5,000 targets a one-second timeout kept about a thousand idle TLS connections of
        // tens of KB each (peak RSS 205 MB; 151 MB at 250 ms).
        .pool_idle_timeout(POOL_IDLE)
        .user_agent(super::net::USER_AGENT)
        .dns_resolver(Arc::new(ScopeResolver {
            addrs: addrs.clone(),
        }));
    if let Some((host, addr)) = pin {
        builder = builder.resolve(host, addr);
    }
    if let Some(p) = proxy {
        let bug = |e: reqwest::Error| Reason::new(ReasonKind::Bug, format!("the proxy: {e}"));
        let no_proxy = p
            .no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string);
        // https:// URLs go through an HTTP CONNECT tunnel, http:// ones as proxy requests.
        if let Some(u) = &p.https {
            builder = builder.proxy(
                reqwest::Proxy::https(u.as_str())
                    .map_err(bug)?
                    .no_proxy(no_proxy.clone()),
            );
        }
        if let Some(u) = &p.http {
            builder = builder.proxy(
                reqwest::Proxy::http(u.as_str())
                    .map_err(bug)?
                    .no_proxy(no_proxy),
            );
        }
    }
    builder
        .build()
        .map_err(|e| Reason::new(ReasonKind::Bug, format!("building the HTTP client: {e}")))
}
