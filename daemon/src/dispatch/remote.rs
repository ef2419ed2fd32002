//! Calls to instances on other hosts through the `rpc::Remote` transport, and
//! the mapping of lymph's replies (REP, ACK, NACK, ERROR) to call results.

use bytes::Bytes;

use super::{CallError, ErrorKind};
use crate::registry::Instance;
use crate::rpc::{IncomingReply, OutgoingRequest, Remote, ReplyKind, RpcError, frame};

/// Sends `interface.method` to a remote instance and maps its reply.
pub async fn call(
    remote: &dyn Remote,
    instance: &Instance,
    subject: String,
    body: Bytes,
    trace_id: &str,
    timeout: std::time::Duration,
) -> Result<Bytes, CallError> {
    let request = OutgoingRequest {
        identity: identity_header(&subject, instance),
        subject,
        body,
        trace_id: trace_id.to_owned(),
        version: instance.version.clone(),
        timeout,
    };
    match remote.request(&instance.endpoint, request).await {
        Ok(reply) => reply_outcome(reply),
        Err(e) => Err(transport_error(e)),
    }
}

/// The `lymphd_identity` header of a request: the chosen instance's identity
/// on `lymph.*` subjects, whose answer depends on the app (`status`,
/// `inspect`); a lymphd answers for that app alone, Python lymph ignores it.
pub fn identity_header(subject: &str, instance: &Instance) -> Option<String> {
    subject
        .starts_with("lymph.")
        .then(|| instance.identity.clone())
}

/// The caller's view of a remote reply.
pub fn reply_outcome(reply: IncomingReply) -> Result<Bytes, CallError> {
    match reply.kind {
        ReplyKind::Rep | ReplyKind::Ack => Ok(reply.body),
        ReplyKind::Error => {
            let (error_type, message) = frame::decode_error_body(&reply.body);
            Err(CallError {
                kind: ErrorKind::RemoteError,
                error_type,
                message,
            })
        }
        ReplyKind::Nack => Err(match reply.reason {
            // Another lymphd said why.
            Some(reason) => CallError::new(kind_named(&reason.kind), reason.message),
            // lymph says NACK for unknown methods, bad arguments and crashes alike.
            None => CallError::new(
                ErrorKind::HandlerFailed,
                "the instance refused the request (lymph's NACK: unknown method, bad \
                 arguments or an unexpected failure; lymph does not say which)",
            ),
        }),
    }
}

pub fn transport_error(e: RpcError) -> CallError {
    let kind = match &e {
        RpcError::Timeout { .. } => ErrorKind::DeadlineExceeded,
        RpcError::TooLarge { .. } => ErrorKind::TooLarge,
        RpcError::Overloaded { .. } => ErrorKind::Overloaded,
        RpcError::BadEndpoint(_) => ErrorKind::Invalid,
        RpcError::Closed => ErrorKind::ShuttingDown,
        RpcError::Unreachable { .. } | RpcError::Bind { .. } => ErrorKind::Unavailable,
    };
    CallError::new(kind, e.to_string())
}

/// The error kind a NACK reason names (`ErrorKind::as_str`); unknown names
/// count as handler failures.
pub fn kind_named(name: &str) -> ErrorKind {
    ErrorKind::named(name).unwrap_or(ErrorKind::HandlerFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::NackReason;

    #[test]
    fn nack_reasons_keep_their_kind() {
        let reply = IncomingReply {
            kind: ReplyKind::Nack,
            body: Bytes::new(),
            trace_id: None,
            reason: Some(NackReason {
                kind: "unknown_method".to_owned(),
                message: "Greeting has no method \"x\"".to_owned(),
            }),
        };
        let err = reply_outcome(reply).expect_err("nack");
        assert_eq!(err.kind, ErrorKind::UnknownMethod);
        assert_eq!(kind_named("nonsense"), ErrorKind::HandlerFailed);
        for kind in [
            ErrorKind::Overloaded,
            ErrorKind::BadRequest,
            ErrorKind::DeadlineExceeded,
        ] {
            assert_eq!(kind_named(kind.as_str()), kind);
        }
    }

    #[test]
    fn a_bare_nack_is_a_handler_failure() {
        let reply = IncomingReply {
            kind: ReplyKind::Nack,
            body: Bytes::new(),
            trace_id: None,
            reason: None,
        };
        assert_eq!(
            reply_outcome(reply).expect_err("nack").kind,
            ErrorKind::HandlerFailed
        );
    }
}
