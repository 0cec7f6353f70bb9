//! `auth.unprotected`: a protected route must refuse a request without credentials: 401,
//! 403, or a redirect to another path (a login page). A redirect that only adds or drops a
//! trailing slash is followed first. 404, 405, 429 and 5xx say nothing about access control
//! and leave the rule undecided for that route.

use super::{Access, AuthObservation, Verdict, access, describe, judge};
use crate::engine::Emitter;
use crate::model::{Reason, ReasonKind};

pub(super) const UNPROTECTED: &str = "auth.unprotected";

pub(super) fn eval(obs: &AuthObservation, out: &mut Emitter) {
    let verdicts: Vec<(String, Verdict)> = obs
        .protected
        .iter()
        .map(|p| {
            let v = match &p.anonymous {
                Ok(ex) => match access(&p.url, ex) {
                    Access::Served => {
                        Verdict::Bad(format!("served without credentials ({})", describe(ex)))
                    }
                    Access::Refused(how) => {
                        Verdict::Good(format!("refused without credentials ({how})"))
                    }
                    Access::Unclear(why) => Verdict::Undecided(Reason::new(
                        ReasonKind::Malformed,
                        format!(
                            "{} answers {why}: cannot tell whether it requires credentials",
                            p.url
                        ),
                    )),
                },
                Err(r) => Verdict::Undecided(r.clone()),
            };
            (p.name.clone(), v)
        })
        .collect();
    judge(
        out,
        UNPROTECTED,
        &verdicts,
        "no protected or jwt endpoint is configured",
    );
}
