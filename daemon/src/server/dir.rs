//! The socket directory's safety: whoever may write the directory may swap
//! the socket for their own server, which apps would then attach to. So the
//! directory must be the daemon's (or root's) and writable by nobody else;
//! inside a world-writable parent such as `/tmp`, where anyone may have made
//! it first, it must be the daemon's own. Pure check plus one `stat`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a socket directory is refused: what was found and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the socket directory {path} is unsafe: {problem} (owner uid {owner}, mode {mode:04o}); \
     anyone who can write it can replace the socket. Fix: {fix}"
)]
pub struct UnsafeDir {
    pub path: PathBuf,
    pub owner: u32,
    pub mode: u32,
    pub problem: String,
    pub fix: String,
}

/// What the check needs to know of a directory and its parent.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub owner: u32,
    pub mode: u32,
    pub is_symlink: bool,
    /// The parent is writable by others (`/tmp`): anyone may have made the directory.
    pub parent_world_writable: bool,
}

/// Checks `facts` of `dir` for a daemon running as `uid`.
pub fn check(dir: &Path, facts: Facts, uid: u32) -> Result<(), UnsafeDir> {
    let refuse = |problem: &str, fix: String| UnsafeDir {
        path: dir.to_path_buf(),
        owner: facts.owner,
        mode: facts.mode & 0o7777,
        problem: problem.to_owned(),
        fix,
    };
    if facts.parent_world_writable && facts.is_symlink {
        return Err(refuse(
            "it is a symbolic link inside a world-writable directory",
            format!("remove it (rm {}) and start again", dir.display()),
        ));
    }
    if facts.parent_world_writable && facts.owner != uid {
        return Err(refuse(
            &format!(
                "it sits in a world-writable directory and is not owned by this daemon's uid {uid}"
            ),
            format!(
                "remove it (rm -r {}) and start again, or use another path with --socket",
                dir.display()
            ),
        ));
    }
    if facts.owner != uid && facts.owner != 0 {
        return Err(refuse(
            &format!("it is owned by neither this daemon's uid {uid} nor root"),
            format!(
                "chown {uid} {}, or use another path with --socket",
                dir.display()
            ),
        ));
    }
    if facts.mode & 0o022 != 0 {
        return Err(refuse(
            "it is writable by its group or by others",
            format!("chmod go-w {}", dir.display()),
        ));
    }
    Ok(())
}

/// Reads the facts of `dir` (and its parent) and checks them for this process.
pub fn check_path(dir: &Path) -> Result<(), std::io::Error> {
    let link = std::fs::symlink_metadata(dir)?;
    let meta = std::fs::metadata(dir)?;
    let parent_world_writable = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|p| p.mode() & 0o002 != 0);
    let facts = Facts {
        owner: meta.uid(),
        mode: meta.mode(),
        is_symlink: link.file_type().is_symlink(),
        parent_world_writable,
    };
    check(dir, facts, nix::unistd::geteuid().as_raw()).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(owner: u32, mode: u32, parent_world_writable: bool) -> Facts {
        Facts {
            owner,
            mode,
            is_symlink: false,
            parent_world_writable,
        }
    }

    #[test]
    fn the_daemons_own_private_directory_is_fine() {
        let dir = Path::new("/tmp/lymph-1000");
        assert_eq!(check(dir, facts(1000, 0o750, true), 1000), Ok(()));
        assert_eq!(
            check(Path::new("/run/lymph"), facts(0, 0o755, false), 1000),
            Ok(())
        );
    }

    #[test]
    fn writable_by_others_or_owned_by_another_user_is_refused() {
        let dir = Path::new("/tmp/lymph-1000");
        let open = check(dir, facts(1000, 0o777, true), 1000).expect_err("0777");
        assert!(
            open.to_string().contains("chmod go-w /tmp/lymph-1000"),
            "{open}"
        );
        assert!(open.to_string().contains("mode 0777"), "{open}");
        let theirs = check(dir, facts(1001, 0o755, true), 1000).expect_err("another user's");
        assert!(theirs.to_string().contains("owner uid 1001"), "{theirs}");
        let root_in_tmp = check(dir, facts(0, 0o755, true), 1000).expect_err("root's, in /tmp");
        assert!(
            root_in_tmp.to_string().contains("world-writable"),
            "{root_in_tmp}"
        );
        let elsewhere = check(Path::new("/srv/x"), facts(1001, 0o700, false), 1000);
        assert!(elsewhere.is_err(), "another user's directory anywhere");
        let link = Facts {
            is_symlink: true,
            ..facts(1000, 0o700, true)
        };
        assert!(check(dir, link, 1000).is_err(), "a symlink in /tmp");
    }
}
