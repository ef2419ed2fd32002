//! The daemon's Unix socket: binds it with mode 0660, replaces a stale socket
//! file, refuses to start beside a live daemon, and removes the file on exit
//! only if it is still ours. Its connections' bounds are in [`conn`].

pub mod conn;
pub mod dir;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "another lymphd is already listening on {0} (stop it first, or pick another path with --socket)"
    )]
    AlreadyRunning(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("cannot create the socket directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    UnsafeDir(#[from] dir::UnsafeDir),
    #[error("cannot check the socket directory {path}")]
    DirUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {path}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Refuses a directory someone else could swap the socket in (`dir`).
fn check_dir(dir: &Path) -> Result<(), BindError> {
    match dir::check_path(dir) {
        Ok(()) => Ok(()),
        Err(e) => match e.downcast::<dir::UnsafeDir>() {
            Ok(unsafe_dir) => Err(BindError::UnsafeDir(unsafe_dir)),
            Err(source) => Err(BindError::DirUnreadable {
                path: dir.to_path_buf(),
                source,
            }),
        },
    }
}

/// The bound socket and the inode that proves the file is still ours.
pub struct BoundSocket {
    pub listener: UnixListener,
    pub path: PathBuf,
    inode: u64,
}

pub async fn bind(path: &Path) -> Result<BoundSocket, BindError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|source| BindError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        // Owner and group may reach the socket inside; others may not.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_dir(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(BindError::NotASocket(path.to_path_buf()));
        }
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(BindError::AlreadyRunning(path.to_path_buf()));
        }
        info!(path = %path.display(), "replacing a stale socket file");
        std::fs::remove_file(path).map_err(|source| BindError::Bind {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let bind_err = |source| BindError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_err)?;
    let inode = std::fs::metadata(path).map_err(bind_err)?.ino();
    Ok(BoundSocket {
        listener,
        path: path.to_path_buf(),
        inode,
    })
}

impl BoundSocket {
    /// Splits off the listener; keep the guard to remove the file later.
    pub fn into_parts(self) -> (UnixListener, SocketGuard) {
        (
            self.listener,
            SocketGuard {
                path: self.path,
                inode: self.inode,
            },
        )
    }
}

/// Removes the socket file when dropped, unless another daemon replaced it.
pub struct SocketGuard {
    path: PathBuf,
    inode: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_file_is_replaced_live_daemon_refused_mode_0660() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/lymphd.sock");

        let first = bind(&path).await.expect("first bind");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);

        let err = bind(&path).await.err().expect("second bind must fail");
        assert!(matches!(err, BindError::AlreadyRunning(_)), "{err}");

        // Dropping the listener leaves a stale file behind, as a crash would.
        drop(first);
        assert!(path.exists());
        let (_listener, guard) = bind(&path).await.expect("stale replaced").into_parts();
        drop(guard);
        assert!(!path.exists(), "the guard removes its own socket");
    }

    #[tokio::test]
    async fn regular_file_is_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("file.sock");
        std::fs::write(&path, b"precious").expect("write");
        let err = bind(&path).await.err().expect("must refuse");
        assert!(matches!(err, BindError::NotASocket(_)), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), b"precious");
    }
}
