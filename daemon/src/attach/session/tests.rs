//! Work in an app's one table: requests answered, overdue, or cut by the app
//! leaving; HTTP requests and deliveries beside them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use lymph_proto::v1::DaemonMessage;
use lymph_proto::v1::daemon_message::Kind;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::budget::Permits;
use super::{AppSession, SessionLimits};
use crate::apps::{AppRequest, Completion, Deadline};
use crate::error::{CallError, ErrorKind};
use crate::metrics::EventStep;
use crate::spec::AppSpec;

type Outcomes = Arc<Mutex<Vec<Result<Bytes, CallError>>>>;

fn session(
    max_concurrency: u32,
) -> (
    AppSession,
    mpsc::Receiver<Result<DaemonMessage, tonic::Status>>,
) {
    let (tx, rx) = mpsc::channel(16);
    let limits = SessionLimits {
        max_concurrency,
        max_outgoing: 16,
    };
    let spec = AppSpec {
        app_name: "echo".to_owned(),
        ..AppSpec::default()
    };
    let sweep = Arc::default();
    let session = AppSession::new(
        "id".to_owned(),
        spec,
        limits,
        tx,
        CancellationToken::new(),
        sweep,
    );
    (session, rx)
}

fn recorder() -> (Outcomes, impl Fn() -> Completion) {
    let outcomes: Outcomes = Arc::default();
    let make = {
        let outcomes = outcomes.clone();
        move || -> Completion {
            let outcomes = outcomes.clone();
            Box::new(move |outcome| outcomes.lock().expect("lock").push(outcome))
        }
    };
    (outcomes, make)
}

fn start(session: &AppSession, deadline: Instant, done: Completion) {
    let request = AppRequest {
        interface: "Echo".to_owned(),
        method: "echo".to_owned(),
        body: Bytes::from_static(b"hi"),
        trace_id: "trace".to_owned(),
        traceparent: None,
        deadline: Deadline {
            at: deadline,
            timeout: Duration::from_secs(1),
        },
        now: Instant::now(),
    };
    session.start_request(request, done);
}

fn next_kind(rx: &mut mpsc::Receiver<Result<DaemonMessage, tonic::Status>>) -> Kind {
    let message = rx.try_recv().expect("a message for the app").expect("ok");
    message.kind.expect("a kind")
}

#[tokio::test]
async fn the_reply_runs_the_completion_once() {
    let (session, mut rx) = session(4);
    let (outcomes, done) = recorder();
    start(&session, Instant::now() + Duration::from_secs(5), done());
    let Kind::Request(request) = next_kind(&mut rx) else {
        panic!("expected a request");
    };
    assert_eq!(
        (request.interface.as_str(), request.method.as_str()),
        ("Echo", "echo")
    );
    assert!(session.complete(request.id, Ok(Bytes::from_static(b"back"))));
    assert!(
        !session.complete(request.id, Ok(Bytes::new())),
        "answered once"
    );
    assert_eq!(session.expire(Instant::now() + Duration::from_secs(60)), 0);
    let outcomes = outcomes.lock().expect("lock");
    assert_eq!(outcomes.as_slice(), &[Ok(Bytes::from_static(b"back"))]);
    assert_eq!(session.handled(), 1);
    assert_eq!(session.in_flight(), 0);
}

#[tokio::test]
async fn overdue_requests_fail_and_are_cancelled_at_the_app() {
    let (session, mut rx) = session(4);
    let (outcomes, done) = recorder();
    let now = Instant::now();
    start(&session, now + Duration::from_millis(10), done());
    start(&session, now + Duration::from_secs(60), done());
    let (Kind::Request(first), Kind::Request(_)) = (next_kind(&mut rx), next_kind(&mut rx)) else {
        panic!("expected two requests");
    };
    assert_eq!(session.expire(now), 0, "nothing is due yet");
    assert_eq!(session.expire(now + Duration::from_millis(10)), 1);
    let Kind::Cancel(cancel) = next_kind(&mut rx) else {
        panic!("expected a cancel");
    };
    assert_eq!(cancel.id, first.id);
    assert!(
        !session.complete(first.id, Ok(Bytes::new())),
        "a late reply finds nothing"
    );
    {
        let outcomes = outcomes.lock().expect("lock");
        let kinds: Vec<ErrorKind> = outcomes
            .iter()
            .map(|o| o.as_ref().expect_err("failed").kind)
            .collect();
        assert_eq!(kinds, [ErrorKind::DeadlineExceeded]);
    }
    assert_eq!(session.in_flight(), 1, "the other one still waits");
}

