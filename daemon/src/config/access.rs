//! The `services:` section: who may serve a service name. The allow-lists
//! of who may attach at all are `apps.allowed_uids`/`apps.allowed_gids`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The uids and groups whose processes may serve one service name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceAccess {
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

/// Each entry names a service and at least one uid or gid: an entry naming
/// nobody would refuse every app that serves the name, which is more likely
/// a slip than a wish.
pub(super) fn validate(services: &BTreeMap<String, ServiceAccess>) -> Result<(), String> {
    for (name, access) in services {
        if name.trim().is_empty() {
            return Err("services: a service name is empty".to_owned());
        }
        if access.uids.is_empty() && access.gids.is_empty() {
            return Err(format!(
                "services.{name} names no uids and no gids: list who may serve {name}, \
                 or remove the entry (then anyone allowed to attach may)"
            ));
        }
    }
    Ok(())
}
