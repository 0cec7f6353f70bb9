//! The server against a policy profile's TLS lists (`--profile`, [`crate::profile`]): protocol
//! versions, cipher suites, the server's suite order, key-exchange groups, and the leaf
//! certificate's key, signature and lifetime, as a profile such as Mozilla's Server Side TLS
//! guidelines states them (sslyze's `mozilla_config_checker.py` checks the same lists).
//!
//! Each rule judges only what the profile sets: a profile that names no list for it (the
//! `default` profile names none) leaves the rule `skipped`, with the reason, so the score is
//! the catalogue's until a profile asks for more.

use std::collections::BTreeMap;

use super::registry;
use super::wire::Version;
use super::{
    CertObservation, ProtocolState, Rule, TlsObservation, cert, cert_evidence, per_certificate,
};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const PROTOCOLS: &str = "tls.profile.protocols";
pub(super) const SUITES: &str = "tls.profile.suites";
pub(super) const SERVER_ORDER: &str = "tls.profile.server_order";
pub(super) const GROUPS: &str = "tls.profile.groups";
pub(super) const KEY_TYPE: &str = "tls.profile.key_type";
pub(super) const CERT_SIGNATURE: &str = "tls.profile.cert_signature";
pub(super) const CERT_LIFETIME: &str = "tls.profile.cert_lifetime";

const CONNECTION_IDS: &[&str] = &[PROTOCOLS, SUITES, SERVER_ORDER, GROUPS];
const CERT_IDS: &[&str] = &[KEY_TYPE, CERT_SIGNATURE, CERT_LIFETIME];

/// Protocols, suites, order and groups.
pub(super) const RULE: Rule = Rule {
    ids: CONNECTION_IDS,
    eval,
};

/// The leaf certificate's key, signature and lifetime, per certificate presented.
pub(super) const CERT_RULE: Rule = Rule {
    ids: CERT_IDS,
    eval: eval_certs,
};

fn unset(obs: &TlsObservation, what: &str) -> String {
    format!(
        "the profile {} sets no {what} (a profile such as mozilla-intermediate does: `secgate profiles`)",
        obs.profile.label()
    )
}