#[tokio::test]
async fn a_closing_session_fails_what_waits_and_refuses_more() {
    let (session, _rx) = session(4);
    let (outcomes, done) = recorder();
    let deadline = Instant::now() + Duration::from_secs(60);
    start(&session, deadline, done());
    session.close();
    start(&session, deadline, done());
    let outcomes = outcomes.lock().expect("lock");
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes
            .iter()
            .all(|o| o.as_ref().expect_err("failed").kind == ErrorKind::Unavailable)
    );
}

#[tokio::test]
async fn past_the_concurrency_limit_it_is_refused_at_once() {
    let (session, _rx) = session(1);
    let (outcomes, done) = recorder();
    let deadline = Instant::now() + Duration::from_secs(60);
    start(&session, deadline, done());
    start(&session, deadline, done());
    let outcomes = outcomes.lock().expect("lock");
    assert_eq!(outcomes.len(), 1, "only the second one ended");
    assert_eq!(
        outcomes[0].as_ref().expect_err("refused").kind,
        ErrorKind::Overloaded
    );
}

#[tokio::test]
async fn http_requests_share_the_table_ids_and_limit() {
    let (session, mut rx) = session(2);
    let (outcomes, done) = recorder();
    let deadline = Instant::now() + Duration::from_secs(60);
    start(&session, deadline, done());
    let http: Arc<Mutex<Vec<Result<lymph_proto::v1::HttpResponse, CallError>>>> = Arc::default();
    let record = |http: &Arc<Mutex<Vec<_>>>| {
        let http = http.clone();
        Box::new(move |outcome| http.lock().expect("lock").push(outcome))
            as crate::apps::HttpCompletion
    };
    let after = Deadline {
        at: deadline,
        timeout: Duration::from_secs(60),
    };
    session.start_http(Default::default(), after, record(&http));
    session.start_http(Default::default(), after, record(&http));
    let (Kind::Request(rpc), Kind::HttpRequest(web)) = (next_kind(&mut rx), next_kind(&mut rx))
    else {
        panic!("expected a request, then an http request");
    };
    assert_ne!(rpc.id, web.id, "one id space");
    assert_eq!(session.in_flight(), 2);
    {
        let http = http.lock().expect("lock");
        assert_eq!(http.len(), 1, "the third is over the shared limit");
        assert_eq!(
            http[0].as_ref().expect_err("refused").kind,
            ErrorKind::Overloaded
        );
    }
    assert!(
        !session.complete(web.id, Ok(Bytes::new())),
        "an RPC reply does not answer an HTTP request"
    );
    let response = lymph_proto::v1::HttpResponse {
        id: web.id,
        status: 204,
        ..Default::default()
    };
    assert!(session.complete_http(response));
    assert_eq!(http.lock().expect("lock").len(), 2);
    assert!(session.complete(rpc.id, Ok(Bytes::new())));
    assert_eq!(outcomes.lock().expect("lock").len(), 1);
    assert_eq!(session.handled(), 2);
    assert_eq!(session.in_flight(), 0);
}

