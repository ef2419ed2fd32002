//! The socket path rule: `--socket` flag, else `LYMPH_SOCKET`, else the config
//! file's `socket:`, else `$XDG_RUNTIME_DIR/lymph/lymphd.sock`, else
//! `/tmp/lymph-<uid>/lymphd.sock`. Pure: it only reads the environment it is given.

use std::path::PathBuf;

/// The environment variable that names the daemon's socket.
pub const SOCKET_ENV: &str = "LYMPH_SOCKET";

/// Where a resolved socket path came from, for error messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketSource {
    Flag,
    Env,
    ConfigFile,
    XdgRuntimeDir,
    TmpDir,
}

impl std::fmt::Display for SocketSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SocketSource::Flag => "--socket",
            SocketSource::Env => SOCKET_ENV,
            SocketSource::ConfigFile => "the config file",
            SocketSource::XdgRuntimeDir => "$XDG_RUNTIME_DIR",
            SocketSource::TmpDir => "the default",
        })
    }
}

/// Resolves the socket path from the process environment.
pub fn resolve_socket(
    flag: Option<PathBuf>,
    config_file: Option<PathBuf>,
) -> (PathBuf, SocketSource) {
    resolve_with(
        flag,
        std::env::var_os(SOCKET_ENV).map(PathBuf::from),
        config_file,
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        nix::unistd::getuid().as_raw(),
    )
}

/// The rule itself, with every input explicit.
pub fn resolve_with(
    flag: Option<PathBuf>,
    env: Option<PathBuf>,
    config_file: Option<PathBuf>,
    xdg_runtime_dir: Option<PathBuf>,
    uid: u32,
) -> (PathBuf, SocketSource) {
    let non_empty = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
    if let Some(path) = non_empty(flag) {
        return (path, SocketSource::Flag);
    }
    if let Some(path) = non_empty(env) {
        return (path, SocketSource::Env);
    }
    if let Some(path) = non_empty(config_file) {
        return (path, SocketSource::ConfigFile);
    }
    if let Some(dir) = non_empty(xdg_runtime_dir) {
        return (
            dir.join("lymph").join("lymphd.sock"),
            SocketSource::XdgRuntimeDir,
        );
    }
    (
        PathBuf::from(format!("/tmp/lymph-{uid}/lymphd.sock")),
        SocketSource::TmpDir,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<PathBuf> {
        Some(PathBuf::from(s))
    }

    #[test]
    fn flag_wins_over_everything() {
        let got = resolve_with(p("/f.sock"), p("/e.sock"), p("/c.sock"), p("/run/u"), 7);
        assert_eq!(got, (PathBuf::from("/f.sock"), SocketSource::Flag));
    }

    #[test]
    fn env_then_config_then_xdg_then_tmp() {
        assert_eq!(
            resolve_with(None, p("/e.sock"), p("/c.sock"), p("/run/u"), 7).1,
            SocketSource::Env
        );
        assert_eq!(
            resolve_with(None, None, p("/c.sock"), p("/run/u"), 7),
            (PathBuf::from("/c.sock"), SocketSource::ConfigFile)
        );
        assert_eq!(
            resolve_with(None, None, None, p("/run/u"), 7),
            (
                PathBuf::from("/run/u/lymph/lymphd.sock"),
                SocketSource::XdgRuntimeDir
            )
        );
        assert_eq!(
            resolve_with(None, None, None, None, 1000),
            (
                PathBuf::from("/tmp/lymph-1000/lymphd.sock"),
                SocketSource::TmpDir
            )
        );
    }

    #[test]
    fn empty_values_are_ignored() {
        let got = resolve_with(p(""), p(""), None, p(""), 5);
        assert_eq!(got.1, SocketSource::TmpDir);
    }
}
