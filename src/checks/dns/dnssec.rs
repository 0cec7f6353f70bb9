//! Whether the name's zone is signed (publishes DNSKEY records).

use super::{DnsObservation, Rule};
use crate::model::{Emitter, Evidence, Observed};

pub(super) const UNSIGNED: &str = "dns.dnssec.unsigned";

pub(super) const RULE: Rule = Rule {
    ids: &[UNSIGNED],
    eval,
};

fn eval(obs: &DnsObservation, out: &mut Emitter) {
    match &obs.dnssec {
        Err(reason) => out.inconclusive(UNSIGNED, reason),
        Ok((apex, 0)) => out.fail(
            UNSIGNED,
            format!("the zone {apex} publishes no DNSKEY: it is not signed with DNSSEC"),
            Evidence::none().text("zone", apex.clone()),
        ),
        Ok((apex, keys)) => out.pass(
            UNSIGNED,
            format!(
                "the zone {apex} publishes {keys} DNSKEY record{}",
                if *keys == 1 { "" } else { "s" }
            ),
            Evidence::none().text("zone", apex.clone()).with(
                "dnskeys",
                Observed::Number(i64::try_from(*keys).unwrap_or(i64::MAX)),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{obs, status};
    use super::*;
    use crate::model::Status;

    #[test]
    fn a_zone_without_keys_is_unsigned() {
        let mut o = obs();
        assert_eq!(status(&RULE, &o, UNSIGNED), Status::Pass);
        o.dnssec = Ok(("shop.test".into(), 0));
        assert_eq!(status(&RULE, &o, UNSIGNED), Status::Fail);
    }
}
