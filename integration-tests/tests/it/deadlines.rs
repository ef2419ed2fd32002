//! Deadlines across daemons: a lymphd caller's time left travels with its
//! request (`lymphd_deadline_ms`), so the callee's daemon gives up on the
//! handler when the caller does, instead of after its own default timeout.

use std::time::{Duration, Instant};

use serde_json::json;

use lymph_proto::v1 as pb;

use crate::harness::{TestDaemon, kind, outcome, wait_until, zookeeper_chroot};

/// The `in_flight` of the app named `name` in `lymphctl status --json`.
fn in_flight(daemon: &TestDaemon, name: &str) -> Option<u64> {
    daemon.app_status(name)?["in_flight"].as_u64()
}

#[tokio::test]
async fn the_callers_deadline_ends_the_request_on_the_other_host() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(&hosts, "127.0.0.3", 0);
    let _app = b.app("testapp", "testapp", &[]);
    a.wait_for_instances("Test", 1).await;
    // Warm the connection, so the slow call below is only the handler's time.
    outcome(&a.call("Test", "echo", json!({"text": "hi"}), 5_000).await).expect("echo");

    // B's default timeout (rpc.default_timeout, 30 s) would keep the request
    // for the whole 20 s the handler sleeps; A's caller allows 500 ms.
    let started = Instant::now();
    let reply = a.call("Test", "sleep", json!({"ms": 20_000}), 500).await;
    let error = outcome(&reply).expect_err("the caller's deadline passes first");
    assert_eq!(kind(&error), pb::ErrorKind::DeadlineExceeded, "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the caller gave up after {:?}",
        started.elapsed()
    );
    wait_until(
        "B to end the request at the caller's deadline",
        Duration::from_secs(5),
        || in_flight(&b, "testapp") == Some(0),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "B ended the request long after the caller's deadline: {:?}",
        started.elapsed()
    );
}
