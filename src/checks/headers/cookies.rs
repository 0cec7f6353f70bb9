//! Session cookies: Secure, HttpOnly and SameSite on every session-like cookie that any response
//! of the target sets (redirect hops and the plain-HTTP side included).
//!
//! "Session-like" is a name heuristic kept as data in `checks/lists/session_cookies.txt`.
//! Cookies being deleted (Max-Age ≤ 0, or Expires before 2000) are ignored.

use std::sync::LazyLock;

use super::{HttpObservation, Rule, inconclusive_all, skipped_all};
use crate::model::{Emitter, Evidence, Observed};

pub(super) const INSECURE: &str = "headers.cookie.insecure";
pub(super) const NO_HTTPONLY: &str = "headers.cookie.no_httponly";
pub(super) const NO_SAMESITE: &str = "headers.cookie.no_samesite";
const IDS: &[&str] = &[INSECURE, NO_HTTPONLY, NO_SAMESITE];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

static SESSION_FRAGMENTS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    include_str!("../../../checks/lists/session_cookies.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// The attributes of one Set-Cookie that matter here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie {
    /// Cookie name.
    pub name: String,
    /// `Secure` present.
    pub secure: bool,
    /// `HttpOnly` present.
    pub http_only: bool,
    /// SameSite value, lower-case, when present and valid.
    pub same_site: Option<String>,
    /// The cookie is being deleted.
    pub deleting: bool,
    /// The raw header (for evidence), with the value replaced by `…`.
    pub redacted: String,
}

/// Parse one Set-Cookie value (RFC 6265 §5.2, leniently). `None` when there is no name.
pub fn parse(header: &str) -> Option<SetCookie> {
    let mut parts = header.split(';');
    let pair = parts.next()?;
    let (name, _value) = pair.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut cookie = SetCookie {
        name: name.to_string(),
        secure: false,
        http_only: false,
        same_site: None,
        deleting: false,
        redacted: String::new(),
    };
    let mut attrs = Vec::new();
    for attr in parts {
        let (key, val) = match attr.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim()),
            None => (attr.trim().to_ascii_lowercase(), ""),
        };
        match key.as_str() {
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => {
                let v = val.to_ascii_lowercase();
                if matches!(v.as_str(), "strict" | "lax" | "none") {
                    cookie.same_site = Some(v);
                }
            }
            "max-age" if val.parse::<i64>().is_ok_and(|n| n <= 0) => cookie.deleting = true,
            "expires" if expires_year(val).is_some_and(|y| y < 2000) => cookie.deleting = true,
            _ => {}
        }
        if !key.is_empty() {
            attrs.push(attr.trim().to_string());
        }
    }
    cookie.redacted = std::iter::once(format!("{name}=…"))
        .chain(attrs)
        .collect::<Vec<_>>()
        .join("; ");
    Some(cookie)
}

/// The year of an Expires date (any 4-digit number in it).
fn expires_year(date: &str) -> Option<u32> {
    date.split(|c: char| !c.is_ascii_digit())
        .find(|t| t.len() == 4)
        .and_then(|t| t.parse().ok())
}

/// Whether a cookie name looks like a session or authentication cookie.
pub fn is_session_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let bare = lower
        .strip_prefix("__host-")
        .or_else(|| lower.strip_prefix("__secure-"))
        .unwrap_or(&lower);
    SESSION_FRAGMENTS.iter().any(|f| bare.contains(f))
}

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    let hops = match obs.all_hops() {
        Ok(h) => h,
        Err(reason) => return inconclusive_all(out, IDS, &reason),
    };
    let mut all_names = Vec::new();
    let mut session: Vec<SetCookie> = Vec::new();
    for hop in hops {
        for raw in hop.values("set-cookie") {
            let Some(cookie) = parse(&String::from_utf8_lossy(raw)) else {
                continue;
            };
            if !all_names.contains(&cookie.name) {
                all_names.push(cookie.name.clone());
            }
            if cookie.deleting || !is_session_like(&cookie.name) {
                continue;
            }
            // The last Set-Cookie of a name wins, as in a browser.
            session.retain(|c| c.name != cookie.name);
            session.push(cookie);
        }
    }
    if session.is_empty() {
        let why = if all_names.is_empty() {
            "no cookies are set".to_string()
        } else {
            format!(
                "no session-like cookies are set (cookies seen: {})",
                all_names.join(", ")
            )
        };
        return skipped_all(out, IDS, &why);
    }
    judge(out, &session, INSECURE, "Secure", |c| c.secure);
    judge(out, &session, NO_HTTPONLY, "HttpOnly", |c| c.http_only);
    judge(out, &session, NO_SAMESITE, "SameSite", |c| {
        c.same_site.is_some()
    });
}

