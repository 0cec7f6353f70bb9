//! Open ports beyond the target's `allowed_ports`.

use super::{OpenPort, PortsObservation, Rule, fail_ports, inconclusive_with};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

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
    if !unexpected.is_empty() {
        let list: Vec<String> = unexpected.iter().map(|p| p.label()).collect();
        return fail_ports(
            out,
            obs,
            UNEXPECTED_OPEN,
            format!(
                "{} open port{} not in allowed_ports: {}",
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                list.join(", ")
            ),
            obs.counts(port_evidence(unexpected.iter().copied())),
            &unexpected,
            ("open port not in allowed_ports", OpenPort::label),
        );
    }
    let evidence = obs.counts(port_evidence(obs.open.iter()));
    if let Some(reason) = obs.incomplete() {
        return inconclusive_with(out, UNEXPECTED_OPEN, &reason, evidence);
    }
    let open: Vec<String> = obs.open.iter().map(OpenPort::label).collect();
    let message = if open.is_empty() {
        format!(
            "no open port among the {} swept ({})",
            obs.ports_scanned, obs.port_list
        )
    } else {
        format!("only allowed ports are open: {}", open.join(", "))
    };
    out.pass(UNEXPECTED_OPEN, message, evidence);
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{obs, port, status};
    use super::*;
    use crate::checks::ports::Service;
    use crate::model::Status;

    #[test]
    fn judges_against_allowed_ports() {
        let mut closed = obs(vec![]);
        closed.expect_closed = true;
        assert_eq!(status(&RULE, &closed, UNEXPECTED_OPEN), Status::Pass);
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

    #[test]
    fn nothing_open_on_a_host_is_no_service_found() {
        let mut out = Emitter::new("ports", "t");
        (RULE.eval)(&obs(vec![]), &mut out);
        let o = out
            .finish()
            .into_iter()
            .find(|o| o.rule_id == UNEXPECTED_OPEN)
            .unwrap();
        assert_eq!(o.status, Status::Inconclusive);
        let reason = o.reason.unwrap();
        assert_eq!(reason.kind, crate::model::ReasonKind::NoService);
        assert!(
            reason.detail.starts_with("no service found: none of the 1000 swept ports (top1000) is open (1000 closed, 0 filtered)"),
            "{}",
            reason.detail
        );
        assert!(reason.detail.contains("expect_closed = true"));
    }

    #[test]
    fn an_incomplete_sweep_never_passes() {
        // Pairs not scanned (the system refused sockets).
        let mut o = obs(vec![]);
        o.closed -= 3;
        o.errors = 3;
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Inconclusive);
        // Pairs nobody accounted for (a sweep thread died).
        let mut o = obs(vec![]);
        o.closed -= 64;
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Inconclusive);
        // An address of the name was not swept.
        let mut o = obs(vec![]);
        o.not_scanned = vec!["10.0.0.9".parse().unwrap()];
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Inconclusive);
        // Nothing answered at all: down or fully filtered.
        let mut o = obs(vec![]);
        (o.closed, o.filtered) = (0, 1000);
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Inconclusive);
        // One address of the name never answered.
        let mut o = obs(vec![]);
        o.silent = vec!["10.0.0.2".parse().unwrap()];
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Inconclusive);
        // Some closed, the rest filtered: the host answered, but offers nothing.
        let mut o = obs(vec![]);
        (o.closed, o.filtered) = (1, 999);
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Inconclusive);
        // ...which is what a target with expect_closed promised; so is total silence.
        o.expect_closed = true;
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Pass);
        (o.closed, o.filtered) = (0, 1000);
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Pass);
        // A range (or a URL's host) with nothing open is not "no service found".
        let mut o = obs(vec![]);
        o.host = false;
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Pass);
        // A finding still fails, complete or not.
        let mut o = obs(vec![port("10.0.0.1:22", Service::Ssh, None)]);
        o.errors = 5;
        o.closed -= 5;
        assert_eq!(status(&RULE, &o, UNEXPECTED_OPEN), Status::Fail);
    }
}
