//! The two error types of the SDK: `CallError`, what a call or emit made through
//! the daemon fails with, and `Error`, what a handler fails with. Owns their
//! mapping to and from the proto's `CallError`; knows nothing about transport.

use std::fmt;

use lymph_proto::v1;

/// Why a call or emit failed; mirrors the proto's `ErrorKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No live instance of the service is registered.
    UnknownService,
    /// The service has no such method.
    UnknownMethod,
    /// The arguments are malformed or do not fit the method's parameters.
    BadRequest,
    /// The handler raised a typed error (lymph's ERROR): see `error_type`.
    RemoteError,
    /// The handler failed unexpectedly (lymph's NACK).
    HandlerFailed,
    /// No reply within the deadline.
    DeadlineExceeded,
    /// The instance is at its concurrency limit, or a queue is full.
    Overloaded,
    /// The daemon or the instance went away, or the app is not connected.
    Unavailable,
    /// The body is larger than the daemon accepts.
    TooLarge,
    /// The request itself is invalid (empty name, bad version, ...).
    Invalid,
    /// The daemon is shutting down.
    ShuttingDown,
    /// Anything else, in the daemon or in this SDK.
    Internal,
}

impl ErrorKind {
    /// A short lowercase name, used in `Display`; the words `lymphctl` uses
    /// (the proto's `ERROR_KIND_DEADLINE_EXCEEDED` is `deadline exceeded`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnknownService => "unknown service",
            ErrorKind::UnknownMethod => "unknown method",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::RemoteError => "remote error",
            ErrorKind::HandlerFailed => "handler failed",
            ErrorKind::DeadlineExceeded => "deadline exceeded",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::TooLarge => "too large",
            ErrorKind::Invalid => "invalid",
            ErrorKind::ShuttingDown => "shutting down",
            ErrorKind::Internal => "internal",
        }
    }

    /// The proto value of this kind.
    pub fn to_proto(self) -> v1::ErrorKind {
        match self {
            ErrorKind::UnknownService => v1::ErrorKind::UnknownService,
            ErrorKind::UnknownMethod => v1::ErrorKind::UnknownMethod,
            ErrorKind::BadRequest => v1::ErrorKind::BadRequest,
            ErrorKind::RemoteError => v1::ErrorKind::RemoteError,
            ErrorKind::HandlerFailed => v1::ErrorKind::HandlerFailed,
            ErrorKind::DeadlineExceeded => v1::ErrorKind::DeadlineExceeded,
            ErrorKind::Overloaded => v1::ErrorKind::Overloaded,
            ErrorKind::Unavailable => v1::ErrorKind::Unavailable,
            ErrorKind::TooLarge => v1::ErrorKind::TooLarge,
            ErrorKind::Invalid => v1::ErrorKind::Invalid,
            ErrorKind::ShuttingDown => v1::ErrorKind::ShuttingDown,
            ErrorKind::Internal => v1::ErrorKind::Internal,
        }
    }

    /// The kind of a proto value; unknown and unspecified values are `Internal`.
    pub fn from_proto(raw: i32) -> ErrorKind {
        match v1::ErrorKind::try_from(raw) {
            Ok(v1::ErrorKind::UnknownService) => ErrorKind::UnknownService,
            Ok(v1::ErrorKind::UnknownMethod) => ErrorKind::UnknownMethod,
            Ok(v1::ErrorKind::BadRequest) => ErrorKind::BadRequest,
            Ok(v1::ErrorKind::RemoteError) => ErrorKind::RemoteError,
            Ok(v1::ErrorKind::HandlerFailed) => ErrorKind::HandlerFailed,
            Ok(v1::ErrorKind::DeadlineExceeded) => ErrorKind::DeadlineExceeded,
            Ok(v1::ErrorKind::Overloaded) => ErrorKind::Overloaded,
            Ok(v1::ErrorKind::Unavailable) => ErrorKind::Unavailable,
            Ok(v1::ErrorKind::TooLarge) => ErrorKind::TooLarge,
            Ok(v1::ErrorKind::Invalid) => ErrorKind::Invalid,
            Ok(v1::ErrorKind::ShuttingDown) => ErrorKind::ShuttingDown,
            // A cancelled call's outcome reaches nobody who waits for it.
            Ok(v1::ErrorKind::Internal | v1::ErrorKind::Unspecified | v1::ErrorKind::Cancelled)
            | Err(_) => ErrorKind::Internal,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call or emit, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub kind: ErrorKind,
    /// For `RemoteError`: the error's type name, e.g. "ValueError"; else empty.
    pub error_type: String,
    pub message: String,
}

impl CallError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CallError {
        CallError {
            kind,
            error_type: String::new(),
            message: message.into(),
        }
    }

    /// The error a call made while the daemon is away fails with.
    pub fn not_connected() -> CallError {
        CallError::new(ErrorKind::Unavailable, "not connected to lymphd")
    }

    /// Whether the handler raised the typed error `error_type`.
    pub fn is_remote(&self, error_type: &str) -> bool {
        self.kind == ErrorKind::RemoteError && self.error_type == error_type
    }

    pub fn is_unavailable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }

    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::DeadlineExceeded
    }

    pub fn from_proto(error: v1::CallError) -> CallError {
        CallError {
            kind: ErrorKind::from_proto(error.kind),
            error_type: error.r#type,
            message: error.message,
        }
    }

    pub fn to_proto(&self) -> v1::CallError {
        v1::CallError {
            kind: self.kind.to_proto() as i32,
            r#type: self.error_type.clone(),
            message: self.message.clone(),
        }
    }
}

