//! JSON Web Tokens, as far as the JWT probes need them: split and decode (untrusted input:
//! bounded, no panics), re-encode with another header or payload, HMAC signing, and the
//! offline search for a weak HMAC secret.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The longest token accepted (tokens are configuration, but keep parsing bounded).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A decoded JWS compact token. Its `Debug` shows the header and claims, never the token.
#[derive(Clone, PartialEq)]
pub struct Jwt {
    /// Decoded header.
    pub header: Map<String, Value>,
    /// Decoded payload (claims).
    pub payload: Map<String, Value>,
    /// The header as sent (base64url).
    pub header_b64: String,
    /// The payload as sent (base64url).
    pub payload_b64: String,
    /// The signature as sent (base64url).
    pub signature_b64: String,
}

/// HMAC algorithms of JWS (RFC 7518 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hmac {
    /// HS256.
    Hs256,
    /// HS384.
    Hs384,
    /// HS512.
    Hs512,
}

impl Hmac {
    fn algorithm(self) -> aws_lc_rs::hmac::Algorithm {
        match self {
            Hmac::Hs256 => aws_lc_rs::hmac::HMAC_SHA256,
            Hmac::Hs384 => aws_lc_rs::hmac::HMAC_SHA384,
            Hmac::Hs512 => aws_lc_rs::hmac::HMAC_SHA512,
        }
    }
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("header", &self.header)
            .field("claims", &self.payload.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Jwt {
    /// Parse `header.payload.signature`; the header and payload must be JSON objects.
    pub fn parse(token: &str) -> Result<Jwt, String> {
        let token = token.trim();
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        if token.len() > MAX_TOKEN_LEN {
            return Err(format!("token longer than {MAX_TOKEN_LEN} bytes"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWS compact token (expected three dot-separated parts)".into());
        };
        Ok(Jwt {
            header: decode_object(h).map_err(|e| format!("header: {e}"))?,
            payload: decode_object(p).map_err(|e| format!("payload: {e}"))?,
            header_b64: h.to_string(),
            payload_b64: p.to_string(),
            signature_b64: s.to_string(),
        })
    }

    /// The `alg` header.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// The HMAC algorithm, when the token is HMAC-signed.
    pub fn hmac(&self) -> Option<Hmac> {
        match self.alg()? {
            "HS256" => Some(Hmac::Hs256),
            "HS384" => Some(Hmac::Hs384),
            "HS512" => Some(Hmac::Hs512),
            _ => None,
        }
    }

    /// An unsigned token: header `{"alg": variant, "typ": "JWT"}`, same payload, empty
    /// signature (RFC 7519 §6.1 "Unsecured JWT").
    pub fn unsigned(&self, variant: &str) -> String {
        let mut header = self.header.clone();
        header.insert("alg".into(), Value::from(variant));
        header.remove("kid");
        format!("{}.{}.", encode(&header), self.payload_b64)
    }

    /// An `alg: none` header over the same payload, keeping the original signature (some
    /// libraries skip verification for `none` but still expect three non-empty parts).
    pub fn unsigned_with_signature(&self, variant: &str) -> String {
        let mut header = self.header.clone();
        header.insert("alg".into(), Value::from(variant));
        header.remove("kid");
        format!(
            "{}.{}.{}",
            encode(&header),
            self.payload_b64,
            self.signature_b64
        )
    }

    /// The `exp` claim, when it is a number.
    pub fn expiry(&self) -> Option<u64> {
        self.payload.get("exp").and_then(Value::as_u64)
    }

    /// The same header and signature over a changed payload (one added claim).
    pub fn tampered(&self) -> String {
        let mut payload = self.payload.clone();
        payload.insert("secgate_probe".into(), Value::from("tampered"));
        format!(
            "{}.{}.{}",
            self.header_b64,
            encode(&payload),
            self.signature_b64
        )
    }

    /// The signature of `header_b64.payload_b64` under `secret`, base64url.
    pub fn sign(alg: Hmac, secret: &[u8], header_b64: &str, payload_b64: &str) -> String {
        let key = aws_lc_rs::hmac::Key::new(alg.algorithm(), secret);
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        ctx.update(header_b64.as_bytes());
        ctx.update(b".");
        ctx.update(payload_b64.as_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }

    /// Search `words` for the HMAC secret: `Ok(Some((line, word)))` when found, `Ok(None)`
    /// when none matches or the token is not HMAC-signed, `Err` when the signature cannot be
    /// decoded (then nothing can be said about the secret).
    pub fn crack<'w>(
        &self,
        words: impl IntoIterator<Item = (usize, &'w str)>,
    ) -> Result<Option<(usize, &'w str)>, String> {
        let Some(alg) = self.hmac() else {
            return Ok(None);
        };
        let want = URL_SAFE_NO_PAD.decode(&self.signature_b64).map_err(|e| {
            format!("the token's signature is not base64url ({e}); the secret cannot be searched")
        })?;
        let signing_input = format!("{}.{}", self.header_b64, self.payload_b64);
        Ok(words.into_iter().find(|(_, word)| {
            let key = aws_lc_rs::hmac::Key::new(alg.algorithm(), word.as_bytes());
            aws_lc_rs::hmac::verify(&key, signing_input.as_bytes(), &want).is_ok()
        }))
    }

    /// A token with the same claims but `exp` (and `iat`/`nbf`) in the past, signed with
    /// `secret`.
    pub fn forge_expired(&self, alg: Hmac, secret: &[u8], now: u64) -> String {
        let mut payload = self.payload.clone();
        payload.insert("exp".into(), Value::from(now.saturating_sub(3600)));
        payload.insert("iat".into(), Value::from(now.saturating_sub(7200)));
        if payload.contains_key("nbf") {
            payload.insert("nbf".into(), Value::from(now.saturating_sub(7200)));
        }
        let p = encode(&payload);
        let s = Jwt::sign(alg, secret, &self.header_b64, &p);
        format!("{}.{p}.{s}", self.header_b64)
    }
}

fn decode_object(part: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| format!("invalid base64url: {e}"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

fn encode(obj: &Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(Value::Object(obj.clone()).to_string())
}

/// The embedded wordlist of weak HMAC secrets, as `(line number, word)`.
pub fn wordlist() -> impl Iterator<Item = (usize, &'static str)> {
    include_str!("../../../checks/wordlists/jwt_secrets.txt")
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(secret: &str, payload: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(payload);
        let s = Jwt::sign(Hmac::Hs256, secret.as_bytes(), &h, &p);
        format!("{h}.{p}.{s}")
    }

    #[test]
    fn parses_and_rejects() {
        let t = Jwt::parse(&token("k", r#"{"sub":"alice"}"#)).unwrap();
        assert_eq!(t.alg(), Some("HS256"));
        assert_eq!(t.payload["sub"], "alice");
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.e30.",
            "e30.W10.",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(Jwt::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forges_variants() {
        let t = Jwt::parse(&token("k", r#"{"sub":"alice","exp":4102444800}"#)).unwrap();
        let none = t.unsigned("none");
        assert!(none.ends_with('.'));
        assert_eq!(Jwt::parse(&none).unwrap().alg(), Some("none"));
        let tampered = Jwt::parse(&t.tampered()).unwrap();
        assert_eq!(tampered.signature_b64, t.signature_b64);
        assert_eq!(tampered.payload["secgate_probe"], "tampered");
        let expired = Jwt::parse(&t.forge_expired(Hmac::Hs256, b"k", 1_000_000)).unwrap();
        assert_eq!(expired.payload["exp"], 1_000_000 - 3600);
        assert_eq!(expired.crack([(1, "k")]), Ok(Some((1, "k"))));
        assert_eq!(expired.expiry(), Some(1_000_000 - 3600));
        assert!(
            t.unsigned_with_signature("none")
                .ends_with(&t.signature_b64)
        );
        // Debug never prints the token.
        assert!(!format!("{t:?}").contains(&t.signature_b64));
    }

    #[test]
    fn cracks_weak_secrets_from_the_wordlist() {
        let t = Jwt::parse(&token("secret", r#"{"sub":"a"}"#)).unwrap();
        let (line, word) = t.crack(wordlist()).unwrap().unwrap();
        assert_eq!(word, "secret");
        assert!(line > 0);
        let strong = Jwt::parse(&token("3f9c1e7a-long-random-7d2b", r#"{"sub":"a"}"#)).unwrap();
        assert_eq!(strong.crack(wordlist()), Ok(None));
        let mut padded = strong.clone();
        padded.signature_b64 = "!!!".into();
        assert!(padded.crack(wordlist()).is_err());
    }
}
