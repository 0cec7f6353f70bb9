//! HSTS (RFC 6797): present and valid, long enough, covering subdomains.
//!
//! Judged on the target's own HTTPS response, as browsers only honour the header there.

use super::{HttpObservation, Rule, inconclusive_all, skipped_all};
use crate::model::{Emitter, Evidence, Observed};

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

/// Parse a header value per RFC 6797 §6.1: `;`-separated directives, names case-insensitive,
/// values tokens or quoted strings, no directive twice, max-age required.
pub fn parse(value: &str) -> Result<Hsts, String> {
    let mut seen: Vec<String> = Vec::new();
    let mut max_age = None;
    let mut include_subdomains = false;
    let mut preload = false;
    for directive in value.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let (name, val) = match directive.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (directive.to_ascii_lowercase(), None),
        };
        if seen.contains(&name) {
            return Err(format!("directive '{name}' appears twice"));
        }
        seen.push(name.clone());
        match name.as_str() {
            "max-age" => {
                let v = val.ok_or("max-age has no value")?;
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("max-age '{v}' is not a number of seconds"));
                }
                // Absurdly long values saturate rather than fail.
                max_age = Some(v.parse::<u64>().unwrap_or(u64::MAX));
            }
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

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    if !obs.is_https() {
        skipped_all(
            out,
            IDS,
            "HSTS applies to HTTPS responses only; this target is plain HTTP",
        );
        return;
    }
    let hop = match obs.first_response() {
        Ok(hop) => hop,
        Err(reason) => return inconclusive_all(out, IDS, &reason),
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
        skipped_all(
            out,
            &[SHORT, NO_INCLUDE_SUBDOMAINS],
            "no valid HSTS header (see headers.hsts.missing)",
        );
        return;
    };
    let evidence = Evidence::none().with("strict-transport-security", Observed::from_bytes(first));
    let hsts = match parse(&String::from_utf8_lossy(first)) {
        Ok(h) => h,
        Err(why) => {
            out.fail(
                MISSING,
                format!("Strict-Transport-Security is invalid: {why}"),
                evidence,
            );
            skipped_all(
                out,
                &[SHORT, NO_INCLUDE_SUBDOMAINS],
                "no valid HSTS header (see headers.hsts.missing)",
            );
            return;
        }
    };
    out.pass(
        MISSING,
        "Strict-Transport-Security is set",
        evidence.clone(),
    );
    if hsts.max_age < MIN_MAX_AGE {
        out.fail(
            SHORT,
            format!(
                "HSTS max-age is {} s ({} days), under the 180 days required",
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
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
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
    }
}
