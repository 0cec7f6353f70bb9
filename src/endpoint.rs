//! Named endpoints of a target, for the behaviour families (`ratelimit`, `auth`, and the
//! headers family's login): what to send, what success and failure look like, and where
//! credentials come from. How hard each family probes an endpoint is that family's option
//! (`max_requests`, `rps`, `attempts`, `samples`), not the endpoint's.
//!
//! Credentials and tokens come from environment variables or files, are held in [`Secret`]
//! (whose `Debug` prints `[REDACTED]` and which cannot be serialised), and every outcome is
//! scrubbed of their values before it reaches a report ([`crate::model::Outcome::redact`]).
//!

use std::fmt;
use std::path::PathBuf;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

/// Hard ceilings of what the configuration may ask of an endpoint.
pub mod ceilings {
    /// Bytes read from a `*_file` secret.
    pub const SECRET_FILE_BYTES: u64 = 64 * 1024;
}

/// What an endpoint is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A login route: username and password in, session or token out.
    Login,
    /// A route that must refuse anonymous access.
    Protected,
    /// An API route probed for rate limiting.
    Api,
    /// A route that requires the JWT from `token_env`.
    Jwt,
}

impl Role {
    /// Parse a config value.
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "login" => Ok(Role::Login),
            "protected" => Ok(Role::Protected),
            "api" => Ok(Role::Api),
            "jwt" => Ok(Role::Jwt),
            other => Err(format!(
                "unknown role '{other}' (login, protected, api, jwt)"
            )),
        }
    }

    /// Name as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Login => "login",
            Role::Protected => "protected",
            Role::Api => "api",
            Role::Jwt => "jwt",
        }
    }
}

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (its contents, trailing newline removed).
    File(PathBuf),
}

impl SecretSource {
    /// Read the secret. Errors name the variable or file, never the value.
    pub fn load(&self) -> Result<Secret, String> {
        let value = match self {
            SecretSource::Env(name) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?,
            SecretSource::File(path) => {
                let len = std::fs::metadata(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .len();
                if len > ceilings::SECRET_FILE_BYTES {
                    return Err(format!(
                        "{}: larger than {} bytes",
                        path.display(),
                        ceilings::SECRET_FILE_BYTES
                    ));
                }
                std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string()
            }
        };
        if value.is_empty() {
            return Err(match self {
                SecretSource::Env(name) => format!("environment variable {name} is empty"),
                SecretSource::File(path) => format!("{} is empty", path.display()),
            });
        }
        Ok(Secret(value))
    }
}

/// A credential. Never printed, never serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value (tests and forged tokens).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for building a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// A secret as configured, loaded when a scan starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// Config key that named it (for errors), e.g. `target[0].endpoint[login].password_env`.
    pub key: String,
    /// Where it comes from.
    pub source: SecretSource,
    /// The value, once loaded.
    pub value: Option<Secret>,
}

impl SecretRef {
    /// The loaded value.
    pub fn get(&self) -> Option<&Secret> {
        self.value.as_ref()
    }
}

/// Request body format of a login endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`.
    Json,
}

/// How a response is recognised: a status in `status` (if given) and `contains` in the body
/// (if given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matcher {
    /// Accepted statuses; empty means "use the default range".
    pub status: Vec<u16>,
    /// A body substring that must be present.
    pub contains: Option<String>,
    /// A substring the Location header must contain (POST-redirect-GET logins).
    pub location: Option<String>,
}

impl Matcher {
    fn is_set(&self) -> bool {
        !self.status.is_empty() || self.contains.is_some() || self.location.is_some()
    }
}

/// One configured endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// Name, for messages.
    pub name: String,
    /// Role.
    pub role: Role,
    /// HTTP method.
    pub method: reqwest::Method,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Extra request headers (not secret).
    pub headers: Vec<(String, String)>,
    /// Extra request headers whose values are secrets.
    pub secret_headers: Vec<(String, SecretRef)>,
    /// Login body template with `{{username}}` and `{{password}}`, or none to build one.
    pub body: Option<String>,
    /// Body format.
    pub body_format: BodyFormat,
    /// Login: the test account.
    pub username: Option<String>,
    /// Login: username field name.
    pub username_field: String,
    /// Login: password field name.
    pub password_field: String,
    /// Login: the test account's password.
    pub password: Option<SecretRef>,
    /// Login: what a successful login looks like (default: a 2xx or 3xx status).
    pub success: Matcher,
    /// Login: what a failed login looks like (default: a 4xx status).
    pub failure: Matcher,
    /// JWT: a valid token.
    pub token: Option<SecretRef>,
    /// JWT: an expired token, used when the signing secret is not found.
    pub expired_token: Option<SecretRef>,
}

