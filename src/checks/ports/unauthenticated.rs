//! Services that answer without authentication (Redis PING, Memcached stats,
//! Elasticsearch's cluster information).

use super::unexpected::port_evidence;
use super::{OpenPort, PortsObservation, Rule, fail_ports, identification_gap, inconclusive_with};
use crate::engine::Emitter;
use crate::model::Evidence;

pub(super) const UNAUTHENTICATED: &str = "ports.unauthenticated_service";

pub(super) const RULE: Rule = Rule {
    ids: &[UNAUTHENTICATED],
    eval,
};

fn eval(obs: &PortsObservation, out: &mut Emitter) {
    // Judged on every open port: allowing a port never makes a service without a password fine.
    let open: Vec<&OpenPort> = obs
        .open
        .iter()
        .filter(|p| p.id.unauthenticated == Some(true))
        .collect();
    if !open.is_empty() {
        let list: Vec<String> = open
            .iter()
            .map(|p| format!("{} ({})", p.label(), p.id.note))
            .collect();
        return fail_ports(
            out,
            obs,
            UNAUTHENTICATED,
            format!("answers without authentication: {}", list.join(", ")),
            port_evidence(open.iter().copied()),
            &open,
            ("answers without authentication", |p| {
                format!("{} ({})", p.label(), p.id.note)
            }),
        );
    }
    let gap = identification_gap(obs, obs.open.iter()).or_else(|| obs.incomplete());
    if let Some(reason) = gap {
        let evidence = obs.counts(port_evidence(obs.open.iter()));
        return inconclusive_with(out, UNAUTHENTICATED, &reason, evidence);
    }
    let tested = obs
        .open
        .iter()
        .filter(|p| p.id.unauthenticated.is_some())
        .count();
    out.pass(
        UNAUTHENTICATED,
        format!("no service answered without authentication ({tested} tested)"),
        Evidence::none(),
    );
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{obs, port, status};
    use super::*;
    use crate::checks::ports::Service;
    use crate::model::Status;

    #[test]
    fn fails_only_on_services_that_answered_without_auth() {
        let locked = obs(vec![port("10.0.0.1:6379", Service::Redis, Some(false))]);
        assert_eq!(status(&RULE, &locked, UNAUTHENTICATED), Status::Pass);
        let mut open = obs(vec![port("10.0.0.1:6379", Service::Redis, Some(true))]);
        assert_eq!(status(&RULE, &open, UNAUTHENTICATED), Status::Fail);
        open.allowed.push(6379);
        assert_eq!(status(&RULE, &open, UNAUTHENTICATED), Status::Fail);
    }

    #[test]
    fn untested_ports_make_it_inconclusive() {
        let mut o = obs(vec![port("10.0.0.1:7000", Service::Unknown, None)]);
        o.unidentified = 1;
        assert_eq!(status(&RULE, &o, UNAUTHENTICATED), Status::Inconclusive);
        let mut tls = port("10.0.0.1:6379", Service::Tls, None);
        tls.id.likely = Some(Service::Redis);
        let mut o = obs(vec![tls]);
        o.allowed.push(6379);
        assert_eq!(status(&RULE, &o, UNAUTHENTICATED), Status::Inconclusive);
        let mut o = obs(vec![]);
        o.errors = 1;
        o.closed -= 1;
        assert_eq!(status(&RULE, &o, UNAUTHENTICATED), Status::Inconclusive);
    }
}
