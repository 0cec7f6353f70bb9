//! The ports family against real listeners on the tests' own loopback addresses (127.0.4x.y):
//! fake services with chosen banners, a real Debian `redis-server`, a tarpit, a resetter, a
//! filtered port and closed ports. Each test asserts the exact open set, the services and the
//! status of every rule.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secgate::lab::{self, Fake, Hostile, LabServer, Site};
use serde_json::{Value, json};
use support::{expect, secgate};

const EXPOSED: &str = "ports.exposed_datastore";
const UNAUTH: &str = "ports.unauthenticated_service";
const UNEXPECTED: &str = "ports.unexpected_open";
const CLEARTEXT: &str = "ports.cleartext_protocol";

async fn fake(addr: &str, f: Fake) -> LabServer {
    lab::serve_fake(lab::bind(addr).await.unwrap(), f)
}

/// `addr:port -> service` from the evidence of `ports.unexpected_open` (or, when it passed,
/// its list of open ports).
fn services(run: &support::Run) -> BTreeMap<String, String> {
    let ev = &run.result(UNEXPECTED)["evidence"];
    ev["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let (addr, service) = p.as_str().unwrap().split_once(' ').unwrap();
            (addr.to_string(), service.to_string())
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    expect(pairs)
}

fn mysql_greeting() -> Vec<u8> {
    let mut payload = vec![10];
    payload.extend_from_slice(b"8.0.36-lab\0");
    payload.extend_from_slice(&[7, 0, 0, 0]); // thread id
    payload.extend_from_slice(b"abcdefgh\0");
    payload.extend_from_slice(&[0xff, 0xf7, 0x21, 0x02, 0x00]);
    let mut packet = vec![u8::try_from(payload.len()).unwrap(), 0, 0, 0];
    packet.extend_from_slice(&payload);
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifies_services_and_judges_them() {
    let ip = "127.0.41.1";
    let pki = lab::Pki::new().unwrap();
    let tls = pki.server_config(&[ip]).unwrap();
    let _servers = vec![
        fake(
            &format!("{ip}:22"),
            Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n".to_vec()),
        )
        .await,
        fake(
            &format!("{ip}:21"),
            Fake::Banner(b"220 (vsFTPd 3.0.3)\r\n".to_vec()),
        )
        .await,
        fake(
            &format!("{ip}:25"),
            Fake::Banner(b"220 mx.lab.test ESMTP Postfix (Debian/GNU)\r\n".to_vec()),
        )
        .await,
        fake(
            &format!("{ip}:23"),
            Fake::Banner(vec![255, 253, 24, 255, 253, 32, 255, 253, 35, 255, 253, 39]),
        )
        .await,
        // A banner that is not UTF-8 stays lossless in the evidence.
        fake(
            &format!("{ip}:2222"),
            Fake::Banner(b"SSH-2.0-\xff\xfe\x1b[31mevil\r\n".to_vec()),
        )
        .await,
        fake(&format!("{ip}:3306"), Fake::Banner(mysql_greeting())).await,
        fake(&format!("{ip}:5432"), Fake::Postgres).await,
        fake(&format!("{ip}:27017"), Fake::Mongo).await,
        fake(&format!("{ip}:9200"), Fake::Elasticsearch { auth: true }).await,
        fake(&format!("{ip}:11211"), Fake::Memcached { open: true }).await,
        lab::serve(
            lab::bind(&format!("{ip}:80")).await.unwrap(),
            Site::hardened().router(),
            None,
        ),
        lab::serve(
            lab::bind(&format!("{ip}:443")).await.unwrap(),
            Site::hardened().router(),
            Some(tls),
        ),
        lab::serve_hostile(
            lab::bind(&format!("{ip}:8080")).await.unwrap(),
            Hostile::Tarpit,
        ),
        lab::serve_hostile(
            lab::bind(&format!("{ip}:8081")).await.unwrap(),
            Hostile::Reset,
        ),
    ];
    let _filtered = lab::filtered(&format!("{ip}:8443")).await.unwrap();
    let started = Instant::now();
    let run = secgate(&[
        "scan",
        ip,
        "--checks",
        "ports",
        "--ports",
        "21-23,25,80,443,2222,3306,5432,8080,8081,8443,9200,9999,11211,27017",
        "--timeout",
        "1",
    ]);
    let took = started.elapsed();
    assert_eq!(
        run.statuses(None),
        expect(&[
            (UNEXPECTED, "fail"),
            (EXPOSED, "fail"),
            (UNAUTH, "fail"),
            (CLEARTEXT, "fail")
        ]),
        "{}",
        run.stdout
    );
    assert_eq!(
        services(&run),
        map(&[
            ("127.0.41.1:21", "ftp"),
            ("127.0.41.1:22", "ssh"),
            ("127.0.41.1:23", "telnet"),
            ("127.0.41.1:25", "smtp"),
            ("127.0.41.1:2222", "ssh"),
            ("127.0.41.1:3306", "mysql"),
            ("127.0.41.1:5432", "postgresql"),
            ("127.0.41.1:8080", "unknown"),
            ("127.0.41.1:8081", "unknown"),
            ("127.0.41.1:9200", "elasticsearch"),
            ("127.0.41.1:11211", "memcached"),
            ("127.0.41.1:27017", "mongodb"),
        ])
    );
    let ev = &run.result(UNEXPECTED)["evidence"];
    // 80 and 443 are open but allowed; 8443 is filtered (SYNs dropped), 9999 closed.
    assert_eq!(ev["allowed_ports"], json!([80, 443]));
    assert_eq!(
        (ev["closed"].as_i64(), ev["filtered"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(ev["ports_scanned"], 16);
    let banners: BTreeMap<String, Value> = ev["banners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b[0].as_str().unwrap().to_string(), b[1].clone()))
        .collect();
    assert_eq!(
        banners["127.0.41.1:22"],
        "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
    );
    assert_eq!(banners["127.0.41.1:21"], "220 (vsFTPd 3.0.3)");
    assert_eq!(banners["127.0.41.1:11211"], "VERSION 1.6.21");
    assert_eq!(
        banners["127.0.41.1:2222"],
        json!({"bytes": "U1NILTIuMC3//htbMzFtZXZpbA=="})
    );
    let notes = ev["identified_by"].to_string();
    assert!(
        notes.contains("127.0.41.1:3306: MySQL greeting, version 8.0.36-lab"),
        "{notes}"
    );
    assert!(
        notes.contains(
            "127.0.41.1:8080: accepts connections but sends nothing, even to a probe, within 1s"
        ),
        "{notes}"
    );
    assert!(
        notes.contains("127.0.41.1:8081: reset the connection"),
        "{notes}"
    );

    assert_eq!(
        run.result(EXPOSED)["message"],
        "datastore reachable: 127.0.41.1:3306 mysql, 127.0.41.1:5432 postgresql, 127.0.41.1:9200 elasticsearch, 127.0.41.1:11211 memcached, 127.0.41.1:27017 mongodb"
    );
    // Elasticsearch asked for credentials; memcached answered stats without any.
    assert_eq!(
        run.result(UNAUTH)["message"],
        "answers without authentication: 127.0.41.1:11211 memcached (version 1.6.21; stats answered without authentication)"
    );
    assert_eq!(
        run.result(CLEARTEXT)["message"],
        "cleartext login protocol: 127.0.41.1:21 ftp, 127.0.41.1:23 telnet"
    );
    assert_eq!(run.code, 1);
    // The report, non-UTF-8 banner included, is valid against the published schema.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(support::repo_path(
            "reports/schema/secgate-report.v1.schema.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(run.json())
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The tarpit costs one banner wait and one probe timeout, not a stalled sweep.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // The terminal report escapes the hostile banner's control characters.
    let verbose = secgate(&[
        "scan",
        ip,
        "--checks",
        "ports",
        "--ports",
        "2222",
        "--timeout",
        "1",
        "-v",
    ]);
    assert!(!verbose.stdout.contains('\u{1b}'), "{}", verbose.stdout);
}

/// A real Debian redis-server, started by the test on its own loopback address.
struct Redis(Child);

impl Redis {
    fn start(ip: &str, password: Option<&str>) -> Redis {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--bind",
            ip,
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--protected-mode",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(pw) = password {
            cmd.args(["--requirepass", pw]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server is needed (Debian package redis-server; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((ip, 6379)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {ip}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis(child)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_redis_without_a_password_is_critical() {
    let _open = Redis::start("127.0.42.1", None);
    let _locked = Redis::start("127.0.42.2", Some("lab-redis-secret"));
    // A /30 range: .0 and .3 have nothing listening.
    let run = secgate(&[
        "scan",
        "127.0.42.0/30",
        "--checks",
        "ports",
        "--ports",
        "6379",
        "--timeout",
        "2",
    ]);
    assert_eq!(run.json()["targets"][0]["target"], "127.0.42.0/30");
    assert_eq!(
        run.statuses(None),
        expect(&[
            (UNEXPECTED, "fail"),
            (EXPOSED, "fail"),
            (UNAUTH, "fail"),
            (CLEARTEXT, "pass")
        ]),
        "{}",
        run.stdout
    );
    assert_eq!(
        services(&run),
        map(&[("127.0.42.1:6379", "redis"), ("127.0.42.2:6379", "redis")])
    );
    assert_eq!(run.result(UNEXPECTED)["evidence"]["closed"], 2);
    assert_eq!(
        run.result(UNAUTH)["message"],
        "answers without authentication: 127.0.42.1:6379 redis (PING answered +PONG without authentication)"
    );
    let notes = run.result(UNEXPECTED)["evidence"]["identified_by"].to_string();
    assert!(
        notes.contains("127.0.42.2:6379: PING refused: -NOAUTH Authentication required."),
        "{notes}"
    );
    assert!(!run.json().to_string().contains("lab-redis-secret"));

    // Allowing the port acknowledges the exposure, never the missing password.
    let run = secgate(&[
        "scan",
        "127.0.42.0/30",
        "--checks",
        "ports",
        "--ports",
        "6379",
        "--allowed-ports",
        "6379",
        "--timeout",
        "2",
    ]);
    assert_eq!(
        run.statuses(None),
        expect(&[
            (UNEXPECTED, "pass"),
            (EXPOSED, "pass"),
            (UNAUTH, "fail"),
            (CLEARTEXT, "pass")
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_ports_open_passes_the_gate() {
    let ip = "127.0.43.1";
    let pki = lab::Pki::new().unwrap();
    let _https = lab::serve(
        lab::bind(&format!("{ip}:443")).await.unwrap(),
        Site::hardened().router(),
        Some(pki.server_config(&[ip]).unwrap()),
    );
    let _ssh = fake(
        &format!("{ip}:22"),
        Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("secgate.toml");
    std::fs::write(
        &cfg,
        format!(
            "[scan]\nchecks = [\"ports\"]\ntimeout = 1\n\n[[target]]\nhost = \"{ip}\"\nports = \"1-1024\"\nallowed_ports = [22, 443]\n"
        ),
    )
    .unwrap();
    let run = secgate(&["scan", "--config", cfg.to_str().unwrap()]);
    assert_eq!(
        run.statuses(None),
        expect(&[
            (UNEXPECTED, "pass"),
            (EXPOSED, "pass"),
            (UNAUTH, "pass"),
            (CLEARTEXT, "pass")
        ]),
        "{}",
        run.stdout
    );
    assert_eq!(
        services(&run),
        map(&[("127.0.43.1:22", "ssh"), ("127.0.43.1:443", "tls")])
    );
    assert_eq!(run.result(UNEXPECTED)["evidence"]["closed"], 1022);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["summary"]["score"], 100.0);

    // Without the config's allowance, SSH is unexpected.
    let run = secgate(&[
        "scan",
        ip,
        "--checks",
        "ports",
        "--ports",
        "22,443",
        "--timeout",
        "1",
    ]);
    assert_eq!(run.result(UNEXPECTED)["status"], "fail");
    assert_eq!(
        run.result(UNEXPECTED)["message"],
        "1 open port not in allowed_ports: 127.0.43.1:22 ssh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_a_range_with_top100() {
    let _web = lab::serve(
        lab::bind("127.0.44.7:8080").await.unwrap(),
        Site::hardened().router(),
        None,
    );
    let _mc = fake("127.0.44.200:11211", Fake::Memcached { open: false }).await;
    let _silent_high = fake("127.0.44.9:40000", Fake::Banner(Vec::new())).await; // not in top100
    let run = secgate(&[
        "scan",
        "127.0.44.0/24",
        "--checks",
        "ports",
        "--ports",
        "top100",
        "--timeout",
        "1",
    ]);
    assert_eq!(
        services(&run),
        map(&[
            ("127.0.44.7:8080", "http"),
            ("127.0.44.200:11211", "memcached")
        ]),
        "{}",
        run.stdout
    );
    assert_eq!(run.result(UNEXPECTED)["evidence"]["closed"], 256 * 100 - 2);
    assert_eq!(run.result(UNAUTH)["status"], "pass");
    assert_eq!(run.result(EXPOSED)["status"], "fail");
}

#[test]
fn a_low_open_file_limit_slows_the_sweep_but_never_fails_it() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        panic!("prlimit (util-linux) is needed");
    }
    let listener = std::net::TcpListener::bind("127.0.45.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    // 40 descriptors for everything (runtime, resolver, sweep): far below the 2048 wanted.
    let out = Command::new("prlimit")
        .args(["--nofile=40:40", "--"])
        .arg(env!("CARGO_BIN_EXE_secgate"))
        .args([
            "scan",
            "127.0.45.1",
            "--checks",
            "ports",
            "--timeout",
            "1",
            "--port-concurrency",
            "60000",
        ])
        .args(["--ports", &format!("10001-15000,{port}")])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.to_lowercase().contains("too many open files"),
        "{stderr}"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let r = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == UNEXPECTED)
        .unwrap();
    assert_eq!(r["status"], "fail", "{r}");
    assert_eq!(
        r["evidence"]["ports"],
        json!([format!("127.0.45.1:{port} unknown")])
    );
    assert_eq!(
        r["evidence"]["closed"],
        if (10001..=15000).contains(&port) {
            4999
        } else {
            5000
        }
    );
    drop(listener);
}

#[test]
fn bad_port_arguments_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["scan", "127.0.0.1", "--ports", "1-x"],
            "--ports: '1-x': invalid port 'x'",
        ),
        (
            &["scan", "127.0.0.1", "--ports", "100-10"],
            "--ports: '100-10': range 100-10 is reversed",
        ),
        (
            &["scan", "127.0.0.1", "--allowed-ports", "0"],
            "--allowed-ports: '0': invalid port '0'",
        ),
        (
            &["scan", "127.0.0.1", "--port-concurrency", "0"],
            "--port-concurrency: must be between 1 and 65536",
        ),
        (
            &["scan", "10.0.0.0/15"],
            "TARGET: '10.0.0.0/15' holds 131072 addresses, more than 65536; pass --allow-large-range",
        ),
        (
            &["scan", "10.0.0.0/7", "--allow-large-range"],
            "TARGET: '10.0.0.0/7' holds 33554432 addresses, more than 16777216",
        ),
        (
            &["scan", "10.0.0.0/33"],
            "TARGET: '10.0.0.0/33': invalid prefix length '33'",
        ),
    ];
    for (args, needle) in cases {
        let run = secgate(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in {}",
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_ipv6_loopback() {
    let ssh = fake(
        "[::1]:0",
        Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
    )
    .await;
    let closed = std::net::TcpListener::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ports = format!("{},{closed}", ssh.addr.port());
    let run = secgate(&[
        "scan",
        "::1",
        "--checks",
        "ports",
        "--ports",
        &ports,
        "--timeout",
        "1",
    ]);
    assert_eq!(
        services(&run),
        map(&[(&format!("[::1]:{}", ssh.addr.port()), "ssh")]),
        "{}",
        run.stdout
    );
    assert_eq!(run.result(UNEXPECTED)["evidence"]["closed"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_service_is_cut_off() {
    // Slowloris: the start of an HTTP response, then one byte every 200 ms, forever.
    let slow = lab::serve_hostile(lab::bind("127.0.46.1:0").await.unwrap(), Hostile::Slowloris);
    let garbage = lab::serve_hostile(lab::bind("127.0.46.1:0").await.unwrap(), Hostile::Garbage);
    let ports = format!("{},{}", slow.addr.port(), garbage.addr.port());
    let started = Instant::now();
    let run = secgate(&[
        "scan",
        "127.0.46.1",
        "--checks",
        "ports",
        "--ports",
        &ports,
        "--timeout",
        "1",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let found = services(&run);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[&format!("127.0.46.1:{}", slow.addr.port())], "http");
    assert_eq!(
        found[&format!("127.0.46.1:{}", garbage.addr.port())],
        "unknown"
    );
}

#[test]
fn help_says_which_families_run_on_which_targets() {
    let run = secgate(&["scan", "--help"]);
    let help = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "CIDR ranges (10.0.0.0/24)",
        "the ports family (a top1000 sweep) on hosts and ranges",
        "the dns family on DNS names not pinned with --resolve",
        "--ports <LIST>",
        "--dns-server <ADDR:PORT>",
    ] {
        assert!(help.contains(needle), "{needle:?} not in {help}");
    }
}
