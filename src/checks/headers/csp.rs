//! Content-Security-Policy: present, scripts restricted, plugins and `<base>` restricted.
//!
//! Parsing follows CSP3 §2.2: a header may carry several policies separated by `,`; each policy
//! is `;`-separated directives; directive names are case-insensitive and only the first
//! occurrence of a name counts. Several enforced policies all apply, so a source is allowed only
//! if every policy allows it: a rule passes when at least one policy restricts what it checks.

use super::{Hop, HttpObservation, Rule, inconclusive_all, skipped_all};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const MISSING: &str = "headers.csp.missing";
pub(super) const UNSAFE: &str = "headers.csp.unsafe";
pub(super) const NO_OBJECT_SRC: &str = "headers.csp.no_object_src";
pub(super) const NO_BASE_URI: &str = "headers.csp.no_base_uri";
const IDS: &[&str] = &[MISSING, UNSAFE, NO_OBJECT_SRC, NO_BASE_URI];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// One parsed policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `(lower-case name, sources)`, first occurrence of each name only.
    pub directives: Vec<(String, Vec<String>)>,
}

impl Policy {
    /// The source list of a directive.
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.directives
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Parse one header value into its policies (empty policies are dropped).
pub fn parse(value: &str) -> Vec<Policy> {
    value
        .split(',')
        .map(|policy| {
            let mut p = Policy::default();
            for directive in policy.split(';') {
                let mut tokens = directive.split_ascii_whitespace();
                let Some(name) = tokens.next() else { continue };
                let name = name.to_ascii_lowercase();
                if p.directives.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                p.directives
                    .push((name, tokens.map(str::to_string).collect()));
            }
            p
        })
        .filter(|p| !p.directives.is_empty())
        .collect()
}

/// Every enforced policy of a response.
pub fn enforced(hop: &Hop) -> Vec<Policy> {
    hop.values("content-security-policy")
        .into_iter()
        .flat_map(|v| parse(&String::from_utf8_lossy(v)))
        .collect()
}

/// True for a source that allows any host: `*`, a bare scheme (`https:`, `data:`, `ftp:`...),
/// or a host-source whose host is `*` or a wildcard over a whole top-level domain (`*.com`,
/// `*.*`), whatever its scheme, port or path (`https://*:443`, `http://*/x`, `*:*`).
pub fn is_wildcard(source: &str) -> bool {
    let s = source.to_ascii_lowercase();
    if s.starts_with('\'') {
        return false; // keywords, nonces and hashes
    }
    // A bare scheme-source: `scheme:` with nothing after it.
    let bare_scheme = s.strip_suffix(':').is_some_and(|scheme| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if bare_scheme {
        return true;
    }
    let rest = s.split_once("://").map_or(s.as_str(), |(_, r)| r);
    let host = rest.split([':', '/']).next().unwrap_or_default();
    if host == "*" {
        return true;
    }
    // `*.com`, `*.*`: a wildcard with no registrable name under it.
    host.strip_prefix("*.")
        .is_some_and(|tail| !tail.contains('.') || tail.split('.').all(|l| l == "*"))
}

fn is_keyword(source: &str, keyword: &str) -> bool {
    source.eq_ignore_ascii_case(keyword)
}

/// Whether a source is a well-formed nonce or hash (`'nonce-<base64>'`, `'sha256-<base64>'`...).
/// A malformed one (e.g. an empty nonce from a template) is dropped by browsers, and then does
/// not cancel `'unsafe-inline'`.
pub fn is_nonce_or_hash(source: &str) -> bool {
    let s = source.to_ascii_lowercase();
    let Some(inner) = s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) else {
        return false;
    };
    let value = ["nonce-", "sha256-", "sha384-", "sha512-"]
        .iter()
        .find_map(|p| inner.strip_prefix(p));
    let Some(value) = value.map(|v| v.trim_end_matches('=')) else {
        return false;
    };
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_'))
}

/// Why a source list lets injected script run; empty when it does not.
fn list_issues(list: &[String]) -> Vec<String> {
    let has_nonce_or_hash = list.iter().any(|s| is_nonce_or_hash(s));
    // 'strict-dynamic' makes browsers ignore host and scheme sources and 'unsafe-inline'
    // (CSP3 §8.2); with it, only nonces/hashes (and what they load) run.
    let strict_dynamic = list.iter().any(|s| is_keyword(s, "'strict-dynamic'"));
    let mut issues = Vec::new();
    for source in list {
        if is_keyword(source, "'unsafe-eval'") {
            issues.push("'unsafe-eval'".to_string());
        } else if is_keyword(source, "'unsafe-inline'") && !has_nonce_or_hash && !strict_dynamic {
            issues.push("'unsafe-inline'".to_string());
        } else if is_wildcard(source) && !strict_dynamic {
            issues.push(source.clone());
        }
    }
    issues
}

/// Why a policy does not restrict scripts; empty when it does. Both the `<script>` element
/// list (script-src-elem → script-src → default-src) and the inline-handler list
/// (script-src-attr → script-src → default-src) are judged, as CSP3 §6.1.3 defines them.
pub fn script_issues(policy: &Policy) -> Vec<String> {
    let fallback = policy
        .get("script-src")
        .or_else(|| policy.get("default-src"));
    let elem = policy.get("script-src-elem").or(fallback);
    let attr = policy.get("script-src-attr").or(fallback);
    let Some(elem) = elem else {
        return vec!["no script-src or default-src: scripts from any origin are allowed".into()];
    };
    let mut issues = list_issues(elem);
    match attr {
        Some(attr) => {
            for i in list_issues(attr) {
                let i = if policy.get("script-src-attr").is_some() {
                    format!("{i} (script-src-attr)")
                } else {
                    i
                };
                if !issues.contains(&i) {
                    issues.push(i);
                }
            }
        }
        None => issues.push(
            "no script-src-attr, script-src or default-src: inline event handlers are allowed"
                .into(),
        ),
    }
    issues
}

/// Whether a source list restricts loads to named origins (empty list = `'none'`).
pub fn restricts(list: Option<&[String]>) -> bool {
    list.is_some_and(|l| !l.iter().any(|s| is_wildcard(s)))
}

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    let hop = match obs.final_response() {
        Ok(hop) => hop,
        Err(reason) => return inconclusive_all(out, IDS, &reason),
    };
    let policies = enforced(hop);
    if policies.is_empty() {
        let report_only = hop.values("content-security-policy-report-only");
        let (message, evidence) = match report_only.first() {
            Some(v) => (
                "only Content-Security-Policy-Report-Only is sent: it reports but blocks nothing"
                    .to_string(),
                Evidence::none().with(
                    "content-security-policy-report-only",
                    Observed::from_bytes(v),
                ),
            ),
            None => (
                format!(
                    "no Content-Security-Policy header on {} (status {})",
                    hop.url, hop.status
                ),
                Evidence::none().with("status", Observed::Number(hop.status.into())),
            ),
        };
        out.fail(MISSING, message, evidence);
        skipped_all(
            out,
            &[UNSAFE, NO_OBJECT_SRC, NO_BASE_URI],
            "no enforced CSP (see headers.csp.missing)",
        );
        return;
    }
    let evidence = Evidence::none().with(
        "content-security-policy",
        Observed::List(
            hop.values("content-security-policy")
                .into_iter()
                .map(Observed::from_bytes)
                .collect(),
        ),
    );
    out.pass(
        MISSING,
        "an enforced Content-Security-Policy is set",
        evidence.clone(),
    );

