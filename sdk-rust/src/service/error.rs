//! `ServiceError`: why a service could not start or had to stop. Each message
//! names what to fix (the file, the interface, the socket).

use std::path::PathBuf;

use crate::error::CallError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot read config file {}", .path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad config file {}: {reason}", .path.display())]
    BadConfig { path: PathBuf, reason: String },
    #[error("config file {} configures interface {name}, but this program provides {provided}", .path.display())]
    UnknownInterface {
        path: PathBuf,
        name: String,
        provided: String,
    },
    #[error("interface {0} is added twice")]
    DuplicateInterface(String),
    /// An interface's `#[apply_config]` refused its section; `message` starts
    /// with the key path in the file: `interfaces.Shop.limits.max: invalid
    /// type: string "2", expected u32`.
    #[error("bad config{}: {message}", in_file(.file.as_deref()))]
    ApplyConfig {
        /// The config file; `None` when the service was given none (every
        /// section is then empty).
        file: Option<PathBuf>,
        interface: String,
        message: String,
    },
    #[error("lymphd at {} rejected the app: {error}", .socket.display())]
    Rejected { socket: PathBuf, error: CallError },
    #[error("{0}")]
    Attach(String),
    #[error("on_start of {interface} failed: {message}")]
    Start { interface: String, message: String },
    #[error("bad command line")]
    Args(#[source] clap::Error),
}

/// " file conf/shop.yml", or a hint when there is no file.
fn in_file(file: Option<&std::path::Path>) -> String {
    match file {
        Some(path) => format!(" file {}", path.display()),
        None => " (no config file given; pass --config FILE)".to_owned(),
    }
}

impl ServiceError {
    /// The exit code for this error: 64 (EX_USAGE) for bad config or command
    /// line, 78 (EX_CONFIG) for a spec the daemon refused, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ServiceError::ReadConfig { .. }
            | ServiceError::BadConfig { .. }
            | ServiceError::UnknownInterface { .. }
            | ServiceError::ApplyConfig { .. }
            | ServiceError::Args(_) => 64,
            ServiceError::Rejected { .. } | ServiceError::DuplicateInterface(_) => 78,
            ServiceError::Attach(_) | ServiceError::Start { .. } => 1,
        }
    }
}

/// For `main`: prints the error and its causes to stderr ("error: ...") and
/// returns its exit code; success is 0.
pub fn exit_code(result: Result<(), ServiceError>) -> std::process::ExitCode {
    let Err(error) = result else {
        return std::process::ExitCode::SUCCESS;
    };
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    eprintln!("error: {text}");
    std::process::ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(1))
}
