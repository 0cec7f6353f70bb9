//! `auth.verb_tampering`: a route that refuses an anonymous request must not serve HEAD, an
//! arbitrary verb, POST, a POST that asks to be treated as GET, or GET when it is configured
//! with another method (OWASP WSTG-CONF-06). Methods that change
//! state on a well-behaved server (PUT, PATCH, DELETE) are never sent.

use super::{Access, AuthObservation, Verdict, access, judge};
use crate::engine::Emitter;
use crate::model::{Reason, ReasonKind};

pub(super) const VERB_TAMPERING: &str = "auth.verb_tampering";

pub(super) fn eval(obs: &AuthObservation, out: &mut Emitter) {
    let verdicts: Vec<(String, Verdict)> = obs
        .protected
        .iter()
        .map(|p| {
            let refused = match &p.anonymous {
                Err(r) => return (p.name.clone(), Verdict::Undecided(r.clone())),
                Ok(ex) => match access(&p.url, ex) {
                    Access::Refused(how) => how,
                    Access::Served => {
                        return (
                            p.name.clone(),
                            Verdict::NotApplicable(
                                "already served without credentials (see auth.unprotected)".into(),
                            ),
                        );
                    }
                    Access::Unclear(why) => {
                        return (
                            p.name.clone(),
                            Verdict::Undecided(Reason::new(
                                ReasonKind::Malformed,
                                format!("{} answers {why}: no refusal to bypass", p.url),
                            )),
                        );
                    }
                },
            };
            let bypass: Vec<String> = p
                .verbs
                .iter()
                .filter_map(|(label, a)| match a {
                    Ok(ex) if (200..300).contains(&ex.status) => {
                        Some(format!("{label} ({})", ex.status))
                    }
                    _ => None,
                })
                .collect();
            let v = if !bypass.is_empty() {
                Verdict::Bad(format!(
                    "refuses GET ({refused}) but serves {}",
                    bypass.join(", ")
                ))
            } else if let Some((_, Err(r))) = p.verbs.iter().find(|(_, a)| a.is_err()) {
                Verdict::Undecided(r.clone())
            } else {
                let answers: Vec<String> = p
                    .verbs
                    .iter()
                    .filter_map(|(label, a)| {
                        a.as_ref().ok().map(|ex| format!("{label} {}", ex.status))
                    })
                    .collect();
                Verdict::Good(format!("refuses every verb ({})", answers.join(", ")))
            };
            (p.name.clone(), v)
        })
        .collect();
    judge(
        out,
        VERB_TAMPERING,
        &verdicts,
        "no protected or jwt endpoint is configured",
    );
}
