//! Downgrade protection (RFC 7507): a hello one version below the highest the server accepts,
//! carrying TLS_FALLBACK_SCSV, must be refused with `inappropriate_fallback`.

use super::wire::Version;
use super::{FallbackAnswer, ProtocolState, Rule, TlsObservation};
use crate::engine::Emitter;
use crate::model::{Evidence, Reason, ReasonKind};

pub(super) const MISSING: &str = "tls.fallback_scsv.missing";
const IDS: &[&str] = &[MISSING];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    if let Some(r) = &obs.protocols_error {
        return out.inconclusive(MISSING, r);
    }
    let f = match &obs.fallback {
        Some(Ok(f)) => f,
        Some(Err(r)) => return out.inconclusive(MISSING, r),
        None => {
            // Fewer than two versions accepted: unless one is unknown, there is nothing to
            // fall back to.
            if let Some(r) = Version::ALL.into_iter().find_map(|v| match obs.state(v) {
                ProtocolState::Unknown(r) => Some(r),
                _ => None,
            }) {
                return out.inconclusive(MISSING, &r);
            }
            return match obs.supported().as_slice() {
                [] => out.skipped(MISSING, "the server accepts no protocol version"),
                [only] => out.skipped(
                    MISSING,
                    format!(
                        "the server accepts only {only}: there is no lower version to fall back to"
                    ),
                ),
                _ => out.inconclusive(
                    MISSING,
                    &Reason::new(ReasonKind::Bug, "fallback not probed"),
                ),
            };
        }
    };
    let ev = Evidence::none()
        .text("fallback_hello", f.lower.name())
        .text("highest_version", f.higher.name());
    let (message, answer) = match &f.answer {
        FallbackAnswer::Accepted => {
            return out.fail(
                MISSING,
                format!(
                    "a ClientHello for {} with TLS_FALLBACK_SCSV was accepted although the server supports {}: a forced downgrade succeeds",
                    f.lower, f.higher
                ),
                ev.text("answer", format!("ServerHello {}", f.lower)),
            );
        }
        FallbackAnswer::Sentinel => (
            format!(
                "a ClientHello for {} with TLS_FALLBACK_SCSV was accepted, but with the TLS 1.3 downgrade sentinel, which TLS 1.3 clients check",
                f.lower
            ),
            "ServerHello with downgrade sentinel".to_string(),
        ),
        FallbackAnswer::Refused(how) => (
            format!(
                "a ClientHello for {} with TLS_FALLBACK_SCSV was refused ({how}): the server supports {}",
                f.lower, f.higher
            ),
            how.clone(),
        ),
    };
    // A version above the fallback one that is unknown might be the real highest.
    if let Some(r) = Version::ALL
        .into_iter()
        .filter(|v| *v > f.lower)
        .find_map(|v| match obs.state(v) {
            ProtocolState::Unknown(r) => Some(r),
            _ => None,
        })
    {
        return out.inconclusive(MISSING, &r);
    }
    out.pass(MISSING, message, ev.text("answer", answer));
}

#[cfg(test)]
mod tests {
    use super::super::Fallback;
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    fn with(answer: FallbackAnswer) -> TlsObservation {
        let mut o = fixture::good();
        o.fallback = Some(Ok(Fallback {
            lower: Version::Tls12,
            higher: Version::Tls13,
            answer,
        }));
        o
    }

    #[test]
    fn accepted_fails_refused_or_sentinel_passes() {
        assert_eq!(
            fixture::status(&RULE, &with(FallbackAnswer::Accepted), MISSING),
            Status::Fail
        );
        assert_eq!(
            fixture::status(&RULE, &with(FallbackAnswer::Sentinel), MISSING),
            Status::Pass
        );
        let refused = with(FallbackAnswer::Refused(
            "alert inappropriate_fallback".into(),
        ));
        assert_eq!(fixture::status(&RULE, &refused, MISSING), Status::Pass);
        // An unknown version above the fallback one might be the real highest.
        let mut unknown = refused;
        unknown.protocols.insert(
            Version::Tls13,
            ProtocolState::Unknown(Reason::new(ReasonKind::Timeout, "t")),
        );
        assert_eq!(
            fixture::status(&RULE, &unknown, MISSING),
            Status::Inconclusive
        );
    }

    #[test]
    fn one_version_is_skipped_unless_another_is_unknown() {
        let mut o = fixture::good();
        o.fallback = None;
        o.protocols
            .insert(Version::Tls12, ProtocolState::Refused("alert".into()));
        let got = fixture::run(&RULE, &o);
        assert_eq!(got[0].1, Status::Skipped);
        assert_eq!(
            got[0].2,
            "the server accepts only TLS 1.3: there is no lower version to fall back to"
        );
        o.protocols.insert(
            Version::Ssl3,
            ProtocolState::Unknown(Reason::new(ReasonKind::Timeout, "t")),
        );
        assert_eq!(fixture::status(&RULE, &o, MISSING), Status::Inconclusive);
    }
}
