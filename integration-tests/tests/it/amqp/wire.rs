//! The wire seen raw (lapin): Python 2's bin-keyed envelope reaches a
//! lymphd consumer; what lymphd publishes is lymph's envelope with str keys.

use std::time::Duration;

use integration_tests::names::unique;
use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lymphd::conformance::events::{AmqpMode, EventBus, Refusal, Settle, conformance};
use rmpv::Value;

use super::Vhost;

fn bin(s: &str) -> Value {
    Value::Binary(s.as_bytes().to_vec())
}

fn lymph_properties(content_type: &str) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(content_type.into())
        .with_content_encoding("binary".into())
        .with_delivery_mode(2)
        .with_priority(0)
}

/// What Python 2 lymph publishes (TV-13: every key and string bin) reaches
/// a lymphd consumer with its body bytes and trace id; junk before it (no
/// lymph content type, undecodable envelope) is dropped, not redelivered.
/// The queue lymphd declared in lymph mode is redeclared with lymph's own
/// flags without a 406.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python2_envelope_is_delivered() {
    let vhost = Vhost::new().await;
    let bus = vhost.bus(AmqpMode::Lymph).await;
    let ty = unique("greeted");
    let sub = conformance::subscription("Py", "p0", &ty);
    let queue = sub.queue_name();
    let mut consumer = bus.consume(sub).await.expect("consume");

    let raw = vhost.raw().await;
    let channel = raw.create_channel().await.expect("channel");
    // Exactly lymph's declaration (kombu): non-durable, not auto-delete, x-ha-policy.
    let mut args = FieldTable::default();
    args.insert("x-ha-policy".into(), AMQPValue::LongString("all".into()));
    channel
        .queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), args)
        .await
        .expect("lymph's own flags match ours (no 406)");

    let body = Value::Map(vec![(Value::from("name"), Value::from("Joe"))]);
    let envelope = Value::Map(vec![
        (bin("body"), body.clone()),
        (
            bin("headers"),
            Value::Map(vec![(bin("trace_id"), bin("tv-evt-0001"))]),
        ),
        (bin("type"), bin(&ty)),
        (bin("source"), bin("01c966e682b82d66d4a109a0cb7421b4")),
    ]);
    let mut payload = Vec::new();
    rmpv::encode::write_value(&mut payload, &envelope).expect("encode");
    let publish = |payload: Vec<u8>, properties: BasicProperties| {
        let channel = channel.clone();
        let ty = ty.clone();
        async move {
            channel
                .basic_publish(
                    "lymph".into(),
                    ty.as_str().into(),
                    BasicPublishOptions::default(),
                    &payload,
                    properties,
                )
                .await
                .expect("publish")
                .await
                .expect("confirm (not requested)")
        }
    };
    publish(payload.clone(), lymph_properties("application/x-msgpack")).await;
    publish(
        vec![0xc1, 0x00],
        lymph_properties("application/lymph+x-msgpack"),
    )
    .await;
    publish(payload, lymph_properties("application/lymph+x-msgpack")).await;

    let d = tokio::time::timeout(Duration::from_secs(15), consumer.deliveries.recv())
        .await
        .expect("delivered in time")
        .expect("consumer open");
    let mut expected_body = Vec::new();
    rmpv::encode::write_value(&mut expected_body, &body).expect("encode");
    assert_eq!(
        d.event.body.as_ref(),
        expected_body.as_slice(),
        "body bytes untouched"
    );
    assert_eq!(d.event.trace_id, "tv-evt-0001");
    assert_eq!(d.event.event_type, ty);
    assert_eq!(d.attempt, 1);
    assert_eq!(d.event.id.len(), 32, "an id is made up: {}", d.event.id);
    consumer.settle.send(Settle::Ack(d.tag)).expect("ack");
    if let Ok(Some(extra)) =
        tokio::time::timeout(Duration::from_secs(1), consumer.deliveries.recv()).await
    {
        panic!("the junk was redelivered: {extra:?}");
    }
    assert_eq!(consumer.health.refused_count(Refusal::Malformed), 2);
    let _ = raw.close(200, "done".into()).await;
}

/// What we publish, seen raw: lymph's properties and a str-keyed envelope
/// (what py2 and py3 lymph both decode), the body spliced in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_envelope_on_the_wire() {
    let vhost = Vhost::new().await;
    let bus = vhost.bus(AmqpMode::Lymph).await;
    let raw = vhost.raw().await;
    let channel = raw.create_channel().await.expect("channel");
    let ty = unique("wire");
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare");
    channel
        .queue_bind(
            queue.name().clone(),
            "lymph".into(),
            ty.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let event = conformance::event(&ty, 1);
    bus.emit(event.clone(), Duration::ZERO).await.expect("emit");
    let message = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(m) = channel
                .basic_get(queue.name().clone(), BasicGetOptions { no_ack: true })
                .await
                .expect("get")
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("our event in time");
    let props = &message.delivery.properties;
    assert_eq!(
        props.content_type().as_ref().map(|s| s.as_str()),
        Some("application/lymph+x-msgpack")
    );
    assert_eq!(
        props.content_encoding().as_ref().map(|s| s.as_str()),
        Some("binary")
    );
    assert_eq!(*props.delivery_mode(), Some(2));
    let envelope =
        rmpv::decode::read_value(&mut message.delivery.data.as_slice()).expect("msgpack");
    let get = |key: &str| {
        envelope
            .as_map()
            .expect("a map")
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("str key {key} in {envelope}"))
    };
    assert_eq!(get("type").as_str(), Some(ty.as_str()));
    assert_eq!(get("id").as_str(), Some(event.id.as_str()));
    assert_eq!(get("source").as_str(), Some(bus.config().identity.as_str()));
    let mut body = Vec::new();
    rmpv::encode::write_value(&mut body, &get("body")).expect("encode");
    assert_eq!(body.as_slice(), event.body.as_ref());
    let headers = get("headers");
    let trace = headers
        .as_map()
        .expect("headers map")
        .iter()
        .find(|(k, _)| k.as_str() == Some("trace_id"));
    assert_eq!(
        trace.and_then(|(_, v)| v.as_str()),
        Some(event.trace_id.as_str())
    );
    let _ = raw.close(200, "done".into()).await;
}
