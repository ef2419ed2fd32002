//! Cancellation: an app that gives up on its own call (`CancelCall`) ends it
//! wherever it is — the handling app on the same daemon, or on another
//! daemon through `lymphd.cancel` — and the call ends `cancelled`; a caller
//! whose timeout passes has the handler on another daemon told at once.

use std::time::{Duration, Instant};

use lymph_proto::v1 as pb;
use serde_json::json;

use crate::harness::{TestDaemon, kind, outcome, wait_until, zookeeper_chroot};
use crate::raw_app::{RawApp, Spec};

const WAIT: Duration = Duration::from_secs(10);

/// A raw app on `caller` calls `Test.sleep(20 s)`, waits until the testapp
/// on `handler` holds the request, then cancels the call; returns its
/// `CallResult` and how long that took.
async fn call_then_cancel(caller: &TestDaemon, handler: &TestDaemon) -> (pb::CallResult, Duration) {
    let app = RawApp::attach(&caller.socket, Spec::new("")).await;
    let result = app
        .call(7, "Test", "sleep", json!({"ms": 20_000}), 30_000)
        .await;
    wait_until("the handling app holds the call", WAIT, || {
        handler.in_flight("testapp") == Some(1)
    });
    let cancelled = Instant::now();
    app.cancel_call(7).await;
    let result = tokio::time::timeout(WAIT, result)
        .await
        .expect("a CallResult in time")
        .expect("the app's stream stays up");
    wait_until("the handling app to let the call go", WAIT, || {
        handler.in_flight("testapp") == Some(0)
    });
    (result, cancelled.elapsed())
}

fn assert_cancelled(result: &pb::CallResult) {
    assert_eq!(result.id, 7);
    let Some(pb::call_result::Outcome::Error(error)) = &result.outcome else {
        panic!("expected an error: {result:?}");
    };
    assert_eq!(
        pb::ErrorKind::try_from(error.kind),
        Ok(pb::ErrorKind::Cancelled),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_by_its_app_ends_at_the_handler_on_the_same_daemon() {
    let daemon = TestDaemon::start();
    let _app = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Test", 1).await;
    let (result, took) = call_then_cancel(&daemon, &daemon).await;
    assert_cancelled(&result);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_by_its_app_ends_at_the_handler_on_another_daemon() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(&hosts, "127.0.0.3", 0);
    let _app = b.app("testapp", "testapp", &[]);
    a.wait_for_instances("Test", 1).await;
    let (result, took) = call_then_cancel(&a, &b).await;
    assert_cancelled(&result);
    // B let go of the request long before the handler's 20 s or the call's
    // 30 s timeout: it was told.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_on_another_daemon_hears_cancel_within_200ms_of_its_callers_timeout() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(&hosts, "127.0.0.3", 0);
    let slow = RawApp::attach(
        &b.socket,
        Spec {
            methods: vec![("sleep", 0), ("quick", 0)],
            ..Spec::holding("Slow", "sleep")
        },
    )
    .await;
    a.wait_for_instances("Slow", 1).await;
    // Warm the connection, so the call below is only the handler's time.
    outcome(&a.call("Slow", "quick", json!({}), 5_000).await).expect("quick");

    // The handler would hold the request 10 s; its caller allows 1 s.
    let started = Instant::now();
    let reply = a.call("Slow", "sleep", json!({"ms": 10_000}), 1_000).await;
    let error = outcome(&reply).expect_err("the caller's timeout passes first");
    assert_eq!(kind(&error), pb::ErrorKind::DeadlineExceeded, "{error:?}");
    let timeout = started + Duration::from_secs(1);
    wait_until("the handler to hear Cancel", WAIT, || {
        !slow.seen().cancels.is_empty()
    });
    let seen = slow.seen();
    let request = seen
        .requests
        .iter()
        .find(|r| r.method == "sleep")
        .expect("the request reached the handler");
    let (id, cancelled_at) = seen.cancels[0];
    assert_eq!(id, request.id, "the Cancel names the request");
    assert!(
        cancelled_at + Duration::from_millis(50) >= timeout,
        "cancelled {:?} before the caller's timeout",
        timeout.saturating_duration_since(cancelled_at)
    );
    assert!(
        cancelled_at <= timeout + Duration::from_millis(200),
        "Cancel came {:?} after the caller's timeout",
        cancelled_at.saturating_duration_since(timeout)
    );
}
