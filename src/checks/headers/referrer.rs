//! Referrer-Policy: present, recognised, and not leaking full URLs.

use super::{HttpObservation, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const MISSING: &str = "headers.referrer.missing";

pub(super) const RULE: Rule = Rule {
    ids: &[MISSING],
    eval,
};

const KNOWN: &[&str] = &[
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
];
const UNSAFE: &[&str] = &["unsafe-url", "no-referrer-when-downgrade"];

/// The policy a browser applies: the last recognised token over all values.
pub fn effective(values: &[String]) -> Option<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .rfind(|t| KNOWN.contains(&t.as_str()))
}

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    let hop = match obs.final_response() {
        Ok(hop) => hop,
        Err(reason) => return out.inconclusive(MISSING, &reason),
    };
    let raw = hop.values("referrer-policy");
    if raw.is_empty() {
        return out.fail(
            MISSING,
            format!("no Referrer-Policy header on {}", hop.url),
            Evidence::none(),
        );
    }
    let evidence = Evidence::none().with(
        "referrer-policy",
        Observed::List(raw.iter().map(|v| Observed::from_bytes(v)).collect()),
    );
    let values: Vec<String> = raw
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    match effective(&values) {
        None => out.fail(MISSING, "Referrer-Policy has no recognised value", evidence),
        Some(p) if UNSAFE.contains(&p.as_str()) => out.fail(
            MISSING,
            format!("Referrer-Policy '{p}' sends full URLs to other sites"),
            evidence,
        ),
        Some(p) => out.pass(MISSING, format!("Referrer-Policy is '{p}'"), evidence),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn last_recognised_token_wins() {
        let v = |s: &str| effective(&[s.to_string()]);
        assert_eq!(
            v("no-referrer, strict-origin-when-cross-origin").as_deref(),
            Some("strict-origin-when-cross-origin")
        );
        assert_eq!(v("same-origin, bogus").as_deref(), Some("same-origin"));
        assert_eq!(v("bogus"), None);
    }

    #[test]
    fn judges_values() {
        assert_eq!(
            fixture::status(&RULE, &fixture::https(&[]), MISSING),
            Status::Fail
        );
        let unsafe_ = fixture::https(&[("referrer-policy", "unsafe-url")]);
        assert_eq!(fixture::status(&RULE, &unsafe_, MISSING), Status::Fail);
        let good = fixture::https(&[("referrer-policy", "strict-origin-when-cross-origin")]);
        assert_eq!(fixture::status(&RULE, &good, MISSING), Status::Pass);
    }
}