    let issues: Vec<Vec<String>> = policies.iter().map(script_issues).collect();
    match issues.iter().find(|i| !i.is_empty()) {
        Some(first) if issues.iter().all(|i| !i.is_empty()) => out.fail(
            UNSAFE,
            format!("script sources are not restricted: {}", first.join(", ")),
            evidence
                .clone()
                .with("unsafe_sources", Observed::texts(first.iter().cloned())),
        ),
        _ => out.pass(UNSAFE, "scripts are restricted", evidence.clone()),
    }

    if policies
        .iter()
        .any(|p| restricts(p.get("object-src").or_else(|| p.get("default-src"))))
    {
        out.pass(NO_OBJECT_SRC, "object-src is restricted", evidence.clone());
    } else {
        out.fail(
            NO_OBJECT_SRC,
            "object-src is not restricted (neither object-src nor default-src without wildcards)",
            evidence.clone(),
        );
    }

    if policies.iter().any(|p| restricts(p.get("base-uri"))) {
        out.pass(NO_BASE_URI, "base-uri is restricted", evidence);
    } else {
        out.fail(
            NO_BASE_URI,
            "base-uri is not restricted (it does not fall back to default-src)",
            evidence,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn parses_policies_and_first_directive_wins() {
        let p = parse("default-src 'self'; SCRIPT-SRC a.test; script-src *, object-src 'none'");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].get("script-src").unwrap(), ["a.test"]);
        assert_eq!(p[1].get("object-src").unwrap(), ["'none'"]);
        assert!(parse(" ; ,").is_empty());
    }

