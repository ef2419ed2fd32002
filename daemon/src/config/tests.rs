//! Tests of the config: defaults, conf/lymphd.yml, parsing errors, environment overrides.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::*;

#[test]
fn conf_lymphd_yml_is_exactly_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/lymphd.yml");
    let text = std::fs::read_to_string(&path).expect("conf/lymphd.yml exists");
    let parsed = Config::from_yaml(&text, &path).expect("conf/lymphd.yml parses");
    assert_eq!(parsed, Config::default());
}

#[test]
fn empty_file_is_the_defaults() {
    let parsed = Config::from_yaml("\n# nothing\n", Path::new("x.yml")).expect("parses");
    assert_eq!(parsed, Config::default());
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let err = Config::from_yaml("rpc:\n  default_timout: 3s\n", Path::new("x.yml"))
        .expect_err("typo must be refused");
    assert!(err.to_string().contains("default_timout"), "{err}");
}

#[test]
fn durations_are_humane() {
    let parsed =
        Config::from_yaml("rpc:\n  default_timeout: 250ms\n", Path::new("x.yml")).expect("ok");
    assert_eq!(parsed.rpc.default_timeout, Duration::from_millis(250));
}

#[test]
fn bad_yaml_names_the_file() {
    let err = Config::from_yaml("rpc: [unclosed\n", Path::new("/etc/x.yml")).expect_err("bad");
    assert!(err.to_string().contains("/etc/x.yml"), "{err}");
}

#[test]
fn env_overrides_and_rejects_garbage() {
    let env: HashMap<&str, &str> = [
        ("LYMPHD_RPC_DEFAULT_TIMEOUT", "1s"),
        ("LYMPHD_APPS_DEFAULT_CONCURRENCY", "8"),
    ]
    .into();
    let mut config = Config::default();
    apply_env(&mut config, |k| env.get(k).map(|v| (*v).to_owned())).expect("valid");
    assert_eq!(config.rpc.default_timeout, Duration::from_secs(1));
    assert_eq!(config.apps.default_concurrency, 8);

    let err = apply_env(&mut config, |k| {
        (k == "LYMPHD_RUNTIME_WORKERS").then(|| "many".to_owned())
    })
    .expect_err("not a number");
    assert!(err.to_string().contains("LYMPHD_RUNTIME_WORKERS"), "{err}");
}

#[test]
fn validation_catches_inconsistent_limits() {
    let mut config = Config::default();
    config.apps.default_concurrency = config.apps.max_concurrency + 1;
    assert!(config.validate().is_err());
}

#[test]
fn zookeeper_registry_from_file_and_env() {
    let parsed = Config::from_yaml(
        "registry:\n  backend: zookeeper\n  hosts: 127.0.0.1:2181/lymph\n",
        Path::new("x.yml"),
    )
    .expect("parses");
    let RegistryConfig::Zookeeper(zk) = &parsed.registry else {
        panic!("zookeeper expected: {parsed:?}");
    };
    assert_eq!(zk.hosts, "127.0.0.1:2181/lymph");
    assert_eq!(zk.session_timeout, Duration::from_secs(10));

    let mut config = Config::default();
    apply_env(&mut config, |k| match k {
        "LYMPHD_ZOOKEEPER_HOSTS" => Some("127.0.0.2:2181".to_owned()),
        "LYMPHD_RPC_IP" => Some("127.0.0.2".to_owned()),
        "LYMPHD_RPC_PORT" => Some("4010".to_owned()),
        _ => None,
    })
    .expect("valid");
    assert_eq!(config.registry_name(), "zookeeper");
    assert_eq!(config.rpc.ip, "127.0.0.2");
    assert_eq!(config.rpc.port, 4010);
    assert!(config.validate().is_ok());
}

#[test]
fn a_bad_rpc_ip_is_refused() {
    let mut config = Config::default();
    config.rpc.ip = "localhost:1".to_owned();
    assert!(config.validate().is_err());
}

#[test]
fn amqp_events_from_file_and_env() {
    let parsed = Config::from_yaml(
        "events:\n  backend: amqp\n  url: amqp://127.0.0.1:5672/test\n  mode: durable\n",
        Path::new("x.yml"),
    )
    .expect("parses");
    let EventsConfig::Amqp(amqp) = &parsed.events else {
        panic!("amqp expected: {parsed:?}");
    };
    assert_eq!(amqp.mode, AmqpModeSetting::Durable);
    assert_eq!(amqp.exchange, "lymph");
    assert!(parsed.validate().is_ok());

    let mut config = Config::default();
    apply_env(&mut config, |k| match k {
        "LYMPHD_AMQP_URL" => Some("amqp://127.0.0.2:5672/%2f".to_owned()),
        "LYMPHD_AMQP_MODE" => Some("durable".to_owned()),
        _ => None,
    })
    .expect("valid");
    assert_eq!(config.events_name(), "amqp (durable)");

    let mut config = Config::default();
    let err = apply_env(&mut config, |k| {
        (k == "LYMPHD_AMQP_MODE").then(|| "durable".to_owned())
    })
    .expect_err("mode without amqp");
    assert!(err.to_string().contains("LYMPHD_AMQP_MODE"), "{err}");
}

