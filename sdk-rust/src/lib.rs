//! lymph for Rust: write services that attach to the local `lymphd`, serve RPC
//! methods, event handlers and HTTP routes declared with
//! `#[lymph::interface]`, and call and emit through the daemon. The crate root
//! only wires modules together; this page is the guide to every attribute form.
//!
//! # Contents
//!
//! - [Quick start](#quick-start) and [the dependency line](#the-dependency-line)
//! - [Attribute forms at a glance](#attribute-forms-at-a-glance)
//! - [`#[lymph::interface]`](#lymphinterface-on-an-impl-block) on an `impl` block
//! - [`#[rpc]`](#rpc-methods-rpc): sync and async, arguments, return types
//! - [`#[rpc(raises = [..])]`](#typed-errors-rpcraises--) with a typed error
//! - [`#[event("type")]`](#event-handlers-eventtype) handlers
//! - [`#[route("/path")]`](#http-routes-routepath) handlers
//! - [`#[apply_config]`](#config-apply_config), [`#[on_start]` and `#[on_stop]`](#lifecycle-on_start-and-on_stop)
//! - [Emitting events](#emitting-events), [calling other services](#calling-other-services-proxies), [the `Context`](#the-context)
//! - [Errors](#errors), [running a service](#running-a-service), [testing](#testing-the-testing-feature)
//!
//! # Quick start
//!
//! ```no_run
//! use lymph::{Context, Error};
//!
//! #[derive(Default)]
//! pub struct Greeting;
//!
//! #[lymph::interface]
//! impl Greeting {
//!     /// Returns a greeting for `name`.
//!     #[rpc]
//!     async fn greet(&self, ctx: &Context, name: String) -> Result<String, Error> {
//!         ctx.emit("greeted", &serde_json::json!({"name": name})).await?;
//!         Ok(format!("Hi, {name}!"))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     // `greeting --config conf/greeting.yml [--socket /run/lymphd.sock]`
//!     lymph::exit_code(run().await)
//! }
//!
//! async fn run() -> Result<(), lymph::ServiceError> {
//!     lymph::Service::from_args()?.interface(Greeting).run().await
//! }
//! ```
//!
//! Callers anywhere (another service, `lymphctl request Greeting.greet
//! '{"name": "Joe"}'`, a Python lymph service) reach it through the daemon.
//!
//! # The dependency line
//!
//! The package is `lymph-sdk` (not on crates.io); its library is named `lymph`,
//! so code says `lymph::...`. From outside the lymphd workspace:
//!
//! ```toml
//! [dependencies]
//! lymph-sdk = { path = "../lymphd/sdk-rust" }             # a checkout of lymphd
//! # or: lymph-sdk = { git = "<the lymphd repository URL>" }
//! tokio = { version = "1", features = ["full"] }
//! serde = { version = "1", features = ["derive"] }       # for config and event types
//! serde_json = "1"                                      # for json!({..}) arguments
//!
//! [dev-dependencies]
//! lymph-sdk = { path = "../lymphd/sdk-rust", features = ["testing"] }
//! ```
//!
//! Renaming it is fine as long as the name stays `lymph`
//! (`lymph = { package = "lymph-sdk", path = ".." }`): the code
//! `#[lymph::interface]` generates refers to `::lymph`.
//!
//! # Attribute forms at a glance
//!
//! | Form | On | The method's signature |
//! |---|---|---|
//! | `#[lymph::interface]`, `#[lymph::interface(name = "Shop", version = "1.2.0")]` | an inherent `impl` block | — |
//! | `#[rpc]`, `#[rpc(name = "..", raises = ["OutOfStock"], concurrency = N)]` | a method | `[async] fn(&self, [ctx: &Context,] arg: T, ..) -> Result<R, E>` |
//! | `#[event("type", ..)]`, options `broadcast`, `once`, `retry = N`, `concurrency = N` | a method | `[async] fn(&self, [ctx: &Context,] event: Event \| B) [-> Result<(), E>]` |
//! | `#[route("/path/<var>")]`, `#[route("/path", methods = ["GET", "POST"])]` | a method | `async fn(&self, [ctx: &Context,] request: http::Request) -> Result<http::Response, E>` |
//! | `#[apply_config]` | a method | `fn(&mut self, config: C) [-> Result<(), E>]` (not async) |
//! | `#[on_start]` | a method | `[async] fn(&self, [ctx: &Context]) [-> Result<(), E>]` |
//! | `#[on_stop]` | a method | `[async] fn(&self) [-> Result<(), E>]` |
//!
//! `T`, `B`, `C`: `serde::Deserialize` types (`T` owned: `String`, not `&str`);
//! `R`: `serde::Serialize`; `E`: [`Error`], [`CallError`] or any
//! `std::error::Error + Send + Sync + 'static` (they convert with `?`). At most
//! one role attribute per method; other methods of the block are left alone.
//! Misuse (`&mut self` on an rpc, an async `#[apply_config]`, two handlers for
//! one event type, ...) is a compile error saying what to write instead.
//!
//! # `#[lymph::interface]` on an impl block
//!
//! The attribute goes on an inherent `impl` block (not a trait impl) and
//! implements [`Interface`] for the type, which must be `Send + Sync + 'static`.
//! The interface is named after the type unless `name = ".."` says otherwise;
//! `version = ".."` is the semver callers can require with
//! [`Proxy::version`].
//!
//! ```
//! use lymph::{Error, Interface};
//!
//! pub struct ShopV2;
//!
//! #[lymph::interface(name = "Shop", version = "2.1.0")]
//! impl ShopV2 {
//!     #[rpc]
//!     fn ping(&self) -> Result<(), Error> {
//!         Ok(())
//!     }
//!
//!     // No role attribute: an ordinary method.
//!     fn helper(&self) -> u32 {
//!         1
//!     }
//! }
//!
//! let spec = ShopV2.spec();
//! assert_eq!((spec.name.as_str(), spec.version.as_str()), ("Shop", "2.1.0"));
//! assert_eq!(spec.methods[0].name, "ping");
//! ```
//!
//! # RPC methods: `#[rpc]`
//!
//! An RPC method takes `&self`, optionally a `&Context` (anywhere in the
//! list), and its arguments. Arguments arrive as a map of parameter name to
//! value (lymph's kwargs), so their names are part of the interface; an
//! `Option<T>` argument may be left out. It may be `async` or not, and returns
//! `Result<R, E>` where `R: Serialize` is the reply (`()` for none; a struct
//! becomes a map). The doc comment is the method's help (`lymphctl inspect`).
//!
//! ```
//! use lymph::{Context, Error};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Line {
//!     sku: String,
//!     qty: u32,
//! }
//!
//! #[derive(Serialize)]
//! pub struct Receipt {
//!     order_id: String,
//!     lines: usize,
//! }
//!
//! pub struct Shop;
//!
//! #[lymph::interface]
//! impl Shop {
//!     /// Sync, no context: the price of `qty` items of `sku`, in cents.
//!     #[rpc]
//!     fn price(&self, sku: String, qty: u32) -> Result<u64, Error> {
//!         Ok(u64::from(qty) * if sku.starts_with('A') { 250 } else { 100 })
//!     }
//!
//!     /// Async, with the context, a struct argument and an optional one.
//!     #[rpc]
//!     async fn order(
//!         &self,
//!         ctx: &Context,
//!         lines: Vec<Line>,
//!         note: Option<String>,
//!     ) -> Result<Receipt, Error> {
//!         let _ = (ctx.trace_id(), note);
//!         Ok(Receipt { order_id: "o-1".into(), lines: lines.len() })
//!     }
//!
//!     /// Called as `count`; at most 4 at once in this instance.
//!     #[rpc(name = "count", concurrency = 4)]
//!     fn count_items(&self, lines: Vec<Line>) -> Result<u32, std::num::TryFromIntError> {
//!         u32::try_from(lines.len())
//!     }
//! }
//! # use lymph::Interface;
//! # let names: Vec<_> = Shop.spec().methods.into_iter().map(|m| (m.name, m.params)).collect();
//! # assert_eq!(names[1], ("order".to_owned(), vec!["lines".to_owned(), "note".to_owned()]));
//! # assert_eq!(names[2].0, "count");
//! ```
//!
//! Arguments that do not fit reach the caller as [`ErrorKind::BadRequest`],
//! naming the method and the argument, worded alike whatever the value's type
//! on the wire:
//!
//! ```
//! # use lymph::{Error, Interface};
//! # pub struct Shop;
//! # #[lymph::interface]
//! # impl Shop {
//! #     #[rpc]
//! #     fn price(&self, sku: String, qty: u32) -> Result<u64, Error> { Ok(u64::from(qty)) }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let ctx = lymph::Context::new(lymph::Service::new().client(), "t");
//! // What `{"sku": "A1", "qty": "2"}` sent by a caller gets:
//! let body = rmp_serde::to_vec_named(&serde_json::json!({"sku": "A1", "qty": "2"})).unwrap();
//! let error = Shop.call(&ctx, "price", &body).await.unwrap_err();
//! assert_eq!(error.kind(), lymph::ErrorKind::BadRequest);
//! assert_eq!(
//!     error.message(),
//!     "Shop.price: argument `qty`: invalid type: string \"2\", expected u32"
//! );
//! # let body = rmp_serde::to_vec_named(&serde_json::json!({"sku": "A1"})).unwrap();
//! # let error = Shop.call(&ctx, "price", &body).await.unwrap_err();
//! # assert_eq!(error.message(), "Shop.price: missing argument `qty`");
//! # }
//! ```
//!
//! # Typed errors: `#[rpc(raises = [..])]`
//!
//! A handler raises a typed error, one the caller can match on (lymph's
//! `raises=` / ERROR), with [`Error::remote`]; `raises = [..]` lists the
//! types in the method's spec. Any other error reaches the caller as
//! [`ErrorKind::HandlerFailed`]. The caller gets a [`CallError`] of kind
//! [`ErrorKind::RemoteError`] with the type in `error_type`, and
//! [`CallError::is_remote`] checks it. It displays as `lymphctl` prints it.
//!
//! ```
//! use lymph::{Error, Interface};
//!
//! pub struct Stock;
//!
//! #[lymph::interface]
//! impl Stock {
//!     /// Takes `qty` items of `sku` off the shelf.
//!     #[rpc(raises = ["OutOfStock"])]
//!     fn take(&self, sku: String, qty: u32) -> Result<u32, Error> {
//!         if qty > 3 {
//!             return Err(Error::remote("OutOfStock", format!("only 3 of {sku} left")));
//!         }
//!         Ok(3 - qty)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let ctx = lymph::Context::new(lymph::Service::new().client(), "t");
//! # let body = rmp_serde::to_vec_named(&serde_json::json!({"sku": "A1", "qty": 5})).unwrap();
//! // What the caller of `Stock.take(sku="A1", qty=5)` gets:
//! let error = Stock.call(&ctx, "take", &body).await.unwrap_err().to_call_error();
//! assert!(error.is_remote("OutOfStock"));
//! assert_eq!(error.to_string(), "remote error OutOfStock: only 3 of A1 left");
//! # assert_eq!(Stock.spec().methods[0].raises, ["OutOfStock"]);
//! # }
//! ```
//!
//! A handler that calls another service and uses `?` on its `CallError`
//! raises a typed remote error again as the same typed error.
//!
//! # Event handlers: `#[event("type")]`
//!
//! An event handler takes `&self`, optionally a `&Context`, and the event:
//! [`Event`] itself (type, raw body, trace id, attempt) or any `Deserialize`
//! type its body decodes into. It returns nothing or `Result<(), E>`; an
//! error fails the delivery (retried if `retry = N`). One handler may take
//! several event types. By default each event goes to one instance of the
//! service (`once`); `broadcast` delivers it to every instance.
//!
//! ```
//! use lymph::{Context, Error, Event};
//!
//! #[derive(serde::Deserialize)]
//! pub struct Placed {
//!     order_id: String,
//!     qty: u32,
//! }
//!
//! pub struct Mailer;
//!
//! #[lymph::interface]
//! impl Mailer {
//!     /// The body decoded into a struct.
//!     #[event("order_placed", retry = 3)]
//!     async fn on_placed(&self, ctx: &Context, placed: Placed) -> Result<(), Error> {
//!         ctx.emit("mail_sent", &serde_json::json!({"order_id": placed.order_id})).await?;
//!         let _ = placed.qty;
//!         Ok(())
//!     }
//!
//!     /// The raw event, for several types, on every instance, 2 at once.
//!     #[event("order_cancelled", "order_refunded", broadcast, concurrency = 2)]
//!     fn on_changed(&self, event: Event) {
//!         let order: Result<String, Error> = event.get("order_id");
//!         let _ = (event.event_type, event.attempt, order);
//!     }
//! }
//! ```
//!
//! # HTTP routes: `#[route("/path")]`
//!
//! A route handler is `async`, takes `&self`, optionally a `&Context`, and one
//! [`http::Request`]; it returns `Result<http::Response, E>`. `<name>` in the
//! path is a variable ([`http::Request::path_arg`]); `methods` defaults to
//! `["GET"]`. The daemon serves the routes on the app's HTTP port (the
//! config's `http_port:` or [`Service::http_port`]); without a port they are
//! left out, with a warning.
//!
//! ```
//! use lymph::http::{Request, Response};
//! use lymph::{Context, Error};
//!
//! pub struct Web;
//!
//! #[lymph::interface]
//! impl Web {
//!     #[route("/orders/<id>")]
//!     async fn show(&self, request: Request) -> Result<Response, Error> {
//!         let id = request.path_arg("id").unwrap_or_default();
//!         Ok(Response::text(format!("order {id}")))
//!     }
//!
//!     #[route("/orders", methods = ["POST"])]
//!     async fn create(&self, ctx: &Context, request: Request) -> Result<Response, Error> {
//!         let _ = ctx.trace_id();
//!         Ok(Response::new(201, request.body).header("Content-Type", "application/json"))
//!     }
//! }
//! ```
//!
//! # Config: `#[apply_config]`
//!
//! How an app receives its config: the service's config file (`--config
//! FILE`, lymph's shape) has a section per interface under `interfaces:`.
//! Before attaching, each interface's section (without `class`; an empty map
//! when there is none, so give fields `#[serde(default)]`) is decoded into the
//! type the `#[apply_config]` method takes, which then applies it. The method
//! takes `&mut self` and the config, is **not** `async`, and returns nothing
//! or `Result<(), E>`.
//!
//! ```yaml
//! # conf/shop.yml
//! interfaces:
//!     Shop:
//!         class: shop:Shop
//!         max_qty: 10
//! ```
//!
//! ```
//! use lymph::{Error, Interface};
//!
//! #[derive(serde::Deserialize)]
//! pub struct ShopConfig {
//!     #[serde(default = "ten")]
//!     max_qty: u32,
//! }
//! fn ten() -> u32 {
//!     10
//! }
//!
//! #[derive(Default)]
//! pub struct Shop {
//!     max_qty: u32,
//! }
//!
//! #[lymph::interface]
//! impl Shop {
//!     #[apply_config]
//!     fn configure(&mut self, config: ShopConfig) -> Result<(), Error> {
//!         if config.max_qty == 0 {
//!             return Err(Error::internal("max_qty must be at least 1"));
//!         }
//!         self.max_qty = config.max_qty;
//!         Ok(())
//!     }
//! }
//!
//! let mut shop = Shop::default();
//! shop.apply_config(serde_json::json!({"max_qty": 5})).unwrap();
//! assert_eq!(shop.max_qty, 5);
//! // A value of the wrong type is named by its key path in the file.
//! let error = shop.apply_config(serde_json::json!({"max_qty": "5"})).unwrap_err();
//! assert_eq!(
//!     error.message(),
//!     "interfaces.Shop.max_qty: invalid type: string \"5\", expected u32"
//! );
//! ```
//!
//! [`Service::run`] stops before attaching when a section does not apply,
//! with a [`ServiceError`] naming the file and the key path once: `bad
//! config file conf/shop.yml: interfaces.Shop.max_qty: invalid type: string
//! "5", expected u32`, or for an error of the method itself `bad config file
//! conf/shop.yml: interfaces.Shop: max_qty must be at least 1`.
//!
//! # Lifecycle: `#[on_start]` and `#[on_stop]`
//!
//! `#[on_start]` runs once after the daemon welcomed the app, before it is
//! registered (takes `&self` and optionally a `&Context`; a failure stops the
//! service); `#[on_stop]` runs once when the service stops, after in-flight
//! handlers finished (takes only `&self`; a failure is logged).
//!
//! ```
//! use lymph::{Context, Error};
//!
//! pub struct Warm;
//!
//! #[lymph::interface]
//! impl Warm {
//!     #[on_start]
//!     async fn start(&self, ctx: &Context) -> Result<(), Error> {
//!         let _: u32 = ctx.proxy("Shop").call("price", serde_json::json!({"sku": "A1", "qty": 1})).await?;
//!         Ok(())
//!     }
//!
//!     #[on_stop]
//!     async fn stop(&self) {}
//! }
//! ```
//!
//! # Emitting events
//!
//! From a handler, [`Context::emit`] carries the handler's trace; it returns
//! the event's id once the daemon accepted it. The body is any `Serialize`
//! value (a struct or a map, as lymph expects). Outside handlers use a
//! [`Client`] ([`Service::client`], or [`Client::connect`] in a program that
//! serves nothing).
//!
//! ```no_run
//! # async fn demo(ctx: &lymph::Context, client: &lymph::Client) -> Result<(), lymph::CallError> {
//! use std::time::Duration;
//!
//! let id: String = ctx.emit("order_placed", &serde_json::json!({"order_id": "o-1", "qty": 2})).await?;
//! ctx.emit_delayed("order_reminder", &serde_json::json!({"order_id": "o-1"}), Duration::from_secs(60)).await?;
//! client.emit("stock_counted", &serde_json::json!({"sku": "A1", "qty": 3})).await?;
//! # let _ = id; Ok(()) }
//! ```
//!
//! # Calling other services: proxies
//!
//! [`Context::proxy`] (or [`Client::proxy`]) names a service; [`Proxy::call`]
//! sends the arguments (a struct, `serde_json::json!({..})`, or `()` for
//! none) and decodes the reply into the type asked for. [`Proxy::timeout`]
//! bounds each reply (from a handler, never past the request's own
//! deadline), [`Proxy::version`] requires a semver, [`Proxy::defer`] starts a
//! call and returns at once.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use lymph::{Context, Error};
//!
//! pub struct Checkout;
//!
//! #[lymph::interface]
//! impl Checkout {
//!     #[rpc(raises = ["OutOfStock"])]
//!     async fn buy(&self, ctx: &Context, sku: String, qty: u32) -> Result<u64, Error> {
//!         let stock = ctx.proxy("Stock").timeout(Duration::from_secs(2)).version("1");
//!         // A typed `OutOfStock` of Stock.take is raised again as `OutOfStock` by `?`.
//!         let left: u32 = stock.call("take", serde_json::json!({"sku": sku, "qty": qty})).await?;
//!         if left < 2 {
//!             ctx.emit("stock_low", &serde_json::json!({"sku": sku, "left": left})).await?;
//!         }
//!         let price = ctx.proxy("Shop").defer::<u64>("price", serde_json::json!({"sku": sku, "qty": qty}));
//!         match price.await {
//!             Ok(cents) => Ok(cents),
//!             Err(e) if e.is_timeout() || e.is_unavailable() => Err(Error::remote("Busy", e.to_string())),
//!             Err(e) => Err(e.into()),
//!         }
//!     }
//! }
//! ```
//!
//! # The `Context`
//!
//! A handler's [`Context`] carries the trace id of the request or event being
//! handled ([`Context::trace_id`]) into every call and emit made through it,
//! and the request's deadline ([`Context::deadline`]), which bounds the calls
//! made through it. [`Context::client`] is the app's [`Client`].
//!
//! # Errors
//!
//! Handlers fail with [`Error`]: [`Error::remote`] for a typed error,
//! [`Error::internal`] or any `std::error::Error` (with `?`) for a failure.
//! Calls and emits fail with [`CallError`], whose `Display` reads as
//! `lymphctl` prints a failed call: the kind in words, then the message.
//!
//! | [`ErrorKind`] | displays as |
//! |---|---|
//! | `RemoteError` | `remote error OutOfStock: only 3 of A1 left` |
//! | `BadRequest` | ``bad request: Shop.price: argument `qty`: invalid type: ...`` |
//! | `Unavailable` | `unavailable: not connected to lymphd` |
//! | `DeadlineExceeded` | `deadline exceeded: ...` |
//! | `UnknownService`, `UnknownMethod`, `HandlerFailed`, `Overloaded`, `TooLarge`, `Invalid`, `ShuttingDown`, `Internal` | `unknown service: ...` and so on |
//!
//! # Running a service
//!
//! [`Service::from_args`] reads `--config FILE` and `--socket PATH`; the
//! socket is found as lymphd's tools find it (the flag, `$LYMPH_SOCKET`, the
//! config's `socket:`, the default). [`Service::interface`] adds an interface
//! (several may share an app); [`Service::run`] serves until SIGTERM or
//! SIGINT, reconnecting when the daemon restarts. [`exit_code`] turns the
//! outcome into the process's exit code, printing the error.
//!
//! # Testing: the `testing` feature
//!
//! With `features = ["testing"]` on the `lymph-sdk` dev-dependency (see
//! [the dependency line](#the-dependency-line)), the module `lymph::testing`
//! runs an in-process lymphd (embedded registry and event bus, a socket in a
//! temp dir) so a service's own `#[tokio::test]`s need nothing installed:
//! `TestDaemon::start()`, `daemon.serve(daemon.service().interface(..))`,
//! `daemon.client()`, and more; see that module's docs (built with the
//! feature: `cargo doc -p lymph-sdk --features testing`).

extern crate self as lymph;

mod client;
mod codec;
mod context;
#[cfg(test)]
mod deadline_tests;
mod error;
mod event;
#[cfg(test)]
mod harness_tests;
pub mod http;
mod interface;
mod link;
pub mod logging;
mod service;
mod signals;
pub mod spec;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(test)]
mod macro_tests;

pub use client::Client;
pub use context::{Context, Deferred, Proxy};
pub use error::{CallError, Error, ErrorKind};
pub use event::Event;
pub use interface::{BoxFuture, Interface, Outcome, Reply};
pub use lymph_macros::interface;
pub use service::{FileConfig, Service, ServiceError, exit_code};
pub use spec::{DeliveryMode, InterfaceSpec, MethodSpec, RouteSpec, SubscriptionSpec};

/// The SDK's name and version, sent in `Hello.sdk`.
pub const SDK: &str = concat!("lymph-sdk-rust/", env!("CARGO_PKG_VERSION"));

/// What the code generated by `#[lymph::interface]` uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::codec::decode_args;
    pub use crate::interface::{
        decode_config, http_reply, log_stop, unknown_endpoint, unknown_event, unknown_method,
    };
    pub use serde;
    pub use serde_json;
}