/// Reads as `lymphctl` prints a failed call: the kind in words, for a typed
/// error its type too, then the message: `remote error OutOfStock: only 3
/// left`, `unavailable: not connected to lymphd`, `deadline exceeded: ...`.
impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ErrorKind::RemoteError && !self.error_type.is_empty() {
            write!(f, "{} {}: {}", self.kind, self.error_type, self.message)
        } else {
            write!(f, "{}: {}", self.kind, self.message)
        }
    }
}

impl std::error::Error for CallError {}

/// What a handler fails with. `Error::remote` raises a typed error the caller
/// can match on (lymph's ERROR); anything else reaches the caller as
/// `HandlerFailed` (lymph's NACK). Any `std::error::Error` converts with `?`.
///
/// Like `anyhow::Error`, it does not implement `std::error::Error` itself, so
/// that the blanket `From` conversion can exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    error_type: String,
    message: String,
}

impl Error {
    /// A typed error, e.g. `Error::remote("ValueError", "name must not be empty")`.
    pub fn remote(error_type: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::RemoteError,
            error_type: error_type.into(),
            message: message.into(),
        }
    }

    /// An unexpected failure; the caller sees `HandlerFailed` with this message.
    pub fn internal(message: impl fmt::Display) -> Error {
        Error::with_kind(ErrorKind::HandlerFailed, message.to_string())
    }

    /// The arguments do not fit; the caller sees `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::with_kind(ErrorKind::BadRequest, message)
    }

    pub(crate) fn with_kind(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            error_type: String::new(),
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error as the daemon carries it back to the caller.
    pub fn to_call_error(&self) -> CallError {
        CallError {
            kind: self.kind,
            error_type: self.error_type.clone(),
            message: self.message.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_call_error(), f)
    }
}

/// `?` in a handler: a typed remote error of a nested call is raised again as
/// the same typed error; any other error becomes `HandlerFailed`.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Error {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
        match boxed.downcast::<CallError>() {
            Ok(call) if call.kind == ErrorKind::RemoteError => Error {
                kind: ErrorKind::RemoteError,
                error_type: call.error_type,
                message: call.message,
            },
            Ok(call) => Error::internal(call),
            Err(other) => Error::internal(error_chain(other.as_ref())),
        }
    }
}

