//! The JWT rules: with a valid token from the configuration and a route that requires it,
//! the route must refuse unsigned tokens (`alg: none`), tokens whose payload was changed, and
//! expired tokens; and an HMAC token's secret must not be in the embedded wordlist of weak
//! secrets (searched offline, no traffic).

use super::{AuthObservation, JwtProbe, Verdict, describe, judge};
use crate::engine::Emitter;
use crate::model::{Reason, ReasonKind};

pub(super) const ALG_NONE: &str = "auth.jwt.alg_none";
pub(super) const SIGNATURE_NOT_VERIFIED: &str = "auth.jwt.signature_not_verified";
pub(super) const WEAK_SECRET: &str = "auth.jwt.weak_secret";
pub(super) const EXPIRED_ACCEPTED: &str = "auth.jwt.expired_accepted";

const NONE_CONFIGURED: &str = "no jwt endpoint is configured";

/// Whether the route's token handling can be probed: it accepts the valid token and refuses
/// no token.
fn precondition(p: &JwtProbe) -> Result<(), Reason> {
    if let Err(e) = &p.token {
        return Err(Reason::new(
            ReasonKind::Malformed,
            format!("the configured token is not a JWT: {e}"),
        ));
    }
    match (&p.valid, &p.anonymous) {
        (Err(r), _) | (_, Err(r)) => Err(r.clone()),
        (Ok(v), _) if !(200..300).contains(&v.status) => Err(Reason::new(
            ReasonKind::Malformed,
            format!(
                "the route refuses the configured token ({}); is it still valid?",
                describe(v)
            ),
        )),
        (_, Ok(a)) if (200..300).contains(&a.status) => Err(Reason::new(
            ReasonKind::Malformed,
            format!(
                "the route answers {} without any token, so token checks cannot be told apart (see auth.unprotected)",
                a.status
            ),
        )),
        _ => Ok(()),
    }
}

fn served(a: &super::Answer) -> Option<u16> {
    a.as_ref()
        .ok()
        .map(|ex| ex.status)
        .filter(|s| (200..300).contains(s))
}

fn alg_none(p: &JwtProbe) -> Verdict {
    if let Err(r) = precondition(p) {
        return Verdict::Undecided(r);
    }
    if let Some((variant, status)) = p
        .unsigned
        .iter()
        .find_map(|(v, a)| served(a).map(|s| (v, s)))
    {
        return Verdict::Bad(format!(
            "an unsigned token with alg \"{variant}\" is accepted ({status})"
        ));
    }
    if let Some((_, Err(r))) = p.unsigned.iter().find(|(_, a)| a.is_err()) {
        return Verdict::Undecided(r.clone());
    }
    let tried: Vec<&str> = p.unsigned.iter().map(|(v, _)| *v).collect();
    Verdict::Good(format!(
        "unsigned tokens are refused (alg {})",
        tried.join(", ")
    ))
}

fn signature(p: &JwtProbe) -> Verdict {
    if let Err(r) = precondition(p) {
        return Verdict::Undecided(r);
    }
    match &p.tampered {
        Some(a) if served(a).is_some() => Verdict::Bad(format!(
            "a token with a changed payload and the original signature is accepted ({})",
            served(a).unwrap_or_default()
        )),
        Some(Ok(ex)) => Verdict::Good(format!("a tampered payload is refused ({})", describe(ex))),
        Some(Err(r)) => Verdict::Undecided(r.clone()),
        None => Verdict::Undecided(Reason::new(
            ReasonKind::Bug,
            "the tampered token was not sent",
        )),
    }
}

fn weak_secret(p: &JwtProbe) -> Verdict {
    let jwt = match &p.token {
        Ok(j) => j,
        Err(e) => {
            return Verdict::Undecided(Reason::new(
                ReasonKind::Malformed,
                format!("the configured token is not a JWT: {e}"),
            ));
        }
    };
    if jwt.hmac().is_none() {
        return Verdict::NotApplicable(format!(
            "not HMAC-signed (alg {})",
            jwt.alg().unwrap_or("missing")
        ));
    }
    let words = super::token::wordlist().count();
    match &p.cracked {
        // Neither the secret nor where it sits in the public wordlist: either identifies it.
        Ok(Some(_)) => Verdict::Bad(format!(
            "the HMAC secret is a weak, well-known value: it is one of the {words} in secgate's wordlist of weak secrets"
        )),
        Ok(None) => Verdict::Good(format!(
            "the HMAC secret is none of the {words} weak secrets tried"
        )),
        Err(e) => Verdict::Undecided(Reason::new(ReasonKind::Malformed, e.clone())),
    }
}

fn expired(p: &JwtProbe) -> Verdict {
    if let Err(r) = precondition(p) {
        return Verdict::Undecided(r);
    }
    match &p.expired {
        Ok(None) => Verdict::NotApplicable(
            "no expired token to try: the secret was not found and no expired_token_env is configured".into(),
        ),
        Err(why) => Verdict::Undecided(Reason::new(ReasonKind::Malformed, why.clone())),
        Ok(Some((source, a))) => match a {
            _ if served(a).is_some() => Verdict::Bad(format!(
                "an expired token ({source}) is accepted ({})",
                served(a).unwrap_or_default()
            )),
            Ok(ex) => Verdict::Good(format!("an expired token ({source}) is refused ({})", describe(ex))),
            Err(r) => Verdict::Undecided(r.clone()),
        },
    }
}

pub(super) fn eval(obs: &AuthObservation, out: &mut Emitter) {
    let run = |f: fn(&JwtProbe) -> Verdict| -> Vec<(String, Verdict)> {
        obs.jwt.iter().map(|p| (p.name.clone(), f(p))).collect()
    };
    judge(out, ALG_NONE, &run(alg_none), NONE_CONFIGURED);
    judge(
        out,
        SIGNATURE_NOT_VERIFIED,
        &run(signature),
        NONE_CONFIGURED,
    );
    judge(out, WEAK_SECRET, &run(weak_secret), NONE_CONFIGURED);
    judge(out, EXPIRED_ACCEPTED, &run(expired), NONE_CONFIGURED);
}
