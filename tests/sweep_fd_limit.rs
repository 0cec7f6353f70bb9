//! The sweep under a tight open-file limit: this test binary lowers its own soft limit (it runs
//! alone in its process) so that most connects fail with "too many open files", and the sweep
//! must back off and finish with every port classified, none lost.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use secgate::checks::ports::sweep::{self, Jobs, SweepConfig};
use secgate::lab;

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_backs_off_instead_of_failing_on_too_many_open_files() {
    // 12 ports that drop SYNs (full accept queues) and 16 closed ones on 127.0.48.1.
    let mut filtered = Vec::new();
    for _ in 0..12 {
        filtered.push(lab::filtered("127.0.48.1:0").await.unwrap());
    }
    let mut ports: Vec<u16> = filtered.iter().map(|f| f.addr.port()).collect();
    for _ in 0..16 {
        let l = std::net::TcpListener::bind("127.0.48.1:0").unwrap();
        ports.push(l.local_addr().unwrap().port());
    }
    let addrs: Vec<IpAddr> = vec!["127.0.48.1".parse().unwrap()];
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    // Room for about 6 more descriptors: the sweep wants 1000 sockets in flight.
    let soft = open_fds() + 8;
    rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard).unwrap();
    let result = tokio::task::spawn_blocking(move || {
        let cfg = SweepConfig {
            in_flight: 1000,
            threads: 2,
            initial_timeout: Duration::from_millis(150),
            min_timeout: Duration::from_millis(100),
            max_timeout: Duration::from_millis(200),
        };
        sweep::run(
            Jobs {
                addrs: &addrs,
                ports: &ports,
            },
            &cfg,
            &AtomicBool::new(false),
        )
    })
    .await
    .unwrap();
    rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard).unwrap();
    assert!(
        result.stats.backoffs > 0,
        "the limit was never hit: {:?}",
        result.stats
    );
    assert_eq!(
        (result.closed, result.filtered, result.errors),
        (16, 12, 0),
        "{result:?}"
    );
    assert!(result.open.is_empty(), "{result:?}");
    assert!(!result.cancelled);
    drop(filtered);
}
