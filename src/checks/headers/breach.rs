//! BREACH (CVE-2013-3587): an HTTPS response compressed with HTTP compression on a page that
//! reflects input or carries a secret.
//!
//! The probe sends the final HTTPS URL once more with `Accept-Encoding: gzip` and a random
//! marker in the query string ([`BreachProbe`]); this rule decompresses the body itself (the
//! scan's HTTP client never decodes, so it sees `Content-Encoding` and the bytes on the wire),
//! at most [`DECODED_CAP`] bytes, streaming, and looks for the marker and for CSRF-token-like
//! fields, and reads the Set-Cookie headers for secret-looking cookies.

use std::collections::BTreeSet;
use std::io::Read;

use reqwest::header::HeaderMap;
use url::Url;

use super::{HttpObservation, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Reason, ReasonKind};

pub(super) const BREACH: &str = "http.compression.breach";

pub(super) const RULE: Rule = Rule {
    ids: &[BREACH],
    eval,
};

/// The most compressed body bytes the probe reads.
pub const BODY_CAP: usize = 128 * 1024;

/// The most decompressed bytes the rule looks at (a gzip bomb stops here).
pub const DECODED_CAP: usize = 4 * 1024 * 1024;

/// The query parameter that carries the marker.
pub const MARKER_PARAM: &str = "q";

/// What the BREACH probe sent and got back.
#[derive(Clone, Debug)]
pub struct BreachProbe {
    /// The URL requested (the final URL with the marker added to its query).
    pub url: Url,
    /// The random marker in the query string (lower-case hex, ours, not a secret).
    pub marker: String,
    /// The answer, or why there is none.
    pub response: Result<BreachResponse, Reason>,
}

/// The answer to the BREACH probe, body as sent on the wire.
#[derive(Clone, Debug)]
pub struct BreachResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body as sent (still compressed), at most [`BODY_CAP`] bytes.
    pub body: Vec<u8>,
    /// The body was longer than [`BODY_CAP`].
    pub truncated: bool,
}

/// The probe's URL: `final_url` with `q=MARKER` added to its query.
pub fn probe_url(final_url: &Url, marker: &str) -> Url {
    let mut url = final_url.clone();
    url.set_fragment(None);
    url.query_pairs_mut().append_pair(MARKER_PARAM, marker);
    url
}

/// A response's content coding, as far as the rule is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Coding {
    /// Not compressed (no Content-Encoding, or only `identity`).
    Identity,
    /// gzip (or its alias x-gzip).
    Gzip,
    /// deflate (zlib-wrapped, as RFC 9110 says, or raw, as some servers send it).
    Deflate,
    /// Anything else (br, zstd, several codings stacked): compressed, but not decoded here.
    Other(String),
}

/// The content coding `headers` declare (every Content-Encoding value, comma-separated).
pub fn coding(headers: &HeaderMap) -> Coding {
    let codings: Vec<String> = headers
        .get_all("content-encoding")
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty() && c != "identity")
                .collect::<Vec<_>>()
        })
        .collect();
    match codings.as_slice() {
        [] => Coding::Identity,
        [one] if one == "gzip" || one == "x-gzip" => Coding::Gzip,
        [one] if one == "deflate" => Coding::Deflate,
        many => Coding::Other(crate::model::one_line(&many.join(", "), 64)),
    }
}

impl Coding {
    fn name(&self) -> &str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Other(s) => s,
        }
    }
}

/// Words that make a field name look like an anti-CSRF token (lower case).
const CSRF_WORDS: &[&str] = &[
    "csrf",
    "xsrf",
    "authenticity_token",
    "requestverificationtoken",
    "antiforgery",
];

/// How far before `done` the scanner keeps bytes, for a match's look-behind and look-ahead.
const OVERLAP: usize = 160;

/// The longest field name kept (longer ones are not field names a framework makes).
const MAX_FIELD: usize = 64;

/// The most field names kept in evidence.
const MAX_FIELDS: usize = 8;

/// What the decompressed body showed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BodyScan {
    /// The marker appears in the body.
    pub reflected: bool,
    /// CSRF-token-like field names (`name="csrf_token"`, `"csrfToken":`), lower case.
    pub fields: BTreeSet<String>,
    /// Decompressed bytes looked at.
    pub decoded: usize,
    /// Why the body was not seen whole (`None`: it was).
    pub incomplete: Option<String>,
    /// The body is not valid data of its coding (and nothing decoded before that error).
    pub invalid: Option<String>,
}

