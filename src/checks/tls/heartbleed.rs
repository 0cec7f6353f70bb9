//! Heartbleed (CVE-2014-0160): a heartbeat request whose claimed payload is longer than what
//! was sent must not be answered; a response carries the server's memory. Only the number of
//! bytes returned is ever reported.

use super::{Heartbeat, Rule, TlsObservation};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const HEARTBLEED: &str = "tls.vuln.heartbleed";
const IDS: &[&str] = &[HEARTBLEED];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    let message = match &obs.heartbeat {
        Some(Ok(Heartbeat::Leaked { claimed, returned })) => {
            return out.fail(
                HEARTBLEED,
                format!(
                    "the server answered a heartbeat that carried no payload but claimed {claimed} bytes with {returned} bytes of its memory (Heartbleed)"
                ),
                Evidence::none()
                    .with("claimed_payload", Observed::Number((*claimed).into()))
                    .with(
                        "bytes_returned",
                        Observed::Number(i64::try_from(*returned).unwrap_or(i64::MAX)),
                    ),
            );
        }
        Some(Err(r)) => return out.inconclusive(HEARTBLEED, r),
        Some(Ok(Heartbeat::NotSupported)) => {
            "the server does not take up the heartbeat extension".to_string()
        }
        Some(Ok(Heartbeat::Ignored(how))) => {
            format!("an overlong heartbeat request got no heartbeat back ({how})")
        }
        None => {
            return obs.no_legacy(
                out,
                HEARTBLEED,
                "only TLS 1.3 is accepted, which has no heartbeat",
            );
        }
    };
    // Judged with the highest version accepted; a version whose answer is unknown might be
    // served by another stack.
    match obs.legacy_unknown() {
        Some(r) => out.inconclusive(HEARTBLEED, &r),
        None => out.pass(HEARTBLEED, message, Evidence::none()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn leaked_bytes_fail_and_only_their_count_is_reported() {
        let mut o = fixture::good();
        o.heartbeat = Some(Ok(Heartbeat::Leaked {
            claimed: 4096,
            returned: 4112,
        }));
        let got = fixture::run(&RULE, &o);
        assert_eq!(got[0].1, Status::Fail);
        assert!(got[0].2.contains("4112 bytes"), "{}", got[0].2);
        o.heartbeat = Some(Ok(Heartbeat::Ignored("alert unexpected_message".into())));
        assert_eq!(fixture::status(&RULE, &o, HEARTBLEED), Status::Pass);
    }
}
