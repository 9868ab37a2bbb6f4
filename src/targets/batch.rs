//! Batching for the bridge targets. The dispatcher calls `deliver` once per event, with
//! up to `concurrency` calls in flight; cloud PutEvents APIs take up to 10 entries a
//! request. A [`Batcher`] is a task per target that gathers the entries of concurrent
//! calls (up to `max_entries` / `max_bytes`, waiting at most `linger` after the first)
//! into one request, and answers each caller with its own entry's result. So batching
//! needs `concurrency` > 1: with 1, every request carries one entry.
//!
//! Requests of successive batches run concurrently (each its own task): the number in
//! flight is bounded by the callers, i.e. by the dispatcher's `concurrency`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::DeliveryError;

/// Sends one batch: one result per item, in order.
pub trait Sink: Send + Sync + 'static {
    type Item: Send + 'static;
    fn send(
        &self,
        items: Vec<Self::Item>,
    ) -> impl Future<Output = Vec<Result<(), DeliveryError>>> + Send;
}

/// Limits of one batch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_bytes: usize,
    pub linger: Duration,
}

type Reply = oneshot::Sender<Result<(), DeliveryError>>;

struct Pending<I> {
    item: I,
    size: usize,
    reply: Reply,
}

/// The handle callers submit entries through.
pub struct Batcher<I> {
    tx: mpsc::Sender<Pending<I>>,
}

impl<I> std::fmt::Debug for Batcher<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batcher")
    }
}

impl<I: Send + 'static> Batcher<I> {
    /// Starts the batching task (it ends when the batcher is dropped). Needs a Tokio
    /// runtime.
    pub fn spawn<S: Sink<Item = I>>(sink: S, limits: Limits) -> Batcher<I> {
        let (tx, rx) = mpsc::channel(limits.max_entries.max(1) * 64);
        tokio::spawn(run(Arc::new(sink), limits, rx));
        Batcher { tx }
    }

    /// Sends `item` (of `size` bytes, as the API counts them) in the next batch and
    /// waits for its result.
    pub async fn submit(&self, item: I, size: usize) -> Result<(), DeliveryError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { item, size, reply })
            .await
            .map_err(|_| DeliveryError::Request("the batcher stopped".into()))?;
        answer
            .await
            .unwrap_or_else(|_| Err(DeliveryError::Request("the batch was dropped".into())))
    }
}

async fn run<S: Sink>(sink: Arc<S>, limits: Limits, mut rx: mpsc::Receiver<Pending<S::Item>>) {
    let mut carried: Option<Pending<S::Item>> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.size;
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + limits.linger;
        while batch.len() < limits.max_entries {
            // What is queued already goes in at once; then wait up to `linger`.
            let next = match rx.try_recv() {
                Ok(p) => Some(p),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
            let Some(next) = next else { break };
            if bytes + next.size > limits.max_bytes {
                carried = Some(next);
                break;
            }
            bytes += next.size;
            batch.push(next);
        }
        let sink = sink.clone();
        tokio::spawn(async move {
            let (items, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|p| (p.item, p.reply)).unzip();
            let n = items.len();
            let mut results = sink.send(items).await;
            results.resize_with(n, || {
                Err(DeliveryError::Failed {
                    message: "no result for this entry in the answer".into(),
                    retryable: true,
                })
            });
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Recorder(Arc<Mutex<Vec<Vec<u32>>>>);

    impl Sink for Recorder {
        type Item = u32;
        async fn send(&self, items: Vec<u32>) -> Vec<Result<(), DeliveryError>> {
            self.0.lock().unwrap().push(items.clone());
            items
                .iter()
                .map(|i| {
                    if i % 2 == 0 {
                        Ok(())
                    } else {
                        Err(DeliveryError::Failed {
                            message: format!("odd {i}"),
                            retryable: true,
                        })
                    }
                })
                .collect()
        }
    }

    #[tokio::test]
    async fn concurrent_calls_share_requests_and_get_their_own_results() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let batcher = Arc::new(Batcher::spawn(
            Recorder(seen.clone()),
            Limits {
                max_entries: 10,
                max_bytes: 35,
                linger: Duration::from_millis(20),
            },
        ));
        let mut calls = Vec::new();
        for i in 0..25u32 {
            let b = batcher.clone();
            calls.push(tokio::spawn(async move { (i, b.submit(i, 3).await) }));
        }
        for call in calls {
            let (i, result) = call.await.unwrap();
            match result {
                Ok(()) => assert_eq!(i % 2, 0),
                Err(e) => assert_eq!(e.to_string(), format!("odd {i}")),
            }
        }
        let batches = seen.lock().unwrap().clone();
        let mut all: Vec<u32> = batches.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..25).collect::<Vec<_>>());
        // 35 bytes hold 11 entries of 3, 10 entries is the first limit hit.
        assert!(batches.iter().all(|b| b.len() <= 10), "{batches:?}");
        assert!(batches.len() <= 5, "{batches:?}");
    }

    #[tokio::test]
    async fn the_byte_limit_splits_batches() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let batcher = Arc::new(Batcher::spawn(
            Recorder(seen.clone()),
            Limits {
                max_entries: 10,
                max_bytes: 10,
                linger: Duration::from_millis(20),
            },
        ));
        let mut calls = Vec::new();
        for i in 0..6u32 {
            let b = batcher.clone();
            calls.push(tokio::spawn(async move { b.submit(i * 2, 4).await }));
        }
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let batches = seen.lock().unwrap().clone();
        assert!(batches.iter().all(|b| b.len() <= 2), "{batches:?}");
    }
}
