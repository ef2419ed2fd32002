//! lymph's heartbeat (`docs/wire.md` §3.8): a `lymph.ping` to every peer we talked to, each
//! `heartbeat_interval`; peers silent past `unresponsive_after` have their
//! waiting calls failed at once; long-silent idle peers are forgotten. A probe
//! is the same ping sent at once to a peer never reached yet, so it becomes
//! verified (its handshake, then its answer) or known dead without a call.

use std::sync::Arc;

use bytes::Bytes;
use tracing::debug;

use super::peers::{Outgoing, Shared, is_endpoint};
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
            // try_send: a peer whose queue is full is busy enough to skip a ping.
            if tx.try_send(ping(&trace_id)).is_err() {
                debug!(peer = %endpoint, "heartbeat skipped: peer queue full");
            }
        }
    }
}

/// Probes `endpoint` unless it is known already (the heartbeat pings known
/// peers): its connection task connects and completes the handshake, which
/// verifies it, and the ping's answer keeps it verified. A connect that fails
/// leaves it unverified until `unresponsive_after`, then dead. Bad endpoint
/// strings are ignored: they can never be reached.
pub(super) fn probe(shared: &Arc<Shared>, endpoint: &str) {
    if endpoint == shared.endpoint || shared.is_known(endpoint) || !is_endpoint(endpoint) {
        return;
    }
    match shared.conn_for(endpoint) {
        Ok(tx) => {
            // try_send: a fresh queue has room; if not, the peer is busy anyway.
            let _ = tx.try_send(ping(&frame::new_message_id()));
            debug!(peer = %endpoint, "probing a peer never reached");
        }
        Err(error) => debug!(peer = %endpoint, %error, "cannot probe peer"),
    }
}

/// One `lymph.ping`, as lymph sends it; its answer is dropped as a reply
/// nobody waits for, after proving the peer alive.
fn ping(trace_id: &str) -> Outgoing {
    let ping = Message {
        id: frame::new_message_id(),
        kind: MessageType::Req,
        subject: "lymph.ping".to_owned(),
        headers: Headers {
            trace_id: Some(trace_id.to_owned()),
            ..Headers::default()
        },
        body: Bytes::from_static(PING_BODY),
    };
    Outgoing::encode(&ping, None)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::mpsc;
    use tokio::time::timeout;

    use super::super::start;
    use crate::rpc::{IncomingRequest, Liveness, Remote, TransportConfig};

    const WAIT: Duration = Duration::from_secs(10);

    fn config() -> TransportConfig {
        TransportConfig {
            connect_timeout: Duration::from_millis(300),
            unresponsive_after: Duration::from_millis(600),
            ..super::super::tests::config()
        }
    }

    async fn transport() -> (Arc<dyn Remote>, mpsc::Receiver<IncomingRequest>) {
        timeout(WAIT, start(config()))
            .await
            .expect("start in time")
            .expect("starts")
    }

    /// Polls `remote`'s view of `endpoint` until it is `want`, within `WAIT`;
    /// returns every state seen on the way.
    async fn until(remote: &dyn Remote, endpoint: &str, want: Liveness) -> Vec<Liveness> {
        let deadline = Instant::now() + WAIT;
        let mut seen = vec![remote.liveness(endpoint)];
        while seen.last() != Some(&want) {
            assert!(
                Instant::now() < deadline,
                "{endpoint}: {seen:?}, never {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            let now = remote.liveness(endpoint);
            if seen.last() != Some(&now) {
                seen.push(now);
            }
        }
        seen
    }

    #[tokio::test]
    async fn a_probe_verifies_a_live_peer_without_a_call() {
        let (a, _a_rx) = transport().await;
        let (b, _b_rx) = transport().await;
        let b_endpoint = b.endpoint().to_owned();
        assert_eq!(a.liveness(&b_endpoint), Liveness::Unverified);
        a.probe(&b_endpoint);
        until(a.as_ref(), &b_endpoint, Liveness::Verified).await;
        // Its heartbeat answers keep it verified well past `unresponsive_after`.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(a.liveness(&b_endpoint), Liveness::Verified);
        drop(b);
        until(a.as_ref(), &b_endpoint, Liveness::Dead).await;
    }

    #[tokio::test]
    async fn endpoints_that_never_answer_turn_dead_without_being_verified() {
        let (a, _a_rx) = transport().await;
        // Refused: nothing listens there.
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        // Accepts connections and never speaks ZMTP.
        let mute = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mute_port = mute.local_addr().expect("addr").port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = mute.accept().await {
                open.push(stream);
            }
        });
        for endpoint in [
            format!("tcp://127.0.0.1:{refused}"),
            format!("tcp://127.0.0.1:{mute_port}"),
        ] {
            a.probe(&endpoint);
            let seen = until(a.as_ref(), &endpoint, Liveness::Dead).await;
            assert_eq!(seen, [Liveness::Unverified, Liveness::Dead], "{endpoint}");
        }
        // Bad endpoint strings are never probed nor counted as reachable.
        a.probe("tcp://nowhere");
        assert_eq!(a.liveness("tcp://nowhere"), Liveness::Unverified);
        held.abort();
    }
}
