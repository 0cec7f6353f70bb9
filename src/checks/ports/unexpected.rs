//! Open ports beyond the target's `allowed_ports`.

use super::{OpenPort, PortsObservation, Rule};
use crate::model::{Emitter, Evidence, Observed};

pub(super) const UNEXPECTED_OPEN: &str = "ports.unexpected_open";

pub(super) const RULE: Rule = Rule {
    ids: &[UNEXPECTED_OPEN],
    eval,
};

/// Evidence for a set of open ports: labels, banners and what identified them.
pub(super) fn port_evidence<'a>(ports: impl Iterator<Item = &'a OpenPort> + Clone) -> Evidence {
    let banners: Vec<Observed> = ports
        .clone()
        .filter_map(|p| {
            let b = p.id.banner.as_ref()?;
            Some(Observed::List(vec![
                Observed::text(p.addr.to_string()),
                Observed::from_bytes(b),
            ]))
        })
        .collect();
    let mut ev = Evidence::none()
        .with("ports", Observed::texts(ports.clone().map(OpenPort::label)))
        .with(
            "identified_by",
            Observed::texts(
                ports
                    .filter(|p| !p.id.note.is_empty())
                    .map(|p| format!("{}: {}", p.addr, p.id.note)),
            ),
        );
    if !banners.is_empty() {
        ev = ev.with("banners", Observed::List(banners));
    }
    ev
}

fn eval(obs: &PortsObservation, out: &mut Emitter) {
    let unexpected: Vec<&OpenPort> = obs.unexpected().collect();
    let counts = |ev: Evidence| {
        ev.with(
            "allowed_ports",
            Observed::List(
                obs.allowed
                    .iter()
                    .map(|p| Observed::Number(i64::from(*p)))
                    .collect(),
            ),
        )
        .with(
            "ports_scanned",
            Observed::Number(i64::try_from(obs.ports_scanned).unwrap_or(i64::MAX)),
        )
        .with(
            "closed",
            Observed::Number(i64::try_from(obs.closed).unwrap_or(i64::MAX)),
        )
        .with(
            "filtered",
            Observed::Number(i64::try_from(obs.filtered).unwrap_or(i64::MAX)),
        )
    };
    if unexpected.is_empty() {
        let open: Vec<String> = obs.open.iter().map(OpenPort::label).collect();
        let message = if open.is_empty() {
            format!(
                "no open port among the {} swept ({})",
                obs.ports_scanned, obs.port_list
            )
        } else {
            format!("only allowed ports are open: {}", open.join(", "))
        };
        out.pass(
            UNEXPECTED_OPEN,
            message,
            counts(port_evidence(obs.open.iter())),
        );
    } else {
        let list: Vec<String> = unexpected.iter().map(|p| p.label()).collect();
        out.fail(
            UNEXPECTED_OPEN,
            format!(
                "{} open port{} not in allowed_ports: {}",
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                list.join(", ")
            ),
            counts(port_evidence(unexpected.iter().copied())),
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
    fn judges_against_allowed_ports() {
        assert_eq!(status(&RULE, &obs(vec![]), UNEXPECTED_OPEN), Status::Pass);
        let web = obs(vec![port("10.0.0.1:443", Service::Tls, None)]);
        assert_eq!(status(&RULE, &web, UNEXPECTED_OPEN), Status::Pass);
        let ssh = obs(vec![
            port("10.0.0.1:443", Service::Tls, None),
            port("10.0.0.1:22", Service::Ssh, None),
        ]);
        assert_eq!(status(&RULE, &ssh, UNEXPECTED_OPEN), Status::Fail);
        let mut allowed = ssh.clone();
        allowed.allowed.push(22);
        assert_eq!(status(&RULE, &allowed, UNEXPECTED_OPEN), Status::Pass);
    }
}
