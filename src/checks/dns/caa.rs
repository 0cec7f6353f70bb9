//! CAA records (RFC 8659): which CAs may issue certificates for the name.

use super::{DnsObservation, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const MISSING: &str = "dns.caa.missing";

pub(super) const RULE: Rule = Rule {
    ids: &[MISSING],
    eval,
};

fn eval(obs: &DnsObservation, out: &mut Emitter) {
    match &obs.caa {
        Err(reason) => out.inconclusive(MISSING, reason),
        Ok(None) => out.fail(
            MISSING,
            format!(
                "no CAA record at {} or any parent: every CA may issue for it",
                obs.name
            ),
            Evidence::none(),
        ),
        Ok(Some((at, records))) => out.pass(
            MISSING,
            format!("CAA records at {at}"),
            Evidence::none()
                .text("found_at", at.clone())
                .with("caa", Observed::texts(records.iter().cloned())),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{obs, status};
    use super::*;
    use crate::model::Status;

    #[test]
    fn missing_caa_fails() {
        let mut o = obs();
        assert_eq!(status(&RULE, &o, MISSING), Status::Pass);
        o.caa = Ok(None);
        assert_eq!(status(&RULE, &o, MISSING), Status::Fail);
    }
}
