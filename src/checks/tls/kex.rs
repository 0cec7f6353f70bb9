//! Key exchange: finite-field Diffie-Hellman groups of at least 2048 bits (Logjam). The
//! evidence records the named groups the server accepts and the DH sizes seen.

use super::{Rule, TlsObservation, registry};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const WEAK_DH: &str = "tls.kex.weak_dh";
const IDS: &[&str] = &[WEAK_DH];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// Smallest acceptable finite-field DH prime.
pub const MIN_DH_BITS: u32 = 2048;

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    let mut ev = Evidence::none();
    match &obs.groups {
        Some(Ok(g)) => {
            ev = ev.with(
                "groups",
                Observed::texts(g.iter().map(|c| registry::group_name(*c))),
            );
        }
        Some(Err(r)) => ev = ev.text("groups", format!("unknown: {}", r.detail)),
        None => {}
    }
    let sizes: Vec<String> = obs
        .dh_bits
        .iter()
        .map(|(s, b)| format!("{}: {b}-bit", registry::suite_name(*s)))
        .collect();
    ev = ev.with("dh_groups", Observed::texts(sizes));
    let weak: Vec<String> = obs
        .dh_bits
        .iter()
        .filter(|(_, b)| **b < MIN_DH_BITS)
        .map(|(s, b)| format!("{} ({b}-bit)", registry::suite_name(*s)))
        .collect();
    // DHE suites accepted whose group size was not seen.
    let unseen = obs.accepted().iter().any(|(_, s)| {
        registry::suite(*s).is_some_and(registry::Suite::is_dhe) && !obs.dh_bits.contains_key(s)
    });
    if !weak.is_empty() {
        out.fail(
            WEAK_DH,
            format!(
                "finite-field DH groups under {MIN_DH_BITS} bits: {}",
                weak.join(", ")
            ),
            ev,
        );
    } else if let Some(r) = obs.suites_unknown().or_else(|| obs.dh_error.clone()) {
        out.inconclusive(WEAK_DH, &r);
    } else if unseen {
        out.inconclusive(
            WEAK_DH,
            &crate::model::Reason::new(
                crate::model::ReasonKind::Malformed,
                "a DHE suite is accepted but its ServerKeyExchange could not be read",
            ),
        );
    } else if obs.dh_bits.is_empty() {
        out.pass(WEAK_DH, "no finite-field DHE suite is accepted", ev);
    } else {
        out.pass(
            WEAK_DH,
            format!("every DH group has at least {MIN_DH_BITS} bits"),
            ev,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::super::{Accepted, wire::Version};
    use super::*;
    use crate::model::Status;

    #[test]
    fn dh_1024_fails() {
        let mut o = fixture::good();
        o.suites.insert(
            Version::Tls12,
            Ok(Accepted {
                suites: vec![0x009E],
                server_order: None,
            }),
        );
        o.dh_bits.insert(0x009E, 1024);
        let r = fixture::run(&RULE, &o);
        assert_eq!(r[0].1, Status::Fail);
        assert_eq!(
            r[0].2,
            "finite-field DH groups under 2048 bits: TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 (1024-bit)"
        );
        o.dh_bits.insert(0x009E, 2048);
        assert_eq!(fixture::status(&RULE, &o, WEAK_DH), Status::Pass);
        o.dh_bits.clear();
        assert_eq!(fixture::status(&RULE, &o, WEAK_DH), Status::Inconclusive);
    }
}
