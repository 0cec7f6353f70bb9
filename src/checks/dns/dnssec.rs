//! Whether the name's zone is signed: it publishes DNSKEY records, and its parent publishes a
//! DS record for it. Keys without a DS are an island of security (RFC 4035 §4.3): no
//! validator can build a chain of trust to them, so they treat the zone as unsigned.

use super::{DnsObservation, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const UNSIGNED: &str = "dns.dnssec.unsigned";

pub(super) const RULE: Rule = Rule {
    ids: &[UNSIGNED],
    eval,
};

fn eval(obs: &DnsObservation, out: &mut Emitter) {
    let d = match &obs.dnssec {
        Err(reason) => return out.inconclusive(UNSIGNED, reason),
        Ok(d) => d,
    };
    let n = |v: usize| Observed::Number(i64::try_from(v).unwrap_or(i64::MAX));
    let evidence = Evidence::none()
        .text("zone", d.zone.clone())
        .with("dnskeys", n(d.dnskeys))
        .with("ds", n(d.ds));
    let plural = |v: usize| if v == 1 { "" } else { "s" };
    match (d.dnskeys, d.ds) {
        (0, _) => out.fail(
            UNSIGNED,
            format!(
                "the zone {} publishes no DNSKEY: it is not signed with DNSSEC",
                d.zone
            ),
            evidence,
        ),
        (keys, 0) => out.fail(
            UNSIGNED,
            format!(
                "the zone {} publishes {keys} DNSKEY record{} but its parent has no DS record for it: an island of security that validators treat as unsigned",
                d.zone,
                plural(keys)
            ),
            evidence,
        ),
        (keys, ds) => out.pass(
            UNSIGNED,
            format!(
                "the zone {} publishes {keys} DNSKEY record{} and its parent {ds} DS record{}",
                d.zone,
                plural(keys),
                plural(ds)
            ),
            evidence,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Dnssec;
    use super::super::fixture::{obs, status};
    use super::*;
    use crate::model::Status;

    #[test]
    fn a_zone_needs_keys_and_a_ds() {
        let mut o = obs();
        assert_eq!(status(&RULE, &o, UNSIGNED), Status::Pass);
        let zone = |dnskeys, ds| Dnssec {
            zone: "shop.test".into(),
            dnskeys,
            ds,
        };
        o.dnssec = Ok(zone(0, 0));
        assert_eq!(status(&RULE, &o, UNSIGNED), Status::Fail);
        // Keys, but no DS at the parent: an island of security.
        o.dnssec = Ok(zone(2, 0));
        assert_eq!(status(&RULE, &o, UNSIGNED), Status::Fail);
        o.dnssec = Ok(zone(2, 1));
        assert_eq!(status(&RULE, &o, UNSIGNED), Status::Pass);
    }
}