#[test]
fn amqps_urls_are_refused_clearly() {
    let parsed = Config::from_yaml(
        "events:\n  backend: amqp\n  url: amqps://broker:5671/\n",
        Path::new("x.yml"),
    )
    .expect("parses");
    let err = parsed.validate().expect_err("amqps");
    assert!(err.to_string().contains("amqp://"), "{err}");
}

#[test]
fn web_and_log_settings_from_env() {
    let mut config = Config::default();
    apply_env(&mut config, |k| match k {
        "LYMPHD_WEB_IP" => Some("0.0.0.0".to_owned()),
        "LYMPHD_WEB_TIMEOUT" => Some("5s".to_owned()),
        "LYMPHD_LOG_PUBLISH" => Some("false".to_owned()),
        _ => None,
    })
    .expect("valid");
    assert_eq!(config.web.ip, "0.0.0.0");
    assert_eq!(config.web.timeout, Duration::from_secs(5));
    assert!(!config.log.publish);
    let bad = apply_env(&mut Config::default(), |k| {
        (k == "LYMPHD_LOG_PUBLISH").then(|| "maybe".to_owned())
    });
    assert!(bad.is_err_and(|e| e.to_string().contains("LYMPHD_LOG_PUBLISH")));
}

#[test]
fn edge_bounds_have_env_overrides_and_networks_parse() {
    let env: HashMap<&str, &str> = [
        ("LYMPHD_WEB_BODY_TIMEOUT", "2s"),
        ("LYMPHD_RPC_IDLE_TIMEOUT", "5s"),
        ("LYMPHD_RPC_MAX_CONNECTIONS", "10"),
        ("LYMPHD_RPC_ALLOWED_PEERS", "10.0.0.0/8, 127.0.0.1,::1"),
        ("LYMPHD_APPS_MAX_CONNECTIONS", "7"),
        ("LYMPHD_LOG_MAX_SUBSCRIBERS", "3"),
        ("LYMPHD_RUNTIME_FD_RESERVE", "100"),
    ]
    .into();
    let mut config = Config::default();
    apply_env(&mut config, |k| env.get(k).map(|v| (*v).to_owned())).expect("valid");
    assert_eq!(config.web.body_timeout, Duration::from_secs(2));
    assert_eq!(config.rpc.idle_timeout, Duration::from_secs(5));
    assert_eq!(config.rpc.max_connections, 10);
    let nets: Vec<String> = config
        .rpc
        .allowed_peers
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
    assert_eq!(config.apps.max_connections, 7);
    assert_eq!(config.log.max_subscribers, 3);
    assert_eq!(config.runtime.fd_reserve, 100);
    config.validate().expect("valid");

    let err = apply_env(&mut config, |k| {
        (k == "LYMPHD_RPC_ALLOWED_PEERS").then(|| "10.0.0.0/33".to_owned())
    })
    .expect_err("not a network");
    assert!(
        err.to_string().contains("LYMPHD_RPC_ALLOWED_PEERS"),
        "{err}"
    );

    let yaml = "rpc:\n  allowed_peers: [192.168.1.7/24, 127.0.0.1]\n";
    let parsed = Config::from_yaml(yaml, Path::new("x.yml")).expect("parses");
    assert_eq!(parsed.rpc.allowed_peers[0].to_string(), "192.168.1.0/24");
    let err = Config::from_yaml("rpc:\n  allowed_peers: [nope]\n", Path::new("x.yml"))
        .expect_err("bad network");
    assert!(err.to_string().contains("nope"), "{err}");

    let mut zero = Config::default();
    zero.web.max_connections = 0;
    let err = zero.validate().expect_err("zero connections");
    assert!(err.to_string().contains("web.max_connections"), "{err}");
}

#[test]
fn a_body_limit_past_what_an_app_stream_carries_is_refused() {
    let mut config = Config::default();
    config.rpc.max_body_bytes = 70 * 1024 * 1024;
    config.rpc.max_frame_bytes = 71 * 1024 * 1024;
    config.rpc.max_message_bytes = 72 * 1024 * 1024;
    let err = config
        .validate()
        .expect_err("above the stream's message limit");
    assert!(err.to_string().contains("rpc.max_body_bytes"), "{err}");
    config.rpc.max_body_bytes = MAX_BODY_CEILING;
    config.validate().expect("the ceiling itself is fine");
}

