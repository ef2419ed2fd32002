//! `lymphctl status`: the `Status` RPC as `key: value` lines, one line per
//! attached app followed by one per event subscription of it, or as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use lymph_proto::v1::{AppStatus, StatusReply, StatusRequest, SubscriptionStatus};
use serde_json::{Value as Json, json};

use crate::{Client, print_out, render, rpc_error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The status as one JSON object, fields named as in the proto.
    #[arg(long)]
    json: bool,
}

pub async fn run(mut client: Client, args: Args) -> anyhow::Result<()> {
    let reply = client
        .status(StatusRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner();
    if args.json {
        print_out(&format!("{}\n", to_json(&reply)))
    } else {
        print_out(&render_text(&reply))
    }
}

pub fn render_text(s: &StatusReply) -> String {
    // Whole seconds: milliseconds only add noise to a human reading uptime.
    let uptime = humantime::format_duration(Duration::from_secs(s.uptime_ms / 1000));
    let mut out = String::new();
    let _ = writeln!(out, "version:   {}", s.version);
    let _ = writeln!(out, "socket:    {}", s.socket);
    let _ = writeln!(out, "endpoint:  {}", s.endpoint);
    let _ = writeln!(out, "identity:  {}", s.identity);
    let _ = writeln!(out, "registry:  {}", s.registry);
    let _ = writeln!(out, "events:    {}", s.events);
    let _ = writeln!(out, "uptime:    {uptime}");
    let metrics = if s.metrics_listen.is_empty() {
        "off".to_owned()
    } else {
        format!("http://{}/metrics", s.metrics_listen)
    };
    let _ = writeln!(out, "metrics:   {metrics}");
    let _ = writeln!(
        out,
        "calls:     {} total, {} failed, {} in flight",
        s.calls_total, s.calls_failed, s.calls_in_flight
    );
    let _ = writeln!(out, "apps:      {}", s.apps.len());
    for app in &s.apps {
        out.push_str(&app_line(app));
        for sub in &app.subscriptions {
            out.push_str(&subscription_line(sub));
        }
    }
    out
}

/// `    event TYPE  IFACE.HANDLER  IN[/LIMIT] in flight  queue QUEUE  consuming|retrying (...): ERROR[  refused ...]`
/// (`/LIMIT`: the handler's own concurrency limit, when it has one).
fn subscription_line(sub: &SubscriptionStatus) -> String {
    let state = if sub.consuming {
        "consuming".to_owned()
    } else {
        // Whole seconds, rounded up: "next in 0s" would read as "now".
        let next = Duration::from_secs(sub.next_attempt_ms.div_ceil(1000));
        format!(
            "retrying ({} failed, next in {}): {}",
            sub.failed_attempts,
            humantime::format_duration(next),
            sub.error
        )
    };
    let refused = if sub.refused_too_large + sub.refused_malformed > 0 {
        format!(
            "  refused {} too large, {} malformed",
            sub.refused_too_large, sub.refused_malformed
        )
    } else {
        String::new()
    };
    let in_flight = if sub.concurrency > 0 {
        format!("{}/{}", sub.in_flight, sub.concurrency)
    } else {
        sub.in_flight.to_string()
    };
    format!(
        "    event {}  {}.{}  {in_flight} in flight  queue {}  {state}{refused}\n",
        sub.event_type, sub.interface, sub.handler, sub.queue
    )
}

/// `  NAME  [IDENTITY10]  pid PID[  uid UID  gid GID]  IFACE,IFACE|-  ready|starting|tool  IN/MAX in flight  N handled`
fn app_line(app: &AppStatus) -> String {
    let interfaces = if app.interfaces.is_empty() {
        "-".to_owned()
    } else {
        app.interfaces.join(",")
    };
    format!(
        "  {}  [{}]  {}  {}  {}  {}/{} in flight  {} handled\n",
        app.app_name,
        render::short(&app.identity, 10),
        who(app),
        interfaces,
        state(app),
        app.in_flight,
        app.max_concurrency,
        app.handled,
    )
}

/// `pid PID  uid UID  gid GID` from the kernel's peer credentials; from an
/// older daemon, which has none, the pid the app said.
fn who(app: &AppStatus) -> String {
    match &app.peer {
        Some(peer) => {
            let pid = if peer.pid == 0 { app.pid } else { peer.pid };
            format!("pid {pid}  uid {}  gid {}", peer.uid, peer.gid)
        }
        None => format!("pid {}", app.pid),
    }
}

/// `ready`; `starting` before the app's `Ready`; `tool` for a caller that serves nothing.
fn state(app: &AppStatus) -> &'static str {
    match (app.ready, app.interfaces.is_empty()) {
        (true, _) => "ready",
        (false, true) => "tool",
        (false, false) => "starting",
    }
}

