//! The outer bound of every count setting (connections, queue slots,
//! permits): at most [`MAX_COUNT`], since a semaphore or channel of an
//! absurd size cannot be made and would stop the daemon later, not at start.

use super::{Config, ConfigError, EventsConfig};

/// The largest count any setting may name (2^24).
pub const MAX_COUNT: usize = 1 << 24;

/// Every count setting with its key (byte sizes have ceilings of their own).
fn counts(config: &Config) -> Vec<(&'static str, usize)> {
    let wide = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
    let mut all = vec![
        ("rpc.incoming_queue", config.rpc.incoming_queue),
        ("rpc.max_connections", config.rpc.max_connections),
        (
            "apps.default_concurrency",
            wide(config.apps.default_concurrency),
        ),
        ("apps.max_concurrency", wide(config.apps.max_concurrency)),
        ("apps.max_outgoing", wide(config.apps.max_outgoing)),
        ("apps.outbox_capacity", config.apps.outbox_capacity),
        ("apps.max_connections", config.apps.max_connections),
        ("web.max_connections", config.web.max_connections),
        ("log.max_subscribers", config.log.max_subscribers),
        ("metrics.max_connections", config.metrics.max_connections),
        ("tracing.queue", config.tracing.queue),
    ];
    match &config.events {
        EventsConfig::Embedded { queue_limit } => all.push(("events.queue_limit", *queue_limit)),
        EventsConfig::Amqp(amqp) => all.push(("events.confirm_window", amqp.confirm_window)),
    }
    all
}

/// Refuses the first count past [`MAX_COUNT`], naming its key.
pub(super) fn check(config: &Config) -> Result<(), ConfigError> {
    for (key, value) in counts(config) {
        if value > MAX_COUNT {
            return Err(ConfigError::Invalid(format!(
                "{key} {value} is out of range: at most {MAX_COUNT}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_count_is_refused_naming_the_key() {
        assert!(check(&Config::default()).is_ok());
        let mut config = Config::default();
        config.apps.outbox_capacity = usize::MAX;
        let e = check(&config).expect_err("refused").to_string();
        assert!(e.contains("apps.outbox_capacity"), "{e}");
        let config = Config {
            events: EventsConfig::Embedded {
                queue_limit: MAX_COUNT + 1,
            },
            ..Config::default()
        };
        assert!(check(&config).is_err());
    }
}
