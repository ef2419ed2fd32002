//! The daemon's one typed config: YAML file, then environment overrides, then
//! validation. Owns the defaults (and `conf/lymphd.yml` lists them); knows
//! nothing about how the parts it configures are built.

mod access;
mod counts;
mod env;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use access::ServiceAccess;
pub use env::apply_env;

/// Everything `lymphd` can be told. Every field has a default, so an empty file
/// (or no file) is a valid config: a fully embedded daemon.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The Unix socket apps and tools attach to; unset means the default rule
    /// (`$XDG_RUNTIME_DIR/lymph/lymphd.sock`, else `/tmp/lymph-<uid>/lymphd.sock`).
    pub socket: Option<PathBuf>,
    pub registry: RegistryConfig,
    pub events: EventsConfig,
    pub rpc: RpcConfig,
    pub apps: AppsConfig,
    pub web: WebConfig,
    pub runtime: RuntimeConfig,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub tracing: TracingConfig,
    /// Who may serve a service name: a name listed here only by the uids and
    /// groups it names; any other name by anyone allowed to attach.
    pub services: BTreeMap<String, ServiceAccess>,
}

/// Which registry backend holds the service instances.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum RegistryConfig {
    /// Inside the daemon: this host only.
    #[default]
    Embedded,
    /// ZooKeeper in lymph's layout: the daemon joins a fleet, and RPC between
    /// hosts travels over ZeroMQ (see the `rpc` settings).
    Zookeeper(ZookeeperSettings),
}

/// Where the fleet's ZooKeeper is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZookeeperSettings {
    /// `host:port[,host:port...][/chroot]`; without a chroot lymph's `/lymph` is used.
    pub hosts: String,
    /// The session timeout: how long a crashed daemon's instances linger.
    #[serde(default = "default_session_timeout", with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How long one connection attempt may take.
    #[serde(default = "default_zk_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

fn default_session_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_zk_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Which event bus carries events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum EventsConfig {
    /// Inside the daemon: this host only, in memory, bounded.
    Embedded {
        /// Events held per queue (per subscribed service, or per broadcast
        /// instance) before an emit fails with an overload error.
        #[serde(default = "default_queue_limit")]
        queue_limit: usize,
    },
    /// RabbitMQ in lymph's topology: events cross hosts.
    Amqp(AmqpSettings),
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig::Embedded {
            queue_limit: default_queue_limit(),
        }
    }
}

/// Where the fleet's RabbitMQ is and how events are kept. Credentials never
/// need to be in this file: `LYMPHD_AMQP_USERNAME`/`LYMPHD_AMQP_PASSWORD`, or
/// `credentials_file`, or the URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSettings {
    /// `amqp://host:port/vhost`.
    #[serde(default = "default_amqp_url")]
    pub url: String,
    /// `lymph`: lymph's own queue flags, so Python lymph services share the
    /// queues (a broker restart loses what was queued, as with lymph).
    /// `durable`: durable queues and persistent messages, for fleets of
    /// lymphd only; a broker restart loses nothing.
    #[serde(default)]
    pub mode: AmqpModeSetting,
    /// lymph's topic exchange (`<exchange>_waiting` and `<exchange>_retry` go with it).
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// A file holding `username:password` on its first line.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Emits awaiting the broker's confirm at once; more wait (backpressure).
    #[serde(default = "default_confirm_window")]
    pub confirm_window: usize,
    /// One connection attempt; the daemon retries with backoff.
    #[serde(default = "default_amqp_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AmqpModeSetting {
    #[default]
    Lymph,
    Durable,
}

pub(crate) fn default_amqp_url() -> String {
    "amqp://127.0.0.1:5672/%2f".to_owned()
}

fn default_exchange() -> String {
    "lymph".to_owned()
}

fn default_confirm_window() -> usize {
    256
}

fn default_amqp_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

impl AmqpSettings {
    pub(crate) fn from_url(url: String) -> Self {
        AmqpSettings {
            url,
            mode: AmqpModeSetting::default(),
            exchange: default_exchange(),
            credentials_file: None,
            confirm_window: default_confirm_window(),
            connect_timeout: default_amqp_connect_timeout(),
        }
    }
}

