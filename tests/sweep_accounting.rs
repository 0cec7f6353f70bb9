//! Sweep accounting when threads cannot work: this test binary lowers its own open-file limit
//! (it runs alone in its process), so that the sweep threads cannot create their epoll
//! instance, or can but never get a socket. Every job must then be counted as not scanned,
//! and the sweep must give up after its patience, not hang or report an empty success.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed assumption is a failed test"
)]

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use secgate::checks::ports::sweep::{self, Jobs, RESOURCE_PATIENCE, SweepConfig, SweepResult};

/// The open-file limit under which exactly `spare` new descriptors can be opened: a new
/// descriptor takes the lowest free number, and it must be below the limit.
fn limit_leaving(spare: u64) -> u64 {
    let listed: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The directory handle was one of the entries while it was read; it is closed now.
    let open: Vec<u64> = listed
        .into_iter()
        .filter(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok())
        .collect();
    (0..)
        .find(|limit| limit - open.iter().filter(|fd| **fd < *limit).count() as u64 == spare)
        .unwrap()
}

fn sweep_with_spare_fds(spare: u64) -> (SweepResult, Duration) {
    let addrs: Vec<IpAddr> = vec!["127.0.48.9".parse().unwrap()];
    let ports: Vec<u16> = (20_000..20_100).collect();
    let cfg = SweepConfig {
        in_flight: 64,
        threads: 2,
        initial_timeout: Duration::from_millis(200),
        min_timeout: Duration::from_millis(100),
        max_timeout: Duration::from_millis(300),
    };
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    rlimit::setrlimit(rlimit::Resource::NOFILE, limit_leaving(spare), hard).unwrap();
    let started = Instant::now();
    let result = sweep::run(
        Jobs {
            addrs: &addrs,
            ports: &ports,
        },
        &cfg,
        &AtomicBool::new(false),
    );
    let took = started.elapsed();
    rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard).unwrap();
    (result, took)
}

#[test]
fn jobs_no_thread_could_settle_are_not_scanned() {
    // No descriptor at all: no thread gets an epoll instance, none takes a job.
    let (r, _) = sweep_with_spare_fds(0);
    assert_eq!(
        (r.open.len(), r.closed, r.filtered, r.errors),
        (0, 0, 0, 100),
        "{r:?}"
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.starts_with("a sweep thread could not create its epoll instance")),
        "{r:?}"
    );
    assert!(!r.cancelled);

    // One descriptor: one thread gets its epoll instance, the other not, and no socket is
    // left. The sweep waits its patience once, for the whole sweep (not per job), then counts
    // every job as not scanned.
    let (r, took) = sweep_with_spare_fds(1);
    assert_eq!(
        (r.open.len(), r.closed, r.filtered, r.errors),
        (0, 0, 0, 100),
        "{r:?}"
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.starts_with("the system refused sockets for more than 5s")),
        "{r:?}"
    );
    assert!(r.stats.backoffs > 0);
    assert!(
        took >= RESOURCE_PATIENCE && took < RESOURCE_PATIENCE * 3,
        "took {took:?}"
    );
}
