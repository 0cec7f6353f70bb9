//! Datastores reachable from where the scan runs.

use super::unexpected::port_evidence;
use super::{OpenPort, PortsObservation, Rule, fail_ports, identification_gap, inconclusive_with};
use crate::engine::Emitter;
use crate::model::Evidence;

pub(super) const EXPOSED_DATASTORE: &str = "ports.exposed_datastore";

pub(super) const RULE: Rule = Rule {
    ids: &[EXPOSED_DATASTORE],
    eval,
};

fn eval(obs: &PortsObservation, out: &mut Emitter) {
    // A datastore port listed in allowed_ports is an acknowledged exposure.
    let exposed: Vec<&OpenPort> = obs
        .unexpected()
        .filter(|p| p.id.service.is_datastore())
        .collect();
    if !exposed.is_empty() {
        let list: Vec<String> = exposed.iter().map(|p| p.label()).collect();
        return fail_ports(
            out,
            obs,
            EXPOSED_DATASTORE,
            format!("datastore reachable: {}", list.join(", ")),
            port_evidence(exposed.iter().copied()),
            &exposed,
            ("datastore reachable", OpenPort::label),
        );
    }
    let gap = identification_gap(obs, obs.unexpected()).or_else(|| obs.incomplete());
    if let Some(reason) = gap {
        let unexpected: Vec<&OpenPort> = obs.unexpected().collect();
        let evidence = obs.counts(port_evidence(unexpected.iter().copied()));
        return inconclusive_with(out, EXPOSED_DATASTORE, &reason, evidence);
    }
    out.pass(
        EXPOSED_DATASTORE,
        "no Redis, Memcached, MongoDB, Elasticsearch, MySQL or PostgreSQL reachable",
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
    fn datastores_fail_unless_allowed() {
        let web = obs(vec![port("10.0.0.1:8080", Service::Http, None)]);
        assert_eq!(status(&RULE, &web, EXPOSED_DATASTORE), Status::Pass);
        for s in [
            Service::Redis,
            Service::Memcached,
            Service::Mongodb,
            Service::Elasticsearch,
            Service::Mysql,
            Service::Postgresql,
        ] {
            let o = obs(vec![port("10.0.0.1:7000", s, None)]);
            assert_eq!(status(&RULE, &o, EXPOSED_DATASTORE), Status::Fail, "{s:?}");
        }
        let mut allowed = obs(vec![port("10.0.0.1:5432", Service::Postgresql, None)]);
        allowed.allowed.push(5432);
        assert_eq!(status(&RULE, &allowed, EXPOSED_DATASTORE), Status::Pass);
    }

    #[test]
    fn what_was_not_identified_is_not_passed() {
        // Ports cut by the cap or the time budget.
        let mut o = obs(vec![port("10.0.0.1:7000", Service::Unknown, None)]);
        o.unidentified = 1;
        assert_eq!(status(&RULE, &o, EXPOSED_DATASTORE), Status::Inconclusive);
        // Only TLS on Elasticsearch's port.
        let mut tls = port("10.0.0.1:9200", Service::Tls, None);
        tls.id.likely = Some(Service::Elasticsearch);
        let o = obs(vec![tls.clone()]);
        assert_eq!(status(&RULE, &o, EXPOSED_DATASTORE), Status::Inconclusive);
        assert_eq!(tls.label(), "10.0.0.1:9200 tls (likely elasticsearch)");
        // ...unless the port is allowed.
        let mut o = obs(vec![tls]);
        o.allowed.push(9200);
        assert_eq!(status(&RULE, &o, EXPOSED_DATASTORE), Status::Pass);
        // A host that never answered.
        let mut o = obs(vec![]);
        (o.closed, o.filtered) = (0, 1000);
        assert_eq!(status(&RULE, &o, EXPOSED_DATASTORE), Status::Inconclusive);
    }
}
