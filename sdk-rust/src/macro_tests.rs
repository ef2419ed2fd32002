//! Checks what `#[lymph::interface]` generates: the spec (names, params, help,
//! subscriptions) and the dispatch of calls, events, config and hooks. No IO.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use tokio::sync::mpsc;

use crate::{Client, Context, DeliveryMode, Error, ErrorKind, Event, Interface, Outcome};

#[derive(Default)]
struct Greeting {
    greeting: String,
    started: AtomicBool,
    seen: Mutex<Vec<String>>,
}

#[derive(serde::Deserialize, Default)]
struct GreetingConfig {
    #[serde(default)]
    greeting: Option<String>,
}

#[derive(serde::Deserialize)]
struct Greeted {
    name: String,
}

#[crate::interface]
impl Greeting {
    /// Returns a greeting for `name`.
    ///
    /// Second paragraph.
    #[rpc]
    async fn greet(&self, ctx: &Context, name: String) -> Result<String, Error> {
        let _ = ctx.trace_id();
        if name.is_empty() {
            return Err(Error::remote("ValueError", "name must not be empty"));
        }
        Ok(format!("{}, {name}!", self.greeting))
    }

    #[rpc(name = "add", raises = ["OverflowError"])]
    fn plus(&self, a: u32, r#b: Option<u32>) -> Result<u32, std::num::TryFromIntError> {
        Ok(a + b.unwrap_or(0))
    }

    #[rpc]
    async fn boom(&self) -> Result<(), Error> {
        let _: u32 = "x".parse()?;
        Ok(())
    }

    #[event("greeted")]
    async fn on_greeted(&self, event: Event) -> Result<(), Error> {
        let name: String = event.get("name")?;
        self.seen.lock().map_err(Error::internal)?.push(name);
        Ok(())
    }

    #[event("welcomed", "hugged", broadcast, retry = 3)]
    async fn on_typed(&self, _ctx: &Context, body: Greeted) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(format!("typed {}", body.name));
        }
    }

    #[apply_config]
    fn configure(&mut self, config: GreetingConfig) -> Result<(), Error> {
        self.greeting = config.greeting.unwrap_or_else(|| "Hi".into());
        Ok(())
    }

    #[on_start]
    async fn start(&self, _ctx: &Context) -> Result<(), Error> {
        self.started.store(true, Ordering::SeqCst);
        Ok(())
    }

    #[on_stop]
    async fn stop(&self) {}

    fn helper(&self) -> usize {
        self.greeting.len()
    }
}

struct Versioned;

#[crate::interface(name = "Echo", version = "1.2.0")]
impl Versioned {
    #[rpc]
    async fn echo(&self, text: String) -> Result<String, crate::CallError> {
        Ok(text)
    }
}

fn ctx() -> Context {
    let (tx, _rx) = mpsc::channel(1);
    Context::new(Client::new(tx), "trace-1")
}

fn body(value: serde_json::Value) -> Vec<u8> {
    rmp_serde::to_vec_named(&value).expect("encodes")
}

fn configured() -> Greeting {
    let mut greeting = Greeting::default();
    greeting.apply_config(json!({})).expect("default config");
    greeting
}

#[test]
fn spec_lists_methods_params_help_and_subscriptions() {
    let spec = Greeting::default().spec();
    assert_eq!(spec.name, "Greeting");
    assert_eq!(spec.version, "");
    let names: Vec<&str> = spec.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["greet", "add", "boom"]);
    assert_eq!(spec.methods[0].params, ["name"]);
    assert_eq!(
        spec.methods[0].help,
        "Returns a greeting for `name`.\n\nSecond paragraph."
    );
    assert_eq!(spec.methods[1].params, ["a", "b"]);
    assert_eq!(spec.methods[1].raises, ["OverflowError"]);
    assert!(spec.methods[2].params.is_empty());
    let subs: Vec<(&str, DeliveryMode, u32)> = spec
        .subscriptions
        .iter()
        .map(|s| (s.event_type.as_str(), s.mode, s.retry))
        .collect();
    assert_eq!(
        subs,
        [
            ("greeted", DeliveryMode::OncePerService, 0),
            ("welcomed", DeliveryMode::Broadcast, 3),
            ("hugged", DeliveryMode::Broadcast, 3),
        ]
    );
    let echo = Versioned.spec();
    assert_eq!(
        (echo.name.as_str(), echo.version.as_str()),
        ("Echo", "1.2.0")
    );
    assert_eq!(configured().helper(), 2);
}

#[tokio::test]
async fn calls_decode_args_and_encode_replies() {
    let greeting = configured();
    let ctx = ctx();
    let reply = greeting
        .call(&ctx, "greet", &body(json!({"name": "Joe"})))
        .await
        .expect("greets");
    assert_eq!(
        rmp_serde::from_slice::<String>(&reply).expect("a string"),
        "Hi, Joe!"
    );
    let sum = greeting
        .call(&ctx, "add", &body(json!({"a": 2})))
        .await
        .expect("adds");
    assert_eq!(rmp_serde::from_slice::<u32>(&sum).expect("a number"), 2);
}

#[tokio::test]
async fn call_errors_map_to_kinds() {
    let greeting = configured();
    let ctx = ctx();
    let missing = greeting
        .call(&ctx, "greet", &body(json!({})))
        .await
        .expect_err("missing");
    assert_eq!(missing.kind(), ErrorKind::BadRequest);
    assert_eq!(missing.message(), "Greeting.greet: missing argument `name`");
    let remote = greeting
        .call(&ctx, "greet", &body(json!({"name": ""})))
        .await
        .expect_err("empty");
    assert_eq!(
        (remote.kind(), remote.error_type()),
        (ErrorKind::RemoteError, "ValueError")
    );
    let failed = greeting.call(&ctx, "boom", &[]).await.expect_err("boom");
    assert_eq!(failed.kind(), ErrorKind::HandlerFailed);
    let unknown = greeting.call(&ctx, "nope", &[]).await.expect_err("unknown");
    assert_eq!(unknown.kind(), ErrorKind::UnknownMethod);
}

