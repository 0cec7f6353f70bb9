//! Request templates and their weighted mix.
//!
//! A load run sends one request template, or several mixed by weight: the family's
//! `requests = [{ name, method, path, headers, body, weight }, ...]` (in `[checks.load]` or a
//! target's `load = { ... }`), and every `[[target.endpoint]]` of the target that sets
//! `weight` (its method, path and plain headers; the load family sends no credentials, so a
//! login or jwt endpoint cannot join). Without either, the run sends the family's single
//! request (`method`, `path`, `headers`, `body`) as before.
//!
//! **Deterministic choice.** Request `i` of a phase takes template `cycle[i % W]`, where the
//! cycle of length `W` (the sum of the weights) is laid out once by smooth weighted
//! round-robin (nginx's `ngx_http_upstream_get_peer`): every template appears exactly
//! `weight` times per cycle, spread out rather than in blocks. So any `n` requests hold each
//! template's share `weight / W` to within one cycle's worth of requests at most (less than
//! `weight` requests), whatever the order the connections claim them in, and two runs of
//! the same plan send the same sequence.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Deserialize;
use toml::Spanned;

use super::generator::{ErrorKind, RequestSpec};
use super::options::LoadMethod;
use crate::options::{OptionError, value};

/// Templates in one mix, at most.
pub const MAX_TEMPLATES: usize = 32;
/// The largest weight of one template.
pub const MAX_WEIGHT: i64 = 1000;

/// One template as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `requests` entry of the family's options.
    Inline {
        /// Method.
        method: LoadMethod,
        /// Path and query.
        path: String,
        /// Headers of this template (over the family's `headers`).
        headers: Vec<(String, String)>,
        /// Body.
        body: Option<String>,
    },
    /// A `[[target.endpoint]]` with `weight`, by name: its method, path and plain headers.
    Endpoint,
}

/// One template of the mix: where it comes from, its name in reports, and its weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Name in reports (the endpoint's name, or the entry's `name`, or its path).
    pub name: String,
    /// What it sends.
    pub source: Source,
    /// Its weight, 1 to [`MAX_WEIGHT`].
    pub weight: u32,
}

/// The raw keys of one `requests` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestKeys {
    name: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
    body: Option<Spanned<String>>,
    weight: Option<Spanned<i64>>,
}

/// The load family's key of a `[[target.endpoint]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointKeys {
    /// Its weight in the mix; unset, the endpoint is not part of the load run.
    pub weight: Option<Spanned<i64>>,
}

/// Parse a method name (GET, HEAD or POST).
pub fn method(v: &Spanned<String>, field: &str) -> Result<LoadMethod, OptionError> {
    match v.get_ref().to_ascii_uppercase().as_str() {
        "GET" => Ok(LoadMethod::Get),
        "HEAD" => Ok(LoadMethod::Head),
        "POST" => Ok(LoadMethod::Post),
        other => Err(OptionError::at(
            v.span(),
            format!("{field}'{other}' is not a load method (GET, HEAD or POST)"),
        )),
    }
}

/// Check a path on the target.
pub fn path(v: &Spanned<String>, field: &str) -> Result<String, OptionError> {
    let p = v.get_ref();
    if !p.starts_with('/')
        || p.starts_with("//")
        || p.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
        || p.parse::<hyper::Uri>().is_err()
    {
        return Err(OptionError::at(
            v.span(),
            format!(
                "{field}'{p}' is not a path on the target (it must start with a single '/', without spaces or characters a URL cannot hold: percent-encode them)"
            ),
        ));
    }
    Ok(p.clone())
}

/// Check a header table.
pub fn headers(
    h: &BTreeMap<String, Spanned<String>>,
    field: &str,
) -> Result<Vec<(String, String)>, OptionError> {
    let mut out = Vec::new();
    for (name, v) in h {
        if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || hyper::header::HeaderValue::from_str(v.get_ref()).is_err()
        {
            return Err(OptionError::at(
                v.span(),
                format!("{field}'{name}' is not a valid header name and value"),
            ));
        }
        out.push((name.clone(), v.get_ref().clone()));
    }
    Ok(out)
}

