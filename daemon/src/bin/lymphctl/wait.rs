//! `--connect-timeout`: how long lymphctl waits for lymphd, and the one error
//! that says which socket did not answer what, within how long.

use std::path::PathBuf;
use std::time::Duration;

use crate::Client;

/// The socket and how long lymphd has to answer on it.
#[derive(Debug, Clone)]
pub struct Patience {
    pub socket: PathBuf,
    /// `--connect-timeout`.
    pub connect: Duration,
}

impl Patience {
    /// Connects within `--connect-timeout`.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        match lymph_proto::connect_within(&self.socket, self.connect).await {
            Err(lymph_proto::ConnectError::TimedOut { .. }) => {
                Err(self.timed_out(self.connect, "the connection", "--connect-timeout"))
            }
            other => Ok(other?),
        }
    }

    /// Connects and runs a command on the client, the whole within
    /// `--connect-timeout`.
    pub async fn command<Run, Done>(&self, what: &str, run: Run) -> anyhow::Result<()>
    where
        Run: FnOnce(Client) -> Done,
        Done: Future<Output = anyhow::Result<()>>,
    {
        self.whole(what, async { run(self.connect().await?).await })
            .await
    }

    /// Runs `work`, connection included, within `--connect-timeout`.
    pub async fn whole<T>(
        &self,
        what: &str,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        self.within(self.connect, what, "--connect-timeout", work)
            .await
    }

    /// Runs `work` within `limit`; past it, the error names the socket,
    /// `what` went unanswered and `why` (the flags that made the limit).
    pub async fn within<T>(
        &self,
        limit: Duration,
        what: &str,
        why: &str,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(limit, work).await {
            Ok(done) => done,
            Err(_) => Err(self.timed_out(limit, what, why)),
        }
    }

    fn timed_out(&self, limit: Duration, what: &str, why: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "timed out: lymphd on {} did not answer {what} within {} ({why})",
            self.socket.display(),
            humantime::format_duration(limit)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timeout_names_the_socket_what_and_why() {
        let patience = Patience {
            socket: PathBuf::from("/run/l.sock"),
            connect: Duration::from_millis(10),
        };
        let err = patience
            .whole("discover", std::future::pending::<anyhow::Result<()>>())
            .await
            .expect_err("times out");
        assert_eq!(
            err.to_string(),
            "timed out: lymphd on /run/l.sock did not answer discover within 10ms (--connect-timeout)"
        );
        let done = patience.whole("status", async { Ok(7) }).await;
        assert_eq!(done.ok(), Some(7));
    }
}
