//! Plain HTTP must redirect to HTTPS at once (the Observatory's "redirection" test).

use super::{Chain, HttpObservation, PlainProbe, Rule};
use crate::model::{Emitter, Evidence, Observed};

pub(super) const NO_HTTPS_REDIRECT: &str = "http.no_https_redirect";

pub(super) const RULE: Rule = Rule {
    ids: &[NO_HTTPS_REDIRECT],
    eval,
};

fn eval(obs: &HttpObservation, out: &mut Emitter) {
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
        Some(Ok(to)) if to.scheme() == "https" => out.pass(
            NO_HTTPS_REDIRECT,
            format!("{} redirects to {to} ({})", first.url, first.status),
            evidence.text("location", to.as_str()),
        ),
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
        let mut broken = fixture::https(&[]);
        broken.plain = PlainProbe::Fetched(Err(Reason::new(ReasonKind::Timeout, "slow")));
        assert_eq!(
            fixture::status(&RULE, &broken, NO_HTTPS_REDIRECT),
            Status::Inconclusive
        );
    }
}
