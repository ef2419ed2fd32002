//! Deadlines across daemons: a lymphd caller's time left travels with its
//! request (`lymphd_deadline_ms`), so the callee's daemon gives up on the
//! handler when the caller does, instead of after its own default timeout;
//! along a chain A → B → C, the call B's handler makes inherits what is left
//! of A's time, so C never works past A's deadline.

use std::time::{Duration, Instant};

use serde_json::json;

use lymph_proto::v1 as pb;

use crate::harness::{TestDaemon, kind, outcome, wait_until, zookeeper_chroot};
use crate::raw_app::{RawApp, Spec};

/// A's deadline may look this much later at C than the test's clock says:
/// A counts the caller's 1 s from when its request arrived (the test's
/// gRPC hop to A, a few ms in a debug build), and each hop's clock read
/// comes a little before its send.
const SLACK: Duration = Duration::from_millis(25);

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
        || b.in_flight("testapp") == Some(0),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "B ended the request long after the caller's deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_three_daemons_never_runs_past_the_first_callers_deadline() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(&hosts, "127.0.0.3", 0);
    let c = TestDaemon::start_fleet(&hosts, "127.0.0.4", 0);
    let _relay = b.app("testapp", "testapp", &[]);
    let slow = RawApp::attach(&c.socket, Spec::holding("Slow", "sleep")).await;
    a.wait_for_instances("Test", 1).await;
    b.wait_for_instances("Slow", 1).await;
    outcome(&a.call("Test", "echo", json!({"text": "hi"}), 5_000).await).expect("echo");

    // B's handler waits 300 ms, then calls C with a 30 s timeout of its own;
    // C's handler would hold the request 10 s. A allows 1 s in all.
    let relay = |wait_ms: u64| json!({"service": "Slow", "method": "sleep", "wait_ms": wait_ms, "ms": 10_000});
    let started = Instant::now();
    let reply = a.call("Test", "relay", relay(300), 1_000).await;
    let error = outcome(&reply).expect_err("A's deadline passes first");
    assert_eq!(kind(&error), pb::ErrorKind::DeadlineExceeded, "{error:?}");
    let deadline = started + Duration::from_secs(1);
    wait_until("C to let the request go", Duration::from_secs(10), || {
        c.in_flight("raw") == Some(0) && !slow.seen().cancels.is_empty()
    });
    {
        let seen = slow.seen();
        assert_eq!(seen.requests.len(), 1, "{:?}", seen.requests);
        let request = &seen.requests[0];
        let ends = request.at + Duration::from_millis(request.deadline_ms.into());
        assert!(
            ends <= deadline + SLACK,
            "C was given {} ms, {:?} past A's deadline",
            request.deadline_ms,
            ends.saturating_duration_since(deadline)
        );
        let (id, cancelled_at) = seen.cancels[0];
        assert_eq!(id, request.id);
        assert!(
            cancelled_at <= deadline + Duration::from_millis(200),
            "C was told to stop {:?} after A's deadline",
            cancelled_at.saturating_duration_since(deadline)
        );
    }

    // B's handler would call C only after A's deadline: C never hears of it.
    let started = Instant::now();
    let reply = a.call("Test", "relay", relay(1_500), 1_000).await;
    let error = outcome(&reply).expect_err("A's deadline passes first");
    assert_eq!(kind(&error), pb::ErrorKind::DeadlineExceeded, "{error:?}");
    wait_until("B to let the request go", Duration::from_secs(10), || {
        b.in_flight("testapp") == Some(0)
    });
    // Past the moment B's handler would have called, had it run on.
    let quiet = (started + Duration::from_millis(2_500)).saturating_duration_since(Instant::now());
    tokio::time::sleep(quiet).await;
    assert_eq!(
        slow.seen().requests.len(),
        1,
        "C got a request past A's deadline"
    );
}