fn default_queue_limit() -> usize {
    10_000
}

/// The most worker threads `runtime.workers` may ask for: far past any
/// machine's cores, short of a number that exhausts memory starting them.
pub const MAX_WORKERS: usize = 1024;

/// The longest any duration setting may be: far past any sensible timeout,
/// short of what overflows a clock (a deadline is now plus a setting).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The largest `rpc.max_body_bytes`: a body travels to and from apps in one
/// gRPC message of at most `MAX_GRPC_MESSAGE`, with room left for the rest of it.
pub const MAX_BODY_CEILING: usize = lymph_proto::connect::MAX_GRPC_MESSAGE - 1024 * 1024;

/// Calls: deadlines and sizes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Deadline of a call that names none (lymph's proxies wait 3 s).
    #[serde(with = "humantime_serde")]
    pub default_timeout: Duration,
    /// Longest deadline a caller may ask for.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// Largest request or reply body, in bytes.
    pub max_body_bytes: usize,
    /// Fleet mode: the address the ZeroMQ endpoint binds and advertises.
    pub ip: String,
    /// Fleet mode: the endpoint's port; 0 picks a free one in lymph's range.
    pub port: u16,
    /// Fleet mode: how long connecting to another host may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Fleet mode: heartbeats (`lymph.ping`) to every peer this often, as lymph does.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Fleet mode: a peer silent this long is unresponsive and not chosen.
    #[serde(with = "humantime_serde")]
    pub unresponsive_after: Duration,
    /// Fleet mode: largest ZeroMQ frame accepted.
    pub max_frame_bytes: usize,
    /// Fleet mode: largest whole ZeroMQ message accepted.
    pub max_message_bytes: usize,
    /// Fleet mode: requests from other hosts queued before new ones are refused.
    pub incoming_queue: usize,
    /// Fleet mode: bytes queued for one peer; past it, replies to that peer are
    /// dropped (and counted) and calls to it fail as overloaded.
    pub peer_queue_bytes: usize,
    /// Fleet mode: a peer that reads nothing of what is queued for it this long
    /// is disconnected.
    #[serde(with = "humantime_serde")]
    pub peer_write_timeout: Duration,
    /// Fleet mode: an inbound connection that sends nothing this long is closed
    /// (lymph peers heartbeat every second).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Fleet mode: inbound connections on the RPC port at once; past it new
    /// ones are closed at once.
    pub max_connections: usize,
    /// Fleet mode: networks (CIDR, or single addresses) whose connections the
    /// RPC port and the log ports accept; empty means any.
    #[serde(deserialize_with = "deserialize_networks")]
    pub allowed_peers: Vec<ipnet::IpNet>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            default_timeout: Duration::from_secs(3),
            max_timeout: Duration::from_secs(300),
            max_body_bytes: 4 * 1024 * 1024,
            ip: "127.0.0.1".to_owned(),
            port: 0,
            connect_timeout: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(1),
            unresponsive_after: Duration::from_secs(3),
            max_frame_bytes: 5 * 1024 * 1024,
            max_message_bytes: 6 * 1024 * 1024,
            incoming_queue: 4096,
            peer_queue_bytes: 8 * 1024 * 1024,
            peer_write_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            allowed_peers: Vec::new(),
        }
    }
}

/// One network: `10.0.0.0/8`, `fd00::/8`, or a single address (`10.1.2.3`).
pub(crate) fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("{text:?} is neither a network (10.0.0.0/8) nor an address"))
}

fn deserialize_networks<'de, D>(deserializer: D) -> Result<Vec<ipnet::IpNet>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let items = Vec::<String>::deserialize(deserializer)?;
    items
        .iter()
        .map(|item| parse_network(item.trim()).map_err(serde::de::Error::custom))
        .collect()
}

