//! Plain HTTP must redirect to HTTPS at once (the Observatory's "redirection" test).

use super::{Chain, HttpObservation, PlainProbe, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const NO_HTTPS_REDIRECT: &str = "http.no_https_redirect";

pub(super) const RULE: Rule = Rule {
    ids: &[NO_HTTPS_REDIRECT],
    eval,
};

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    // An HTTPS response that redirects to plain HTTP undoes HTTPS, wherever it happens.
    if let Some((from, to)) = obs.main.as_ref().ok().and_then(downgrade) {
        return out.fail(
            NO_HTTPS_REDIRECT,
            format!("{from} redirects from HTTPS to plain HTTP ({to})"),
            Evidence::none()
                .text("url", from.as_str())
                .text("location", to.as_str()),
        );
    }
    let chain = match &obs.plain {
        PlainProbe::IsTarget => match &obs.main {
            Ok(chain) => chain,
            Err(reason) => return out.inconclusive(NO_HTTPS_REDIRECT, reason),
        },
        PlainProbe::NoListener { port, reason } => {
            return out.pass(
                NO_HTTPS_REDIRECT,
                format!(
                    "nothing serves plain HTTP on port {port} ({})",
                    reason.kind.as_str()
                ),
                Evidence::none()
                    .with("port", Observed::Number((*port).into()))
                    .text("connect", reason.detail.clone()),
            );
        }
        PlainProbe::Fetched(Err(reason)) => return out.inconclusive(NO_HTTPS_REDIRECT, reason),
        PlainProbe::Fetched(Ok(chain)) => chain,
    };
    judge(chain, out);
}

/// The first HTTPS hop that redirects to plain HTTP, and where to.
fn downgrade(chain: &Chain) -> Option<(&url::Url, url::Url)> {
    chain.hops.iter().find_map(|hop| match hop.location() {
        Some(Ok(to)) if hop.url.scheme() == "https" && to.scheme() == "http" => {
            Some((&hop.url, to))
        }
        _ => None,
    })
}

fn judge(chain: &Chain, out: &mut Emitter) {
    let Some(first) = chain.hops.first() else {
        return out.inconclusive(
            NO_HTTPS_REDIRECT,
            &crate::model::Reason::new(crate::model::ReasonKind::Bug, "empty fetch chain"),
        );
    };
    let evidence = Evidence::none()
        .text("url", first.url.as_str())
        .with("status", Observed::Number(first.status.into()));
    match first.location() {
        // The first redirect must stay on the host, or HSTS is never set for it (Observatory
        // "redirection-off-host-from-http").
        Some(Ok(to)) if to.scheme() == "https" && to.host_str() != first.url.host_str() => out
            .fail(
                NO_HTTPS_REDIRECT,
                format!(
                    "{} redirects first to another host ({to}), so HSTS is never set for this one",
                    first.url
                ),
                evidence.text("location", to.as_str()),
            ),
        Some(Ok(to)) if to.scheme() == "https" => match downgrade(chain) {
            Some((from, back)) => out.fail(
                NO_HTTPS_REDIRECT,
                format!(
                    "{} redirects to HTTPS, but {from} sends it back to plain HTTP ({back})",
                    first.url
                ),
                evidence.text("location", back.as_str()),
            ),
            None => out.pass(
                NO_HTTPS_REDIRECT,
                format!("{} redirects to {to} ({})", first.url, first.status),
                evidence.text("location", to.as_str()),
            ),
        },
        Some(Ok(to)) => out.fail(
            NO_HTTPS_REDIRECT,
            format!("{} redirects first to {to}, not to HTTPS", first.url),
            evidence.text("location", to.as_str()),
        ),
        Some(Err(why)) => out.fail(
            NO_HTTPS_REDIRECT,
            format!(
                "{} answers {} with an unusable redirect: {why}",
                first.url, first.status
            ),
            evidence,
        ),
        None if (200..300).contains(&first.status) => out.fail(
            NO_HTTPS_REDIRECT,
            format!(
                "{} serves content over plain HTTP (status {}) instead of redirecting to HTTPS",
                first.url, first.status
            ),
            evidence,
        ),
        None => out.fail(
            NO_HTTPS_REDIRECT,
            format!(
                "{} answers {} over plain HTTP instead of redirecting to HTTPS",
                first.url, first.status
            ),
            evidence,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ChainEnd, fixture};
    use super::*;
    use crate::model::{Reason, ReasonKind, Status};

    fn plain(status: u16, headers: &[(&str, &str)]) -> HttpObservation {
        let mut obs = fixture::https(&[]);
        obs.plain = PlainProbe::Fetched(Ok(Chain {
            hops: vec![fixture::hop("http://app.test/", status, headers)],
            end: ChainEnd::Final,
        }));
        obs
    }

    #[test]
    fn judges_the_first_answer() {
        assert_eq!(
            fixture::status(&RULE, &fixture::https(&[]), NO_HTTPS_REDIRECT),
            Status::Pass
        );
        assert_eq!(
            fixture::status(&RULE, &plain(200, &[]), NO_HTTPS_REDIRECT),
            Status::Fail
        );
        assert_eq!(
            fixture::status(&RULE, &plain(404, &[]), NO_HTTPS_REDIRECT),
            Status::Fail
        );
        let good = plain(301, &[("location", "https://app.test/")]);
        assert_eq!(
            fixture::status(&RULE, &good, NO_HTTPS_REDIRECT),
            Status::Pass
        );
        let http_first = plain(302, &[("location", "/login")]);
        assert_eq!(
            fixture::status(&RULE, &http_first, NO_HTTPS_REDIRECT),
            Status::Fail
        );
        let off_host = plain(301, &[("location", "https://www.app.test/")]);
        assert_eq!(
            fixture::status(&RULE, &off_host, NO_HTTPS_REDIRECT),
            Status::Fail
        );
        // HTTPS that sends the browser back to plain HTTP.
        let mut down = fixture::https(&[]);
        down.main = Ok(Chain {
            hops: vec![
                fixture::hop(
                    "https://app.test/",
                    302,
                    &[("location", "http://app.test/home")],
                ),
                fixture::hop("http://app.test/home", 200, &[]),
            ],
            end: ChainEnd::Final,
        });
        assert_eq!(
            fixture::status(&RULE, &down, NO_HTTPS_REDIRECT),
            Status::Fail
        );
        let mut broken = fixture::https(&[]);
        broken.plain = PlainProbe::Fetched(Err(Reason::new(ReasonKind::Timeout, "slow")));
        assert_eq!(
            fixture::status(&RULE, &broken, NO_HTTPS_REDIRECT),
            Status::Inconclusive
        );
    }
}
