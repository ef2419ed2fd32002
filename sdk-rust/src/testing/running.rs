//! Handles of services the harness runs in the test process: stop them
//! (draining) or drop them; a web service's handle also holds its HTTP client.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::TestingError;
use super::http::HttpClient;
use crate::ServiceError;

/// A service running inside the test process. Stops when dropped.
pub struct RunningService {
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), ServiceError>>>,
}

impl RunningService {
    pub(crate) fn new(
        stop: CancellationToken,
        task: JoinHandle<Result<(), ServiceError>>,
    ) -> RunningService {
        RunningService {
            stop,
            task: Some(task),
        }
    }

    /// Stops the service (Goodbye, in-flight handlers, `on_stop`) and waits for it.
    pub async fn stop(mut self) -> Result<(), TestingError> {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => Ok(result?),
                Err(e) => Err(TestingError::Daemon(e.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A web service running inside the test process, with a client for its
/// port; made by [`TestDaemon::serve_web`](super::TestDaemon::serve_web). Stops when dropped.
pub struct WebService {
    http: HttpClient,
    running: RunningService,
}

impl WebService {
    pub(crate) fn new(http: HttpClient, running: RunningService) -> WebService {
        WebService { http, running }
    }

    /// A client for the service's port on the daemon's gateway.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The service's port.
    pub fn port(&self) -> u16 {
        self.http.address().port()
    }

    /// Stops the service and waits for it.
    pub async fn stop(self) -> Result<(), TestingError> {
        self.running.stop().await
    }
}
