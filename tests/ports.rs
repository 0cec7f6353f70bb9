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

/// TCP ports with a listener on every address (0.0.0.0 or ::), from /proc/net/tcp{,6}: a
/// daemon of the machine (sshd, rpcbind, ...) that a sweep of the tests' own addresses also
/// finds, and that a test binding the same port would collide with.
fn wildcard_listeners() -> std::collections::BTreeSet<u16> {
    let mut ports = std::collections::BTreeSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((ip, port)) = local.split_once(':') else {
                continue;
            };
            if *state == "0A" && ip.chars().all(|c| c == '0') {
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

/// Every fake on a high port of its own (a daemon of the machine on a well-known port cannot
/// collide with it), so identification works without port hints, as for a datastore moved to
/// a non-default port. 40080 and 40443 stand for 80 and 443 (`--allowed-ports`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifies_services_and_judges_them() {
    let ip = "127.0.41.1";
    let pki = lab::Pki::new().unwrap();
    let tls = pki.server_config(&[ip]).unwrap();
    let _servers = vec![
        fake(
            &format!("{ip}:40022"),
            Fake::Banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n".to_vec()),
        )
        .await,
        fake(
            &format!("{ip}:40021"),
            Fake::Banner(b"220 (vsFTPd 3.0.3)\r\n".to_vec()),
        )
        .await,
        fake(
            &format!("{ip}:40025"),
            Fake::Banner(b"220 mx.lab.test ESMTP Postfix (Debian/GNU)\r\n".to_vec()),
        )
        .await,
        fake(
            &format!("{ip}:40023"),
            Fake::Banner(vec![255, 253, 24, 255, 253, 32, 255, 253, 35, 255, 253, 39]),
        )
        .await,
        // A banner that is not UTF-8 stays lossless in the evidence.
        fake(
            &format!("{ip}:40222"),
            Fake::Banner(b"SSH-2.0-\xff\xfe\x1b[31mevil\r\n".to_vec()),
        )
        .await,
        fake(&format!("{ip}:43306"), Fake::Banner(mysql_greeting())).await,
        fake(&format!("{ip}:45432"), Fake::Postgres).await,
        // mongod's HTTP hint identifies it off its default port.
        fake(&format!("{ip}:47017"), Fake::Mongo).await,
        // Elasticsearch with security on: a 401 without X-elastic-product.
        fake(&format!("{ip}:49200"), Fake::Elasticsearch { auth: true }).await,
        fake(&format!("{ip}:41211"), Fake::Memcached { open: true }).await,
        lab::serve(
            lab::bind(&format!("{ip}:40080")).await.unwrap(),
            Site::hardened().router(),
            None,
        ),
        lab::serve(
            lab::bind(&format!("{ip}:40443")).await.unwrap(),
            Site::hardened().router(),
            Some(tls),
        ),
        lab::serve_hostile(
            lab::bind(&format!("{ip}:48080")).await.unwrap(),
            Hostile::Tarpit,
        ),
        lab::serve_hostile(
            lab::bind(&format!("{ip}:48081")).await.unwrap(),
            Hostile::Reset,
        ),
    ];
    let _filtered = lab::filtered(&format!("{ip}:48443")).await.unwrap();
    let started = Instant::now();
    let run = secgate(&[
        "scan",
        ip,
        "--checks",
        "ports",
        "--ports",
        "40021-40023,40025,40080,40443,40222,43306,45432,48080,48081,48443,49200,49999,41211,47017",
        "--allowed-ports",
        "40080,40443",
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
            ("127.0.41.1:40021", "ftp"),
            ("127.0.41.1:40022", "ssh"),
            ("127.0.41.1:40023", "telnet"),
            ("127.0.41.1:40025", "smtp"),
            ("127.0.41.1:40222", "ssh"),
            ("127.0.41.1:43306", "mysql"),
            ("127.0.41.1:45432", "postgresql"),
            ("127.0.41.1:48080", "unknown"),
            ("127.0.41.1:48081", "unknown"),
            ("127.0.41.1:49200", "elasticsearch"),
            ("127.0.41.1:41211", "memcached"),
            ("127.0.41.1:47017", "mongodb"),
        ])
    );
    let ev = &run.result(UNEXPECTED)["evidence"];
    // 40080 and 40443 are open but allowed; 48443 is filtered (SYNs dropped), 49999 closed.
    assert_eq!(ev["allowed_ports"], json!([40080, 40443]));
    assert_eq!(
        (
            ev["closed"].as_i64(),
            ev["filtered"].as_i64(),
            ev["not_scanned"].as_i64()
        ),
        (Some(1), Some(1), Some(0))
    );
    assert_eq!(ev["ports_scanned"], 16);
    let banners: BTreeMap<String, Value> = ev["banners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b[0].as_str().unwrap().to_string(), b[1].clone()))
        .collect();
    assert_eq!(
        banners["127.0.41.1:40022"],
        "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
    );
    assert_eq!(banners["127.0.41.1:40021"], "220 (vsFTPd 3.0.3)");
    assert_eq!(banners["127.0.41.1:41211"], "VERSION 1.6.21");
    assert_eq!(banners["127.0.41.1:47017"], "HTTP/1.0 200 OK");
    assert_eq!(banners["127.0.41.1:49200"], "HTTP/1.1 401 Unauthorized");
    assert_eq!(
        banners["127.0.41.1:40222"],
        json!({"bytes": "U1NILTIuMC3//htbMzFtZXZpbA=="})
    );
    let notes = ev["identified_by"].to_string();
    for needle in [
        "127.0.41.1:43306: MySQL greeting, version 8.0.36-lab",
        "127.0.41.1:45432: SSLRequest answered N (no TLS)",
        "127.0.41.1:47017: answers HTTP with MongoDB's native-driver-port message",
        "127.0.41.1:49200: GET / answered 401",
        // The tarpit: every silent probe waited a third of the timeout.
        "127.0.41.1:48080: accepts connections but sends nothing, even to 3 probes (up to 0.333s each)",
        "127.0.41.1:48081: reset the connection to every probe",
    ] {
        assert!(notes.contains(needle), "{needle:?} not in {notes}");
    }

    assert_eq!(
        run.result(EXPOSED)["message"],
        "datastore reachable: 127.0.41.1:41211 memcached, 127.0.41.1:43306 mysql, 127.0.41.1:45432 postgresql, 127.0.41.1:47017 mongodb, 127.0.41.1:49200 elasticsearch"
    );
    // Elasticsearch asked for credentials; memcached answered stats without any.
    assert_eq!(
        run.result(UNAUTH)["message"],
        "answers without authentication: 127.0.41.1:41211 memcached (version 1.6.21; stats answered without authentication)"
    );
    assert_eq!(
        run.result(CLEARTEXT)["message"],
        "cleartext login protocol: 127.0.41.1:40021 ftp, 127.0.41.1:40023 telnet"
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
    // The tarpit costs one banner wait and one answer timeout, not a stalled sweep.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // The terminal report escapes the hostile banner's control characters.
    let verbose = secgate(&[
        "scan",
        ip,
        "--checks",
        "ports",
        "--ports",
        "40222",
        "--timeout",
        "1",
        "-v",
    ]);
    assert!(!verbose.stdout.contains('\u{1b}'), "{}", verbose.stdout);
}

/// A port that speaks only TLS where a datastore listens by default is reported as
/// `tls (likely ...)`, and the datastore rules do not pass it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_a_datastore_port_is_not_passed() {
    let ip = "127.0.41.2";
    let busy = wildcard_listeners();
    let port = [9200u16, 6379, 27017, 11211]
        .into_iter()
        .find(|p| !busy.contains(p))
        .expect("every datastore port has a wildcard listener on this machine");
    let pki = lab::Pki::new().unwrap();
    let _tls = lab::serve(
        lab::bind(&format!("{ip}:{port}")).await.unwrap(),
        Site::hardened().router(),
        Some(pki.server_config(&[ip]).unwrap()),
    );
    let run = secgate(&[
        "scan",
        ip,
        "--checks",
        "ports",
        "--ports",
        &port.to_string(),
        "--timeout",
        "1",
    ]);
    let likely = match port {
        9200 => "elasticsearch",
        6379 => "redis",
        27017 => "mongodb",
        _ => "memcached",
    };
    assert_eq!(
        services(&run),
        map(&[(&format!("{ip}:{port}"), &format!("tls (likely {likely})"))]),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.statuses(None),
        expect(&[
            (UNEXPECTED, "fail"),
            (EXPOSED, "inconclusive"),
            (UNAUTH, "inconclusive"),
            (CLEARTEXT, "pass")
        ]),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.result(EXPOSED)["reason"]["detail"],
        format!(
            "only TLS answers on a datastore's default port, so the service behind it was not identified: {ip}:{port} (likely {likely})"
        )
    );
}

/// A real Debian redis-server, started by the test on its own loopback address.
struct Redis(Child);

impl Redis {
    fn start(ip: &str, password: Option<&str>) -> Redis {
        Redis::start_on(ip, 6379, password)
    }

    fn start_on(ip: &str, port: u16, password: Option<&str>) -> Redis {
        let port_text = port.to_string();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--bind",
            ip,
            "--port",
            &port_text,
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
        while std::net::TcpStream::connect((ip, port)).is_err() {
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

/// Redis moved off its default port, as `redis-server --port 7000 --protected-mode no`: no
/// port hint, and Redis closes the connection on an HTTP request, so PING must come first.
#[test]
fn real_redis_on_a_non_default_port_is_found() {
    let ip = "127.0.42.5";
    // A free port of the test's own address, near 7000.
    let port = (7000..7100)
        .find(|p| std::net::TcpListener::bind((ip, *p)).is_ok())
        .unwrap();
    let _redis = Redis::start_on(ip, port, None);
    let run = secgate(&[
        "scan",
        ip,
        "--checks",
        "ports",
        "--ports",
        &port.to_string(),
        "--timeout",
        "1",
    ]);
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
        run.result(UNAUTH)["message"],
        format!(
            "answers without authentication: {ip}:{port} redis (PING answered +PONG without authentication)"
        )
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
    // A daemon of the machine listening on every address (sshd on 22, rpcbind on 111...) is
    // open on each of the 256 addresses: leave its ports out of the comparison.
    let top100: Vec<u16> = secgate::checks::ports::spec::top(100).to_vec();
    let machine: Vec<u16> = wildcard_listeners()
        .into_iter()
        .filter(|p| top100.contains(p))
        .collect();
    let ours: BTreeMap<String, String> = services(&run)
        .into_iter()
        .filter(|(addr, _)| {
            let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
            !machine.contains(&port)
        })
        .collect();
    assert_eq!(
        ours,
        map(&[
            ("127.0.44.7:8080", "http"),
            ("127.0.44.200:11211", "memcached")
        ]),
        "{}",
        run.stdout
    );
    let ev = &run.result(UNEXPECTED)["evidence"];
    let machine_open = 256 * machine.len() as i64;
    assert_eq!(
        (
            ev["closed"].as_i64().unwrap(),
            ev["filtered"].as_i64(),
            ev["not_scanned"].as_i64()
        ),
        (256 * 100 - 2 - machine_open, Some(0), Some(0)),
        "machine's wildcard listeners: {machine:?}"
    );
    assert_eq!(run.result(EXPOSED)["status"], "fail");
    if machine.is_empty() {
        assert_eq!(run.result(UNAUTH)["status"], "pass");
    }
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

/// A very low open-file limit (`prlimit --nofile=N`, N from 9 to 13: around what secgate needs
/// before its first socket): whatever the limit, no rule passes unless every pair was settled,
/// and where the sweep could not get a socket it gives up after its patience (5 s for the whole
/// sweep, not per port) with every rule inconclusive.
#[test]
fn a_sweep_that_could_not_scan_never_passes() {
    let listener = std::net::TcpListener::bind("127.0.45.2:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut starved = 0;
    for n in 9..=13 {
        let json = dir.path().join(format!("r{n}.json"));
        let started = Instant::now();
        let out = Command::new("prlimit")
            .args([format!("--nofile={n}:{n}"), "--".into()])
            .arg(env!("CARGO_BIN_EXE_secgate"))
            .args(["scan", "127.0.45.2", "--checks", "ports", "--timeout", "1"])
            .args(["--ports", &format!("{}-{}", port - 5, port + 5)])
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(20),
            "--nofile={n}: took {took:?}"
        );
        // Too few descriptors to write the report at all is an error exit, never a pass.
        let Ok(text) = std::fs::read_to_string(&json) else {
            assert_ne!(out.status.code(), Some(0), "--nofile={n}");
            continue;
        };
        let report: Value = serde_json::from_str(&text).unwrap();
        let results = report["results"].as_array().unwrap();
        let r = results.iter().find(|r| r["rule_id"] == UNEXPECTED).unwrap();
        let ev = &r["evidence"];
        let settled = ev["closed"].as_i64().unwrap_or(0)
            + ev["filtered"].as_i64().unwrap_or(0)
            + ev["ports"].as_array().map_or(0, |p| p.len() as i64);
        if settled != 11 || ev["not_scanned"] != 0 {
            // Not everything scanned: nothing may pass.
            for r in results {
                assert_ne!(r["status"], "pass", "--nofile={n}: {r}");
            }
        }
        if ev["not_scanned"] == 11 {
            starved += 1;
            assert!(
                results.iter().all(|r| r["status"] == "inconclusive"),
                "--nofile={n}: {results:?}"
            );
            let detail = r["reason"]["detail"].as_str().unwrap();
            assert!(
                detail.starts_with("the sweep settled 0 of 11 (address, port) pairs")
                    && detail.contains("the system refused sockets for more than 5s"),
                "{detail}"
            );
            assert_eq!(out.status.code(), Some(3));
        }
    }
    assert!(starved > 0, "no limit from 9 to 13 starved the sweep");
    drop(listener);
}

/// A host where every port is filtered (lab::filtered: SYNs dropped) is not "scanned clean".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_answers_is_inconclusive() {
    let a = lab::filtered("127.0.47.1:0").await.unwrap();
    let b = lab::filtered("127.0.47.1:0").await.unwrap();
    let ports = format!("{},{}", a.addr.port(), b.addr.port());
    let run = secgate(&[
        "scan",
        "127.0.47.1",
        "--checks",
        "ports",
        "--ports",
        &ports,
        "--timeout",
        "1",
    ]);
    assert_eq!(
        run.statuses(None),
        expect(&[
            (UNEXPECTED, "inconclusive"),
            (EXPOSED, "inconclusive"),
            (UNAUTH, "inconclusive"),
            (CLEARTEXT, "inconclusive")
        ]),
        "{}",
        run.stdout
    );
    let r = run.result(UNEXPECTED);
    assert_eq!(
        r["reason"]["detail"],
        "no service found: no answer on any port: host down or fully filtered (2 pairs filtered)"
    );
    assert_eq!(r["reason"]["kind"], "no_service");
    assert_eq!(r["evidence"]["filtered"], 2);
    assert!(
        run.json()["summary"]["gate"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "no service found on 127.0.47.1"),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 3);
}

/// Every address of a name is swept (up to 8); more are reported as not scanned, and then no
/// rule passes. A URL's host is swept when the family is asked for by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_address_of_a_name_is_swept() {
    let first = fake(
        "127.0.49.1:0",
        Fake::Banner(
            b"SSH-2.0-one
"
            .to_vec(),
        ),
    )
    .await;
    let port = first.addr.port();
    let _second = fake(
        &format!("127.0.49.2:{port}"),
        Fake::Banner(
            b"SSH-2.0-two
"
            .to_vec(),
        ),
    )
    .await;
    let resolve = "multi.test:1:127.0.49.1,127.0.49.2,127.0.49.3".to_string();
    let run = secgate(&[
        "scan",
        "multi.test",
        "--resolve",
        &resolve,
        "--checks",
        "ports",
        "--ports",
        &port.to_string(),
        "--timeout",
        "1",
    ]);
    assert_eq!(
        services(&run),
        map(&[
            (&format!("127.0.49.1:{port}"), "ssh"),
            (&format!("127.0.49.2:{port}"), "ssh")
        ]),
        "{}",
        run.stdout
    );
    assert_eq!(run.result(UNEXPECTED)["evidence"]["addresses"], 3);
    assert_eq!(run.result(UNEXPECTED)["evidence"]["closed"], 1);
    assert_eq!(run.result(EXPOSED)["status"], "pass");

    // Nine addresses: the ninth is not swept, so nothing passes.
    let nine: Vec<String> = (1..=9).map(|i| format!("127.0.49.{}", 10 + i)).collect();
    let resolve = format!("multi.test:1:{}", nine.join(","));
    let run = secgate(&[
        "scan",
        "multi.test",
        "--resolve",
        &resolve,
        "--checks",
        "ports",
        "--ports",
        &port.to_string(),
        "--timeout",
        "1",
    ]);
    let r = run.result(UNEXPECTED);
    assert_eq!(r["status"], "inconclusive", "{r}");
    assert_eq!(
        r["reason"]["detail"],
        "the name has 1 more address than the 8 swept: 127.0.49.19 not scanned"
    );
    assert_eq!(
        r["evidence"]["addresses_not_scanned"],
        json!(["127.0.49.19"])
    );
    assert_eq!(r["evidence"]["closed"], 8);

    // An address of the name that never answers (SYNs dropped) was not checked.
    let _dropped = lab::filtered(&format!("127.0.49.30:{port}")).await.unwrap();
    let run = secgate(&[
        "scan",
        "multi.test",
        "--resolve",
        "multi.test:1:127.0.49.1,127.0.49.30",
        "--checks",
        "ports",
        "--ports",
        &port.to_string(),
        "--timeout",
        "1",
    ]);
    assert_eq!(run.result(UNEXPECTED)["status"], "fail");
    let r = run.result(EXPOSED);
    assert_eq!(r["status"], "inconclusive", "{r}");
    assert_eq!(
        r["reason"]["detail"],
        "no answer on any port from 127.0.49.30: down, fully filtered or unreachable from here"
    );
    assert_eq!(r["evidence"]["addresses_silent"], json!(["127.0.49.30"]));

    // A URL: swept when asked for, on the URL's host.
    let url = format!("http://127.0.49.1:{port}/");
    let run = secgate(&[
        "scan",
        &url,
        "--checks",
        "ports",
        "--ports",
        &port.to_string(),
        "--timeout",
        "1",
    ]);
    assert_eq!(
        services(&run),
        map(&[(&format!("127.0.49.1:{port}"), "ssh")]),
        "{}",
        run.stdout
    );
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