/// Attached apps: limits that protect the daemon and the apps.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppsConfig {
    /// Requests one app handles at once when it does not say.
    pub default_concurrency: u32,
    /// The most an app may ask for.
    pub max_concurrency: u32,
    /// Calls and emits one app may have in flight through the daemon.
    pub max_outgoing: u32,
    /// Messages queued towards one app before the daemon treats it as stuck.
    pub outbox_capacity: usize,
    /// Time a new connection on the local socket has to get as far as its
    /// app's `Hello`: the HTTP/2 preface, the `Attach` stream and the `Hello`.
    #[serde(with = "humantime_serde")]
    pub hello_timeout: Duration,
    /// Connections open at once on the local socket (past it new ones are
    /// closed), and `Attach` streams in total (past it `RESOURCE_EXHAUSTED`).
    pub max_connections: usize,
    /// Who may attach and make calls, by the uid of the connecting process
    /// (from the kernel, SO_PEERCRED) or its primary or a supplementary
    /// group. Both empty: anyone who can open the socket. Nobody implicit,
    /// root included.
    pub allowed_uids: Vec<u32>,
    pub allowed_gids: Vec<u32>,
}

impl Default for AppsConfig {
    fn default() -> Self {
        AppsConfig {
            default_concurrency: 64,
            max_concurrency: 10_000,
            max_outgoing: 10_000,
            outbox_capacity: 4_096,
            hello_timeout: Duration::from_secs(10),
            max_connections: 1024,
            allowed_uids: Vec::new(),
            allowed_gids: Vec::new(),
        }
    }
}

/// The HTTP gateway: where the ports of apps' web services are opened.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// The address the gateway listens on, one port per web service.
    pub ip: String,
    /// How long an app may take to answer an HTTP request (then 504).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Connections open at once per gateway port; past it a new one is
    /// answered 503 and closed.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time a client has to send a request's whole body (then 408 and close).
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            ip: "127.0.0.1".to_owned(),
            timeout: Duration::from_secs(30),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// The async runtime and the process's resources.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// File descriptors kept back from the public ports (RPC, log, HTTP): the
    /// local socket, ZooKeeper, RabbitMQ and outgoing connections use these
    /// while the ports are flooded. The ports together accept at most
    /// RLIMIT_NOFILE minus this.
    pub fd_reserve: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: 0,
            fd_reserve: 256,
        }
    }
}

/// Graceful stop on SIGTERM/SIGINT.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight work may take to finish before the daemon exits anyway.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_period: Duration::from_secs(10),
        }
    }
}

/// The Prometheus endpoint (`docs/metrics.md`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served, `ip:port` (port 0: any free port,
    /// shown by `lymphctl status`), or `off`: no endpoint, and only the
    /// counts behind `lymph.get_metrics` and `Status` are kept.
    #[serde(deserialize_with = "metrics_listen")]
    pub listen: Option<std::net::SocketAddr>,
    /// Scrapers connected at once; past it a connection is closed at once.
    pub max_connections: usize,
    /// Time a scraper has to send its request, and to take the answer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: Some(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                DEFAULT_METRICS_PORT,
            ))),
            max_connections: 16,
            timeout: Duration::from_secs(10),
        }
    }
}

/// OpenTelemetry spans of every hop, exported over OTLP/gRPC.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// The collector's OTLP/gRPC address (`http://127.0.0.1:4317`), or
    /// `off` (the default): no spans.
    #[serde(deserialize_with = "otlp_endpoint")]
    pub otlp_endpoint: Option<String>,
    /// The share of traces recorded, 0 to 1, decided by trace id: every hop
    /// of a trace, on every daemon, decides alike.
    pub sample_ratio: f64,
    /// Finished spans waiting for export, at most; past it a span is
    /// dropped (and counted), never waited for.
    pub queue: usize,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: None,
            sample_ratio: 1.0,
            queue: 4096,
        }
    }
}

