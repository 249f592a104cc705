//! Group commit: every batch that arrives while the database is committing the previous group
//! goes into the next one. Each request still waits for its own batch to be durable before its
//! 2xx, but a hundred concurrent requests cost one commit (one disk flush), not a hundred.
//!
//! One task owns the writing; requests hand it their batch and await the answer.

use crate::store::{Accepted, Arriving};
use crate::Shared;
use salla_salesmanago::received::ReceivedBatch;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most batches in one commit (bounds the time any one request waits behind the others).
const MAX_GROUP: usize = 256;

struct Job {
    batch: ReceivedBatch,
    tenant: String,
    done: oneshot::Sender<Result<Accepted, String>>,
}

/// The handle requests use to store a batch.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writing task. It ends when every `Writer` is dropped.
    pub fn start(shared: Arc<Shared>) -> Writer {
        let (jobs, queue) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(write_loop(shared, queue));
        Writer { jobs }
    }

    /// Stores `batch` for `tenant` durably; returns when it is committed.
    pub async fn accept(&self, batch: ReceivedBatch, tenant: String) -> Result<Accepted, String> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                batch,
                tenant,
                done,
            })
            .map_err(|_| "the writer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the writer has stopped".to_owned())?
    }
}

async fn write_loop(shared: Arc<Shared>, mut queue: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let arriving: Vec<Arriving<'_>> = group
            .iter()
            .map(|j| Arriving {
                batch: &j.batch,
                tenant: &j.tenant,
            })
            .collect();
        let result = shared
            .store
            .accept(&arriving, crate::now_ms(), shared.config.contact_wait_max)
            .await;
        drop(arriving);
        match result {
            Ok(accepted) => {
                for (job, a) in group.into_iter().zip(accepted) {
                    let _ = job.done.send(Ok(a));
                }
            }
            Err(e) => {
                // The whole group rolled back: every request gets a 503 and its tracker retries.
                let e = e.to_string();
                for job in group {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}