/// Streams decompressed bytes, looking for the marker and CSRF-like fields, keeping only a
/// window of [`OVERLAP`] bytes plus the current chunk.
struct Scanner<'a> {
    marker: &'a [u8],
    /// Lower-cased bytes; `done` of them were already examined as match starts.
    buf: Vec<u8>,
    done: usize,
    scan: BodyScan,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

impl<'a> Scanner<'a> {
    fn new(marker: &'a str) -> Scanner<'a> {
        Scanner {
            marker: marker.as_bytes(),
            buf: Vec::new(),
            done: 0,
            scan: BodyScan::default(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend(chunk.iter().map(u8::to_ascii_lowercase));
        self.examine(self.buf.len().saturating_sub(OVERLAP));
        // Keep OVERLAP bytes before `done` for look-behind, drop the rest.
        let drop = self.done.saturating_sub(OVERLAP);
        self.buf.drain(..drop);
        self.done -= drop;
    }

    fn finish(mut self) -> BodyScan {
        self.examine(self.buf.len());
        self.scan
    }

    /// Examine every match start in `done..limit`.
    fn examine(&mut self, limit: usize) {
        for start in self.done..limit {
            let Some(rest) = self.buf.get(start..) else {
                break;
            };
            if !self.marker.is_empty() && rest.starts_with(self.marker) {
                self.scan.reflected = true;
            }
            if self.scan.fields.len() < MAX_FIELDS
                && CSRF_WORDS.iter().any(|w| rest.starts_with(w.as_bytes()))
                && let Some(field) = field_at(&self.buf, start)
            {
                self.scan.fields.insert(field);
            }
        }
        self.done = self.done.max(limit);
    }
}

/// The field name around `at` when it sits where a field name goes: an attribute
/// `name="…"` (`name=…`, `name='…'`), or a quoted key followed by `:` (JSON, JavaScript).
fn field_at(buf: &[u8], at: usize) -> Option<String> {
    let mut start = at;
    while start > 0 && at - start < MAX_FIELD && buf.get(start - 1).copied().is_some_and(is_word) {
        start -= 1;
    }
    let mut end = at;
    while end - start < MAX_FIELD && buf.get(end).copied().is_some_and(is_word) {
        end += 1;
    }
    let word = buf.get(start..end)?;
    let before = buf.get(..start)?;
    let after = buf.get(end..)?;
    let quote = before.last().copied().filter(|q| *q == b'"' || *q == b'\'');
    let unquoted = before.get(..before.len() - usize::from(quote.is_some()))?;
    let attribute = trim_end(unquoted)
        .strip_suffix(b"=")
        .is_some_and(|b| trim_end(b).ends_with(b"name"));
    let key = quote.is_some_and(|q| {
        after.first() == Some(&q)
            && after
                .get(1..)
                .is_some_and(|a| trim_start(a).starts_with(b":"))
    });
    (attribute || key).then(|| String::from_utf8_lossy(word).into_owned())
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    b.get(..b.len() - n).unwrap_or_default()
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    b.get(n..).unwrap_or_default()
}

/// Decompress `body` (`coding` is gzip or deflate) up to [`DECODED_CAP`] bytes and scan it.
/// `truncated`: the body on the wire was cut at the read cap.
pub fn scan_body(coding: &Coding, body: &[u8], truncated: bool, marker: &str) -> BodyScan {
    let mut decoder: Box<dyn Read + '_> = match coding {
        Coding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
        // RFC 9110 says zlib; a raw deflate stream (no zlib header) is what some servers send.
        Coding::Deflate if zlib_header(body) => Box::new(flate2::read::ZlibDecoder::new(body)),
        Coding::Deflate => Box::new(flate2::read::DeflateDecoder::new(body)),
        Coding::Identity | Coding::Other(_) => Box::new(body),
    };
    let mut scanner = Scanner::new(marker);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut decoded = 0usize;
    let mut incomplete = None;
    let mut invalid = None;
    loop {
        let room = DECODED_CAP.saturating_sub(decoded).min(chunk.len());
        if room == 0 {
            incomplete = Some(format!(
                "the body decompresses to more than {} KiB (read up to there)",
                DECODED_CAP / 1024
            ));
            break;
        }
        let Some(buf) = chunk.get_mut(..room) else {
            break;
        };
        match decoder.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                scanner.feed(buf.get(..n).unwrap_or_default());
                decoded += n;
            }
            Err(e) if truncated && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                incomplete = Some(format!(
                    "the compressed body is longer than the {} KiB read cap",
                    BODY_CAP / 1024
                ));
                break;
            }
            Err(e) => {
                let what = format!(
                    "the body is not valid {} data ({e}) after {decoded} decompressed bytes",
                    coding.name()
                );
                if decoded == 0 {
                    invalid = Some(what);
                } else {
                    incomplete = Some(what);
                }
                break;
            }
        }
    }
    let mut scan = scanner.finish();
    scan.decoded = decoded;
    scan.incomplete = incomplete;
    scan.invalid = invalid;
    scan
}

