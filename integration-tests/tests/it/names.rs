//! Names a client sends are checked where they arrive (Hello, unary calls,
//! emits, subscriptions, an app's own calls), refused with the reason, and
//! never reach the daemon's log as raw text: a forged line stays one line, a
//! 10 MB name a short quote.

use std::time::Duration;

use lymph_proto::v1 as pb;
use tonic::Code;

use crate::harness::TestDaemon;

fn hello(app_name: &str, interface: pb::InterfaceSpec) -> pb::Hello {
    pb::Hello {
        app_name: app_name.to_owned(),
        interfaces: vec![interface],
        ..pb::Hello::default()
    }
}

fn interface(name: &str) -> pb::InterfaceSpec {
    pb::InterfaceSpec {
        name: name.to_owned(),
        methods: vec![pb::MethodSpec {
            name: "echo".to_owned(),
            ..pb::MethodSpec::default()
        }],
        ..pb::InterfaceSpec::default()
    }
}

fn subscribing(event_type: &str, handler: &str) -> pb::InterfaceSpec {
    pb::InterfaceSpec {
        subscriptions: vec![pb::SubscriptionSpec {
            event_type: event_type.to_owned(),
            handler: handler.to_owned(),
            mode: pb::DeliveryMode::Broadcast as i32,
            retry: 0,
            concurrency: 0,
        }],
        ..interface("Names")
    }
}

fn refused_for(result: &Result<(), String>, reason: &str) -> bool {
    matches!(result, Err(m) if m.contains(reason))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_names_are_checked_and_a_forged_name_stays_one_quoted_line() {
    let daemon = TestDaemon::start();
    let forged = "app\n2026-12-02T00:00:00.000000Z  INFO lymphd: FORGED app attached";
    let refused = daemon.hello_answer(hello(forged, interface("Names"))).await;
    assert!(refused_for(&refused, "invalid app name"), "{refused:?}");
    let huge = "n".repeat(10 * 1024 * 1024);
    let refused = daemon.hello_answer(hello(&huge, interface("Names"))).await;
    assert!(refused_for(&refused, "(10485760 bytes)"), "{refused:?}");
    assert!(
        refused.as_ref().err().map(String::len) < Some(400),
        "the reason quotes a short part"
    );

    let cases = [
        (interface("Na/mes"), "invalid interface name"),
        (
            pb::InterfaceSpec {
                methods: vec![pb::MethodSpec {
                    name: "ec ho".to_owned(),
                    ..pb::MethodSpec::default()
                }],
                ..interface("Names")
            },
            "invalid method name",
        ),
        (subscribing("a/b", ""), "invalid event type"),
        (subscribing("a*", ""), "invalid event type"),
        (subscribing("a.b", "on\nevent"), "invalid handler name"),
        (
            pb::InterfaceSpec {
                name: "N".repeat(128),
                ..subscribing("a.b", &"h".repeat(128))
            },
            "longer than RabbitMQ's 255 bytes",
        ),
        (
            pb::InterfaceSpec {
                version: "1.0.0-\nx".to_owned(),
                ..interface("Names")
            },
            "invalid version",
        ),
    ];
    for (spec, reason) in cases {
        let got = daemon.hello_answer(hello("names", spec.clone())).await;
        assert!(refused_for(&got, reason), "{spec:?}: {got:?}");
    }
    let routes = pb::Hello {
        http_port: 0,
        ..hello(
            "names",
            pb::InterfaceSpec {
                routes: vec![pb::HttpRoute {
                    method: "GET".to_owned(),
                    path: "/a b".to_owned(),
                    endpoint: "a".to_owned(),
                }],
                ..interface("Names")
            },
        )
    };
    let got = daemon.hello_answer(routes.clone()).await;
    assert!(refused_for(&got, "http_port is 0"), "{got:?}");
    let got = daemon
        .hello_answer(pb::Hello {
            http_port: 1,
            ..routes
        })
        .await;
    assert!(refused_for(&got, "invalid route"), "{got:?}");

    // lymph's wildcard words are names a subscription may use.
    for pattern in ["b.*", "#", "a.#"] {
        let got = daemon
            .hello_answer(hello("names", subscribing(pattern, "on_b")))
            .await;
        assert_eq!(got, Ok(()), "{pattern}");
    }

    // The daemon logged the refusals, each on one line, none forged, none huge.
    crate::harness::wait_until("refusals logged", Duration::from_secs(10), || {
        daemon.proc.lines_with("refused an app") >= 1
    });
    let log = daemon.proc.stderr_text();
    assert!(
        !log.lines()
            .any(|l| l.contains("FORGED") && !l.contains("refused")),
        "a forged line in the daemon's log:\n{log}"
    );
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 16 * 1024, "a log line of {longest} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_emits_and_subscriptions_refuse_bad_names_with_the_reason() {
    let daemon = TestDaemon::start();
    let mut client = daemon.client().await;
    let call = |service: &str, method: &str, trace_id: &str| pb::CallRequest {
        service: service.to_owned(),
        method: method.to_owned(),
        body: rmp_serde::to_vec_named(&serde_json::json!({}))
            .expect("msgpack")
            .into(),
        trace_id: trace_id.to_owned(),
        timeout_ms: 1000,
        version: String::new(),
    };
    for (request, reason) in [
        (call("Ech/o", "echo", ""), "invalid service name"),
        (call("Echo", "echo\nx", ""), "invalid method name"),
        (call("Echo", "echo", "t\nforged"), "invalid trace id"),
    ] {
        let status = client.call(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(reason), "{status:?}");
    }
    // A good name still reaches the dispatcher (no such service).
    let reply = client
        .call(call("Echo", "echo", ""))
        .await
        .expect("answered")
        .into_inner();
    assert!(
        matches!(reply.outcome, Some(pb::call_reply::Outcome::Error(_))),
        "{reply:?}"
    );

    let emit = |event_type: &str| pb::EmitRequest {
        event_type: event_type.to_owned(),
        body: Default::default(),
        trace_id: String::new(),
        delay_ms: 0,
    };
    let status = client.emit(emit("a/b")).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("invalid event type"),
        "{status:?}"
    );
    client
        .emit(emit("names.ok"))
        .await
        .expect("a good name is emitted");

    let subscribe = |types: &[&str]| pb::SubscribeRequest {
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
    };
    let status = client
        .subscribe(subscribe(&["ok", "a*"]))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    client
        .subscribe(subscribe(&["names.*"]))
        .await
        .expect("a wildcard word is a good pattern");

    let status = client
        .inspect(pb::InspectRequest {
            service: "a\nb".to_owned(),
            version: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = client
        .discover(pb::DiscoverRequest {
            service: "a/b".to_owned(),
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}
