//! Cipher suites: nothing weak (NULL, anonymous, EXPORT, RC4, DES, 3DES, IDEA, RC2), no static
//! key exchange (no forward secrecy), and no CBC suites with TLS 1.2. The evidence lists the
//! accepted suites of every version.

use super::registry::{self, Suite};
use super::wire::Version;
use super::{Rule, TlsObservation};
use crate::engine::Emitter;
use crate::model::Observed;

pub(super) const WEAK: &str = "tls.cipher.weak";
pub(super) const NO_FORWARD_SECRECY: &str = "tls.cipher.no_forward_secrecy";
pub(super) const CBC: &str = "tls.cipher.cbc";
const IDS: &[&str] = &[WEAK, NO_FORWARD_SECRECY, CBC];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    let accepted = obs.accepted();
    let unknown = obs.suites_unknown();
    // Each offending suite once, with the versions that accept it:
    // `TLS_RSA_WITH_RC4_128_SHA (RC4, SSLv3/TLS 1.0)`.
    type Pred<'p> = &'p dyn Fn(Version, &Suite) -> Option<Option<&'static str>>;
    let found = |pred: Pred<'_>, with_versions: bool| -> Vec<String> {
        let mut groups: Vec<(u16, Option<&'static str>, Vec<&'static str>)> = Vec::new();
        for (version, code) in &accepted {
            let Some(tag) = registry::suite(*code).and_then(|s| pred(*version, s)) else {
                continue;
            };
            match groups.iter_mut().find(|g| g.0 == *code) {
                Some(g) => g.2.push(version.name()),
                None => groups.push((*code, tag, vec![version.name()])),
            }
        }
        groups
            .into_iter()
            .map(|(code, tag, versions)| {
                let name = registry::suite_name(code);
                match (tag, with_versions) {
                    (Some(t), true) => format!("{name} ({t}, {})", versions.join("/")),
                    (None, true) => format!("{name} ({})", versions.join("/")),
                    _ => name,
                }
            })
            .collect()
    };
    let judge = |out: &mut Emitter, id: &'static str, hits: Vec<String>, what: &str, ok: &str| {
        if !hits.is_empty() {
            out.fail(
                id,
                format!("{what}: {}", hits.join(", ")),
                obs.suites_evidence()
                    .with("offending", Observed::texts(hits)),
            );
        } else if let Some(r) = &unknown {
            out.inconclusive(id, r);
        } else {
            out.pass(id, ok, obs.suites_evidence());
        }
    };
    let weak = found(&|_, s| s.weakness().map(|w| Some(w.label())), true);
    judge(
        out,
        WEAK,
        weak,
        "weak cipher suites accepted",
        "no weak cipher suite is accepted",
    );
    let static_kex = found(&|_, s| (!s.forward_secret()).then_some(None), true);
    judge(
        out,
        NO_FORWARD_SECRECY,
        static_kex,
        "suites without forward secrecy accepted",
        "every accepted suite has an ephemeral key exchange",
    );
    let cbc = found(
        &|v, s| (v == Version::Tls12 && s.is_cbc()).then_some(None),
        false,
    );
    judge(
        out,
        CBC,
        cbc,
        "CBC suites accepted with TLS 1.2",
        "no CBC suite is accepted with TLS 1.2",
    );
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::super::{Accepted, ProtocolState};
    use super::*;
    use crate::model::Status;

    #[test]
    fn legacy_suites_fail_all_three() {
        let mut o = fixture::good();
        o.protocols.insert(Version::Tls10, ProtocolState::Supported);
        o.suites.insert(
            Version::Tls10,
            Ok(Accepted {
                suites: vec![0x000A],
                server_order: None,
            }),
        );
        o.suites.insert(
            Version::Tls12,
            Ok(Accepted {
                suites: vec![0xC02F, 0x002F],
                server_order: Some(false),
            }),
        );
        let r = fixture::run(&RULE, &o);
        assert_eq!(r[0].1, Status::Fail);
        assert_eq!(
            r[0].2,
            "weak cipher suites accepted: TLS_RSA_WITH_3DES_EDE_CBC_SHA (3DES, TLS 1.0)"
        );
        assert_eq!(r[1].1, Status::Fail);
        assert_eq!(
            r[1].2,
            "suites without forward secrecy accepted: TLS_RSA_WITH_3DES_EDE_CBC_SHA (TLS 1.0), TLS_RSA_WITH_AES_128_CBC_SHA (TLS 1.2)"
        );
        assert_eq!(r[2].1, Status::Fail);
        assert_eq!(
            r[2].2,
            "CBC suites accepted with TLS 1.2: TLS_RSA_WITH_AES_128_CBC_SHA"
        );
    }

    #[test]
    fn unknown_enumeration_is_inconclusive_unless_a_finding_is_certain() {
        let mut o = fixture::good();
        o.suites.insert(
            Version::Tls13,
            Err(crate::model::Reason::new(
                crate::model::ReasonKind::Timeout,
                "t",
            )),
        );
        assert_eq!(fixture::status(&RULE, &o, WEAK), Status::Inconclusive);
        o.suites.insert(
            Version::Tls12,
            Ok(Accepted {
                suites: vec![0x0005],
                server_order: None,
            }),
        );
        assert_eq!(fixture::status(&RULE, &o, WEAK), Status::Fail);
    }
}
