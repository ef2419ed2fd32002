//! `/metrics` as operators use it: scraped over HTTP by a real Prometheus
//! (Debian's, installed by `scripts/services`, started here on a port of its
//! own with a 1 s scrape interval), which counts every call; the endpoint's
//! answers to anything else; `off`; and a taken port, which is a warning.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Proc, TestDaemon, outcome, text, wait_until};
use crate::web::{free_port, get, http};

const WAIT: Duration = Duration::from_secs(30);

/// The address `lymphctl status` gives for `/metrics` (empty: none).
pub(crate) fn metrics_listen(daemon: &TestDaemon) -> String {
    let out = daemon.ctl(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_str(&text(&out.stdout)).expect("json status");
    status["metrics_listen"]
        .as_str()
        .expect("a metrics_listen field")
        .to_owned()
}

pub(crate) fn port_of(address: &str) -> u16 {
    address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address:?}"))
}

/// The value of the exposition line for `series` (its name and labels).
fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

/// Prometheus on a free port, scraping `target` every second.
fn start_prometheus(dir: &Path, target: &str) -> (Proc, u16) {
    let prometheus = which("prometheus").unwrap_or_else(|| {
        panic!("no prometheus binary: run scripts/services (it installs Debian's prometheus)")
    });
    let port = free_port();
    let config = dir.join("prometheus.yml");
    let yaml = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: lymphd\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(&config, yaml).expect("write prometheus.yml");
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    (Proc::spawn("prometheus", cmd, dir), port)
}

fn which(binary: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(binary))
        .find(|path| path.is_file())
}

/// The one value of an instant PromQL query (None: no series, or Prometheus
/// not answering yet).
fn query(port: u16, promql: &str) -> Option<f64> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let reply = http(port, "GET", &format!("/api/v1/query?query={encoded}"), "").ok()?;
    let answer: Value = serde_json::from_str(&reply.body).ok()?;
    let result = answer["data"]["result"].as_array()?.first()?.clone();
    result["value"][1].as_str()?.parse().ok()
}

#[tokio::test]
async fn a_real_prometheus_counts_every_call() {
    let daemon = TestDaemon::start();
    let _greeting = daemon.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    daemon.wait_for_instances("Greeting", 1).await;
    let listen = metrics_listen(&daemon);
    let (_prometheus, prometheus_port) = start_prometheus(daemon.dir.path(), &listen);

    let calls = 7;
    for n in 0..calls {
        let reply = daemon
            .call("Greeting", "greet", json!({"name": format!("p{n}")}), 5_000)
            .await;
        outcome(&reply).expect("greet");
    }
    let promql =
        r#"sum(rpc_client_call_duration_seconds_count{job="lymphd",rpc_method="Greeting.greet"})"#;
    wait_until("Prometheus to have scraped every call", WAIT, || {
        query(prometheus_port, promql) == Some(f64::from(calls))
    });
    // The daemon's own view agrees, and is typed for Prometheus.
    let scrape = get(port_of(&listen), "/metrics");
    assert_eq!(scrape.status, 200);
    let media = scrape.header("content-type").unwrap_or_default();
    assert!(media.starts_with("application/openmetrics-text"), "{media}");
    let series = r#"rpc_client_call_duration_seconds_count{rpc_system_name="lymph",rpc_method="Greeting.greet"}"#;
    assert_eq!(
        value(&scrape.body, series),
        Some(f64::from(calls)),
        "{}",
        scrape.body
    );
    assert_eq!(value(&scrape.body, "lymphd_apps"), Some(1.0));
    assert_eq!(query(prometheus_port, "up{job=\"lymphd\"}"), Some(1.0));
}

#[tokio::test]
async fn the_endpoint_answers_only_get_metrics() {
    let daemon = TestDaemon::start();
    let port = port_of(&metrics_listen(&daemon));
    assert_eq!(get(port, "/").status, 404);
    assert_eq!(get(port, "/metrics/x").status, 404);
    let post = http(port, "POST", "/metrics", "content-length: 0\r\n").expect("post");
    assert_eq!(post.status, 405);
    // A client that sends nothing is cut by metrics.timeout's default (10 s)
    // at the latest; the daemon serves on meanwhile.
    let _idle = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    assert_eq!(get(port, "/metrics").status, 200);
}

