//! `auth.no_lockout`: repeated failed logins for one account must meet a lockout or throttling
//! (OWASP WSTG-ATHN-03). Signals: 429/423/503, Retry-After, lockout words in the body, a
//! changed status, refused connections, a response delay that grows to ≥ 1 s and ≥ 5× the
//! first responses, or, when none of those shows, the real password refused afterwards (a
//! silent lockout).

use super::{
    Answer, AuthObservation, LoginProbe, Verdict, judge_logins, stats, throttled,
    wrong_password_accepted,
};
use crate::model::{Emitter, Reason, ReasonKind};

pub(super) const NO_LOCKOUT: &str = "auth.no_lockout";

/// The first attempt (1-based) that shows a lockout or throttling signal, and the signal.
pub fn signal(attempts: &[Answer]) -> Option<(usize, String)> {
    let first_status = attempts
        .iter()
        .find_map(|a| a.as_ref().ok().map(|ex| ex.status));
    let early: Vec<f64> = attempts
        .iter()
        .take(3)
        .filter_map(|a| a.as_ref().ok().map(|ex| ex.elapsed.as_secs_f64()))
        .collect();
    let baseline = stats::median(&early);
    for (i, a) in attempts.iter().enumerate() {
        match a {
            Ok(ex) => {
                if let Some(w) = throttled(ex) {
                    return Some((i + 1, w));
                }
                if let Some(s0) = first_status.filter(|s0| *s0 != ex.status) {
                    return Some((i + 1, format!("status changed from {s0} to {}", ex.status)));
                }
                let t = ex.elapsed.as_secs_f64();
                if i >= 3 && t >= 1.0 && t >= 5.0 * baseline {
                    return Some((
                        i + 1,
                        format!("response delayed to {t:.1} s (first responses {baseline:.2} s)"),
                    ));
                }
            }
            Err(r) if i > 0 && matches!(r.kind, ReasonKind::Refused | ReasonKind::Reset) => {
                return Some((i + 1, format!("connection {}", r.kind.as_str())));
            }
            Err(_) => {}
        }
    }
    None
}

fn verdict(p: &LoginProbe) -> Verdict {
    if let Err(r) = p.baseline_ok() {
        return Verdict::Undecided(r);
    }
    if let Some((n, s)) = signal(&p.attempts) {
        return Verdict::Good(format!(
            "failed logins for {} met a lockout or throttle at attempt {n}: {s}",
            p.username
        ));
    }
    if let Some(Err(r)) = p.attempts.iter().find(|a| a.is_err()) {
        return Verdict::Undecided(r.clone());
    }
    if p.attempts
        .iter()
        .flatten()
        .any(|ex| p.endpoint.is_success(ex.status, &ex.body))
    {
        return wrong_password_accepted();
    }
    let n = p.attempts.len();
    let status = p
        .attempts
        .first()
        .and_then(|a| a.as_ref().ok())
        .map(|ex| ex.status)
        .unwrap_or_default();
    match &p.after {
        Some(Ok(ex)) if !p.endpoint.is_success(ex.status, &ex.body) => Verdict::Good(format!(
            "after {n} failed logins the real password is refused ({}): silent lockout",
            ex.status
        )),
        Some(Ok(_)) => Verdict::Bad(format!(
            "{n} failed logins for {} were all answered {status} alike, and the real password still logs in: no lockout or throttling",
            p.username
        )),
        Some(Err(r)) => Verdict::Undecided(r.clone()),
        None => Verdict::Undecided(Reason::new(
            ReasonKind::Bug,
            "the lockout probe did not finish",
        )),
    }
}

pub(super) fn eval(obs: &AuthObservation, out: &mut Emitter) {
    judge_logins(obs, out, NO_LOCKOUT, verdict);
}
