//! `lymphctl node`, the development server: reads `.lymph.yml`, starts a
//! lymphd unless one listens, runs every instance's processes under
//! supervision and stops them all on SIGINT/SIGTERM, apps first, lymphd last.

mod backoff;
mod file;
mod lymphd;
mod output;
mod supervise;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::render::count;
use output::Output;
use supervise::{Ended, Spec, Stop};

/// Between SIGTERM and SIGKILL for an app process.
const APP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node file [default: .lymph.yml here, else in the nearest directory above].
    #[arg(long, value_name = "FILE")]
    node_file: Option<PathBuf>,
    /// Also print notes about what the node file asks that lymphd does itself.
    #[arg(short, long)]
    verbose: bool,
}

/// Runs the node until SIGINT or SIGTERM. `config` is lymphctl's `--config`.
/// `--connect-timeout` bounds each check for a listening lymphd.
pub async fn run(
    args: Args,
    wait: &crate::wait::Patience,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let socket = wait.socket.clone();
    let path = match args.node_file {
        Some(path) => path,
        None => file::find(&std::env::current_dir().context("no current directory")?)?,
    };
    let node = file::load(&path)?;
    // Registered before any child starts, so an early Ctrl-C still stops them.
    let mut signals = Signals::new()?;
    let ours = !lymphd::listening(&socket, wait.connect).await;
    let names = node.processes.iter().map(|p| p.name.as_str());
    let width = output::width(names.chain(ours.then_some("lymphd")));
    let (out, writer) = Output::spawn(width);
    if args.verbose && node.ignored_sockets > 0 {
        out.note("sockets: ignored, lymphd's http gateway binds its ports itself")
            .await;
    }
    // One `now` for everyone: a second signal kills apps and lymphd at once.
    let now = CancellationToken::new();
    let hurry = now.clone();
    let lymphd_stop = Stop {
        graceful: CancellationToken::new(),
        now: now.clone(),
    };
    let apps_stop = Stop {
        graceful: CancellationToken::new(),
        now: now.clone(),
    };

    let mut lymphd_task = None;
    let mut result = Ok(());
    let mut signalled = false;
    if ours {
        let spec = lymphd::spec(node.lymphd.clone(), &socket, config.as_deref(), &node.dir);
        let mut task = tokio::spawn(supervise::run(spec, out.clone(), lymphd_stop.clone()));
        let mut gave_up = false;
        tokio::select! {
            up = lymphd::wait_listening(&socket, wait.connect) => if up {
                out.note(&format!("started lymphd on {}", socket.display())).await;
            } else {
                result = Err(anyhow::anyhow!("lymphd did not listen on {} within {:?}", socket.display(), lymphd::STARTUP));
            },
            // Its supervisor only returns unasked when it gave up starting it.
            _ = &mut task => {
                gave_up = true;
                result = Err(anyhow::anyhow!("lymphd could not be started (see above)"));
            }
            () = signals.next() => signalled = true,
        }
        if !gave_up {
            lymphd_task = Some(task);
        }
    } else {
        out.note(&format!("using the lymphd already on {}", socket.display()))
            .await;
    }

    let mut apps = JoinSet::new();
    if result.is_ok() && !signalled {
        for process in node.processes {
            let spec = Spec {
                env: app_env(&socket, &process.name),
                process,
                cwd: node.dir.clone(),
                grace: APP_GRACE,
            };
            apps.spawn(supervise::run(spec, out.clone(), apps_stop.clone()));
        }
        // Until a signal, or until no process is left: each gave up starting.
        let mut gave_up = 0;
        loop {
            tokio::select! {
                () = signals.next() => break,
                Some(ended) = apps.join_next() => {
                    gave_up += usize::from(matches!(ended, Ok(Ended::GaveUp)));
                    if apps.is_empty() {
                        result = Err(anyhow::anyhow!(
                            "nothing left to run: {} could not be started",
                            count(gave_up as u64, "process", "processes")
                        ));
                        break;
                    }
                }
            }
        }
    }
    out.note("stopping").await;
    // A second signal while stopping: kill everything at once.
    let killer = tokio::spawn(async move {
        signals.next().await;
        now.cancel();
    });
    apps_stop.graceful.cancel();
    let mut killed = 0;
    // Bounded by the supervisors: each waits at most APP_GRACE, then SIGKILLs.
    while let Some(ended) = apps.join_next().await {
        killed += usize::from(matches!(ended, Ok(Ended::Killed)));
    }
    if killed > 0 {
        out.note(&format!(
            "{} {}",
            count(killed as u64, "process", "processes"),
            killed_how(&hurry, APP_GRACE)
        ))
        .await;
    }
    // lymphd last: the apps could still reach it while draining.
    if let Some(task) = lymphd_task {
        lymphd_stop.graceful.cancel();
        if let Ok(Ended::Killed) = task.await {
            let how = killed_how(&hurry, lymphd::GRACE);
            out.note(&format!("lymphd {how}")).await;
        }
        lymphd::remove_stale_socket(&socket).await;
    }
    killer.abort();
    out.note("stopped").await;
    drop(out);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    result
}

/// Why a process was killed: a second signal, or it outstayed its grace period.
fn killed_how(hurry: &CancellationToken, grace: Duration) -> String {
    if hurry.is_cancelled() {
        "killed at once (second signal)".to_owned()
    } else {
        format!("still running after {}s: killed", grace.as_secs())
    }
}

/// What an app process is told: where lymphd is and who it is.
fn app_env(socket: &Path, name: &str) -> Vec<(&'static str, OsString)> {
    vec![
        ("LYMPH_SOCKET", socket.as_os_str().to_owned()),
        ("LYMPH_NODE", OsString::from("1")),
        ("LYMPH_INSTANCE", OsString::from(name)),
    ]
}

/// SIGINT and SIGTERM as one stream.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let listen = |kind| signal(kind).context("cannot listen for signals");
        Ok(Signals {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
