//! The one error type of the daemon's data path, whatever path a call, HTTP
//! request or emit took: a kind callers can branch on (the proto's
//! `ErrorKind`), lymph's error type name for typed handler errors, and a reason.

use std::time::Duration;

/// The kind of every error a call, request or emit can end with: the proto's
/// enum, used as is in every layer (the API, the dispatcher, the sessions, the
/// transports). `ErrorKind::Unspecified` never leaves the daemon: an app's
/// error without a kind is read as `HandlerFailed` (`from_app`).
pub use lymph_proto::v1::ErrorKind;

/// Every kind the daemon uses (all but `Unspecified`).
pub const KINDS: [ErrorKind; 13] = [
    ErrorKind::UnknownService,
    ErrorKind::UnknownMethod,
    ErrorKind::BadRequest,
    ErrorKind::RemoteError,
    ErrorKind::HandlerFailed,
    ErrorKind::DeadlineExceeded,
    ErrorKind::Overloaded,
    ErrorKind::Unavailable,
    ErrorKind::TooLarge,
    ErrorKind::Invalid,
    ErrorKind::ShuttingDown,
    ErrorKind::Internal,
    ErrorKind::Cancelled,
];

/// A kind's stable snake_case name, as lymphd's NACK reason header carries
/// it between daemons and as metrics and logs show it.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::UnknownService => "unknown_service",
        ErrorKind::UnknownMethod => "unknown_method",
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::RemoteError => "remote_error",
        ErrorKind::HandlerFailed | ErrorKind::Unspecified => "handler_failed",
        ErrorKind::DeadlineExceeded => "deadline_exceeded",
        ErrorKind::Overloaded => "overloaded",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::Invalid => "invalid",
        ErrorKind::ShuttingDown => "shutting_down",
        ErrorKind::Internal => "internal",
        ErrorKind::Cancelled => "cancelled",
    }
}

/// The kind `kind_name` names; a name this daemon does not know (a newer
/// peer's) is a handler failure, as lymph's bare NACK is.
pub fn kind_named(name: &str) -> ErrorKind {
    KINDS
        .into_iter()
        .find(|k| kind_name(*k) == name)
        .unwrap_or(ErrorKind::HandlerFailed)
}

/// The kind of an error an app sent (an `i32` on the wire): unknown values and
/// `Unspecified` are unexpected failures.
pub fn kind_from_app(value: i32) -> ErrorKind {
    match ErrorKind::try_from(value) {
        Ok(ErrorKind::Unspecified) | Err(_) => ErrorKind::HandlerFailed,
        Ok(kind) => kind,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub kind: ErrorKind,
    /// For `RemoteError`: the error's type name (lymph's ERROR `type`).
    pub error_type: String,
    pub message: String,
    /// The identity of the instance the call was routed to, when it got
    /// that far (what `lymphctl request -D` shows for a failed call).
    pub instance: Option<String>,
}

impl From<crate::names::NameError> for CallError {
    fn from(e: crate::names::NameError) -> Self {
        Self::new(ErrorKind::Invalid, e.to_string())
    }
}

impl CallError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CallError {
            kind,
            error_type: String::new(),
            message: message.into(),
            instance: None,
        }
    }

    pub fn unknown_service(service: &str) -> Self {
        Self::new(
            ErrorKind::UnknownService,
            format!("no instance of service {service:?} is registered"),
        )
    }

    pub fn deadline(after: Duration) -> Self {
        Self::new(
            ErrorKind::DeadlineExceeded,
            format!("no reply within {}", humantime::format_duration(after)),
        )
    }

    pub fn app_gone() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            "the app handling the call disconnected before it replied",
        )
    }

    /// The caller gave up on the call.
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "the caller cancelled the call")
    }

    pub fn shutting_down() -> Self {
        Self::new(ErrorKind::ShuttingDown, "lymphd is shutting down")
    }
}

impl CallError {
    /// The error as the API sends it to apps and tools.
    pub fn into_pb(self) -> lymph_proto::v1::CallError {
        lymph_proto::v1::CallError {
            kind: self.kind as i32,
            r#type: self.error_type,
            message: self.message,
        }
    }

    /// An error an app sent (its reply or its HTTP answer).
    pub fn from_pb(e: lymph_proto::v1::CallError) -> CallError {
        CallError {
            kind: kind_from_app(e.kind),
            error_type: e.r#type,
            message: e.message,
            instance: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_handler_failures() {
        for kind in KINDS {
            assert_eq!(kind_named(kind_name(kind)), kind);
        }
        assert_eq!(kind_named("nonsense"), ErrorKind::HandlerFailed);
        assert_eq!(kind_from_app(0), ErrorKind::HandlerFailed);
        assert_eq!(kind_from_app(9999), ErrorKind::HandlerFailed);
        assert_eq!(
            kind_from_app(ErrorKind::Overloaded as i32),
            ErrorKind::Overloaded
        );
    }

    #[test]
    fn errors_survive_the_api() {
        for kind in KINDS {
            let e = CallError::new(kind, "m");
            assert_eq!(CallError::from_pb(e.clone().into_pb()), e);
        }
    }
}