#[tokio::test]
async fn deliveries_are_settled_once_and_counted_handled() {
    let (session, _rx) = session(1);
    let (settle, mut settled) = mpsc::unbounded_channel();
    let first = session
        .track_delivery(&settle, handed(7, false), Permits::default())
        .expect("tracked");
    let second = session
        .track_delivery(&settle, handed(8, true), Permits::default())
        .expect("tracked");
    assert_eq!(session.in_flight(), 0, "deliveries are not requests");
    assert_eq!(session.holding(), 2, "but a drain waits for them");
    let answered = |id, fail| {
        session
            .settle(id, fail)
            .map(|s| (s.event_type, s.step, s.held < Duration::from_secs(5)))
    };
    assert_eq!(
        answered(first, None),
        Some(("t".to_owned(), EventStep::Acked, true))
    );
    assert_eq!(answered(first, None), None, "settled once");
    assert_eq!(
        answered(second, Some("boom".to_owned())),
        Some(("t".to_owned(), EventStep::Dropped, true)),
        "a fail on the last try drops the event"
    );
    assert!(matches!(
        settled.try_recv(),
        Ok(crate::events::Settle::Ack(7))
    ));
    assert!(matches!(
        settled.try_recv(),
        Ok(crate::events::Settle::Fail { tag: 8, .. })
    ));
    assert_eq!(session.handled(), 2, "acks and fails count as handled");
    assert_eq!(session.holding(), 0);
    session.close();
    assert!(
        session
            .track_delivery(&settle, handed(9, false), Permits::default())
            .is_none(),
        "closed"
    );
}

#[tokio::test]
async fn work_past_its_deadline_is_not_started() {
    let (session, mut rx) = session(4);
    let (outcomes, done) = recorder();
    start(&session, Instant::now(), done());
    let outcomes = outcomes.lock().expect("lock");
    assert_eq!(
        outcomes[0].as_ref().expect_err("refused").kind,
        ErrorKind::DeadlineExceeded
    );
    assert!(rx.try_recv().is_err(), "nothing reached the app");
    assert_eq!(session.in_flight(), 0);
}

#[tokio::test]
async fn a_cancelled_request_ends_cancelled_and_the_app_is_told() {
    let (session, mut rx) = session(4);
    let (outcomes, done) = recorder();
    start(&session, Instant::now() + Duration::from_secs(60), done());
    let Kind::Request(request) = next_kind(&mut rx) else {
        panic!("expected a request");
    };
    assert!(session.cancel_request(request.id, "gone"));
    let Kind::Cancel(cancel) = next_kind(&mut rx) else {
        panic!("expected a cancel");
    };
    assert_eq!((cancel.id, cancel.reason.as_str()), (request.id, "gone"));
    assert!(!session.cancel_request(request.id, "gone"), "once");
    assert!(
        !session.complete(request.id, Ok(Bytes::new())),
        "a late reply finds nothing"
    );
    let outcomes = outcomes.lock().expect("lock");
    assert_eq!(
        outcomes[0].as_ref().expect_err("cancelled").kind,
        ErrorKind::Cancelled
    );
}

#[tokio::test]
async fn a_held_delivery_keeps_its_permits_until_it_is_settled() {
    let (session, _rx) = session(1);
    let (outcomes, done) = recorder();
    let (gate, prefetch) = session.budget.gate("Echo", "on_it");
    assert_eq!(prefetch, 1, "the share of a budget of 1");
    let permits = session.budget.delivery(&gate).await.expect("permits");
    let (settle, _settled) = mpsc::unbounded_channel();
    let id = session
        .track_delivery(&settle, handed(1, false), permits)
        .expect("tracked");
    assert_eq!(gate.held(), 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    start(&session, deadline, done());
    assert_eq!(
        outcomes.lock().expect("lock")[0]
            .as_ref()
            .expect_err("refused")
            .kind,
        ErrorKind::Overloaded,
        "one budget: the delivery holds it"
    );
    assert!(session.settle(id, None).is_some());
    assert_eq!(gate.held(), 0, "settled: its permits are back");
    start(&session, deadline, done());
    assert_eq!(outcomes.lock().expect("lock").len(), 1, "this one runs");
    assert_eq!(session.in_flight(), 1);
}

/// A delivery of type "t" with bus tag `tag`, no span.
fn handed(tag: u64, last_try: bool) -> super::Handed<'static> {
    super::Handed {
        tag,
        event_type: "t",
        last_try,
        span: None,
    }
}
