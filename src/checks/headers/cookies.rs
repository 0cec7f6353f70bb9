//! Session cookies: Secure, HttpOnly and SameSite on every session-like cookie that any response
//! of the target sets (redirect hops and the plain-HTTP side included).
//!
//! "Session-like" is a name heuristic kept as data in `checks/lists/session_cookies.txt`.
//! Cookies being deleted (Max-Age ≤ 0, or Expires before 2000) are ignored.

use std::sync::LazyLock;

use super::{HttpObservation, Rule, inconclusive_all, skipped_all};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Subject, SubjectKind};

pub(super) const INSECURE: &str = "headers.cookie.insecure";
pub(super) const NO_HTTPONLY: &str = "headers.cookie.no_httponly";
pub(super) const NO_SAMESITE: &str = "headers.cookie.no_samesite";
const IDS: &[&str] = &[INSECURE, NO_HTTPONLY, NO_SAMESITE];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// The session-cookie heuristic, as data (see the file for its format).
struct Heuristic {
    names: Vec<&'static str>,
    prefixes: Vec<&'static str>,
    tokens: Vec<&'static str>,
    suffixes: Vec<&'static str>,
    excludes: Vec<&'static str>,
}

static HEURISTIC: LazyLock<Heuristic> = LazyLock::new(|| {
    let mut h = Heuristic {
        names: Vec::new(),
        prefixes: Vec::new(),
        tokens: Vec::new(),
        suffixes: Vec::new(),
        excludes: Vec::new(),
    };
    for line in include_str!("../../../checks/lists/session_cookies.txt")
        .lines()
        .map(str::trim)
    {
        let Some((kind, value)) = line.split_once(':') else {
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        let list = match kind {
            "name" => &mut h.names,
            "prefix" => &mut h.prefixes,
            "token" => &mut h.tokens,
            "suffix" => &mut h.suffixes,
            "exclude" => &mut h.excludes,
            _ => continue,
        };
        list.push(value.trim());
    }
    h
});

/// Split a cookie name into lower-case tokens at non-alphanumerics and camel-case changes.
fn name_tokens(name: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

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
    /// Domain attribute, lower-case, without a leading dot.
    pub domain: String,
    /// Path attribute.
    pub path: String,
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
        domain: String::new(),
        path: String::new(),
        deleting: false,
        redacted: String::new(),
    };
    // RFC 6265 §5.3: Max-Age wins over Expires; for each, the last occurrence counts.
    let mut max_age: Option<i64> = None;
    let mut expires_past = false;
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
            "max-age" => max_age = val.parse::<i64>().ok().or(max_age),
            "expires" => expires_past = expires_year(val).is_some_and(|y| y < 2000),
            "domain" => cookie.domain = val.trim_start_matches('.').to_ascii_lowercase(),
            "path" => cookie.path = val.to_string(),
            _ => {}
        }
        if !key.is_empty() {
            attrs.push(attr.trim().to_string());
        }
    }
    cookie.deleting = match max_age {
        Some(n) => n <= 0,
        None => expires_past,
    };
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

/// Whether a cookie name looks like a session or authentication cookie
/// (`checks/lists/session_cookies.txt`).
pub fn is_session_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let bare_len = ["__host-", "__secure-"]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map_or(0, |p| p.len());
    let bare = lower.get(bare_len..).unwrap_or(&lower);
    let tokens = name_tokens(name.get(bare_len..).unwrap_or(name));
    let h = &*HEURISTIC;
    if tokens
        .iter()
        .any(|t| h.excludes.iter().any(|x| t.contains(x)))
    {
        return false;
    }
    h.names.contains(&bare)
        || h.prefixes.iter().any(|p| bare.starts_with(p))
        || tokens
            .iter()
            .any(|t| h.tokens.contains(&t.as_str()) || h.suffixes.iter().any(|s| t.ends_with(s)))
}

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    let (hops, incomplete) = match obs.all_hops() {
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
            // A cookie is identified by name, domain and path; the last Set-Cookie wins.
            session.retain(|c| {
                (&c.name, &c.domain, &c.path) != (&cookie.name, &cookie.domain, &cookie.path)
            });
            session.push(cookie);
        }
    }
    if session.is_empty() {
        if let Some(reason) = &incomplete {
            // Responses were missed: a session cookie could have been among them.
            return inconclusive_all(out, IDS, reason);
        }
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
    let incomplete = incomplete.as_ref();
    judge(out, &session, INSECURE, "Secure", |c| c.secure, incomplete);
    // CSRF-token cookies are excluded from the heuristic: script must read them.
    judge(
        out,
        &session,
        NO_HTTPONLY,
        "HttpOnly",
        |c| c.http_only,
        incomplete,
    );
    // SameSite=None opts out of the protection, so only Strict or Lax count.
    judge(
        out,
        &session,
        NO_SAMESITE,
        "SameSite=Strict or Lax",
        |c| matches!(c.same_site.as_deref(), Some("strict" | "lax")),
        incomplete,
    );
}

