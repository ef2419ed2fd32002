//! An app's registrations: one instance per interface it serves (and a web
//! instance per interface with routes) while it is ready, all removed when it
//! says Goodbye, leaves, or the daemon drains.

use std::sync::Arc;

use tracing::warn;

use super::AppSession;
use crate::registry::{HttpInstance, Instance, Registry, RegistryError};

/// What an app's registrations say of the host, and where they go.
pub struct Registrar {
    registry: Arc<dyn Registry>,
    /// The daemon's endpoint: every app's instances are reached through it.
    endpoint: String,
    /// Fleet mode: the address in the endpoint, registered as lymph's `ip`.
    ip: Option<String>,
    hostname: Option<String>,
    /// The address web clients reach (`web.ip`, or the fleet address when
    /// the gateway listens on every interface).
    web_ip: String,
}

impl Registrar {
    pub fn new(
        registry: Arc<dyn Registry>,
        endpoint: String,
        ip: Option<String>,
        hostname: Option<String>,
        web_listen_ip: &str,
    ) -> Registrar {
        let unspecified = web_listen_ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        let web_ip = match &ip {
            Some(fleet_ip) if unspecified => fleet_ip.clone(),
            _ => web_listen_ip.to_owned(),
        };
        Registrar {
            registry,
            endpoint,
            ip,
            hostname,
            web_ip,
        }
    }

    /// Registers one instance per interface of a ready app.
    pub(super) async fn register(&self, session: &AppSession) -> Result<(), RegistryError> {
        for iface in &session.spec.interfaces {
            let instance = Instance {
                service: iface.name.clone(),
                id: crate::trace::new_id(),
                identity: session.identity.clone(),
                endpoint: self.endpoint.clone(),
                version: iface.version.clone(),
                ip: self.ip.clone(),
                hostname: self.hostname.clone(),
                log_endpoint: session.log.get().map(|port| port.endpoint.clone()),
                app_name: Some(session.spec.app_name.clone()),
            };
            let key = (instance.service.clone(), instance.id.clone());
            self.registry.register(instance).await?;
            session
                .registrations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(key.clone());
            if session.spec.http_port != 0 && !iface.routes.is_empty() {
                self.registry
                    .register_http(HttpInstance {
                        service: key.0.clone(),
                        id: key.1.clone(),
                        identity: session.identity.clone(),
                        ip: Some(self.web_ip.clone()),
                        hostname: self.hostname.clone(),
                        http_port: session.spec.http_port,
                    })
                    .await?;
                session
                    .http_registrations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(key);
            }
        }
        Ok(())
    }

    /// Removes every registration of an app. Idempotent.
    pub(super) async fn unregister(&self, session: &AppSession) {
        let keys: Vec<(String, String)> = std::mem::take(
            &mut *session
                .registrations
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for (service, id) in keys {
            if let Err(e) = self.registry.unregister(&service, &id).await {
                warn!(%service, %id, error = %e, "could not unregister an instance");
            }
        }
        let http_keys: Vec<(String, String)> = std::mem::take(
            &mut *session
                .http_registrations
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for (service, id) in http_keys {
            if let Err(e) = self.registry.unregister_http(&service, &id).await {
                warn!(%service, %id, error = %e, "could not unregister a web instance");
            }
        }
    }
}