impl Endpoint {
    /// A new endpoint with defaults for everything but name, role and path.
    pub fn new(name: &str, role: Role, path: &str) -> Endpoint {
        Endpoint {
            name: name.to_string(),
            role,
            method: if role == Role::Login {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            },
            path: path.to_string(),
            headers: Vec::new(),
            secret_headers: Vec::new(),
            body: None,
            body_format: BodyFormat::Form,
            username: None,
            username_field: "username".into(),
            password_field: "password".into(),
            password: None,
            success: Matcher::default(),
            failure: Matcher::default(),
            token: None,
            expired_token: None,
        }
    }

    /// The endpoint's URL on the target's origin; anything that would leave the origin is an
    /// error (credentials must only ever go to the target).
    pub fn url(&self, base: &Url) -> Result<Url, String> {
        let url = base.join(&self.path).map_err(|e| {
            format!(
                "endpoint {}: cannot join '{}' to {base}: {e}",
                self.name, self.path
            )
        })?;
        if url.origin() != base.origin() {
            return Err(format!(
                "endpoint {}: '{}' leaves the target's origin ({url})",
                self.name, self.path
            ));
        }
        Ok(url)
    }

    /// Every secret this endpoint holds (for loading and redaction).
    pub fn secrets_mut(&mut self) -> impl Iterator<Item = &mut SecretRef> {
        self.password
            .iter_mut()
            .chain(self.token.iter_mut())
            .chain(self.expired_token.iter_mut())
            .chain(self.secret_headers.iter_mut().map(|(_, s)| s))
    }

