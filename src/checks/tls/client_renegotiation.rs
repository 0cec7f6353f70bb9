//! Client-initiated renegotiation: each renegotiation costs the server a full handshake (its
//! private-key operation) and the client almost nothing, so a server that accepts them can be
//! kept busy by a few clients (DoS amplification).

use super::{ClientRenegotiation, Rule, TlsObservation};
use crate::engine::Emitter;
use crate::model::Evidence;

pub(super) const CLIENT_INITIATED: &str = "tls.renegotiation.client_initiated";
const IDS: &[&str] = &[CLIENT_INITIATED];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    match &obs.client_renegotiation {
        Some(Ok(ClientRenegotiation::Accepted)) => out.fail(
            CLIENT_INITIATED,
            "the server accepts a renegotiation the client asks for (TLS 1.2): a cheap way to make it do full handshakes",
            Evidence::none().text("answer", "ServerHello"),
        ),
        Some(Ok(ClientRenegotiation::Refused(how))) => match obs.legacy_unknown() {
            Some(r) => out.inconclusive(CLIENT_INITIATED, &r),
            None => out.pass(
                CLIENT_INITIATED,
                format!("the server refuses client-initiated renegotiation ({how})"),
                Evidence::none().text("answer", how),
            ),
        },
        Some(Err(r)) => out.inconclusive(CLIENT_INITIATED, r),
        None => obs.no_legacy(
            out,
            CLIENT_INITIATED,
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
    fn accepted_fails() {
        let mut o = fixture::good();
        o.client_renegotiation = Some(Ok(ClientRenegotiation::Accepted));
        assert_eq!(fixture::status(&RULE, &o, CLIENT_INITIATED), Status::Fail);
        o.client_renegotiation = None;
        assert_eq!(fixture::status(&RULE, &o, CLIENT_INITIATED), Status::Pass);
    }
}