pub fn to_json(s: &StatusReply) -> Json {
    let apps: Vec<Json> = s
        .apps
        .iter()
        .map(|a| {
            let subscriptions: Vec<Json> = a.subscriptions.iter().map(subscription_json).collect();
            let peer = a
                .peer
                .as_ref()
                .map(|p| json!({"uid": p.uid, "gid": p.gid, "pid": p.pid}));
            json!({
                "identity": a.identity, "app_name": a.app_name, "interfaces": a.interfaces,
                "pid": a.pid, "sdk": a.sdk, "ready": a.ready, "in_flight": a.in_flight,
                "max_concurrency": a.max_concurrency, "handled": a.handled,
                "subscriptions": subscriptions, "peer": peer,
            })
        })
        .collect();
    json!({
        "version": s.version, "socket": s.socket, "endpoint": s.endpoint,
        "identity": s.identity, "registry": s.registry, "events": s.events,
        "uptime_ms": s.uptime_ms, "calls_total": s.calls_total,
        "calls_failed": s.calls_failed, "calls_in_flight": s.calls_in_flight,
        "metrics_listen": s.metrics_listen, "apps": apps,
    })
}

fn subscription_json(s: &SubscriptionStatus) -> Json {
    json!({
        "interface": s.interface, "handler": s.handler, "event_type": s.event_type,
        "queue": s.queue, "consuming": s.consuming, "error": s.error,
        "failed_attempts": s.failed_attempts, "next_attempt_ms": s.next_attempt_ms,
        "refused_too_large": s.refused_too_large, "refused_malformed": s.refused_malformed,
        "concurrency": s.concurrency, "in_flight": s.in_flight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists_daemon_then_apps() {
        let reply = StatusReply {
            version: "0.1.0".to_owned(),
            socket: "/tmp/s.sock".to_owned(),
            uptime_ms: 61_500,
            calls_total: 3,
            calls_failed: 1,
            apps: vec![AppStatus {
                identity: "0123456789abcdef".to_owned(),
                app_name: "greeter".to_owned(),
                interfaces: vec!["Greeting".to_owned(), "Admin".to_owned()],
                pid: 42,
                ready: true,
                in_flight: 2,
                max_concurrency: 64,
                handled: 7,
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render_text(&reply);
        assert!(
            text.starts_with("version:   0.1.0\nsocket:    /tmp/s.sock\n"),
            "{text}"
        );
        assert!(text.contains("uptime:    1m 1s\n"), "{text}");
        assert!(
            text.contains("calls:     3 total, 1 failed, 0 in flight\n"),
            "{text}"
        );
        assert!(
            text.ends_with("apps:      1\n  greeter  [0123456789]  pid 42  Greeting,Admin  ready  2/64 in flight  7 handled\n"),
            "{text}"
        );
        assert_eq!(to_json(&reply)["apps"][0]["handled"], json!(7));
        let tool = AppStatus {
            app_name: "lymphctl".to_owned(),
            ..Default::default()
        };
        assert!(
            app_line(&tool).contains("  -  tool  0/0 in flight"),
            "{}",
            app_line(&tool)
        );
    }

    #[test]
    fn apps_show_who_connected_as_the_kernel_says() {
        let app = AppStatus {
            app_name: "echo".to_owned(),
            pid: 7,
            peer: Some(lymph_proto::v1::PeerCredentials {
                uid: 1001,
                gid: 1002,
                pid: 4242,
            }),
            ..Default::default()
        };
        assert!(
            app_line(&app).starts_with("  echo  []  pid 4242  uid 1001  gid 1002  -  tool"),
            "{}",
            app_line(&app)
        );
        let reply = StatusReply {
            apps: vec![app],
            ..Default::default()
        };
        let json = to_json(&reply);
        assert_eq!(
            json["apps"][0]["peer"],
            json!({"uid": 1001, "gid": 1002, "pid": 4242})
        );
    }

    #[test]
    fn subscriptions_follow_their_app_and_say_why_they_are_not_consuming() {
        let sub = |consuming: bool| SubscriptionStatus {
            interface: "Test".to_owned(),
            handler: "on_work".to_owned(),
            event_type: "work".to_owned(),
            queue: "Test-on_work".to_owned(),
            consuming,
            ..Default::default()
        };
        let failing = SubscriptionStatus {
            error: "PRECONDITION_FAILED - inequivalent arg 'durable'".to_owned(),
            failed_attempts: 3,
            next_attempt_ms: 3_200,
            ..sub(false)
        };
        let refusing = SubscriptionStatus {
            refused_too_large: 2,
            in_flight: 1,
            concurrency: 2,
            ..sub(true)
        };
        let reply = StatusReply {
            apps: vec![AppStatus {
                app_name: "worker".to_owned(),
                subscriptions: vec![failing, refusing],
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render_text(&reply);
        assert!(
            text.ends_with(
                "\n    event work  Test.on_work  0 in flight  queue Test-on_work  \
                 retrying (3 failed, next in 4s): \
                 PRECONDITION_FAILED - inequivalent arg 'durable'\n\
                 \x20   event work  Test.on_work  1/2 in flight  queue Test-on_work  consuming  \
                 refused 2 too large, 0 malformed\n"
            ),
            "{text}"
        );
        let json = to_json(&reply);
        assert_eq!(
            json["apps"][0]["subscriptions"][0]["failed_attempts"],
            json!(3)
        );
        assert_eq!(
            json["apps"][0]["subscriptions"][1]["refused_too_large"],
            json!(2)
        );
        let held = &json["apps"][0]["subscriptions"];
        assert_eq!(
            (&held[0]["in_flight"], &held[0]["concurrency"]),
            (&json!(0), &json!(0))
        );
        assert_eq!(
            (&held[1]["in_flight"], &held[1]["concurrency"]),
            (&json!(1), &json!(2))
        );
    }
}
