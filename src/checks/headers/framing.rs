//! Clickjacking protection: CSP frame-ancestors or X-Frame-Options.

use super::csp;
use super::{HttpObservation, Rule};
use crate::model::{Emitter, Evidence, Observed};

pub(super) const MISSING: &str = "headers.framing.missing";

pub(super) const RULE: Rule = Rule {
    ids: &[MISSING],
    eval,
};

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    let hop = match obs.final_response() {
        Ok(hop) => hop,
        Err(reason) => return out.inconclusive(MISSING, &reason),
    };
    let mut evidence = Evidence::none();
    let xfo = hop.values("x-frame-options");
    let xfo_first = xfo.first().map(|v| {
        let text = String::from_utf8_lossy(v).to_string();
        text.split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase()
    });
    if let Some(v) = xfo.first() {
        evidence = evidence.with("x-frame-options", Observed::from_bytes(v));
    }
    let policies = csp::enforced(hop);
    let ancestors: Vec<&[String]> = policies
        .iter()
        .filter_map(|p| p.get("frame-ancestors"))
        .collect();
    if let Some(a) = ancestors.first() {
        evidence = evidence.with("frame-ancestors", Observed::texts(a.iter().cloned()));
    }

    if ancestors.iter().any(|a| csp::restricts(Some(a))) {
        return out.pass(MISSING, "CSP frame-ancestors restricts framing", evidence);
    }
    if matches!(xfo_first.as_deref(), Some("DENY" | "SAMEORIGIN")) {
        return out.pass(MISSING, "X-Frame-Options restricts framing", evidence);
    }
    let message = match (&xfo_first, ancestors.is_empty()) {
        (_, false) => "CSP frame-ancestors allows any origin".to_string(),
        (Some(v), true) if v.starts_with("ALLOW-FROM") => {
            "X-Frame-Options ALLOW-FROM is obsolete and ignored by browsers; use CSP frame-ancestors".to_string()
        }
        (Some(v), true) => format!("X-Frame-Options '{v}' is not DENY or SAMEORIGIN"),
        (None, true) => format!("neither X-Frame-Options nor CSP frame-ancestors on {}", hop.url),
    };
    out.fail(MISSING, message, evidence);
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn judges_both_mechanisms() {
        let cases = [
            (vec![], Status::Fail),
            (vec![("x-frame-options", "deny")], Status::Pass),
            (vec![("x-frame-options", "SAMEORIGIN")], Status::Pass),
            (
                vec![("x-frame-options", "ALLOW-FROM https://a.test/")],
                Status::Fail,
            ),
            (
                vec![("content-security-policy", "frame-ancestors 'self'")],
                Status::Pass,
            ),
            (
                vec![("content-security-policy", "frame-ancestors 'none'")],
                Status::Pass,
            ),
            (
                vec![("content-security-policy", "frame-ancestors *")],
                Status::Fail,
            ),
            (
                vec![
                    ("content-security-policy", "frame-ancestors https:"),
                    ("x-frame-options", "DENY"),
                ],
                Status::Pass,
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(
                fixture::status(&RULE, &fixture::https(&headers), MISSING),
                want,
                "{headers:?}"
            );
        }
    }
}
