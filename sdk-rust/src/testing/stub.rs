//! Stub services: a stand-in for a service the app under test calls, its
//! methods answered by closures, every call it gets recorded (method,
//! arguments, trace id) for the test to check.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::log::Log;
use super::{RunningService, TestDaemon, TestingError, WAIT};
use crate::spec::{InterfaceSpec, MethodSpec};
use crate::{BoxFuture, Interface, Reply as _};
use crate::{Context, Error, Event};

/// One call a [`Stub`] got.
#[derive(Debug, Clone, PartialEq)]
pub struct StubCall {
    pub method: String,
    /// The arguments as a map of parameter name to value (`{}` for none).
    pub args: Value,
    pub trace_id: String,
}

type Handler = Box<dyn Fn(Value) -> Result<Vec<u8>, Error> + Send + Sync>;

/// Declares a stub's methods; made by [`TestDaemon::stub`].
pub struct StubBuilder<'d> {
    daemon: &'d TestDaemon,
    name: String,
    methods: BTreeMap<String, Handler>,
}

/// A running stub service. Stops when dropped.
///
/// ```no_run
/// # async fn demo(daemon: lymph::testing::TestDaemon) -> Result<(), Box<dyn std::error::Error>> {
/// use serde_json::{Value, json};
/// let inventory = daemon
///     .stub("Inventory")
///     .method("reserve", |args: Value| Ok(json!({"reserved": args["count"]})))
///     .method("release", |_| Err::<(), _>(lymph::Error::remote("NotReserved", "nothing to release")))
///     .serve()
///     .await?;
/// // ... call the service under test, which calls Inventory.reserve ...
/// let calls = inventory.wait_for(1).await?;
/// assert_eq!(calls[0].args, json!({"sku": "X-1", "count": 2}));
/// assert_eq!(inventory.calls_to("release"), Vec::<Value>::new());
/// # Ok(()) }
/// ```
pub struct Stub {
    calls: Arc<Log<StubCall>>,
    running: RunningService,
}

impl<'d> StubBuilder<'d> {
    pub(crate) fn new(daemon: &'d TestDaemon, name: &str) -> StubBuilder<'d> {
        StubBuilder {
            daemon,
            name: name.to_owned(),
            methods: BTreeMap::new(),
        }
    }

    /// Answers method `name` with `answer(args)`: its value, or its error as
    /// the caller would get a handler's. Declaring a name again replaces it.
    pub fn method<R, F>(mut self, name: &str, answer: F) -> StubBuilder<'d>
    where
        R: Serialize,
        F: Fn(Value) -> Result<R, Error> + Send + Sync + 'static,
    {
        let method = format!("{}.{name}", self.name);
        let handler: Handler = Box::new(move |args| answer(args).encode(&method));
        self.methods.insert(name.to_owned(), handler);
        self
    }

    /// Attaches the stub to the daemon; returns once callers can reach it.
    pub async fn serve(self) -> Result<Stub, TestingError> {
        let calls = Arc::new(Log::new());
        let interface = StubInterface {
            name: self.name.clone(),
            methods: self.methods,
            calls: calls.clone(),
        };
        let service = self
            .daemon
            .service()
            .app_name(format!("stub-{}", self.name))
            .interface(interface);
        let running = self.daemon.serve(service).await?;
        Ok(Stub { calls, running })
    }
}

impl Stub {
    /// Every call so far, in the order they came.
    pub fn calls(&self) -> Vec<StubCall> {
        self.calls.snapshot()
    }

    /// The arguments of every call to `method` so far.
    pub fn calls_to(&self, method: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .map(|c| c.args)
            .collect()
    }

    /// The calls once there are at least `n`; a timeout error after [`WAIT`](super::WAIT).
    pub async fn wait_for(&self, n: usize) -> Result<Vec<StubCall>, TestingError> {
        self.wait_for_within(n, WAIT).await
    }

    /// [`wait_for`](Self::wait_for) with a timeout of your own.
    pub async fn wait_for_within(
        &self,
        n: usize,
        within: Duration,
    ) -> Result<Vec<StubCall>, TestingError> {
        self.calls.wait_for(n, within, "calls to the stub").await
    }

    /// Detaches the stub and waits for it.
    pub async fn stop(self) -> Result<(), TestingError> {
        self.running.stop().await
    }
}

struct StubInterface {
    name: String,
    methods: BTreeMap<String, Handler>,
    calls: Arc<Log<StubCall>>,
}

impl Interface for StubInterface {
    fn spec(&self) -> InterfaceSpec {
        InterfaceSpec {
            name: self.name.clone(),
            methods: self
                .methods
                .keys()
                .map(|name| MethodSpec {
                    name: name.clone(),
                    help: "A test stub.".to_owned(),
                    ..MethodSpec::default()
                })
                .collect(),
            ..InterfaceSpec::default()
        }
    }

    fn call<'a>(
        &'a self,
        ctx: &'a Context,
        method: &'a str,
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(async move {
            let what = format!("{}.{method}", self.name);
            let args: Value = crate::__private::decode_args(&what, body)?;
            self.calls.push(StubCall {
                method: method.to_owned(),
                args: args.clone(),
                trace_id: ctx.trace_id().to_owned(),
            });
            match self.methods.get(method) {
                Some(answer) => answer(args),
                None => Err(crate::__private::unknown_method(&self.name, method)),
            }
        })
    }

    fn deliver<'a>(&'a self, _ctx: &'a Context, event: Event) -> BoxFuture<'a, Result<(), Error>> {
        let name = self.name.clone();
        Box::pin(async move { Err(crate::__private::unknown_event(&name, &event.event_type)) })
    }
}
