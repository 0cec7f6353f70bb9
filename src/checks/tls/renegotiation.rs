//! Secure renegotiation (RFC 5746): a TLS ≤ 1.2 server must answer with `renegotiation_info`.

use super::{Rule, TlsObservation};
use crate::engine::Emitter;

pub(super) const INSECURE: &str = "tls.renegotiation.insecure";
const IDS: &[&str] = &[INSECURE];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    let none = crate::model::Evidence::none;
    match &obs.renegotiation {
        // Seen with the highest version accepted; a version whose answer is unknown might not.
        Some(Ok(true)) => match obs.legacy_unknown() {
            Some(r) => out.inconclusive(INSECURE, &r),
            None => out.pass(
                INSECURE,
                "the server supports secure renegotiation (renegotiation_info)",
                none(),
            ),
        },
        Some(Ok(false)) => out.fail(
            INSECURE,
            "the server does not indicate secure renegotiation (no renegotiation_info in its ServerHello)",
            none().text("renegotiation_info", "absent"),
        ),
        Some(Err(r)) => out.inconclusive(INSECURE, r),
        None => obs.no_legacy(
            out,
            INSECURE,
            "only TLS 1.3 is accepted, which has no renegotiation",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn missing_indication_fails() {
        let mut o = fixture::good();
        o.renegotiation = Some(Ok(false));
        assert_eq!(fixture::status(&RULE, &o, INSECURE), Status::Fail);
    }
}
