//! The metrics seam seen from outside: every hop (RPC, HTTP, events) shows in
//! `lymph.get_metrics`, and `lymphctl status` counts what each app handled,
//! events included.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestDaemon, outcome, text, wait_until};
use crate::web::{app_config, free_port, get};

const WAIT: Duration = Duration::from_secs(20);

/// `lymph.get_metrics` as JSON triples `[name, value, tags]`.
fn metrics(daemon: &TestDaemon) -> Vec<Value> {
    let out = daemon.ctl(&["request", "lymph.get_metrics", "{}"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reply: Value = serde_json::from_str(&text(&out.stdout)).expect("json metrics");
    reply.as_array().expect("an array of triples").clone()
}

/// The value of the sample `name` whose tags include every pair of `tags`.
fn sample(samples: &[Value], name: &str, tags: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s[0] == name
                && tags
                    .iter()
                    .all(|(k, v)| s[2].get(*k).and_then(Value::as_str) == Some(*v))
        })
        .and_then(|s| s[1].as_f64())
}

/// `lymphctl status --json`'s entry for the app named `name`.
fn app_status(daemon: &TestDaemon, name: &str) -> Value {
    daemon
        .app_status(name)
        .unwrap_or_else(|| panic!("no app {name} in lymphctl status"))
}

#[tokio::test]
async fn every_hop_reports_and_status_counts_handled_events() {
    let daemon = TestDaemon::start();
    let port = free_port();
    let web_config = app_config(&daemon, port);
    let web_config = web_config.to_str().expect("utf-8");
    let _greeting = daemon.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    let listen = daemon.app("listen", "listen", &["--config", "conf/listen.yml"]);
    let _web = daemon.app("web", "web", &["--config", web_config]);
    daemon.wait_for_instances("Greeting", 1).await;
    daemon.wait_for_instances("Listen", 1).await;
    daemon.wait_for_instances("Web", 1).await;

    // One greeting through the web app's route, the rest as calls: each
    // greeting is an RPC and an event Listen handles.
    assert_eq!(get(port, "/greet?name=Web").status, 200);
    assert_eq!(get(port, "/nope").status, 404);
    let calls = 5;
    for n in 0..calls {
        let reply = daemon
            .call("Greeting", "greet", json!({"name": format!("m{n}")}), 5_000)
            .await;
        outcome(&reply).expect("greet");
    }
    let greetings = calls + 1;
    wait_until("Listen heard every greeting", WAIT, || {
        listen.lines_with("Somebody greeted") == greetings
    });
    // Acks travel after the handler's log line: wait for them to count.
    wait_until("Listen's acks counted as handled", WAIT, || {
        app_status(&daemon, "listen")["handled"].as_u64() == Some(greetings as u64)
    });
    assert_eq!(
        app_status(&daemon, "greeting")["handled"].as_u64(),
        Some(greetings as u64)
    );
    assert_eq!(app_status(&daemon, "web")["handled"].as_u64(), Some(1));

    let samples = metrics(&daemon);
    let n = greetings as f64;
    let greet = [("subject", "Greeting.greet"), ("side", "client")];
    assert_eq!(sample(&samples, "rpc", &greet), Some(n), "{samples:?}");
    assert_eq!(sample(&samples, "rpc.errors", &greet), Some(0.0));
    let greeted = [("event_type", "greeted")];
    assert_eq!(sample(&samples, "events.emitted", &greeted), Some(n));
    assert_eq!(sample(&samples, "events.delivered", &greeted), Some(n));
    assert_eq!(sample(&samples, "events.acked", &greeted), Some(n));
    assert_eq!(sample(&samples, "events.failed", &greeted), None);
    let route = [("method", "GET"), ("route", "/greet")];
    assert_eq!(sample(&samples, "http", &route), Some(1.0), "{samples:?}");
    assert_eq!(sample(&samples, "http.errors", &route), Some(0.0));
    let unmatched = [("method", "GET"), ("route", "_other")];
    assert_eq!(sample(&samples, "http", &unmatched), Some(1.0));
}
