//! Deadlines and cancel against a real (in-process) daemon: calls made with a
//! handler's `Context` get no more than its time left, and fail at once when it
//! is up; a handler whose caller stopped waiting is dropped where it waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::testing::TestDaemon;
use crate::{Context, Error, ErrorKind};

const WAIT: Duration = Duration::from_secs(20);

/// One call of the relay: its step, its error kind (`None`: it answered), the time it took.
type Outcome = (&'static str, Option<ErrorKind>, Duration);

/// What the handlers did: the relay's calls, and counts of finished, dropped
/// and counted handlers.
#[derive(Default, Clone)]
struct Marks {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    slept: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    counted: Arc<AtomicUsize>,
}

impl Marks {
    fn record<T>(&self, step: &'static str, result: Result<T, crate::CallError>, took: Duration) {
        let kind = result.err().map(|e| e.kind);
        self.outcomes.lock().expect("lock").push((step, kind, took));
    }

    fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes.lock().expect("lock").clone()
    }

    fn get(count: &AtomicUsize) -> usize {
        count.load(Ordering::SeqCst)
    }
}

/// Counts itself in `dropped` when dropped before `finish`.
struct Unfinished(Option<Arc<AtomicUsize>>);

impl Unfinished {
    fn finish(mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(dropped) = &self.0 {
            dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct Sleeper(Marks);

#[crate::interface(name = "Sleeper")]
impl Sleeper {
    /// Sleeps `ms`, then counts itself in `slept`.
    #[rpc]
    async fn sleep(&self, ms: u64) -> Result<u64, Error> {
        let unfinished = Unfinished(Some(self.0.dropped.clone()));
        tokio::time::sleep(Duration::from_millis(ms)).await;
        unfinished.finish();
        self.0.slept.fetch_add(1, Ordering::SeqCst);
        Ok(ms)
    }

    /// Counts itself in `counted`.
    #[rpc]
    async fn count(&self) -> Result<(), Error> {
        self.0.counted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Relay(Marks);

#[crate::interface(name = "Relay")]
impl Relay {
    /// Answers at once; a task holding this handler's context then calls
    /// Sleeper.sleep (30 s) with a 60 s timeout, and after that Sleeper.count,
    /// directly and deferred.
    #[rpc]
    async fn relay(&self, ctx: &Context) -> Result<(), Error> {
        let (ctx, marks) = (ctx.clone(), self.0.clone());
        tokio::spawn(async move {
            let proxy = ctx.proxy("Sleeper").timeout(Duration::from_secs(60));
            let started = Instant::now();
            let slept = proxy.call::<u64>("sleep", json!({"ms": 30_000})).await;
            marks.record("sleep", slept, started.elapsed());
            let started = Instant::now();
            let counted = proxy.call::<()>("count", ()).await;
            marks.record("count", counted, started.elapsed());
            let started = Instant::now();
            let deferred = proxy.defer::<()>("count", ()).await;
            marks.record("deferred count", deferred, started.elapsed());
        });
        Ok(())
    }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn calls_inside_a_handler_get_no_more_than_its_time_left() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let marks = Marks::default();
    let _sleeper = daemon
        .serve(daemon.service().interface(Sleeper(marks.clone())))
        .await
        .expect("sleeper");
    let _relay = daemon
        .serve(daemon.service().interface(Relay(marks.clone())))
        .await
        .expect("relay");
    let client = daemon.client().await.expect("client");

    client
        .proxy("Relay")
        .timeout(Duration::from_secs(2))
        .call::<()>("relay", ())
        .await
        .expect("relay answers at once");
    eventually("the relay's three calls", || marks.outcomes().len() == 3).await;
    let outcomes = marks.outcomes();
    // Its own timeout (60 s) and the sleep (30 s) are long: the handler's 2 s decide.
    let (step, kind, took) = outcomes[0];
    assert_eq!(
        (step, kind),
        ("sleep", Some(ErrorKind::DeadlineExceeded)),
        "{outcomes:?}"
    );
    assert!(took < Duration::from_secs(15), "{outcomes:?}");
    // Then the time is up: the next calls fail without reaching Sleeper.
    let kinds: Vec<_> = outcomes[1..].iter().map(|(s, k, _)| (*s, *k)).collect();
    assert_eq!(
        kinds,
        [
            ("count", Some(ErrorKind::DeadlineExceeded)),
            ("deferred count", Some(ErrorKind::DeadlineExceeded)),
        ]
    );
    assert_eq!(
        Marks::get(&marks.counted),
        0,
        "no call reached Sleeper.count"
    );
    // The daemon held Sleeper.sleep to the inherited deadline: it was cancelled.
    eventually("Sleeper.sleep cancelled", || {
        Marks::get(&marks.dropped) == 1
    })
    .await;
    assert_eq!(Marks::get(&marks.slept), 0);
    // Outside a handler, the same call reaches Sleeper.count.
    client
        .proxy("Sleeper")
        .call::<()>("count", ())
        .await
        .expect("count");
    assert_eq!(Marks::get(&marks.counted), 1);
}

/// A handler whose caller's deadline passed is dropped where it waits: it
/// never reaches the end of its sleep; the app goes on serving.
async fn a_cancelled_handler_stops() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let marks = Marks::default();
    let _sleeper = daemon
        .serve(daemon.service().interface(Sleeper(marks.clone())))
        .await
        .expect("sleeper");
    let client = daemon.client().await.expect("client");

    let started = Instant::now();
    let error = client
        .proxy("Sleeper")
        .timeout(Duration::from_millis(300))
        .call::<u64>("sleep", json!({"ms": 3_000}))
        .await
        .expect_err("the caller gives up first");
    assert_eq!(error.kind, ErrorKind::DeadlineExceeded, "{error}");
    eventually("the handler dropped", || Marks::get(&marks.dropped) == 1).await;
    // Well past the end of its sleep, had it gone on.
    let past = started + Duration::from_millis(4_500);
    tokio::time::sleep(past.saturating_duration_since(Instant::now())).await;
    assert_eq!(Marks::get(&marks.slept), 0, "the handler did not go on");

    let slept: u64 = client
        .proxy("Sleeper")
        .timeout(WAIT)
        .call("sleep", json!({"ms": 0}))
        .await
        .expect("still serving");
    assert_eq!((slept, Marks::get(&marks.slept)), (0, 1));
}

#[tokio::test]
async fn a_cancelled_handler_stops_on_a_current_thread_runtime() {
    a_cancelled_handler_stops().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_handler_stops_on_a_multi_thread_runtime() {
    a_cancelled_handler_stops().await;
}

/// A caller that stops waiting (its future dropped, here by an outer
/// timeout far shorter than the call's own) cancels the call: the handler is
/// dropped long before the call's 30 s deadline.
async fn a_caller_that_gives_up_cancels_its_call() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let marks = Marks::default();
    let _sleeper = daemon
        .serve(daemon.service().interface(Sleeper(marks.clone())))
        .await
        .expect("sleeper");
    let client = daemon.client().await.expect("client");

    let proxy = client.proxy("Sleeper").timeout(Duration::from_secs(30));
    let call = proxy.call::<u64>("sleep", json!({"ms": 20_000}));
    let started = Instant::now();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), call)
            .await
            .is_err(),
        "the caller gives up first"
    );
    eventually("the handler dropped", || Marks::get(&marks.dropped) == 1).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "dropped after {:?}: by the cancel, not a deadline",
        started.elapsed()
    );
    assert_eq!(Marks::get(&marks.slept), 0);
}

#[tokio::test]
async fn a_caller_that_gives_up_cancels_its_call_on_a_current_thread_runtime() {
    a_caller_that_gives_up_cancels_its_call().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_gives_up_cancels_its_call_on_a_multi_thread_runtime() {
    a_caller_that_gives_up_cancels_its_call().await;
}
