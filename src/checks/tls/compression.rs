//! TLS compression (CRIME): the server must refuse DEFLATE.

use super::{Rule, TlsObservation};
use crate::engine::Emitter;

pub(super) const COMPRESSION: &str = "tls.compression";
const IDS: &[&str] = &[COMPRESSION];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    let none = crate::model::Evidence::none;
    match &obs.compression {
        Some(Ok(true)) => out.fail(
            COMPRESSION,
            "the server accepts DEFLATE compression",
            none().text("compression", "DEFLATE"),
        ),
        Some(Err(r)) => out.inconclusive(COMPRESSION, r),
        // Refused with the highest version accepted; a version whose answer is unknown might
        // still compress.
        Some(Ok(false)) => match obs.legacy_unknown() {
            Some(r) => out.inconclusive(COMPRESSION, &r),
            None => out.pass(COMPRESSION, "the server refuses TLS compression", none()),
        },
        None => obs.no_legacy(
            out,
            COMPRESSION,
            "only TLS 1.3 is accepted, which has no compression",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn deflate_fails() {
        let mut o = fixture::good();
        o.compression = Some(Ok(true));
        assert_eq!(fixture::status(&RULE, &o, COMPRESSION), Status::Fail);
        o.compression = None;
        assert_eq!(fixture::status(&RULE, &o, COMPRESSION), Status::Pass);
    }
}
