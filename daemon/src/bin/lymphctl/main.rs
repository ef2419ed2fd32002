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

use std::path::PathBuf;
use std::process::ExitCode;
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
    /// Seconds to wait for lymphd. Bounds all of discover, inspect, status and
    /// emit; request waits at most its --timeout plus this; request -N,
    /// subscribe, tail and node wait this long only while connecting.
    #[arg(long, global = true, value_name = "SECONDS", default_value = "5",
          value_parser = request::parse_seconds)]
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

/// A gRPC failure as one readable line: its message, not its Debug form,
/// and the causes of a transport failure ("transport error" says little).
pub fn rpc_error(status: tonic::Status) -> anyhow::Error {
    let message = status.message();
    let mut text = if message.is_empty() {
        format!("lymphd answered {}", status.code().description())
    } else {
        message.to_owned()
    };
    let mut cause = std::error::Error::source(&status);
    while let Some(error) = cause {
        // Layers often repeat their inner error's words; say them once.
        let said = error.to_string();
        if !text.contains(&said) {
            text.push_str(&format!(": {said}"));
        }
        cause = error.source();
    }
    anyhow::anyhow!("{text}")
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
