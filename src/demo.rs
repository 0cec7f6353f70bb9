//! `secgate demo` and the benchmark lab: real servers on loopback, and the plan that scans them.
//!
//! The demo lab holds three sites under invented names resolved with `--resolve`-style
//! overrides and signed by a private CA passed as a trust anchor, exactly as a user would scan
//! an internal service:
//! - `shop.lab.test`: the classic mistakes (see [`Site::legacy`]), and its plain-HTTP port
//!   serves content instead of redirecting;
//! - `api.lab.test`: hardened, and its plain-HTTP port redirects to HTTPS;
//! - `slow.lab.test`: accepts connections and never answers (a tarpit), to show how a
//!   misbehaving target becomes `inconclusive` within the timeout instead of hanging the scan;
//! - `db.lab.test`: a host swept by the ports family: an SSH banner, a Telnet login and a
//!   Memcached that answers `stats` to anyone, next to its allowed HTTPS port;
//! - `lab.test` and `old.lab.test`, served by an in-process DNS server (hickory) that the scan
//!   uses as its `--dns-server`: a mail domain with a DMARC policy of `none` and no CAA, and a
//!   CNAME left dangling into a zone where its target no longer exists.
//! - `expired.lab.test` (TLS family only): a rustls server whose certificate expired;
//! - `legacy.lab.test` (TLS family only): the lab's scripted legacy responder (SSL 3.0 and
//!   TLS 1.0, RC4, 3DES and static RSA, 1024-bit DHE, DEFLATE, no secure renegotiation).

use std::time::Duration;

use crate::checks::auth::options::{AuthOptions, LoginOptions};
use crate::checks::dns::options::DnsOptions;
use crate::checks::ports::{PortSpec, PortsOptions};
use crate::checks::ratelimit::options::{BurstOptions, RateLimitOptions};
use crate::endpoint::{Endpoint, Role, Secret, SecretRef, SecretSource};
use crate::lab::tls::{LeafSpec, Legacy, TlsPki};
use crate::lab::{self, Fake, Hostile, LabServer, Pki, Rec, Site, Zone};
use crate::plan::{ScanPlan, Settings};
use crate::target::{ResolveEntry, Target};

/// A running demo lab and the plan that scans it.
#[derive(Debug)]
pub struct DemoLab {
    /// Keep alive while scanning.
    pub servers: Vec<LabServer>,
    /// The plan.
    pub plan: ScanPlan,
}

const NAMES: [&str; 3] = ["shop.lab.test", "api.lab.test", "slow.lab.test"];
const TLS_NAMES: [&str; 2] = ["expired.lab.test", "legacy.lab.test"];

