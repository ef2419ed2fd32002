//! Settling a delivery the app held, the lymph way: an ack is passed to the
//! broker; a fail re-publishes a copy to the retry exchange with
//! `retry_count` one lower (and acks the original), or drops the event past
//! its retry count (rejected without requeue: a dead-letter policy, if set,
//! keeps it).

use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use tracing::{debug, warn};

use super::consume::Consuming;
use super::envelope::{self, Incoming};
use super::publish::Target;

/// A delivery handed to the app and not settled yet.
pub(crate) struct Held {
    pub acker: Acker,
    pub incoming: Incoming,
}

/// lymph's failure path: tries left = `retry_count` (else the handler's
/// `retry`) - 1; if ≥ 0 a copy carrying it goes to the retry exchange under
/// this queue's name, and the original is acked; else the event is dropped.
pub(crate) async fn fail(ctx: Consuming, queue: String, retry: u32, held: Held, reason: String) {
    let Held { acker, incoming } = held;
    let event_id = incoming.event.id.clone();
    let left = incoming.retry_count.unwrap_or(i64::from(retry)) - 1;
    let drop_it = BasicRejectOptions { requeue: false };
    if left < 0 {
        warn!(%queue, %event_id, trace_id = %incoming.event.trace_id, %reason, "event failed past its retry count; dropped");
        let _ = acker.reject(drop_it).await;
        return;
    }
    let copy = envelope::encode(
        &incoming.event,
        &incoming.source,
        Some(left),
        &incoming.other_headers,
    );
    match ctx
        .publisher
        .publish(Target::Retry { queue: &queue }, &copy, &event_id)
        .await
    {
        Ok(()) => {
            debug!(%queue, %event_id, tries_left = left, %reason, "event failed; retry queued");
            let _ = acker.ack(BasicAckOptions::default()).await;
        }
        Err(error) => {
            // Rejected without requeue: a dead-letter policy, if set, keeps it.
            warn!(%queue, %event_id, trace_id = %incoming.event.trace_id, %error, %reason, "event failed and its retry could not be queued; dropped");
            let _ = acker.reject(drop_it).await;
        }
    }
}
