//! The conformance suite of `trait EventBus`, run against every backend:
//! once per service (counted by event id), broadcast, delay, ack/fail/retry/
//! drop, redelivery when a consumer goes away, the bound, the prefetch (no
//! more unsettled deliveries at once than it says). Names carry a random
//! suffix so runs against a shared broker do not meet; every wait has a deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{
    Consumer, ConsumerState, Delivery, Event, EventBus, EventError, Refusal, Settle, Subscription,
};

/// How long a suite test waits for a delivery it expects.
pub const SETTLE: Duration = Duration::from_secs(15);
/// How long it waits to be sure nothing more arrives.
pub const QUIET: Duration = Duration::from_millis(500);

fn unique(name: &str) -> String {
    format!("{name}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The body is one msgpack value (the string `body <n>`), as apps send and
/// as lymph's envelope needs.
pub fn event(event_type: &str, n: usize) -> Event {
    let mut body = Vec::new();
    let _ = rmpv::encode::write_value(&mut body, &rmpv::Value::from(format!("body {n}")));
    Event {
        id: format!("{n:08}-{}", uuid::Uuid::new_v4().simple()),
        event_type: event_type.to_owned(),
        body: Bytes::from(body),
        trace_id: format!("trace-{n}"),
        traceparent: None,
    }
}

pub fn subscription(service: &str, instance: &str, event_type: &str) -> Subscription {
    Subscription {
        service: service.to_owned(),
        instance: instance.to_owned(),
        handler: format!("on_{event_type}"),
        event_type: event_type.to_owned(),
        broadcast: false,
        retry: 0,
        prefetch: 16,
    }
}

/// On a healthy bus a consumer is attached when `consume` returns (so an
/// emit made next reaches it) and says so in its health.
async fn consume(bus: &dyn EventBus, sub: Subscription) -> Consumer {
    let consumer = tokio::time::timeout(SETTLE, bus.consume(sub))
        .await
        .expect("consume in time")
        .expect("consume");
    assert_eq!(consumer.health.state(), ConsumerState::Consuming);
    for why in [Refusal::TooLarge, Refusal::Malformed] {
        assert_eq!(consumer.health.refused_count(why), 0);
    }
    consumer
}

async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(SETTLE, consumer.deliveries.recv())
        .await
        .expect("a delivery within the deadline")
        .expect("consumer open")
}

async fn nothing_more(consumer: &mut Consumer) {
    if let Ok(Some(d)) = tokio::time::timeout(QUIET, consumer.deliveries.recv()).await {
        panic!("unexpected delivery {:?}", d.event.id);
    }
}

fn ack(consumer: &Consumer, d: &Delivery) {
    consumer.settle.send(Settle::Ack(d.tag)).expect("settle");
}

/// Drains several consumers concurrently, acking, until `total` deliveries
/// arrived; returns event id -> number of deliveries, per consumer index.
async fn collect(consumers: Vec<Consumer>, total: usize) -> (HashMap<String, usize>, Vec<usize>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (index, mut consumer) in consumers.into_iter().enumerate() {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(d) = consumer.deliveries.recv().await {
                let _ = consumer.settle.send(Settle::Ack(d.tag));
                if tx.send((index, d.event.id)).is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let mut by_id = HashMap::new();
    let mut per_consumer = vec![0; tasks.len()];
    let deadline = Instant::now() + SETTLE;
    while by_id.values().sum::<usize>() < total {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((index, id))) = tokio::time::timeout(left, rx.recv()).await else {
            panic!(
                "only {} of {} arrived",
                by_id.values().sum::<usize>(),
                crate::plural::count(total as u64, "delivery", "deliveries")
            );
        };
        *by_id.entry(id).or_insert(0) += 1;
        per_consumer[index] += 1;
    }
    // Anything extra would be a duplicate.
    if let Ok(Some((_, id))) = tokio::time::timeout(QUIET, rx.recv()).await {
        *by_id.entry(id).or_insert(0) += 1;
    }
    for task in tasks {
        task.abort();
    }
    (by_id, per_consumer)
}

pub async fn once_per_service(bus: &dyn EventBus) {
    let ty = unique("greeted");
    let mut listen = Vec::new();
    for i in 0..3 {
        listen.push(consume(bus, subscription("Listen", &format!("l{i}"), &ty)).await);
    }
    let audit = vec![consume(bus, subscription("Audit", "a0", &ty)).await];
    let events = 300;
    let mut ids = Vec::new();
    for n in 0..events {
        let e = event(&ty, n);
        ids.push(e.id.clone());
        bus.emit(e, Duration::ZERO).await.expect("emit");
    }
    let (listen_ids, per_instance) = collect(listen, events).await;
    let (audit_ids, _) = collect(audit, events).await;
    for id in &ids {
        assert_eq!(
            listen_ids.get(id),
            Some(&1),
            "Listen handles {id} exactly once"
        );
        assert_eq!(
            audit_ids.get(id),
            Some(&1),
            "Audit handles {id} exactly once"
        );
    }
    assert!(
        per_instance.iter().all(|n| *n > 0),
        "every Listen instance took a share: {per_instance:?}"
    );
}

pub async fn broadcast_reaches_every_instance(bus: &dyn EventBus) {
    let ty = unique("config_changed");
    let mut consumers = Vec::new();
    for i in 0..3 {
        let mut sub = subscription("Cache", &format!("c{i}"), &ty);
        sub.broadcast = true;
        consumers.push(consume(bus, sub).await);
    }
    let events = 50;
    for n in 0..events {
        bus.emit(event(&ty, n), Duration::ZERO).await.expect("emit");
    }
    let (by_id, per_instance) = collect(consumers, events * 3).await;
    assert_eq!(by_id.len(), events);
    assert!(
        by_id.values().all(|n| *n == 3),
        "each event to each instance: {by_id:?}"
    );
    assert_eq!(per_instance, vec![events; 3]);
}

/// How early a delayed event may arrive, by the test's clock.
const DELAY_TOLERANCE: Duration = Duration::from_millis(20);

pub async fn delay_is_respected(bus: &dyn EventBus) {
    let ty = unique("later");
    let mut consumer = consume(bus, subscription("Later", "l0", &ty)).await;
    let started = Instant::now();
    bus.emit(event(&ty, 1), Duration::from_millis(1500))
        .await
        .expect("emit delayed");
    bus.emit(event(&ty, 2), Duration::ZERO)
        .await
        .expect("emit now");
    let first = next(&mut consumer).await;
    assert!(
        first.event.id.starts_with("00000002"),
        "the undelayed one first"
    );
    ack(&consumer, &first);
    let second = next(&mut consumer).await;
    let waited = started.elapsed();
    assert!(second.event.id.starts_with("00000001"));
    // RabbitMQ expires a message's TTL on its own millisecond clock, and was
    // seen handing it over 2.3 ms short of 1.5 s as this test counts it.
    assert!(
        waited >= Duration::from_millis(1500) - DELAY_TOLERANCE,
        "arrived after {waited:?}"
    );
    ack(&consumer, &second);
    nothing_more(&mut consumer).await;
}

pub async fn fail_retries_then_drops(bus: &dyn EventBus) {
    let ty = unique("flaky");
    let mut sub = subscription("Flaky", "f0", &ty);
    sub.retry = 2;
    let mut consumer = consume(bus, sub).await;
    let e = event(&ty, 7);
    bus.emit(e.clone(), Duration::ZERO).await.expect("emit");
    for attempt in 1..=3 {
        let d = next(&mut consumer).await;
        assert_eq!(d.event, e, "the same event comes back");
        assert_eq!(d.attempt, attempt);
        consumer
            .settle
            .send(Settle::Fail {
                tag: d.tag,
                reason: "boom".to_owned(),
            })
            .expect("settle");
    }
    // Past retry = 2 (three attempts) it is dropped, not redelivered forever.
    nothing_more(&mut consumer).await;

    // An acked event is never seen again.
    bus.emit(event(&ty, 8), Duration::ZERO).await.expect("emit");
    let d = next(&mut consumer).await;
    assert_eq!(d.attempt, 1);
    ack(&consumer, &d);
    nothing_more(&mut consumer).await;
}

pub async fn unacked_go_to_another_consumer(bus: &dyn EventBus) {
    let ty = unique("handover");
    let mut doomed = consume(bus, subscription("Hand", "h0", &ty)).await;
    let e = event(&ty, 1);
    bus.emit(e.clone(), Duration::ZERO).await.expect("emit");
    let held = next(&mut doomed).await;
    assert_eq!(held.event, e);
    let mut survivor = consume(bus, subscription("Hand", "h1", &ty)).await;
    // The doomed consumer dies holding the event (its app was killed).
    drop(doomed);
    let again = next(&mut survivor).await;
    assert_eq!(again.event, e, "the survivor gets the unacked event");
    ack(&survivor, &again);
    nothing_more(&mut survivor).await;
}

pub async fn no_subscriber_drops(bus: &dyn EventBus) {
    let ty = unique("nobody");
    bus.emit(event(&ty, 1), Duration::ZERO)
        .await
        .expect("emit with no subscriber is fine");
    let mut late = consume(bus, subscription("Late", "l0", &ty)).await;
    nothing_more(&mut late).await;
}

/// A consumer is handed at most `prefetch` unsettled deliveries at once; the
/// rest wait in the queue until it settles some, then come in order.
pub async fn prefetch_bounds_unsettled(bus: &dyn EventBus) {
    let ty = unique("bounded");
    let mut sub = subscription("Bounded", "b0", &ty);
    sub.prefetch = 2;
    let mut consumer = consume(bus, sub).await;
    for n in 0..5 {
        bus.emit(event(&ty, n), Duration::ZERO).await.expect("emit");
    }
    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    nothing_more(&mut consumer).await;
    ack(&consumer, &first);
    let third = next(&mut consumer).await;
    nothing_more(&mut consumer).await;
    ack(&consumer, &second);
    ack(&consumer, &third);
    let mut seen = vec![first, second, third];
    for _ in 0..2 {
        let d = next(&mut consumer).await;
        ack(&consumer, &d);
        seen.push(d);
    }
    nothing_more(&mut consumer).await;
    let ids: Vec<&str> = seen.iter().map(|d| &d.event.id[..8]).collect();
    assert_eq!(
        ids,
        ["00000000", "00000001", "00000002", "00000003", "00000004"]
    );
}

/// `limit` must be the bus's per-queue bound.
pub async fn full_queue_refuses_emit(bus: &dyn EventBus, limit: usize) {
    let ty = unique("flood");
    let mut sub = subscription("Slow", "s0", &ty);
    sub.prefetch = 1;
    let mut consumer = consume(bus, sub).await;
    // One is held by the consumer, `limit` wait in the queue.
    for n in 0..=limit {
        bus.emit(event(&ty, n), Duration::ZERO)
            .await
            .expect("within the bound");
    }
    let err = bus
        .emit(event(&ty, limit + 1), Duration::ZERO)
        .await
        .expect_err("over the bound");
    assert!(matches!(err, EventError::QueueFull { .. }), "{err}");
    // Draining makes room again.
    let d = next(&mut consumer).await;
    ack(&consumer, &d);
    let d = next(&mut consumer).await;
    ack(&consumer, &d);
    bus.emit(event(&ty, limit + 2), Duration::ZERO)
        .await
        .expect("room again");
}

/// A delay past `MAX_DELAY` is refused as invalid, whatever the backend.
pub async fn overlong_delay_is_refused(bus: &dyn EventBus) {
    let ty = unique("toolate");
    let refused = bus
        .emit(event(&ty, 1), super::MAX_DELAY + Duration::from_millis(1))
        .await
        .expect_err("a delay past MAX_DELAY");
    assert!(matches!(refused, EventError::Invalid(_)), "{refused:?}");
    let refused = bus
        .emit(event(&ty, 1), Duration::from_millis(u64::MAX))
        .await
        .expect_err("u64::MAX ms");
    assert!(refused.to_string().contains("longest"), "{refused}");
}
