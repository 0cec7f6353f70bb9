//! A CNAME whose target does not exist: the subdomain-takeover pattern.
//!
//! **At the end of the chain**: NXDOMAIN fails (the classic dangling CNAME). REFUSED fails
//! too: the same resolver answered for the name but will not answer for the target, so no
//! server it can reach serves the target's zone (a lame or deleted delegation: whoever creates
//! that zone at the DNS provider takes the name over). SERVFAIL is inconclusive, with its own
//! message: it is what a resolver says for a lame delegation, but also for a DNSSEC failure or
//! an outage, so it is worth a look but not proof.

use super::{Answer2, DnsObservation, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Reason, ReasonKind, Status};

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
        Answer2::Refused => out.fail(
            DANGLING_CNAME,
            format!(
                "{} is a CNAME to {last}, for which the DNS server refuses to answer (REFUSED): nobody serves its zone (lame or deleted delegation, the takeover pattern)",
                obs.name
            ),
            evidence,
        ),
        Answer2::ServFail => {
            let reason = Reason::new(
                ReasonKind::Dns,
                format!(
                    "{} is a CNAME to {last}, which fails to resolve (SERVFAIL): a lame delegation (the takeover pattern), a DNSSEC failure or an outage; check the delegation of its zone",
                    obs.name
                ),
            );
            out.emit(
                DANGLING_CNAME,
                Status::Inconclusive,
                format!("could not decide: {}", reason.detail),
                evidence,
                Some(reason),
            );
        }
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
        o.cname = Ok(Some(CnameChain {
            hops: vec!["lame.cloud.test".into()],
            end: Answer2::Refused,
        }));
        assert_eq!(status(&RULE, &o, DANGLING_CNAME), Status::Fail);
        o.cname = Ok(Some(CnameChain {
            hops: vec!["broken.cloud.test".into()],
            end: Answer2::ServFail,
        }));
        assert_eq!(status(&RULE, &o, DANGLING_CNAME), Status::Inconclusive);
    }
}
