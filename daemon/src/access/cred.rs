//! A local connection's peer credentials as the kernel gives them at accept:
//! uid, gid and pid from SO_PEERCRED, supplementary groups from
//! `/proc/<pid>/status`. Never what the process says about itself.

use std::fmt;
use std::sync::Arc;

/// Who opened a connection on the local socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCred {
    /// The effective uid and gid of the process when it connected.
    pub uid: u32,
    pub gid: u32,
    /// `None` when the kernel gave none (a process in another pid namespace).
    pub pid: Option<u32>,
    /// Its supplementary groups, read at accept; empty when they could not
    /// be read or no longer belong to the process that connected.
    pub groups: Arc<[u32]>,
}

impl PeerCred {
    /// The credentials of the process that opened `stream`.
    pub fn of(stream: &tokio::net::UnixStream) -> std::io::Result<PeerCred> {
        let ucred = stream.peer_cred()?;
        let pid = ucred
            .pid()
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0);
        // Read at accept, while the process that connected most likely still
        // has its pid: one small read of procfs (tens of microseconds), once
        // per connection, not per request.
        let groups = pid
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .and_then(|status| groups_from_status(&status, ucred.uid(), ucred.gid()))
            .unwrap_or_default();
        Ok(PeerCred {
            uid: ucred.uid(),
            gid: ucred.gid(),
            pid,
            groups: groups.into(),
        })
    }

    /// Whether the process's primary or a supplementary group is in `gids`.
    pub fn in_any_group(&self, gids: &[u32]) -> bool {
        gids.contains(&self.gid) || self.groups.iter().any(|g| gids.contains(g))
    }
}

impl fmt::Display for PeerCred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid {} (gid {}", self.uid, self.gid)?;
        if let Some(pid) = self.pid {
            write!(f, ", pid {pid}")?;
        }
        f.write_str(")")
    }
}

/// The `Groups:` of a `/proc/<pid>/status` text, provided its effective
/// `Uid:` and `Gid:` are still `uid` and `gid`: if they are not, the pid now
/// names another process (the one that connected exited and the pid was
/// reused, or it changed identity), and its groups say nothing of the peer.
pub(crate) fn groups_from_status(status: &str, uid: u32, gid: u32) -> Option<Vec<u32>> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .map(str::parse::<u32>)
                    .collect::<Result<Vec<u32>, _>>()
            })
    };
    // "Uid:\treal\teffective\tsaved\tfilesystem"
    let effective = |ids: Vec<u32>| ids.get(1).copied();
    if effective(field("Uid:")?.ok()?)? != uid || effective(field("Gid:")?.ok()?)? != gid {
        return None;
    }
    field("Groups:")?.ok()
}
