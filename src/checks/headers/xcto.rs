//! X-Content-Type-Options: nosniff.

use super::{HttpObservation, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const MISSING: &str = "headers.xcto.missing";

pub(super) const RULE: Rule = Rule {
    ids: &[MISSING],
    eval,
};

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    let hop = match obs.final_response() {
        Ok(hop) => hop,
        Err(reason) => return out.inconclusive(MISSING, &reason),
    };
    match hop.values("x-content-type-options").first() {
        None => out.fail(
            MISSING,
            format!("no X-Content-Type-Options header on {}", hop.url),
            Evidence::none(),
        ),
        Some(v) => {
            let evidence = Evidence::none().with("x-content-type-options", Observed::from_bytes(v));
            // Browsers read the first comma-separated token.
            let text = String::from_utf8_lossy(v);
            let first = text.split(',').next().unwrap_or_default().trim();
            if first.eq_ignore_ascii_case("nosniff") {
                out.pass(MISSING, "X-Content-Type-Options is nosniff", evidence);
            } else {
                out.fail(
                    MISSING,
                    format!("X-Content-Type-Options is '{first}', not nosniff"),
                    evidence,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn judges_values() {
        assert_eq!(
            fixture::status(&RULE, &fixture::https(&[]), MISSING),
            Status::Fail
        );
        let ok = fixture::https(&[("x-content-type-options", "NoSniff")]);
        assert_eq!(fixture::status(&RULE, &ok, MISSING), Status::Pass);
        let bad = fixture::https(&[("x-content-type-options", "sniff-please")]);
        assert_eq!(fixture::status(&RULE, &bad, MISSING), Status::Fail);
    }
}
