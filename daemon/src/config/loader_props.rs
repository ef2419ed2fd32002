//! Properties of the config loader on random and mutated YAML and
//! environment overrides (through the fuzzer's entry, `crate::fuzz::config`):
//! no panic; either a config that passes `validate` and is usable, or a
//! `ConfigError` naming the file, the variable or the problem.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::{Config, ConfigError, MAX_DURATION};
use crate::fuzz::{self, Rng, mutate};

#[test]
fn the_seeds_load() {
    for seed in fuzz::seeds::config() {
        assert_eq!(fuzz::config(&seed, &[]), Ok(()), "{seed}");
    }
}

/// Regression: a duration past what a clock can add (humantime takes up to
/// 2^64 s) passed validation; the daemon then panicked computing a deadline
/// (`shutdown.grace_period` on SIGTERM, `web.timeout` per request).
#[test]
fn durations_past_a_year_are_refused_naming_the_key() {
    for (yaml, key) in [
        (
            "shutdown:\n  grace_period: 18446744073709551615s\n",
            "shutdown.grace_period",
        ),
        ("web:\n  timeout: 400days\n", "web.timeout"),
        ("rpc:\n  max_timeout: 1000y\n", "rpc.max_timeout"),
    ] {
        let config = Config::from_yaml(yaml, Path::new("x.yml")).expect("parses");
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains(key), "{error}");
    }
    let mut config = Config::default();
    config.shutdown.grace_period = MAX_DURATION;
    config.validate().expect("a year is still taken");
    let env = [(
        "LYMPHD_SHUTDOWN_GRACE_PERIOD".to_owned(),
        "500years".to_owned(),
    )];
    let error = fuzz::config("", &env).expect_err("refused");
    assert!(error.contains("shutdown.grace_period"), "{error}");
}

/// Regression: a `log.level` (or `LYMPHD_LOG`) directive with leading spaces
/// and a multi-byte character panicked in tracing-subscriber's parser
/// (exit 101 instead of 64); non-ASCII filters are refused.
#[test]
fn a_non_ascii_log_filter_is_refused_not_a_panic() {
    for level in [" x\u{e9}[y", "info, \u{e9}=debug", "lymphd=d\u{e9}bug"] {
        let env = [("LYMPHD_LOG".to_owned(), level.to_owned())];
        let error = fuzz::config("", &env).expect_err("refused");
        assert!(error.contains("log.level"), "{error}");
    }
}

/// Keys the loader knows, by section, to build YAML that gets past the
/// unknown-key check and reaches the values' parsing and validation.
const KEYS: &[(&str, &[&str])] = &[
    (
        "rpc",
        &[
            "default_timeout",
            "max_timeout",
            "max_body_bytes",
            "ip",
            "port",
            "heartbeat_interval",
            "unresponsive_after",
            "max_frame_bytes",
            "max_message_bytes",
            "idle_timeout",
            "allowed_peers",
            "max_connections",
        ],
    ),
    (
        "apps",
        &[
            "default_concurrency",
            "max_concurrency",
            "hello_timeout",
            "max_connections",
        ],
    ),
    (
        "web",
        &["ip", "timeout", "header_timeout", "max_connections"],
    ),
    ("runtime", &["workers", "fd_reserve"]),
    ("shutdown", &["grace_period"]),
    ("log", &["level", "format", "publish", "max_subscribers"]),
    ("registry", &["backend", "hosts", "session_timeout"]),
    (
        "events",
        &[
            "backend",
            "url",
            "mode",
            "queue_limit",
            "confirm_window",
            "exchange",
        ],
    ),
];

/// Values at the edges: zero, negative, huge, wrong types, durations.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "1024",
    "1025",
    "65536",
    "18446744073709551615",
    "18446744073709551616",
    "1e9",
    "3s",
    "0s",
    "250ms",
    "1000y",
    "18446744073709551615s",
    "abc",
    "''",
    "~",
    "[]",
    "{}",
    "[10.0.0.0/8, '::1']",
    "[999.0.0.1]",
    "127.0.0.1",
    "'::'",
    "zookeeper",
    "amqp",
    "embedded",
    "durable",
    "json",
    "debug,lymphd=[",
    "true",
    "&a 5",
    "*a",
    "!!binary aGk=",
];

fn yaml_like() -> impl Strategy<Value = String> {
    let entry = (0..KEYS.len(), any::<usize>(), 0..VALUES.len());
    proptest::collection::vec(entry, 0..8).prop_map(|entries| {
        let mut text = String::new();
        for (section, key, value) in entries {
            let (name, keys) = KEYS[section];
            let key = keys[key % keys.len()];
            text.push_str(&format!("{name}:\n  {key}: {}\n", VALUES[value]));
        }
        text
    })
}

fn env_like() -> impl Strategy<Value = Vec<(String, String)>> {
    let pair = (0..fuzz::ENV_NAMES.len(), 0..VALUES.len());
    proptest::collection::vec(pair, 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(name, value)| (fuzz::ENV_NAMES[name].to_owned(), VALUES[value].to_owned()))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_configs_load_or_say_why(yaml in yaml_like(), env in env_like()) {
        let _ = fuzz::config(&yaml, &env);
    }

    #[test]
    fn mutated_configs(seed in any::<u64>(), which in 0usize..4) {
        let seeds = fuzz::seeds::config();
        let bytes = mutate(&mut Rng::new(seed), seeds[which % seeds.len()].as_bytes());
        let _ = fuzz::config(&String::from_utf8_lossy(&bytes), &[]);
    }

    #[test]
    fn random_text(text in "\\PC{0,120}") {
        let _ = fuzz::config(&text, &[]);
    }

    /// Whatever the value of a duration, it loads within the range or is
    /// refused naming its key.
    #[test]
    fn any_duration_loads_in_range_or_is_refused(secs in any::<u64>(), key in 0usize..3) {
        let (section, name) = [("web", "timeout"), ("shutdown", "grace_period"), ("rpc", "idle_timeout")][key];
        let yaml = format!("{section}:\n  {name}: {secs}s\n");
        match Config::from_yaml(&yaml, Path::new("x.yml")).map(|c| c.validate().map(|()| c)) {
            Ok(Ok(config)) => prop_assert!(config.durations().iter().all(|(_, d)| *d <= MAX_DURATION)),
            Ok(Err(ConfigError::Invalid(message))) => prop_assert!(
                message.contains(&format!("{section}.{name}")) || Duration::from_secs(secs) <= MAX_DURATION,
                "{}", message
            ),
            other => prop_assert!(false, "{:?}", other.map(|_| ())),
        }
    }
}
