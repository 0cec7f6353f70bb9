//! HSTS (RFC 6797): present and valid, long enough, covering subdomains.
//!
//! Judged on the target's own HTTPS response, as browsers only honour the header there.

use super::{HttpObservation, Rule, inconclusive_all, skipped_all};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const MISSING: &str = "headers.hsts.missing";
pub(super) const SHORT: &str = "headers.hsts.short";
pub(super) const NO_INCLUDE_SUBDOMAINS: &str = "headers.hsts.no_include_subdomains";
const IDS: &[&str] = &[MISSING, SHORT, NO_INCLUDE_SUBDOMAINS];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// Six months, the Observatory's threshold.
pub const MIN_MAX_AGE: u64 = 15_552_000;

/// A parsed Strict-Transport-Security value.
#[derive(Debug, PartialEq, Eq)]
pub struct Hsts {
    /// max-age in seconds.
    pub max_age: u64,
    /// includeSubDomains present.
    pub include_subdomains: bool,
    /// preload present.
    pub preload: bool,
}

/// Parse a header value per RFC 6797 §6.1: `;`-separated directives, names are tokens
/// (case-insensitive), values are tokens or quoted strings, no directive twice, max-age
/// required, and `includeSubDomains` / `preload` take no value. Browsers ignore a header that
/// breaks any of this, so it is an error here too.
pub fn parse(value: &str) -> Result<Hsts, String> {
    let mut seen: Vec<String> = Vec::new();
    let mut max_age = None;
    let mut include_subdomains = false;
    let mut preload = false;
    for directive in value.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let (name, val) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (directive, None),
        };
        if !is_token(name) {
            return Err(format!("'{name}' is not a directive name"));
        }
        let val = match val {
            Some(v) if v.starts_with('"') => Some(
                unquote(v).ok_or_else(|| format!("unterminated quoted value in '{directive}'"))?,
            ),
            Some(v) if is_token(v) => Some(v.to_string()),
            Some(v) => return Err(format!("'{v}' is not a valid directive value")),
            None => None,
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(format!("directive '{name}' appears twice"));
        }
        seen.push(name.clone());
        match name.as_str() {
            "max-age" => {
                let v = val.ok_or("max-age has no value")?;
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("max-age '{v}' is not a number of seconds"));
                }
                // Absurdly long values saturate rather than fail.
                max_age = Some(v.parse::<u64>().unwrap_or(u64::MAX));
            }
            "includesubdomains" if val.is_some() => {
                return Err("includeSubDomains takes no value".into());
            }
            "preload" if val.is_some() => return Err("preload takes no value".into()),
            "includesubdomains" => include_subdomains = true,
            "preload" => preload = true,
            _ => {} // unknown directives are ignored (RFC 6797 §6.1)
        }
    }
    let max_age = max_age.ok_or("no max-age directive")?;
    Ok(Hsts {
        max_age,
        include_subdomains,
        preload,
    })
}

