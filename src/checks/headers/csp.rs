//! Content-Security-Policy: present, scripts restricted, plugins and `<base>` restricted.
//!
//! Parsing follows CSP3 §2.2: a header may carry several policies separated by `,`; each policy
//! is `;`-separated directives; directive names are case-insensitive and only the first
//! occurrence of a name counts. Several enforced policies all apply, so a source is allowed only
//! if every policy allows it: a rule passes when at least one policy restricts what it checks.

use super::{Hop, HttpObservation, Rule, inconclusive_all, skipped_all};
use crate::model::{Emitter, Evidence, Observed};

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

/// True for a source that allows any host: `*`, a wildcard host pattern that starts with `*`
/// and has no dot after it, or a bare scheme such as `https:` or `data:`.
fn is_wildcard(source: &str) -> bool {
    let s = source.to_ascii_lowercase();
    s == "*"
        || s.starts_with("*:")
        || matches!(
            s.as_str(),
            "http:" | "https:" | "data:" | "blob:" | "filesystem:" | "ws:" | "wss:"
        )
        || s == "http://*"
        || s == "https://*"
}

fn is_keyword(source: &str, keyword: &str) -> bool {
    source.eq_ignore_ascii_case(keyword)
}

/// Why a policy does not restrict scripts; empty when it does.
pub fn script_issues(policy: &Policy) -> Vec<String> {
    let Some(list) = policy
        .get("script-src")
        .or_else(|| policy.get("default-src"))
    else {
        return vec!["no script-src or default-src: scripts from any origin are allowed".into()];
    };
    let has_nonce_or_hash = list.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        s.starts_with("'nonce-")
            || s.starts_with("'sha256-")
            || s.starts_with("'sha384-")
            || s.starts_with("'sha512-")
    });
    let strict_dynamic = list.iter().any(|s| is_keyword(s, "'strict-dynamic'"));
    let mut issues = Vec::new();
    for source in list {
        if is_keyword(source, "'unsafe-eval'") {
            issues.push("'unsafe-eval'".to_string());
        } else if is_keyword(source, "'unsafe-inline'") && !has_nonce_or_hash {
            issues.push("'unsafe-inline'".to_string());
        } else if is_wildcard(source) && !(strict_dynamic && has_nonce_or_hash) {
            issues.push(source.clone());
        }
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
