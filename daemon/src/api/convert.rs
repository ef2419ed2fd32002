//! Proto ↔ domain conversions, at the edge: the one place where wire types
//! become the daemon's types and back.

use lymph_proto::v1 as pb;

use crate::dispatch::{CallError, ErrorKind, MethodDesc};
use crate::spec::{AppSpec, InterfaceDef, MethodDef, RouteDef, SubscriptionDef};

pub fn kind_to_pb(kind: ErrorKind) -> pb::ErrorKind {
    match kind {
        ErrorKind::UnknownService => pb::ErrorKind::UnknownService,
        ErrorKind::UnknownMethod => pb::ErrorKind::UnknownMethod,
        ErrorKind::BadRequest => pb::ErrorKind::BadRequest,
        ErrorKind::RemoteError => pb::ErrorKind::RemoteError,
        ErrorKind::HandlerFailed => pb::ErrorKind::HandlerFailed,
        ErrorKind::DeadlineExceeded => pb::ErrorKind::DeadlineExceeded,
        ErrorKind::Overloaded => pb::ErrorKind::Overloaded,
        ErrorKind::Unavailable => pb::ErrorKind::Unavailable,
        ErrorKind::TooLarge => pb::ErrorKind::TooLarge,
        ErrorKind::Invalid => pb::ErrorKind::Invalid,
        ErrorKind::ShuttingDown => pb::ErrorKind::ShuttingDown,
        ErrorKind::Internal => pb::ErrorKind::Internal,
    }
}

pub fn kind_from_pb(kind: pb::ErrorKind) -> ErrorKind {
    match kind {
        pb::ErrorKind::UnknownService => ErrorKind::UnknownService,
        pb::ErrorKind::UnknownMethod => ErrorKind::UnknownMethod,
        pb::ErrorKind::BadRequest => ErrorKind::BadRequest,
        pb::ErrorKind::RemoteError => ErrorKind::RemoteError,
        // An app that names no kind failed unexpectedly: lymph's NACK.
        pb::ErrorKind::HandlerFailed | pb::ErrorKind::Unspecified => ErrorKind::HandlerFailed,
        pb::ErrorKind::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        pb::ErrorKind::Overloaded => ErrorKind::Overloaded,
        pb::ErrorKind::Unavailable => ErrorKind::Unavailable,
        pb::ErrorKind::TooLarge => ErrorKind::TooLarge,
        pb::ErrorKind::Invalid => ErrorKind::Invalid,
        pb::ErrorKind::ShuttingDown => ErrorKind::ShuttingDown,
        pb::ErrorKind::Internal => ErrorKind::Internal,
    }
}

pub fn error_to_pb(e: CallError) -> pb::CallError {
    pb::CallError {
        kind: kind_to_pb(e.kind) as i32,
        r#type: e.error_type,
        message: e.message,
    }
}

pub fn error_from_pb(e: pb::CallError) -> CallError {
    let kind = kind_from_pb(pb::ErrorKind::try_from(e.kind).unwrap_or(pb::ErrorKind::Unspecified));
    CallError {
        kind,
        error_type: e.r#type,
        message: e.message,
    }
}

pub fn spec_from_hello(hello: pb::Hello) -> AppSpec {
    AppSpec {
        app_name: if hello.app_name.is_empty() {
            format!("pid-{}", hello.pid)
        } else {
            hello.app_name
        },
        interfaces: hello
            .interfaces
            .into_iter()
            .map(|i| InterfaceDef {
                name: i.name,
                version: Some(i.version).filter(|v| !v.is_empty()),
                methods: i
                    .methods
                    .into_iter()
                    .map(|m| MethodDef {
                        name: m.name,
                        params: m.params,
                        help: m.help,
                    })
                    .collect(),
                subscriptions: i
                    .subscriptions
                    .into_iter()
                    .map(|s| SubscriptionDef {
                        broadcast: s.mode() == pb::DeliveryMode::Broadcast,
                        handler: if s.handler.is_empty() {
                            s.event_type.clone()
                        } else {
                            s.handler
                        },
                        event_type: s.event_type,
                        retry: s.retry,
                    })
                    .collect(),
                routes: i
                    .routes
                    .into_iter()
                    .map(|r| RouteDef {
                        method: r.method.to_ascii_uppercase(),
                        path: r.path,
                        endpoint: r.endpoint,
                    })
                    .collect(),
            })
            .collect(),
        max_concurrency: hello.max_concurrency,
        http_port: u16::try_from(hello.http_port).unwrap_or(0),
        sdk: hello.sdk,
        pid: hello.pid,
    }
}

pub fn method_to_pb(m: MethodDesc) -> pb::MethodInfo {
    pb::MethodInfo {
        name: m.name,
        version: m.version.unwrap_or_default(),
        params: m.params,
        help: m.help,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_the_round_trip() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind_from_pb(kind_to_pb(kind)), kind);
        }
        assert_eq!(
            kind_from_pb(pb::ErrorKind::Unspecified),
            ErrorKind::HandlerFailed
        );
    }
}