#[tokio::test]
async fn off_opens_no_port() {
    let daemon = TestDaemon::start_with_env(&[], &[("LYMPHD_METRICS_LISTEN", "off")]);
    assert_eq!(metrics_listen(&daemon), "");
    let out = daemon.ctl(&["status"]);
    assert!(
        text(&out.stdout).contains("metrics:   off"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn a_taken_port_is_a_warning_not_a_failed_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let daemon = TestDaemon::start_with_env(&[], &[("LYMPHD_METRICS_LISTEN", &address)]);
    assert_eq!(metrics_listen(&daemon), "", "serving without /metrics");
    wait_until("the warning naming the port", WAIT, || {
        daemon
            .proc
            .output_lines()
            .iter()
            .any(|l| l.contains("WARN") && l.contains(&address) && l.contains("metrics.listen"))
    });
    let out = daemon.ctl(&["request", "lymph.ping", r#"{"payload": "up"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn a_bad_address_fails_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(crate::harness::bin("lymphd"));
    cmd.arg("--socket")
        .arg(dir.path().join("lymphd.sock"))
        .env("LYMPHD_METRICS_LISTEN", "localhost");
    let out = crate::harness::run_bounded(cmd, Duration::from_secs(30));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("LYMPHD_METRICS_LISTEN") && err.contains("off"),
        "{err}"
    );
}

/// The families an exposition declares (`# TYPE name type`).
fn families(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// `promql` without its label matchers (`{...}`) and groupings
/// (`by (...)`): what is left names metrics (and functions).
fn without_labels(promql: &str) -> String {
    let mut out = String::new();
    let mut rest = promql;
    while let Some(at) = rest.find(['{', '(']) {
        let (before, from) = rest.split_at(at);
        let grouping =
            before.trim_end().ends_with(" by") || before.trim_end().ends_with(" without");
        out.push_str(before);
        if from.starts_with('{') || grouping {
            let close = if from.starts_with('{') { '}' } else { ')' };
            rest = from.find(close).map_or("", |end| &from[end + 1..]);
        } else {
            out.push('(');
            rest = &from[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The metric names a PromQL expression reads (lymphd's and the process's).
fn names_in(promql: &str) -> Vec<String> {
    without_labels(promql)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| {
            ["rpc_", "http_", "messaging_", "lymphd_", "process_"]
                .iter()
                .any(|prefix| word.starts_with(prefix))
        })
        .map(str::to_owned)
        .collect()
}

/// The family a sample name belongs to: histograms' `_bucket`, `_count` and
/// `_sum` and counters' `_total` are suffixes of their family's name.
fn family_of<'a>(name: &'a str, declared: &[String]) -> Option<&'a str> {
    std::iter::once(name)
        .chain(
            ["_bucket", "_count", "_sum", "_total"]
                .iter()
                .filter_map(|suffix| name.strip_suffix(suffix)),
        )
        .find(|candidate| declared.iter().any(|d| d == candidate))
}

#[tokio::test]
async fn the_grafana_dashboard_queries_only_series_on_metrics() {
    // A fleet daemon: its peers and the embedded bus's depth are exported too.
    let hosts = crate::harness::zookeeper_chroot();
    let daemon = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let scrape = get(port_of(&metrics_listen(&daemon)), "/metrics");
    assert_eq!(scrape.status, 200);
    let declared = families(&scrape.body);

    let path = crate::harness::workspace_root().join("conf/grafana/lymphd.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard"))
            .expect("json");
    let mut queries: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            queries.push(target["expr"].as_str().expect("an expr").to_owned());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(query) = variable["query"].as_str() {
            queries.push(query.to_owned());
        }
    }
    let read: Vec<String> = queries.iter().flat_map(|q| names_in(q)).collect();
    for name in &read {
        assert!(
            family_of(name, &declared).is_some(),
            "the dashboard reads {name}, which /metrics does not export"
        );
    }
    // What the dashboard is for: rate, errors and duration per method,
    // events per type and result, peers, apps.
    for needed in [
        "rpc_client_call_duration_seconds_count",
        "rpc_client_call_duration_seconds_bucket",
        "rpc_server_call_duration_seconds_count",
        "lymphd_events_settled_total",
        "messaging_client_sent_messages_total",
        "lymphd_peers",
        "lymphd_apps",
    ] {
        assert!(read.iter().any(|n| n == needed), "no panel reads {needed}");
    }
}