/// Start the demo lab on 127.0.0.1 (free ports).
pub async fn start() -> Result<DemoLab, String> {
    let pki = Pki::new()?;
    let tls = pki.server_config(&NAMES)?;
    let mut servers = Vec::new();
    let mut targets = Vec::new();
    let mut resolve = Vec::new();
    let mut add = |name: &str, https: &LabServer, http: Option<&LabServer>| -> Result<(), String> {
        let mut t = Target::parse(&format!("https://{name}:{}/", https.addr.port()))?;
        t.http_port = http.map(|s| s.addr.port());
        resolve.push(ResolveEntry::parse(&format!(
            "{name}:{}:127.0.0.1",
            https.addr.port()
        ))?);
        targets.push(t);
        Ok(())
    };

    let shop = lab::serve(
        lab::bind("127.0.0.1:0").await?,
        behaviour_app(false).merge(Site::legacy().router()),
        Some(tls.clone()),
    );
    let shop_http = lab::serve(
        lab::bind("127.0.0.1:0").await?,
        Site::legacy().router(),
        None,
    );
    add(NAMES[0], &shop, Some(&shop_http))?;

    let api = lab::serve(
        lab::bind("127.0.0.1:0").await?,
        behaviour_app(true).merge(Site::hardened().router()),
        Some(tls.clone()),
    );
    let api_http = lab::serve(
        lab::bind("127.0.0.1:0").await?,
        Site::redirect_to(&format!("https://{}:{}", NAMES[1], api.addr.port())).router(),
        None,
    );
    add(NAMES[1], &api, Some(&api_http))?;

    let slow = lab::serve_hostile(lab::bind("127.0.0.1:0").await?, Hostile::Tarpit);
    add(NAMES[2], &slow, None)?;

    // The shop and the API also have a login form, an admin route and an API route.
    let password = Secret::new(DEMO_PASSWORD);
    for t in targets.iter_mut().take(2) {
        t.endpoints = demo_endpoints(&password);
        demo_budgets(t);
    }

    servers.extend([shop, shop_http, api, api_http, slow]);

    // A host for the ports family: its HTTPS port is allowed, the rest is not.
    let ssh = lab::serve_fake(
        lab::bind("127.0.0.1:0").await?,
        Fake::Banner(b"SSH-2.0-OpenSSH_8.4p1 Debian-5\r\n".to_vec()),
    );
    let telnet = lab::serve_fake(
        lab::bind("127.0.0.1:0").await?,
        Fake::Banner(b"\xff\xfd\x18\xff\xfd\x20Debian GNU/Linux 11\r\ndb login: ".to_vec()),
    );
    let memcached = lab::serve_fake(
        lab::bind("127.0.0.1:0").await?,
        Fake::Memcached { open: true },
    );
    let https_port = servers.get(2).map_or(443, |s| s.addr.port());
    let swept = [
        https_port,
        ssh.addr.port(),
        telnet.addr.port(),
        memcached.addr.port(),
    ];
    let mut db = Target::parse("db.lab.test")?;
    db.families = Some(vec!["ports"]);
    db.options.set(
        crate::checks::ports::FAMILY,
        PortsOptions {
            ports: Some(PortSpec::parse(
                &swept
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )?),
            allowed_ports: vec![https_port],
            ..PortsOptions::default()
        },
    );
    resolve.push(ResolveEntry::parse(&format!(
        "db.lab.test:{https_port}:127.0.0.1"
    ))?);
    targets.push(db);
    servers.extend([ssh, telnet, memcached]);

    // DNS: the lab's own server answers for lab.test; every unpinned name goes there.
    let dns = lab::serve_dns(
        "127.0.0.1",
        &[
            Zone {
                origin: "lab.test".into(),
                records: vec![
                    ("lab.test".into(), Rec::A(std::net::Ipv4Addr::LOCALHOST)),
                    ("lab.test".into(), Rec::Txt("v=spf1 mx -all".into())),
                    (
                        "_dmarc.lab.test".into(),
                        Rec::Txt("v=DMARC1; p=none".into()),
                    ),
                    (
                        "old.lab.test".into(),
                        Rec::Cname("shop-old.cloud.test".into()),
                    ),
                ],
            },
            Zone {
                origin: "cloud.test".into(),
                records: Vec::new(),
            },
        ],
    )
    .await?;
    let mut mail = Target::parse("lab.test")?;
    mail.families = Some(vec!["dns"]);
    mail.options.set(
        crate::checks::dns::FAMILY,
        DnsOptions {
            mail_domains: vec!["lab.test".into()],
        },
    );
    let mut old = Target::parse("old.lab.test")?;
    old.families = Some(vec!["dns"]);
    targets.extend([mail, old]);
    let dns_server = dns.addr;
    servers.push(dns);

    // TLS-only targets: their certificates or protocols are the point.
    let tls_pki = TlsPki::new()?;
    let (chain, key) = tls_pki.leaf(&LeafSpec {
        not_before_days: -400,
        not_after_days: -3,
        ..LeafSpec::new(&[TLS_NAMES[0]])
    })?;
    let expired = lab::serve(
        lab::bind("127.0.0.1:0").await?,
        Site::hardened().router(),
        Some(lab::tls::rustls_config(chain, key)?),
    );
    let (chain, _) = tls_pki.leaf(&LeafSpec::new(&[TLS_NAMES[1]]))?;
    let legacy = lab::tls::serve_legacy(lab::bind("127.0.0.1:0").await?, Legacy::ancient(chain));
    for (name, server) in [(TLS_NAMES[0], &expired), (TLS_NAMES[1], &legacy)] {
        // URL targets (not host:port), so that SARIF locations are absolute URIs.
        let mut t = Target::parse(&format!("https://{name}:{}/", server.addr.port()))?;
        t.families = Some(vec![crate::checks::tls::FAMILY]);
        resolve.push(ResolveEntry::parse(&format!(
            "{name}:{}:127.0.0.1",
            server.addr.port()
        ))?);
        targets.push(t);
    }

    servers.extend([expired, legacy]);
    let settings = Settings {
        timeout: Duration::from_millis(1500),
        ca_certs: vec![pki.ca_der(), tls_pki.root_der()],
        resolve: resolve.into(),
        dns_server: Some(dns_server),
        ..Settings::default()
    };
    Ok(DemoLab {
        servers,
        plan: ScanPlan {
            settings,
            secrets: vec![Secret::new(DEMO_PASSWORD)],
            ..ScanPlan::new(targets, &crate::family_options())
        },
    })
}