#[test]
fn settings_out_of_range_are_refused_naming_the_key() {
    let env: HashMap<&str, &str> = [("LYMPHD_RUNTIME_WORKERS", "100000")].into();
    let mut config = Config::default();
    apply_env(&mut config, |k| env.get(k).map(|v| (*v).to_owned())).expect("a number");
    let err = config.validate().expect_err("too many workers");
    assert!(err.to_string().contains("runtime.workers"), "{err}");
    config.runtime.workers = MAX_WORKERS;
    config.validate().expect("the maximum itself is fine");

    let yaml = "rpc:\n  connect_timeout: 0s\n";
    let zero = Config::from_yaml(yaml, Path::new("x.yml")).expect("parses");
    let err = zero.validate().expect_err("a zero timeout");
    assert!(err.to_string().contains("rpc.connect_timeout"), "{err}");
}

#[test]
fn access_lists_from_file_and_env_and_services_name_someone() {
    let yaml = "apps:\n  allowed_uids: [1001, 0]\n  allowed_gids: [2000]\n\
                services:\n  Greeting: {uids: [1001]}\n  Echo:\n    gids: [3000]\n";
    let parsed = Config::from_yaml(yaml, Path::new("x.yml")).expect("parses");
    assert_eq!(parsed.apps.allowed_uids, [1001, 0]);
    assert_eq!(parsed.apps.allowed_gids, [2000]);
    assert_eq!(parsed.services["Greeting"].uids, [1001]);
    assert_eq!(parsed.services["Echo"].gids, [3000]);
    parsed.validate().expect("valid");

    let env: HashMap<&str, &str> = [
        ("LYMPHD_APPS_ALLOWED_UIDS", " 1001,1002 "),
        ("LYMPHD_APPS_ALLOWED_GIDS", ""),
    ]
    .into();
    let mut config = parsed.clone();
    apply_env(&mut config, |k| env.get(k).map(|v| (*v).to_owned())).expect("valid");
    assert_eq!(config.apps.allowed_uids, [1001, 1002]);
    assert!(config.apps.allowed_gids.is_empty(), "empty: anyone");
    let err = apply_env(&mut config, |k| {
        (k == "LYMPHD_APPS_ALLOWED_UIDS").then(|| "1001,alice".to_owned())
    })
    .expect_err("not numeric");
    assert!(
        err.to_string().contains("LYMPHD_APPS_ALLOWED_UIDS"),
        "{err}"
    );

    let nobody = Config::from_yaml("services:\n  Echo: {}\n", Path::new("x.yml")).expect("parses");
    let err = nobody.validate().expect_err("an entry naming nobody");
    assert!(err.to_string().contains("services.Echo"), "{err}");
    let err = Config::from_yaml("services:\n  Echo: {users: [1]}\n", Path::new("x.yml"))
        .expect_err("unknown key");
    assert!(err.to_string().contains("users"), "{err}");
    let err = Config::from_yaml("apps:\n  allowed_uids: [-1]\n", Path::new("x.yml"))
        .expect_err("not a uid");
    assert!(err.to_string().contains("x.yml"), "{err}");
}

/// A parse error names the file and the key path, on one line, once.
#[test]
fn parse_errors_name_file_and_key_once() {
    let err = Config::from_yaml("rpc:\n  default_timeout: 3x\n", Path::new("/etc/l.yml"))
        .expect_err("not a duration");
    let text = err.to_string();
    assert!(
        text.starts_with("invalid config file /etc/l.yml: rpc.default_timeout: "),
        "{text}"
    );
    assert!(text.contains("\"3x\"") && text.contains("line 2"), "{text}");
    assert!(!text.contains('\n'), "{text}");
    assert_eq!(text.matches("expected a duration").count(), 1, "{text}");

    let nested = Config::from_yaml(
        "services:\n  Greeting:\n    uids: [x]\n",
        Path::new("l.yml"),
    )
    .expect_err("not a uid");
    assert!(
        nested
            .to_string()
            .starts_with("invalid config file l.yml: services.Greeting.uids[0]: "),
        "{nested}"
    );
    let typo =
        Config::from_yaml("rpc:\n  default_timout: 3s\n", Path::new("l.yml")).expect_err("typo");
    assert!(
        typo.to_string()
            .starts_with("invalid config file l.yml: rpc.default_timout: unknown field"),
        "{typo}"
    );
}

/// A refused value names where the config came from.
#[test]
fn invalid_values_name_the_file_and_the_overrides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("l.yml");
    std::fs::write(&path, "rpc:\n  default_timeout: 10m\n").expect("write");
    let text = Config::load(Some(&path))
        .expect_err("over max_timeout")
        .to_string();
    assert_eq!(
        text,
        format!(
            "invalid config file {}: rpc.default_timeout must not exceed rpc.max_timeout",
            path.display()
        )
    );
    assert_eq!(
        origin(
            Some(Path::new("l.yml")),
            &["LYMPHD_RPC_DEFAULT_TIMEOUT".to_owned()]
        )
        .as_deref(),
        Some("(file l.yml, environment LYMPHD_RPC_DEFAULT_TIMEOUT)")
    );
    assert_eq!(
        origin(None, &["LYMPHD_LOG".to_owned()]).as_deref(),
        Some("(environment LYMPHD_LOG)")
    );
    assert_eq!(origin(None, &[]), None);
}
