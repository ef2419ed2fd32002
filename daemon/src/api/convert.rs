//! Proto ↔ domain conversions, at the edge: the one place where wire types
//! become the daemon's types and back.

use lymph_proto::v1 as pb;

use crate::dispatch::MethodDesc;
use crate::spec::{AppSpec, InterfaceDef, MethodDef, RouteDef, SubscriptionDef};

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
