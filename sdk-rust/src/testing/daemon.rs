//! The test daemon itself: starts `lymphd::serve` in this process on a temp
//! socket, runs services against it and waits until the daemon says they are
//! ready and registered (also after a restart).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use lymph_proto::v1;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events::{EventRecorder, Recording};
use super::http::{HttpClient, free_port};
use super::running::{RunningService, WebService};
use super::stub::StubBuilder;
use super::{TestingError, WAIT, config};
use crate::{Client, Service};

/// How often the harness polls the daemon while it waits.
const POLL: Duration = Duration::from_millis(10);

/// Each test daemon serves `/metrics` on a port of its own (any free one)
/// unless the config names another: tests run side by side.
fn own_metrics_port(config: &mut lymphd::Config) {
    let default = lymphd::Config::default().metrics.listen;
    if config.metrics.listen == default {
        config.metrics.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
}

/// A daemon running inside the test process. Stops when dropped.
///
/// ```no_run
/// # use lymph::testing::TestDaemon;
/// # async fn demo() -> Result<(), lymph::testing::TestingError> {
/// let daemon = TestDaemon::builder()
///     .config_yaml("rpc:\n  default_timeout: 2s\n")
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
pub struct TestDaemon {
    socket: PathBuf,
    config: lymphd::Config,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), String>>>,
    /// Recorders to subscribe again after a restart.
    recordings: Mutex<Vec<Weak<Recording>>>,
    // Last: the socket's directory outlives the daemon.
    _dir: tempfile::TempDir,
}

/// The config of a [`TestDaemon`] to start; made by [`TestDaemon::builder`].
/// A bad config is reported by [`start`](TestDaemonBuilder::start).
pub struct TestDaemonBuilder {
    config: Result<lymphd::Config, TestingError>,
}

impl TestDaemonBuilder {
    /// The daemon's config as YAML (`conf/lymphd.yml`'s shape).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), lymph::testing::TestingError> {
    /// let daemon = lymph::testing::TestDaemon::builder()
    ///     .config_yaml("apps:\n  default_concurrency: 1\n")
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn config_yaml(mut self, yaml: &str) -> TestDaemonBuilder {
        self.config = config::daemon_config_yaml(yaml);
        self
    }

    /// The daemon's config as a value of the YAML's shape.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), lymph::testing::TestingError> {
    /// let daemon = lymph::testing::TestDaemon::builder()
    ///     .config(serde_json::json!({"rpc": {"default_timeout": "2s"}}))
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn config(mut self, value: impl Serialize) -> TestDaemonBuilder {
        self.config = config::daemon_config_value(value);
        self
    }

    /// The daemon's config as a typed `lymphd::Config`.
    pub fn daemon_config(mut self, config: lymphd::Config) -> TestDaemonBuilder {
        self.config = config::validated(config);
        self
    }

    /// Starts the daemon; returns once it listens. Its socket is always a
    /// fresh temp path, whatever the config says.
    pub async fn start(self) -> Result<TestDaemon, TestingError> {
        TestDaemon::with_config(self.config?).await
    }
}

impl TestDaemon {
    /// A daemon to configure before it starts.
    pub fn builder() -> TestDaemonBuilder {
        TestDaemonBuilder {
            config: Ok(lymphd::Config::default()),
        }
    }