/// A weight: 1 to [`MAX_WEIGHT`].
pub fn weight(v: &Spanned<i64>, field: &str) -> Result<u32, OptionError> {
    value::int_as(v, 1, MAX_WEIGHT, " (a template's share of the mix)")
        .map_err(|e| OptionError::at(e.span, format!("{field}{}", e.message)))
}

/// Validate the `requests` entries (`at`: the span of the list, for an empty one).
pub fn entries(
    list: &[Spanned<RequestKeys>],
    at: std::ops::Range<usize>,
) -> Result<Vec<Entry>, OptionError> {
    if list.is_empty() {
        return Err(OptionError::at(
            at,
            "requests: must hold at least one entry (or leave it out for the single request)",
        ));
    }
    let mut out = Vec::new();
    for (i, spanned) in list.iter().enumerate() {
        let k = spanned.get_ref();
        let field = |f: &str| format!("requests[{i}].{f}: ");
        let path = match &k.path {
            Some(p) => path(p, &field("path"))?,
            None => {
                return Err(OptionError::at(
                    spanned.span(),
                    format!("requests[{i}]: missing key `path`"),
                ));
            }
        };
        let weight = match &k.weight {
            Some(w) => weight(w, &field("weight"))?,
            None => 1,
        };
        let method = match &k.method {
            Some(m) => method(m, &field("method"))?,
            None => LoadMethod::Get,
        };
        let headers = match &k.headers {
            Some(h) => headers(h, &field("headers"))?,
            None => Vec::new(),
        };
        let name = match &k.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(OptionError::at(
                    n.span(),
                    format!("{}must not be empty", field("name")),
                ));
            }
            Some(n) => n.get_ref().clone(),
            None => path.clone(),
        };
        out.push(Entry {
            name,
            source: Source::Inline {
                method,
                path,
                headers,
                body: k.body.as_ref().map(|b| b.get_ref().clone()),
            },
            weight,
        });
    }
    Ok(out)
}

/// Check a whole mix: a name used twice, or too many templates (`at`: where to point).
pub fn check(mix: &[Entry], at: std::ops::Range<usize>) -> Result<(), OptionError> {
    if mix.len() > MAX_TEMPLATES {
        return Err(OptionError::at(
            at,
            format!(
                "the mix has {} request templates, more than {MAX_TEMPLATES}",
                mix.len()
            ),
        ));
    }
    for (i, e) in mix.iter().enumerate() {
        if mix.iter().take(i).any(|x| x.name == e.name) {
            return Err(OptionError::at(
                at,
                format!(
                    "two request templates are named '{}': give each a distinct `name`",
                    e.name
                ),
            ));
        }
    }
    Ok(())
}

/// The templates of a run, resolved, with the order they are sent in.
#[derive(Clone, Debug)]
pub struct Mix {
    /// The templates, each with its name and weight.
    pub templates: Vec<(String, u32, RequestSpec)>,
    /// Template index of each request of one cycle.
    cycle: Vec<u8>,
}

impl Mix {
    /// A mix of `templates` (at most [`MAX_TEMPLATES`], weights at least 1).
    pub fn new(templates: Vec<(String, u32, RequestSpec)>) -> Mix {
        let weights: Vec<u32> = templates.iter().map(|t| t.1).collect();
        Mix {
            cycle: cycle(&weights),
            templates,
        }
    }

    /// The template of request `i`: its index and spec (none for an empty mix).
    pub fn pick(&self, i: u64) -> Option<(usize, &RequestSpec)> {
        let len = u64::try_from(self.cycle.len()).ok()?;
        let at = usize::try_from(i.checked_rem(len)?).ok()?;
        let k = usize::from(*self.cycle.get(at)?);
        self.templates.get(k).map(|t| (k, &t.2))
    }

