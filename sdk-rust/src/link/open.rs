//! Opening one `Attach` stream: connect, send `Hello`, wait for `Welcome`; and
//! the backoff between attempts. Knows nothing about handlers or pending calls.

use std::path::PathBuf;
use std::time::Duration;

use lymph_proto::backoff::Backoff;
use lymph_proto::v1::{self, app_message, daemon_message};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::CallError;

/// Messages the app may queue for the daemon. Senders wait when it is full
/// (backpressure on a slow daemon) rather than queue without limit.
const OUTBOX: usize = 1024;

/// How long the daemon may take to answer `Hello`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// One open stream.
pub(crate) struct Conn {
    pub outbox: mpsc::Sender<v1::AppMessage>,
    pub inbound: tonic::Streaming<v1::DaemonMessage>,
    pub welcome: v1::Welcome,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("no lymphd is listening on {}", .0.display())]
    NotListening(PathBuf),
    /// The daemon refused the `Hello`: a programming error, not retried.
    #[error("lymphd rejected the app: {0}")]
    Rejected(CallError),
    /// The socket or its server failed the trust check: retried (an admin may
    /// fix the directory), but logged as an error every time.
    #[error("{0}")]
    Untrusted(lymph_proto::trust::Untrusted),
    #[error("cannot attach to lymphd at {}: {reason}", .socket.display())]
    Failed { socket: PathBuf, reason: String },
}

pub(crate) async fn open(socket: PathBuf, hello: v1::Hello) -> Result<Conn, OpenError> {
    let failed = |reason: String| OpenError::Failed {
        socket: socket.clone(),
        reason,
    };
    let mut client = lymph_proto::connect(&socket).await.map_err(|e| match e {
        lymph_proto::ConnectError::NotListening { .. } => OpenError::NotListening(socket.clone()),
        lymph_proto::ConnectError::Untrusted(untrusted) => OpenError::Untrusted(untrusted),
        other => failed(crate::error::error_chain(&other)),
    })?;
    let (outbox, requests) = mpsc::channel(OUTBOX);
    let hello = v1::AppMessage {
        kind: Some(app_message::Kind::Hello(hello)),
    };
    outbox
        .send(hello)
        .await
        .map_err(|_| failed("the stream closed".into()))?;
    let attach = async {
        let mut inbound = client
            .attach(ReceiverStream::new(requests))
            .await
            .map_err(|status| failed(status.message().to_owned()))?
            .into_inner();
        let first = inbound
            .message()
            .await
            .map_err(|status| failed(status.message().to_owned()))?;
        match first.and_then(|m| m.kind) {
            Some(daemon_message::Kind::Welcome(welcome)) => Ok((inbound, welcome)),
            Some(daemon_message::Kind::Rejected(rejected)) => Err(OpenError::Rejected(
                rejected
                    .error
                    .map(CallError::from_proto)
                    .unwrap_or_else(|| {
                        CallError::new(crate::ErrorKind::Invalid, "no reason given")
                    }),
            )),
            Some(_) => Err(failed(
                "the daemon did not answer Hello with Welcome".into(),
            )),
            None => Err(failed("the daemon closed the stream".into())),
        }
    };
    let (inbound, welcome) = tokio::time::timeout(WELCOME_TIMEOUT, attach)
        .await
        .map_err(|_| failed(format!("no welcome within {WELCOME_TIMEOUT:?}")))??;
    Ok(Conn {
        outbox,
        inbound,
        welcome,
    })
}

/// The reattach backoff: 100 ms doubling to 5 s, each delay ±20% jitter so
/// that the apps of a restarted daemon do not all come back at once.
pub(crate) const BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).with_jitter(0.2);

/// How a delay is shown in logs: "400ms", "2.1s".
pub(crate) fn show(delay: Duration) -> String {
    if delay < Duration::from_secs(1) {
        format!("{}ms", delay.as_millis())
    } else {
        format!("{:.1}s", delay.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_seconds_with_jitter() {
        let mut backoff = BACKOFF;
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(80) && delays[0] <= Duration::from_millis(120));
        assert!(delays[1] >= Duration::from_millis(160) && delays[1] <= Duration::from_millis(240));
        assert!(delays[9] >= Duration::from_secs(4) && delays[9] <= Duration::from_secs(6));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(120));
    }

    #[test]
    fn delays_show_compactly() {
        assert_eq!(show(Duration::from_millis(400)), "400ms");
        assert_eq!(show(Duration::from_millis(2100)), "2.1s");
    }
}
