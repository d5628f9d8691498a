//! Password hashing on a bounded number of threads. argon2id costs ~50 ms of a core by design,
//! so a stranger posting wrong passwords from many addresses could otherwise fill every core
//! and starve everything else auth answers, and queue real people behind their guesses. Two
//! lanes, each of `max(1, cores / 2)` hashes at once: one for (account, address) pairs known
//! from an earlier sign-in, one for everyone else (new pairs, registrations). The strangers'
//! lane holds at most `max_waiting` attempts; past that an attempt answers 429 at once, and one
//! that has waited `STRANGER_WAIT` for its turn answers 429 then: on a loaded machine a full
//! queue takes longer to drain than a caller (the gateway's route timeout) waits. Either refusal
//! still counts against the account and the address (`FailureLimiter::unchecked`), so a flood
//! cannot dodge the limits by keeping the lane full.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Semaphore;

use crate::crypto;

/// The longest a stranger's attempt waits for its turn before it answers 429.
const STRANGER_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing is busy")]
    Busy(Duration),
    #[error("password hashing failed: {0}")]
    Failed(String),
}

pub struct Passwords {
    known: Semaphore,
    strangers: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// How long a stranger waits for a turn at most (`STRANGER_WAIT`).
    max_wait: Duration,
}

/// Which lane an attempt takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Known,
    Stranger,
}

impl Passwords {
    pub fn new(max_waiting: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let per_lane = (cores / 2).max(1);
        Self {
            known: Semaphore::new(per_lane),
            strangers: Semaphore::new(per_lane),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait: STRANGER_WAIT,
        }
    }

    /// Runs `work` on a blocking thread once `lane` has room.
    async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let semaphore = match lane {
            Lane::Known => &self.known,
            Lane::Stranger => &self.strangers,
        };
        let _waiting = (lane == Lane::Stranger)
            .then(|| Waiting::join(&self.waiting, self.max_waiting))
            .transpose()?;
        let turn = semaphore.acquire();
        let _permit = match lane {
            Lane::Known => turn.await,
            Lane::Stranger => tokio::time::timeout(self.max_wait, turn)
                .await
                .map_err(|_| HashError::Busy(Duration::from_secs(1)))?,
        }
        .map_err(|e| HashError::Failed(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// Whether `password` matches `stored` (`None`: an unknown user, checked all the same so
    /// that the time does not tell).
    pub async fn verify(&self, lane: Lane, password: String, stored: Option<String>) -> Result<bool, HashError> {
        self.run(lane, move || crypto::verify_password(&password, stored.as_deref()))
            .await
    }

    /// The argon2id hash of a new password (the strangers' lane: registration is open).
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        self.run(Lane::Stranger, move || crypto::hash_password(&password))
            .await?
            .map_err(|e| HashError::Failed(e.to_string()))
    }
}

/// One place in the strangers' queue, given back on drop.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn join(count: &'a AtomicUsize, max: usize) -> Result<Self, HashError> {
        if count.fetch_add(1, Ordering::SeqCst) >= max {
            count.fetch_sub(1, Ordering::SeqCst);
            return Err(HashError::Busy(Duration::from_secs(1)));
        }
        Ok(Self(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stranger_waiting_too_long_for_a_turn_is_refused() {
        let passwords = Arc::new(Passwords {
            max_wait: Duration::from_millis(200),
            ..Passwords::new(64)
        });
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(std::sync::Mutex::new(hold));
        // Every hashing thread of the lane busy until released.
        let held: Vec<_> = (0..passwords.strangers.available_permits())
            .map(|_| {
                let (passwords, hold) = (passwords.clone(), hold.clone());
                tokio::spawn(async move {
                    passwords
                        .run(Lane::Stranger, move || hold.lock().unwrap().recv().is_ok())
                        .await
                })
            })
            .collect();
        while passwords.strangers.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        let refused = passwords.run(Lane::Stranger, || ()).await;
        assert!(matches!(refused, Err(HashError::Busy(_))), "{refused:?}");
        assert!(started.elapsed() >= passwords.max_wait);
        for task in held {
            release.send(()).unwrap();
            assert!(task.await.unwrap().unwrap());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_strangers_lane_refuses_at_once_and_known_pairs_go_on() {
        let passwords = Arc::new(Passwords::new(2));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(std::sync::Mutex::new(hold));
        let stranger = || {
            let (passwords, hold) = (passwords.clone(), hold.clone());
            tokio::spawn(async move {
                passwords
                    .run(Lane::Stranger, move || hold.lock().unwrap().recv().is_ok())
                    .await
            })
        };
        // One hashes (held until released), one waits for its turn: the lane is full.
        let (first, second) = (stranger(), stranger());
        while passwords.waiting.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        let refused = passwords.run(Lane::Stranger, || ()).await;
        assert!(matches!(refused, Err(HashError::Busy(_))));
        let known = passwords.run(Lane::Known, || 42).await;
        assert_eq!(known.ok(), Some(42), "a known pair is not queued behind strangers");
        assert!(!first.is_finished() && !second.is_finished());
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert!(first.await.unwrap().unwrap() && second.await.unwrap().unwrap());
        assert!(
            passwords.run(Lane::Stranger, || ()).await.is_ok(),
            "places are given back"
        );
    }
}
