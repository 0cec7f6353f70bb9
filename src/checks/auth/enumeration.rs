//! `auth.user_enumeration`: a failed login must look the same whether the username exists or
//! not (OWASP WSTG-IDNT-04). Compared over interleaved samples: the sets of statuses, the sets
//! of normalised bodies (usernames, digits and token-like strings masked), and the response
//! times, with a two-sided Mann-Whitney U test that must reach p < 0.001 *and* a median gap of
//! at least 25 ms and 25 %, so that noise alone never fires it.

use std::collections::BTreeSet;

use super::{
    AuthObservation, LoginProbe, Verdict, judge_logins, stats, throttled, wrong_password_accepted,
};
use crate::engine::Emitter;
use crate::model::{Reason, ReasonKind};

pub(super) const USER_ENUMERATION: &str = "auth.user_enumeration";

/// Significance required of the timing test.
pub const TIMING_P: f64 = 0.001;
/// Smallest median gap the timing test reports, in seconds.
pub const TIMING_MIN_GAP: f64 = 0.025;
/// Smallest median gap relative to the faster class.
pub const TIMING_MIN_RATIO: f64 = 0.25;
/// Samples per class the timing test needs: with the exact test, 7 against 7 is the smallest
/// size where a complete separation reaches p < 0.001 (p = 2 / C(14, 7) = 0.00058).
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

/// A second, coarser normalisation for bodies that still vary between identical requests:
/// every run of hex digits that holds a digit (request ids, short nonces; the first pass has
/// already folded pure numbers to `0`) is masked too.
fn normalise_hard(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().all(|c| c.is_ascii_hexdigit()) && run.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("{hex}");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in body.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The one normalised body of a class, or `None` when the class's answers differ among
/// themselves even after masking what varies (then bodies cannot tell the classes apart).
fn class_body(bodies: &BTreeSet<String>) -> Option<String> {
    if bodies.len() == 1 {
        return bodies.iter().next().cloned();
    }
    let hard: BTreeSet<String> = bodies.iter().map(|b| normalise_hard(b)).collect();
    (hard.len() == 1).then(|| hard.into_iter().next()).flatten()
}

fn verdict(p: &LoginProbe) -> Verdict {
    if let Err(r) = p.baseline_ok() {
        return Verdict::Undecided(r);
    }
    // Judge the samples taken before any hard throttling signal: after it, the two classes
    // differ for that reason alone.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut stopped = p.sampling_stopped.clone();
    for sample in &p.samples {
        match &sample.answer {
            Ok(ex) => {
                if let Some(s) = throttled(ex) {
                    stopped = Some(format!("the login was throttled ({s})"));
                    break;
                }
                if sample.known {
                    known.push(ex)
                } else {
                    unknown.push(ex)
                }
            }
            Err(r) if r.kind == ReasonKind::Timeout => break,
            Err(r) => return Verdict::Undecided(r.clone()),
        }
    }
    if known.len() < 2 || unknown.len() < 2 {
        return Verdict::Undecided(Reason::new(
            ReasonKind::Malformed,
            format!(
                "too few samples to compare ({} and {}){}",
                known.len(),
                unknown.len(),
                stopped.map(|s| format!(": {s}")).unwrap_or_default()
            ),
        ));
    }
    if known.iter().any(|ex| p.is_success(ex)) {
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
    let (bk, bu) = (class_body(&bodies(&known)), class_body(&bodies(&unknown)));
    match (&bk, &bu) {
        (Some(k), Some(u)) if k != u => {
            return Verdict::Bad(format!(
                "response body differs: unknown user → \"{}\" ({} bytes), wrong password → \"{}\" ({} bytes)",
                crate::model::one_line(u, 80),
                u.len(),
                crate::model::one_line(k, 80),
                k.len()
            ));
        }
        (Some(_), Some(_)) => {}
        _ => {
            return Verdict::Undecided(Reason::new(
                ReasonKind::Malformed,
                "the login's answers differ between identical requests, so their bodies cannot tell the classes apart",
            ));
        }
    }
    let tk: Vec<f64> = known.iter().map(|e| e.elapsed.as_secs_f64()).collect();
    let tu: Vec<f64> = unknown.iter().map(|e| e.elapsed.as_secs_f64()).collect();
    if tk.len() < MIN_TIMING_SAMPLES || tu.len() < MIN_TIMING_SAMPLES {
        return Verdict::Undecided(Reason::new(
            ReasonKind::Malformed,
            format!(
                "same statuses and body, but response times could not be compared: {} and {} samples, {MIN_TIMING_SAMPLES} needed{}",
                tk.len(),
                tu.len(),
                stopped.map(|s| format!(" ({s})")).unwrap_or_default()
            ),
        ));
    }
    let (mk, mu) = (stats::median(&tk), stats::median(&tu));
    let p_value = stats::mann_whitney_p(&tk, &tu);
    let gap = (mk - mu).abs();
    let timing = format!(
        "median {:.1} ms (wrong password) vs {:.1} ms (unknown user), p = {p_value:.2e}",
        mk * 1000.0,
        mu * 1000.0
    );
    if p_value < TIMING_P && gap >= TIMING_MIN_GAP && gap >= TIMING_MIN_RATIO * mk.min(mu) {
        return Verdict::Bad(format!(
            "response time differs: {timing} over {} samples each",
            tk.len()
        ));
    }
    Verdict::Good(format!(
        "same statuses {sk:?}, same normalised body, no timing difference ({timing})"
    ))
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
        // Short request ids vary between identical requests; the coarse pass masks them.
        let ids: BTreeSet<String> = ["error (req 3fa9c1)", "error (req 77b0de)"]
            .iter()
            .map(|b| normalise(b.as_bytes(), &users))
            .collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(class_body(&ids).as_deref(), Some("error (req {hex})"));
    }
}