    /// How many of the first `n` requests go to each template (for the plan).
    pub fn counts(&self, n: u64) -> Vec<u64> {
        let mut out = vec![0u64; self.templates.len()];
        let len = u64::try_from(self.cycle.len()).unwrap_or(1).max(1);
        let (full, rest) = (n / len, n % len);
        for (at, k) in self.cycle.iter().enumerate() {
            if let Some(c) = out.get_mut(usize::from(*k)) {
                *c += full + u64::from(u64::try_from(at).unwrap_or(u64::MAX) < rest);
            }
        }
        out
    }
}

/// One cycle of smooth weighted round-robin over `weights`: each index appears `weight`
/// times, interleaved (at most 255 templates; [`MAX_TEMPLATES`] is far under).
pub fn cycle(weights: &[u32]) -> Vec<u8> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best: Option<usize> = None;
        for (k, w) in weights.iter().enumerate() {
            if let Some(c) = current.get_mut(k) {
                *c += i64::from(*w);
            }
            let better = match best {
                None => true,
                Some(b) => current.get(k) > current.get(b),
            };
            if better {
                best = Some(k);
            }
        }
        if let Some(b) = best
            && let Some(c) = current.get_mut(b)
        {
            *c -= total;
            out.push(u8::try_from(b).unwrap_or(u8::MAX));
        }
    }
    out
}

/// One template, resolved against the target's endpoints: what a request of it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// Name in reports.
    pub name: String,
    /// Weight in the mix.
    pub weight: u32,
    /// Method.
    pub method: hyper::Method,
    /// Path and query.
    pub path: String,
    /// Headers (the family's, then the template's own over them).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<String>,
}

impl Template {
    /// The request spec of this template, with `host` as its `Host` header.
    pub fn spec(&self, host: &str) -> RequestSpec {
        let headers = self
            .headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    hyper::header::HeaderName::from_bytes(k.as_bytes()).ok()?,
                    hyper::header::HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        RequestSpec::new(
            self.method.clone(),
            self.path.clone(),
            host.to_string(),
            headers,
            self.body
                .clone()
                .map(bytes::Bytes::from)
                .unwrap_or_default(),
        )
    }
}

/// The templates of a run with options `o` on a target with `endpoints`, whose own path
/// (and query) is `target_path`: the mix, or the single request when there is none.
pub fn resolve(
    o: &super::options::LoadOptions,
    endpoints: &[crate::endpoint::Endpoint],
    target_path: &str,
) -> Result<Vec<Template>, String> {
    let merge = |own: &[(String, String)]| {
        let mut h: Vec<(String, String)> = o
            .headers
            .iter()
            .filter(|(k, _)| !own.iter().any(|(o, _)| o.eq_ignore_ascii_case(k)))
            .cloned()
            .collect();
        h.extend(own.iter().cloned());
        h
    };
    if o.mix.is_empty() {
        return Ok(vec![Template {
            name: o.path.clone().unwrap_or_else(|| target_path.to_string()),
            weight: 1,
            method: o.method.as_method(),
            path: o.path.clone().unwrap_or_else(|| target_path.to_string()),
            headers: o.headers.clone(),
            body: o.body.clone(),
        }]);
    }
    o.mix
        .iter()
        .map(|e| match &e.source {
            Source::Inline {
                method,
                path,
                headers,
                body,
            } => Ok(Template {
                name: e.name.clone(),
                weight: e.weight,
                method: method.as_method(),
                path: path.clone(),
                headers: merge(headers),
                body: body.clone(),
            }),
            Source::Endpoint => {
                let ep = endpoints
                    .iter()
                    .find(|x| x.name == e.name)
                    .ok_or_else(|| format!("the target has no endpoint named '{}'", e.name))?;
                Ok(Template {
                    name: e.name.clone(),
                    weight: e.weight,
                    method: hyper::Method::from_bytes(ep.method.as_str().as_bytes())
                        .map_err(|_| format!("endpoint '{}': unusable method", e.name))?,
                    path: ep.path.clone(),
                    headers: merge(&ep.headers),
                    body: None,
                })
            }
        })
        .collect()
}

