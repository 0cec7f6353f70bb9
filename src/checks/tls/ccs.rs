//! CCS injection (CVE-2014-0224): a ChangeCipherSpec before any key exchange must be refused.
//! A server that accepts it switches to keys derived from an empty master secret, which a man
//! in the middle can compute.

use super::{EarlyCcs, Rule, TlsObservation};
use crate::engine::Emitter;
use crate::model::Evidence;

pub(super) const CCS_INJECTION: &str = "tls.vuln.ccs_injection";
const IDS: &[&str] = &[CCS_INJECTION];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    match &obs.early_ccs {
        Some(Ok(EarlyCcs::Accepted(how))) => out.fail(
            CCS_INJECTION,
            format!("the server accepted a ChangeCipherSpec before the key exchange: {how}"),
            Evidence::none().text("answer", how),
        ),
        Some(Ok(EarlyCcs::Refused(how))) => match obs.legacy_unknown() {
            Some(r) => out.inconclusive(CCS_INJECTION, &r),
            None => out.pass(
                CCS_INJECTION,
                format!("the server refused an early ChangeCipherSpec ({how})"),
                Evidence::none().text("answer", how),
            ),
        },
        Some(Err(r)) => out.inconclusive(CCS_INJECTION, r),
        None => obs.no_legacy(
            out,
            CCS_INJECTION,
            "only TLS 1.3 is accepted, which CCS injection does not affect",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn an_accepted_early_ccs_fails() {
        let mut o = fixture::good();
        o.early_ccs = Some(Ok(EarlyCcs::Accepted("alert bad_record_mac".into())));
        assert_eq!(fixture::status(&RULE, &o, CCS_INJECTION), Status::Fail);
        o.early_ccs = None;
        assert_eq!(fixture::status(&RULE, &o, CCS_INJECTION), Status::Pass);
    }
}
