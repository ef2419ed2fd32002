//! `AmqpConfig`: where RabbitMQ is, how to log in, the queue flavour
//! (`AmqpMode`), windows and timeouts. Pure: parses and redacts the URL,
//! knows nothing of connections.

use std::fmt;
use std::time::Duration;

use lapin::uri::AMQPUri;

use crate::events::EventError;

/// How queues and messages are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AmqpMode {
    /// lymph's own flags (non-durable queues, `x-ha-policy: all`), so Python
    /// lymph services share the queues. A broker restart loses what was queued.
    #[default]
    Lymph,
    /// Durable queues and persistent messages, for fleets of lymphd only (the
    /// flags differ from lymph's: a Python service redeclaring one gets a 406).
    Durable,
}

#[derive(Clone)]
pub struct AmqpConfig {
    /// `amqp://host:port/vhost`; credentials may be in it, or below.
    pub url: String,
    /// Overrides the URL's user (default `guest`).
    pub username: Option<String>,
    pub password: Option<String>,
    /// lymph's topic exchange; `<exchange>_waiting` and `<exchange>_retry` go with it.
    pub exchange: String,
    pub mode: AmqpMode,
    /// The envelope's `source`: this daemon's container identity (32 hex).
    pub identity: String,
    /// Emits awaiting the broker's confirm at once; more wait for a slot.
    pub confirm_window: usize,
    /// One connection attempt.
    pub connect_timeout: Duration,
    /// The longest an emit (or a `consume`) waits, including waiting for the
    /// broker to come back; past it the call fails with "rabbitmq unavailable".
    pub emit_timeout: Duration,
    /// Durable mode only: ready events per queue (`x-max-length` with
    /// `x-overflow: reject-publish`); an emit past it fails with `QueueFull`.
    /// `None`: unbounded, as lymph. Changing it on a live queue needs the
    /// queue deleted first (RabbitMQ refuses a redeclaration with other args).
    pub max_queue_length: Option<usize>,
    /// Durable mode only: a broadcast queue left without consumer this long
    /// (its daemon died while the broker was down) is deleted (`x-expires`).
    pub broadcast_expiry: Duration,
    /// The largest event body handed to a consumer (the daemon's
    /// `rpc.max_body_bytes`); a larger delivery is rejected without requeue.
    pub max_body_bytes: usize,
}

impl AmqpConfig {
    /// Defaults for everything but the URL; a fresh random identity.
    pub fn new(url: impl Into<String>) -> AmqpConfig {
        AmqpConfig {
            url: url.into(),
            username: None,
            password: None,
            exchange: "lymph".to_owned(),
            mode: AmqpMode::Lymph,
            identity: uuid::Uuid::new_v4().simple().to_string(),
            confirm_window: 256,
            connect_timeout: Duration::from_secs(5),
            emit_timeout: Duration::from_secs(30),
            max_queue_length: None,
            broadcast_expiry: Duration::from_secs(30 * 60),
            max_body_bytes: 4 * 1024 * 1024,
        }
    }

    /// The URL with any password removed, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// The parsed URL with the configured credentials applied.
    pub(crate) fn uri(&self) -> Result<AMQPUri, EventError> {
        let mut uri: AMQPUri = self.url.parse().map_err(|e| {
            EventError::Backend(format!("bad rabbitmq url {}: {e}", self.redacted_url()))
        })?;
        if let Some(username) = &self.username {
            uri.authority.userinfo.username = username.clone();
        }
        if let Some(password) = &self.password {
            uri.authority.userinfo.password = password.clone();
        }
        Ok(uri)
    }

    pub(crate) fn validate(&self) -> Result<(), EventError> {
        let invalid = |m: &str| Err(EventError::Invalid(m.to_owned()));
        if self.exchange.is_empty() || self.exchange.len() > 200 {
            return invalid("the exchange name must have 1 to 200 bytes");
        }
        if self.confirm_window == 0 {
            return invalid("confirm_window must be at least 1");
        }
        if self.max_body_bytes == 0 {
            return invalid("max_body_bytes must be at least 1");
        }
        if self.max_queue_length == Some(0) {
            return invalid("max_queue_length must be at least 1");
        }
        self.uri().map(|_| ())
    }
}

/// `amqp://user:secret@host/vh` → `amqp://user@host/vh`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    format!("{scheme}://{user}@{host}{path}")
}

impl fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &self.redacted_url())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("exchange", &self.exchange)
            .field("mode", &self.mode)
            .field("identity", &self.identity)
            .field("confirm_window", &self.confirm_window)
            .field("connect_timeout", &self.connect_timeout)
            .field("emit_timeout", &self.emit_timeout)
            .field("max_queue_length", &self.max_queue_length)
            .field("broadcast_expiry", &self.broadcast_expiry)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(redact("amqp://u:pw@h:5672/v"), "amqp://u@h:5672/v");
        assert_eq!(redact("amqp://h:5672/%2f"), "amqp://h:5672/%2f");
        let mut config = AmqpConfig::new("amqp://guest:s3cret@127.0.0.1:5672/x");
        config.password = Some("other".to_owned());
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
    }

    #[test]
    fn credentials_override_the_url() {
        let mut config = AmqpConfig::new("amqp://127.0.0.1:5672/vh");
        config.username = Some("me".to_owned());
        config.password = Some("pw".to_owned());
        let uri = config.uri().expect("parses");
        assert_eq!(uri.authority.userinfo.username, "me");
        assert_eq!(uri.authority.userinfo.password, "pw");
        assert_eq!(uri.vhost, "vh");
        assert!(AmqpConfig::new("not a url").validate().is_err());
    }
}
