//! `Service`: the program's builder and main loop. Reads `--config`/`--socket`,
//! applies each interface's config section, runs the link until SIGTERM or
//! SIGINT, then stops in order: goodbye, in-flight handlers, `on_stop`.

mod config;
mod error;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use lymph_proto::v1;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::FileConfig;
pub use error::{ServiceError, exit_code};

use crate::client::{COMMAND_QUEUE, Client, Command};
use crate::interface::Interface;
use crate::link::Link;

/// The command line every lymph service understands.
#[derive(Debug, Parser)]
#[command(about = "A lymph service: attaches to the local lymphd and serves its interfaces")]
struct Args {
    /// The service's config file (YAML, lymph's shape: `interfaces: {Name: {...}}`)
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// lymphd's socket; else $LYMPH_SOCKET, else the config's `socket:`, else the default
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// A service program: its interfaces, config and connection settings.
pub struct Service {
    app_name: String,
    config: Option<FileConfig>,
    socket: Option<PathBuf>,
    max_concurrency: Option<u32>,
    http_port: Option<u16>,
    interfaces: Vec<Box<dyn Interface>>,
    commands: (mpsc::Sender<Command>, mpsc::Receiver<Command>),
}

impl Default for Service {
    fn default() -> Service {
        Service::new()
    }
}

impl Service {
    /// A service with no config file, named after the program.
    pub fn new() -> Service {
        Service {
            app_name: program_name(),
            config: None,
            socket: None,
            max_concurrency: None,
            http_port: None,
            interfaces: Vec::new(),
            commands: mpsc::channel(COMMAND_QUEUE),
        }
    }

    /// Reads `--config FILE` and `--socket PATH` from the command line (exits
    /// with usage on `--help` or a bad flag, like any CLI) and the config file.
    pub fn from_args() -> Result<Service, ServiceError> {
        Service::from_args_from(std::env::args_os().collect::<Vec<_>>()).map_err(|e| match e {
            ServiceError::Args(clap) => clap.exit(),
            other => other,
        })
    }

    /// `from_args` over the given arguments (the first is the program name).
    pub fn from_args_from<I, T>(args: I) -> Result<Service, ServiceError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = Args::try_parse_from(args).map_err(ServiceError::Args)?;
        let mut service = Service::new();
        service.socket = args.socket;
        if let Some(path) = args.config {
            service = service.config_file(path)?;
        }
        Ok(service)
    }

    /// Reads the config file at `path`.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Result<Service, ServiceError> {
        self.config = Some(FileConfig::read(&path.into())?);
        Ok(self)
    }

    /// Uses this already parsed config.
    pub fn config(mut self, config: FileConfig) -> Service {
        self.config = Some(config);
        self
    }

    /// Attaches to the daemon at this socket (wins over every other source).
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Service {
        self.socket = Some(path.into());
        self
    }

    /// The name shown in the daemon's status; the program's name by default.
    pub fn app_name(mut self, name: impl Into<String>) -> Service {
        self.app_name = name.into();
        self
    }

    /// Requests handled at once (0: the daemon's default); wins over the config file.
    pub fn max_concurrency(mut self, limit: u32) -> Service {
        self.max_concurrency = Some(limit);
        self
    }

    /// The port of the app's web service, opened by the daemon for its
    /// `#[route]`s; wins over the config file's `http_port:`.
    pub fn http_port(mut self, port: u16) -> Service {
        self.http_port = Some(port);
        self
    }

    /// Adds an interface; may be called several times.
    pub fn interface(mut self, interface: impl Interface) -> Service {
        self.interfaces.push(Box::new(interface));
        self
    }

    /// A handle for calls and emits outside handlers. Calls made before `run`
    /// attached fail with `Unavailable`.
    pub fn client(&self) -> Client {
        Client::new(self.commands.0.clone())
    }

    /// Serves until SIGTERM or SIGINT, then drains and returns.
    pub async fn run(self) -> Result<(), ServiceError> {
        self.run_until(crate::signals::terminated()).await
    }

    /// Serves until `shutdown` completes, then drains and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), ServiceError> {
        crate::logging::init();
        let Service {
            app_name,
            config,
            socket,
            max_concurrency,
            http_port,
            interfaces,
            commands,
        } = self;
        let config = config.unwrap_or_default();
        let interfaces = configure(interfaces, &config)?;
        let (socket, source) = lymph_proto::resolve_socket(socket, config.socket.clone());
        info!(app = %app_name, socket = %socket.display(), from = %source, "starting");
        let http_port = http_port.or(config.http_port).unwrap_or(0);
        let hello = v1::Hello {
            app_name,
            interfaces: interfaces
                .iter()
                .map(|i| served_spec(i.spec().to_proto(), http_port))
                .collect(),
            max_concurrency: max_concurrency.or(config.max_concurrency).unwrap_or(0),
            http_port: u32::from(http_port),
            sdk: crate::SDK.to_owned(),
            pid: std::process::id(),
        };
        let shutdown_token = CancellationToken::new();
        // Kept alive so the link's command channel stays open while it runs.
        let (sender, receiver) = commands;
        let link = Link::new(
            socket,
            hello,
            interfaces.clone(),
            shutdown_token.clone(),
            (sender.clone(), receiver),
        );
        let link = link.run();
        tokio::pin!(link, shutdown);
        let started = tokio::select! {
            result = &mut link => result?,
            () = &mut shutdown => {
                shutdown_token.cancel();
                link.await?
            }
        };
        if started {
            for interface in &interfaces {
                interface.on_stop().await;
            }
        }
        drop(sender);
        info!("stopped");
        Ok(())
    }
}