/// What one template measured in a phase.
#[derive(Clone, Debug)]
pub struct TemplateStats {
    /// Answers with a status under 400.
    pub ok: u64,
    /// Failed requests by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Latency from the scheduled send time, µs (2 significant digits: a breakdown, not
    /// the judged figure).
    pub latency: Histogram<u32>,
}

impl TemplateStats {
    fn new() -> TemplateStats {
        TemplateStats {
            ok: 0,
            errors: BTreeMap::new(),
            latency: small_histogram(),
        }
    }

    /// Requests with an outcome.
    pub fn completed(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }
}

/// A histogram of µs with 2 significant digits (about 10 KiB), 1 µs to 60 s.
pub fn small_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 60_000_000, 2)
        .or_else(|_| Histogram::new(2))
        .unwrap_or_else(|_| unreachable_histogram())
}

#[allow(
    clippy::panic,
    reason = "2 significant digits is always a valid histogram"
)]
fn unreachable_histogram() -> Histogram<u32> {
    panic!("hdrhistogram rejected 2 significant digits")
}

/// Per-template figures of one phase, shared by its connections.
#[derive(Debug)]
pub struct Recorder {
    templates: Vec<Mutex<TemplateStats>>,
}

impl Recorder {
    /// A recorder for `n` templates (none kept for a single template: the phase's own
    /// figures are its figures).
    pub fn new(n: usize) -> Recorder {
        let n = if n > 1 { n } else { 0 };
        Recorder {
            templates: (0..n).map(|_| Mutex::new(TemplateStats::new())).collect(),
        }
    }

    /// Record the outcome of one request of template `k`.
    pub fn record(&self, k: usize, latency: Option<Duration>, outcome: Result<(), ErrorKind>) {
        let Some(slot) = self.templates.get(k) else {
            return;
        };
        let mut st = match slot.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(l) = latency {
            st.latency
                .saturating_record(u64::try_from(l.as_micros()).unwrap_or(u64::MAX).max(1));
        }
        match outcome {
            Ok(()) => st.ok += 1,
            Err(kind) => *st.errors.entry(kind).or_default() += 1,
        }
    }

    /// The figures, one per template (empty for a single template).
    pub fn finish(&self) -> Vec<TemplateStats> {
        self.templates
            .iter()
            .map(|m| match m.lock() {
                Ok(g) => g.clone(),
                Err(p) => p.into_inner().clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_holds_each_weight_interleaved() {
        let c = cycle(&[5, 1, 1]);
        assert_eq!(c, vec![0, 0, 1, 0, 2, 0, 0]);
        for weights in [vec![3, 1], vec![1], vec![7, 2, 1, 1000], vec![1, 1, 1]] {
            let c = cycle(&weights);
            for (k, w) in weights.iter().enumerate() {
                let n = c.iter().filter(|x| usize::from(**x) == k).count();
                assert_eq!(n, *w as usize, "{weights:?}");
            }
        }
    }

    fn spec(path: &str) -> RequestSpec {
        RequestSpec::new(
            hyper::Method::GET,
            path.into(),
            "h".into(),
            Vec::new(),
            bytes::Bytes::new(),
        )
    }

    #[test]
    fn picks_follow_the_weights_from_any_start() {
        let mix = Mix::new(vec![
            ("a".into(), 3, spec("/a")),
            ("b".into(), 1, spec("/b")),
        ]);
        let mut seen = [0u64; 2];
        for i in 0..1000 {
            seen[mix.pick(i).unwrap().0] += 1;
        }
        assert_eq!(seen, [750, 250]);
        assert_eq!(mix.counts(1000), vec![750, 250]);
        assert_eq!(mix.counts(6), vec![5, 1]);
        // A window that does not start at 0 still holds the shares to within one weight.
        let mut seen = [0u64; 2];
        for i in 1..=10 {
            seen[mix.pick(i).unwrap().0] += 1;
        }
        assert!(
            seen[0].abs_diff(7) <= 1 && seen[1].abs_diff(3) <= 1,
            "{seen:?}"
        );
        assert!(Mix::new(Vec::new()).pick(3).is_none());
    }
}
