//! Environment overrides of the config: `LYMPHD_<SECTION>_<KEY>` for the
//! settings an operator changes per host without editing the file.

use std::time::Duration;

use super::{Config, ConfigError};

/// Applies the overrides found by `lookup` (the process environment in
/// production, a map in tests).
pub fn apply_env(
    config: &mut Config,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if let Some(v) = lookup("LYMPHD_LOG") {
        config.log.level = v;
    }
    if let Some(v) = lookup("LYMPHD_RUNTIME_WORKERS") {
        config.runtime.workers = parse("LYMPHD_RUNTIME_WORKERS", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_RPC_DEFAULT_TIMEOUT") {
        config.rpc.default_timeout = duration("LYMPHD_RPC_DEFAULT_TIMEOUT", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_RPC_MAX_BODY_BYTES") {
        config.rpc.max_body_bytes = parse("LYMPHD_RPC_MAX_BODY_BYTES", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_APPS_DEFAULT_CONCURRENCY") {
        config.apps.default_concurrency = parse("LYMPHD_APPS_DEFAULT_CONCURRENCY", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_RPC_IP") {
        config.rpc.ip = v.trim().to_owned();
    }
    if let Some(v) = lookup("LYMPHD_RPC_PORT") {
        config.rpc.port = parse("LYMPHD_RPC_PORT", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_WEB_IP") {
        config.web.ip = v.trim().to_owned();
    }
    if let Some(v) = lookup("LYMPHD_WEB_TIMEOUT") {
        config.web.timeout = duration("LYMPHD_WEB_TIMEOUT", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_METRICS_LISTEN") {
        config.metrics.listen = read("LYMPHD_METRICS_LISTEN", &v, super::parse_metrics_listen)?;
    }
    if let Some(v) = lookup("LYMPHD_TRACING_OTLP_ENDPOINT") {
        config.tracing.otlp_endpoint = read(
            "LYMPHD_TRACING_OTLP_ENDPOINT",
            &v,
            super::parse_otlp_endpoint,
        )?;
    }
    if let Some(v) = lookup("LYMPHD_TRACING_SAMPLE_RATIO") {
        config.tracing.sample_ratio = parse("LYMPHD_TRACING_SAMPLE_RATIO", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_LOG_PUBLISH") {
        config.log.publish = parse("LYMPHD_LOG_PUBLISH", &v)?;
    }
    // Naming ZooKeeper hosts switches the registry to ZooKeeper.
    if let Some(hosts) = lookup("LYMPHD_ZOOKEEPER_HOSTS").filter(|h| !h.trim().is_empty()) {
        match &mut config.registry {
            super::RegistryConfig::Zookeeper(zk) => zk.hosts = hosts,
            other => {
                *other = super::RegistryConfig::Zookeeper(super::ZookeeperSettings {
                    hosts,
                    session_timeout: super::default_session_timeout(),
                    connect_timeout: super::default_zk_connect_timeout(),
                });
            }
        }
    }
    // Naming a RabbitMQ URL switches events to RabbitMQ.
    if let Some(url) = lookup("LYMPHD_AMQP_URL").filter(|u| !u.trim().is_empty()) {
        match &mut config.events {
            super::EventsConfig::Amqp(amqp) => amqp.url = url,
            other => *other = super::EventsConfig::Amqp(super::AmqpSettings::from_url(url)),
        }
    }
    if let Some(v) = lookup("LYMPHD_AMQP_MODE") {
        let super::EventsConfig::Amqp(amqp) = &mut config.events else {
            return Err(ConfigError::Env {
                name: "LYMPHD_AMQP_MODE",
                value: v,
                message: "events are not on RabbitMQ (set events.backend: amqp or LYMPHD_AMQP_URL)"
                    .to_owned(),
            });
        };
        amqp.mode = match v.trim() {
            "lymph" => super::AmqpModeSetting::Lymph,
            "durable" => super::AmqpModeSetting::Durable,
            _ => {
                return Err(ConfigError::Env {
                    name: "LYMPHD_AMQP_MODE",
                    value: v,
                    message: "expected lymph or durable".to_owned(),
                });
            }
        };
    }
    if let Some(v) = lookup("LYMPHD_RUNTIME_FD_RESERVE") {
        config.runtime.fd_reserve = parse("LYMPHD_RUNTIME_FD_RESERVE", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_RPC_PEER_QUEUE_BYTES") {
        config.rpc.peer_queue_bytes = parse("LYMPHD_RPC_PEER_QUEUE_BYTES", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_RPC_PEER_WRITE_TIMEOUT") {
        config.rpc.peer_write_timeout = duration("LYMPHD_RPC_PEER_WRITE_TIMEOUT", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_RPC_IDLE_TIMEOUT") {
        config.rpc.idle_timeout = duration("LYMPHD_RPC_IDLE_TIMEOUT", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_RPC_MAX_CONNECTIONS") {
        config.rpc.max_connections = parse("LYMPHD_RPC_MAX_CONNECTIONS", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_RPC_ALLOWED_PEERS") {
        config.rpc.allowed_peers = networks("LYMPHD_RPC_ALLOWED_PEERS", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_APPS_MAX_CONNECTIONS") {
        config.apps.max_connections = parse("LYMPHD_APPS_MAX_CONNECTIONS", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_APPS_HELLO_TIMEOUT") {
        config.apps.hello_timeout = duration("LYMPHD_APPS_HELLO_TIMEOUT", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_APPS_ALLOWED_UIDS") {
        config.apps.allowed_uids = ids("LYMPHD_APPS_ALLOWED_UIDS", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_APPS_ALLOWED_GIDS") {
        config.apps.allowed_gids = ids("LYMPHD_APPS_ALLOWED_GIDS", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_WEB_MAX_CONNECTIONS") {
        config.web.max_connections = parse("LYMPHD_WEB_MAX_CONNECTIONS", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_WEB_HEADER_TIMEOUT") {
        config.web.header_timeout = duration("LYMPHD_WEB_HEADER_TIMEOUT", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_WEB_BODY_TIMEOUT") {
        config.web.body_timeout = duration("LYMPHD_WEB_BODY_TIMEOUT", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_LOG_MAX_SUBSCRIBERS") {
        config.log.max_subscribers = parse("LYMPHD_LOG_MAX_SUBSCRIBERS", &v)?;
    }
    if let Some(v) = lookup("LYMPHD_SHUTDOWN_GRACE_PERIOD") {
        config.shutdown.grace_period = duration("LYMPHD_SHUTDOWN_GRACE_PERIOD", &v)?;
    }
    Ok(())
}

/// `value` read by `reader`, the setting's own parser (the one its value
/// in the file goes through too).
fn read<T>(
    name: &'static str,
    value: &str,
    reader: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    reader(value).map_err(|message| ConfigError::Env {
        name,
        value: value.to_owned(),
        message,
    })
}

fn parse<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e: T::Err| ConfigError::Env {
        name,
        value: value.to_owned(),
        message: e.to_string(),
    })
}

/// A comma-separated list of networks (`10.0.0.0/8, 127.0.0.1`); empty means any.
fn networks(name: &'static str, value: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            super::parse_network(item).map_err(|message| ConfigError::Env {
                name,
                value: value.to_owned(),
                message,
            })
        })
        .collect()
}

/// A comma-separated list of numeric uids or gids (`1001,1002`); empty means any.
fn ids(name: &'static str, value: &str) -> Result<Vec<u32>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<u32>().map_err(|e| ConfigError::Env {
                name,
                value: value.to_owned(),
                message: format!("{item:?}: {e} (numeric ids, comma-separated: 1001,1002)"),
            })
        })
        .collect()
}

fn duration(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| ConfigError::Env {
        name,
        value: value.to_owned(),
        message: format!("{e} (write durations like 3s or 500ms)"),
    })
}
