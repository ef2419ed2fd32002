//! A test harness for services: an in-process `lymphd` on the embedded
//! registry and event bus, listening on a real Unix socket in a temp dir, so a
//! service's own tests need nothing installed (lymph's `--with-lymph`).
//! Enabled by the `testing` feature.
//!
//! ```no_run
//! # use lymph::testing::TestDaemon;
//! # #[derive(Default)] struct Greeting;
//! # #[lymph::interface] impl Greeting { #[rpc] fn greet(&self, name: String) -> Result<String, lymph::Error> { Ok(name) } }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let daemon = TestDaemon::start().await?;
//! let _greeting = daemon.serve(daemon.service().interface(Greeting)).await?;
//! let client = daemon.client().await?;
//! let reply: String = client.proxy("Greeting").call("greet", serde_json::json!({"name": "Joe"})).await?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lymph_proto::v1;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Client, Service, ServiceError};

/// How long the harness waits for the daemon or a service to come up.
const STARTUP: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    #[error("cannot make a temp dir for the test daemon")]
    TempDir(#[source] std::io::Error),
    #[error("the test daemon did not start: {0}")]
    Daemon(String),
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("the test daemon's API failed: {0}")]
    Api(String),
}

/// Each test daemon serves `/metrics` on a port of its own (any free one)
/// unless the config names another: tests run side by side.
fn own_metrics_port(config: &mut lymphd::Config) {
    let default = lymphd::Config::default().metrics.listen;
    if config.metrics.listen == default {
        config.metrics.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
}

/// A daemon running inside the test process. Stops when dropped.
pub struct TestDaemon {
    socket: PathBuf,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), String>>>,
    // Last: the socket's directory outlives the daemon.
    _dir: tempfile::TempDir,
}

impl TestDaemon {
    /// Starts a daemon with the default (embedded) config.
    pub async fn start() -> Result<TestDaemon, TestingError> {
        TestDaemon::with_config(lymphd::Config::default()).await
    }

    /// Starts a daemon with the given config; its socket is always a fresh temp path.
    pub async fn with_config(mut config: lymphd::Config) -> Result<TestDaemon, TestingError> {
        own_metrics_port(&mut config);
        let dir = tempfile::Builder::new()
            .prefix("lymph-test")
            .tempdir()
            .map_err(TestingError::TempDir)?;
        let socket = dir.path().join("lymphd.sock");
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let path = socket.clone();
        let task = tokio::spawn(async move {
            lymphd::serve(config, Some(path), shutdown)
                .await
                .map_err(|e| format!("{e:#}"))
        });
        let daemon = TestDaemon {
            socket,
            stop,
            task: Some(task),
            _dir: dir,
        };
        daemon.wait_listening().await?;
        Ok(daemon)
    }

    async fn wait_listening(&self) -> Result<(), TestingError> {
        let deadline = Instant::now() + STARTUP;
        while tokio::net::UnixStream::connect(&self.socket).await.is_err() {
            if let Some(task) = &self.task
                && task.is_finished()
            {
                return Err(TestingError::Daemon(
                    "it exited before listening".to_owned(),
                ));
            }
            if Instant::now() > deadline {
                return Err(TestingError::Timeout(format!(
                    "the test daemon did not listen on {} within {STARTUP:?}",
                    self.socket.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// The daemon's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A `Service` builder already pointed at this daemon.
    pub fn service(&self) -> Service {
        Service::new().socket(&self.socket)
    }

    /// Runs a service in this process until the handle is stopped or dropped;
    /// returns once it is attached and ready.
    pub async fn serve(&self, service: Service) -> Result<RunningService, TestingError> {
        let before = self.ready_apps().await?;
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(service.run_until(shutdown));
        let deadline = Instant::now() + STARTUP;
        while self.ready_apps().await? <= before {
            if task.is_finished() {
                return match task.await {
                    Ok(Err(e)) => Err(TestingError::Service(e)),
                    _ => Err(TestingError::Daemon(
                        "the service stopped before it was ready".to_owned(),
                    )),
                };
            }
            if Instant::now() > deadline {
                return Err(TestingError::Timeout(format!(
                    "the service was not ready within {STARTUP:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(RunningService {
            stop,
            task: Some(task),
        })
    }

    /// A client attached to this daemon with no interfaces.
    pub async fn client(&self) -> Result<Client, TestingError> {
        Ok(Client::connect(&self.socket).await?)
    }

    /// How many instances of `service` are registered.
    pub async fn instances(&self, service: &str) -> Result<usize, TestingError> {
        let mut api = self.api().await?;
        let reply = api
            .discover(v1::DiscoverRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|s| TestingError::Api(s.message().to_owned()))?
            .into_inner();
        Ok(reply
            .services
            .iter()
            .find(|s| s.name == service)
            .map_or(0, |s| s.instances.len()))
    }

    async fn ready_apps(&self) -> Result<usize, TestingError> {
        let mut api = self.api().await?;
        let status = api
            .status(v1::StatusRequest {})
            .await
            .map_err(|s| TestingError::Api(s.message().to_owned()))?
            .into_inner();
        Ok(status.apps.iter().filter(|a| a.ready).count())
    }

    async fn api(
        &self,
    ) -> Result<v1::lymph_client::LymphClient<tonic::transport::Channel>, TestingError> {
        lymph_proto::connect(&self.socket)
            .await
            .map_err(|e| TestingError::Api(e.to_string()))
    }

    /// Stops the daemon and starts a new one on the same socket, as a daemon
    /// restart does: attached services must find their way back by themselves.
    pub async fn restart(&mut self) -> Result<(), TestingError> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.stop = CancellationToken::new();
        let shutdown = self.stop.clone().cancelled_owned();
        let path = self.socket.clone();
        self.task = Some(tokio::spawn(async move {
            let mut config = lymphd::Config::default();
            own_metrics_port(&mut config);
            lymphd::serve(config, Some(path), shutdown)
                .await
                .map_err(|e| format!("{e:#}"))
        }));
        self.wait_listening().await
    }

    /// Stops the daemon (draining its apps) and waits for it.
    pub async fn stop(mut self) -> Result<(), TestingError> {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(TestingError::Daemon(e)),
                Err(e) => Err(TestingError::Daemon(e.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A service running inside the test process. Stops when dropped.
pub struct RunningService {
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), ServiceError>>>,
}

impl RunningService {
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
