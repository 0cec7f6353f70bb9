//! DROWN (CVE-2016-0800): a TLS server is exposed when its RSA key is also served over SSLv2,
//! by itself or by any other server (a mail server, an old appliance) that shares the key or
//! certificate: the SSLv2 server is an oracle that decrypts a recorded TLS key exchange.
//!
//! It is a scan-wide rule. Each target's result first records what it saw (the SHA-256 of
//! every leaf SubjectPublicKeyInfo it serves over TLS, and whether and with which key it
//! speaks SSLv2) in its evidence; then, once every job has finished, [`join`] decides every
//! result from the evidence of all of them (the engine calls it through
//! [`crate::engine::Family::join`]). A result passes only when every endpoint's SSLv2 answer is
//! known and none serves one of its keys; a scan split into shards cannot see the other
//! shards' endpoints, so a shard never passes it, and `secgate merge` ([`crate::merge`]) runs
//! the same join over every shard's results.

use std::collections::BTreeMap;

use super::sslv2::Sslv2;
use super::{ProtocolState, Rule, TlsObservation};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Outcome, Reason, ReasonKind, Status};

pub const DROWN: &str = "tls.vuln.drown";
const IDS: &[&str] = &[DROWN];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// Evidence key: hex SHA-256 of each leaf SubjectPublicKeyInfo served over TLS.
const KEYS: &str = "spki_sha256";
/// Evidence key: `accepted`, `refused` or `unknown`.
const SSLV2: &str = "sslv2";
/// Evidence key: hex SHA-256 of the SubjectPublicKeyInfo served over SSLv2.
const SSLV2_KEY: &str = "sslv2_spki_sha256";
/// Evidence key: the endpoints that serve one of this endpoint's keys over SSLv2.
const WHERE: &str = "sslv2_endpoints";

/// Hex SHA-256 of the SubjectPublicKeyInfo of a DER certificate.
pub fn spki_sha256(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    Some(super::cert::sha256_hex(cert.public_key().raw))
}

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    let (state, sslv2_key) = match &obs.sslv2 {
        Ok(Sslv2::Accepted { key: Ok(k), .. }) => ("accepted", Some(k.clone())),
        Ok(Sslv2::Accepted { key: Err(_), .. }) => ("accepted", None),
        Ok(Sslv2::Refused(_)) => ("refused", None),
        Err(_) => ("unknown", None),
    };
    let mut ev = Evidence::none().text(SSLV2, state);
    if let Some(k) = &sslv2_key {
        ev = ev.text(SSLV2_KEY, k.clone());
    }
    if obs.keys.is_empty() {
        // No key seen over TLS: no TLS version accepted at all (nothing DROWN can attack
        // here), or the certificates could not be read.
        let nothing_accepted = obs.protocols_error.is_none()
            && !obs.protocols.is_empty()
            && obs
                .protocols
                .values()
                .all(|s| matches!(s, ProtocolState::Refused(_)));
        if nothing_accepted {
            return out.emit(
                DROWN,
                Status::Skipped,
                "the server accepts no TLS version: no TLS traffic to decrypt here",
                ev,
                Some(Reason::new(
                    ReasonKind::Tls,
                    "the server accepts no TLS version",
                )),
            );
        }
        let reason = obs
            .certs
            .iter()
            .find_map(|c| c.as_ref().err().cloned())
            .or_else(|| obs.protocols_error.clone())
            .unwrap_or_else(|| Reason::new(ReasonKind::Bug, "no certificate key captured"));
        return out.emit(
            DROWN,
            Status::Inconclusive,
            format!("the server's TLS key is unknown: {}", reason.detail),
            ev,
            Some(reason),
        );
    }
    let ev = ev.with(KEYS, Observed::texts(obs.keys.iter().cloned()));
    // Decided by `join` once every endpoint is known; this stands if no join runs.
    out.emit(
        DROWN,
        Status::Inconclusive,
        "decided across the endpoints of the scan",
        ev,
        Some(Reason::new(
            ReasonKind::Bug,
            "DROWN is decided by the scan-wide join, which did not run",
        )),
    );
}

