//! Verification facts, cached and shared: what [`kibaship_cosign::ImageVerifier`] found for one image digest
//! under one trusted root and one policy's requirements. Admission decisions are never cached: policy selection,
//! modes and exceptions are applied to every request; only the expensive, content-addressed part is kept.
//!
//! Concurrent lookups of one key share one verification (one registry read), which runs as its own task: a
//! request that gives up (its budget ran out) does not cancel it for the others, and its result still lands in
//! the cache. Failures to read the registry are shared by the requests waiting for them but not kept.
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use kibaship_cosign::{ReasonCode, Verdict};

/// What identifies a verification fact: the image pinned by digest (repository included: signatures live beside
/// each copy), the trusted root's hash, and the fingerprint of the policy's requirements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FactKey {
    /// `registry/repository@sha256:...`.
    pub image: String,
    /// SHA-256 of the trusted root file.
    pub trust_root: [u8; 32],
    /// [`kibaship_cosign::ImagePolicy::fingerprint`] of the requirements.
    pub requirements: [u8; 32],
}

/// Why no verdict could be reached (the registry could not be read, the verification task failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactError {
    /// Stable code: `registry-unreachable`, `timeout` or `internal-error`.
    pub code: &'static str,
    /// What happened, for the denial message.
    pub message: String,
}

impl FactError {
    /// From a reason code of the verifier.
    pub fn from_reason(code: Option<ReasonCode>, message: String) -> Self {
        FactError {
            code: code.map_or("internal-error", ReasonCode::as_str),
            message,
        }
    }
}

/// How a lookup was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// From the cache.
    Hit,
    /// A verification was started for it.
    Miss,
    /// It joined a verification already in flight.
    Coalesced,
}

impl Lookup {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
            Lookup::Coalesced => "coalesced",
        }
    }
}

type FactResult = Result<Arc<Verdict>, FactError>;
type Pending = Shared<BoxFuture<'static, FactResult>>;

enum Slot {
    Ready {
        verdict: Arc<Verdict>,
        at: Instant,
        seq: u64,
    },
    Pending {
        future: Pending,
        seq: u64,
    },
}

struct Entries {
    map: HashMap<FactKey, Slot>,
    /// Keys in the order their slots were made, with the slot's sequence number (stale pairs are skipped).
    order: VecDeque<(u64, FactKey)>,
    next_seq: u64,
}

/// A bounded cache of verification facts with a time to live, and coalescing of concurrent misses.
pub struct FactCache {
    entries: Mutex<Entries>,
    capacity: usize,
    ttl: Duration,
}

