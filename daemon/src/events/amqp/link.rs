//! The connection owner: one task holds the AMQP connection, declares the
//! exchanges on each (re)connect, and publishes the current `Session` (or
//! why there is none) on a `watch`. Everyone else holds a `Link` and asks it
//! for a live session; after a broker restart the owner reconnects with
//! backoff and publishes a new session (a new generation). It knows nothing
//! of events or subscriptions.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties};
use lymph_proto::backoff::Backoff;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::config::AmqpConfig;
use super::topology::Topology;
use crate::events::EventError;

/// Reconnect backoff: doubles from the first to the last.
pub(crate) const BACKOFF_FIRST: Duration = Duration::from_millis(200);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);
pub(crate) const BACKOFF: Backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_MAX);
/// How often the owner checks that the connection and its publish channel live
/// (connection errors also arrive at once through lapin's event stream).
const HEALTH_CHECK: Duration = Duration::from_millis(250);

/// One live connection.
pub(crate) struct Session {
    pub generation: u64,
    pub connection: Connection,
    /// Confirms on; shared by every emit and retry (lapin channels are safe
    /// to publish on from many tasks, and match confirms to publishes).
    pub publish: Channel,
    /// Wait queues declared on this connection (declared again after a reconnect).
    pub wait_queues: Mutex<HashSet<String>>,
}

#[derive(Clone)]
pub(crate) enum LinkState {
    Up(Arc<Session>),
    /// Why the broker is unreachable (redacted URL and error).
    Down(String),
}

#[derive(Clone)]
pub(crate) struct Link {
    state: watch::Receiver<LinkState>,
}

impl Link {
    /// Makes the first connection (one attempt), then spawns the owner.
    pub(crate) async fn connect(
        config: Arc<AmqpConfig>,
        topology: Arc<Topology>,
    ) -> Result<Link, EventError> {
        let session = open(&config, &topology, 1)
            .await
            .map_err(EventError::Backend)?;
        let (tx, state) = watch::channel(LinkState::Up(Arc::new(session)));
        tokio::spawn(own(config, topology, tx));
        Ok(Link { state })
    }

    /// Whether a session is up now.
    pub(crate) fn is_up(&self) -> bool {
        matches!(*self.state.borrow(), LinkState::Up(_))
    }

    /// A live session newer than `after` (0: any), waiting for a reconnect
    /// until `deadline`.
    pub(crate) async fn session(
        &self,
        after: u64,
        deadline: Instant,
    ) -> Result<Arc<Session>, EventError> {
        let mut state = self.state.clone();
        loop {
            let why = match &*state.borrow_and_update() {
                LinkState::Up(s) if s.generation > after => return Ok(s.clone()),
                LinkState::Up(_) => "the connection was lost".to_owned(),
                LinkState::Down(why) => why.clone(),
            };
            match tokio::time::timeout_at(deadline, state.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(EventError::Closed),
                Err(_) => return Err(unavailable(&why)),
            }
        }
    }
}

pub(crate) fn unavailable(why: &str) -> EventError {
    EventError::Backend(format!("rabbitmq unavailable: {why}"))
}

/// One connection attempt: connect, declare the exchanges, open the publish channel.
pub(crate) async fn open(
    config: &AmqpConfig,
    topology: &Topology,
    generation: u64,
) -> Result<Session, String> {
    let url = config.redacted_url();
    let uri = config.uri().map_err(|e| e.to_string())?;
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("lymphd {}", config.identity).into());
    let attempt = async {
        let connection = Connection::connect_uri(uri, properties).await?;
        let setup = connection.create_channel().await?;
        topology.declare_exchanges(&setup).await?;
        let _ = setup.close(200, "declared".into()).await;
        let publish = connection.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok::<_, lapin::Error>((connection, publish))
    };
    let (connection, publish) = tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| {
            format!(
                "cannot connect to rabbitmq at {url}: timed out after {:?}",
                config.connect_timeout
            )
        })?
        .map_err(|e| format!("cannot connect to rabbitmq at {url}: {e}"))?;
    Ok(Session {
        generation,
        connection,
        publish,
        wait_queues: Mutex::new(HashSet::new()),
    })
}

/// The owner's loop: watch the live session; when it breaks, publish `Down`
/// and reconnect with backoff. Ends (closing the connection) when every
/// `Link` is gone.
async fn own(config: Arc<AmqpConfig>, topology: Arc<Topology>, tx: watch::Sender<LinkState>) {
    let url = config.redacted_url();
    let mut generation = 1;
    loop {
        let LinkState::Up(session) = tx.borrow().clone() else {
            return;
        };
        let why = tokio::select! {
            why = broken(&session) => why,
            () = tx.closed() => {
                let _ = session.connection.close(200, "lymphd event bus closed".into()).await;
                debug!(%url, "event bus closed");
                return;
            }
        };
        warn!(%url, generation, error = %why, "rabbitmq connection lost; reconnecting");
        let _ = session
            .connection
            .close(320, "lymphd reconnects".into())
            .await;
        drop(session);
        tx.send_replace(LinkState::Down(format!("{url}: {why}")));
        let mut backoff = BACKOFF;
        loop {
            if tx.is_closed() {
                return;
            }
            generation += 1;
            match open(&config, &topology, generation).await {
                Ok(session) => {
                    info!(%url, generation, "rabbitmq connection restored");
                    tx.send_replace(LinkState::Up(Arc::new(session)));
                    break;
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    warn!(%url, %error, retry_in = ?delay, "rabbitmq reconnect failed");
                    tx.send_replace(LinkState::Down(error));
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// Resolves when the session's connection (or its publish channel) is gone.
async fn broken(session: &Session) -> String {
    let mut events = session.connection.events_listener();
    let mut tick = tokio::time::interval(HEALTH_CHECK);
    loop {
        tokio::select! {
            event = events.next() => match event {
                // Channel errors (a 406 on one declare) come here too: only
                // a dead connection counts.
                Some(lapin::Event::Error(e)) if !session.connection.status().connected() => {
                    return e.to_string();
                }
                Some(_) => {}
                None => return "the connection ended".to_owned(),
            },
            _ = tick.tick() => {
                if !session.connection.status().connected() {
                    return "the connection is closed".to_owned();
                }
                if !session.publish.status().connected() {
                    return "the publish channel was closed".to_owned();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_from_200_ms_doubling_to_5_s() {
        let mut backoff = BACKOFF;
        let ms: Vec<u128> = (0..7).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
