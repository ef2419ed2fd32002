//! Tests of the harness itself: configs from text and values, event
//! recorders, stubs, the HTTP helper, `restart()` and quiet logs.

use std::time::Duration;

use serde_json::{Value, json};

use super::{TestDaemon, TestingError, service_config, service_config_value};
use crate::http::{Request, Response};
use crate::{Context, Error, ErrorKind};

/// Sleeps as long as it is asked to; greets with its configured greeting.
#[derive(Default)]
struct Slow {
    greeting: String,
}

#[derive(serde::Deserialize)]
struct SlowConfig {
    greeting: Option<String>,
}

#[crate::interface(name = "Slow")]
impl Slow {
    #[rpc]
    async fn sleep(&self, ms: u64) -> Result<String, Error> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok("slept".to_owned())
    }

    #[rpc]
    async fn greet(&self, name: String) -> Result<String, Error> {
        Ok(format!("{}, {name}!", self.greeting))
    }

    #[apply_config]
    fn configure(&mut self, config: SlowConfig) -> Result<(), Error> {
        self.greeting = config.greeting.unwrap_or_else(|| "Hi".to_owned());
        Ok(())
    }
}

/// Reserves through Inventory and emits `reserved`: an app with a dependency.
struct Shop;

#[crate::interface(name = "Shop")]
impl Shop {
    #[rpc]
    async fn buy(&self, ctx: &Context, sku: String) -> Result<Value, Error> {
        let reserved: Value = ctx
            .proxy("Inventory")
            .call("reserve", json!({"sku": sku, "count": 1}))
            .await?;
        ctx.emit("reserved", &json!({"sku": sku})).await?;
        Ok(reserved)
    }
}

/// A web service: echoes the query and the body.
struct Echo;

#[crate::interface(name = "Echo")]
impl Echo {
    #[route("/echo", methods = ["GET", "POST"])]
    async fn echo(&self, request: Request) -> Result<Response, Error> {
        let word = request.arg("word").unwrap_or_default();
        let body = String::from_utf8_lossy(&request.body).into_owned();
        Ok(Response::new(201, format!("{} {word} {body}", request.method)).header("X-Echo", "yes"))
    }
}

#[tokio::test]
async fn the_daemon_config_comes_from_yaml_and_is_used() {
    let daemon = TestDaemon::builder()
        .config_yaml("rpc:\n  default_timeout: 300ms\n")
        .start()
        .await
        .expect("daemon");
    assert_eq!(
        daemon.config().rpc.default_timeout,
        Duration::from_millis(300)
    );
    let _slow = daemon
        .serve(daemon.service().interface(Slow::default()))
        .await
        .expect("slow");
    let client = daemon.client().await.expect("client");
    let error = client
        .proxy("Slow")
        .call::<String>("sleep", json!({"ms": 3000}))
        .await
        .expect_err("past the configured default timeout");
    assert_eq!(error.kind, ErrorKind::DeadlineExceeded, "{error}");
    let quick: String = client
        .proxy("Slow")
        .call("sleep", json!({"ms": 1}))
        .await
        .expect("within it");
    assert_eq!(quick, "slept");
}

#[tokio::test]
async fn the_daemon_config_comes_from_a_value() {
    let daemon = TestDaemon::builder()
        .config(json!({"apps": {"default_concurrency": 3}, "rpc": {"default_timeout": "2s"}}))
        .start()
        .await
        .expect("daemon");
    assert_eq!(daemon.config().apps.default_concurrency, 3);
    assert_eq!(daemon.config().rpc.default_timeout, Duration::from_secs(2));
}

#[tokio::test]
async fn bad_daemon_configs_are_refused_at_start() {
    let cases = [
        TestDaemon::builder().config_yaml("rpc: [unclosed"),
        TestDaemon::builder().config_yaml("no_such_section: {}\n"),
        TestDaemon::builder().config(json!({"rpc": {"default_timeout": "0s"}})),
        TestDaemon::builder().config(json!({"rpc": {"default_timeot": "1s"}})),
    ];
    for builder in cases {
        match builder.start().await {
            Err(TestingError::Config(message)) => assert!(!message.is_empty()),
            Err(other) => panic!("not a config error: {other}"),
            Ok(_) => panic!("a bad config was accepted"),
        }
    }
}