    /// Starts a daemon with the default (embedded) config.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), lymph::testing::TestingError> {
    /// let daemon = lymph::testing::TestDaemon::start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start() -> Result<TestDaemon, TestingError> {
        TestDaemon::with_config(lymphd::Config::default()).await
    }

    /// Starts a daemon with the given config; its socket is always a fresh temp path.
    pub async fn with_config(mut config: lymphd::Config) -> Result<TestDaemon, TestingError> {
        super::init_logging();
        own_metrics_port(&mut config);
        let dir = tempfile::Builder::new()
            .prefix("lymph-test")
            .tempdir()
            .map_err(TestingError::TempDir)?;
        let socket = dir.path().join("lymphd.sock");
        let stop = CancellationToken::new();
        let task = spawn_daemon(config.clone(), socket.clone(), &stop);
        let daemon = TestDaemon {
            socket,
            config,
            stop,
            task: Some(task),
            recordings: Mutex::new(Vec::new()),
            _dir: dir,
        };
        daemon.wait_listening().await?;
        Ok(daemon)
    }

    async fn wait_listening(&self) -> Result<(), TestingError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::UnixStream::connect(&self.socket).await.is_err() {
            if let Some(task) = &self.task
                && task.is_finished()
            {
                return Err(TestingError::Daemon(
                    "it exited before listening".to_owned(),
                ));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(TestingError::Timeout(format!(
                    "the test daemon did not listen on {} within {WAIT:?}",
                    self.socket.display()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// The daemon's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The config the daemon runs with.
    pub fn config(&self) -> &lymphd::Config {
        &self.config
    }

    /// A `Service` builder already pointed at this daemon.
    pub fn service(&self) -> Service {
        Service::new().socket(&self.socket)
    }

    /// Runs a service in this process until the handle is stopped or dropped;
    /// returns once the daemon has it ready and registered, so calls to its
    /// interfaces find it.
    ///
    /// ```no_run
    /// # #[derive(Default)] struct Greeting;
    /// # #[lymph::interface] impl Greeting { #[rpc] fn greet(&self, name: String) -> Result<String, lymph::Error> { Ok(name) } }
    /// # async fn demo(daemon: lymph::testing::TestDaemon) -> Result<(), lymph::testing::TestingError> {
    /// let greeting = daemon.serve(daemon.service().interface(Greeting)).await?;
    /// greeting.stop().await?;
    /// # Ok(()) }
    /// ```
    pub async fn serve(&self, service: Service) -> Result<RunningService, TestingError> {
        let before: HashSet<String> = self
            .status()
            .await?
            .apps
            .into_iter()
            .map(|a| a.identity)
            .collect();
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(service.run_until(shutdown));
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let settled = self.settled_apps().await?;
            if settled.iter().any(|a| !before.contains(&a.identity)) {
                break;
            }
            if task.is_finished() {
                return match task.await {
                    Ok(Err(e)) => Err(TestingError::Service(e)),
                    _ => Err(TestingError::Daemon(
                        "the service stopped before it was ready".to_owned(),
                    )),
                };
            }
            if tokio::time::Instant::now() > deadline {
                return Err(TestingError::Timeout(format!(
                    "the service was not ready and registered within {WAIT:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(RunningService::new(stop, task))
    }

    /// Runs a web service (one with `#[route]`s) on a free port of the
    /// daemon's HTTP gateway; returns once the port answers.
    ///
    /// ```no_run
    /// # #[derive(Default)] struct Web;
    /// # #[lymph::interface] impl Web { #[route("/hi")] async fn hi(&self, _r: lymph::http::Request) -> Result<lymph::http::Response, lymph::Error> { Ok(lymph::http::Response::text("hi")) } }
    /// # async fn demo(daemon: lymph::testing::TestDaemon) -> Result<(), lymph::testing::TestingError> {
    /// let web = daemon.serve_web(daemon.service().interface(Web)).await?;
    /// let response = web.http().get("/hi").await?;
    /// assert_eq!((response.status, response.text().as_str()), (200, "hi"));
    /// # Ok(()) }
    /// ```
    pub async fn serve_web(&self, service: Service) -> Result<WebService, TestingError> {
        let port = free_port()?;
        let running = self.serve(service.http_port(port)).await?;
        Ok(WebService::new(self.http(port), running))
    }

    /// A client for `port` of the daemon's HTTP gateway (a web service's
    /// `http_port`).
    pub fn http(&self, port: u16) -> HttpClient {
        HttpClient::on(&self.config.web.ip, port)
    }

    /// A stub service named `name`, its methods answered by closures; see [`super::Stub`].
    ///
    /// ```no_run
    /// # async fn demo(daemon: lymph::testing::TestDaemon) -> Result<(), lymph::testing::TestingError> {
    /// let inventory = daemon
    ///     .stub("Inventory")
    ///     .method("reserve", |_args| Ok(true))
    ///     .serve()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn stub(&self, name: &str) -> StubBuilder<'_> {
        StubBuilder::new(self, name)
    }

    /// Records every event of type `event_type` emitted from now on (and
    /// after restarts); see [`EventRecorder`].
    ///
    /// ```no_run
    /// # async fn demo(daemon: lymph::testing::TestDaemon) -> Result<(), lymph::testing::TestingError> {
    /// let greeted = daemon.record("greeted").await?;
    /// // ... something emits ...
    /// let events = greeted.wait_for(1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn record(&self, event_type: &str) -> Result<EventRecorder, TestingError> {
        let recording = Recording::new(event_type);
        recording.subscribe(&self.socket).await?;
        let mut recordings = self.recordings.lock().unwrap_or_else(|p| p.into_inner());
        recordings.retain(|r| r.strong_count() > 0);
        recordings.push(Arc::downgrade(&recording));
        Ok(EventRecorder::new(recording))
    }

    /// A client attached to this daemon with no interfaces.
    pub async fn client(&self) -> Result<Client, TestingError> {
        Ok(Client::connect(&self.socket).await?)
    }

    /// How many instances of `service` are registered.
    pub async fn instances(&self, service: &str) -> Result<usize, TestingError> {
        Ok(self
            .discover(service)
            .await?
            .get(service)
            .map_or(0, HashSet::len))
    }

    /// The identities of the registered instances per service name, of
    /// `service` or (when empty) of every service: the daemon's `Discover`.
    ///
    /// ```no_run
    /// # async fn demo(daemon: lymph::testing::TestDaemon) -> Result<(), lymph::testing::TestingError> {
    /// let services = daemon.discover("").await?;
    /// assert!(services.contains_key("Greeting"));
    /// # Ok(()) }
    /// ```
    pub async fn discover(
        &self,
        service: &str,
    ) -> Result<BTreeMap<String, HashSet<String>>, TestingError> {
        let reply = self
            .api()
            .await?
            .discover(v1::DiscoverRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|s| TestingError::Api(s.message().to_owned()))?
            .into_inner();
        Ok(reply
            .services
            .into_iter()
            .map(|s| {
                let identities = s.instances.into_iter().map(|i| i.identity).collect();
                (s.name, identities)
            })
            .collect())
    }

    /// The daemon's `Status`: its attached apps (ready or not, requests
    /// handled, subscriptions), counters and backends.
    ///
    /// ```no_run
    /// # async fn demo(daemon: lymph::testing::TestDaemon) -> Result<(), lymph::testing::TestingError> {
    /// let status = daemon.status().await?;
    /// let handled: u64 = status.apps.iter().map(|app| app.handled).sum();
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<v1::StatusReply, TestingError> {
        Ok(self
            .api()
            .await?
            .status(v1::StatusRequest {})
            .await
            .map_err(|s| TestingError::Api(s.message().to_owned()))?
            .into_inner())
    }

    /// The apps that are ready with every interface registered (the daemon
    /// registers a moment after Ready).
    async fn settled_apps(&self) -> Result<Vec<v1::AppStatus>, TestingError> {
        let apps = self.status().await?.apps;
        let registered = self.discover("").await?;
        Ok(apps
            .into_iter()
            .filter(|app| {
                app.ready
                    && app.interfaces.iter().all(|name| {
                        registered
                            .get(name)
                            .is_some_and(|ids| ids.contains(&app.identity))
                    })
            })
            .collect())
    }

    async fn api(
        &self,
    ) -> Result<v1::lymph_client::LymphClient<tonic::transport::Channel>, TestingError> {
        lymph_proto::connect(&self.socket)
            .await
            .map_err(|e| TestingError::Api(e.to_string()))
    }

    /// Stops the daemon and starts a new one on the same socket with the same
    /// config, as a daemon restart does: attached services find their way
    /// back by themselves. Returns once every app that was ready before is
    /// ready and registered again (and recorders subscribed again), so the
    /// next call finds its service.
    ///
    /// ```no_run
    /// # async fn demo(mut daemon: lymph::testing::TestDaemon) -> Result<(), lymph::testing::TestingError> {
    /// daemon.restart().await?;
    /// assert_eq!(daemon.instances("Greeting").await?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn restart(&mut self) -> Result<(), TestingError> {
        let mut expected = app_counts(&self.settled_apps().await?);
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.stop = CancellationToken::new();
        self.task = Some(spawn_daemon(
            self.config.clone(),
            self.socket.clone(),
            &self.stop,
        ));
        self.wait_listening().await?;
        let recordings: Vec<Arc<Recording>> = {
            let mut recordings = self.recordings.lock().unwrap_or_else(|p| p.into_inner());
            recordings.retain(|r| r.strong_count() > 0);
            recordings.iter().filter_map(Weak::upgrade).collect()
        };
        for recording in recordings {
            recording.subscribe(&self.socket).await?;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = app_counts(&self.settled_apps().await?);
            expected.retain(|app, count| now.get(app).copied().unwrap_or(0) < *count);
            if expected.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let missing: Vec<String> = expected.keys().map(|(name, _)| name.clone()).collect();
                return Err(TestingError::Timeout(format!(
                    "after the restart, these apps did not come back within {WAIT:?}: {}",
                    missing.join(", ")
                )));
            }
            tokio::time::sleep(POLL).await;
        }
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

/// How many apps of each (name, interfaces) there are.
fn app_counts(apps: &[v1::AppStatus]) -> BTreeMap<(String, Vec<String>), usize> {
    let mut counts = BTreeMap::new();
    for app in apps {
        let mut interfaces = app.interfaces.clone();
        interfaces.sort();
        *counts
            .entry((app.app_name.clone(), interfaces))
            .or_insert(0) += 1;
    }
    counts
}

/// Runs `config` (its metrics port already made the test's own) on `socket`.
fn spawn_daemon(
    config: lymphd::Config,
    socket: PathBuf,
    stop: &CancellationToken,
) -> JoinHandle<Result<(), String>> {
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        lymphd::serve(config, Some(socket), shutdown)
            .await
            .map_err(|e| format!("{e:#}"))
    })
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
