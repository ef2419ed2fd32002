//! Who may use the local socket. Each connection carries the [`PeerCred`]
//! the kernel gave at accept; the checks here hold it against
//! `apps.allowed_uids`/`apps.allowed_gids` (who may attach or call at all)
//! and `services:` (who may serve a service name), and log each refusal,
//! rate-limited. Knows nothing of gRPC or of sessions.

mod cred;

use std::collections::BTreeMap;
use std::time::Duration;

pub use cred::PeerCred;

use crate::config::{AppsConfig, ServiceAccess};
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

static NOT_ALLOWED: WarnLimit = WarnLimit::new(Duration::from_secs(10));
static MAY_NOT_SERVE: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// Why a local caller was refused: said to the caller and in the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "permission denied: {peer} may not use this lymphd: apps.allowed_uids is {uids:?} \
         and apps.allowed_gids is {gids:?}"
    )]
    NotAllowed {
        peer: String,
        uids: Vec<u32>,
        gids: Vec<u32>,
    },
    #[error(
        "permission denied: {peer} may not serve {service}: services.{service} allows \
         uids {uids:?} and gids {gids:?}"
    )]
    MayNotServe {
        peer: String,
        service: String,
        uids: Vec<u32>,
        gids: Vec<u32>,
    },
    /// Never on connections the daemon accepted (it refuses those whose
    /// credentials it cannot read); here so that a missing one fails closed.
    #[error(
        "permission denied: the connection's peer credentials are unknown, and {setting} restricts who may"
    )]
    Unknown { setting: String },
}

/// Whether `peer` may attach to or call this daemon at all. With
/// `apps.allowed_uids` and `apps.allowed_gids` both empty, anyone who can
/// open the socket may; else its uid must be listed, or its primary or a
/// supplementary group. Nobody passes implicitly, root included.
pub fn allowed(apps: &AppsConfig, peer: Option<&PeerCred>) -> Result<(), Denied> {
    if apps.allowed_uids.is_empty() && apps.allowed_gids.is_empty() {
        return Ok(());
    }
    let Some(peer) = peer else {
        return Err(Denied::Unknown {
            setting: "apps.allowed_uids/apps.allowed_gids".to_owned(),
        });
    };
    if apps.allowed_uids.contains(&peer.uid) || peer.in_any_group(&apps.allowed_gids) {
        return Ok(());
    }
    Err(Denied::NotAllowed {
        peer: peer.to_string(),
        uids: apps.allowed_uids.clone(),
        gids: apps.allowed_gids.clone(),
    })
}

/// Whether `peer` may serve every one of `names`: a name under `services:`
/// only by a listed uid or a member of a listed group; any other name by
/// anyone [`allowed`] to attach.
pub fn may_serve<'a>(
    services: &BTreeMap<String, ServiceAccess>,
    peer: Option<&PeerCred>,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), Denied> {
    for name in names {
        let Some(rule) = services.get(name) else {
            continue;
        };
        let Some(peer) = peer else {
            return Err(Denied::Unknown {
                setting: format!("services.{name}"),
            });
        };
        if !rule.uids.contains(&peer.uid) && !peer.in_any_group(&rule.gids) {
            return Err(Denied::MayNotServe {
                peer: peer.to_string(),
                service: name.to_owned(),
                uids: rule.uids.clone(),
                gids: rule.gids.clone(),
            });
        }
    }
    Ok(())
}

/// [`allowed`] for a unary call or stream named `request`, the refusal logged.
pub fn admit(apps: &AppsConfig, peer: Option<&PeerCred>, request: &str) -> Result<(), Denied> {
    allowed(apps, peer).inspect_err(|denied| log(peer, request, denied))
}

/// [`allowed`] then [`may_serve`] for an app's `Hello` declaring
/// `interfaces`, the refusal logged.
pub fn admit_app<'a>(
    config: &crate::Config,
    peer: Option<&PeerCred>,
    interfaces: impl IntoIterator<Item = &'a str>,
) -> Result<(), Denied> {
    allowed(&config.apps, peer)
        .and_then(|()| may_serve(&config.services, peer, interfaces))
        .inspect_err(|denied| log(peer, "Attach", denied))
}

/// One warn line per kind of refusal per 10 s (with the count left out): a
/// process retrying in a loop costs a few lines, not one each. The names a
/// client sent stay out of it; the kernel's uid, gid and pid say who it was.
fn log(peer: Option<&PeerCred>, request: &str, denied: &Denied) {
    // 0 for a pid the kernel did not give; u32::MAX for no credentials at all.
    let (uid, gid, pid) = peer.map_or((u32::MAX, u32::MAX, 0), |peer| {
        (peer.uid, peer.gid, peer.pid.unwrap_or(0))
    });
    match denied {
        Denied::MayNotServe { service, .. } => warn_limited!(
            MAY_NOT_SERVE, uid, gid, pid, %service,
            "refused an app: its uid may not serve the service (services)"
        ),
        Denied::NotAllowed { .. } | Denied::Unknown { .. } => warn_limited!(
            NOT_ALLOWED,
            uid,
            gid,
            pid,
            request,
            "refused a local caller: not in apps.allowed_uids or apps.allowed_gids"
        ),
    }
}

#[cfg(test)]
mod tests;
