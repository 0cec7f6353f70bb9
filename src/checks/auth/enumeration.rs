//! `auth.user_enumeration`: a failed login must look the same whether the username exists or
//! not (OWASP WSTG-IDNT-04). Compared over interleaved samples: the sets of statuses, the sets
//! of normalised bodies (usernames, digits and token-like strings masked), and the response
//! times, with a two-sided Mann-Whitney U test that must reach p < 0.001 *and* a median gap of
//! at least 25 ms and 25 %, so that noise alone never fires it.

use std::collections::BTreeSet;

use super::{
    AuthObservation, LoginProbe, Verdict, judge_logins, stats, throttled, wrong_password_accepted,
};
use crate::model::{Emitter, Reason, ReasonKind};

pub(super) const USER_ENUMERATION: &str = "auth.user_enumeration";

/// Significance required of the timing test.
pub const TIMING_P: f64 = 0.001;
/// Smallest median gap the timing test reports, in seconds.
pub const TIMING_MIN_GAP: f64 = 0.025;
/// Smallest median gap relative to the faster class.
pub const TIMING_MIN_RATIO: f64 = 0.25;
/// Samples per class the timing test needs: with fewer, no ordering reaches p < 0.001.
pub const MIN_TIMING_SAMPLES: usize = 7;

/// Mask what legitimately varies between two failed logins.
pub fn normalise(body: &[u8], users: &[&str]) -> String {
    // Usernames become a separator character first, so that a long one is not taken for a
    // token and a short one cannot split a token differently in the two classes.
    const USER: char = '\u{1}';
    let mut text = String::from_utf8_lossy(body)
        .to_lowercase()
        .replace(USER, "");
    for u in users.iter().filter(|u| u.len() >= 3) {
        text = text.replace(&u.to_lowercase(), &USER.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 16 {
            out.push_str("{tok}");
        } else if run.chars().all(|c| c.is_ascii_digit()) && !run.is_empty() {
            out.push('0');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-') {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            if c.is_whitespace() {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            } else {
                out.push(c);
            }
        }
    }
    flush(&mut run, &mut out);
    // Digits inside words (e.g. "attempt3") vary too.
    out.chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect::<String>()
        .replace(USER, "{user}")
        .trim()
        .to_string()
}

fn verdict(p: &LoginProbe) -> Verdict {
    if let Err(r) = p.baseline_ok() {
        return Verdict::Undecided(r);
    }
    // Judge the samples taken before any lockout or throttling showed: after it, the account
    // is locked and the two classes differ for that reason alone.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut stopped = None;
    for (is_known, a) in &p.samples {
        match a {
            Ok(ex) => {
                if let Some(s) = throttled(ex) {
                    stopped = Some(s);
                    break;
                }
                if *is_known {
                    known.push(ex)
                } else {
                    unknown.push(ex)
                }
            }
            Err(r) => return Verdict::Undecided(r.clone()),
        }
    }
    if let Some(s) = stopped
        .as_ref()
        .filter(|_| known.len() < 2 || unknown.len() < 2)
    {
        return Verdict::Undecided(Reason::new(
            ReasonKind::Malformed,
            format!(
                "the login was throttled after {} samples ({s}); too few to compare",
                known.len() + unknown.len()
            ),
        ));
    }
    if known.is_empty() || unknown.is_empty() {
        return Verdict::Undecided(Reason::new(ReasonKind::Bug, "no samples were taken"));
    }
    if known
        .iter()
        .any(|ex| p.endpoint.is_success(ex.status, &ex.body))
    {
        return wrong_password_accepted();
    }
    let users = [p.username.as_str(), p.unknown_user.as_str()];
    let statuses =
        |v: &[&crate::engine::net::Exchange]| v.iter().map(|e| e.status).collect::<BTreeSet<u16>>();
    let (sk, su) = (statuses(&known), statuses(&unknown));
    if sk.is_disjoint(&su) {
        return Verdict::Bad(format!(
            "status differs: unknown user → {su:?}, wrong password → {sk:?}"
        ));
    }
    let bodies = |v: &[&crate::engine::net::Exchange]| {
        v.iter()
            .map(|e| normalise(&e.body, &users))
            .collect::<BTreeSet<String>>()
    };
    let (bk, bu) = (bodies(&known), bodies(&unknown));
    if bk.is_disjoint(&bu) {
        let len = |s: &BTreeSet<String>| s.iter().next().map_or(0, String::len);
        let show = |s: &BTreeSet<String>| {
            s.iter()
                .next()
                .map(|b| crate::model::one_line(b, 80))
                .unwrap_or_default()
        };
        return Verdict::Bad(format!(
            "response body differs: unknown user → \"{}\" ({} bytes), wrong password → \"{}\" ({} bytes)",
            show(&bu),
            len(&bu),
            show(&bk),
            len(&bk)
        ));
    }
    let tk: Vec<f64> = known.iter().map(|e| e.elapsed.as_secs_f64()).collect();
    let tu: Vec<f64> = unknown.iter().map(|e| e.elapsed.as_secs_f64()).collect();
    let (mk, mu) = (stats::median(&tk), stats::median(&tu));
    let p_value = stats::mann_whitney_p(&tk, &tu);
    let gap = (mk - mu).abs();
    let timing = format!(
        "median {:.1} ms (wrong password) vs {:.1} ms (unknown user), p = {p_value:.2e}",
        mk * 1000.0,
        mu * 1000.0
    );
    let same = format!("same statuses {sk:?}, same normalised body");
    if tk.len() < MIN_TIMING_SAMPLES || tu.len() < MIN_TIMING_SAMPLES {
        let why = stopped.map_or_else(String::new, |s| {
            format!(" before the login was throttled ({s})")
        });
        return Verdict::Good(format!(
            "{same}; timing not tested: {} and {} samples{why}, {MIN_TIMING_SAMPLES} needed",
            tk.len(),
            tu.len()
        ));
    }
    if p_value < TIMING_P && gap >= TIMING_MIN_GAP && gap >= TIMING_MIN_RATIO * mk.min(mu) {
        return Verdict::Bad(format!(
            "response time differs: {timing} over {} samples each",
            tk.len()
        ));
    }
    Verdict::Good(format!("{same}, no timing difference ({timing})"))
}

pub(super) fn eval(obs: &AuthObservation, out: &mut Emitter) {
    judge_logins(obs, out, USER_ENUMERATION, verdict);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_what_varies() {
        let users = ["alice", "secgate-nobody-1a2b3c4d5e6f"];
        let a = normalise(b"<p>Invalid password for Alice</p><input name=csrf value=\"a8f3k2l1m9n8b7v6c5x4\"> ref 12345", &users);
        let b = normalise(b"<p>Invalid password for ALICE</p><input name=csrf value=\"zz99zz88zz77zz66zz55\"> ref 99", &users);
        assert_eq!(a, b);
        // The same message naming either user normalises alike.
        let c = normalise(b"Invalid login for secgate-nobody-1a2b3c4d5e6f", &users);
        assert_eq!(c, normalise(b"Invalid login for alice", &users));
        assert_eq!(c, "invalid login for {user}");
        assert_ne!(
            normalise(b"No such user", &[]),
            normalise(b"Wrong password", &[])
        );
        assert_eq!(normalise(b"  a \n\t b ", &[]), "a b");
    }
}
