//! Clickjacking protection: CSP frame-ancestors or X-Frame-Options.
//!
//! Precedence follows the browsers (CSP3 §6.4.2, HTML "X-Frame-Options" processing): when any
//! enforced policy carries `frame-ancestors`, X-Frame-Options is ignored and only
//! frame-ancestors counts (framing is blocked if any policy restricts it). Otherwise all
//! X-Frame-Options values are combined: several distinct values including DENY, SAMEORIGIN or
//! ALLOWALL block framing; a single DENY or SAMEORIGIN blocks it; anything else allows it.

use std::collections::BTreeSet;

use super::csp;
use super::{HttpObservation, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const MISSING: &str = "headers.framing.missing";

pub(super) const RULE: Rule = Rule {
    ids: &[MISSING],
    eval,
};

/// Whether the combined X-Frame-Options values block cross-origin framing (HTML spec).
pub fn xfo_blocks(values: &BTreeSet<String>) -> bool {
    let decisive = ["deny", "sameorigin", "allowall"];
    match values.len() {
        0 => false,
        1 => values.iter().any(|v| v == "deny" || v == "sameorigin"),
        _ => values.iter().any(|v| decisive.contains(&v.as_str())),
    }
}

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    let hop = match obs.final_response() {
        Ok(hop) => hop,
        Err(reason) => return out.inconclusive(MISSING, &reason),
    };
    let mut evidence = Evidence::none();
    let raw = hop.values("x-frame-options");
    let xfo: BTreeSet<String> = raw
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    if !raw.is_empty() {
        evidence = evidence.with(
            "x-frame-options",
            Observed::List(raw.iter().map(|v| Observed::from_bytes(v)).collect()),
        );
    }
    let policies = csp::enforced(hop);
    let ancestors: Vec<&[String]> = policies
        .iter()
        .filter_map(|p| p.get("frame-ancestors"))
        .collect();
    if let Some(a) = ancestors.first() {
        evidence = evidence.with("frame-ancestors", Observed::texts(a.iter().cloned()));
    }

    if !ancestors.is_empty() {
        return if ancestors.iter().any(|a| csp::restricts(Some(a))) {
            out.pass(MISSING, "CSP frame-ancestors restricts framing", evidence)
        } else {
            let note = if raw.is_empty() {
                ""
            } else {
                " (X-Frame-Options is ignored when frame-ancestors is present)"
            };
            out.fail(
                MISSING,
                format!("CSP frame-ancestors allows any origin{note}"),
                evidence,
            )
        };
    }
    if xfo_blocks(&xfo) {
        return out.pass(MISSING, "X-Frame-Options restricts framing", evidence);
    }
    let message = match xfo.iter().next() {
        Some(v) if v.starts_with("allow-from") => {
            "X-Frame-Options ALLOW-FROM is obsolete and ignored by browsers; use CSP frame-ancestors".to_string()
        }
        Some(_) => format!(
            "X-Frame-Options '{}' is not DENY or SAMEORIGIN",
            xfo.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        None => format!("neither X-Frame-Options nor CSP frame-ancestors on {}", hop.url),
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
            (vec![("x-frame-options", "ALLOWALL")], Status::Fail),
            // Several distinct values including DENY block framing (HTML spec).
            (
                vec![("x-frame-options", "ALLOWALL"), ("x-frame-options", "DENY")],
                Status::Pass,
            ),
            (
                vec![("x-frame-options", "SAMEORIGIN, sameorigin")],
                Status::Pass,
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
            // frame-ancestors present makes browsers ignore X-Frame-Options.
            (
                vec![
                    ("content-security-policy", "frame-ancestors https:"),
                    ("x-frame-options", "DENY"),
                ],
                Status::Fail,
            ),
            (
                vec![
                    ("content-security-policy", "frame-ancestors https://*:443"),
                    ("x-frame-options", "DENY"),
                ],
                Status::Fail,
            ),
            // A CSP without frame-ancestors leaves X-Frame-Options in charge.
            (
                vec![
                    ("content-security-policy", "default-src 'self'"),
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
