//! `auth.no_lockout`: repeated failed logins for one account must meet a lockout or throttling
//! (OWASP WSTG-ATHN-03).
//!
//! *Hard* signals settle it at once: 429, 423, a Retry-After header. *Soft* signals (lockout
//! words that the first failed login did not contain, a 4xx status that changes and stays
//! changed, a response delay growing to ≥ 1 s and ≥ 5× the first ones, connections refused or
//! dropped twice in a row) are confirmed with the real password afterwards: refused, slowed
//! down, or unanswered means the account or client is being held back; served at once means
//! the soft signal was not a lockout.

use super::{
    Answer, AuthObservation, LOCKOUT_WORDS, LoginProbe, Verdict, judge_logins, stats, throttled,
    wrong_password_accepted,
};
use crate::engine::Emitter;
use crate::model::{Reason, ReasonKind};

pub(super) const NO_LOCKOUT: &str = "auth.no_lockout";

/// What showed that failed logins are being held back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Unambiguous: 429, 423, Retry-After.
    Hard(String),
    /// Needs confirming with the real password.
    Soft(String),
}

/// The first attempt (1-based) that shows a lockout or throttling signal, and the signal.
pub fn signal(attempts: &[Answer]) -> Option<(usize, Signal)> {
    let first = attempts.iter().find_map(|a| a.as_ref().ok());
    let first_status = first.map(|ex| ex.status);
    let first_body = first
        .map(|ex| String::from_utf8_lossy(&ex.body).to_ascii_lowercase())
        .unwrap_or_default();
    let early: Vec<f64> = attempts
        .iter()
        .take(3)
        .filter_map(|a| a.as_ref().ok().map(|ex| ex.elapsed.as_secs_f64()))
        .collect();
    let baseline = stats::median(&early);
    let mut errors_in_a_row = 0;
    for (i, a) in attempts.iter().enumerate() {
        let ex = match a {
            Ok(ex) => {
                errors_in_a_row = 0;
                ex
            }
            Err(r) => {
                errors_in_a_row += 1;
                if errors_in_a_row >= 2 && first.is_some() {
                    return Some((
                        i + 1,
                        Signal::Soft(format!(
                            "connections {} after failed logins",
                            r.kind.as_str()
                        )),
                    ));
                }
                continue;
            }
        };
        if let Some(w) = throttled(ex) {
            return Some((i + 1, Signal::Hard(w)));
        }
        let body = String::from_utf8_lossy(&ex.body).to_ascii_lowercase();
        if let Some(w) = LOCKOUT_WORDS
            .iter()
            .find(|w| body.contains(*w) && !first_body.contains(*w))
        {
            return Some((i + 1, Signal::Soft(format!("the answer now says \"{w}\""))));
        }
        // A status change counts when it is a 4xx or 503 and holds for the next answer too.
        let next_status = attempts
            .get(i + 1)
            .and_then(|n| n.as_ref().ok())
            .map(|n| n.status);
        let lasting =
            ((400..500).contains(&ex.status) || ex.status == 503) && next_status == Some(ex.status);
        if let Some(s0) = first_status.filter(|s0| *s0 != ex.status && lasting) {
            return Some((
                i + 1,
                Signal::Soft(format!("status changed from {s0} to {}", ex.status)),
            ));
        }
        let t = ex.elapsed.as_secs_f64();
        if i >= 3 && t >= 1.0 && t >= 5.0 * baseline {
            return Some((
                i + 1,
                Signal::Soft(format!(
                    "response delayed to {t:.1} s (first responses {baseline:.2} s)"
                )),
            ));
        }
    }
    None
}

fn verdict(p: &LoginProbe) -> Verdict {
    if let Err(r) = p.baseline_ok() {
        return Verdict::Undecided(r);
    }
    let n = p.failures_sent();
    let found = signal(&p.attempts);
    if let Some((k, Signal::Hard(s))) = &found {
        return Verdict::Good(format!(
            "failed logins for {} met a lockout or throttle ({n} in all, at lockout attempt {k}): {s}",
            p.username
        ));
    }
    if p.attempts.iter().flatten().any(|ex| p.is_success(ex)) {
        return wrong_password_accepted();
    }
    let baseline_time = p
        .baseline
        .as_ref()
        .map(|ex| ex.elapsed.as_secs_f64())
        .unwrap_or(0.0);
    let soft = found.as_ref().map(|(k, s)| match s {
        Signal::Soft(s) | Signal::Hard(s) => format!(" (at attempt {k}: {s})"),
    });
    match &p.after {
        Some(Ok(ex)) if !p.is_success(ex) => Verdict::Good(format!(
            "after {n} failed logins the real password is refused ({}): the account is locked{}",
            ex.status,
            soft.unwrap_or_default()
        )),
        Some(Ok(ex))
            if ex.elapsed.as_secs_f64() >= 1.0
                && ex.elapsed.as_secs_f64() >= 5.0 * baseline_time.max(0.001) =>
        {
            Verdict::Good(format!(
                "after {n} failed logins the real login is slowed to {:.1} s: throttled",
                ex.elapsed.as_secs_f64()
            ))
        }
        Some(Ok(_)) => match soft {
            Some(s) => Verdict::Bad(format!(
                "{n} failed logins for {}: a possible signal{s}, but the real password still logs in at once: no lockout or throttling",
                p.username
            )),
            None => Verdict::Bad(format!(
                "{n} failed logins for {} were all answered alike, and the real password still logs in: no lockout or throttling",
                p.username
            )),
        },
        // The server stopped answering: a ban by dropping, if the failed logins led to it.
        Some(Err(r)) if p.attempts.iter().any(Result::is_err) => Verdict::Good(format!(
            "after {n} failed logins the server stops answering ({}): the client is banned",
            r.kind.as_str()
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::net::Exchange;

    fn ex(status: u16, body: &str) -> Answer {
        Ok(Exchange {
            status,
            headers: reqwest::header::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            truncated: false,
            elapsed: Duration::from_millis(5),
        })
    }

    #[test]
    fn words_already_on_the_page_are_not_a_signal() {
        let page = "Invalid username or password. <a>Account locked?</a>";
        assert_eq!(signal(&[ex(401, page), ex(401, page), ex(401, page)]), None);
        let s = signal(&[ex(401, page), ex(401, "Too many attempts")]).unwrap();
        assert_eq!(s.0, 2);
        assert!(matches!(s.1, Signal::Soft(_)));
    }

    #[test]
    fn a_status_change_must_hold() {
        assert_eq!(signal(&[ex(401, ""), ex(500, ""), ex(401, "")]), None);
        assert_eq!(signal(&[ex(401, ""), ex(403, ""), ex(401, "")]), None);
        assert!(matches!(
            signal(&[ex(401, ""), ex(403, ""), ex(403, "")]),
            Some((2, Signal::Soft(_)))
        ));
        assert!(matches!(
            signal(&[ex(401, ""), ex(429, "")]),
            Some((2, Signal::Hard(_)))
        ));
    }

    #[test]
    fn one_dropped_connection_is_not_a_signal() {
        let drop = || Err(Reason::new(ReasonKind::Reset, "reset"));
        assert_eq!(signal(&[ex(401, ""), drop(), ex(401, "")]), None);
        assert!(matches!(
            signal(&[ex(401, ""), drop(), drop()]),
            Some((3, Signal::Soft(_)))
        ));
    }
}
