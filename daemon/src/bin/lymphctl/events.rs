//! `lymphctl emit` (the `Emit` RPC) and `lymphctl subscribe` (the `Subscribe`
//! server stream, printed line by line until Ctrl-C).

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use lymph_proto::v1::{EmitRequest, Event, SubscribeRequest};

use crate::request::{millis, parse_duration, read_params};
use crate::wait::Patience;
use crate::{Client, print_out, render, rpc_error};

#[derive(Debug, clap::Args)]
pub struct EmitArgs {
    /// The event type, e.g. `greeted`.
    event_type: String,
    /// The body as a JSON object; `-` reads it from stdin.
    body: String,
    /// Deliver no sooner than this from now: seconds (5, 0.5) or 5s, 500ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    delay: Option<Duration>,
    /// Trace id to send (default: the daemon makes one).
    #[arg(long, value_name = "T")]
    trace_id: Option<String>,
    /// Print the event's trace_id and event_id.
    #[arg(short, long)]
    verbose: bool,
}

pub async fn emit(mut client: Client, args: EmitArgs) -> anyhow::Result<()> {
    let body = render::params_to_msgpack(&read_params(&args.body).await?)?;
    let request = EmitRequest {
        event_type: args.event_type,
        body: Bytes::from(body),
        trace_id: args.trace_id.unwrap_or_default(),
        delay_ms: args.delay.map_or(0, |d| u64::from(millis(d))),
    };
    let reply = client.emit(request).await.map_err(rpc_error)?.into_inner();
    if args.verbose {
        print_out(&format!(
            "trace_id: {}\nevent_id: {}\n",
            reply.trace_id, reply.event_id
        ))?;
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct SubscribeArgs {
    /// Event types to print.
    #[arg(required = true, value_name = "TYPE")]
    event_types: Vec<String>,
    /// Append each event's trace id.
    #[arg(short = 'D', long)]
    show_headers: bool,
}

/// Connecting and the daemon's answer to `Subscribe` are bounded by
/// `--connect-timeout`; waiting for events is not.
pub async fn subscribe(wait: &Patience, args: SubscribeArgs) -> anyhow::Result<()> {
    let request = SubscribeRequest {
        event_types: args.event_types,
    };
    let subscribed = async {
        let mut client = wait.connect().await?;
        client.subscribe(request).await.map_err(rpc_error)
    };
    let mut events = wait.whole("subscribe", subscribed).await?.into_inner();
    let mut stdout = std::io::stdout();
    loop {
        let event = tokio::select! {
            next = events.message() => next.map_err(|s| rpc_error(s).context("the subscription ended"))?,
            stop = tokio::signal::ctrl_c() => {
                stop.context("cannot listen for Ctrl-C")?;
                return Ok(());
            }
        };
        let Some(event) = event else {
            bail!("lymphd ended the subscription");
        };
        // Flushed per line: someone is watching, or piping into `grep --line-buffered`.
        let written = writeln!(stdout, "{}", event_line(&event, args.show_headers))
            .and_then(|()| stdout.flush());
        match written {
            Ok(()) => {}
            // The reader went away (`| head -3`): that ends the subscription quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(anyhow::Error::new(e).context("cannot write to stdout")),
        }
    }
}

/// `TYPE: <body as JSON>`, with `  trace_id: <id>` appended for `-D`.
pub fn event_line(event: &Event, show_headers: bool) -> String {
    let body = match render::msgpack_to_json(&event.body) {
        Ok(json) => json.to_string(),
        Err(e) => format!("<{e}>"),
    };
    let mut line = format!("{}: {body}", event.event_type);
    if show_headers {
        line.push_str(&format!("  trace_id: {}", event.trace_id));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_as_type_and_json_body() {
        let body = render::params_to_msgpack(r#"{"name": "Joe"}"#).expect("pack");
        let event = Event {
            event_type: "greeted".to_owned(),
            body: Bytes::from(body),
            trace_id: "t1".to_owned(),
            event_id: "e1".to_owned(),
        };
        assert_eq!(event_line(&event, false), r#"greeted: {"name":"Joe"}"#);
        assert_eq!(
            event_line(&event, true),
            r#"greeted: {"name":"Joe"}  trace_id: t1"#
        );
    }
}
