//! The daemon's gauges for the Prometheus exporter, read at each scrape from
//! the parts that know them: the attached apps, the calls routed (the
//! metrics seam), the registry, the event bus and the RPC transport.

use std::sync::Arc;

use crate::attach::SessionTable;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::metrics::prom::{GaugeSource, Gauges};
use crate::registry::Registry;
use crate::rpc::Remote;

pub struct DaemonGauges {
    pub sessions: Arc<SessionTable>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<dyn Registry>,
    pub bus: Arc<dyn EventBus>,
    pub remote: Option<Arc<dyn Remote>>,
    pub spans: crate::spans::Spans,
}

#[async_trait::async_trait]
impl GaugeSource for DaemonGauges {
    async fn gauges(&self) -> Gauges {
        let (_, _, calls_in_flight) = self.metrics.rpc_totals();
        Gauges {
            apps: self.sessions.all().len() as u64,
            calls_in_flight,
            held: self.sessions.holding() as u64,
            queue_depth: self.bus.queued().await,
            peers: self.remote.as_ref().map(|r| r.peer_counts()),
            registry_connected: self.registry.connected(),
            broker_connected: self.bus.connected(),
            spans_dropped: self.spans.is_on().then(|| self.spans.dropped()),
        }
    }
}