#[tokio::test]
async fn events_reach_their_handlers() {
    let greeting = configured();
    let ctx = ctx();
    let event = |event_type: &str| Event {
        event_type: event_type.into(),
        body: body(json!({"name": "Joe"})).into(),
        ..Event::default()
    };
    greeting
        .deliver(&ctx, event("greeted"))
        .await
        .expect("handled");
    greeting
        .deliver(&ctx, event("hugged"))
        .await
        .expect("handled");
    assert!(greeting.deliver(&ctx, event("other")).await.is_err());
    // The daemon names the subscription's handler: that one runs.
    let named = Event {
        handler: "on_typed".into(),
        ..event("greeted")
    };
    greeting.deliver(&ctx, named).await.expect("handled");
    let seen = greeting.seen.lock().expect("lock").clone();
    assert_eq!(seen, ["Joe", "typed Joe", "typed Joe"]);
}

#[tokio::test]
async fn config_and_hooks_run() {
    let mut greeting = Greeting::default();
    greeting
        .apply_config(json!({"greeting": "Hello"}))
        .expect("applies");
    assert_eq!(greeting.greeting, "Hello");
    let bad = greeting
        .apply_config(json!({"greeting": 3}))
        .expect_err("bad type");
    assert_eq!(bad.kind(), crate::ErrorKind::Invalid);
    assert_eq!(
        bad.message(),
        "interfaces.Greeting.greeting: invalid type: integer `3`, expected a string"
    );
    greeting.on_start(&ctx()).await.expect("starts");
    assert!(greeting.started.load(Ordering::SeqCst));
    greeting.on_stop().await;
    assert!(().into_result().is_ok());
}

#[derive(Default)]
struct Site;

#[crate::interface(name = "Site")]
impl Site {
    #[route("/hello")]
    async fn hello(&self, request: crate::http::Request) -> Result<crate::http::Response, Error> {
        let name = request
            .arg("name")
            .ok_or_else(|| Error::bad_request("name is missing"))?;
        Ok(crate::http::Response::text(format!("hello {name}")))
    }

    #[route("/users/<id>", methods = ["get", "POST"])]
    async fn user(
        &self,
        ctx: &Context,
        request: crate::http::Request,
    ) -> Result<crate::http::Response, Error> {
        let id = request.path_arg("id").unwrap_or_default().to_owned();
        Ok(crate::http::Response::new(201, format!("{id} {}", ctx.trace_id())).header("X-A", "1"))
    }
}

#[tokio::test]
async fn routes_are_declared_and_dispatched_by_endpoint() {
    let spec = Site.spec();
    let proto = spec.to_proto();
    let routes: Vec<(&str, &str, &str)> = proto
        .routes
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.endpoint.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            ("GET", "/hello", "hello"),
            ("GET", "/users/<id>", "user"),
            ("POST", "/users/<id>", "user"),
        ]
    );
    let request = |endpoint: &str, query: &str| crate::http::Request {
        endpoint: endpoint.to_owned(),
        query: query.to_owned(),
        path_args: [("id".to_owned(), "7".to_owned())].into(),
        ..Default::default()
    };
    let ctx = ctx();
    let hello = Site
        .http(&ctx, request("hello", "name=Joe"))
        .await
        .expect("hello");
    assert_eq!(hello.body, "hello Joe");
    let missing = Site
        .http(&ctx, request("hello", ""))
        .await
        .expect_err("no name");
    assert_eq!(missing.kind(), ErrorKind::BadRequest);
    let user = Site.http(&ctx, request("user", "")).await.expect("user");
    assert_eq!((user.status, user.body.as_ref()), (201, &b"7 trace-1"[..]));
    assert!(Site.http(&ctx, request("nope", "")).await.is_err());
}

struct Limited;

#[crate::interface(name = "Limited")]
impl Limited {
    #[rpc(concurrency = 2)]
    async fn slow(&self) -> Result<(), Error> {
        Ok(())
    }

    #[rpc]
    async fn fast(&self) -> Result<(), Error> {
        Ok(())
    }

    #[event("work", "chore", retry = 1, concurrency = 1)]
    async fn on_work(&self, _event: Event) {}
}

#[test]
fn handler_limits_reach_the_spec_and_the_hello() {
    let spec = Limited.spec();
    let methods: Vec<(&str, u32)> = spec
        .methods
        .iter()
        .map(|m| (m.name.as_str(), m.concurrency))
        .collect();
    assert_eq!(methods, [("slow", 2), ("fast", 0)]);
    let subs: Vec<(&str, u32, u32)> = spec
        .subscriptions
        .iter()
        .map(|s| (s.event_type.as_str(), s.retry, s.concurrency))
        .collect();
    assert_eq!(subs, [("work", 1, 1), ("chore", 1, 1)]);
    let proto = spec.to_proto();
    let methods: Vec<u32> = proto.methods.iter().map(|m| m.concurrency).collect();
    assert_eq!(methods, [2, 0]);
    let subs: Vec<u32> = proto.subscriptions.iter().map(|s| s.concurrency).collect();
    assert_eq!(subs, [1, 1]);
    // Without `concurrency`, nothing of the handler's own.
    let greeting = Greeting::default().spec().to_proto();
    assert!(greeting.methods.iter().all(|m| m.concurrency == 0));
    assert!(greeting.subscriptions.iter().all(|s| s.concurrency == 0));
}
