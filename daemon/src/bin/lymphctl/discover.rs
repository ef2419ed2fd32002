//! `lymphctl discover`: the `Discover` RPC, printed as lymph prints it
//! (`Name [n]`, n = distinct identities), with `--instances` or `--json`.

use std::collections::BTreeSet;

use lymph_proto::v1::{DiscoverRequest, InstanceInfo, ServiceInfo};
use serde_json::{Map, Value as Json, json};

use crate::request::or_dash;
use crate::{Client, print_out, render, rpc_error};

/// What lymph prints when the registry is empty.
pub const NOTHING_FOUND: &str = "No registered services found";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this service.
    name: Option<String>,
    /// One line per instance under each service.
    #[arg(long)]
    instances: bool,
    /// `{name: [instances]}` as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(mut client: Client, args: Args) -> anyhow::Result<()> {
    let request = DiscoverRequest {
        service: args.name.unwrap_or_default(),
    };
    let reply = client
        .discover(request)
        .await
        .map_err(rpc_error)?
        .into_inner();
    let mut services = reply.services;
    sort(&mut services);
    if args.json {
        print_out(&format!("{}\n", to_json(&services)))
    } else {
        print_out(&render_text(&services, args.instances))
    }
}

/// Services by name, instances by identity then id, so output is stable.
fn sort(services: &mut [ServiceInfo]) {
    services.sort_by(|a, b| a.name.cmp(&b.name));
    for service in services.iter_mut() {
        service
            .instances
            .sort_by(|a, b| (&a.identity, &a.id).cmp(&(&b.identity, &b.id)));
    }
}

/// The text layout; `services` must be sorted.
pub fn render_text(services: &[ServiceInfo], instances: bool) -> String {
    let mut out = String::new();
    for service in services.iter().filter(|s| !s.instances.is_empty()) {
        let identities: BTreeSet<&str> = service
            .instances
            .iter()
            .map(|i| i.identity.as_str())
            .collect();
        out.push_str(&format!("{} [{}]\n", service.name, identities.len()));
        if instances {
            for instance in &service.instances {
                out.push_str(&instance_line(instance));
            }
        }
    }
    if out.is_empty() {
        out = format!("{NOTHING_FOUND}\n");
    }
    out
}

fn instance_line(i: &InstanceInfo) -> String {
    format!(
        "  [{}]  {}  {}  {}\n",
        render::short(&i.identity, 10),
        or_dash(&i.version),
        i.endpoint,
        or_dash(&i.app_name),
    )
}

/// `{name: [instance objects]}`, fields named as in the proto.
pub fn to_json(services: &[ServiceInfo]) -> Json {
    let map: Map<String, Json> = services
        .iter()
        .map(|s| {
            let instances = s.instances.iter().map(|i| {
                json!({
                    "id": i.id,
                    "identity": i.identity,
                    "endpoint": i.endpoint,
                    "version": i.version,
                    "app_name": i.app_name,
                    "local": i.local,
                    "ip": i.ip,
                    "log_endpoint": i.log_endpoint,
                })
            });
            (s.name.clone(), Json::Array(instances.collect()))
        })
        .collect();
    Json::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(identity: &str, id: &str, version: &str) -> InstanceInfo {
        InstanceInfo {
            id: id.to_owned(),
            identity: identity.to_owned(),
            endpoint: "local://d".to_owned(),
            version: version.to_owned(),
            app_name: "greeter".to_owned(),
            ..Default::default()
        }
    }

    fn service(name: &str, instances: Vec<InstanceInfo>) -> ServiceInfo {
        ServiceInfo {
            name: name.to_owned(),
            instances,
        }
    }

    #[test]
    fn counts_distinct_identities_sorted_by_name() {
        let mut services = vec![
            service("lymph", vec![instance("d0", "1", "0.15.0")]),
            // One identity registered twice (two interfaces of one app) counts once.
            service(
                "Greeting",
                vec![
                    instance("aa", "2", ""),
                    instance("bb", "3", ""),
                    instance("aa", "4", ""),
                ],
            ),
            service("Empty", vec![]),
        ];
        sort(&mut services);
        assert_eq!(render_text(&services, false), "Greeting [2]\nlymph [1]\n");
    }

    #[test]
    fn instances_show_short_identity_version_endpoint_app() {
        let services = vec![service(
            "Greeting",
            vec![
                instance("0123456789abcdef", "1", "1.2.0"),
                instance("x", "2", ""),
            ],
        )];
        assert_eq!(
            render_text(&services, true),
            "Greeting [2]\n  [0123456789]  1.2.0  local://d  greeter\n  [x]  -  local://d  greeter\n"
        );
    }

    #[test]
    fn nothing_registered_says_so() {
        assert_eq!(render_text(&[], true), "No registered services found\n");
        assert_eq!(to_json(&[]), json!({}));
    }
}
