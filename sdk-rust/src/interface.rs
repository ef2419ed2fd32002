//! The contract between the `#[lymph::interface]` macro and the runtime: the
//! `Interface` trait the macro implements, and the small conversions its
//! generated code leans on. Knows nothing about the connection.

use std::future::Future;
use std::pin::Pin;

use crate::context::Context;
use crate::error::Error;
use crate::event::Event;
use crate::spec::InterfaceSpec;

/// A boxed, `Send` future: what the generated dispatch methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A service's interface. Implemented by `#[lymph::interface]`; writing it by
/// hand works too (a dynamic interface, a proxy, a test double).
pub trait Interface: Send + Sync + 'static {
    /// The name, version, methods and subscriptions sent to the daemon.
    fn spec(&self) -> InterfaceSpec;

    /// Applies this interface's section of the config file (without `class`);
    /// an empty map when the file has no section for it. An error of kind
    /// `ErrorKind::Invalid` is taken to start with its key path in the file
    /// (`interfaces.Shop.limits.max: ...`, as `#[apply_config]`'s decoding
    /// words it); any other error is about the section as a whole.
    fn apply_config(&mut self, _section: serde_json::Value) -> Result<(), Error> {
        Ok(())
    }

    /// Runs RPC method `method` on a MessagePack map of arguments and returns
    /// the MessagePack-encoded return value.
    fn call<'a>(
        &'a self,
        ctx: &'a Context,
        method: &'a str,
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>>;

    /// Runs the handler subscribed to `event.event_type`.
    fn deliver<'a>(&'a self, ctx: &'a Context, event: Event) -> BoxFuture<'a, Result<(), Error>>;

    /// Runs the `#[route]` handler named `request.endpoint`.
    fn http<'a>(
        &'a self,
        _ctx: &'a Context,
        request: crate::http::Request,
    ) -> BoxFuture<'a, Result<crate::http::Response, Error>> {
        let name = self.spec().name;
        Box::pin(async move { Err(unknown_endpoint(&name, &request.endpoint)) })
    }

    /// Runs once after the daemon welcomed the app and before it is registered.
    fn on_start<'a>(&'a self, _ctx: &'a Context) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }

    /// Runs once when the service stops, after in-flight handlers finished.
    fn on_stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// What event handlers and lifecycle hooks may return: `()` or `Result<(), E>`.
pub trait Outcome {
    fn into_result(self) -> Result<(), Error>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<E: Into<Error>> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), Error> {
        self.map_err(Into::into)
    }
}

/// What RPC methods return: `Result<T, E>` with `T: Serialize`.
pub trait Reply {
    fn encode(self, method: &str) -> Result<Vec<u8>, Error>;
}

impl<T: serde::Serialize, E: Into<Error>> Reply for Result<T, E> {
    fn encode(self, method: &str) -> Result<Vec<u8>, Error> {
        let value = self.map_err(Into::into)?;
        crate::codec::encode_reply(method, &value)
    }
}

/// Decodes a config section into the type the `#[apply_config]` method takes.
/// Fails with `ErrorKind::Invalid` and a message that starts with the key
/// path in the config file: `interfaces.Shop.limits.max: invalid type: string
/// "2", expected u32` (``interfaces.Shop: missing field `limits` `` when the
/// section itself is short of a key).
pub fn decode_config<T: serde::de::DeserializeOwned>(
    interface: &str,
    section: serde_json::Value,
) -> Result<T, Error> {
    crate::codec::decode_value(section).map_err(|(reason, path)| {
        let at = path.under(&format!("interfaces.{interface}"));
        Error::with_kind(crate::error::ErrorKind::Invalid, format!("{at}: {reason}"))
    })
}

/// The answer to a method the interface does not have.
pub fn unknown_method(interface: &str, method: &str) -> Error {
    Error::with_kind(
        crate::error::ErrorKind::UnknownMethod,
        format!("{interface} has no method {method}"),
    )
}

/// The answer to an HTTP endpoint the interface does not have.
pub fn unknown_endpoint(interface: &str, endpoint: &str) -> Error {
    Error::internal(format!("{interface} has no route handler {endpoint}"))
}

/// What route handlers return: `Result<Response, E>`.
pub fn http_reply<E: Into<Error>>(
    result: Result<crate::http::Response, E>,
) -> Result<crate::http::Response, Error> {
    result.map_err(Into::into)
}

/// The answer to an event the interface does not subscribe to.
pub fn unknown_event(interface: &str, event_type: &str) -> Error {
    Error::internal(format!("{interface} has no handler for event {event_type}"))
}

/// Logs the failure of an `on_stop` hook; stopping goes on.
pub fn log_stop(interface: &str, outcome: Result<(), Error>) {
    if let Err(e) = outcome {
        tracing::warn!(interface, error = %e, "on_stop failed");
    }
}