/// Reads `tracing.otlp_endpoint`: `off`, or an `http://` or `https://` URL.
pub fn parse_otlp_endpoint(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let valid = (text.starts_with("http://") || text.starts_with("https://"))
        && text.parse::<hyper::Uri>().is_ok();
    if !valid {
        return Err(format!(
            "tracing.otlp_endpoint {text:?} is neither `off` nor a URL like http://127.0.0.1:4317"
        ));
    }
    Ok(Some(text.to_owned()))
}

fn otlp_endpoint<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    parse_otlp_endpoint(&text).map_err(serde::de::Error::custom)
}

/// The default port of `/metrics` (the OpenTelemetry Prometheus exporter's).
pub const DEFAULT_METRICS_PORT: u16 = 9464;

/// Reads `metrics.listen`: `off`, or `ip:port`.
pub fn parse_metrics_listen(text: &str) -> Result<Option<std::net::SocketAddr>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        format!("metrics.listen {text:?} is neither `off` nor an address like 127.0.0.1:9464")
    })
}

fn metrics_listen<'de, D>(deserializer: D) -> Result<Option<std::net::SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    parse_metrics_listen(&text).map_err(serde::de::Error::custom)
}

/// The daemon's own log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `lymphd=debug,info`, ...
    pub level: String,
    pub format: LogFormat,
    /// Publish the daemon's and its apps' log records on ZeroMQ PUB ports
    /// (one per source, on `rpc.ip`, registered as `log_endpoint`) for
    /// `lymphctl tail` and lymph's `tail`.
    pub publish: bool,
    /// Subscribers at once per log port; past it new ones are closed.
    pub max_subscribers: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
            publish: true,
            max_subscribers: 256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse into the config; `key` is the key path the
    /// parser was at (`rpc.default_timeout`), when it was in one.
    #[error("invalid config file {}: {}{message}", .path.display(), key_prefix(.key))]
    Parse {
        path: PathBuf,
        key: Option<String>,
        message: String,
    },
    #[error("invalid environment variable {name}={value:?}: {message}")]
    Env {
        name: &'static str,
        value: String,
        message: String,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
    /// A value that parsed but is refused, named with where the config came
    /// from: the file, and the `LYMPHD_*` variables that overrode it.
    #[error("invalid config {origin}: {message}")]
    InvalidFrom { origin: String, message: String },
}

fn key_prefix(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default()
}

/// Where a config came from, as `invalid config ...` says it: `file X`,
/// `(file X, environment LYMPHD_A)`, `(environment LYMPHD_A)`.
fn origin(path: Option<&Path>, env: &[String]) -> Option<String> {
    match (path, env) {
        (None, []) => None,
        (Some(path), []) => Some(format!("file {}", path.display())),
        (Some(path), env) => Some(format!(
            "(file {}, environment {})",
            path.display(),
            env.join(", ")
        )),
        (None, env) => Some(format!("(environment {})", env.join(", "))),
    }
}

/// A parse error as one line (`invalid value ... at line 2, column 3`):
/// without the source snippet the parser appends, which says it all again.
fn parse_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