    /// Every secret this endpoint holds, read-only.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretRef> {
        self.password
            .iter()
            .chain(self.token.iter())
            .chain(self.expired_token.iter())
            .chain(self.secret_headers.iter().map(|(_, s)| s))
    }

    /// The configured headers as a header map; `with_secrets` adds the `header_env` ones
    /// (credentials: left out of the anonymous probes of protected routes).
    pub fn header_map(&self, with_secrets: bool) -> HeaderMap {
        let mut map = HeaderMap::new();
        let plain = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let secret = self
            .secret_headers
            .iter()
            .filter(|_| with_secrets)
            .filter_map(|(k, s)| s.get().map(|v| (k.as_str(), v.expose())));
        for (k, v) in plain.chain(secret) {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                map.append(k, v);
            }
        }
        map
    }

    /// A login body and its content type for `username` / `password`.
    pub fn login_body(&self, username: &str, password: &str) -> (Vec<u8>, &'static str) {
        let content_type = match self.body_format {
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Json => "application/json",
        };
        let escape = |v: &str| -> String {
            match self.body_format {
                BodyFormat::Form => url::form_urlencoded::byte_serialize(v.as_bytes()).collect(),
                BodyFormat::Json => {
                    let quoted = serde_json::Value::from(v).to_string();
                    quoted
                        .strip_prefix('"')
                        .and_then(|q| q.strip_suffix('"'))
                        .unwrap_or(&quoted)
                        .to_string()
                }
            }
        };
        let body = match &self.body {
            Some(template) => template
                .replace("{{username}}", &escape(username))
                .replace("{{password}}", &escape(password)),
            None => match self.body_format {
                BodyFormat::Form => url::form_urlencoded::Serializer::new(String::new())
                    .append_pair(&self.username_field, username)
                    .append_pair(&self.password_field, password)
                    .finish(),
                BodyFormat::Json => {
                    let mut obj = serde_json::Map::new();
                    obj.insert(self.username_field.clone(), username.into());
                    obj.insert(self.password_field.clone(), password.into());
                    serde_json::Value::Object(obj).to_string()
                }
            },
        };
        (body.into_bytes(), content_type)
    }

    /// Whether a login response is a success: a status in `success_status` (default 2xx or
    /// 3xx), its body and Location matching `success_*` if set, and not a failure.
    pub fn is_success(&self, status: u16, body: &[u8], location: Option<&str>) -> bool {
        let status_ok = if self.success.status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.success.status.contains(&status)
        };
        let body_ok = self
            .success
            .contains
            .as_ref()
            .is_none_or(|c| contains(body, c));
        let location_ok = self
            .success
            .location
            .as_ref()
            .is_none_or(|l| location.is_some_and(|loc| loc.contains(l.as_str())));
        status_ok
            && body_ok
            && location_ok
            && !(self.failure.is_set() && self.is_failure(status, body, location))
    }

    /// Whether a login response is a failure: a status in `failure_status` (default 4xx), its
    /// body and Location matching `failure_*` if set.
    pub fn is_failure(&self, status: u16, body: &[u8], location: Option<&str>) -> bool {
        let by_content = self.failure.contains.is_some() || self.failure.location.is_some();
        let status_ok = if self.failure.status.is_empty() {
            (400..500).contains(&status) || by_content
        } else {
            self.failure.status.contains(&status)
        };
        let body_ok = self
            .failure
            .contains
            .as_ref()
            .is_none_or(|c| contains(body, c));
        let location_ok = self
            .failure
            .location
            .as_ref()
            .is_none_or(|l| location.is_some_and(|loc| loc.contains(l.as_str())));
        status_ok && body_ok && location_ok
    }

    /// A username that does not exist, shaped like the configured one (an e-mail address
    /// gets the same domain), so that format checks treat both alike.
    pub fn unknown_username(&self, random: &str) -> String {
        match self.username.as_deref().and_then(|u| u.split_once('@')) {
            Some((_, domain)) => format!("secgate-nobody-{random}@{domain}"),
            None => format!("secgate-nobody-{random}"),
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_login_bodies() {
        let mut e = Endpoint::new("login", Role::Login, "/login");
        let (body, ct) = e.login_body("al ice", "p&ss");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "username=al+ice&password=p%26ss"
        );
        assert_eq!(ct, "application/x-www-form-urlencoded");
        e.body_format = BodyFormat::Json;
        e.username_field = "email".into();
        let (body, _) = e.login_body("a@b.test", "q\"x");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"email":"a@b.test","password":"q\"x"}"#
        );
        e.body = Some(r#"{"user":"{{username}}","pw":"{{password}}","remember":true}"#.into());
        let (body, _) = e.login_body("u", "p\"");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"user":"u","pw":"p\"","remember":true}"#
        );
    }

    #[test]
    fn recognises_success_and_failure() {
        let mut e = Endpoint::new("login", Role::Login, "/login");
        assert!(e.is_success(302, b"", None));
        assert!(e.is_failure(401, b"", None));
        assert!(!e.is_failure(200, b"welcome", None));
        e.failure.contains = Some("invalid".into());
        assert!(e.is_failure(200, b"Invalid credentials", None));
        assert!(!e.is_success(200, b"Invalid credentials", None));
        assert!(e.is_success(200, b"Welcome back", None));
        // POST-redirect-GET: both answers are 302, told apart by where they point.
        let mut prg = Endpoint::new("login", Role::Login, "/login");
        prg.success.location = Some("/account".into());
        prg.failure.location = Some("error".into());
        assert!(prg.is_success(302, b"", Some("/account")));
        assert!(!prg.is_success(302, b"", Some("/login?error=1")));
        assert!(prg.is_failure(302, b"", Some("/login?error=1")));
        // The probe username takes the shape of the configured one.
        prg.username = Some("alice@shop.test".into());
        assert_eq!(
            prg.unknown_username("ab12"),
            "secgate-nobody-ab12@shop.test"
        );
        // A path that leaves the origin is refused.
        let base = Url::parse("https://shop.test/").unwrap();
        assert!(
            Endpoint::new("x", Role::Api, "//evil.test/x")
                .url(&base)
                .is_err()
        );
        assert!(
            Endpoint::new("x", Role::Api, "/api/x?q=1")
                .url(&base)
                .is_ok()
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
        let r = SecretRef {
            key: "k".into(),
            source: SecretSource::Env("SECGATE_TEST_UNSET_VARIABLE".into()),
            value: None,
        };
        assert!(
            r.source
                .load()
                .unwrap_err()
                .contains("SECGATE_TEST_UNSET_VARIABLE is not set")
        );
    }
}
