//! `lymphctl tail NAME...`: follows the logs of services on every host. Asks
//! the daemon every second which instances the services have, subscribes to
//! each distinct `log_endpoint` (lymph's three-frame PUB stream: level,
//! endpoint, line), drops the ones that left, and prints each line tagged with
//! its service and instance, filtered by level here as lymph's `tail` does.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use lymph_proto::v1::DiscoverRequest;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zeromq::{Socket, SocketRecv, SubSocket};

use crate::wait::Patience;
use crate::{Client, rpc_error};

/// How often the instances of the followed services are looked up again.
const REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The services to follow (`lymph` is the daemons themselves).
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Lowest level shown: debug, info, warning, error or critical.
    #[arg(short, long, default_value = "info", value_parser = parse_level)]
    level: u8,
    /// Stop after this long (e.g. 30s) instead of at Ctrl-C.
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<humantime::Duration>,
}

/// One line received: its tag and its level's rank.
struct Line {
    tag: String,
    rank: u8,
    text: String,
}

/// A subscription to one log endpoint.
struct Follow {
    tag: String,
    task: JoinHandle<()>,
}

/// Connecting and the first lookup are bounded by `--connect-timeout`;
/// following is not.
pub async fn run(wait: &Patience, args: Args) -> anyhow::Result<()> {
    let (tx, mut lines) = mpsc::channel::<Line>(1024);
    let mut follows: HashMap<String, Follow> = HashMap::new();
    let mut refresh = tokio::time::interval(REFRESH);
    // The first tick is now: it is this first lookup.
    refresh.tick().await;
    let first = async {
        let mut client = wait.connect().await?;
        let wanted = endpoints(&mut client, &args.names).await?;
        Ok((client, wanted))
    };
    let (mut client, wanted) = wait.whole("discover", first).await?;
    update(&mut follows, wanted, &tx);
    let stop_at = args.duration.map(|d| tokio::time::Instant::now() + *d);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let mut stdout = std::io::stdout();
    let outcome = loop {
        tokio::select! {
            _ = refresh.tick() => {
                let wanted = match endpoints(&mut client, &args.names).await {
                    Ok(wanted) => wanted,
                    Err(e) => break Err(e),
                };
                update(&mut follows, wanted, &tx);
            }
            Some(line) = lines.recv() => {
                if line.rank < args.level {
                    continue;
                }
                let written = writeln!(stdout, "{} {}", line.tag, line.text)
                    .and_then(|()| stdout.flush());
                match written {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break Ok(()),
                    Err(e) => break Err(anyhow::Error::new(e).context("cannot write to stdout")),
                }
            }
            _ = sleep_until(stop_at) => break Ok(()),
            stop = tokio::signal::ctrl_c() => break stop.context("cannot listen for Ctrl-C"),
            _ = term.recv() => break Ok(()),
        }
    };
    for (_, follow) in follows.drain() {
        follow.task.abort();
    }
    outcome
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// log_endpoint -> tag (`[Service][identity]`) of the followed services now.
async fn endpoints(
    client: &mut Client,
    names: &[String],
) -> anyhow::Result<HashMap<String, String>> {
    let mut found: HashMap<String, (BTreeSet<String>, String)> = HashMap::new();
    for name in names {
        let request = DiscoverRequest {
            service: name.clone(),
        };
        let reply = client
            .discover(request)
            .await
            .map_err(rpc_error)?
            .into_inner();
        for service in reply.services {
            for instance in service.instances {
                if instance.log_endpoint.is_empty() {
                    continue;
                }
                let entry = found
                    .entry(instance.log_endpoint)
                    .or_insert_with(|| (BTreeSet::new(), instance.identity.clone()));
                entry.0.insert(service.name.clone());
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|(endpoint, (services, identity))| (endpoint, tag(&services, &identity)))
        .collect())
}

/// `[Greeting][0123456789]`: the services and the first 10 of the identity, as lymph shows it.
fn tag(services: &BTreeSet<String>, identity: &str) -> String {
    let names = services.iter().cloned().collect::<Vec<_>>().join(",");
    let short: String = identity.chars().take(10).collect();
    format!("[{names}][{short}]")
}

/// Subscribes to new endpoints and drops the ones gone (or retagged).
fn update(
    follows: &mut HashMap<String, Follow>,
    wanted: HashMap<String, String>,
    tx: &mpsc::Sender<Line>,
) {
    follows.retain(|endpoint, follow| {
        let keep = wanted.get(endpoint) == Some(&follow.tag) && !follow.task.is_finished();
        if !keep {
            follow.task.abort();
        }
        keep
    });
    for (endpoint, tag) in wanted {
        if follows.contains_key(&endpoint) {
            continue;
        }
        let task = tokio::spawn(follow(endpoint.clone(), tag.clone(), tx.clone()));
        follows.insert(endpoint, Follow { tag, task });
    }
}

/// Receives from one endpoint until aborted or it breaks (then the next
/// refresh subscribes again).
async fn follow(endpoint: String, tag: String, tx: mpsc::Sender<Line>) {
    let mut socket = SubSocket::new();
    if socket.subscribe("").await.is_err() {
        return;
    }
    if let Err(e) = socket.connect(&endpoint).await {
        tracing_free_note(&format!("cannot follow {endpoint}: {e}"));
        return;
    }
    while let Ok(message) = socket.recv().await {
        let frames = message.into_vec();
        let (Some(level), Some(text)) = (frames.first(), frames.last()) else {
            continue;
        };
        let level = String::from_utf8_lossy(level);
        let line = Line {
            tag: tag.clone(),
            rank: rank(&level).unwrap_or(20),
            text: String::from_utf8_lossy(text).into_owned(),
        };
        if tx.send(line).await.is_err() {
            return;
        }
    }
}

/// A note on stderr (lymphctl has no log subscriber).
fn tracing_free_note(text: &str) {
    eprintln!("lymphctl tail: {text}");
}

/// Python's rank of a level name: DEBUG 10 ... CRITICAL 50.
fn rank(name: &str) -> Option<u8> {
    lymphd::logs::line::level_rank(name.trim())
}

fn parse_level(name: &str) -> Result<u8, String> {
    rank(name)
        .ok_or_else(|| format!("{name:?} is not a level (debug, info, warning, error, critical)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_rank_as_pythons_and_bad_ones_are_refused() {
        assert!(rank("WARNING") > rank("info"));
        assert_eq!(rank("warn"), rank("WARNING"));
        assert_eq!(parse_level("error"), Ok(40));
        assert!(parse_level("loud").is_err_and(|e| e.contains("critical")));
    }

    #[test]
    fn tags_name_every_service_of_the_endpoint_and_a_short_identity() {
        let services: BTreeSet<String> = ["Web".to_owned(), "Admin".to_owned()].into();
        assert_eq!(
            tag(&services, "0123456789abcdef"),
            "[Admin,Web][0123456789]"
        );
    }
}
