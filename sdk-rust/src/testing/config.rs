//! Configs written in the test itself, as YAML text or as a value (e.g.
//! `serde_json::json!`): the daemon's (`lymphd::Config`) and the app's
//! (`FileConfig`), checked as their files would be.

use std::path::Path;

use serde::{Deserialize as _, Serialize};

use super::TestingError;
use crate::FileConfig;

/// Where in-test configs say they come from, in errors.
const ORIGIN: &str = "<test config>";

/// The app's config (lymph's shape: `interfaces: {Name: {...}}`, `http_port:`,
/// ...) from YAML text, for [`Service::config`](crate::Service::config).
///
/// ```no_run
/// # use lymph::testing::{TestDaemon, service_config};
/// # #[derive(Default)] struct Greeting;
/// # #[lymph::interface] impl Greeting { #[rpc] fn greet(&self, name: String) -> Result<String, lymph::Error> { Ok(name) } }
/// # async fn demo(daemon: &TestDaemon) -> Result<(), lymph::testing::TestingError> {
/// let config = service_config("interfaces:\n  Greeting:\n    greeting: Hello\n")?;
/// let _greeting = daemon.serve(daemon.service().config(config).interface(Greeting)).await?;
/// # Ok(()) }
/// ```
pub fn service_config(yaml: &str) -> Result<FileConfig, TestingError> {
    FileConfig::parse(Path::new(ORIGIN), yaml).map_err(|e| TestingError::Config(e.to_string()))
}

/// The app's config from a value of the same shape as [`service_config`]'s YAML.
///
/// ```
/// let config = lymph::testing::service_config_value(
///     serde_json::json!({"interfaces": {"Greeting": {"greeting": "Hello"}}}),
/// )?;
/// assert_eq!(config.section("Greeting"), serde_json::json!({"greeting": "Hello"}));
/// # Ok::<(), lymph::testing::TestingError>(())
/// ```
pub fn service_config_value(value: impl Serialize) -> Result<FileConfig, TestingError> {
    // JSON is YAML: the value goes through the file parser and its checks.
    let text = serde_json::to_string(&value).map_err(|e| TestingError::Config(e.to_string()))?;
    service_config(&text)
}

/// The daemon's config from YAML text (`conf/lymphd.yml`'s shape), validated.
pub(crate) fn daemon_config_yaml(yaml: &str) -> Result<lymphd::Config, TestingError> {
    let config = lymphd::Config::from_yaml(yaml, Path::new(ORIGIN))
        .map_err(|e| TestingError::Config(lymphd::error_chain(&e)))?;
    validated(config)
}

/// The daemon's config from a value of the same shape, validated.
pub(crate) fn daemon_config_value(value: impl Serialize) -> Result<lymphd::Config, TestingError> {
    let value = serde_json::to_value(value).map_err(|e| TestingError::Config(e.to_string()))?;
    let config = if value.is_null() {
        lymphd::Config::default()
    } else {
        lymphd::Config::deserialize(value)
            .map_err(|e| TestingError::Config(format!("{ORIGIN}: {e}")))?
    };
    validated(config)
}

pub(crate) fn validated(config: lymphd::Config) -> Result<lymphd::Config, TestingError> {
    config
        .validate()
        .map_err(|e| TestingError::Config(lymphd::error_chain(&e)))?;
    Ok(config)
}
