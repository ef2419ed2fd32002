//! Broker deliveries and subscription declares, with a real RabbitMQ (a
//! vhost of each test's own), a real `lymphd` and the test app: an event
//! over `rpc.max_body_bytes` is refused once and never reaches the app (the
//! next one does); a subscription whose queue the broker refuses leaves the
//! app attached and serving RPC while the daemon retries with growing
//! pauses, and consumes once the queue is fixed (and again after the queue
//! is deleted under it). The issue's 70 MB event is
//! scaled down to 1 MB against a 64 KiB limit.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lymph_proto::v1 as pb;
use rmpv::Value;
use serde_json::json;

use crate::amqp::Vhost;
use crate::harness::{TestDaemon, outcome, text, wait_until};

const LIMIT: usize = 64 * 1024;
const WAIT: Duration = Duration::from_secs(20);

/// A daemon with an embedded registry and events on `vhost` in lymph mode,
/// plus `extra` YAML (another section). The config's directory is kept by
/// the caller for as long as the daemon may read it.
fn daemon(vhost: &Vhost, extra: &str) -> (TestDaemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lymphd.yml");
    let yaml = format!(
        "events:\n  backend: amqp\n  url: {}\n  mode: lymph\n{extra}",
        vhost.url()
    );
    std::fs::write(&path, yaml).expect("write config");
    let daemon = TestDaemon::start_with(&["--config", path.to_str().expect("utf-8 path")]);
    (daemon, dir)
}

/// lymph's envelope, as a Python service or another lymphd publishes it.
fn envelope(event_type: &str, body: Value) -> Vec<u8> {
    let envelope = Value::Map(vec![
        (Value::from("type"), Value::from(event_type)),
        (
            Value::from("headers"),
            Value::Map(vec![(Value::from("trace_id"), Value::from("abuse-amqp"))]),
        ),
        (Value::from("body"), body),
        (Value::from("source"), Value::from("abuse")),
    ]);
    let mut payload = Vec::new();
    rmpv::encode::write_value(&mut payload, &envelope).expect("encode");
    payload
}

/// The test app's `work` body: `{n, pad}` (it ignores `pad`).
fn work(n: u64, pad: usize) -> Value {
    Value::Map(vec![
        (Value::from("n"), Value::from(n)),
        (Value::from("pad"), Value::Binary(vec![0x61; pad])),
    ])
}

async fn status(daemon: &TestDaemon) -> pb::StatusReply {
    let mut client = daemon.client().await;
    tokio::time::timeout(Duration::from_secs(10), client.status(pb::StatusRequest {}))
        .await
        .expect("status in time")
        .expect("status")
        .into_inner()
}

/// The one attached app and its subscription to `queue`.
async fn subscription(daemon: &TestDaemon, queue: &str) -> (String, pb::SubscriptionStatus) {
    let reply = status(daemon).await;
    let [app] = reply.apps.as_slice() else {
        panic!("one app attached: {:?}", reply.apps);
    };
    let sub = app
        .subscriptions
        .iter()
        .find(|s| s.queue == queue)
        .unwrap_or_else(|| panic!("a subscription to {queue}: {:?}", app.subscriptions))
        .clone();
    (app.identity.clone(), sub)
}

