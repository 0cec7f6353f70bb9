//! `auth.unprotected`: a protected route must refuse a request without credentials.

use super::{AuthObservation, Verdict, describe, judge};
use crate::model::Emitter;

pub(super) const UNPROTECTED: &str = "auth.unprotected";

pub(super) fn eval(obs: &AuthObservation, out: &mut Emitter) {
    let verdicts: Vec<(String, Verdict)> = obs
        .protected
        .iter()
        .map(|p| {
            let v = match &p.anonymous {
                Ok(ex) if (200..300).contains(&ex.status) => {
                    Verdict::Bad(format!("served without credentials ({})", describe(ex)))
                }
                Ok(ex) => Verdict::Good(format!("refused without credentials ({})", describe(ex))),
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
