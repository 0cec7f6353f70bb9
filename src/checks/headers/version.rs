//! Version disclosure in Server, X-Powered-By and friends, on every response seen.

use super::{HttpObservation, Rule};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Subject, SubjectKind};

pub(super) const DISCLOSURE: &str = "headers.version_disclosure";

pub(super) const RULE: Rule = Rule {
    ids: &[DISCLOSURE],
    eval,
};

/// Headers that name software.
const BANNERS: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-generator",
];

/// Whether a banner carries a version: a digit right after `/` or `(`, or `digit.digit`.
pub fn has_version(banner: &str) -> bool {
    let b = banner.as_bytes();
    b.windows(2)
        .any(|w| matches!(w, [b'/' | b'(', d] if d.is_ascii_digit()))
        || b.windows(3)
            .any(|w| matches!(w, [a, b'.', c] if a.is_ascii_digit() && c.is_ascii_digit()))
}

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    let (hops, incomplete) = match obs.all_hops() {
        Ok(h) => h,
        Err(reason) => return out.inconclusive(DISCLOSURE, &reason),
    };
    let mut leaks: Vec<String> = Vec::new();
    let mut by_header: Vec<(&str, Vec<String>)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for hop in hops {
        for name in BANNERS {
            for value in hop.values(name) {
                let text = String::from_utf8_lossy(value).trim().to_string();
                let line = format!("{name}: {text}");
                if seen.contains(&line) {
                    continue;
                }
                seen.push(line.clone());
                // X-AspNet(Mvc)-Version carries nothing but a version.
                if has_version(&text) || (name.ends_with("-version") && !text.is_empty()) {
                    match by_header.iter_mut().find(|(n, _)| n == name) {
                        Some((_, lines)) => lines.push(line.clone()),
                        None => by_header.push((name, vec![line.clone()])),
                    }
                    leaks.push(line);
                }
            }
        }
    }
    if let (true, Some(reason)) = (leaks.is_empty(), &incomplete) {
        return out.inconclusive(DISCLOSURE, reason);
    }
    if leaks.is_empty() {
        let message = if seen.is_empty() {
            "no software banner headers".to_string()
        } else {
            format!("banners carry no version ({})", seen.join("; "))
        };
        out.pass(
            DISCLOSURE,
            message,
            Evidence::none().with("banners", Observed::texts(seen)),
        );
    } else {
        let findings = by_header
            .into_iter()
            .map(|(name, lines)| {
                (
                    Subject::new(SubjectKind::Header, name),
                    format!("software version disclosed: {}", lines.join("; ")),
                    Evidence::none().with("banners", Observed::texts(lines)),
                )
            })
            .collect();
        out.fail_each(
            DISCLOSURE,
            format!("software version disclosed: {}", leaks.join("; ")),
            Evidence::none().with("banners", Observed::texts(leaks)),
            findings,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn recognises_versions() {
        for v in [
            "nginx/1.18.0",
            "Apache/2.4.41 (Ubuntu)",
            "Microsoft-IIS/10.0",
            "PHP/7.4.3",
            "Jetty(9.4.z-SNAPSHOT)",
            "gunicorn/20",
            "4.0.30319",
        ] {
            assert!(has_version(v), "{v}");
        }
        for v in [
            "nginx",
            "cloudflare",
            "Express",
            "ASP.NET",
            "AmazonS3",
            "envoy",
            "",
        ] {
            assert!(!has_version(v), "{v}");
        }
    }

    #[test]
    fn judges_banners() {
        let leak = fixture::https(&[("server", "nginx/1.18.0"), ("x-powered-by", "Express")]);
        let r = fixture::run(&RULE, &leak);
        assert_eq!(r[0].1, Status::Fail);
        assert!(r[0].2.contains("nginx/1.18.0") && !r[0].2.contains("Express"));
        let ok = fixture::https(&[("server", "nginx")]);
        assert_eq!(fixture::status(&RULE, &ok, DISCLOSURE), Status::Pass);
        let asp = fixture::https(&[("x-aspnet-version", "4.0.30319")]);
        assert_eq!(fixture::status(&RULE, &asp, DISCLOSURE), Status::Fail);
    }
}
