//! The one error type of a call, whatever path it took: a kind callers can
//! branch on, lymph's error type name for typed handler errors, and a reason.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    UnknownService,
    UnknownMethod,
    BadRequest,
    RemoteError,
    HandlerFailed,
    DeadlineExceeded,
    Overloaded,
    Unavailable,
    TooLarge,
    Invalid,
    ShuttingDown,
    Internal,
}

impl ErrorKind {
    /// Every kind, for lookups by name.
    pub const ALL: [ErrorKind; 12] = [
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
    ];

    /// The kind `as_str` names.
    pub fn named(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// A stable snake_case name, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnknownService => "unknown_service",
            ErrorKind::UnknownMethod => "unknown_method",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::RemoteError => "remote_error",
            ErrorKind::HandlerFailed => "handler_failed",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Invalid => "invalid",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub kind: ErrorKind,
    /// For `RemoteError`: the error's type name (lymph's ERROR `type`).
    pub error_type: String,
    pub message: String,
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

    pub fn shutting_down() -> Self {
        Self::new(ErrorKind::ShuttingDown, "lymphd is shutting down")
    }
}