/// "outer: inner: innermost", like anyhow's `{:#}`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_errors_keep_their_type() {
        let error = Error::remote("ValueError", "name must not be empty");
        let wire = error.to_call_error().to_proto();
        assert_eq!(wire.kind, v1::ErrorKind::RemoteError as i32);
        assert_eq!(wire.r#type, "ValueError");
        let back = CallError::from_proto(wire);
        assert!(back.is_remote("ValueError"));
        assert_eq!(
            back.to_string(),
            "remote error ValueError: name must not be empty"
        );
        assert_eq!(
            error.to_string(),
            "remote error ValueError: name must not be empty"
        );
    }

    #[test]
    fn display_reads_as_lymphctl_prints_it() {
        let typed = CallError {
            kind: ErrorKind::RemoteError,
            error_type: "OutOfStock".into(),
            message: "only 3 left".into(),
        };
        assert_eq!(typed.to_string(), "remote error OutOfStock: only 3 left");
        let untyped = CallError::new(ErrorKind::RemoteError, "boom");
        assert_eq!(untyped.to_string(), "remote error: boom");
        assert_eq!(
            CallError::not_connected().to_string(),
            "unavailable: not connected to lymphd"
        );
        let cases = [
            (ErrorKind::UnknownService, "unknown service: x"),
            (ErrorKind::UnknownMethod, "unknown method: x"),
            (ErrorKind::BadRequest, "bad request: x"),
            (ErrorKind::HandlerFailed, "handler failed: x"),
            (ErrorKind::DeadlineExceeded, "deadline exceeded: x"),
            (ErrorKind::Overloaded, "overloaded: x"),
            (ErrorKind::Unavailable, "unavailable: x"),
            (ErrorKind::TooLarge, "too large: x"),
            (ErrorKind::Invalid, "invalid: x"),
            (ErrorKind::ShuttingDown, "shutting down: x"),
            (ErrorKind::Internal, "internal: x"),
        ];
        for (kind, text) in cases {
            assert_eq!(CallError::new(kind, "x").to_string(), text);
        }
    }

    /// The words are lymphctl's: the proto name without `ERROR_KIND_`,
    /// lowercased, `_` as a space.
    #[test]
    fn kind_words_follow_the_proto_names() {
        for raw in 1..=12 {
            let kind = ErrorKind::from_proto(raw);
            let name = kind.to_proto().as_str_name();
            let words = name
                .strip_prefix("ERROR_KIND_")
                .unwrap_or(name)
                .to_lowercase()
                .replace('_', " ");
            assert_eq!(kind.as_str(), words);
        }
    }

    #[test]
    fn std_errors_become_handler_failed_with_their_chain() {
        fn parse() -> Result<u32, Error> {
            Ok("x".parse::<u32>()?)
        }
        let error = parse().expect_err("not a number");
        assert_eq!(error.kind(), ErrorKind::HandlerFailed);
        assert_eq!(error.message(), "invalid digit found in string");
    }

    #[test]
    fn nested_call_errors_propagate_with_question_mark() {
        fn nested(e: CallError) -> Result<(), Error> {
            Err(e)?
        }
        let remote = nested(CallError {
            kind: ErrorKind::RemoteError,
            error_type: "KeyError".into(),
            message: "joe".into(),
        })
        .expect_err("fails");
        assert_eq!(remote.kind(), ErrorKind::RemoteError);
        assert_eq!(remote.error_type(), "KeyError");
        let other = nested(CallError::not_connected()).expect_err("fails");
        assert_eq!(other.kind(), ErrorKind::HandlerFailed);
        assert_eq!(other.message(), "unavailable: not connected to lymphd");
    }

    #[test]
    fn every_kind_round_trips_through_proto() {
        for raw in 1..=12 {
            let kind = ErrorKind::from_proto(raw);
            assert_eq!(kind.to_proto() as i32, raw);
        }
        assert_eq!(ErrorKind::from_proto(0), ErrorKind::Internal);
        assert_eq!(ErrorKind::from_proto(99), ErrorKind::Internal);
    }
}
