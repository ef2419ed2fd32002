//! The Prometheus exposition of the metrics seam: at each scrape the seam's
//! series, the daemon's gauges and the process's figures are encoded as
//! OpenMetrics text with `prometheus-client`. Nothing is recorded twice: the
//! histograms are the seam's own buckets.
//!
//! Names, units and labels follow OpenTelemetry's semantic conventions
//! v1.40.0 as Prometheus exports them (dots become underscores, the unit a
//! suffix, counters end in `_total`): `rpc.client.call.duration` →
//! `rpc_client_call_duration_seconds`, attribute `rpc.method` → label
//! `rpc_method`. The daemon's own figures are `lymphd_*`. `docs/metrics.md`
//! lists every series.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::process::Process;
use super::{EventStep, Metrics, OTHER, Side, Snapshot};
use crate::error::kind_name;

/// The `rpc.system.name` of lymph's RPC (semantic conventions v1.40.0 leave
/// systems they do not list to the instrumentation).
const RPC_SYSTEM: &str = "lymph";
/// The `messaging.system` of lymph's events.
const MESSAGING_SYSTEM: &str = "lymph";

/// The daemon's state at a scrape, beyond the seam's series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gauges {
    /// Apps attached now.
    pub apps: u64,
    /// Calls this daemon routed that wait for their answer.
    pub calls_in_flight: u64,
    /// Requests and deliveries its apps hold.
    pub held: u64,
    /// Events queued in the embedded bus; `None` with RabbitMQ.
    pub queue_depth: Option<u64>,
    /// Peers known to the RPC transport by state (verified, unverified,
    /// dead); `None` without one (embedded mode).
    pub peers: Option<[u64; 3]>,
    /// Whether the registry's session is up (the embedded one always is).
    pub registry_connected: bool,
    /// Whether the event bus's connection is up (the embedded one always is).
    pub broker_connected: bool,
    /// Spans dropped (export queue full, or refused by the collector);
    /// `None` while tracing is off.
    pub spans_dropped: Option<u64>,
}

/// Reads the daemon's gauges at each scrape (asking the backends: nothing
/// is counted for them on the hot paths).
#[async_trait::async_trait]
pub trait GaugeSource: Send + Sync + 'static {
    async fn gauges(&self) -> Gauges;
}

/// The exposition: the seam, and the gauges read for the scrape under way.
#[derive(Debug)]
struct Exposition {
    metrics: Arc<Metrics>,
    gauges: Mutex<Gauges>,
}

/// What a scrape gets: the registry holding the exposition, and where its
/// gauges come from.
pub struct Exporter {
    registry: Registry,
    exposition: Arc<Exposition>,
    source: Arc<dyn GaugeSource>,
}