impl std::fmt::Debug for FactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactCache")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl FactCache {
    /// At most `capacity` facts (at least 1), each kept `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Arc<Self> {
        Arc::new(FactCache {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                order: VecDeque::new(),
                next_seq: 0,
            }),
            capacity: capacity.max(1),
            ttl,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Facts held (ready or in flight).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fact for `key`: from the cache, from a verification in flight, or from the future `verify` makes,
    /// spawned as a task of its own (it must bound its own duration: the registry client's timeout does). The
    /// verification's future is made only on a miss: what waits for a cached fact does not carry it (it is
    /// large, and moved with every future that holds it).
    pub async fn get_or_verify<M, F>(
        self: &Arc<Self>,
        key: FactKey,
        verify: M,
    ) -> (FactResult, Lookup)
    where
        M: FnOnce() -> F,
        F: std::future::Future<Output = FactResult> + Send + 'static,
    {
        let (future, lookup) = {
            let mut entries = self.lock();
            match entries.map.get(&key) {
                Some(Slot::Ready { verdict, at, .. }) if at.elapsed() < self.ttl => {
                    return (Ok(Arc::clone(verdict)), Lookup::Hit);
                }
                Some(Slot::Pending { future, .. }) => (future.clone(), Lookup::Coalesced),
                _ => {
                    let seq = entries.next_seq;
                    entries.next_seq += 1;
                    let future = self.spawn(key.clone(), seq, verify());
                    entries.map.insert(
                        key.clone(),
                        Slot::Pending {
                            future: future.clone(),
                            seq,
                        },
                    );
                    entries.order.push_back((seq, key));
                    self.evict(&mut entries);
                    (future, Lookup::Miss)
                }
            }
        };
        (future.await, lookup)
    }

    /// Runs `verify` as a task that records its own result, so that it completes even when every waiter gave up.
    fn spawn<F>(self: &Arc<Self>, key: FactKey, seq: u64, verify: F) -> Pending
    where
        F: std::future::Future<Output = FactResult> + Send + 'static,
    {
        let cache = Arc::clone(self);
        let task = tokio::spawn(async move {
            // A panic inside the verification becomes an error here, never an allow (where panics unwind; release
            // builds abort). Caught in this task rather than by a task of its own: that would allocate the
            // verification's future (about 19 KB) a second time and copy it there, for each new digest.
            let result = match AssertUnwindSafe(verify).catch_unwind().await {
                Ok(result) => result,
                Err(panic) => Err(FactError {
                    code: "internal-error",
                    message: format!(
                        "the verification panicked: {}",
                        panic_message(panic.as_ref())
                    ),
                }),
            };
            cache.settle(&key, seq, &result);
            result
        });
        async move {
            task.await.unwrap_or_else(|e| {
                Err(FactError {
                    code: "internal-error",
                    message: format!("the verification task failed: {e}"),
                })
            })
        }
        .boxed()
        .shared()
    }

    /// Replaces the pending slot `seq` of `key` with its result (kept when a verdict, dropped when an error).
    fn settle(&self, key: &FactKey, seq: u64, result: &FactResult) {
        let mut entries = self.lock();
        let ours = matches!(entries.map.get(key), Some(Slot::Pending { seq: s, .. }) if *s == seq);
        if !ours {
            return;
        }
        match result {
            Ok(verdict) => {
                let seq = entries.next_seq;
                entries.next_seq += 1;
                entries.map.insert(
                    key.clone(),
                    Slot::Ready {
                        verdict: Arc::clone(verdict),
                        at: Instant::now(),
                        seq,
                    },
                );
                entries.order.push_back((seq, key.clone()));
                self.evict(&mut entries);
            }
            Err(_) => {
                entries.map.remove(key);
            }
        }
    }

    /// Drops the oldest ready facts (and stale order records) while over capacity. Facts in flight are never
    /// dropped: their waiters hold them, and they settle into a new record.
    fn evict(&self, entries: &mut Entries) {
        let mut budget = entries.order.len();
        while entries.map.len() > self.capacity && budget > 0 {
            budget -= 1;
            let Some((seq, key)) = entries.order.pop_front() else {
                break;
            };
            match entries.map.get(&key) {
                Some(Slot::Ready { seq: s, .. }) if *s == seq => {
                    entries.map.remove(&key);
                }
                Some(Slot::Pending { seq: s, .. }) if *s == seq => {
                    entries.order.push_back((seq, key))
                }
                _ => {}
            }
        }
        // Records whose slot was replaced are garbage; keep the queue from growing without bound.
        if entries.order.len() > 2 * self.capacity + 16 {
            let Entries { map, order, .. } = entries;
            order.retain(|(seq, key)| match map.get(key) {
                Some(Slot::Ready { seq: s, .. } | Slot::Pending { seq: s, .. }) => s == seq,
                None => false,
            });
        }
    }
}

/// What a caught panic said (its message when it was a string), for an `internal-error`.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(n: u8) -> FactKey {
        FactKey {
            image: format!("registry.test/app@sha256:{}", hex::encode([n; 32])),
            trust_root: [1; 32],
            requirements: [2; 32],
        }
    }

    fn failing(code: &'static str) -> FactResult {
        Err(FactError {
            code,
            message: "registry down".into(),
        })
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_verification_and_errors_are_not_kept() {
        let cache = FactCache::new(10, Duration::from_secs(60));
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let mut waiters = Vec::new();
        for _ in 0..50 {
            let cache = Arc::clone(&cache);
            let runs = Arc::clone(&runs);
            let mut gate = gate.clone();
            waiters.push(tokio::spawn(async move {
                cache
                    .get_or_verify(key(1), move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.wait_for(|open| *open).await;
                        failing("registry-unreachable")
                    })
                    .await
            }));
        }
        // Every waiter is registered before the verification may finish.
        while cache.is_empty() {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        release.send(true).expect("release");
        let mut lookups = Vec::new();
        for w in waiters {
            let (result, lookup) = w.await.expect("waiter");
            assert_eq!(
                result.expect_err("shared error").code,
                "registry-unreachable"
            );
            lookups.push(lookup);
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "one verification for 50 waiters"
        );
        assert_eq!(lookups.iter().filter(|l| **l == Lookup::Miss).count(), 1);
        assert_eq!(cache.len(), 0, "a failure is not kept");
    }

    #[tokio::test]
    async fn a_panicking_verification_is_an_internal_error() {
        let cache = FactCache::new(10, Duration::from_secs(60));
        let (result, _) = cache
            .get_or_verify(key(2), || async {
                let v: Vec<u8> = Vec::new();
                // An out-of-bounds index: a panic inside the task.
                let _ = v[usize::from(std::hint::black_box(3u8))];
                failing("unreachable")
            })
            .await;
        assert_eq!(result.expect_err("panic").code, "internal-error");
        assert_eq!(cache.len(), 0);
    }
}