    #[test]
    fn finds_unsafe_script_sources() {
        let issues = |v: &str| script_issues(&parse(v)[0]);
        assert!(issues("default-src 'self'").is_empty());
        assert_eq!(
            issues("script-src 'self' 'unsafe-inline'"),
            ["'unsafe-inline'"]
        );
        assert!(issues("script-src 'self' 'unsafe-inline' 'nonce-abc'").is_empty());
        assert_eq!(
            issues("script-src 'unsafe-eval' data: https:"),
            ["'unsafe-eval'", "data:", "https:"]
        );
        assert!(
            issues("script-src 'nonce-r4nd' 'strict-dynamic' https: 'unsafe-inline'").is_empty()
        );
        assert_eq!(issues("img-src *").len(), 1);
        assert_eq!(issues("default-src *"), ["*"]);
        assert!(issues("script-src *.cdn.test").is_empty());
        // A malformed nonce does not cancel 'unsafe-inline'.
        assert_eq!(
            issues("script-src 'self' 'unsafe-inline' 'nonce-'"),
            ["'unsafe-inline'"]
        );
        assert_eq!(
            issues("script-src 'self' 'unsafe-inline' 'sha256-'"),
            ["'unsafe-inline'"]
        );
        // 'strict-dynamic' alone also makes browsers ignore 'unsafe-inline'.
        assert!(issues("script-src 'strict-dynamic' 'unsafe-inline'").is_empty());
        // script-src-elem and script-src-attr are judged too.
        assert_eq!(
            issues("default-src 'self'; script-src-elem * 'unsafe-inline'"),
            ["*", "'unsafe-inline'"]
        );
        assert_eq!(
            issues("default-src 'self'; script-src-attr 'unsafe-inline'"),
            ["'unsafe-inline' (script-src-attr)"]
        );
        // Host wildcards with scheme, port or path are wildcards too.
        for w in [
            "https://*:443",
            "https://*/",
            "*/path",
            "http://*:*",
            "ftp:",
            "*.com",
            "https://*.*",
        ] {
            assert_eq!(issues(&format!("script-src {w}")), [w], "{w}");
        }
    }

    #[test]
    fn restriction_rules() {
        assert!(restricts(Some(&[])));
        assert!(restricts(Some(&["'none'".into()])));
        assert!(!restricts(Some(&["'self'".into(), "https:".into()])));
        assert!(!restricts(None));
    }

    #[test]
    fn judges_a_response() {
        let none = fixture::https(&[("content-security-policy-report-only", "default-src 'self'")]);
        let r = fixture::run(&RULE, &none);
        assert_eq!(r[0].1, Status::Fail);
        assert!(r[0].2.contains("Report-Only"));
        assert!(r[1..].iter().all(|(_, s, _)| *s == Status::Skipped));

        let weak = fixture::https(&[(
            "content-security-policy",
            "script-src 'self' 'unsafe-inline'",
        )]);
        assert_eq!(fixture::status(&RULE, &weak, UNSAFE), Status::Fail);
        assert_eq!(fixture::status(&RULE, &weak, NO_OBJECT_SRC), Status::Fail);
        assert_eq!(fixture::status(&RULE, &weak, NO_BASE_URI), Status::Fail);

        // A second policy that restricts scripts makes the combination safe.
        let two = fixture::https(&[
            (
                "content-security-policy",
                "script-src 'self' 'unsafe-inline'",
            ),
            (
                "content-security-policy",
                "default-src 'none'; base-uri 'self'",
            ),
        ]);
        assert!(
            fixture::run(&RULE, &two)
                .iter()
                .all(|(_, s, _)| *s == Status::Pass)
        );
    }
}