fn text<'a>(o: &'a Outcome, key: &str) -> Option<&'a str> {
    o.evidence.0.iter().find_map(|(k, v)| match v {
        Observed::Text(t) if *k == key => Some(t.as_str()),
        _ => None,
    })
}

fn texts(o: &Outcome, key: &str) -> Option<Vec<String>> {
    o.evidence.0.iter().find_map(|(k, v)| match v {
        Observed::List(items) if *k == key => Some(
            items
                .iter()
                .filter_map(|i| match i {
                    Observed::Text(t) => Some(t.clone()),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    })
}

/// What one endpoint's result says about its SSLv2 service.
enum Side {
    /// It does not speak SSLv2, or it is not a TLS endpoint of the scan (skipped).
    None,
    /// It serves this key over SSLv2.
    Key(String),
    /// Unknown: its answer to SSLv2, or the key it serves with it.
    Unknown(String),
}

/// Decide every `tls.vuln.drown` result of a scan from the evidence of all of them (other
/// results are left alone). `partial`: why endpoints of the scan are missing from `results`
/// (a shard), which keeps every result that does not fail from passing.
pub fn join(results: &mut [&mut Outcome], partial: Option<&str>) {
    let sides: Vec<(String, Side)> = results
        .iter()
        .filter(|o| o.rule_id == DROWN)
        .map(|o| {
            let side = match (o.status, text(o, SSLV2), text(o, SSLV2_KEY)) {
                (_, Some("refused"), _) => Side::None,
                (_, Some("accepted"), Some(k)) => Side::Key(k.to_string()),
                (_, Some("accepted"), None) => {
                    Side::Unknown("accepts SSLv2 with a certificate that could not be read".into())
                }
                (Status::Skipped, None, _) => Side::None,
                _ => Side::Unknown(match &o.reason {
                    Some(r) => format!("its SSLv2 answer is unknown ({})", r.detail),
                    None => "its SSLv2 answer is unknown".into(),
                }),
            };
            (o.target.clone(), side)
        })
        .collect();
    // Endpoints whose SSLv2 answer was recorded (not the targets without a TLS port).
    let probed = results
        .iter()
        .filter(|o| o.rule_id == DROWN && text(o, SSLV2).is_some())
        .count();
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unknown: Vec<String> = Vec::new();
    for (target, side) in &sides {
        match side {
            Side::Key(k) => by_key.entry(k.as_str()).or_default().push(target),
            Side::Unknown(why) => unknown.push(format!("{target}: {why}")),
            Side::None => {}
        }
    }
    for o in results.iter_mut().filter(|o| o.rule_id == DROWN) {
        let Some(keys) = texts(o, KEYS) else {
            continue; // its own TLS key is unknown, or it has no TLS: its result stands
        };
        let mut hits: Vec<String> = Vec::new();
        for k in &keys {
            for t in by_key.get(k.as_str()).into_iter().flatten() {
                let line = format!("{t} (key {}…)", k.get(..16).unwrap_or(k));
                if !hits.contains(&line) {
                    hits.push(line);
                }
            }
        }
        o.evidence.0.retain(|(k, _)| *k != WHERE);
        o.findings.clear();
        o.subjects.clear();
        if !hits.is_empty() {
            o.status = Status::Fail;
            o.reason = None;
            o.message = format!(
                "the server's TLS key is also served over SSLv2 by {}: a recorded TLS session can be decrypted through that SSLv2 server (DROWN)",
                hits.join(", ")
            );
            o.evidence.0.push((WHERE, Observed::texts(hits)));
            o.complete_findings();
        } else if let Some(first) = unknown.first() {
            o.status = Status::Inconclusive;
            let more = unknown.len() - 1;
            let detail = if more == 0 {
                format!("an endpoint of the scan may serve this key over SSLv2: {first}")
            } else {
                format!(
                    "endpoints of the scan may serve this key over SSLv2: {first} (and {more} more)"
                )
            };
            o.message = detail.clone();
            o.reason = Some(Reason::new(ReasonKind::Tls, detail));
        } else if let Some(why) = partial {
            o.status = Status::Inconclusive;
            o.message = format!("no endpoint this scan saw serves this key over SSLv2, but {why}");
            o.reason = Some(Reason::new(ReasonKind::Tls, o.message.clone()));
        } else {
            o.status = Status::Pass;
            o.reason = None;
            o.message = format!(
                "no endpoint of the scan ({probed} in all) serves this server's TLS key over SSLv2"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::super::sslv2::Sslv2;
    use super::*;

    fn result(target: &str, keys: &[&str], sslv2: Result<Sslv2, Reason>) -> Outcome {
        let mut o = fixture::good();
        o.keys = keys.iter().map(|k| (*k).to_string()).collect();
        o.sslv2 = sslv2;
        let mut out = Emitter::new(super::super::FAMILY, target);
        (RULE.eval)(&o, &mut out);
        out.finish().remove(0)
    }

    fn accepted(key: &str) -> Result<Sslv2, Reason> {
        Ok(Sslv2::Accepted {
            ciphers: vec![0x010080],
            key: Ok(key.to_string()),
        })
    }

    fn refused() -> Result<Sslv2, Reason> {
        Ok(Sslv2::Refused("alert".into()))
    }

    fn joined(mut all: Vec<Outcome>, partial: Option<&str>) -> Vec<Outcome> {
        let mut refs: Vec<&mut Outcome> = all.iter_mut().collect();
        join(&mut refs, partial);
        all
    }

    #[test]
    fn a_key_served_over_sslv2_anywhere_fails_every_tls_endpoint_with_it() {
        let got = joined(
            vec![
                result("https://a.test/", &["k1"], refused()),
                result("https://b.test/", &["k2"], refused()),
                result("c.test:4433", &["k9"], accepted("k1")),
            ],
            None,
        );
        assert_eq!(got[0].status, Status::Fail);
        assert!(got[0].message.contains("c.test:4433"), "{}", got[0].message);
        assert_eq!(got[0].findings.len(), 1);
        assert_eq!(got[1].status, Status::Pass, "{}", got[1].message);
        // The SSLv2 server itself, with another TLS key, is not DROWN-exposed by its own key.
        assert_eq!(got[2].status, Status::Pass);
        // Itself included.
        let got = joined(vec![result("a", &["k1"], accepted("k1"))], None);
        assert_eq!(got[0].status, Status::Fail);
        // Joining again decides the same.
        let again = joined(got.clone(), None);
        assert_eq!(again[0].status, Status::Fail);
        assert_eq!(again[0].findings.len(), 1);
    }

    #[test]
    fn an_unknown_sslv2_answer_or_a_shard_never_passes() {
        let timeout = Reason::new(ReasonKind::Timeout, "silent");
        let got = joined(
            vec![
                result("a", &["k1"], refused()),
                result("b", &["k2"], Err(timeout)),
            ],
            None,
        );
        assert_eq!(got[0].status, Status::Inconclusive);
        assert!(got[0].message.contains("b: "), "{}", got[0].message);
        let got = joined(vec![result("a", &["k1"], refused())], Some("other shards"));
        assert_eq!(got[0].status, Status::Inconclusive);
        // A certain finding still fails in a shard.
        let got = joined(vec![result("a", &["k1"], accepted("k1"))], Some("shards"));
        assert_eq!(got[0].status, Status::Fail);
        // Without a join the result is undecided, never a pass.
        let one = result("a", &["k1"], refused());
        assert_eq!(one.status, Status::Inconclusive);
    }

    #[test]
    fn no_tls_key_leaves_the_result_undecided_or_skipped() {
        let mut o = fixture::failed();
        o.keys.clear();
        assert_eq!(fixture::status(&RULE, &o, DROWN), Status::Inconclusive);
        let mut o = fixture::good();
        o.keys.clear();
        for s in o.protocols.values_mut() {
            *s = ProtocolState::Refused("alert".into());
        }
        assert_eq!(fixture::status(&RULE, &o, DROWN), Status::Skipped);
    }
}
