//! Certificate Transparency (RFC 6962): browsers require Signed Certificate Timestamps for
//! certificates of publicly trusted CAs, delivered in the certificate, the
//! `signed_certificate_timestamp` TLS extension or the stapled OCSP response. secgate counts
//! them; verifying their signatures against CT logs is out of scope.

use super::{CertObservation, Rule, TlsObservation, cert::Trust, cert_evidence, per_certificate};
use crate::engine::Emitter;
use crate::model::{Observed, Reason, ReasonKind};

pub(super) const MISSING: &str = "tls.ct.missing";
const IDS: &[&str] = &[MISSING];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    per_certificate(obs, out, IDS, judge);
}

fn judge(obs: &TlsObservation, c: &CertObservation, out: &mut Emitter) {
    let s = &c.status;
    if c.trust != Trust::Trusted {
        return out.skipped(
            MISSING,
            "the chain is not trusted (see tls.cert.untrusted); CT applies to publicly trusted certificates",
        );
    }
    if s.private_anchor && !s.ct_private_ca {
        return out.skipped(
            MISSING,
            "the chain anchors in a --ca-file CA (a private PKI, which CT does not cover; [checks.tls] ct_private_ca = true judges it)",
        );
    }
    let ev = cert_evidence(c, obs.now)
        .with(
            "scts_certificate",
            Observed::Number(s.scts_certificate as i64),
        )
        .with(
            "scts_tls_extension",
            s.scts_extension.map_or_else(
                || Observed::Text("not asked".into()),
                |n| Observed::Number(n as i64),
            ),
        )
        .with("scts_ocsp", Observed::Number(s.scts_ocsp as i64))
        .with("malformed", Observed::texts(s.malformed.iter().cloned()));
    let n = s.scts();
    if n > 0 {
        return out.pass(
            MISSING,
            format!(
                "{n} SCT{} delivered ({} in the certificate, {} in the TLS extension, {} in the stapled OCSP response); their log signatures are not verified",
                if n == 1 { "" } else { "s" },
                s.scts_certificate,
                s.scts_extension
                    .map_or_else(|| "not asked".to_string(), |n| n.to_string()),
                s.scts_ocsp
            ),
            ev,
        );
    }
    let malformed = if s.malformed.is_empty() {
        String::new()
    } else {
        format!(" ({})", s.malformed.join("; "))
    };
    if s.scts_extension.is_none() {
        return out.inconclusive(
            MISSING,
            &Reason::new(
                ReasonKind::Tls,
                format!(
                    "no SCT in the certificate or a stapled OCSP response{malformed}, and the SCT TLS extension was not asked for with this certificate (it is read from a TLS ≤ 1.2 handshake, which presented another certificate or none)"
                ),
            ),
        );
    }
    out.fail(
        MISSING,
        format!(
            "no Signed Certificate Timestamp: none in the certificate, the signed_certificate_timestamp TLS extension or the stapled OCSP response{malformed}; browsers refuse publicly trusted certificates without them"
        ),
        ev,
    );
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn counts_every_source_and_skips_private_and_untrusted_chains() {
        let mut o = fixture::good();
        assert_eq!(fixture::status(&RULE, &o, MISSING), Status::Pass);
        let c = fixture::cert(&mut o);
        c.status.scts_certificate = 0;
        c.status.scts_extension = Some(0);
        assert_eq!(fixture::status(&RULE, &o, MISSING), Status::Fail);
        fixture::cert(&mut o).status.scts_ocsp = 1;
        assert_eq!(fixture::status(&RULE, &o, MISSING), Status::Pass);
        let c = fixture::cert(&mut o);
        c.status.scts_ocsp = 0;
        c.status.scts_extension = None;
        assert_eq!(fixture::status(&RULE, &o, MISSING), Status::Inconclusive);
        let c = fixture::cert(&mut o);
        c.status.scts_extension = Some(0);
        c.status.private_anchor = true;
        assert_eq!(fixture::status(&RULE, &o, MISSING), Status::Skipped);
        fixture::cert(&mut o).status.ct_private_ca = true;
        assert_eq!(fixture::status(&RULE, &o, MISSING), Status::Fail);
        fixture::cert(&mut o).trust = Trust::SelfSigned;
        assert_eq!(fixture::status(&RULE, &o, MISSING), Status::Skipped);
    }
}
