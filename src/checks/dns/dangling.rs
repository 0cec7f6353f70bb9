//! A CNAME whose target does not exist: the subdomain-takeover pattern.

use super::{Answer2, DnsObservation, Rule};
use crate::model::{Emitter, Evidence, Observed};

pub(super) const DANGLING_CNAME: &str = "dns.dangling_cname";

pub(super) const RULE: Rule = Rule {
    ids: &[DANGLING_CNAME],
    eval,
};

fn eval(obs: &DnsObservation, out: &mut Emitter) {
    let chain = match &obs.cname {
        Err(reason) => return out.inconclusive(DANGLING_CNAME, reason),
        Ok(None) => {
            return out.pass(
                DANGLING_CNAME,
                format!("{} has no CNAME", obs.name),
                Evidence::none(),
            );
        }
        Ok(Some(chain)) => chain,
    };
    let last = chain.hops.last().cloned().unwrap_or_default();
    let evidence =
        Evidence::none().with("cname_chain", Observed::texts(chain.hops.iter().cloned()));
    match &chain.end {
        Answer2::NxDomain => out.fail(
            DANGLING_CNAME,
            format!(
                "{} is a CNAME to {last}, which does not exist (NXDOMAIN)",
                obs.name
            ),
            evidence,
        ),
        Answer2::NoAddress => out.pass(
            DANGLING_CNAME,
            format!(
                "{} is a CNAME to {last}, which exists (without an address record)",
                obs.name
            ),
            evidence,
        ),
        Answer2::Addresses(addrs) => out.pass(
            DANGLING_CNAME,
            format!("{} is a CNAME to {last}, which resolves", obs.name),
            evidence.with("addresses", Observed::texts(addrs.iter().cloned())),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::CnameChain;
    use super::super::fixture::{obs, status};
    use super::*;
    use crate::model::Status;

    #[test]
    fn a_cname_to_nxdomain_fails() {
        let mut o = obs();
        assert_eq!(status(&RULE, &o, DANGLING_CNAME), Status::Pass);
        o.cname = Ok(Some(CnameChain {
            hops: vec!["gone.cloud.test".into()],
            end: Answer2::NxDomain,
        }));
        assert_eq!(status(&RULE, &o, DANGLING_CNAME), Status::Fail);
        o.cname = Ok(Some(CnameChain {
            hops: vec!["ok.cloud.test".into()],
            end: Answer2::Addresses(vec!["192.0.2.1".into()]),
        }));
        assert_eq!(status(&RULE, &o, DANGLING_CNAME), Status::Pass);
    }
}
