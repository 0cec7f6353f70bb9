//! Concurrency limits: one global semaphore for (target, family) tasks, and one semaphore per
//! host for connections, so that a scan of many targets stays polite to each of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The scan's limits.
#[derive(Debug)]
pub struct Limits {
    tasks: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    host_tasks: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Limits {
    /// `concurrency` tasks at once over the whole scan; `per_host` connections per host.
    pub fn new(concurrency: usize, per_host: usize) -> Limits {
        Limits {
            tasks: Arc::new(Semaphore::new(concurrency.max(1))),
            per_host: per_host.max(1),
            hosts: Mutex::new(HashMap::new()),
            host_tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Wait for a task slot. `None` only if the semaphore was closed, which never happens.
    pub async fn task(&self) -> Option<OwnedSemaphorePermit> {
        self.tasks.clone().acquire_owned().await.ok()
    }

    /// Wait for a connection slot to `host` (an address or a name).
    pub async fn connection(&self, host: &str) -> Option<OwnedSemaphorePermit> {
        self.slot(&self.hosts, host).await
    }

    /// Wait for a slot to run one family on `host`: at most `per_host` at once per host.
    pub async fn host_task(&self, host: &str) -> Option<OwnedSemaphorePermit> {
        self.slot(&self.host_tasks, host).await
    }

    async fn slot(
        &self,
        map: &Mutex<HashMap<String, Arc<Semaphore>>>,
        host: &str,
    ) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut hosts = match map.lock() {
                Ok(h) => h,
                Err(poisoned) => poisoned.into_inner(),
            };
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        sem.acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn per_host_limit_is_enforced_per_host() {
        let limits = Limits::new(4, 2);
        let a1 = limits.connection("a").await;
        let a2 = limits.connection("a").await;
        assert!(a1.is_some() && a2.is_some());
        // A third connection to "a" must wait; "b" is independent.
        let third =
            tokio::time::timeout(std::time::Duration::from_millis(50), limits.connection("a"))
                .await;
        assert!(third.is_err());
        assert!(limits.connection("b").await.is_some());
        drop(a1);
        assert!(limits.connection("a").await.is_some());
    }
}
