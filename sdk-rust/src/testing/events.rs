//! Recording emitted events: a `Subscribe` on the test daemon (a private
//! broadcast queue, so the services' own handlers still get every event)
//! whose deliveries are kept for the test to read or wait on.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lymph_proto::v1;
use serde::de::DeserializeOwned;
use tokio::task::AbortHandle;

use super::log::Log;
use super::{TestingError, WAIT};
use crate::Event;

/// The events of one type emitted since it was made (by
/// [`TestDaemon::record`](super::TestDaemon::record)), in the order the bus
/// delivered them. Keeps recording across
/// [`TestDaemon::restart`](super::TestDaemon::restart); stops when dropped.
///
/// ```no_run
/// # async fn demo(daemon: lymph::testing::TestDaemon) -> Result<(), Box<dyn std::error::Error>> {
/// let reserved = daemon.record("reserved").await?;
/// // ... make the service under test emit ...
/// let events = reserved.wait_for(1).await?;
/// assert_eq!(events[0].get::<String>("sku").expect("a sku"), "X-1");
/// assert_eq!(reserved.bodies::<serde_json::Value>()?, [serde_json::json!({"sku": "X-1"})]);
/// # Ok(()) }
/// ```
pub struct EventRecorder {
    recording: Arc<Recording>,
}

/// What the daemon keeps (weakly) to subscribe again after a restart.
pub(crate) struct Recording {
    event_type: String,
    log: Arc<Log<Event>>,
    task: Mutex<Option<AbortHandle>>,
}

impl EventRecorder {
    pub(crate) fn new(recording: Arc<Recording>) -> EventRecorder {
        EventRecorder { recording }
    }

    /// The event type recorded.
    pub fn event_type(&self) -> &str {
        &self.recording.event_type
    }

    /// The events recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.recording.log.snapshot()
    }

    /// The bodies of the events recorded so far, decoded.
    pub fn bodies<T: DeserializeOwned>(&self) -> Result<Vec<T>, TestingError> {
        self.events()
            .iter()
            .map(|event| {
                event.decode().map_err(|e| TestingError::Decode {
                    what: format!("a {} event", self.recording.event_type),
                    message: e.message().to_owned(),
                })
            })
            .collect()
    }

    /// The events recorded once there are at least `n` (maybe more); a
    /// timeout error after [`WAIT`](super::WAIT).
    pub async fn wait_for(&self, n: usize) -> Result<Vec<Event>, TestingError> {
        self.wait_for_within(n, WAIT).await
    }

    /// [`wait_for`](Self::wait_for) with a timeout of your own.
    ///
    /// ```no_run
    /// # async fn demo(recorder: lymph::testing::EventRecorder) {
    /// let more = recorder.wait_for_within(2, std::time::Duration::from_millis(200)).await;
    /// assert!(more.is_err(), "a second event came: {:?}", recorder.events());
    /// # }
    /// ```
    pub async fn wait_for_within(
        &self,
        n: usize,
        within: Duration,
    ) -> Result<Vec<Event>, TestingError> {
        let what = format!("{} events", self.recording.event_type);
        self.recording.log.wait_for(n, within, &what).await
    }
}

impl Recording {
    pub(crate) fn new(event_type: &str) -> Arc<Recording> {
        Arc::new(Recording {
            event_type: event_type.to_owned(),
            log: Arc::new(Log::new()),
            task: Mutex::new(None),
        })
    }

    /// Subscribes on the daemon at `socket`; returns once the daemon's queue
    /// exists, so every event emitted from then on is recorded.
    pub(crate) async fn subscribe(&self, socket: &Path) -> Result<(), TestingError> {
        let mut api = lymph_proto::connect(socket)
            .await
            .map_err(|e| TestingError::Api(e.to_string()))?;
        let mut stream = api
            .subscribe(v1::SubscribeRequest {
                event_types: vec![self.event_type.clone()],
            })
            .await
            .map_err(|s| TestingError::Api(s.message().to_owned()))?
            .into_inner();
        let log = self.log.clone();
        let pump = tokio::spawn(async move {
            // Ends with the daemon (a restart subscribes again) or the recorder.
            while let Ok(Some(event)) = stream.message().await {
                log.push(from_proto(event));
            }
        });
        let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = task.replace(pump.abort_handle()) {
            old.abort();
        }
        Ok(())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

/// A recorded event as a handler would see it (first delivery).
fn from_proto(event: v1::Event) -> Event {
    Event {
        event_type: event.event_type,
        body: event.body,
        trace_id: event.trace_id,
        attempt: 1,
        event_id: event.event_id,
        handler: String::new(),
    }
}