#[tokio::test]
async fn the_service_config_comes_from_yaml_or_a_value() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let from_yaml = service_config("interfaces:\n  Slow:\n    greeting: Hello\n").expect("yaml");
    let slow = daemon
        .serve(
            daemon
                .service()
                .config(from_yaml)
                .interface(Slow::default()),
        )
        .await
        .expect("slow");
    let client = daemon.client().await.expect("client");
    let reply: String = client
        .proxy("Slow")
        .call("greet", json!({"name": "Joe"}))
        .await
        .expect("greet");
    assert_eq!(reply, "Hello, Joe!");
    slow.stop().await.expect("stop");

    let from_value = service_config_value(json!({"interfaces": {"Slow": {"greeting": "Howdy"}}}))
        .expect("value");
    let _slow = daemon
        .serve(
            daemon
                .service()
                .config(from_value)
                .interface(Slow::default()),
        )
        .await
        .expect("slow again");
    let reply: String = client
        .proxy("Slow")
        .call("greet", json!({"name": "Joe"}))
        .await
        .expect("greet");
    assert_eq!(reply, "Howdy, Joe!");
}

#[tokio::test]
async fn a_bad_service_config_names_the_problem() {
    let error = service_config("interfaces:\n  Slow: 3\n").expect_err("not a map");
    assert!(
        error.to_string().contains("interfaces.Slow must be a map"),
        "{error}"
    );
    let error = service_config_value(json!([1, 2])).expect_err("not a map");
    assert!(
        error.to_string().contains("top level must be a map"),
        "{error}"
    );
    // A config for an interface the program does not provide fails its start.
    let daemon = TestDaemon::start().await.expect("daemon");
    let config = service_config_value(json!({"interfaces": {"Slwo": {}}})).expect("value");
    let result = daemon
        .serve(daemon.service().config(config).interface(Slow::default()))
        .await;
    assert!(
        matches!(result, Err(TestingError::Service(_))),
        "the typo is reported"
    );
}

#[tokio::test]
async fn a_recorder_keeps_the_events_of_its_type_in_order() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let reserved = daemon.record("reserved").await.expect("recorder");
    let other = daemon.record("other").await.expect("recorder");
    assert_eq!(reserved.event_type(), "reserved");
    assert!(reserved.events().is_empty());

    let client = daemon.client().await.expect("client");
    for sku in ["A", "B", "C"] {
        client
            .emit("reserved", &json!({"sku": sku}))
            .await
            .expect("emit");
    }
    client.emit("unrelated", &json!({})).await.expect("emit");
    let events = reserved.wait_for(3).await.expect("three events");
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.event_type == "reserved"));
    assert!(events.iter().all(|e| e.trace_id.len() == 32), "{events:?}");
    let skus: Vec<String> = events
        .iter()
        .map(|e| e.get::<String>("sku").expect("sku"))
        .collect();
    assert_eq!(skus, ["A", "B", "C"]);
    assert_eq!(
        reserved.bodies::<Value>().expect("bodies"),
        [
            json!({"sku": "A"}),
            json!({"sku": "B"}),
            json!({"sku": "C"})
        ]
    );
    // Nothing of another type, and no fourth event.
    assert!(other.events().is_empty());
    let error = reserved
        .wait_for_within(4, Duration::from_millis(200))
        .await
        .expect_err("only three came");
    assert!(error.to_string().contains("got 3"), "{error}");
}

#[tokio::test]
async fn a_stub_answers_and_records_the_calls_an_app_makes() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let reserved = daemon.record("reserved").await.expect("recorder");
    let inventory = daemon
        .stub("Inventory")
        .method("reserve", |args: Value| {
            Ok(json!({"reserved": args["count"], "sku": args["sku"]}))
        })
        .method("release", |_| {
            Err::<(), _>(Error::remote("NotReserved", "nothing to release"))
        })
        .serve()
        .await
        .expect("stub");
    let _shop = daemon
        .serve(daemon.service().interface(Shop))
        .await
        .expect("shop");
    let client = daemon.client().await.expect("client");

    let reply: Value = client
        .proxy("Shop")
        .call("buy", json!({"sku": "X-1"}))
        .await
        .expect("buy");
    assert_eq!(reply, json!({"reserved": 1, "sku": "X-1"}));
    let calls = inventory.wait_for(1).await.expect("a call");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "reserve");
    assert_eq!(calls[0].args, json!({"sku": "X-1", "count": 1}));
    assert_eq!(
        inventory.calls_to("reserve"),
        [json!({"sku": "X-1", "count": 1})]
    );
    assert!(inventory.calls_to("release").is_empty());
    // The stub saw the trace of the call that caused it, as did the event.
    let events = reserved.wait_for(1).await.expect("reserved");
    assert_eq!(calls[0].trace_id, events[0].trace_id);

    let error = client
        .proxy("Inventory")
        .call::<()>("release", json!({"sku": "X-1"}))
        .await
        .expect_err("the stub's error");
    assert!(error.is_remote("NotReserved"), "{error:?}");
    assert_eq!(inventory.calls().len(), 2, "failed calls are recorded too");
    let error = client
        .proxy("Inventory")
        .call::<()>("count", ())
        .await
        .expect_err("not declared");
    assert_eq!(error.kind, ErrorKind::UnknownMethod, "{error}");
    inventory.stop().await.expect("stop");
}