/// Whether `body` starts with a zlib header (RFC 1950: CM 8, the check bits).
fn zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Names of the secret-looking cookies `headers` set: session-like names, and CSRF cookies
/// (`csrftoken`, `XSRF-TOKEN`), which are secrets too. Cookies being deleted are left out.
pub fn secret_cookies(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for value in headers.get_all("set-cookie") {
        let Some(cookie) = super::cookies::parse(&String::from_utf8_lossy(value.as_bytes())) else {
            continue;
        };
        let lower = cookie.name.to_ascii_lowercase();
        let secret = super::cookies::is_session_like(&cookie.name)
            || CSRF_WORDS.iter().any(|w| lower.contains(w));
        let name = crate::model::one_line(&cookie.name, MAX_FIELD);
        if secret && !cookie.deleting && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    // A target that did not answer is undecided, whatever its scheme (as every rule here).
    if let Err(reason) = &obs.main {
        return out.inconclusive(BREACH, reason);
    }
    if !obs.is_https() {
        return out.skipped(
            BREACH,
            "a plain-HTTP target: BREACH attacks compressed HTTPS responses (scan the https:// URL)",
        );
    }
    let hop = match obs.final_response() {
        Ok(hop) => hop,
        Err(reason) => return out.inconclusive(BREACH, &reason),
    };
    if hop.url.scheme() != "https" {
        return out.skipped(
            BREACH,
            format!("the final page {} is served over plain HTTP", hop.url),
        );
    }
    let Some(probe) = &obs.breach else {
        let reason = Reason::new(ReasonKind::Bug, "the BREACH probe was not sent");
        return out.inconclusive(BREACH, &reason);
    };
    // The marker is random: reports show it as MARKER, so that two scans of the same
    // service say the same thing (baselines, shard merges).
    let shown = probe.url.as_str().replace(&probe.marker, "MARKER");
    let resp = match &probe.response {
        Ok(r) => r,
        Err(reason) => {
            let detail = reason.detail.replace(&probe.marker, "MARKER");
            return out.inconclusive(BREACH, &Reason::new(reason.kind, detail));
        }
    };
    let coding = coding(&resp.headers);
    let base = Evidence::none()
        .text("url", shown.as_str())
        .with("status", Observed::Number(i64::from(resp.status)));
    let encoding = || {
        Observed::texts(
            resp.headers
                .get_all("content-encoding")
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        )
    };
    match &coding {
        Coding::Identity => {
            return out.pass(
                BREACH,
                "the HTTPS response to Accept-Encoding: gzip is not compressed",
                base.text("content-encoding", "identity"),
            );
        }
        Coding::Other(name) => {
            let reason = Reason::new(
                ReasonKind::Malformed,
                format!(
                    "{shown}: asked for gzip, the response is compressed with '{name}', which \
                     secgate does not decode"
                ),
            );
            return out.inconclusive(BREACH, &reason);
        }
        Coding::Gzip | Coding::Deflate => {}
    }
    if resp.body.is_empty() {
        return out.pass(
            BREACH,
            format!(
                "the response is marked {} but its body is empty: nothing to recover",
                coding.name()
            ),
            base.with("content-encoding", encoding()),
        );
    }
    let scan = scan_body(&coding, &resp.body, resp.truncated, &probe.marker);
    if let Some(why) = &scan.invalid {
        let reason = Reason::new(ReasonKind::Malformed, format!("{shown}: {why}"));
        return out.inconclusive(BREACH, &reason);
    }
    let cookies = secret_cookies(&resp.headers);
    let mut secrets: Vec<String> = cookies.iter().map(|c| format!("cookie {c}")).collect();
    secrets.extend(scan.fields.iter().map(|f| format!("field {f}")));
    let evidence = base
        .with("content-encoding", encoding())
        .with("reflects_input", Observed::Bool(scan.reflected))
        .with("secret_cookies", Observed::texts(cookies.iter().cloned()))
        .with("csrf_fields", Observed::texts(scan.fields.iter().cloned()))
        .with(
            "decompressed_bytes",
            Observed::Number(i64::try_from(scan.decoded).unwrap_or(i64::MAX)),
        );
    let c = coding.name();
    match (scan.reflected, secrets.is_empty()) {
        (true, false) => out.fail(
            BREACH,
            format!(
                "a {c}-compressed HTTPS page reflects the query string and carries secrets ({}): \
                 BREACH can recover them",
                secrets.join(", ")
            ),
            evidence,
        ),
        (true, true) => out.fail(
            BREACH,
            format!(
                "a {c}-compressed HTTPS page reflects the query string (a random marker in \
                 ?{MARKER_PARAM}=): any secret it carries for a logged-in user (CSRF token, \
                 session data) is exposed to BREACH"
            ),
            evidence,
        ),
        (false, false) => out.fail(
            BREACH,
            format!(
                "a {c}-compressed HTTPS page carries secrets ({}): with any input reflected in the \
                 same body (a search term, a form value) BREACH can recover them",
                secrets.join(", ")
            ),
            evidence,
        ),
        (false, true) => match &scan.incomplete {
            Some(why) => {
                let reason = Reason::new(
                    ReasonKind::TooLarge,
                    format!(
                        "{shown}: {why}; neither the marker nor a secret in the first {} bytes",
                        scan.decoded
                    ),
                );
                out.inconclusive(BREACH, &reason);
            }
            None => out.pass(
                BREACH,
                format!(
                    "the page is {c}-compressed but reflects no input and carries no \
                     secret-looking cookie or CSRF field"
                ),
                evidence.text(
                    "note",
                    "compressed without reflected input or a secret: BREACH needs both in one \
                     compressed body; recheck pages that do (search, forms, account pages)",
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    const MARKER: &str = "0123abcd4567ef89";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn observed(headers: &[(&str, &str)], body: Vec<u8>, truncated: bool) -> HttpObservation {
        let mut obs = fixture::https(&[]);
        let hop = fixture::hop("https://app.test/", 200, headers);
        let url = probe_url(&hop.url, MARKER);
        obs.breach = Some(BreachProbe {
            url,
            marker: MARKER.into(),
            response: Ok(BreachResponse {
                status: 200,
                headers: hop.headers,
                body,
                truncated,
            }),
        });
        obs
    }

    fn judged(obs: &HttpObservation) -> (Status, String) {
        let (_, s, m) = fixture::run(&RULE, obs).pop().unwrap();
        (s, m)
    }

    #[test]
    fn codings() {
        let h = |v: &[&str]| {
            fixture::hop(
                "https://a/",
                200,
                &v.iter()
                    .map(|v| ("content-encoding", *v))
                    .collect::<Vec<_>>(),
            )
            .headers
        };
        assert_eq!(coding(&h(&[])), Coding::Identity);
        assert_eq!(coding(&h(&["identity"])), Coding::Identity);
        assert_eq!(coding(&h(&["GZIP"])), Coding::Gzip);
        assert_eq!(coding(&h(&["x-gzip"])), Coding::Gzip);
        assert_eq!(coding(&h(&["deflate"])), Coding::Deflate);
        assert_eq!(coding(&h(&["br"])), Coding::Other("br".into()));
        assert_eq!(
            coding(&h(&["gzip", "br"])),
            Coding::Other("gzip, br".into())
        );
    }

    #[test]
    fn probe_url_adds_the_marker() {
        let u = probe_url(&Url::parse("https://a/p?x=1#frag").unwrap(), MARKER);
        assert_eq!(u.as_str(), format!("https://a/p?x=1&q={MARKER}"));
    }

    #[test]
    fn finds_the_marker_and_csrf_fields_across_chunk_boundaries() {
        // The marker and the field straddle the 16 KiB chunk and the scanner's window.
        let mut page = vec![b' '; 16 * 1024 - 5];
        page.extend_from_slice(MARKER.as_bytes());
        page.extend(std::iter::repeat_n(b'x', 16 * 1024 - 20));
        page.extend_from_slice(br#"<input type="hidden" name="CSRF_Token" value="s3cr3t">"#);
        page.extend_from_slice(br#"<script>var cfg = {"xsrfToken" : "abc"}</script>"#);
        page.extend_from_slice(b"<p>Read our CSRF policy; csrf= nothing</p>");
        let scan = scan_body(&Coding::Gzip, &gzip(&page), false, MARKER);
        assert!(scan.reflected);
        assert_eq!(
            scan.fields.into_iter().collect::<Vec<_>>(),
            ["csrf_token", "xsrftoken"]
        );
        assert_eq!(scan.decoded, page.len());
        assert_eq!(scan.incomplete, None);
    }

    #[test]
    fn deflate_zlib_and_raw() {
        let page = format!("<html>you searched {MARKER}</html>");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(page.as_bytes()).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(page.as_bytes()).unwrap();
        for body in [z.finish().unwrap(), raw.finish().unwrap()] {
            assert!(scan_body(&Coding::Deflate, &body, false, MARKER).reflected);
        }
    }

    #[test]
    fn judges() {
        let gz = [("content-encoding", "gzip")];
        let reflected = gzip(format!("<p>results for {MARKER}</p>").as_bytes());
        let (s, m) = judged(&observed(&gz, reflected.clone(), false));
        assert_eq!(s, Status::Fail, "{m}");
        assert!(m.contains("reflects the query string"), "{m}");

        let with_cookie = [
            ("content-encoding", "gzip"),
            ("set-cookie", "sessionid=topsecretvalue; Secure; HttpOnly"),
        ];
        let (s, m) = judged(&observed(&with_cookie, reflected, false));
        assert_eq!(s, Status::Fail);
        assert!(m.contains("carries secrets (cookie sessionid)"), "{m}");
        assert!(!m.contains("topsecretvalue"));

        let static_page = gzip(b"<html>hello</html>");
        let (s, m) = judged(&observed(&with_cookie, static_page.clone(), false));
        assert_eq!(s, Status::Fail, "{m}");
        let (s, m) = judged(&observed(&gz, static_page.clone(), false));
        assert_eq!(s, Status::Pass, "{m}");
        let (s, _) = judged(&observed(&[], b"<p>0123abcd4567ef89</p>".to_vec(), false));
        assert_eq!(s, Status::Pass);
        // A deleted session cookie is no secret.
        let deleting = [
            ("content-encoding", "gzip"),
            ("set-cookie", "sessionid=; Max-Age=0"),
        ];
        let (s, _) = judged(&observed(&deleting, static_page, false));
        assert_eq!(s, Status::Pass);
    }

    #[test]
    fn hostile_bodies_are_inconclusive() {
        let gz = [("content-encoding", "gzip")];
        let (s, m) = judged(&observed(&gz, b"this is not gzip at all".to_vec(), false));
        assert_eq!(s, Status::Inconclusive);
        assert!(m.contains("not valid gzip data"), "{m}");

        // A bomb: 8 MiB of zeros (8 KiB compressed), twice the decode cap.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..8 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        let scan = scan_body(&Coding::Gzip, &bomb, false, MARKER);
        assert_eq!(scan.decoded, DECODED_CAP);
        let (s, m) = judged(&observed(&gz, bomb.clone(), false));
        assert_eq!(s, Status::Inconclusive);
        assert!(m.contains("decompresses to more than 4096 KiB"), "{m}");

        // Cut at the read cap: what was read is judged, the rest is unknown.
        let cut = bomb.get(..1000).unwrap().to_vec();
        let (s, m) = judged(&observed(&gz, cut.clone(), true));
        assert_eq!(s, Status::Inconclusive);
        assert!(m.contains("longer than the 128 KiB read cap"), "{m}");
        // Cut short without the cap: a broken stream.
        let (s, m) = judged(&observed(&gz, cut, false));
        assert_eq!(s, Status::Inconclusive);
        assert!(m.contains("not valid gzip data"), "{m}");

        let br = [("content-encoding", "br")];
        let (s, m) = judged(&observed(&br, vec![1, 2, 3], false));
        assert_eq!(s, Status::Inconclusive);
        assert!(m.contains("'br'"), "{m}");
    }

    #[test]
    fn plain_http_targets_are_skipped() {
        let mut obs = fixture::https(&[]);
        obs.url = Url::parse("http://app.test/").unwrap();
        assert_eq!(fixture::status(&RULE, &obs, BREACH), Status::Skipped);
    }

    #[test]
    fn field_names_only_where_fields_go() {
        let f = |s: &str| {
            let b = s.to_ascii_lowercase().into_bytes();
            let at = (0..b.len())
                .find(|i| b.get(*i..).unwrap().starts_with(b"csrf"))
                .unwrap();
            field_at(&b, at)
        };
        assert_eq!(
            f(r#"name="csrfmiddlewaretoken""#).as_deref(),
            Some("csrfmiddlewaretoken")
        );
        assert_eq!(f("name = 'x-csrf-token'").as_deref(), Some("x-csrf-token"));
        assert_eq!(f("name=_csrf ").as_deref(), Some("_csrf"));
        assert_eq!(f(r#"{"csrf": 1}"#).as_deref(), Some("csrf"));
        assert_eq!(f("csrf at the start"), None);
        assert_eq!(f("about csrf attacks"), None);
        assert_eq!(f(r#"class="csrf""#), None);
    }
}
