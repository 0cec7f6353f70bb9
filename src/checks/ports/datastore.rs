//! Datastores reachable from where the scan runs.

use super::unexpected::port_evidence;
use super::{OpenPort, PortsObservation, Rule};
use crate::model::{Emitter, Evidence};

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
    if exposed.is_empty() {
        out.pass(
            EXPOSED_DATASTORE,
            "no Redis, Memcached, MongoDB, Elasticsearch, MySQL or PostgreSQL reachable",
            Evidence::none(),
        );
    } else {
        let list: Vec<String> = exposed.iter().map(|p| p.label()).collect();
        out.fail(
            EXPOSED_DATASTORE,
            format!("datastore reachable: {}", list.join(", ")),
            port_evidence(exposed.iter().copied()),
        );
    }
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
}
