//! Ticketbleed (CVE-2016-9244): F5 BIG-IP resumed a TLS session ticket presented with a
//! session id shorter than 32 bytes by echoing 32 bytes of session id anyway, the bytes past the
//! client's coming from uninitialised memory (other connections' secrets). Only the lengths
//! are ever reported, never the echoed bytes.

use super::{Rule, TlsObservation};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const TICKETBLEED: &str = "tls.vuln.ticketbleed";
const IDS: &[&str] = &[TICKETBLEED];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// What resuming a session ticket with a 1-byte session id got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ticketbleed {
    /// The server issued no session ticket in a full TLS 1.2 handshake that asked for one.
    NoTicket,
    /// It issued one, and answered the resumption with a full handshake (the detail says how).
    NotResumed(String),
    /// It resumed the session and echoed a session id of `returned` bytes for the `sent` the
    /// client sent; `returned > sent` (with the client's bytes first) is the leak.
    Resumed {
        /// Bytes of session id sent.
        sent: usize,
        /// Bytes of session id echoed.
        returned: usize,
        /// Whether the echo starts with the bytes sent.
        echoes_ours: bool,
    },
}

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    let n = |x: usize| Observed::Number(i64::try_from(x).unwrap_or(i64::MAX));
    match &obs.ticketbleed {
        Some(Ok(Ticketbleed::Resumed {
            sent,
            returned,
            echoes_ours: true,
        })) if returned > sent => out.fail(
            TICKETBLEED,
            format!(
                "the server resumed a session ticket sent with a {sent}-byte session id and echoed a {returned}-byte session id: the {} extra bytes are its memory (Ticketbleed)",
                returned - sent
            ),
            Evidence::none()
                .with("session_id_sent", n(*sent))
                .with("session_id_returned", n(*returned)),
        ),
        Some(Ok(found)) => {
            let (message, ev) = match found {
                Ticketbleed::NoTicket => (
                    "the server issues no session ticket (TLS 1.2), which Ticketbleed needs".to_string(),
                    Evidence::none().with("ticket", Observed::Bool(false)),
                ),
                Ticketbleed::NotResumed(how) => (
                    format!("the server does not resume its session ticket ({how})"),
                    Evidence::none().with("ticket", Observed::Bool(true)),
                ),
                Ticketbleed::Resumed { sent, returned, .. } => (
                    format!(
                        "the server resumed a session ticket and echoed a {returned}-byte session id for the {sent}-byte one sent"
                    ),
                    Evidence::none()
                        .with("session_id_sent", n(*sent))
                        .with("session_id_returned", n(*returned)),
                ),
            };
            match obs.legacy_unknown() {
                Some(r) => out.inconclusive(TICKETBLEED, &r),
                None => out.pass(TICKETBLEED, message, ev),
            }
        }
        Some(Err(r)) => out.inconclusive(TICKETBLEED, r),
        None => obs.no_legacy(
            out,
            TICKETBLEED,
            "only TLS 1.3 is accepted, whose session resumption Ticketbleed does not affect",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn a_longer_echo_fails_and_only_lengths_are_reported() {
        let mut o = fixture::good();
        assert_eq!(fixture::status(&RULE, &o, TICKETBLEED), Status::Pass);
        o.ticketbleed = Some(Ok(Ticketbleed::Resumed {
            sent: 1,
            returned: 32,
            echoes_ours: true,
        }));
        let got = fixture::run(&RULE, &o);
        assert_eq!(got[0].1, Status::Fail);
        assert!(got[0].2.contains("31 extra bytes"), "{}", got[0].2);
        o.ticketbleed = Some(Ok(Ticketbleed::Resumed {
            sent: 1,
            returned: 1,
            echoes_ours: true,
        }));
        assert_eq!(fixture::status(&RULE, &o, TICKETBLEED), Status::Pass);
        o.ticketbleed = Some(Ok(Ticketbleed::NoTicket));
        assert_eq!(fixture::status(&RULE, &o, TICKETBLEED), Status::Pass);
        o.ticketbleed = None;
        assert_eq!(fixture::status(&RULE, &o, TICKETBLEED), Status::Pass);
    }
}
