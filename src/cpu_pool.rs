//! A few threads for the CPU-heavy part of a request, apart from the async workers.
//!
//! Validating a SAML Response (parse, canonicalize, verify, decrypt) is bounded, but it is
//! still the most expensive thing the bridge does, and it needs no signature to be asked for.
//! On the async workers, a handful of hostile responses at once would make `/healthz`, the
//! SP metadata, the proxy and every other login wait behind them. Here they wait for one of
//! about one thread per core, behind a short queue; when that is full the caller is told at
//! once ([`Busy`]) and answers 503 instead of queueing without limit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The pool is full: every thread is busy and the queue holds as many jobs as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("all {threads} validation threads are busy and {queue} requests already wait")]
pub struct Busy {
    pub threads: usize,
    pub queue: usize,
}

/// The job ended without an answer (it panicked; the thread lives on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the validation job ended without an answer")]
pub struct JobLost;

pub struct CpuPool {
    sender: SyncSender<Job>,
    threads: usize,
    queue: usize,
    /// Jobs accepted and not yet finished (running or queued), for `/metrics`.
    in_flight: Arc<AtomicUsize>,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool")
            .field("threads", &self.threads)
            .field("queue", &self.queue)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl CpuPool {
    /// `threads` workers (at least one) and room for `queue` jobs waiting for them.
    pub fn new(name: &str, threads: usize, queue: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&receiver))?;
        }
        Ok(CpuPool {
            sender,
            threads,
            queue,
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// One thread per core: the validation work is pure CPU.
    pub fn per_core(name: &str, queue: usize) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(name, cores, queue)
    }

    /// Runs `job` on a pool thread and waits for its answer without holding an async worker;
    /// refuses at once when the pool is full.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, RunError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let in_flight = self.in_flight.clone();
        in_flight.fetch_add(1, Ordering::Relaxed);
        let wrapped: Job = Box::new(move || {
            // Counted out however the job ends, a panic included, and before the caller hears.
            let done = Finished(in_flight);
            let result = job();
            drop(done);
            // The caller may have gone (client disconnected); its answer is then dropped.
            let _ = answer.send(result);
        });
        match self.sender.try_send(wrapped) {
            Ok(()) => answered.await.map_err(|_| RunError::Lost(JobLost)),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                Err(RunError::Busy(Busy {
                    threads: self.threads,
                    queue: self.queue,
                }))
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// How many jobs the pool holds at most: one running per thread plus the queue.
    pub fn capacity(&self) -> usize {
        self.threads + self.queue
    }
}

/// Counts a job out of `in_flight` when it ends.
struct Finished(Arc<AtomicUsize>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Busy(Busy),
    #[error(transparent)]
    Lost(JobLost),
}

/// A worker: takes jobs until the pool is dropped. A panicking job loses its answer (the
/// caller sees [`JobLost`]), never the thread.
fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // One worker waits on the channel at a time; the others wait for the lock. The lock
        // is released before the job runs.
        let job = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a validation job panicked; its request got a 500 page");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn runs_jobs_off_the_caller_and_returns_their_answer() {
        let pool = CpuPool::new("test", 2, 4).unwrap();
        let caller = std::thread::current().id();
        let (answer, thread) = pool.run(move || (21 * 2, std::thread::current().id())).await.unwrap();
        assert_eq!(answer, 42);
        assert_ne!(thread, caller);
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn refuses_at_once_when_threads_and_queue_are_full() {
        let pool = Arc::new(CpuPool::new("test", 1, 2).unwrap());
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let submit = |pool: &Arc<CpuPool>| {
            let (pool, gate, started_tx) = (pool.clone(), gate.clone(), started_tx.clone());
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = started_tx.send(());
                    let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(10));
                })
                .await
            })
        };
        async fn until_in_flight(pool: &CpuPool, n: usize) {
            while pool.in_flight() < n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        // One running on the only thread (waited for: a queued job is not yet a running one)...
        let mut held = vec![submit(&pool)];
        until_in_flight(&pool, 1).await;
        started.recv_timeout(Duration::from_secs(5)).unwrap();
        // ...and two queued: the pool's whole capacity.
        held.push(submit(&pool));
        held.push(submit(&pool));
        until_in_flight(&pool, pool.capacity()).await;
        let started_at = std::time::Instant::now();
        let refused = pool.run(|| ()).await;
        assert_eq!(refused, Err(RunError::Busy(Busy { threads: 1, queue: 2 })));
        assert!(started_at.elapsed() < Duration::from_millis(100), "refused at once");
        for _ in 0..held.len() {
            release.send(()).unwrap();
        }
        for h in held {
            assert_eq!(h.await.unwrap(), Ok(()));
        }
        // Room again once they are done.
        assert_eq!(pool.run(|| 7).await, Ok(7));
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_panicking_job_loses_its_answer_not_the_thread() {
        let pool = CpuPool::new("test", 1, 1).unwrap();
        let lost = pool.run(|| -> u8 { panic!("hostile input") }).await;
        assert_eq!(lost, Err(RunError::Lost(JobLost)));
        assert_eq!(pool.run(|| 1u8).await, Ok(1));
        assert_eq!(pool.in_flight(), 0);
    }
}