/// RFC 9110 token characters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The content of a quoted-string (with `\` escapes), or `None` if it is malformed.
fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    // Browsers honour HSTS only on an HTTPS response: the target's own for an https:// target,
    // the first HTTPS hop when an http:// target redirects there.
    let hop = match obs.first_https_response() {
        Ok(Some(hop)) => hop,
        Ok(None) => {
            return skipped_all(
                out,
                IDS,
                "HSTS applies to HTTPS responses only; this fetch never reached HTTPS",
            );
        }
        Err(reason) => return inconclusive_all(out, IDS, &reason),
    };
    let skip_rest = |out: &mut Emitter| {
        skipped_all(
            out,
            &[SHORT, NO_INCLUDE_SUBDOMAINS],
            "no valid HSTS header (see headers.hsts.missing)",
        );
    };
    let values = hop.values("strict-transport-security");
    let Some(first) = values.first() else {
        out.fail(
            MISSING,
            format!(
                "no Strict-Transport-Security header on {} (status {})",
                hop.url, hop.status
            ),
            Evidence::none().with("status", Observed::Number(hop.status.into())),
        );
        return skip_rest(out);
    };
    let evidence = Evidence::none().with("strict-transport-security", Observed::from_bytes(first));
    if let Some(why) = &obs.cert_error {
        out.fail(
            MISSING,
            format!("the certificate is not trusted ({why}): browsers ignore HSTS sent over such a connection (RFC 6797 §8.1)"),
            evidence,
        );
        return skip_rest(out);
    }
    let hsts = match parse(&String::from_utf8_lossy(first)) {
        Ok(h) => h,
        Err(why) => {
            out.fail(
                MISSING,
                format!("Strict-Transport-Security is invalid: {why}"),
                evidence,
            );
            return skip_rest(out);
        }
    };
    if hsts.max_age == 0 {
        out.fail(
            MISSING,
            "Strict-Transport-Security has max-age=0, which removes the policy (RFC 6797 §6.1.1)",
            evidence,
        );
        return skip_rest(out);
    }
    out.pass(
        MISSING,
        "Strict-Transport-Security is set",
        evidence.clone(),
    );
    let (min, profile) = &obs.hsts_min_max_age;
    if hsts.max_age < *min {
        let required = match profile {
            Some(p) => format!(
                "the {min} s ({} days) the profile {p} requires",
                min / 86_400
            ),
            None => format!("the {} days required", min / 86_400),
        };
        out.fail(
            SHORT,
            format!(
                "HSTS max-age is {} s ({} days), under {required}",
                hsts.max_age,
                hsts.max_age / 86_400
            ),
            evidence.clone(),
        );
    } else {
        out.pass(
            SHORT,
            format!("HSTS max-age is {} days", hsts.max_age / 86_400),
            evidence.clone(),
        );
    }
    if hsts.include_subdomains {
        out.pass(NO_INCLUDE_SUBDOMAINS, "HSTS covers subdomains", evidence);
    } else {
        out.fail(
            NO_INCLUDE_SUBDOMAINS,
            "HSTS does not carry includeSubDomains",
            evidence,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn a_profile_sets_the_max_age_short_asks_for() {
        let year = "max-age=31536000; includeSubDomains";
        let mut obs = fixture::https(&[("strict-transport-security", year)]);
        assert_eq!(fixture::status(&RULE, &obs, SHORT), Status::Pass);
        obs.hsts_min_max_age = (63_072_000, Some("mozilla-intermediate 6.0".into()));
        let mut out = Emitter::new("headers", "https://app.test/");
        eval(&obs, &mut out);
        let short = out
            .finish()
            .into_iter()
            .find(|o| o.rule_id == SHORT)
            .unwrap();
        assert_eq!(short.status, Status::Fail);
        assert_eq!(
            short.message,
            "HSTS max-age is 31536000 s (365 days), under the 63072000 s (730 days) the profile mozilla-intermediate 6.0 requires"
        );
    }

    #[test]
    fn parses_rfc_examples() {
        assert_eq!(
            parse("max-age=31536000; includeSubDomains; preload").unwrap(),
            Hsts {
                max_age: 31_536_000,
                include_subdomains: true,
                preload: true
            }
        );
        assert_eq!(
            parse("max-age=\"15768000\" ; ").unwrap().max_age,
            15_768_000
        );
        assert_eq!(parse("MAX-AGE=0; foo=bar").unwrap().max_age, 0);
        assert_eq!(
            parse("max-age=99999999999999999999999").unwrap().max_age,
            u64::MAX
        );
        for bad in [
            "",
            "includeSubDomains",
            "max-age",
            "max-age=abc",
            "max-age=-1",
            "max-age=1; max-age=2",
            "max-age=63072000; includeSubDomains; foo bar",
            "max-age=63072000; \"x",
            "max-age=\"5",
            "max-age=5; includeSubDomains=yes",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(
            parse("max-age=\"5\"; includeSubDomains")
                .unwrap()
                .include_subdomains
        );
    }

    #[test]
    fn judges_missing_short_and_subdomains() {
        let none = fixture::https(&[]);
        assert_eq!(fixture::status(&RULE, &none, MISSING), Status::Fail);
        assert_eq!(fixture::status(&RULE, &none, SHORT), Status::Skipped);

        let short = fixture::https(&[("strict-transport-security", "max-age=86400")]);
        assert_eq!(fixture::status(&RULE, &short, MISSING), Status::Pass);
        assert_eq!(fixture::status(&RULE, &short, SHORT), Status::Fail);
        assert_eq!(
            fixture::status(&RULE, &short, NO_INCLUDE_SUBDOMAINS),
            Status::Fail
        );

        let good = fixture::https(&[(
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        )]);
        assert!(
            fixture::run(&RULE, &good)
                .iter()
                .all(|(_, s, _)| *s == Status::Pass)
        );

        let invalid = fixture::https(&[("strict-transport-security", "max-age=1; max-age=2")]);
        assert_eq!(fixture::status(&RULE, &invalid, MISSING), Status::Fail);

        let zero = fixture::https(&[("strict-transport-security", "max-age=0; includeSubDomains")]);
        assert_eq!(fixture::status(&RULE, &zero, MISSING), Status::Fail);
        assert_eq!(fixture::status(&RULE, &zero, SHORT), Status::Skipped);

        let mut untrusted = fixture::https(&[(
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        )]);
        untrusted.cert_error = Some("invalid peer certificate: UnknownIssuer".into());
        assert_eq!(fixture::status(&RULE, &untrusted, MISSING), Status::Fail);
    }
}
