//! The tonic adapter of the local API: admits the caller, checks names,
//! hands each request to the part that owns it (`Attach` to `attach`, `Call`
//! to the dispatcher, `Emit` to the emitter, `Discover` to the registry,
//! `Subscribe` to the bus) and maps results back to gRPC. Holds no state.

mod events;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use lymph_proto::v1 as pb;
use lymph_proto::v1::lymph_server::{Lymph, LymphServer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::attach::Attacher;
use crate::config::AppsConfig;
use crate::dispatch::{Call, Dispatcher, MethodDesc};
use crate::emit::Emitter;
use crate::events::EventBus;
use crate::registry::Registry;
use crate::server::conn::{Arrival, LocalPeer};
use crate::status::StatusBoard;
use crate::trace;

pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The handles the API hands requests to.
pub struct Api {
    pub apps: AppsConfig,
    pub attacher: Arc<Attacher>,
    pub dispatcher: Arc<Dispatcher>,
    pub emitter: Arc<Emitter>,
    pub registry: Arc<dyn Registry>,
    pub bus: Arc<dyn EventBus>,
    pub status: Arc<StatusBoard>,
    /// The daemon's endpoint: instances there are `local` in `Discover`.
    pub endpoint: String,
    /// Cancelled when the daemon starts stopping: subscriptions end.
    pub draining: CancellationToken,
    pub tasks: TaskTracker,
}

impl Api {
    pub fn server(self) -> LymphServer<Api> {
        LymphServer::new(self)
            .max_decoding_message_size(lymph_proto::connect::MAX_GRPC_MESSAGE)
            .max_encoding_message_size(lymph_proto::connect::MAX_GRPC_MESSAGE)
    }

    /// Refuses a caller the access rules do not admit (`PERMISSION_DENIED`,
    /// naming its uid and the setting), else marks its connection arrived.
    fn admit<T>(&self, request: &Request<T>, name: &str) -> Result<(), Status> {
        let cred = LocalPeer::of(request).map(|peer| &peer.cred);
        crate::access::admit(&self.apps, cred, name)
            .map_err(|denied| Status::permission_denied(denied.to_string()))?;
        Arrival::mark(request);
        Ok(())
    }
}

/// The one mapping of call errors to gRPC status, for the unary calls that
/// answer with a status rather than an error in the reply.
fn status_of(e: crate::error::CallError) -> Status {
    use crate::error::ErrorKind as K;
    let message = e.message;
    match e.kind {
        K::UnknownService | K::UnknownMethod => Status::not_found(message),
        K::BadRequest | K::Invalid => Status::invalid_argument(message),
        K::TooLarge | K::Overloaded => Status::resource_exhausted(message),
        K::DeadlineExceeded => Status::deadline_exceeded(message),
        K::Cancelled => Status::cancelled(message),
        K::Unavailable | K::ShuttingDown => Status::unavailable(message),
        K::RemoteError | K::HandlerFailed | K::Internal | K::Unspecified => {
            Status::internal(message)
        }
    }
}

fn optional(text: String) -> Option<String> {
    Some(text).filter(|t| !t.is_empty())
}

#[tonic::async_trait]
impl Lymph for Api {
    type AttachStream = BoxStream<pb::DaemonMessage>;
    type SubscribeStream = BoxStream<pb::Event>;

    async fn attach(
        &self,
        request: Request<Streaming<pb::AppMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        // The connection arrives with the app's `Hello`, not with the stream.
        let peer = LocalPeer::of(&request).cloned();
        self.attacher
            .open(peer, request.into_inner())
            .map(Response::new)
    }

    async fn call(
        &self,
        request: Request<pb::CallRequest>,
    ) -> Result<Response<pb::CallReply>, Status> {
        self.admit(&request, "Call")?;
        let req = request.into_inner();
        crate::names::check_call(&req.service, &req.method, &req.version, &req.trace_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let trace_id = trace::or_new(&req.trace_id);
        let call = Call {
            service: req.service,
            method: req.method,
            body: req.body,
            trace_id: trace_id.clone(),
            timeout: Some(Duration::from_millis(u64::from(req.timeout_ms))),
            version: optional(req.version),
            // A tool's call is a root of its trace.
            parent: None,
        };
        let reply = match self.dispatcher.call(call).await {
            Ok(answer) => pb::CallReply {
                identity: answer.identity().to_owned(),
                version: answer.version().unwrap_or_default().to_owned(),
                outcome: Some(pb::call_reply::Outcome::Body(answer.body)),
                trace_id,
            },
            Err(e) => pb::CallReply {
                identity: e.instance.clone().unwrap_or_default(),
                outcome: Some(pb::call_reply::Outcome::Error(e.into_pb())),
                trace_id,
                version: String::new(),
            },
        };
        Ok(Response::new(reply))
    }

    async fn emit(
        &self,
        request: Request<pb::EmitRequest>,
    ) -> Result<Response<pb::EmitReply>, Status> {
        self.admit(&request, "Emit")?;
        let req = request.into_inner();
        let trace_id = trace::or_new(&req.trace_id);
        match self
            .emitter
            .emit(
                req.event_type,
                req.body,
                trace_id.clone(),
                req.delay_ms,
                None,
            )
            .await
        {
            Ok(event_id) => Ok(Response::new(pb::EmitReply { trace_id, event_id })),
            Err(e) => Err(status_of(e)),
        }
    }

    async fn discover(
        &self,
        request: Request<pb::DiscoverRequest>,
    ) -> Result<Response<pb::DiscoverReply>, Status> {
        self.admit(&request, "Discover")?;
        let wanted = request.into_inner().service;
        if !wanted.is_empty() {
            crate::names::check_word("service name", &wanted)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
        }
        let registry = &self.registry;
        let names = registry
            .services()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut services = Vec::new();
        for name in names
            .into_iter()
            .filter(|n| wanted.is_empty() || *n == wanted)
        {
            let rx = registry
                .watch(&name)
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let instances: Vec<pb::InstanceInfo> = rx
                .borrow()
                .iter()
                .map(|i| pb::InstanceInfo {
                    id: i.id.clone(),
                    identity: i.identity.clone(),
                    endpoint: i.endpoint.clone(),
                    version: i.version.clone().unwrap_or_default(),
                    app_name: i.app_name.clone().unwrap_or_default(),
                    local: i.endpoint == self.endpoint,
                    ip: i.ip.clone().unwrap_or_default(),
                    log_endpoint: i.log_endpoint.clone().unwrap_or_default(),
                })
                .collect();
            if !instances.is_empty() {
                services.push(pb::ServiceInfo { name, instances });
            }
        }
        Ok(Response::new(pb::DiscoverReply { services }))
    }

    async fn inspect(
        &self,
        request: Request<pb::InspectRequest>,
    ) -> Result<Response<pb::InspectReply>, Status> {
        self.admit(&request, "Inspect")?;
        let req = request.into_inner();
        crate::names::check_word("service name", &req.service)
            .and_then(|()| crate::names::check_version_text("version", &req.version))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let version = optional(req.version);
        match self
            .dispatcher
            .inspect(&req.service, version.as_deref())
            .await
        {
            Ok((identity, methods)) => Ok(Response::new(pb::InspectReply {
                methods: methods.into_iter().map(method_to_pb).collect(),
                identity,
            })),
            Err(e) => Err(status_of(e)),
        }
    }

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.admit(&request, "Subscribe")?;
        let types = request.into_inner().event_types;
        events::subscribe(&self.bus, &self.draining, &self.tasks, types)
            .await
            .map(Response::new)
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        self.admit(&request, "Status")?;
        Ok(Response::new(self.status.reply()))
    }
}

fn method_to_pb(m: MethodDesc) -> pb::MethodInfo {
    pb::MethodInfo {
        name: m.name,
        version: m.version.unwrap_or_default(),
        params: m.params,
        help: m.help,
        concurrency: m.concurrency,
        raises: m.raises,
    }
}
