//! Protocol versions: SSL 3.0, TLS 1.0 and 1.1 must be refused; TLS 1.3 should be offered; at
//! least one of TLS 1.2 and 1.3 must be.

use super::wire::Version;
use super::{ProtocolState, Rule, TlsObservation};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const SSLV3: &str = "tls.protocol.sslv3";
pub(super) const TLS10: &str = "tls.protocol.tls10";
pub(super) const TLS11: &str = "tls.protocol.tls11";
pub(super) const NO_TLS13: &str = "tls.protocol.no_tls13";
pub(super) const NO_MODERN: &str = "tls.protocol.no_modern";
const IDS: &[&str] = &[SSLV3, TLS10, TLS11, NO_TLS13, NO_MODERN];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn evidence(obs: &TlsObservation) -> Evidence {
    let states = Version::ALL.into_iter().map(|v| {
        format!(
            "{v}: {}",
            match obs.state(v) {
                ProtocolState::Supported => "accepted".to_string(),
                ProtocolState::Refused(how) => format!("refused ({how})"),
                ProtocolState::Unknown(r) => format!("unknown ({})", r.detail),
            }
        )
    });
    Evidence::none()
        .with("protocols", Observed::texts(states))
        .text("endpoint", format!("{}:{}", obs.host, obs.port))
}

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    for (id, v) in [
        (SSLV3, Version::Ssl3),
        (TLS10, Version::Tls10),
        (TLS11, Version::Tls11),
    ] {
        match obs.state(v) {
            ProtocolState::Supported => out.fail(id, format!("{v} is accepted"), evidence(obs)),
            ProtocolState::Refused(how) => {
                out.pass(id, format!("{v} is refused ({how})"), evidence(obs));
            }
            ProtocolState::Unknown(r) => out.inconclusive(id, &r),
        }
    }
    match obs.state(Version::Tls13) {
        ProtocolState::Supported => out.pass(NO_TLS13, "TLS 1.3 is accepted", evidence(obs)),
        ProtocolState::Refused(how) => out.fail(
            NO_TLS13,
            format!("TLS 1.3 is not offered ({how})"),
            evidence(obs),
        ),
        ProtocolState::Unknown(r) => out.inconclusive(NO_TLS13, &r),
    }
    let modern = [obs.state(Version::Tls12), obs.state(Version::Tls13)];
    if modern.contains(&ProtocolState::Supported) {
        out.pass(NO_MODERN, "TLS 1.2 or 1.3 is accepted", evidence(obs));
    } else if let Some(r) = modern.iter().find_map(|s| match s {
        ProtocolState::Unknown(r) => Some(r.clone()),
        _ => None,
    }) {
        out.inconclusive(NO_MODERN, &r);
    } else {
        let offered: Vec<&str> = obs.supported().into_iter().map(Version::name).collect();
        out.fail(
            NO_MODERN,
            format!(
                "neither TLS 1.2 nor TLS 1.3 is accepted (only: {})",
                if offered.is_empty() {
                    "none".into()
                } else {
                    offered.join(", ")
                }
            ),
            evidence(obs),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn legacy_only_server() {
        let mut o = fixture::good();
        for v in Version::ALL {
            o.protocols.insert(
                v,
                if v <= Version::Tls10 {
                    ProtocolState::Supported
                } else {
                    ProtocolState::Refused("alert protocol_version".into())
                },
            );
        }
        let r: Vec<_> = fixture::run(&RULE, &o)
            .into_iter()
            .map(|(_, s, _)| s)
            .collect();
        use Status::*;
        assert_eq!(r, vec![Fail, Fail, Pass, Fail, Fail]);
        assert_eq!(
            fixture::run(&RULE, &o)[4].2,
            "neither TLS 1.2 nor TLS 1.3 is accepted (only: SSLv3, TLS 1.0)"
        );
    }
}