fn judge(
    out: &mut Emitter,
    cookies: &[SetCookie],
    id: &'static str,
    attr: &str,
    has: fn(&SetCookie) -> bool,
    incomplete: Option<&crate::model::Reason>,
) {
    let bad: Vec<&SetCookie> = cookies.iter().filter(|c| !has(c)).collect();
    if let (true, Some(reason)) = (bad.is_empty(), incomplete) {
        return out.inconclusive(id, reason);
    }
    if bad.is_empty() {
        let names: Vec<&str> = cookies.iter().map(|c| c.name.as_str()).collect();
        out.pass(
            id,
            format!("session cookies carry {attr}: {}", names.join(", ")),
            Evidence::none().with("cookies", Observed::texts(names)),
        );
    } else {
        let names: Vec<&str> = bad.iter().map(|c| c.name.as_str()).collect();
        // One finding per cookie name (a cookie set for two paths is one subject).
        let mut findings: Vec<(Subject, String, Evidence)> = Vec::new();
        for c in &bad {
            let subject = Subject::new(SubjectKind::Cookie, &c.name);
            match findings.iter_mut().find(|(s, _, _)| *s == subject) {
                Some((_, _, ev)) => {
                    ev.0.push(("set-cookie", Observed::text(c.redacted.clone())))
                }
                None => findings.push((
                    subject,
                    format!("session cookie without {attr}: {}", c.name),
                    Evidence::none().text("set-cookie", c.redacted.clone()),
                )),
            }
        }
        out.fail_each(
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
            findings,
        );
    }
    if let Some(o) = out.last(id) {
        for c in cookies.iter().filter(|c| has(c)) {
            o.checked(
                Subject::new(SubjectKind::Cookie, &c.name),
                crate::model::Status::Pass,
                format!("{} carries {attr}", c.name),
                None,
            );
        }
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
        // Max-Age wins over Expires (RFC 6265 §5.3).
        assert!(
            !parse("sid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=86400")
                .unwrap()
                .deleting
        );
        assert!(parse("sid=x; Max-Age=86400; Max-Age=0").unwrap().deleting);
        let c = parse("sid=x; Domain=.Shop.Test; Path=/admin").unwrap();
        assert_eq!(
            (c.domain.as_str(), c.path.as_str()),
            ("shop.test", "/admin")
        );
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
            "authToken",
            "remember_me",
            ".AspNetCore.Cookies",
            "wordpress_logged_in_0123abcd",
            "mysession",
            "access_token",
            "SSO-Ticket",
        ] {
            assert!(is_session_like(name), "{name}");
        }
        for name in [
            "theme",
            "lang",
            "_ga",
            "consent",
            "accessibility",
            "consider",
            "XSRF-TOKEN",
            "csrftoken",
            "userPrefs",
        ] {
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

        // Cookies differ by path: the insecure one is still judged.
        let two_paths = fixture::https(&[
            ("set-cookie", "sid=a; Path=/admin"),
            (
                "set-cookie",
                "sid=b; Path=/; Secure; HttpOnly; SameSite=Lax",
            ),
        ]);
        assert_eq!(fixture::status(&RULE, &two_paths, INSECURE), Status::Fail);
        let none = fixture::https(&[("set-cookie", "sid=a; Secure; HttpOnly; SameSite=None")]);
        assert_eq!(fixture::status(&RULE, &none, NO_SAMESITE), Status::Fail);

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
