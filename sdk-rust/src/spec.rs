//! What an interface declares: its methods, event subscriptions and HTTP routes, as the
//! `#[lymph::interface]` macro generates them, and their proto form for `Hello`.

use lymph_proto::v1;

/// An interface: the service name callers use, its methods and subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceSpec {
    pub name: String,
    /// A semver version, e.g. "1.2.0"; empty when unversioned.
    pub version: String,
    pub methods: Vec<MethodSpec>,
    pub subscriptions: Vec<SubscriptionSpec>,
    pub routes: Vec<RouteSpec>,
}

/// One HTTP route: a werkzeug-style path, the methods it answers, and the
/// endpoint (handler) name the daemon hands back with each request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteSpec {
    pub path: String,
    /// Upper-case; `GET` when the route names none.
    pub methods: Vec<String>,
    pub endpoint: String,
}

/// One RPC method.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MethodSpec {
    pub name: String,
    /// Parameter names, in order (without `self` and the `Context`).
    pub params: Vec<String>,
    /// The method's doc comment, shown by `inspect`.
    pub help: String,
    /// Error types the handler may raise, shown by `inspect`.
    pub raises: Vec<String>,
    /// Requests the handler takes at once (`#[rpc(concurrency = N)]`); past it
    /// callers get `overloaded`. 0: no limit of its own (the app's applies).
    pub concurrency: u32,
}

/// Who handles an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMode {
    /// Exactly one instance of the service handles each event.
    #[default]
    OncePerService,
    /// Every instance of the service handles each event.
    Broadcast,
}

/// One event subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriptionSpec {
    pub event_type: String,
    pub mode: DeliveryMode,
    /// How many times a failed delivery is retried before it is dropped.
    pub retry: u32,
    /// The handler's name; instances of a service share the queue
    /// `<Interface>-<handler>`, as lymph names it.
    pub handler: String,
    /// Deliveries the handler takes at once (`#[event(.., concurrency = N)]`);
    /// past it events wait in their queue. 0: no limit of its own.
    pub concurrency: u32,
}

impl InterfaceSpec {
    pub fn to_proto(&self) -> v1::InterfaceSpec {
        v1::InterfaceSpec {
            name: self.name.clone(),
            version: self.version.clone(),
            methods: self
                .methods
                .iter()
                .map(|m| v1::MethodSpec {
                    name: m.name.clone(),
                    params: m.params.clone(),
                    help: m.help.clone(),
                    raises: m.raises.clone(),
                    concurrency: m.concurrency,
                })
                .collect(),
            subscriptions: self
                .subscriptions
                .iter()
                .map(|s| v1::SubscriptionSpec {
                    event_type: s.event_type.clone(),
                    mode: match s.mode {
                        DeliveryMode::OncePerService => v1::DeliveryMode::OncePerService,
                        DeliveryMode::Broadcast => v1::DeliveryMode::Broadcast,
                    } as i32,
                    retry: s.retry,
                    handler: s.handler.clone(),
                    concurrency: s.concurrency,
                })
                .collect(),
            routes: self
                .routes
                .iter()
                .flat_map(|r| {
                    r.methods.iter().map(|method| v1::HttpRoute {
                        method: method.to_ascii_uppercase(),
                        path: r.path.clone(),
                        endpoint: r.endpoint.clone(),
                    })
                })
                .collect(),
        }
    }
}
