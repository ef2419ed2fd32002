//! One entry per parser and its seeds. Each entry parses as the daemon does
//! and checks, for what it accepts, that encoding it again and decoding that
//! gives the same thing (where the daemon has an encoder).

use std::path::Path;

use bytes::Bytes;

use crate::config::{Config, ConfigError, apply_env};
use crate::events::Event;
use crate::events::amqp::envelope;
use crate::registry::Instance;
use crate::registry::zookeeper::node;
use crate::rpc::frame::{self, Headers, Limits, Message, MessageType};
use crate::rpc::zmtp_fuzz;

/// The ZMTP reader: `input` is a peer's bytes on the RPC port (greeting,
/// then frames), arriving in reads of `chunk` bytes.
pub fn zmtp(input: &[u8], chunk: usize) -> Result<usize, String> {
    zmtp_fuzz::read_connection(input, chunk)
}

pub fn zmtp_seeds() -> Vec<Vec<u8>> {
    zmtp_fuzz::seeds()
}

/// The limits the codec is fuzzed with: small, so mutations cross them.
const FRAME_LIMITS: Limits = Limits {
    max_frame_bytes: 1024,
    max_message_bytes: 2048,
};

/// The lymph frame codec: `frames` as a ROUTER delivers them (identity first).
pub fn frame(frames: &[Bytes]) -> Result<(), String> {
    let (identity, message) = frame::decode(frames, &FRAME_LIMITS).map_err(|e| e.to_string())?;
    let again = frame::encode(&identity, &message);
    let roomy = Limits {
        max_frame_bytes: usize::MAX,
        max_message_bytes: usize::MAX,
    };
    match frame::decode(&again, &roomy) {
        Ok(back) => assert_eq!(back, (identity, message.clone()), "decode(encode(m)) != m"),
        Err(error) => panic!("our own encoding does not decode: {error}"),
    }
    // What the daemon reads of bodies itself: a ping's payload (sent back
    // as a reply body, so it must be one value) and an ERROR's fields.
    let payload = frame::ping_payload(&message.body);
    assert!(is_one_value(&payload), "ping payload is not one value");
    let _ = frame::decode_error_body(&message.body);
    Ok(())
}

/// The skip-parser's answer (checked against rmpv in the codec's properties).
fn is_one_value(bytes: &[u8]) -> bool {
    crate::rpc::frame::skip::check_one_value(bytes).is_ok()
}

pub fn frame_seeds() -> Vec<Vec<Bytes>> {
    let message = |kind, subject: &str, headers: Headers, body: &'static [u8]| Message {
        id: "bda47a7f1feb418fa7bbfa8aa248d191".to_owned(),
        kind,
        subject: subject.to_owned(),
        headers,
        body: Bytes::from_static(body),
    };
    let traced = Headers {
        trace_id: Some("tv-trace-0001".to_owned()),
        version: Some("1.2.0".to_owned()),
        ..Headers::default()
    };
    let nack = Headers {
        reason: Some(crate::rpc::NackReason {
            kind: crate::error::ErrorKind::UnknownMethod,
            message: "no such method".to_owned(),
        }),
        ..traced.clone()
    };
    let error_body = frame::encode_error_body("ProbeError", "bad input");
    let mut seeds = vec![
        frame::encode(
            "tcp://127.0.0.1:53326",
            &message(
                MessageType::Req,
                "Greeting.greet",
                traced.clone(),
                b"\x81\xa4name\xa3Joe",
            ),
        ),
        frame::encode(
            "tcp://127.0.0.1:53326",
            &message(
                MessageType::Req,
                "lymph.ping",
                traced.clone(),
                b"\x81\xa7payload\xc4\x00",
            ),
        ),
        frame::encode("p", &message(MessageType::Nack, "id", nack, frame::NIL)),
        frame::encode(
            "p",
            &message(
                MessageType::Rep,
                "id",
                Headers::default(),
                b"\x92\xcb\x3f\xf0\0\0\0\0\0\0\xc3",
            ),
        ),
    ];
    let mut error = frame::encode("p", &message(MessageType::Error, "id", traced, frame::NIL));
    error[5] = error_body;
    seeds.push(error);
    // Python 2 lymph's reply: bin keys (`docs/wire.md` §7.1, TV-2).
    seeds.push(vec![
        Bytes::from_static(b"tcp://127.0.0.1:53326"),
        Bytes::from_static(b"bda47a7f1feb418fa7bbfa8aa248d191"),
        Bytes::from_static(b"REP"),
        Bytes::from_static(b"bc99e39af2f84036b78568b6a3cae04e"),
        Bytes::from_static(b"\x82\xc4\x07version\xc0\xc4\x08trace_id\xadtv-trace-0001"),
        Bytes::from_static(b"\xa8Hi, Joe!"),
    ]);
    seeds
}

