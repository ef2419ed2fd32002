//! The daemon's `Status` reply: what it is (version, socket, endpoint,
//! backends, uptime), its apps as `attach` reports them, and its RPC totals
//! from the metrics seam.

use std::sync::Arc;
use std::time::Instant;

use lymph_proto::v1 as pb;

use crate::attach::Attacher;
use crate::metrics::Metrics;

pub struct StatusBoard {
    pub socket: String,
    pub endpoint: String,
    pub identity: String,
    pub registry: &'static str,
    pub events: &'static str,
    pub started: Instant,
    pub attacher: Arc<Attacher>,
    pub metrics: Arc<Metrics>,
    /// The address `/metrics` is served on, if it is.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `rpc.default_timeout`: what a call that names no deadline gets.
    pub default_timeout: std::time::Duration,
}

impl StatusBoard {
    pub fn reply(&self) -> pb::StatusReply {
        let (calls_total, calls_failed, calls_in_flight) = self.metrics.rpc_totals();
        pb::StatusReply {
            version: crate::VERSION.to_owned(),
            socket: self.socket.clone(),
            endpoint: self.endpoint.clone(),
            identity: self.identity.clone(),
            registry: self.registry.to_owned(),
            events: self.events.to_owned(),
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            apps: self.attacher.status(),
            calls_total,
            calls_failed,
            calls_in_flight,
            metrics_listen: self
                .metrics_listen
                .map(|a| a.to_string())
                .unwrap_or_default(),
            default_timeout_ms: u64::try_from(self.default_timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }
}
