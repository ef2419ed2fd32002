//! Dispatcher tests with a scripted local app and the embedded registry.

use std::sync::Arc;

use bytes::Bytes;
use rmpv::Value;

use super::*;
use crate::apps::{AppRequest, Completion, Deadline};
use crate::registry::{EmbeddedStore, Instance, Registry};
use crate::spec::{AppSpec, InterfaceDef, MethodDef};

struct Echo {
    identity: String,
    spec: AppSpec,
}

impl LocalApp for Echo {
    fn identity(&self) -> &str {
        &self.identity
    }
    fn spec(&self) -> &AppSpec {
        &self.spec
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn start_request(&self, _request: AppRequest, done: Completion) -> Option<u64> {
        done(Ok(Bytes::from(self.identity.clone())));
        None
    }
    fn cancel_request(&self, _id: u64, _reason: &str) -> bool {
        false
    }
    fn start_http(
        &self,
        _request: lymph_proto::v1::HttpRequest,
        _deadline: Deadline,
        done: crate::apps::HttpCompletion,
    ) {
        done(Err(CallError::app_gone()));
    }
}

struct Apps(Vec<Arc<Echo>>);

impl LocalApps for Apps {
    fn app(&self, identity: &str) -> Option<Arc<dyn LocalApp>> {
        self.0
            .iter()
            .find(|a| a.identity == identity)
            .map(|a| a.clone() as Arc<dyn LocalApp>)
    }

    fn ready_apps(&self) -> Vec<Arc<dyn LocalApp>> {
        self.0
            .iter()
            .map(|a| a.clone() as Arc<dyn LocalApp>)
            .collect()
    }
}

const ENDPOINT: &str = "unix:///tmp/test.sock";

fn echo(identity: &str) -> Arc<Echo> {
    Arc::new(Echo {
        identity: identity.to_owned(),
        spec: AppSpec {
            app_name: "echo".to_owned(),
            interfaces: vec![InterfaceDef {
                name: "Echo".to_owned(),
                version: None,
                methods: vec![MethodDef {
                    name: "echo".to_owned(),
                    params: vec!["text".to_owned()],
                    help: "Echoes.".to_owned(),
                    raises: vec![],
                    concurrency: 0,
                }],
                subscriptions: vec![],
                routes: vec![],
            }],
            ..AppSpec::default()
        },
    })
}

fn registration(service: &str, identity: &str, version: Option<&str>) -> Instance {
    Instance {
        service: service.to_owned(),
        id: format!("{identity}-{service}"),
        identity: identity.to_owned(),
        endpoint: ENDPOINT.to_owned(),
        version: version.map(str::to_owned),
        ip: None,
        hostname: None,
        log_endpoint: None,
        app_name: None,
    }
}

async fn dispatcher(apps: Vec<Arc<Echo>>) -> Arc<Dispatcher> {
    let registry = EmbeddedStore::new().session();
    registry
        .register(registration("lymph", "daemon", Some(BUILTIN_VERSION)))
        .await
        .expect("register");
    for app in &apps {
        registry
            .register(registration("Echo", &app.identity, None))
            .await
            .expect("register");
    }
    Arc::new(Dispatcher::new(
        Arc::new(registry),
        Arc::new(Apps(apps)),
        Me {
            identity: "daemon".to_owned(),
            endpoint: ENDPOINT.to_owned(),
        },
        crate::config::RpcConfig::default(),
        Arc::new(crate::metrics::Metrics::default()),
        None,
        tokio_util::task::TaskTracker::new(),
    ))
}

fn call(service: &str, method: &str) -> Call {
    Call {
        service: service.to_owned(),
        method: method.to_owned(),
        body: Bytes::from_static(&[0x80]),
        trace_id: "t".to_owned(),
        timeout: None,
        version: None,
        parent: None,
    }
}

#[tokio::test]
async fn round_robin_over_instances() {
    let d = dispatcher(vec![echo("a"), echo("b")]).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let answer = d.call(call("Echo", "echo")).await.expect("call");
        seen.push(answer.identity().to_owned());
    }
    assert_eq!(seen, ["a", "b", "a", "b"]);
}

