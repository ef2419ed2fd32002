//! lymph's heartbeat (§3.7): a `lymph.ping` to every peer we talked to, each
//! `heartbeat_interval`; peers silent past `unresponsive_after` have their
//! waiting calls failed at once; long-silent idle peers are forgotten.

use std::sync::Arc;

use bytes::Bytes;
use tracing::debug;

use super::peers::{Outgoing, Shared};
use crate::rpc::frame::{self, Headers, Message, MessageType};

/// `{"payload": ""}`, what lymph sends.
const PING_BODY: &[u8] = &[0x81, 0xa7, b'p', b'a', b'y', b'l', b'o', b'a', b'd', 0xa0];

pub(super) async fn run(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(shared.config.heartbeat_interval);
    // A stalled runtime should not produce a burst of pings afterwards.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The trace id of heartbeats is meaningless (lymph keeps the first one).
    let trace_id = frame::new_message_id();
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let (targets, newly_dead) = shared.tick();
        for endpoint in newly_dead {
            let failed = shared.fail_pending_to(&endpoint, "peer unresponsive");
            debug!(peer = %endpoint, failed, "peer unresponsive");
        }
        for (endpoint, tx) in targets {
            let ping = Message {
                id: frame::new_message_id(),
                kind: MessageType::Req,
                subject: "lymph.ping".to_owned(),
                headers: Headers {
                    trace_id: Some(trace_id.clone()),
                    ..Headers::default()
                },
                body: Bytes::from_static(PING_BODY),
            };
            let outgoing = Outgoing {
                frames: frame::encode("", &ping),
                request_id: None,
            };
            // try_send: a peer whose queue is full is busy enough to skip a ping.
            if tx.try_send(outgoing).is_err() {
                debug!(peer = %endpoint, "heartbeat skipped: peer queue full");
            }
        }
    }
}