/// Applies each interface's config section; checks names on both sides.
fn configure(
    interfaces: Vec<Box<dyn Interface>>,
    config: &FileConfig,
) -> Result<Vec<Arc<dyn Interface>>, ServiceError> {
    let mut names: Vec<String> = Vec::new();
    for interface in &interfaces {
        let name = interface.spec().name;
        if names.contains(&name) {
            return Err(ServiceError::DuplicateInterface(name));
        }
        names.push(name);
    }
    config.check_provided(&names)?;
    let mut configured: Vec<Arc<dyn Interface>> = Vec::new();
    for (mut interface, name) in interfaces.into_iter().zip(names) {
        interface
            .apply_config(config.section(&name))
            .map_err(|e| ServiceError::ApplyConfig {
                file: (!config.path.as_os_str().is_empty()).then(|| config.path.clone()),
                // `#[apply_config]`'s decoding names the key path itself.
                message: if e.kind() == crate::error::ErrorKind::Invalid {
                    e.message().to_owned()
                } else {
                    format!("interfaces.{name}: {}", e.message())
                },
                interface: name,
            })?;
        configured.push(Arc::from(interface));
    }
    Ok(configured)
}

/// An interface's spec as the app serves it: with no HTTP port (neither
/// `Service::http_port` nor `http_port:` in the config), its routes are not
/// served, and the daemon refuses routes without a port, so they are left
/// out, saying so once.
fn served_spec(mut spec: v1::InterfaceSpec, http_port: u16) -> v1::InterfaceSpec {
    if http_port == 0 && !spec.routes.is_empty() {
        warn!(
            interface = %spec.name,
            routes = spec.routes.len(),
            "the interface declares HTTP routes but no http_port is set \
             (Service::http_port or `http_port:` in the config): they are not served"
        );
        spec.routes.clear();
    }
    spec
}

/// The program's file name, for `Hello.app_name`, in the daemon's rule for
/// names (ASCII letters, digits, `_ . -`, at most 128 bytes): other
/// characters become `_`.
pub(crate) fn program_name() -> String {
    let name = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if name.is_empty() {
        "lymph-app".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_route() -> v1::InterfaceSpec {
        v1::InterfaceSpec {
            name: "Web".to_owned(),
            routes: vec![v1::HttpRoute {
                method: "GET".to_owned(),
                path: "/".to_owned(),
                endpoint: "index".to_owned(),
            }],
            ..v1::InterfaceSpec::default()
        }
    }

    #[test]
    fn routes_are_declared_only_with_a_port() {
        assert!(served_spec(with_route(), 0).routes.is_empty());
        assert_eq!(served_spec(with_route(), 8080).routes.len(), 1);
    }

    #[test]
    fn the_program_name_follows_the_daemon_rule_for_names() {
        let name = program_name();
        assert!(!name.is_empty() && name.len() <= 128, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
            "{name}"
        );
    }
}