#[tokio::test]
async fn distinct_errors_for_unknown_service_and_method() {
    let d = dispatcher(vec![echo("a")]).await;
    let err = d
        .call(call("Nope", "x"))
        .await
        .expect_err("unknown service");
    assert_eq!(err.kind, ErrorKind::UnknownService);
    let err = d
        .call(call("Echo", "nope"))
        .await
        .expect_err("unknown method");
    assert_eq!(err.kind, ErrorKind::UnknownMethod);
    assert!(err.message.contains("echo"), "lists the methods: {err}");
    let err = d.call(call("Echo", "")).await.expect_err("empty method");
    assert_eq!(err.kind, ErrorKind::Invalid);
}

#[tokio::test]
async fn oversize_body_is_refused() {
    let d = dispatcher(vec![echo("a")]).await;
    let mut big = call("Echo", "echo");
    big.body = Bytes::from(vec![
        0u8;
        crate::config::RpcConfig::default().max_body_bytes + 1
    ]);
    let err = d.call(big).await.expect_err("too large");
    assert_eq!(err.kind, ErrorKind::TooLarge);
}

#[tokio::test]
async fn builtins_answer_ping_status_inspect() {
    let d = dispatcher(vec![echo("a")]).await;
    let mut ping = call("lymph", "ping");
    let mut body = Vec::new();
    rmpv::encode::write_value(
        &mut body,
        &Value::Map(vec![(Value::from("payload"), Value::from("hello"))]),
    )
    .expect("encode");
    ping.body = Bytes::from(body);
    let reply = d.call(ping).await.expect("ping");
    assert_eq!(
        rmpv::decode::read_value(&mut &reply.body[..]).expect("msgpack"),
        Value::from("hello")
    );
    assert_eq!(reply.identity(), "daemon");

    // lymph.status addressed to an Echo instance answers with the app's identity.
    let reply = d.call(call("Echo", "lymph.status")).await.expect("status");
    let status = rmpv::decode::read_value(&mut &reply.body[..]).expect("msgpack");
    assert!(status.to_string().contains("\"a\""), "{status}");

    let (identity, methods) = d.inspect("Echo", None).await.expect("inspect");
    assert_eq!(identity, "a");
    let names: Vec<&str> = methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Echo.echo",
            "lymph.change_loglevel",
            "lymph.get_metrics",
            "lymph.inspect",
            "lymph.ping",
            "lymph.status"
        ]
    );
}

#[tokio::test]
async fn metrics_count_calls_per_subject() {
    let d = dispatcher(vec![echo("a")]).await;
    for _ in 0..3 {
        d.call(call("Echo", "echo")).await.expect("call");
    }
    let reply = d.call(call("lymph", "get_metrics")).await.expect("metrics");
    let text = rmpv::decode::read_value(&mut &reply.body[..])
        .expect("msgpack")
        .to_string();
    assert!(text.contains("Echo.echo"), "{text}");
    assert!(text.contains("[\"rpc\", 3,"), "{text}");
}

#[tokio::test]
async fn draining_refuses_new_calls() {
    let d = dispatcher(vec![echo("a")]).await;
    d.start_draining();
    let err = d.call(call("Echo", "echo")).await.expect_err("draining");
    assert_eq!(err.kind, ErrorKind::ShuttingDown);
}

#[test]
fn request_ids_key_the_handling_table_in_lymphs_form_only() {
    let id = crate::rpc::frame::new_message_id();
    let key = incoming::request_key(&id).expect("a lymph id is a key");
    assert_eq!(format!("{key:032x}"), id);
    assert_ne!(
        incoming::request_key(&crate::rpc::frame::new_message_id()),
        Some(key)
    );
    assert_eq!(
        incoming::request_key("0123456789ABCDEF0123456789abcdef"),
        Some(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
    );
    for bad in [
        "",
        "abc",
        "0123456789abcdef0123456789abcdeg",
        "+123456789abcdef0123456789abcdef",
    ] {
        assert_eq!(incoming::request_key(bad), None, "{bad:?}");
    }
}