#[tokio::test]
async fn a_web_service_is_reached_over_http() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let web = daemon
        .serve_web(daemon.service().interface(Echo))
        .await
        .expect("web");
    assert_eq!(daemon.http(web.port()).address(), web.http().address());

    let response = web.http().get("/echo?word=hi").await.expect("get");
    assert_eq!(response.status, 201);
    assert_eq!(response.text(), "GET hi ");
    assert_eq!(response.header("x-echo"), Some("yes"));
    let response = web
        .http()
        .post("/echo", "text/plain", "a body")
        .await
        .expect("post");
    assert_eq!(response.text(), "POST  a body");
    let response = web.http().get("/nowhere").await.expect("get");
    assert_eq!(response.status, 404);

    let port = web.port();
    web.stop().await.expect("stop");
    assert!(
        daemon.http(port).get("/echo").await.is_err(),
        "the port closes with the service"
    );
}

#[tokio::test]
async fn restart_returns_once_services_and_recorders_are_back() {
    let mut daemon = TestDaemon::start().await.expect("daemon");
    let _slow = daemon
        .serve(daemon.service().interface(Slow::default()))
        .await
        .expect("slow");
    let inventory = daemon
        .stub("Inventory")
        .method("reserve", |_| Ok(true))
        .serve()
        .await
        .expect("stub");
    let greeted = daemon.record("greeted").await.expect("recorder");
    let client = daemon.client().await.expect("client");

    for round in 1..=2 {
        daemon.restart().await.expect("restart");
        // No polling: restart() waited for the apps to register again.
        assert_eq!(daemon.instances("Slow").await.expect("discover"), 1);
        assert_eq!(daemon.instances("Inventory").await.expect("discover"), 1);
        let fresh = daemon.client().await.expect("client");
        let reply: String = fresh
            .proxy("Slow")
            .call("greet", json!({"name": "Joe"}))
            .await
            .expect("a call right after the restart");
        assert_eq!(reply, "Hi, Joe!");
        let reserved: bool = client
            .proxy("Inventory")
            .call("reserve", ())
            .await
            .expect("an old client reconnected too");
        assert!(reserved);
        fresh
            .emit("greeted", &json!({"round": round}))
            .await
            .expect("emit");
        let events = greeted
            .wait_for(round)
            .await
            .expect("recorded after the restart");
        assert_eq!(events.len(), round);
    }
    assert_eq!(inventory.calls().len(), 2);
}

#[tokio::test]
async fn wait_for_polls_until_the_condition_holds() {
    let started = tokio::time::Instant::now();
    super::wait_for("50ms to pass", || {
        started.elapsed() >= Duration::from_millis(50)
    })
    .await
    .expect("it holds");
    assert!(started.elapsed() >= Duration::from_millis(50));
}

/// Set in the child process `quiet_logs_*` run; its value says how the child ends.
const CHILD: &str = "LYMPH_HARNESS_LOG_CHILD";

/// A daemon and a service that log at INFO; run as a child by the tests below.
#[tokio::test]
async fn logging_child() {
    let daemon = TestDaemon::start().await.expect("daemon");
    let _slow = daemon
        .serve(daemon.service().interface(Slow::default()))
        .await
        .expect("slow");
    tracing::debug!("a debug line from the child");
    assert_ne!(
        std::env::var(CHILD).as_deref(),
        Ok("fail"),
        "the child fails as asked"
    );
}

/// Runs `logging_child` in a child test process; its stdout and stderr.
fn run_child(how: &str, rust_log: Option<&str>, nocapture: bool) -> String {
    let exe = std::env::current_exe().expect("the test binary");
    let mut command = std::process::Command::new(exe);
    command
        .args([
            "--exact",
            "testing::tests::logging_child",
            "--test-threads=1",
        ])
        .env(CHILD, how);
    if nocapture {
        command.arg("--nocapture");
    }
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let output = command.output().expect("the child runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn quiet_logs_a_passing_test_prints_no_log_lines() {
    let output = run_child("pass", None, false);
    assert!(output.contains("1 passed"), "{output}");
    assert!(!output.contains("INFO"), "a passing test logged:\n{output}");
}

#[test]
fn quiet_logs_a_failing_test_shows_its_logs() {
    let output = run_child("fail", None, false);
    assert!(output.contains("1 failed"), "{output}");
    assert!(
        output.contains("INFO"),
        "no logs with the failure:\n{output}"
    );
    assert!(output.contains("starting"), "{output}");
}

#[test]
fn quiet_logs_rust_log_still_filters() {
    let debug = run_child("pass", Some("debug"), true);
    assert!(debug.contains("a debug line from the child"), "{debug}");
    let warn = run_child("pass", Some("warn"), true);
    assert!(!warn.contains("INFO"), "{warn}");
    assert!(!warn.contains("a debug line"), "{warn}");
}
