//! Apps that are slow, fail, or die mid-call: the caller gets a distinct
//! error, never a hang, and the daemon keeps serving.

use std::time::{Duration, Instant};

use lymph_proto::v1 as pb;
use nix::sys::signal::Signal;
use serde_json::json;

use crate::harness::{Proc, TestDaemon, kind, outcome};

async fn daemon_with_testapp(args: &[&str]) -> (TestDaemon, Proc) {
    let daemon = TestDaemon::start();
    let app = daemon.app("testapp", "testapp", args);
    daemon.wait_for_instances("Test", 1).await;
    (daemon, app)
}

#[tokio::test]
async fn sigkill_mid_call_fails_the_call_at_once() {
    let (daemon, app) = daemon_with_testapp(&[]).await;
    let started = Instant::now();
    let call = daemon.spawn_call("Test", "sleep", json!({"ms": 60_000}), 120_000);
    // Wait until the app holds the call, then kill it.
    daemon.wait_in_flight(1).await;
    app.signal(Signal::SIGKILL);
    let reply = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the caller gets an error, not a hang")
        .expect("task");
    let err = outcome(&reply).expect_err("the app died");
    assert_eq!(kind(&err), pb::ErrorKind::Unavailable, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    daemon.wait_for_instances("Test", 0).await;
}

#[tokio::test]
async fn concurrency_limit_answers_overloaded_at_once() {
    let (daemon, _app) = daemon_with_testapp(&["--max-concurrency", "2"]).await;
    let slow: Vec<_> = (0..2)
        .map(|_| daemon.spawn_call("Test", "sleep", json!({"ms": 3_000}), 20_000))
        .collect();
    daemon.wait_in_flight(2).await;
    let reply = daemon
        .call("Test", "echo", json!({"text": "x"}), 20_000)
        .await;
    let err = outcome(&reply).expect_err("third call over the limit");
    assert_eq!(kind(&err), pb::ErrorKind::Overloaded, "{err:?}");
    for call in slow {
        let reply = call.await.expect("task");
        assert_eq!(outcome(&reply).expect("slow call succeeds"), json!(3_000));
    }
    // Capacity is back once they finished.
    let reply = daemon
        .call("Test", "echo", json!({"text": "x"}), 5_000)
        .await;
    assert_eq!(outcome(&reply).expect("echo"), json!("x"));
}

#[tokio::test]
async fn deadline_typed_error_crash_and_bad_body_are_distinct() {
    let (daemon, _app) = daemon_with_testapp(&[]).await;

    let reply = daemon
        .call("Test", "sleep", json!({"ms": 5_000}), 300)
        .await;
    assert_eq!(
        kind(&outcome(&reply).expect_err("too slow")),
        pb::ErrorKind::DeadlineExceeded
    );

    let reply = daemon
        .call("Test", "fail", json!({"message": "no such user"}), 5_000)
        .await;
    let err = outcome(&reply).expect_err("typed error");
    assert_eq!(kind(&err), pb::ErrorKind::RemoteError);
    assert_eq!(err.r#type, "TestError");
    assert_eq!(err.message, "no such user");

    let reply = daemon.call("Test", "crash", json!({}), 5_000).await;
    assert_eq!(
        kind(&outcome(&reply).expect_err("crash")),
        pb::ErrorKind::HandlerFailed
    );

    let reply = daemon
        .call("Test", "sleep", json!({"ms": "soon"}), 5_000)
        .await;
    assert_eq!(
        kind(&outcome(&reply).expect_err("bad body")),
        pb::ErrorKind::BadRequest
    );

    let reply = daemon.call("Test", "nope", json!({}), 5_000).await;
    assert_eq!(
        kind(&outcome(&reply).expect_err("unknown")),
        pb::ErrorKind::UnknownMethod
    );

    // Still serving.
    let reply = daemon
        .call("Test", "echo", json!({"text": "still here"}), 5_000)
        .await;
    assert_eq!(outcome(&reply).expect("echo"), json!("still here"));
}

#[tokio::test]
async fn oversize_body_is_refused_and_the_daemon_keeps_serving() {
    let (daemon, _app) = daemon_with_testapp(&[]).await;
    let big = "x".repeat(5 * 1024 * 1024);
    let reply = daemon
        .call("Test", "echo", json!({"text": big}), 5_000)
        .await;
    assert_eq!(
        kind(&outcome(&reply).expect_err("too large")),
        pb::ErrorKind::TooLarge
    );
    let reply = daemon
        .call("Test", "echo", json!({"text": "small"}), 5_000)
        .await;
    assert_eq!(outcome(&reply).expect("echo"), json!("small"));
}
