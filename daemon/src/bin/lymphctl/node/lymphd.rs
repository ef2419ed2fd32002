//! The node's lymphd: is one listening already, which binary to start, how
//! it is started on the node's socket, and the socket's cleanup after it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::file::Process;
use super::supervise::Spec;

/// How long a freshly started lymphd may take to listen.
pub const STARTUP: Duration = Duration::from_secs(20);
/// lymphd drains in-flight work (its own grace period is 10 s by default).
pub const GRACE: Duration = Duration::from_secs(15);

/// Whether something accepts connections on `socket` (a connect test) within `within`.
pub async fn listening(socket: &Path, within: Duration) -> bool {
    let connected = tokio::time::timeout(within, tokio::net::UnixStream::connect(socket)).await;
    matches!(connected, Ok(Ok(_)))
}

/// Waits, polling, until lymphd listens on `socket`; false after [`STARTUP`].
pub async fn wait_listening(socket: &Path, within: Duration) -> bool {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if listening(socket, within).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The lymphd to run: the node file's `lymphd:`, else the `lymphd` next to
/// this `lymphctl`, else `lymphd` on PATH; always told `--socket <socket>`.
/// `config` (lymphctl's `--config`) reaches it as `LYMPHD_CONFIG`, so an
/// explicit `--config` in the node file's args still wins.
pub fn spec(from_file: Option<Process>, socket: &Path, config: Option<&Path>, cwd: &Path) -> Spec {
    let mut process = from_file.unwrap_or_else(|| Process {
        name: "lymphd".to_owned(),
        program: default_binary(),
        args: Vec::new(),
        env: Vec::new(),
        command_key: String::new(),
    });
    process.args.push("--socket".to_owned());
    process.args.push(socket.display().to_string());
    let mut env: Vec<(&'static str, OsString)> = Vec::new();
    if let Some(config) = config {
        env.push(("LYMPHD_CONFIG", config.as_os_str().to_owned()));
    }
    Spec {
        process,
        cwd: cwd.to_path_buf(),
        env,
        grace: GRACE,
    }
}

fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("lymphd")))
        .filter(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("lymphd"))
}

/// After the node's lymphd is gone: a socket file nobody listens on is the
/// one it left behind when it had to be killed; remove it.
pub async fn remove_stale_socket(socket: &Path) {
    // A connect on a Unix socket completes or fails at once; the bound is a formality.
    if socket.exists() && !listening(socket, Duration::from_secs(1)).await {
        let _ = std::fs::remove_file(socket);
    }
}