const DEMO_PASSWORD: &str = "demo-correct-horse";

/// The lab's application routes: careless (`hardened == false`: no lockout, a login that tells
/// unknown users apart, an admin route guarded for GET only, an unthrottled API) or careful.
fn behaviour_app(hardened: bool) -> axum::Router {
    use lab::apps::{self, Enumeration, Guard, Limit, Login};
    let mut login = Login::new("alice", DEMO_PASSWORD);
    if hardened {
        login.lockout_after = Some(5);
        login.throttle_per_sec = Some(5);
    } else {
        login.enumeration = Enumeration::Body;
    }
    let (login, _, _) = apps::login(login);
    let (admin, _) = apps::protected(if hardened {
        Guard::Proper
    } else {
        Guard::GetOnly
    });
    let limit = if hardened {
        Limit::PerSecond {
            per_sec: 10,
            retry_after: true,
        }
    } else {
        Limit::None
    };
    let (api, _) = apps::api(limit);
    login.merge(admin).merge(api)
}

/// The demo's endpoints: small budgets so that the demo stays fast.
fn demo_endpoints(password: &Secret) -> Vec<Endpoint> {
    let mut login = Endpoint::new("login", Role::Login, "/login");
    login.username = Some("alice".into());
    login.password = Some(SecretRef {
        key: "demo.password".into(),
        source: SecretSource::Env("SECGATE_DEMO_PASSWORD".into()),
        value: Some(password.clone()),
    });
    let admin = Endpoint::new("admin", Role::Protected, "/admin");
    let items = Endpoint::new("items", Role::Api, "/api/items");
    vec![login, admin, items]
}

/// The demo's small budgets, so that the demo stays fast: bursts of 30 at 100/s, and the
/// fewest samples the timing test of user enumeration accepts.
fn demo_budgets(t: &mut Target) {
    let burst = BurstOptions {
        max_requests: 30,
        rps: 100.0,
    };
    t.options.set(
        crate::checks::ratelimit::FAMILY,
        RateLimitOptions {
            bursts: [("login".to_string(), burst), ("items".to_string(), burst)].into(),
        },
    );
    let login = LoginOptions {
        samples: crate::checks::auth::enumeration::MIN_TIMING_SAMPLES as u32,
        ..LoginOptions::default()
    };
    t.options.set(
        crate::checks::auth::FAMILY,
        AuthOptions {
            logins: [("login".to_string(), login)].into(),
        },
    );
}

/// The benchmark lab: `count` sites of one profile, each on its own 127.0.x.y address, with a
/// config file (`secgate.toml`) and CA (`ca.pem`) written to `out`.
pub async fn start_bench(
    count: u32,
    profile: &str,
    out: &std::path::Path,
) -> Result<Vec<LabServer>, String> {
    let site = match profile {
        "hardened" => Site::hardened(),
        "legacy" => Site::legacy(),
        other => {
            return Err(format!(
                "--profile: unknown profile '{other}' (hardened, legacy)"
            ));
        }
    };
    if count == 0 || count > 60_000 {
        return Err("--targets: must be between 1 and 60000".into());
    }
    let pki = Pki::new()?;
    let tls = pki.server_config(&["*.lab.test"])?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let ca = out.join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).map_err(|e| format!("{}: {e}", ca.display()))?;
    let mut servers = Vec::new();
    let mut toml = format!(
        "# Generated by `secgate lab`: {count} {profile} sites on loopback.\n[scan]\nca_file = \"ca.pem\"\nresolve = [\n"
    );
    let mut targets = String::new();
    for i in 0..count {
        let ip = format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250);
        let server = lab::serve(
            lab::bind(&format!("{ip}:0")).await?,
            site.clone().router(),
            Some(tls.clone()),
        );
        let name = format!("t{i}.lab.test");
        toml.push_str(&format!("  \"{name}:{}:{ip}\",\n", server.addr.port()));
        targets.push_str(&format!(
            "\n[[target]]\nurl = \"https://{name}:{}/\"\n",
            server.addr.port()
        ));
        servers.push(server);
    }
    toml.push_str("]\n");
    toml.push_str(&targets);
    let cfg = out.join("secgate.toml");
    std::fs::write(&cfg, toml).map_err(|e| format!("{}: {e}", cfg.display()))?;
    Ok(servers)
}