/// Polls (bounded) until the subscription to `queue` satisfies `cond`.
async fn wait_for(
    daemon: &TestDaemon,
    queue: &str,
    what: &str,
    within: Duration,
    cond: impl Fn(&pb::SubscriptionStatus) -> bool,
) -> (String, pb::SubscriptionStatus) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (identity, sub) = subscription(daemon, queue).await;
        if cond(&sub) {
            return (identity, sub);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}: {sub:?}\ndaemon log:\n{}",
            daemon.proc.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn attaches(daemon: &TestDaemon) -> usize {
    daemon.proc.lines_with("app attached")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_body_limit_is_refused_once_and_the_next_is_handled() {
    let vhost = Vhost::new().await;
    let (daemon, _config) = daemon(&vhost, &format!("rpc:\n  max_body_bytes: {LIMIT}\n"));
    let app = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Test", 1).await;
    let (identity, _) = subscription(&daemon, "Test-on_work").await;

    let raw = vhost.raw().await;
    let channel = raw.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let properties = BasicProperties::default()
        .with_content_type("application/lymph+x-msgpack".into())
        .with_content_encoding("binary".into());
    // 1: far over the limit (refused undecoded); 3: its body just over it
    // (refused once decoded); 2: fine.
    let sizes = [(1, 1024 * 1024), (3, LIMIT + 1024), (2, 16)];
    for (n, pad) in sizes {
        let confirm = channel
            .basic_publish(
                "lymph".into(),
                "work".into(),
                BasicPublishOptions::default(),
                &envelope("work", work(n, pad)),
                properties.clone(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "the broker took event {n}");
    }

    wait_until("the valid event handled", WAIT, || {
        app.lines_with("handled 2") == 1
    });
    // Long enough for a requeued copy to come back many times over.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (after, sub) = subscription(&daemon, "Test-on_work").await;
    for n in [1, 3] {
        let handling = format!("handling {n} attempt");
        assert_eq!(
            app.lines_with(&handling),
            0,
            "event {n} never reached the app"
        );
    }
    assert_eq!(
        sub.refused_too_large, 2,
        "each refused once, not redelivered: {sub:?}"
    );
    assert!(sub.consuming, "{sub:?}");
    assert_eq!(after, identity, "the app never attached again");
    assert_eq!(attaches(&daemon), 1, "{}", daemon.proc.stderr_text());
    let log = daemon.proc.stderr_text();
    let warning = log
        .lines()
        .find(|l| l.contains("event larger than rpc.max_body_bytes"))
        .unwrap_or_else(|| panic!("a warning about the big event:\n{log}"));
    let first = envelope("work", work(1, 1024 * 1024)).len();
    for field in [
        "queue=Test-on_work",
        &format!("limit={LIMIT}"),
        &format!("bytes={first}"),
    ] {
        assert!(warning.contains(field), "{field} in {warning}");
    }
    // Nothing is left in the queue: the big event was dropped, not parked.
    let queue = channel
        .queue_declare(
            "Test-on_work".into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the queue exists");
    assert_eq!(queue.message_count(), 0);
    let out = daemon.ctl(&["status"]);
    assert!(
        text(&out.stdout).contains("queue Test-on_work  consuming  refused 2 too large"),
        "{}",
        text(&out.stdout)
    );
    let _ = raw.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_queue_declare_is_retried_while_the_app_serves_then_consumes() {
    let vhost = Vhost::new().await;
    // The queue the app's `work` handler needs, with other flags than lymph
    // mode declares (durable, no x-ha-policy): RabbitMQ answers 406.
    let raw = vhost.raw().await;
    let channel = raw.create_channel().await.expect("channel");
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare("Test-on_work".into(), durable, FieldTable::default())
        .await
        .expect("declare the durable queue");

    let (daemon, _config) = daemon(&vhost, "");
    let app = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Test", 1).await;
    let reply = daemon
        .call("Test", "echo", json!({"text": "still here"}), 5_000)
        .await;
    assert_eq!(outcome(&reply).expect("echo"), json!("still here"));

    // Attempts at about 0, 1 and 3 s: the third failure comes with a 4 s pause.
    let (identity, failing) = wait_for(&daemon, "Test-on_work", "3 failed attempts", WAIT, |s| {
        !s.consuming && s.failed_attempts >= 3
    })
    .await;
    assert!(failing.error.contains("PRECONDITION_FAILED"), "{failing:?}");
    let out = daemon.ctl(&["status"]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("queue Test-on_work  retrying (") && shown.contains("PRECONDITION_FAILED"),
        "{shown}"
    );
    let log = daemon.proc.stderr_text();
    let pauses: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the broker refused the subscription's queue"))
        .filter_map(|l| l.split("retry_in=").nth(1)?.split_whitespace().next())
        .collect();
    assert_eq!(pauses[..3], ["1s", "2s", "4s"], "growing pauses:\n{log}");
    let reply = daemon
        .call("Test", "echo", json!({"text": "and here"}), 5_000)
        .await;
    assert_eq!(outcome(&reply).expect("echo"), json!("and here"));

    // The operator removes the old queue; the next attempt (within the 4 s
    // pause, or the 8 s one after it) declares it with lymph's flags.
    channel
        .queue_delete("Test-on_work".into(), QueueDeleteOptions::default())
        .await
        .expect("delete the durable queue");
    let (after, _) = wait_for(
        &daemon,
        "Test-on_work",
        "consuming",
        Duration::from_secs(35),
        |s| s.consuming,
    )
    .await;
    let out = daemon.ctl(&["emit", "work", r#"{"n": 5}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until("the event handled", WAIT, || {
        app.lines_with("handled 5") == 1
    });

    // Deleted under a live consumer: the broker cancels it; the daemon
    // declares the queue again and consumes, the app never knows.
    channel
        .queue_delete("Test-on_work".into(), QueueDeleteOptions::default())
        .await
        .expect("delete the live queue");
    wait_until("the consumer attached again", WAIT, || {
        daemon.proc.lines_with("event consumer attached") == 2
    });
    let out = daemon.ctl(&["emit", "work", r#"{"n": 6}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until("the next event handled", WAIT, || {
        app.lines_with("handled 6") == 1
    });
    let (last, _) = subscription(&daemon, "Test-on_work").await;
    assert_eq!(
        [after, last],
        [identity.clone(), identity],
        "the app never attached again"
    );
    assert_eq!(attaches(&daemon), 1, "{}", daemon.proc.stderr_text());
    assert_eq!(
        daemon.proc.lines_with("event consumer lost its channel"),
        1,
        "{}",
        daemon.proc.stderr_text()
    );
    let _ = raw.close(200, "done".into()).await;
}