/// The AMQP envelope decoder: `payload` is a delivered message's body.
pub fn envelope(payload: &[u8]) -> Result<(), String> {
    let incoming = envelope::decode(payload).map_err(|e| e.to_string())?;
    let event = &incoming.event;
    assert!(
        event.body.len() <= payload.len() && is_one_value(&event.body),
        "the event body is not one value sliced from the envelope"
    );
    assert!(!event.event_type.is_empty(), "an event without a type");
    // The retried copy the daemon publishes: the same event, the same
    // headers. Compared as bytes (a NaN header is not equal to itself).
    let encode = |incoming: &envelope::Incoming| {
        envelope::encode(
            &incoming.event,
            &incoming.source,
            incoming.retry_count,
            &incoming.other_headers,
        )
    };
    let again = encode(&incoming);
    match envelope::decode(&again) {
        Ok(back) => {
            assert_eq!(&back.event, event, "the event changed on a round trip");
            assert_eq!(encode(&back), again, "the envelope changed on a round trip");
        }
        Err(error) => panic!("our own envelope does not decode: {error}"),
    }
    Ok(())
}

pub fn envelope_seeds() -> Vec<Vec<u8>> {
    let event = Event {
        id: "5026be6016aed185798b5d6ce1caeb6e".to_owned(),
        event_type: "greeted".to_owned(),
        body: Bytes::from_static(b"\x81\xa4name\xa3Joe"),
        trace_id: "tv-evt-0001".to_owned(),
        traceparent: crate::spans::traceparent::parse(
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
    };
    let other = vec![("x-origin".to_owned(), Bytes::from_static(&[0x07]))];
    vec![
        envelope::encode(&event, "01c966e682b82d66d4a109a0cb7421b4", None, &[]),
        envelope::encode(&event, "source", Some(3), &other),
        // Python 2 lymph's envelope: bin keys and values, no id (TV-13).
        b"\x84\xc4\x04body\x81\xa4name\xa3Joe\xc4\x07headers\x81\xc4\x08trace_id\xc4\x0btv-evt-0001\
          \xc4\x04type\xc4\x07greeted\xc4\x06source\xc4\x0201"
            .to_vec(),
    ]
}

/// The ZooKeeper node decoder: `data` is an instance znode's content.
pub fn node(data: &[u8]) -> Result<(), String> {
    let instance = node::decode("Greeting", "n1", data).map_err(|e| e.to_string())?;
    let again = node::encode(&instance);
    // A node is re-encoded only for our own instances; a peer's huge
    // hostname, written twice (fqdn too), may not fit: not a round trip.
    if again.len() <= node::MAX_NODE_BYTES {
        match node::decode("Greeting", "n1", &again) {
            Ok(back) => assert_eq!(back, instance, "decode(encode(node)) != node"),
            Err(error) => panic!("our own node does not decode: {error}"),
        }
    }
    Ok(())
}

pub fn node_seeds() -> Vec<Vec<u8>> {
    let instance = Instance {
        service: "Greeting".to_owned(),
        id: "n1".to_owned(),
        identity: "04def9148aa5a14b2cb198f82244f1c5".to_owned(),
        endpoint: "tcp://127.0.0.1:4000".to_owned(),
        version: Some("1.5.0".to_owned()),
        ip: Some("127.0.0.1".to_owned()),
        hostname: Some("vm".to_owned()),
        log_endpoint: Some("tcp://[::1]:4001".to_owned()),
        app_name: Some("greeting".to_owned()),
    };
    vec![
        node::encode(&instance),
        // Python 2 lymph's node (`docs/wire.md` §7.3).
        br#"{"endpoint": "tcp://127.0.0.1:53326", "ip": "127.0.0.1", "hostname": "vm", "fqdn": "localhost", "backdoor_endpoint": null, "log_endpoint": "tcp://127.0.0.1:39011", "version": null, "monitoring_endpoint": "tcp://127.0.0.1:42699", "type": false, "id": "ae0117fda6928bd66de76968251eb8e3", "identity": "04def9148aa5a14b2cb198f82244f1c5"}"#.to_vec(),
    ]
}

/// The config loader: `yaml` as a config file, then `env` as `LYMPHD_*`
/// overrides, then validation. A refusal must be a `ConfigError` naming the
/// file, the variable or the problem; what passes must be usable (every
/// duration can be added to a clock's reading).
pub fn config(yaml: &str, env: &[(String, String)]) -> Result<(), String> {
    let origin = Path::new("fuzz.yml");
    let mut config = match Config::from_yaml(yaml, origin) {
        Ok(config) => config,
        Err(error) => {
            let text = error.to_string();
            assert!(
                text.contains("fuzz.yml"),
                "a parse error without the file: {text}"
            );
            return Err(text);
        }
    };
    let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Err(error) = apply_env(&mut config, lookup) {
        let ConfigError::Env { name, .. } = &error else {
            panic!("an environment error of another kind: {error}");
        };
        assert!(
            error.to_string().contains(name),
            "an environment error without the variable: {error}"
        );
        return Err(error.to_string());
    }
    if let Err(error) = config.validate() {
        let text = error.to_string();
        assert!(
            matches!(error, ConfigError::Invalid(_)) && text.len() > "invalid config: ".len(),
            "a validation error without the problem: {text}"
        );
        return Err(text);
    }
    let now = std::time::Instant::now();
    for (key, duration) in config.durations() {
        assert!(
            now.checked_add(duration).is_some(),
            "{key} {duration:?} passed validation but overflows a clock"
        );
    }
    Ok(())
}

pub fn config_seeds() -> Vec<String> {
    let conf = include_str!("../../../conf/lymphd.yml");
    vec![
        conf.to_owned(),
        "rpc:\n  default_timeout: 250ms\n  max_body_bytes: 1024\n  allowed_peers: [10.0.0.0/8, 127.0.0.1]\n"
            .to_owned(),
        "registry:\n  backend: zookeeper\n  hosts: 127.0.0.1:2181/lymph\n  session_timeout: 5s\n\
         events:\n  backend: amqp\n  url: amqp://127.0.0.1:5672/%2f\n  mode: durable\n\
         runtime:\n  workers: 2\nlog:\n  level: lymphd=debug,info\n  format: json\n"
            .to_owned(),
        "apps: {default_concurrency: 8, max_concurrency: 16}\nweb: {ip: '::1', timeout: 1m}\n"
            .to_owned(),
    ]
}

/// Environment variables the loader reads, for generated overrides.
pub const ENV_NAMES: &[&str] = &[
    "LYMPHD_LOG",
    "LYMPHD_RUNTIME_WORKERS",
    "LYMPHD_RPC_DEFAULT_TIMEOUT",
    "LYMPHD_RPC_MAX_BODY_BYTES",
    "LYMPHD_APPS_DEFAULT_CONCURRENCY",
    "LYMPHD_RPC_IP",
    "LYMPHD_RPC_PORT",
    "LYMPHD_WEB_IP",
    "LYMPHD_WEB_TIMEOUT",
    "LYMPHD_LOG_PUBLISH",
    "LYMPHD_ZOOKEEPER_HOSTS",
    "LYMPHD_AMQP_URL",
    "LYMPHD_AMQP_MODE",
    "LYMPHD_RPC_ALLOWED_PEERS",
    "LYMPHD_RPC_IDLE_TIMEOUT",
    "LYMPHD_SHUTDOWN_GRACE_PERIOD",
];
