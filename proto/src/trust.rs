//! Whether a client may trust the server behind lymphd's socket, checked
//! before it sends its first byte. Whoever can write the socket's directory
//! can put their own server there, so: the directory must belong to this
//! process's uid, root, or the daemon user (`LYMPH_DAEMON_USER`) and be
//! writable by nobody else; the socket file must belong to the directory's
//! owner or root; and the process serving the connection (its peer
//! credentials) must run as the socket's owner or root. The rules are pure
//! functions; `before_connect` and `after_connect` read the facts.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The environment variable naming the user lymphd runs as (a name or a
/// numeric uid), when that is neither the client's user nor root: `lymph`
/// under the shipped systemd units.
pub const DAEMON_USER_ENV: &str = "LYMPH_DAEMON_USER";

/// A refused socket: what was found, what was expected, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to attach to lymphd on {}: {problem}. Fix: {fix}", .socket.display())]
pub struct Untrusted {
    pub socket: PathBuf,
    pub problem: String,
    pub fix: String,
}

/// The check failed before it could judge: nothing to connect to.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Unreachable(std::io::Error),
    #[error(transparent)]
    Untrusted(Untrusted),
}

/// Whom this process trusts to own the socket's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    /// This process's effective uid.
    pub own: u32,
    /// `LYMPH_DAEMON_USER` as given, with its uid when it names a user.
    pub daemon_user: Option<(String, Option<u32>)>,
}

impl Trusted {
    /// This process's euid and `LYMPH_DAEMON_USER`, resolved.
    pub fn from_env() -> Trusted {
        let daemon_user = std::env::var(DAEMON_USER_ENV)
            .ok()
            .filter(|name| !name.is_empty())
            .map(|name| {
                let uid = resolve_user(&name);
                (name, uid)
            });
        Trusted {
            own: nix::unistd::geteuid().as_raw(),
            daemon_user,
        }
    }

    fn admits(&self, uid: u32) -> bool {
        uid == self.own || uid == 0 || self.daemon_user.as_ref().and_then(|d| d.1) == Some(uid)
    }
}

/// The directory rule: owned by a trusted uid, writable by its owner only.
pub fn check_dir(
    socket: &Path,
    dir: &Path,
    (owner, mode): (u32, u32),
    trusted: &Trusted,
    name_of: &dyn Fn(u32) -> Option<String>,
) -> Result<(), Untrusted> {
    let who = |uid| who(uid, name_of);
    let refuse = |problem: String, fix: String| Untrusted {
        socket: socket.to_path_buf(),
        problem,
        fix,
    };
    let found = || format!("owner {}, mode {:04o}", who(owner), mode & 0o7777);
    if !trusted.admits(owner) {
        let daemon_user = match &trusted.daemon_user {
            None => format!("{DAEMON_USER_ENV} is not set"),
            Some((name, Some(uid))) => format!("{DAEMON_USER_ENV}={name}, uid {uid}"),
            Some((name, None)) => format!("{DAEMON_USER_ENV}={name} names no user"),
        };
        let owner_name = name_of(owner).unwrap_or_else(|| owner.to_string());
        return Err(refuse(
            format!(
                "its directory {} ({}) belongs to another user, who may be serving \
                 their own lymphd; expected this process's {}, root or the daemon user \
                 ({daemon_user})",
                dir.display(),
                found(),
                who(trusted.own)
            ),
            format!(
                "if lymphd runs as {owner_name}, set {DAEMON_USER_ENV}={owner_name}; \
                 otherwise remove {} (as root if need be) and start lymphd again",
                dir.display()
            ),
        ));
    }
    if mode & 0o022 != 0 {
        return Err(refuse(
            format!(
                "its directory {} ({}) is writable by its group or others, \
                 who could have replaced the socket",
                dir.display(),
                found()
            ),
            format!("chmod go-w {} and start lymphd again", dir.display()),
        ));
    }
    Ok(())
}

/// The socket file's rule: owned by its directory's owner or root.
pub fn check_socket(
    socket: &Path,
    dir_owner: u32,
    socket_owner: u32,
    name_of: &dyn Fn(u32) -> Option<String>,
) -> Result<(), Untrusted> {
    if socket_owner == dir_owner || socket_owner == 0 {
        return Ok(());
    }
    Err(Untrusted {
        socket: socket.to_path_buf(),
        problem: format!(
            "the socket belongs to {}, but its directory to {}; expected the directory's owner or root",
            who(socket_owner, name_of),
            who(dir_owner, name_of)
        ),
        fix: format!("remove {} and start lymphd again", socket.display()),
    })
}

/// The server's rule: the process that accepted runs as the socket's owner or root.
pub fn check_peer(
    socket: &Path,
    socket_owner: u32,
    (peer_uid, peer_pid): (u32, Option<i32>),
    name_of: &dyn Fn(u32) -> Option<String>,
) -> Result<(), Untrusted> {
    if peer_uid == socket_owner || peer_uid == 0 {
        return Ok(());
    }
    let pid = peer_pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
    Err(Untrusted {
        socket: socket.to_path_buf(),
        problem: format!(
            "the process serving it (pid {pid}) runs as {}, but the socket belongs to {}; \
             expected the socket's owner or root",
            who(peer_uid, name_of),
            who(socket_owner, name_of)
        ),
        fix: format!("that is not your lymphd: stop pid {pid} and start lymphd again"),
    })
}

/// Checks the directory and the socket file; returns the socket's owner,
/// which [`after_connect`] needs.
pub fn before_connect(socket: &Path) -> Result<u32, CheckError> {
    let dir = socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Both follow symlinks, as connect does: what is judged is what is reached.
    let dir_meta = std::fs::metadata(dir).map_err(CheckError::Unreachable)?;
    let socket_meta = std::fs::metadata(socket).map_err(CheckError::Unreachable)?;
    let trusted = Trusted::from_env();
    let facts = (dir_meta.uid(), dir_meta.mode());
    check_dir(socket, dir, facts, &trusted, &user_name).map_err(CheckError::Untrusted)?;
    check_socket(socket, dir_meta.uid(), socket_meta.uid(), &user_name)
        .map_err(CheckError::Untrusted)?;
    Ok(socket_meta.uid())
}

/// Checks who serves `stream` against the socket's owner.
pub fn after_connect(
    socket: &Path,
    socket_owner: u32,
    stream: &tokio::net::UnixStream,
) -> Result<(), CheckError> {
    let cred = stream.peer_cred().map_err(CheckError::Unreachable)?;
    check_peer(socket, socket_owner, (cred.uid(), cred.pid()), &user_name)
        .map_err(CheckError::Untrusted)
}

/// "uid 1000 (alice)", or "uid 1000" when the uid has no name.
fn who(uid: u32, name_of: &dyn Fn(u32) -> Option<String>) -> String {
    match name_of(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

/// A user's name, for messages. Reads the user database (a file or NSS):
/// only on a refusal or for `LYMPH_DAEMON_USER`, never per call.
fn user_name(uid: u32) -> Option<String> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid));
    user.ok().flatten().map(|u| u.name)
}

/// `LYMPH_DAEMON_USER`'s uid: a numeric uid as is, else the named user's.
fn resolve_user(name: &str) -> Option<u32> {
    if let Ok(uid) = name.parse::<u32>() {
        return Some(uid);
    }
    let user = nix::unistd::User::from_name(name).ok().flatten();
    user.map(|u| u.uid.as_raw())
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