fn judge(
    out: &mut Emitter,
    cookies: &[SetCookie],
    id: &'static str,
    attr: &str,
    has: fn(&SetCookie) -> bool,
) {
    let bad: Vec<&SetCookie> = cookies.iter().filter(|c| !has(c)).collect();
    if bad.is_empty() {
        let names: Vec<&str> = cookies.iter().map(|c| c.name.as_str()).collect();
        out.pass(
            id,
            format!("session cookies carry {attr}: {}", names.join(", ")),
            Evidence::none().with("cookies", Observed::texts(names)),
        );
    } else {
        let names: Vec<&str> = bad.iter().map(|c| c.name.as_str()).collect();
        out.fail(
            id,
            format!(
                "session cookie{} without {attr}: {}",
                if bad.len() > 1 { "s" } else { "" },
                names.join(", ")
            ),
            Evidence::none().with(
                "set-cookie",
                Observed::texts(bad.iter().map(|c| c.redacted.clone())),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn parses_attributes_and_redacts_values() {
        let c = parse("SID=s3cr3t; Path=/; Secure; HTTPONLY; SameSite=Lax").unwrap();
        assert!(c.secure && c.http_only);
        assert_eq!(c.same_site.as_deref(), Some("lax"));
        assert!(!c.redacted.contains("s3cr3t"));
        assert_eq!(c.redacted, "SID=…; Path=/; Secure; HTTPONLY; SameSite=Lax");
        assert!(parse("sid=; Max-Age=0").unwrap().deleting);
        assert!(
            parse("sid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
                .unwrap()
                .deleting
        );
        assert!(
            !parse("sid=x; Expires=Thu, 01 Jan 2037 00:00:00 GMT")
                .unwrap()
                .deleting
        );
        assert_eq!(parse("sid=x; SameSite=bogus").unwrap().same_site, None);
        assert!(parse("novalue").is_none());
        assert!(parse("=x").is_none());
    }

    #[test]
    fn session_heuristic() {
        for name in [
            "PHPSESSID",
            "JSESSIONID",
            "connect.sid",
            "__Host-session",
            "auth_token",
            "remember_me",
        ] {
            assert!(is_session_like(name), "{name}");
        }
        for name in ["theme", "lang", "_ga", "consent"] {
            assert!(!is_session_like(name), "{name}");
        }
    }

    #[test]
    fn judges_cookies() {
        let none = fixture::https(&[("set-cookie", "theme=dark")]);
        assert!(
            fixture::run(&RULE, &none)
                .iter()
                .all(|(_, s, m)| *s == Status::Skipped && m.contains("theme"))
        );

        let bad = fixture::https(&[
            ("set-cookie", "sessionid=abc; Path=/"),
            ("set-cookie", "theme=x"),
        ]);
        let r = fixture::run(&RULE, &bad);
        assert!(
            r.iter()
                .all(|(_, s, m)| *s == Status::Fail && m.contains("sessionid"))
        );

        let good = fixture::https(&[(
            "set-cookie",
            "__Host-sid=abc; Path=/; Secure; HttpOnly; SameSite=Strict",
        )]);
        assert!(
            fixture::run(&RULE, &good)
                .iter()
                .all(|(_, s, _)| *s == Status::Pass)
        );
    }
}
