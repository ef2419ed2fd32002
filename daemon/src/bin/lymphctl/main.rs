//! `lymphctl`, lymphd's admin CLI: arguments, dispatch to one module per
//! command group, and exit codes (0 ok, 1 failure, 2 usage). A pure client of
//! the local API: it knows `lymph_proto` and nothing of the daemon's internals.

mod bench;
mod commands;
mod config;
mod discover;
mod events;
mod inspect;
mod node;
mod render;
mod request;
mod status;
#[cfg(feature = "zeromq")]
mod tail;
mod wait;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lymph_proto::v1::lymph_client::LymphClient;
use tonic::transport::Channel;

/// The client every command talks through.
pub type Client = LymphClient<Channel>;

/// Talk to the lymphd on this host.
#[derive(Debug, Parser)]
#[command(name = "lymphctl", version, disable_help_subcommand = true)]
struct Cli {
    /// lymphd's Unix socket [default: $LYMPH_SOCKET, the config's `socket`,
    /// $XDG_RUNTIME_DIR/lymph/lymphd.sock, else /tmp/lymph-<uid>/lymphd.sock].
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// lymphd's YAML config file; only its `socket:` is read.
    #[arg(short, long, global = true, env = "LYMPHD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// How long to wait for lymphd: 5, 1.5, 500ms, 2s. Bounds all of discover,
    /// inspect, status and emit; request waits at most its timeout plus this
    /// for the reply; request -N, subscribe, tail and node wait this long only
    /// while connecting.
    #[arg(long, global = true, value_name = "DURATION", default_value = "5",
          value_parser = request::parse_duration)]
    connect_timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(about = "Show available services.")]
    Discover(discover::Args),
    #[command(about = "Manually emits an event.")]
    Emit(events::EmitArgs),
    #[command(about = "Display help information about lymphctl.")]
    Help {
        /// The command to describe.
        command: Option<String>,
    },
    #[command(about = "Describes the RPC interface of a service.")]
    Inspect(inspect::Args),
    #[command(about = "List available commands.")]
    List,
    #[command(
        about = "Run the services of .lymph.yml with a lymphd, restarting them when they die."
    )]
    Node(node::Args),
    #[command(about = "Send a request message to some service and output the reply.")]
    Request(request::Args),
    #[command(about = "Show the state of the local lymphd.")]
    Status(status::Args),
    #[command(about = "Prints events to stdout.")]
    Subscribe(events::SubscribeArgs),
    #[cfg(feature = "zeromq")]
    #[command(about = "Streams the logs of services on every host.")]
    Tail(tail::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::List => return commands::list(),
        Command::Help { command } => return commands::help(command.as_deref()),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the runtime")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` puts the cause chain on one line; a cause with line breaks must not undo that.
            let text = format!("{e:#}");
            eprintln!(
                "lymphctl: {}",
                text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config_socket = match &cli.config {
        Some(file) => config::socket(file)?,
        None => None,
    };
    let (socket, _source) = lymph_proto::resolve_socket(cli.socket, config_socket);
    let _ = SOCKET.set(socket.clone());
    let patience = wait::Patience {
        socket,
        connect: cli.connect_timeout,
    };
    let wait = &patience;
    match cli.command {
        Command::Discover(args) => wait.command("discover", |c| discover::run(c, args)).await,
        Command::Emit(args) => wait.command("emit", |c| events::emit(c, args)).await,
        Command::Inspect(args) => wait.command("inspect", |c| inspect::run(c, args)).await,
        Command::Status(args) => wait.command("status", |c| status::run(c, args)).await,
        Command::Request(args) => request::run(wait, args).await,
        Command::Subscribe(args) => events::subscribe(wait, args).await,
        #[cfg(feature = "zeromq")]
        Command::Tail(args) => tail::run(wait, args).await,
        // The node starts a lymphd when none listens: it must not connect first.
        Command::Node(args) => node::run(args, wait, cli.config).await,
        Command::List | Command::Help { .. } => Ok(()),
    }
}

/// The socket this run talks to, for errors that have no other way to name it.
static SOCKET: OnceLock<PathBuf> = OnceLock::new();

/// A gRPC failure as one readable line: its message, not its Debug form.
/// A status lymphd did not send (it carries a local cause: the connection
/// broke) is `unavailable`, naming the socket and the cause.
pub fn rpc_error(status: tonic::Status) -> anyhow::Error {
    let socket = SOCKET
        .get()
        .map_or(Path::new("its socket"), PathBuf::as_path);
    match went_away(&status, socket) {
        Some(text) => anyhow::anyhow!("{text}"),
        None => anyhow::anyhow!("{}", status_text(&status)),
    }
}

/// `unavailable: lymphd on SOCKET went away mid-call (CAUSE)` when the
/// status was made here from a transport failure rather than sent by lymphd.
fn went_away(status: &tonic::Status, socket: &Path) -> Option<String> {
    std::error::Error::source(status)?;
    Some(format!(
        "unavailable: lymphd on {} went away mid-call ({})",
        socket.display(),
        status_text(status)
    ))
}

/// A status's message (or its code's words) and the causes of a transport
/// failure ("transport error" says little), each said once.
fn status_text(status: &tonic::Status) -> String {
    let message = status.message();
    let mut text = if message.is_empty() {
        format!("lymphd answered {}", status.code().description())
    } else {
        message.to_owned()
    };
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        // Layers often repeat their inner error's words; say them once.
        let said = error.to_string();
        if !text.contains(&said) {
            text.push_str(&format!(": {said}"));
        }
        cause = error.source();
    }
    text
}

/// Writes command output to stdout. A closed pipe (`lymphctl list | head -1`)
/// is not an error: the reader has all it wanted.
pub fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_is_unavailable_and_names_the_socket() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let broken = tonic::Status::from_error(Box::new(io));
        let text = went_away(&broken, Path::new("/run/l.sock")).expect("went away");
        assert!(
            text.starts_with("unavailable: lymphd on /run/l.sock went away mid-call ("),
            "{text}"
        );
        assert!(text.contains("broken pipe"), "{text}");
    }

    #[test]
    fn what_lymphd_answered_is_said_as_it_is() {
        let answered = tonic::Status::not_found("no service Nope");
        assert_eq!(went_away(&answered, Path::new("/run/l.sock")), None);
        assert_eq!(status_text(&answered), "no service Nope");
        let bare = tonic::Status::new(tonic::Code::Internal, "");
        assert_eq!(status_text(&bare), "lymphd answered Internal error");
    }
}
