//! CORS: a foreign or `null` Origin must not be granted credentialed access.

use super::{CorsProbe, HttpObservation, Rule, inconclusive_all};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed, Reason, Subject, SubjectKind};

pub(super) const REFLECT_CREDENTIALS: &str = "headers.cors.reflect_credentials";
pub(super) const WILDCARD_CREDENTIALS: &str = "headers.cors.wildcard_credentials";
const IDS: &[&str] = &[REFLECT_CREDENTIALS, WILDCARD_CREDENTIALS];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// What one CORS answer grants.
#[derive(Debug, PartialEq, Eq)]
enum Grant {
    /// The sent Origin is echoed and credentials are allowed.
    ReflectedWithCredentials,
    /// `*` with credentials allowed.
    WildcardWithCredentials,
    /// Nothing dangerous.
    Safe,
}

fn grant(probe: &CorsProbe) -> Result<(Grant, Evidence), Reason> {
    let hop = probe.response.as_ref().map_err(Clone::clone)?;
    // The Fetch CORS check: exactly one Access-Control-Allow-Origin value, equal to the
    // request's Origin (or `*`), and Access-Control-Allow-Credentials exactly `true`.
    let acao_values: Vec<String> = hop
        .values("access-control-allow-origin")
        .iter()
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
        .collect();
    let acao = match acao_values.as_slice() {
        [one] if !one.contains(',') => Some(one.as_str()),
        _ => None,
    };
    let acac = hop
        .values("access-control-allow-credentials")
        .first()
        .is_some_and(|v| String::from_utf8_lossy(v).trim() == "true");
    let mut evidence = Evidence::none().text("origin_sent", probe.origin);
    if let Some(v) = hop.values("access-control-allow-origin").first() {
        evidence = evidence.with("access-control-allow-origin", Observed::from_bytes(v));
    }
    if let Some(v) = hop.values("access-control-allow-credentials").first() {
        evidence = evidence.with("access-control-allow-credentials", Observed::from_bytes(v));
    }
    let g = match acao {
        Some(o) if acac && o == probe.origin => Grant::ReflectedWithCredentials,
        Some("*") if acac => Grant::WildcardWithCredentials,
        _ => Grant::Safe,
    };
    Ok((g, evidence))
}

fn eval(obs: &HttpObservation, out: &mut Emitter) {
    if obs.cors.is_empty() {
        let reason = match obs.final_response() {
            Err(r) => r,
            Ok(_) => Reason::new(crate::model::ReasonKind::Bug, "no CORS probe was sent"),
        };
        return inconclusive_all(out, IDS, &reason);
    }
    let results: Vec<Result<(Grant, Evidence), Reason>> = obs.cors.iter().map(grant).collect();
    judge(
        out,
        &results,
        REFLECT_CREDENTIALS,
        &Grant::ReflectedWithCredentials,
        |e| format!("a foreign Origin is reflected with credentials allowed{e}"),
    );
    judge(
        out,
        &results,
        WILDCARD_CREDENTIALS,
        &Grant::WildcardWithCredentials,
        |_| {
            "Access-Control-Allow-Origin: * is combined with Access-Control-Allow-Credentials: true"
                .into()
        },
    );
}

fn judge(
    out: &mut Emitter,
    results: &[Result<(Grant, Evidence), Reason>],
    id: &'static str,
    bad: &Grant,
    message: fn(&str) -> String,
) {
    let origin_of = |e: &Evidence| e.0.first().map(|(_, v)| v.display()).unwrap_or_default();
    let granted: Vec<&Evidence> = results
        .iter()
        .flatten()
        .filter(|(g, _)| g == bad)
        .map(|(_, e)| e)
        .collect();
    if let Some(evidence) = granted.first() {
        let origin = origin_of(evidence);
        let findings = granted
            .iter()
            .map(|e| {
                let o = origin_of(e);
                (
                    Subject::new(SubjectKind::Origin, o.clone()),
                    message(&format!(" (Origin: {o})")),
                    (*e).clone(),
                )
            })
            .collect();
        return out.fail_each(
            id,
            message(&format!(" (Origin: {origin})")),
            (*evidence).clone(),
            findings,
        );
    }
    if let Some(Err(reason)) = results.iter().find(|r| r.is_err()) {
        return out.inconclusive(id, reason);
    }
    let origins: Vec<String> = results
        .iter()
        .flatten()
        .filter_map(|(_, e)| e.0.first().map(|(_, v)| v.display()))
        .collect();
    out.pass(
        id,
        format!(
            "foreign origins are not granted credentialed access ({})",
            origins.join(", ")
        ),
        Evidence::none().with("origins_sent", Observed::texts(origins)),
    );
}

#[cfg(test)]
mod tests {
    use super::super::{CORS_ORIGINS, fixture};
    use super::*;
    use crate::model::Status;

    fn with_cors(answers: &[&[(&str, &str)]]) -> HttpObservation {
        let mut obs = fixture::https(&[]);
        obs.cors = answers
            .iter()
            .zip(CORS_ORIGINS)
            .map(|(h, origin)| CorsProbe {
                origin,
                response: Ok(fixture::hop("https://app.test/", 200, h)),
            })
            .collect();
        obs
    }

    #[test]
    fn judges_grants() {
        let safe = with_cors(&[&[], &[("access-control-allow-origin", "https://app.test")]]);
        assert!(
            fixture::run(&RULE, &safe)
                .iter()
                .all(|(_, s, _)| *s == Status::Pass)
        );

        let reflect = with_cors(&[
            &[],
            &[
                ("access-control-allow-origin", "null"),
                ("access-control-allow-credentials", "true"),
            ],
        ]);
        assert_eq!(
            fixture::status(&RULE, &reflect, REFLECT_CREDENTIALS),
            Status::Fail
        );
        assert_eq!(
            fixture::status(&RULE, &reflect, WILDCARD_CREDENTIALS),
            Status::Pass
        );

        // Reflection without credentials is as public as `*`: not this finding.
        let no_creds = with_cors(&[&[("access-control-allow-origin", CORS_ORIGINS[0])], &[]]);
        assert_eq!(
            fixture::status(&RULE, &no_creds, REFLECT_CREDENTIALS),
            Status::Pass
        );

        let wildcard = with_cors(&[
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-credentials", "true"),
            ],
            &[],
        ]);
        assert_eq!(
            fixture::status(&RULE, &wildcard, WILDCARD_CREDENTIALS),
            Status::Fail
        );
        // Browsers compare byte for byte: `TRUE` does not allow credentials, and two origins fail.
        let upper = with_cors(&[
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-credentials", "TRUE"),
            ],
            &[],
        ]);
        assert_eq!(
            fixture::status(&RULE, &upper, WILDCARD_CREDENTIALS),
            Status::Pass
        );
        let two = with_cors(&[&[
            ("access-control-allow-origin", CORS_ORIGINS[0]),
            ("access-control-allow-origin", "https://other.test"),
            ("access-control-allow-credentials", "true"),
        ]]);
        assert_eq!(
            fixture::status(&RULE, &two, REFLECT_CREDENTIALS),
            Status::Pass
        );
    }

    #[test]
    fn an_unanswered_probe_is_not_a_pass() {
        let mut obs = with_cors(&[&[]]);
        obs.cors.push(CorsProbe {
            origin: "null",
            response: Err(Reason::new(crate::model::ReasonKind::Reset, "reset")),
        });
        assert_eq!(
            fixture::status(&RULE, &obs, REFLECT_CREDENTIALS),
            Status::Inconclusive
        );
    }
}