impl Exporter {
    pub fn new(metrics: Arc<Metrics>, source: Arc<dyn GaugeSource>) -> Exporter {
        let exposition = Arc::new(Exposition {
            metrics,
            gauges: Mutex::default(),
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(exposition.clone()));
        Exporter {
            registry,
            exposition,
            source,
        }
    }

    /// The whole exposition, as a scrape gets it.
    pub async fn scrape(&self) -> Result<String, std::fmt::Error> {
        let gauges = self.source.gauges().await;
        let mut out = String::with_capacity(16 * 1024);
        // Concurrent scrapes each set fresh gauges; either is current.
        *self
            .exposition
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = gauges;
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("labelled", &self.labelled)
            .finish_non_exhaustive()
    }
}

/// One labelled histogram series.
fn histogram(
    family: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &[(&str, &str)],
    s: &Snapshot,
) -> std::fmt::Result {
    let buckets = s.seconds_buckets();
    family
        .encode_family(&labels)?
        .encode_histogram::<NoLabelSet>(s.sum_seconds(), s.count, &buckets, None)
}

fn counter(
    family: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &[(&str, &str)],
    value: u64,
) -> std::fmt::Result {
    family
        .encode_family(&labels)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// One family of one unlabelled series.
fn single(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: &impl prometheus_client::encoding::EncodeMetric,
) -> std::fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> std::fmt::Result {
    single(encoder, name, help, None, &ConstGauge::new(value))
}

/// One family of gauges told apart by one label.
fn gauges<const N: usize>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: [(&str, u64); N],
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, n) in values {
        ConstGauge::new(n as f64).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let m = &self.metrics;
        for (side, name, help) in [
            (
                Side::Client,
                "rpc_client_call_duration",
                "Duration of RPCs this daemon routed for its apps and tools (rpc.client.call.duration).",
            ),
            (
                Side::Server,
                "rpc_server_call_duration",
                "Duration of RPCs this daemon served for other hosts (rpc.server.call.duration).",
            ),
        ] {
            let series = m.rpc_series(side);
            let mut family = encoder.encode_descriptor(
                name,
                help,
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (subject, stats) in &series {
                for (kind, snapshot) in stats.outcomes() {
                    if snapshot.count == 0 && kind.is_some() {
                        continue;
                    }
                    let mut labels = vec![("rpc_system_name", RPC_SYSTEM), ("rpc_method", subject)];
                    if let Some(kind) = kind {
                        labels.push(("error_type", kind_name(kind)));
                    }
                    histogram(&mut family, &labels, &snapshot)?;
                }
            }
        }

        let mut family = encoder.encode_descriptor(
            "http_server_request_duration",
            "Duration of HTTP requests at the gateway (http.server.request.duration).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for ((method, route), stats) in m.http_series() {
            for (status, timing) in stats.by_status() {
                let code = status.to_string();
                let mut labels = vec![
                    ("http_request_method", method.as_str()),
                    ("http_route", route.as_str()),
                    ("url_scheme", "http"),
                ];
                labels.push((
                    "http_response_status_code",
                    if status == 0 { OTHER } else { &code },
                ));
                if status >= 500 {
                    labels.push(("error_type", &code));
                }
                histogram(&mut family, &labels, &timing.snapshot())?;
            }
        }

        let events = m.event_series();
        for (name, help, step) in [
            (
                "messaging_client_sent_messages",
                "Events this daemon's apps emitted that the bus took (messaging.client.sent.messages).",
                EventStep::Emitted,
            ),
            (
                "messaging_client_consumed_messages",
                "Event deliveries handed to this daemon's apps (messaging.client.consumed.messages).",
                EventStep::Delivered,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (event_type, counts) in &events {
                let labels = [
                    ("messaging_system", MESSAGING_SYSTEM),
                    ("messaging_destination_name", event_type.as_str()),
                ];
                counter(&mut family, &labels, counts.count(step))?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "messaging_process_duration",
            "How long handlers held deliveries, to their ack or fail (messaging.process.duration).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (event_type, counts) in &events {
            let labels = [
                ("messaging_system", MESSAGING_SYSTEM),
                ("messaging_destination_name", event_type.as_str()),
            ];
            histogram(&mut family, &labels, &counts.processed.snapshot())?;
        }
        let mut family = encoder.encode_descriptor(
            "lymphd_events_settled",
            "Deliveries ended, by result: ack, retry (failed, tried again), drop (failed on its last try), fail (its app went away holding it; back to the bus).",
            None,
            MetricType::Counter,
        )?;
        for (event_type, counts) in &events {
            for (result, step) in [
                ("ack", EventStep::Acked),
                ("retry", EventStep::Failed),
                ("drop", EventStep::Dropped),
                ("fail", EventStep::Returned),
            ] {
                let labels = [
                    ("messaging_destination_name", event_type.as_str()),
                    ("result", result),
                ];
                counter(&mut family, &labels, counts.count(step))?;
            }
        }

        let g = *self.gauges.lock().unwrap_or_else(|p| p.into_inner());
        gauge(
            &mut encoder,
            "lymphd_apps",
            "Apps attached to this daemon.",
            g.apps as f64,
        )?;
        gauges(
            &mut encoder,
            "lymphd_in_flight",
            "Work in flight: calls this daemon routed that wait for an answer, and requests and deliveries its apps hold.",
            "kind",
            [("calls", g.calls_in_flight), ("held", g.held)],
        )?;
        if let Some(depth) = g.queue_depth {
            gauge(
                &mut encoder,
                "lymphd_queue_depth",
                "Events queued in the embedded bus.",
                depth as f64,
            )?;
        }
        if let Some([verified, unverified, dead]) = g.peers {
            gauges(
                &mut encoder,
                "lymphd_peers",
                "Peers known to the RPC transport, by state.",
                "state",
                [
                    ("verified", verified),
                    ("unverified", unverified),
                    ("dead", dead),
                ],
            )?;
        }
        gauge(
            &mut encoder,
            "lymphd_registry_connected",
            "1 while the registry's session is up.",
            f64::from(u8::from(g.registry_connected)),
        )?;
        gauge(
            &mut encoder,
            "lymphd_broker_connected",
            "1 while the event bus's connection is up.",
            f64::from(u8::from(g.broker_connected)),
        )?;

        if let Some(dropped) = g.spans_dropped {
            single(
                &mut encoder,
                "lymphd_spans_dropped",
                "Spans not exported: the export queue was full, or the collector did not take them.",
                None,
                &ConstCounter::new(dropped),
            )?;
        }

        let p = Process::read();
        if let Some(bytes) = p.resident_bytes {
            single(
                &mut encoder,
                "process_resident_memory",
                "Resident memory of the daemon.",
                Some(&Unit::Bytes),
                &ConstGauge::new(bytes as f64),
            )?;
        }
        if let Some(seconds) = p.cpu_seconds {
            single(
                &mut encoder,
                "process_cpu",
                "User and system CPU time the daemon used.",
                Some(&Unit::Seconds),
                &ConstCounter::new(seconds),
            )?;
        }
        if let Some(fds) = p.open_fds {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors.",
                fds as f64,
            )?;
        }
        if let Some(fds) = p.max_fds {
            gauge(
                &mut encoder,
                "process_max_fds",
                "The limit of open file descriptors.",
                fds as f64,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