fn names(versions: &[Version]) -> String {
    versions
        .iter()
        .map(|v| v.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    protocols(obs, out);
    suites(obs, out);
    server_order(obs, out);
    groups(obs, out);
}

fn protocols(obs: &TlsObservation, out: &mut Emitter) {
    let Some(allowed) = &obs.profile.tls.protocols else {
        return out.skipped(PROTOCOLS, unset(obs, "protocol versions"));
    };
    let label = obs.profile.label();
    let supported = obs.supported();
    let outside: Vec<Version> = supported
        .iter()
        .copied()
        .filter(|v| !allowed.contains(v))
        .collect();
    let ev = || {
        Evidence::none()
            .with(
                "accepted",
                Observed::texts(supported.iter().map(|v| v.name())),
            )
            .with("allowed", Observed::texts(allowed.iter().map(|v| v.name())))
    };
    if !outside.is_empty() {
        return out.fail(
            PROTOCOLS,
            format!(
                "versions outside {label} accepted: {} (it allows only {})",
                names(&outside),
                names(allowed)
            ),
            ev(),
        );
    }
    if let Some(r) = &obs.protocols_error {
        return out.inconclusive(PROTOCOLS, r);
    }
    // A version the profile does not allow whose answer is unknown may be accepted.
    if let Some(r) = Version::ALL
        .into_iter()
        .filter(|v| !allowed.contains(v))
        .find_map(|v| match obs.state(v) {
            ProtocolState::Unknown(r) => Some(r),
            _ => None,
        })
    {
        return out.inconclusive(PROTOCOLS, &r);
    }
    if supported.is_empty() {
        return out.skipped(PROTOCOLS, "the server accepts no protocol version");
    }
    out.pass(
        PROTOCOLS,
        format!("only {} accepted, as {label} allows", names(&supported)),
        ev(),
    );
}

fn suites(obs: &TlsObservation, out: &mut Emitter) {
    let t = &obs.profile.tls;
    if t.suites.is_none() && t.tls13_suites.is_none() {
        return out.skipped(SUITES, unset(obs, "cipher suite lists"));
    }
    let label = obs.profile.label();
    let accepted = obs.accepted();
    // Each suite outside the profile's list once, with the versions that accept it.
    let mut outside: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    let mut order: Vec<u16> = Vec::new();
    for (version, code) in &accepted {
        let list = if *version == Version::Tls13 {
            &t.tls13_suites
        } else {
            &t.suites
        };
        let Some(list) = list else { continue };
        if !list.contains(code) {
            if !outside.contains_key(code) {
                order.push(*code);
            }
            outside.entry(*code).or_default().push(version.name());
        }
    }
    if !order.is_empty() {
        let hits: Vec<String> = order
            .iter()
            .map(|c| {
                format!(
                    "{} ({})",
                    registry::suite_name(*c),
                    outside.get(c).map(|v| v.join("/")).unwrap_or_default()
                )
            })
            .collect();
        return out.fail(
            SUITES,
            format!("suites outside {label} accepted: {}", hits.join(", ")),
            obs.suites_evidence()
                .with("outside_profile", Observed::texts(hits)),
        );
    }
    if let Some(r) = obs.suites_unknown() {
        return out.inconclusive(SUITES, &r);
    }
    if accepted.is_empty() {
        return out.skipped(SUITES, "the server accepts no cipher suite");
    }
    out.pass(
        SUITES,
        format!("every accepted suite is in the lists of {label}"),
        obs.suites_evidence(),
    );
}

fn server_order(obs: &TlsObservation, out: &mut Emitter) {
    match obs.profile.tls.server_order {
        None => return out.skipped(SERVER_ORDER, unset(obs, "suite order")),
        Some(false) => {
            return out.skipped(
                SERVER_ORDER,
                format!(
                    "the profile {} lets clients choose the suite",
                    obs.profile.label()
                ),
            );
        }
        Some(true) => {}
    }
    let label = obs.profile.label();
    let mut client = Vec::new();
    let mut judged = Vec::new();
    let mut unknown = None;
    for (v, r) in obs.suites.iter().filter(|(v, _)| **v <= Version::Tls12) {
        match r {
            Ok(a) => match a.server_order {
                Some(false) => client.push(v.name()),
                Some(true) => judged.push(format!("{v}: server order")),
                None => judged.push(format!("{v}: one suite")),
            },
            Err(reason) => unknown = unknown.or_else(|| Some(reason.clone())),
        }
    }
    if !client.is_empty() {
        return out.fail(
            SERVER_ORDER,
            format!(
                "the client's suite order is followed with {} ({label} requires the server's own)",
                client.join(", ")
            ),
            obs.suites_evidence(),
        );
    }
    if let Some(r) = unknown.or_else(|| obs.legacy_unknown()) {
        return out.inconclusive(SERVER_ORDER, &r);
    }
    if judged.is_empty() {
        return out.skipped(
            SERVER_ORDER,
            "no TLS 1.2 or older version is accepted (with TLS 1.3 the client's preference is usual)",
        );
    }
    out.pass(
        SERVER_ORDER,
        format!("the server imposes its order ({})", judged.join("; ")),
        obs.suites_evidence(),
    );
}

fn groups(obs: &TlsObservation, out: &mut Emitter) {
    let Some(allowed) = &obs.profile.tls.groups else {
        return out.skipped(GROUPS, unset(obs, "key-exchange groups"));
    };
    let label = obs.profile.label();
    let seen = match &obs.groups {
        // No group probe ran: nothing to judge, unless what the server accepts is unknown.
        None => {
            if let Some(r) = obs.suites_unknown() {
                return out.inconclusive(GROUPS, &r);
            }
            return out.skipped(
                GROUPS,
                "no ephemeral elliptic-curve or TLS 1.3 key exchange was negotiated",
            );
        }
        Some(Err(r)) => return out.inconclusive(GROUPS, r),
        Some(Ok(g)) => g,
    };
    let named = |g: &[u16]| {
        g.iter()
            .map(|c| registry::group_name(*c))
            .collect::<Vec<_>>()
    };
    let ev = Evidence::none()
        .with("groups", Observed::texts(named(seen)))
        .with("allowed", Observed::texts(named(allowed)));
    let outside: Vec<u16> = seen
        .iter()
        .copied()
        .filter(|g| !allowed.contains(g))
        .collect();
    if !outside.is_empty() {
        return out.fail(
            GROUPS,
            format!(
                "groups outside {label} accepted: {}",
                named(&outside).join(", ")
            ),
            ev,
        );
    }
    if seen.is_empty() {
        return out.skipped(GROUPS, "the server selected none of the groups offered");
    }
    out.pass(
        GROUPS,
        format!(
            "every group accepted is in {label}: {}",
            named(seen).join(", ")
        ),
        ev,
    );
}

fn eval_certs(obs: &TlsObservation, out: &mut Emitter) {
    let t = &obs.profile.tls;
    // A profile that sets none of these (the default) leaves them skipped, whatever the
    // certificate handshake gave (a timed-out server too).
    if !t.judges_keys() && t.certificate_signatures.is_none() && t.max_cert_lifetime_days.is_none()
    {
        out.skipped(KEY_TYPE, unset(obs, "certificate key types"));
        out.skipped(
            CERT_SIGNATURE,
            unset(obs, "certificate signature algorithms"),
        );
        out.skipped(CERT_LIFETIME, unset(obs, "certificate lifetime"));
        return;
    }
    per_certificate(obs, out, CERT_IDS, judge_cert);
}

fn judge_cert(obs: &TlsObservation, c: &CertObservation, out: &mut Emitter) {
    let t = &obs.profile.tls;
    let label = obs.profile.label();
    let Some(leaf) = c.leaf() else {
        for id in CERT_IDS {
            out.skipped(id, "no certificate");
        }
        return;
    };
    let ev = || cert_evidence(c, obs.now);

    // Key type, curve and size.
    if t.judges_keys() {
        let mut problems = Vec::new();
        if let Some(types) = &t.certificate_types
            && !types.iter().any(|k| k.certificate_name() == leaf.key_type)
        {
            let allowed: Vec<&str> = types.iter().map(|k| k.as_str()).collect();
            problems.push(format!(
                "a {} key (the profile allows {})",
                leaf.key_type,
                allowed.join(", ")
            ));
        }
        if leaf.key_type == "EC"
            && let Some(curves) = &t.certificate_curves
            && !leaf.curve.as_ref().is_some_and(|c| curves.contains(c))
        {
            problems.push(format!(
                "curve {} (the profile allows {})",
                leaf.curve.as_deref().unwrap_or("unknown"),
                curves.join(", ")
            ));
        }
        if leaf.key_type == "RSA"
            && let Some(min) = t.rsa_min_bits
            && leaf.key_bits < min
        {
            problems.push(format!(
                "RSA {} bits (the profile asks for at least {min})",
                leaf.key_bits
            ));
        }
        if problems.is_empty() {
            out.pass(
                KEY_TYPE,
                format!(
                    "the leaf's key ({}) is one {label} allows",
                    leaf.key_label()
                ),
                ev(),
            );
        } else {
            out.fail(
                KEY_TYPE,
                format!(
                    "the leaf ({}) has {}, outside {label}",
                    leaf.subject,
                    problems.join(" and ")
                ),
                ev(),
            );
        }
    } else {
        out.skipped(KEY_TYPE, unset(obs, "certificate key types"));
    }

    match &t.certificate_signatures {
        None => out.skipped(
            CERT_SIGNATURE,
            unset(obs, "certificate signature algorithms"),
        ),
        Some(allowed) if allowed.contains(&leaf.signature) => out.pass(
            CERT_SIGNATURE,
            format!(
                "the leaf is signed with {}, which {label} allows",
                leaf.signature
            ),
            ev(),
        ),
        Some(allowed) => out.fail(
            CERT_SIGNATURE,
            format!(
                "the leaf ({}) is signed with {}, outside {label} ({})",
                leaf.subject,
                leaf.signature,
                allowed.join(", ")
            ),
            ev(),
        ),
    }

    match t.max_cert_lifetime_days {
        None => out.skipped(CERT_LIFETIME, unset(obs, "certificate lifetime")),
        Some(max) => {
            // Both ends count: exactly `max` days between notBefore and notAfter is over.
            let days = leaf.lifetime_days();
            let ev = ev().with("lifetime_days", Observed::Number(days));
            if leaf.lifetime_over(i64::from(max)) {
                out.fail(
                    CERT_LIFETIME,
                    format!(
                        "the leaf ({}) is valid for more than {max} days ({days} days: {} to {}), over {label}",
                        leaf.subject,
                        cert::date(leaf.not_before),
                        cert::date(leaf.not_after)
                    ),
                    ev,
                );
            } else {
                out.pass(
                    CERT_LIFETIME,
                    format!("the leaf is valid for {days} days (at most {max} under {label})"),
                    ev,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::super::{Accepted, ProtocolState};
    use super::*;
    use crate::model::Status;

    fn under(name: &str) -> TlsObservation {
        let mut o = fixture::good();
        o.profile = crate::profile::resolve(name).unwrap();
        o
    }

    #[test]
    fn without_a_profile_list_every_rule_is_skipped() {
        let o = fixture::good();
        for rule in [&RULE, &CERT_RULE] {
            for (id, status, message) in fixture::run(rule, &o) {
                assert_eq!(status, Status::Skipped, "{id}");
                assert!(
                    message.contains("the profile default 1 sets no"),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn modern_refuses_tls12_and_its_suites_intermediate_allows_them() {
        // fixture::good(): TLS 1.2 (ECDHE-RSA AES-GCM) and TLS 1.3, an EC P-256 leaf.
        let modern = under("mozilla-modern");
        let got = fixture::run(&RULE, &modern);
        assert_eq!(got[0].1, Status::Fail);
        assert_eq!(
            got[0].2,
            "versions outside mozilla-modern 6.0 accepted: TLS 1.2 (it allows only TLS 1.3)"
        );
        assert_eq!(got[1].1, Status::Fail);
        assert_eq!(
            got[1].2,
            "suites outside mozilla-modern 6.0 accepted: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (TLS 1.2), TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (TLS 1.2)"
        );
        assert_eq!(got[2].1, Status::Skipped, "modern lets clients choose");
        assert_eq!(got[3].1, Status::Pass, "{}", got[3].2);
        let mid = under("mozilla-intermediate");
        let got = fixture::run(&RULE, &mid);
        assert!(got.iter().take(2).all(|g| g.1 == Status::Pass), "{got:#?}");
    }

    #[test]
    fn old_requires_the_server_order() {
        let mut o = under("mozilla-old");
        assert_eq!(fixture::status(&RULE, &o, SERVER_ORDER), Status::Pass);
        o.suites.insert(
            Version::Tls12,
            Ok(Accepted {
                suites: vec![0xC02F, 0xC030],
                server_order: Some(false),
            }),
        );
        let got = fixture::run(&RULE, &o);
        assert_eq!(got[2].1, Status::Fail);
        assert_eq!(
            got[2].2,
            "the client's suite order is followed with TLS 1.2 (mozilla-old 5.7 requires the server's own)"
        );
    }

    #[test]
    fn groups_outside_the_list_fail_and_unknown_versions_stay_undecided() {
        let mut o = under("mozilla-intermediate@5.7");
        o.groups = Some(Ok(vec![0x11EC, 29]));
        let got = fixture::run(&RULE, &o);
        assert_eq!(got[3].1, Status::Fail);
        assert_eq!(
            got[3].2,
            "groups outside mozilla-intermediate 5.7 accepted: X25519MLKEM768"
        );
        let mut o = under("mozilla-intermediate");
        o.groups = Some(Ok(vec![0x11EC, 29]));
        assert_eq!(fixture::status(&RULE, &o, GROUPS), Status::Pass);
        o.protocols.insert(
            Version::Tls10,
            ProtocolState::Unknown(crate::model::Reason::new(
                crate::model::ReasonKind::Timeout,
                "t",
            )),
        );
        assert_eq!(fixture::status(&RULE, &o, PROTOCOLS), Status::Inconclusive);
        assert_eq!(fixture::status(&RULE, &o, SUITES), Status::Inconclusive);
    }

    #[test]
    fn certificate_key_signature_and_lifetime_against_the_profile() {
        let mut o = under("mozilla-modern");
        // EC P-256, ecdsa-with-SHA256, 210 days.
        let got = fixture::run(&CERT_RULE, &o);
        assert_eq!(got[0].1, Status::Pass, "{}", got[0].2);
        assert_eq!(got[1].1, Status::Pass, "{}", got[1].2);
        assert_eq!(got[2].1, Status::Fail);
        assert!(
            got[2]
                .2
                .starts_with("the leaf (CN=app.test) is valid for more than 90 days (210 days: "),
            "{}",
            got[2].2
        );
        let leaf = &mut fixture::cert(&mut o).chain[0];
        leaf.key_type = "RSA".into();
        leaf.key_bits = 2048;
        leaf.curve = None;
        leaf.signature = "sha256WithRSAEncryption".into();
        leaf.not_after = leaf.not_before + 90 * 86_400 - 1;
        let got = fixture::run(&CERT_RULE, &o);
        assert_eq!(got[0].1, Status::Fail);
        assert_eq!(
            got[0].2,
            "the leaf (CN=app.test) has a RSA key (the profile allows ecdsa), outside mozilla-modern 6.0"
        );
        assert_eq!(got[1].1, Status::Fail);
        assert_eq!(got[2].1, Status::Pass, "{}", got[2].2);
        // Intermediate takes RSA of 2048 bits, not 1024.
        o.profile = crate::profile::resolve("mozilla-intermediate").unwrap();
        assert_eq!(fixture::status(&CERT_RULE, &o, KEY_TYPE), Status::Pass);
        fixture::cert(&mut o).chain[0].key_bits = 1024;
        let got = fixture::run(&CERT_RULE, &o);
        assert_eq!(
            got[0].2,
            "the leaf (CN=app.test) has RSA 1024 bits (the profile asks for at least 2048), outside mozilla-intermediate 6.0"
        );
    }
}
