//! `lymphctl request`: the subject and params, one unary `Call`, the reply as
//! JSON. With `-N` it hands the same call to the load generator in `bench`.
//! Without `--timeout` a call gets the daemon's `rpc.default_timeout`, which
//! lymphd's `Status` says.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use lymph_proto::v1::{CallRequest, StatusRequest, call_reply::Outcome};
use tokio::io::AsyncReadExt;

use crate::wait::Patience;
use crate::{Client, bench, print_out, render, rpc_error};

/// `rpc.default_timeout` of a lymphd too old to say its own in `Status`.
const DAEMON_DEFAULT: Duration = Duration::from_secs(3);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `Service.method`, optionally with a version requirement: `Greeting.greet@1.2`.
    subject: String,
    /// The arguments as a JSON object; `-` reads them from stdin.
    #[arg(default_value = "{}")]
    params: String,
    /// How long to wait for the reply: 1.5, 1s, 500ms [default: the daemon's
    /// rpc.default_timeout, 3s unless configured].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Trace id to send (default: the daemon makes one).
    #[arg(long, value_name = "T")]
    trace_id: Option<String>,
    /// Print the reply's trace_id, identity and version first.
    #[arg(short = 'D', long)]
    show_headers: bool,
    /// Print the reply as compact JSON on one line, however long.
    #[arg(long)]
    json: bool,
    /// Send this many requests (load generator) and print a summary instead of the reply.
    #[arg(short = 'N', value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Requests kept in flight with -N.
    #[arg(short = 'C', value_name = "CONCURRENCY", default_value_t = 1, requires = "count",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
}

/// Where a call goes: lymph splits `Service.method` at the last dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub service: String,
    pub method: String,
    /// A semver requirement; empty for any version.
    pub version: String,
}

pub fn parse_subject(text: &str) -> anyhow::Result<Subject> {
    let (address, version) = match text.split_once('@') {
        Some((_, "")) => bail!("subject {text:?} has an empty version after '@'"),
        Some((address, version)) => (address, version),
        None => (text, ""),
    };
    match address.rsplit_once('.') {
        Some((service, method)) if !service.is_empty() && !method.is_empty() => Ok(Subject {
            service: service.to_owned(),
            method: method.to_owned(),
            version: version.to_owned(),
        }),
        _ => bail!("subject {text:?} must look like Service.method"),
    }
}

/// `--timeout` and `--connect-timeout`: plain seconds (`1.5`) or a duration
/// as lymphd's config and environment write them (`1s`, `500ms`, `1m 30s`;
/// the same parser), above 0 and within the protocol's u32 milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let out_of_range = || format!("{text:?} must be above 0 and below 49 days");
    let duration = match trimmed.parse::<f64>() {
        Ok(seconds) if !seconds.is_finite() || seconds <= 0.0 => return Err(out_of_range()),
        Ok(seconds) if seconds * 1000.0 > f64::from(u32::MAX) => return Err(out_of_range()),
        Ok(seconds) => Duration::from_secs_f64(seconds),
        Err(_) => humantime::parse_duration(trimmed).map_err(|e| {
            format!("{text:?} is not a duration ({e}): write seconds (1.5) or 1s, 500ms")
        })?,
    };
    if duration.is_zero() || duration.as_millis() > u128::from(u32::MAX) {
        return Err(out_of_range());
    }
    Ok(duration)
}

/// The daemon's `rpc.default_timeout`, as its `Status` says.
async fn daemon_default(client: &mut Client) -> anyhow::Result<Duration> {
    let reply = client
        .status(StatusRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner();
    Ok(match reply.default_timeout_ms {
        0 => DAEMON_DEFAULT,
        ms => Duration::from_millis(ms),
    })
}

/// A deadline in the protocol's milliseconds, never 0 (which means "the daemon's default").
pub fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis())
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The params text: the argument itself, or stdin for `-`.
pub async fn read_params(arg: &str) -> anyhow::Result<String> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    let mut text = String::new();
    tokio::io::stdin()
        .read_to_string(&mut text)
        .await
        .context("cannot read params from stdin")?;
    Ok(text)
}

/// One call waits at most its deadline plus `--connect-timeout`; with `-N`
/// only the connection and the `Hello` are bounded by `--connect-timeout`.
pub async fn run(wait: &Patience, args: Args) -> anyhow::Result<()> {
    let subject = parse_subject(&args.subject)?;
    let body = Bytes::from(render::params_to_msgpack(
        &read_params(&args.params).await?,
    )?);
    let trace_id = args.trace_id.unwrap_or_default();
    let mut client = wait.connect().await?;
    let (timeout, source) = match args.timeout {
        Some(timeout) => (timeout, "--timeout"),
        None => {
            let asked = wait.whole("Status", daemon_default(&mut client)).await?;
            (asked, "rpc.default_timeout")
        }
    };
    if let Some(count) = args.count {
        drop(client);
        let plan = bench::Plan {
            subject,
            body,
            trace_id,
            timeout,
            count,
            concurrency: args.concurrency,
        };
        return bench::run(wait, plan).await;
    }
    let limit = timeout + wait.connect;
    let why = format!(
        "{source} {} + --connect-timeout {}",
        humantime::format_duration(timeout),
        humantime::format_duration(wait.connect)
    );
    let request = CallRequest {
        service: subject.service,
        method: subject.method,
        body,
        trace_id,
        // 0: the daemon's own default, the one it said.
        timeout_ms: args.timeout.map_or(0, millis),
        version: subject.version,
    };
    let call = async { client.call(request).await.map_err(rpc_error) };
    let reply = wait
        .within(limit, "the request", &why, call)
        .await?
        .into_inner();
    if args.show_headers {
        print_out(&format!(
            "trace_id: {}\nidentity: {}\nversion: {}\n",
            reply.trace_id,
            or_dash(&reply.identity),
            or_dash(&reply.version)
        ))?;
    }
    match reply.outcome {
        Some(Outcome::Body(body)) => {
            let json = render::msgpack_to_json(&body).context("cannot read the reply")?;
            let text = if args.json {
                json.to_string()
            } else {
                render::pretty(&json)
            };
            print_out(&format!("{text}\n"))
        }
        Some(Outcome::Error(error)) => bail!("{}", render::call_error(&error)),
        None => bail!("lymphd sent a reply with neither body nor error"),
    }
}

pub fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(service: &str, method: &str, version: &str) -> Subject {
        Subject {
            service: service.to_owned(),
            method: method.to_owned(),
            version: version.to_owned(),
        }
    }

    #[test]
    fn subjects_split_at_the_last_dot() {
        assert_eq!(parse_subject("A.b").ok(), Some(subject("A", "b", "")));
        assert_eq!(parse_subject("a.b.c").ok(), Some(subject("a.b", "c", "")));
        assert_eq!(
            parse_subject("Greeting.greet@1.2").ok(),
            Some(subject("Greeting", "greet", "1.2"))
        );
    }

    #[test]
    fn malformed_subjects_are_refused() {
        for bad in [
            "Greeting",
            ".greet",
            "Greeting.",
            "Greeting.greet@",
            "",
            "@1.2",
        ] {
            assert!(parse_subject(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeouts_are_seconds_or_durations() {
        assert_eq!(parse_duration("2.0"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.25").map(millis), Ok(250));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 1m 30s "), Ok(Duration::from_secs(90)));
        for bad in ["0", "0s", "-1", "nan", "inf", "x", "1e10", "50d", ""] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let said = parse_duration("3x").expect_err("not a duration");
        assert!(said.contains("1s, 500ms"), "{said}");
        assert_eq!(millis(Duration::from_micros(10)), 1);
    }
}
