//! SSL 2.0 accepted: a server that answers an SSLv2 CLIENT-HELLO with a SERVER-HELLO. A
//! SERVER-HELLO that lists no cipher is still SSLv2 enabled: OpenSSL before 1.0.2f and 1.0.1r
//! let a client pick a cipher it disabled (CVE-2015-3197), so "no SSLv2 ciphers" is no
//! protection.

use super::{Rule, TlsObservation, sslv2_wire};
use crate::engine::Emitter;
use crate::model::{Evidence, Observed};

pub(super) const SSLV2: &str = "tls.protocol.sslv2";
const IDS: &[&str] = &[SSLV2];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// What an SSLv2 CLIENT-HELLO got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sslv2 {
    /// Refused: an SSLv2 ERROR, a TLS alert, or the connection closed (the detail says which).
    Refused(String),
    /// A SERVER-HELLO.
    Accepted {
        /// The cipher kinds it offers (none: CVE-2015-3197 territory).
        ciphers: Vec<u32>,
        /// Hex SHA-256 of the certificate's SubjectPublicKeyInfo, or why it is not known.
        key: Result<String, String>,
    },
}

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    match &obs.sslv2 {
        Ok(Sslv2::Accepted { ciphers, key }) => {
            let names: Vec<String> = ciphers
                .iter()
                .map(|c| sslv2_wire::cipher_name(*c))
                .collect();
            let mut ev = Evidence::none().with("sslv2_ciphers", Observed::texts(names.clone()));
            ev = match key {
                Ok(k) => ev.text("sslv2_spki_sha256", k),
                Err(why) => ev.text("sslv2_certificate", why),
            };
            let message = if ciphers.is_empty() {
                "the server answers an SSLv2 CLIENT-HELLO with a SERVER-HELLO that lists no cipher: SSLv2 is still enabled, and OpenSSL before 1.0.2f/1.0.1r lets a client use a disabled SSLv2 cipher (CVE-2015-3197)".to_string()
            } else {
                format!(
                    "the server accepts SSLv2 and offers {} SSLv2 cipher{}: {}",
                    ciphers.len(),
                    if ciphers.len() == 1 { "" } else { "s" },
                    names.join(", ")
                )
            };
            if ciphers.is_empty() {
                ev = ev.text("cve", "CVE-2015-3197");
            }
            out.fail(SSLV2, message, ev);
        }
        // A server that answered no ClientHello at all says nothing by closing on this one.
        Ok(Sslv2::Refused(_)) if obs.protocols_error.is_some() => {
            if let Some(r) = &obs.protocols_error {
                out.inconclusive(SSLV2, r);
            }
        }
        Ok(Sslv2::Refused(how)) => out.pass(
            SSLV2,
            format!("the server refuses SSLv2 ({how})"),
            Evidence::none().text("answer", how),
        ),
        Err(r) => out.inconclusive(SSLV2, r),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    #[test]
    fn a_server_hello_fails_even_without_ciphers() {
        let mut o = fixture::good();
        assert_eq!(fixture::status(&RULE, &o, SSLV2), Status::Pass);
        o.sslv2 = Ok(Sslv2::Accepted {
            ciphers: vec![0x010080],
            key: Ok("ab".repeat(32)),
        });
        let got = fixture::run(&RULE, &o);
        assert_eq!(got[0].1, Status::Fail);
        assert!(got[0].2.contains("SSL_CK_RC4_128_WITH_MD5"), "{}", got[0].2);
        o.sslv2 = Ok(Sslv2::Accepted {
            ciphers: Vec::new(),
            key: Err("no certificate".into()),
        });
        let got = fixture::run(&RULE, &o);
        assert_eq!(got[0].1, Status::Fail);
        assert!(got[0].2.contains("CVE-2015-3197"), "{}", got[0].2);
    }
}