impl Config {
    /// Parses YAML text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let mut key = None;
        let parsed = serde_saphyr::with_deserializer_from_str(text, |deserializer| {
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let path = e.path().to_string();
                key = Some(path).filter(|p| p != ".");
                e.into_inner()
            })
        });
        parsed.map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            key,
            message: parse_message(&e),
        })
    }

    /// Reads the file (if given), applies `LYMPHD_*` environment overrides, validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Config::from_yaml(&text, path)?
            }
            None => Config::default(),
        };
        let overrides = std::cell::RefCell::new(Vec::new());
        apply_env(&mut config, |name| {
            let value = std::env::var(name).ok();
            if value.is_some() {
                overrides.borrow_mut().push(name.to_owned());
            }
            value
        })?;
        match config.validate() {
            Err(ConfigError::Invalid(message)) => match origin(path, &overrides.borrow()) {
                Some(origin) => Err(ConfigError::InvalidFrom { origin, message }),
                None => Err(ConfigError::Invalid(message)),
            },
            other => other.map(|()| config),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        counts::check(self)?;
        for (key, value) in self.durations() {
            if value > MAX_DURATION {
                return Err(ConfigError::Invalid(format!(
                    "{key} {} is out of range: at most 365 days",
                    humantime::format_duration(value)
                )));
            }
        }
        if self.rpc.default_timeout.is_zero() {
            return invalid("rpc.default_timeout must be above zero");
        }
        if self.rpc.default_timeout > self.rpc.max_timeout {
            return invalid("rpc.default_timeout must not exceed rpc.max_timeout");
        }
        if self.rpc.max_body_bytes == 0 {
            return invalid("rpc.max_body_bytes must be above zero");
        }
        if !(0.0..=1.0).contains(&self.tracing.sample_ratio) {
            return invalid("tracing.sample_ratio must be between 0 and 1");
        }
        if self.runtime.workers > MAX_WORKERS {
            return Err(ConfigError::Invalid(format!(
                "runtime.workers {} is out of range: 0 (one per core) or 1 to {MAX_WORKERS}",
                self.runtime.workers
            )));
        }
        for (key, value) in [
            ("rpc.max_timeout", self.rpc.max_timeout),
            ("rpc.connect_timeout", self.rpc.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid(format!("{key} must be above zero")));
            }
        }
        if self.rpc.incoming_queue == 0 {
            return invalid("rpc.incoming_queue must be above zero");
        }
        if self.rpc.max_body_bytes > MAX_BODY_CEILING {
            return Err(ConfigError::Invalid(format!(
                "rpc.max_body_bytes {} is above {MAX_BODY_CEILING}: a body must fit in one \
                 message on an app's stream (64 MiB, less room for the message around it)",
                self.rpc.max_body_bytes
            )));
        }
        if self.apps.default_concurrency == 0 || self.apps.max_concurrency == 0 {
            return invalid("apps.default_concurrency and apps.max_concurrency must be above zero");
        }
        if self.apps.default_concurrency > self.apps.max_concurrency {
            return invalid("apps.default_concurrency must not exceed apps.max_concurrency");
        }
        if self.apps.outbox_capacity == 0 || self.apps.max_outgoing == 0 {
            return invalid("apps.outbox_capacity and apps.max_outgoing must be above zero");
        }
        if self.web.ip.parse::<std::net::IpAddr>().is_err() {
            return invalid(&format!("web.ip {:?} is not an IP address", self.web.ip));
        }
        if self.web.timeout.is_zero()
            || self.web.header_timeout.is_zero()
            || self.web.body_timeout.is_zero()
        {
            return invalid(
                "web.timeout, web.header_timeout and web.body_timeout must be above zero",
            );
        }
        if self.web.max_connections == 0 {
            return invalid("web.max_connections must be above zero");
        }
        if self.apps.max_connections == 0 || self.apps.hello_timeout.is_zero() {
            return invalid("apps.max_connections and apps.hello_timeout must be above zero");
        }
        if self.rpc.max_connections == 0 || self.rpc.peer_queue_bytes == 0 {
            return invalid("rpc.max_connections and rpc.peer_queue_bytes must be above zero");
        }
        if self.rpc.peer_write_timeout.is_zero() || self.rpc.idle_timeout.is_zero() {
            return invalid("rpc.peer_write_timeout and rpc.idle_timeout must be above zero");
        }
        if self.rpc.idle_timeout <= self.rpc.heartbeat_interval {
            return invalid(
                "rpc.idle_timeout must be longer than rpc.heartbeat_interval (peers heartbeat)",
            );
        }
        if self.log.max_subscribers == 0 {
            return invalid("log.max_subscribers must be above zero");
        }
        if self.rpc.ip.parse::<std::net::IpAddr>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "rpc.ip {:?} is not an IP address",
                self.rpc.ip
            )));
        }
        if self.rpc.heartbeat_interval.is_zero()
            || self.rpc.unresponsive_after <= self.rpc.heartbeat_interval
        {
            return invalid("rpc.unresponsive_after must be longer than rpc.heartbeat_interval");
        }
        if self.rpc.max_message_bytes < self.rpc.max_frame_bytes
            || self.rpc.max_frame_bytes <= self.rpc.max_body_bytes
        {
            return invalid(
                "rpc limits must grow: max_body_bytes < max_frame_bytes <= max_message_bytes",
            );
        }
        if let RegistryConfig::Zookeeper(zk) = &self.registry
            && zk.hosts.trim().is_empty()
        {
            return invalid("registry.hosts is empty: name the ZooKeeper servers, host:port");
        }
        if let RegistryConfig::Zookeeper(zk) = &self.registry
            && (zk.session_timeout.is_zero() || zk.connect_timeout.is_zero())
        {
            return invalid(
                "registry.session_timeout and registry.connect_timeout must be above zero",
            );
        }
        if let EventsConfig::Amqp(amqp) = &self.events
            && amqp.connect_timeout.is_zero()
        {
            return invalid("events.connect_timeout must be above zero");
        }
        match &self.events {
            EventsConfig::Embedded { queue_limit } if *queue_limit == 0 => {
                return invalid("events.queue_limit must be above zero");
            }
            EventsConfig::Amqp(amqp) if !amqp.url.starts_with("amqp://") => {
                return Err(ConfigError::Invalid(format!(
                    "events.url {:?} must start with amqp:// (AMQPS is not built in)",
                    amqp.url
                )));
            }
            EventsConfig::Amqp(amqp) if amqp.confirm_window == 0 || amqp.exchange.is_empty() => {
                return invalid("events.confirm_window and events.exchange must not be empty");
            }
            _ => {}
        }
        // ASCII only: tracing-subscriber's parser panics on a directive with
        // leading spaces and a multi-byte character (it slices the untrimmed
        // text at the trimmed text's offsets); our targets are ASCII.
        if !self.log.level.is_ascii()
            || tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "log.level {:?} is not a valid filter (try info, debug, or lymphd=debug,info)",
                self.log.level
            )));
        }
        access::validate(&self.services).map_err(ConfigError::Invalid)
    }

    /// Every duration setting with its key.
    pub fn durations(&self) -> Vec<(&'static str, Duration)> {
        let rpc = &self.rpc;
        let mut all = vec![
            ("rpc.default_timeout", rpc.default_timeout),
            ("rpc.max_timeout", rpc.max_timeout),
            ("rpc.connect_timeout", rpc.connect_timeout),
            ("rpc.heartbeat_interval", rpc.heartbeat_interval),
            ("rpc.unresponsive_after", rpc.unresponsive_after),
            ("rpc.peer_write_timeout", rpc.peer_write_timeout),
            ("rpc.idle_timeout", rpc.idle_timeout),
            ("apps.hello_timeout", self.apps.hello_timeout),
            ("web.timeout", self.web.timeout),
            ("web.header_timeout", self.web.header_timeout),
            ("web.body_timeout", self.web.body_timeout),
            ("shutdown.grace_period", self.shutdown.grace_period),
            ("metrics.timeout", self.metrics.timeout),
        ];
        if let RegistryConfig::Zookeeper(zk) = &self.registry {
            all.push(("registry.session_timeout", zk.session_timeout));
            all.push(("registry.connect_timeout", zk.connect_timeout));
        }
        if let EventsConfig::Amqp(amqp) = &self.events {
            all.push(("events.connect_timeout", amqp.connect_timeout));
        }
        all
    }

    /// A short name of the registry backend, for status and logs.
    pub fn registry_name(&self) -> &'static str {
        match self.registry {
            RegistryConfig::Embedded => "embedded",
            RegistryConfig::Zookeeper(_) => "zookeeper",
        }
    }

    /// A short name of the event backend, for status and logs.
    pub fn events_name(&self) -> &'static str {
        match &self.events {
            EventsConfig::Embedded { .. } => "embedded",
            EventsConfig::Amqp(amqp) => match amqp.mode {
                AmqpModeSetting::Lymph => "amqp (lymph-compatible)",
                AmqpModeSetting::Durable => "amqp (durable)",
            },
        }
    }
}

#[cfg(test)]
mod loader_props;
#[cfg(test)]
mod tests;
