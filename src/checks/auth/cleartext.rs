//! `auth.cleartext_credentials`: credentials must never be asked for over plain HTTP. A login
//! route must not be served there (a redirect to HTTPS, 404/410 or no listener pass), and no
//! route may send an authentication challenge (WWW-Authenticate: Basic, Bearer...) there.

use super::{AuthObservation, Cleartext, Verdict, describe, judge};
use crate::endpoint::Role;
use crate::engine::Emitter;

pub(super) const CLEARTEXT: &str = "auth.cleartext_credentials";

pub(super) fn eval(obs: &AuthObservation, out: &mut Emitter) {
    let verdicts: Vec<(String, Verdict)> = obs
        .cleartext
        .iter()
        .map(|p| {
            let v = match &p.result {
                Cleartext::NoListener(r) => Verdict::Good(format!("nothing serves {} ({})", p.url, r.kind.as_str())),
                Cleartext::Failed(r) => Verdict::Undecided(r.clone()),
                Cleartext::Answer(ex) => {
                    let to_https = ex
                        .headers
                        .get("location")
                        .and_then(|l| l.to_str().ok())
                        .and_then(|l| p.url.join(l.trim()).ok())
                        .is_some_and(|u| u.scheme() == "https");
                    let challenge = ex
                        .headers
                        .get("www-authenticate")
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().next().unwrap_or("").to_string());
                    if (300..400).contains(&ex.status) && to_https {
                        Verdict::Good(format!("{} redirects to HTTPS ({})", p.url, describe(ex)))
                    } else if let Some(scheme) = challenge {
                        Verdict::Bad(format!("{} asks for credentials over plain HTTP (WWW-Authenticate: {scheme}, {})", p.url, ex.status))
                    } else if p.role == Role::Login && !matches!(ex.status, 404 | 410) {
                        Verdict::Bad(format!("login route {} is served over plain HTTP ({})", p.url, describe(ex)))
                    } else {
                        Verdict::Good(format!("{} asks for no credentials over plain HTTP ({})", p.url, describe(ex)))
                    }
                }
            };
            (p.name.clone(), v)
        })
        .collect();
    judge(
        out,
        CLEARTEXT,
        &verdicts,
        "no login, protected or jwt endpoint is configured",
    );
}
