//! The SDK against a real (in-process) daemon through `lymph::testing`:
//! deferred calls, trace ids across hops, events, reconnects.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

use crate::testing::TestDaemon;
use crate::{Context, Error, Event};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Default, Clone)]
struct Seen {
    traces: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<Vec<(String, String)>>>,
    release: Arc<Notify>,
}

impl Seen {
    fn traces(&self) -> Vec<String> {
        self.traces.lock().expect("lock").clone()
    }
    fn events(&self) -> Vec<(String, String)> {
        self.events.lock().expect("lock").clone()
    }
}

struct Front(Seen);

#[crate::interface(name = "Front")]
impl Front {
    /// Calls Back.trace and emits `fronted`, both under this request's trace id.
    #[rpc]
    async fn relay(&self, ctx: &Context) -> Result<String, Error> {
        self.0
            .traces
            .lock()
            .expect("lock")
            .push(ctx.trace_id().to_owned());
        ctx.emit("fronted", &json!({"from": "front"})).await?;
        let back: String = ctx.proxy("Back").call("trace", ()).await?;
        Ok(back)
    }

    /// Blocks until the test releases it.
    #[rpc]
    async fn block(&self) -> Result<String, Error> {
        self.0.release.notified().await;
        Ok("released".to_owned())
    }
}

struct Back(Seen);

#[crate::interface(name = "Back")]
impl Back {
    /// Returns the trace id it was called with.
    #[rpc]
    async fn trace(&self, ctx: &Context) -> Result<String, Error> {
        Ok(ctx.trace_id().to_owned())
    }

    #[event("fronted")]
    async fn on_fronted(&self, event: Event) -> Result<(), Error> {
        let from: String = event.get("from")?;
        self.0
            .events
            .lock()
            .expect("lock")
            .push((from, event.trace_id.clone()));
        Ok(())
    }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn trace_id_follows_calls_and_emits() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let seen = Seen::default();
    let _front = daemon
        .serve(daemon.service().interface(Front(seen.clone())))
        .await
        .expect("front");
    let _back = daemon
        .serve(daemon.service().interface(Back(seen.clone())))
        .await
        .expect("back");

    // A tool call with a known trace id, through the unary API.
    let mut api = lymph_proto::connect(daemon.socket()).await.expect("api");
    let reply = api
        .call(lymph_proto::v1::CallRequest {
            service: "Front".to_owned(),
            method: "relay".to_owned(),
            body: rmp_serde::to_vec_named(&json!({})).expect("msgpack").into(),
            trace_id: "trace-0001".to_owned(),
            ..Default::default()
        })
        .await
        .expect("call")
        .into_inner();
    let Some(lymph_proto::v1::call_reply::Outcome::Body(body)) = reply.outcome else {
        panic!("relay failed: {reply:?}");
    };
    let back_trace: String = rmp_serde::from_slice(&body).expect("string");
    assert_eq!(
        seen.traces(),
        ["trace-0001"],
        "the handler saw the caller's trace id"
    );
    assert_eq!(back_trace, "trace-0001", "the nested call carried it");
    eventually("the fronted event", || !seen.events().is_empty()).await;
    assert_eq!(
        seen.events(),
        [("front".to_owned(), "trace-0001".to_owned())]
    );
}

#[tokio::test]
async fn deferred_call_returns_while_its_handler_is_blocked() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let seen = Seen::default();
    let _front = daemon
        .serve(daemon.service().interface(Front(seen.clone())))
        .await
        .expect("front");
    let client = daemon.client().await.expect("client");

    let started = std::time::Instant::now();
    let mut deferred = client.proxy("Front").defer::<String>("block", ());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "defer returns at once"
    );
    // The handler is blocked until released, so the deferred call is still pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut deferred)
            .await
            .is_err(),
        "the deferred call must not complete while its handler is blocked"
    );
    seen.release.notify_one();
    let result = tokio::time::timeout(WAIT, deferred)
        .await
        .expect("the deferred call completes once released");
    assert_eq!(result.expect("reply"), "released");
}

#[tokio::test]
async fn a_service_comes_back_after_its_daemon_restarts() {
    let mut daemon = TestDaemon::start().await.expect("daemon");
    let seen = Seen::default();
    let _back = daemon
        .serve(daemon.service().interface(Back(seen.clone())))
        .await
        .expect("back");
    assert_eq!(daemon.instances("Back").await.expect("discover"), 1);

    // restart() returns once Back is registered again: no polling here.
    daemon.restart().await.expect("restart");
    assert_eq!(daemon.instances("Back").await.expect("discover"), 1);
    let client = daemon.client().await.expect("client");
    let trace: String = client
        .proxy("Back")
        .call("trace", ())
        .await
        .expect("call after restart");
    assert_eq!(trace.len(), 32, "the daemon made a trace id: {trace}");
}

struct Crash;

#[crate::interface(name = "Crash")]
impl Crash {
    /// Panics before it ever waits.
    #[rpc]
    async fn now(&self) -> Result<String, Error> {
        panic!("crashed at once")
    }

    /// Panics after waiting once.
    #[rpc]
    async fn later(&self) -> Result<String, Error> {
        tokio::task::yield_now().await;
        panic!("crashed later")
    }

    /// Answers after waiting once.
    #[rpc]
    async fn waits(&self) -> Result<String, Error> {
        tokio::task::yield_now().await;
        Ok("waited".to_owned())
    }
}

/// Panicking handlers answer with an error naming the panic, whether they
/// panic at their first poll or later, and the app keeps serving.
async fn panics_become_errors() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let _crash = daemon
        .serve(daemon.service().interface(Crash))
        .await
        .expect("crash");
    let client = daemon.client().await.expect("client");
    let proxy = client.proxy("Crash").timeout(WAIT);
    for (method, text) in [("now", "crashed at once"), ("later", "crashed later")] {
        let error = proxy
            .call::<String>(method, ())
            .await
            .expect_err("a panic is an error");
        assert!(
            error.message.contains("panicked") && error.message.contains(text),
            "{method}: {error:?}"
        );
    }
    let answer: String = proxy.call("waits", ()).await.expect("still serving");
    assert_eq!(answer, "waited");
}

#[tokio::test]
async fn panics_become_errors_on_a_current_thread_runtime() {
    panics_become_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_become_errors_on_a_multi_thread_runtime() {
    panics_become_errors().await;
}
