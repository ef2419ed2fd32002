//! What calls to instances on other hosts carry (the identity header), and
//! the mapping of lymph's replies (REP, ACK, NACK, ERROR) to call results.

use bytes::Bytes;

use crate::error::{CallError, ErrorKind};
use crate::registry::Instance;
use crate::rpc::{IncomingReply, ReplyKind, RpcError, frame};

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
                instance: None,
            })
        }
        ReplyKind::Nack => Err(match reply.reason {
            // Another lymphd said why.
            Some(reason) => CallError::new(reason.kind, reason.message),
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
        RpcError::Cancelled => ErrorKind::Cancelled,
        RpcError::Unreachable { .. } | RpcError::Bind { .. } => ErrorKind::Unavailable,
    };
    CallError::new(kind, e.to_string())
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
                kind: ErrorKind::UnknownMethod,
                message: "Greeting has no method \"x\"".to_owned(),
            }),
        };
        let err = reply_outcome(reply).expect_err("nack");
        assert_eq!(err.kind, ErrorKind::UnknownMethod);
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