/// The behaviour benchmark lab (`secgate lab --profile behaviour`): two HTTPS sites on
/// 127.0.0.1, one careless and one careful (see [`behaviour_app`]), each with a login, an
/// admin route and an API route, and a config naming them with default budgets. Returns the
/// servers and each route's request counter, so the request counts seen by the servers can be
/// printed when the lab stops.
pub async fn start_behaviour_bench(
    out: &std::path::Path,
) -> Result<(Vec<LabServer>, Vec<(String, lab::apps::Hits)>), String> {
    use lab::apps::{self, Enumeration, Guard, Limit, Login};
    let pki = Pki::new()?;
    let tls = pki.server_config(&["careless.lab.test", "careful.lab.test"])?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let ca = out.join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).map_err(|e| format!("{}: {e}", ca.display()))?;
    let mut servers = Vec::new();
    let mut hits = Vec::new();
    let mut toml = String::from(
        "# Generated by `secgate lab --profile behaviour`. Password: env SECGATE_BENCH_PASSWORD.\n[scan]\nca_file = \"ca.pem\"\nresolve = [\n",
    );
    let mut targets = String::new();
    for (name, careful) in [("careless.lab.test", false), ("careful.lab.test", true)] {
        let mut login = Login::new("alice", DEMO_PASSWORD);
        if careful {
            login.lockout_after = Some(5);
            login.throttle_per_sec = Some(5);
        } else {
            login.enumeration = Enumeration::Body;
        }
        let (login, login_hits, _) = apps::login(login);
        let (admin, admin_hits) = apps::protected(if careful {
            Guard::Proper
        } else {
            Guard::GetOnly
        });
        let limit = if careful {
            Limit::PerSecond {
                per_sec: 10,
                retry_after: true,
            }
        } else {
            Limit::None
        };
        let (api, api_hits) = apps::api(limit);
        let router = login.merge(admin).merge(api);
        let server = lab::serve(lab::bind("127.0.0.1:0").await?, router, Some(tls.clone()));
        let port = server.addr.port();
        toml.push_str(&format!("  \"{name}:{port}:127.0.0.1\",\n"));
        targets.push_str(&format!(
            "\n[[target]]\nurl = \"https://{name}:{port}/\"\n\n[[target.endpoint]]\nname = \"login\"\nrole = \"login\"\npath = \"/login\"\nusername = \"alice\"\npassword_env = \"SECGATE_BENCH_PASSWORD\"\n\n[[target.endpoint]]\nname = \"admin\"\nrole = \"protected\"\npath = \"/admin\"\n\n[[target.endpoint]]\nname = \"items\"\nrole = \"api\"\npath = \"/api/items\"\n"
        ));
        hits.push((format!("{name} /login"), login_hits));
        hits.push((format!("{name} /admin"), admin_hits));
        hits.push((format!("{name} /api/items"), api_hits));
        servers.push(server);
    }
    toml.push_str("]\n");
    toml.push_str(&targets);
    let cfg = out.join("secgate.toml");
    std::fs::write(&cfg, toml).map_err(|e| format!("{}: {e}", cfg.display()))?;
    Ok((servers, hits))
}

/// The password of the demo and benchmark labs' test account (not a secret: a lab value).
pub fn lab_password() -> &'static str {
    DEMO_PASSWORD
}
