//! The start of an app's life: its `Hello` read within `apps.hello_timeout`,
//! turned into an `AppSpec`, checked (names, routes, access rules), and a
//! session opened with its limits, log port and `Welcome`. A refused app gets
//! `Rejected` with the reason and its stream ends.

use std::sync::Arc;
use std::time::Duration;

use lymph_proto::v1 as pb;
use lymph_proto::v1::app_message::Kind as In;
use lymph_proto::v1::daemon_message::Kind as Out;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;
use tracing::info;

use super::{AppSession, Attacher, Outbox, SessionLimits};
use crate::error::{CallError, ErrorKind};
use crate::server::conn::LocalPeer;
use crate::spec::{AppSpec, InterfaceDef, MethodDef, RouteDef, SubscriptionDef};
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

/// Refused Hellos: a client may send them in a loop.
static BAD_HELLO: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// Reads the app's `Hello` and opens its session; `None` when the app was
/// refused (told why) or went away first. `peer` (the stream's connection)
/// is marked arrived when the app said an admitted `Hello`.
pub(super) async fn accept(
    attacher: &Attacher,
    peer: Option<LocalPeer>,
    inbound: &mut Streaming<pb::AppMessage>,
    tx: Outbox,
    closed: CancellationToken,
) -> Option<Arc<AppSession>> {
    let config = &attacher.config;
    let hello_timeout = config.apps.hello_timeout;
    let hello = match tokio::time::timeout(hello_timeout, inbound.message()).await {
        Ok(Ok(Some(pb::AppMessage {
            kind: Some(In::Hello(hello)),
        }))) => hello,
        Ok(Ok(None)) | Ok(Err(_)) => return None,
        Ok(Ok(Some(_))) => {
            reject(&tx, "the first message on Attach must be Hello").await;
            return None;
        }
        Err(_) => {
            reject(&tx, "no Hello within the hello timeout").await;
            return None;
        }
    };
    if hello.http_port > u32::from(u16::MAX) {
        let reason = format!("http_port {} is not a port (1-65535)", hello.http_port);
        warn_limited!(BAD_HELLO, app = %crate::names::shown(&hello.app_name), error = %reason, "refused an app");
        reject(&tx, &reason).await;
        return None;
    }
    let spec = spec_from_hello(hello);
    let checked = spec
        .validate()
        .map_err(|e| e.to_string())
        .and_then(|()| crate::web::check_routes(&spec).map_err(|e| e.to_string()));
    if let Err(e) = checked {
        warn_limited!(BAD_HELLO, app = %crate::names::shown(&spec.app_name), error = %e, "refused an app");
        reject(&tx, &e).await;
        return None;
    }
    let cred = peer.as_ref().map(|peer| &peer.cred);
    let names = spec.interfaces.iter().map(|i| i.name.as_str());
    if let Err(denied) = crate::access::admit_app(config, cred, names) {
        reject(&tx, &denied.to_string()).await;
        return None;
    }
    if let Some(peer) = &peer {
        peer.arrival.set();
    }
    let apps = &config.apps;
    let max_concurrency = match spec.max_concurrency {
        0 => apps.default_concurrency,
        asked => asked.min(apps.max_concurrency),
    };
    let limits = SessionLimits {
        max_concurrency,
        max_outgoing: apps.max_outgoing,
    };
    let identity = crate::trace::new_id();
    let sweep = attacher.sessions.sweep();
    let session = AppSession::new(identity.clone(), spec, limits, tx, closed, sweep);
    let session = Arc::new(session.with_peer(peer.map(|peer| peer.cred)));
    // Tools that serve nothing (lymphctl) log nothing worth a port.
    if !session.spec.interfaces.is_empty() {
        let whose = format!("app {}", session.spec.app_name);
        if let Some(port) = crate::logs::open_port(config, &whose).await {
            let _ = session.log.set(port);
        }
    }
    attacher.sessions.insert(session.clone());
    session.push(Out::Welcome(pb::Welcome {
        identity: identity.clone(),
        endpoint: attacher.endpoint.clone(),
        daemon_version: crate::VERSION.to_owned(),
        max_concurrency,
        max_body_bytes: config.rpc.max_body_bytes as u64,
    }));
    let names: Vec<&str> = session
        .spec
        .interfaces
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let uid = session.peer.as_ref().map(|peer| peer.uid);
    info!(app = %session.spec.app_name, identity = %identity, pid = session.spec.pid,
          uid = ?uid, interfaces = ?names, "app attached");
    Some(session)
}

/// Tells an app why it was refused (kind `Invalid`: its setup is wrong, so
/// the SDK stops instead of reconnecting).
async fn reject(tx: &Outbox, message: &str) {
    let error = CallError::new(ErrorKind::Invalid, message).into_pb();
    let rejected = pb::DaemonMessage {
        kind: Some(Out::Rejected(pb::Rejected { error: Some(error) })),
    };
    // Bounded: the app may already be gone.
    let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Ok(rejected))).await;
}

/// The app's declarations as the daemon's types (checked by `AppSpec::validate`).
fn spec_from_hello(hello: pb::Hello) -> AppSpec {
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
                        raises: m.raises,
                        concurrency: m.concurrency,
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
                        concurrency: s.concurrency,
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
