//! Writes that arrive at the same time share one transaction (a group commit): a writer takes
//! every write waiting when it starts, so under load a handful of statements carries many of
//! them, and alone a write waits for nothing but itself. Each caller still gets its own answer:
//! should a shared transaction fail (one write's conflict, say), each write runs again alone.

use std::future::Future;
use std::sync::Arc;

use storage::StorageError;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Transactions in flight at once: one fills while the other commits.
const WRITERS: usize = 2;

struct Waiting<T> {
    item: T,
    done: oneshot::Sender<Result<(), StorageError>>,
}

/// Submits writes of `T`; cheap to share. The writers stop when it is dropped.
pub struct GroupCommit<T> {
    waiting: mpsc::Sender<Waiting<T>>,
}

impl<T: Clone + Send + 'static> GroupCommit<T> {
    /// Starts the writers on the current runtime: `write` gets up to `batch` items at once
    /// and writes them in one transaction.
    pub fn start<W, F>(batch: usize, write: W) -> Self
    where
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), StorageError>> + Send + 'static,
    {
        let (waiting, taken) = mpsc::channel(batch * WRITERS * 4);
        let taken = Arc::new(Mutex::new(taken));
        let write = Arc::new(write);
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(write.clone(), taken.clone(), batch));
        }
        Self { waiting }
    }

    /// Writes `item` with whatever else is waiting; returns once committed.
    pub async fn submit(&self, item: T) -> Result<(), StorageError> {
        let (done, answer) = oneshot::channel();
        let stopped = || StorageError::Open("the writers have stopped".to_owned());
        self.waiting.send(Waiting { item, done }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches<T, W, F>(write: Arc<W>, taken: Arc<Mutex<mpsc::Receiver<Waiting<T>>>>, batch: usize)
where
    T: Clone,
    W: Fn(Vec<T>) -> F,
    F: Future<Output = Result<(), StorageError>>,
{
    loop {
        let mut waiting = Vec::with_capacity(batch);
        if taken.lock().await.recv_many(&mut waiting, batch).await == 0 {
            return;
        }
        if waiting.len() > 1 && write(waiting.iter().map(|w| w.item.clone()).collect()).await.is_ok() {
            for w in waiting {
                let _ = w.done.send(Ok(()));
            }
            continue;
        }
        for w in waiting {
            let written = write(vec![w.item]).await;
            let _ = w.done.send(written);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex as StdMutex;

    use super::*;

    /// Writes that arrive together are written together; one that fails its batch fails alone.
    #[tokio::test]
    async fn a_failing_write_fails_alone_and_the_rest_share_a_transaction() {
        let batches: Arc<StdMutex<Vec<Vec<u32>>>> = Arc::default();
        let seen = batches.clone();
        let commit = Arc::new(GroupCommit::start(64, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.clone());
            async move {
                if items.contains(&13) {
                    Err(StorageError::Open("thirteen".to_owned()))
                } else {
                    Ok(())
                }
            }
        }));
        let answers: Vec<_> = (0..40)
            .map(|n| {
                let commit = commit.clone();
                tokio::spawn(async move { (n, commit.submit(n).await) })
            })
            .collect();
        for answer in answers {
            let (n, written) = answer.await.unwrap();
            assert_eq!(written.is_err(), n == 13, "item {n}: {written:?}");
        }
        let batches = batches.lock().unwrap();
        assert!(batches.iter().any(|b| b.len() > 1), "no batch shared: {batches:?}");
        let written: usize = batches.iter().filter(|b| !b.contains(&13)).map(Vec::len).sum();
        assert_eq!(written, 39, "every other item written once: {batches:?}");
    }
}
