//! Shared test support: real servers on loopback (from `secgate::lab`) and a runner for the
//! real `secgate` binary that returns its exit code, output and JSON report.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use secgate::lab::{self, Hostile, LabServer, Pki, Site};
use serde_json::Value;
use tempfile::TempDir;

/// The result of running the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The JSON report, when `--json` was written.
    pub json: Option<Value>,
    pub dir: TempDir,
}

impl Run {
    pub fn json(&self) -> &Value {
        self.json
            .as_ref()
            .unwrap_or_else(|| panic!("no JSON report; stderr: {}", self.stderr))
    }

    /// `rule_id -> status` for one target (all targets when `target` is None).
    pub fn statuses(&self, target: Option<&str>) -> BTreeMap<String, String> {
        self.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| target.is_none_or(|t| r["target"] == t))
            .map(|r| {
                (
                    r["rule_id"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The result object of `rule_id` (first target).
    pub fn result(&self, rule_id: &str) -> &Value {
        self.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule_id"] == rule_id)
            .unwrap_or_else(|| panic!("no result for {rule_id}"))
    }
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_secgate"))
}

/// Run `secgate ARGS...` with `--json` into a temp dir (for `scan`), no colour.
pub fn secgate(args: &[&str]) -> Run {
    secgate_env(args, &[])
}

/// [`secgate`] with extra environment variables.
pub fn secgate_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let mut cmd = bin();
    cmd.args(args).env("NO_COLOR", "1").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let scanning = args.first() == Some(&"scan") && !args.contains(&"--json");
    if scanning {
        cmd.arg("--json").arg(&json_path);
    }
    let out = cmd.output().unwrap();
    let json = std::fs::read_to_string(&json_path)
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap());
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        json,
        dir,
    }
}

/// An HTTPS site under a made-up name, with the flags that reach it (`--resolve`, `--ca-file`).
pub struct HttpsSite {
    pub server: LabServer,
    pub name: String,
    pub url: String,
    pub flags: Vec<String>,
    pub pki: Pki,
    _dir: TempDir,
}

impl HttpsSite {
    /// `scan URL --resolve ... --ca-file ... EXTRA...`
    pub fn scan(&self, extra: &[&str]) -> Run {
        let mut args: Vec<&str> = vec!["scan", &self.url];
        args.extend(self.flags.iter().map(String::as_str));
        args.extend(extra);
        secgate(&args)
    }

    pub fn port(&self) -> u16 {
        self.server.addr.port()
    }

    /// Scan this site from a config file whose one target carries `target_toml` (extra keys
    /// and `[[target.endpoint]]` tables), with `env` in the environment.
    pub fn scan_config(&self, target_toml: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("secgate.toml");
        std::fs::write(
            &cfg,
            format!("[[target]]\nurl = \"{}\"\n{target_toml}\n", self.url),
        )
        .unwrap();
        let mut args: Vec<&str> = vec!["scan", "--config", cfg.to_str().unwrap()];
        args.extend(self.flags.iter().map(String::as_str));
        args.extend(extra);
        secgate_env(&args, env)
    }
}

/// Start an HTTPS site at `ip` (a loopback address) serving `site` as `name`.
pub async fn https_site_at(ip: &str, name: &str, site: Site) -> HttpsSite {
    https_router_at(ip, name, site.router()).await
}

/// Start an HTTPS server at `ip` serving `router` as `name`.
pub async fn https_router_at(ip: &str, name: &str, router: axum::Router) -> HttpsSite {
    let pki = Pki::new().unwrap();
    let tls = pki.server_config(&[name]).unwrap();
    let server = lab::serve(
        lab::bind(&format!("{ip}:0")).await.unwrap(),
        router,
        Some(tls),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let port = server.addr.port();
    HttpsSite {
        url: format!("https://{name}:{port}/"),
        flags: vec![
            "--resolve".into(),
            format!("{name}:{port}:{ip}"),
            "--ca-file".into(),
            ca.to_string_lossy().into_owned(),
            "--timeout".into(),
            "2".into(),
        ],
        name: name.to_string(),
        server,
        pki,
        _dir: dir,
    }
}

/// Start an HTTPS site on 127.0.0.1 as `app.test`.
pub async fn https_site(site: Site) -> HttpsSite {
    https_site_at("127.0.0.1", "app.test", site).await
}

/// Start a plain-HTTP site on `ip`.
pub async fn http_site_at(ip: &str, site: Site) -> LabServer {
    lab::serve(
        lab::bind(&format!("{ip}:0")).await.unwrap(),
        site.router(),
        None,
    )
}

/// Start a hostile server on `ip`.
pub async fn hostile_at(ip: &str, kind: Hostile) -> LabServer {
    lab::serve_hostile(lab::bind(&format!("{ip}:0")).await.unwrap(), kind)
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind(format!("{ip}:0")).unwrap();
    l.local_addr().unwrap().port()
}

/// Build an expected `rule -> status` map from a compact table.
pub fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Every headers rule with the same status, then overrides.
pub fn all_headers(default: &str, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = secgate::checks::headers::RULE_IDS
        .iter()
        .map(|id| ((*id).to_string(), default.to_string()))
        .collect();
    for (k, v) in overrides {
        assert!(map.contains_key(*k), "unknown rule {k}");
        map.insert((*k).to_string(), (*v).to_string());
    }
    map
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// An `openssl s_server` (Debian's, which .ci/run installs) on a free loopback port, killed
/// on drop.
pub struct OpensslServer {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OpensslServer {
    /// `openssl s_server ARGS -accept 127.0.0.1:PORT -quiet -naccept 2000` in `dir`, once it
    /// accepts connections. The test's options come first: OpenSSL 3.0's s_server fails to
    /// bind when -client_renegotiation follows -accept.
    pub fn start(dir: &std::path::Path, args: &[&str]) -> OpensslServer {
        OpensslServer::launch(dir, args, &[])
    }

    /// [`OpensslServer::start`] with `-cert CERT -key KEY` after `-accept`.
    pub fn with_key(dir: &std::path::Path, cert: &str, key: &str, args: &[&str]) -> OpensslServer {
        OpensslServer::launch(dir, args, &["-cert", cert, "-key", key])
    }

    fn launch(dir: &std::path::Path, before: &[&str], after: &[&str]) -> OpensslServer {
        let port = closed_port("127.0.0.1");
        let child = Command::new("openssl")
            .arg("s_server")
            .args(before)
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .args(after)
            .args(["-quiet", "-naccept", "2000"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl is installed (.ci/run installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "s_server {before:?} did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        OpensslServer { child, port }
    }

    /// `127.0.0.1:PORT`.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A directory with `cert.pem` and `key.pem`: an RSA-2048 certificate for 127.0.0.1, valid
/// for 365 days, made by openssl.
pub fn rsa_material() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "365",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}
