//! Cleartext protocols that carry credentials: Telnet and FTP.

use super::unexpected::port_evidence;
use super::{OpenPort, PortsObservation, Rule, fail_ports, identification_gap, inconclusive_with};
use crate::engine::Emitter;
use crate::model::Evidence;

pub(super) const CLEARTEXT: &str = "ports.cleartext_protocol";

pub(super) const RULE: Rule = Rule {
    ids: &[CLEARTEXT],
    eval,
};

fn eval(obs: &PortsObservation, out: &mut Emitter) {
    let found: Vec<&OpenPort> = obs
        .open
        .iter()
        .filter(|p| p.id.service.is_cleartext())
        .collect();
    if found.is_empty() {
        if let Some(reason) = obs.incomplete() {
            let evidence = obs.counts(Evidence::none());
            return inconclusive_with(out, CLEARTEXT, &reason, evidence);
        }
        if obs.unidentified > 0 {
            let reason = identification_gap(obs, std::iter::empty());
            if let Some(reason) = reason {
                return inconclusive_with(out, CLEARTEXT, &reason, obs.counts(Evidence::none()));
            }
        }
        out.pass(
            CLEARTEXT,
            "no Telnet or FTP service found",
            Evidence::none(),
        );
    } else {
        let list: Vec<String> = found.iter().map(|p| p.label()).collect();
        fail_ports(
            out,
            obs,
            CLEARTEXT,
            format!("cleartext login protocol: {}", list.join(", ")),
            port_evidence(found.iter().copied()),
            &found,
            ("cleartext login protocol", OpenPort::label),
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
    fn telnet_and_ftp_fail_even_when_allowed() {
        let ssh = obs(vec![port("10.0.0.1:22", Service::Ssh, None)]);
        assert_eq!(status(&RULE, &ssh, CLEARTEXT), Status::Pass);
        for s in [Service::Telnet, Service::Ftp] {
            let mut o = obs(vec![port("10.0.0.1:23", s, None)]);
            o.allowed.push(23);
            assert_eq!(status(&RULE, &o, CLEARTEXT), Status::Fail);
        }
    }
}
