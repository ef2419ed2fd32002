//! Cancellation: an app that gives up on its own call (`CancelCall`) ends it
//! wherever it is — the handling app on the same daemon, or on another
//! daemon through `lymphd.cancel` — and the call ends `cancelled`.

use std::time::{Duration, Instant};

use lymph_proto::v1 as pb;
use lymph_proto::v1::app_message::Kind as In;
use lymph_proto::v1::daemon_message::Kind as Out;
use serde_json::json;
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use crate::harness::{TestDaemon, wait_until, zookeeper_chroot};

const WAIT: Duration = Duration::from_secs(10);

/// The `in_flight` of the app named `name` in `lymphctl status --json`.
fn in_flight(daemon: &TestDaemon, name: &str) -> Option<u64> {
    daemon.app_status(name)?["in_flight"].as_u64()
}

/// A tool attached to `daemon` over a raw `Attach` stream: it calls
/// `Test.sleep(20 s)`, waits until the handling app holds the request, then
/// cancels the call and returns its `CallResult` and how long that took.
async fn call_then_cancel(caller: &TestDaemon, handler: &TestDaemon) -> (pb::CallResult, Duration) {
    let mut client = caller.client().await;
    let (tx, rx) = mpsc::channel(8);
    let send = |kind| pb::AppMessage { kind: Some(kind) };
    tx.send(send(In::Hello(pb::Hello {
        app_name: "canceller".to_owned(),
        ..Default::default()
    })))
    .await
    .expect("queue Hello");
    let mut inbound = client
        .attach(ReceiverStream::new(rx))
        .await
        .expect("attach")
        .into_inner();
    let first = tokio::time::timeout(WAIT, inbound.message()).await;
    assert!(
        matches!(
            first,
            Ok(Ok(Some(pb::DaemonMessage {
                kind: Some(Out::Welcome(_))
            })))
        ),
        "{first:?}"
    );
    tx.send(send(In::Ready(pb::Ready::default())))
        .await
        .expect("queue Ready");
    let body = rmp_serde::to_vec_named(&json!({"ms": 20_000})).expect("msgpack");
    tx.send(send(In::Call(pb::OutgoingCall {
        id: 7,
        service: "Test".to_owned(),
        method: "sleep".to_owned(),
        body: body.into(),
        timeout_ms: 30_000,
        ..Default::default()
    })))
    .await
    .expect("queue the call");
    wait_until("the handling app holds the call", WAIT, || {
        in_flight(handler, "testapp") == Some(1)
    });
    let cancelled = Instant::now();
    tx.send(send(In::CancelCall(pb::CancelCall { id: 7 })))
        .await
        .expect("queue the cancel");
    let result = tokio::time::timeout(WAIT, async {
        loop {
            match inbound.message().await {
                Ok(Some(pb::DaemonMessage {
                    kind: Some(Out::CallResult(result)),
                })) => return result,
                Ok(Some(_)) => continue,
                other => panic!("the stream ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a CallResult in time");
    wait_until("the handling app to let the call go", WAIT, || {
        in_flight(handler, "testapp") == Some(0)
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
