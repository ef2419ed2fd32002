//! One supervised child: start it in its own process group, pipe its output,
//! restart it with backoff when it exits, stop it (SIGTERM to its group, then
//! SIGKILL) when told. Knows nothing of the other children.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::backoff::RestartDelay;
use super::file::Process;
use super::output::Output;

/// How long a dead child's pipes may take to drain (a grandchild may hold them).
const DRAIN: Duration = Duration::from_secs(1);

/// What to run and how.
pub struct Spec {
    pub process: Process,
    pub cwd: PathBuf,
    pub env: Vec<(&'static str, OsString)>,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// When to stop: `graceful` sends SIGTERM and waits `grace`; `now` kills at once.
#[derive(Clone)]
pub struct Stop {
    pub graceful: CancellationToken,
    pub now: CancellationToken,
}

/// How the child's last run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Exited,
    Killed,
}

/// The task body: runs the child until told to stop. Returns how it ended.
pub async fn run(spec: Spec, out: Output, stop: Stop) -> Ended {
    let name = spec.process.name.clone();
    let mut backoff = RestartDelay::default();
    loop {
        let started = Instant::now();
        let problem = match start(&spec, &out) {
            Ok((mut child, pipes)) => {
                let status = tokio::select! {
                    status = child.wait() => status,
                    () = stop.graceful.cancelled() => return terminate(child, &spec, &stop).await,
                };
                // Let the last lines out before saying it died.
                for pipe in pipes {
                    let _ = tokio::time::timeout(DRAIN, pipe).await;
                }
                match status {
                    Ok(status) => format!("exited with status {}", code(status)),
                    Err(e) => format!("cannot be waited for ({e})"),
                }
            }
            Err(e) => format!("cannot start ({e})"),
        };
        if stop.graceful.is_cancelled() {
            return Ended::Exited;
        }
        let delay = backoff.after_exit(started.elapsed());
        out.note(&format!(
            "{name} {problem}; restarting in {}s",
            delay.as_secs()
        ))
        .await;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.graceful.cancelled() => return Ended::Exited,
        }
    }
}

/// Spawns the child with its pipes; returns it and the pipe tasks.
fn start(spec: &Spec, out: &Output) -> std::io::Result<(Child, Vec<tokio::task::JoinHandle<()>>)> {
    let mut cmd = Command::new(&spec.process.program);
    cmd.args(&spec.process.args)
        .current_dir(&spec.cwd)
        .envs(spec.process.env.iter().map(|(k, v)| (k, v)))
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A safety net should the node itself fail: the child does not outlive it.
        .kill_on_drop(true);
    // Its own group: a terminal's Ctrl-C reaches only the node, which then
    // stops every child in order; and signals reach the child's own children.
    cmd.as_std_mut().process_group(0);
    let mut child = cmd.spawn()?;
    let name = &spec.process.name;
    let mut pipes = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        pipes.push(out.pipe(name, stdout));
    }
    if let Some(stderr) = child.stderr.take() {
        pipes.push(out.pipe(name, stderr));
    }
    Ok((child, pipes))
}

/// SIGTERM to the child's group, up to `grace` to exit, then SIGKILL.
async fn terminate(mut child: Child, spec: &Spec, stop: &Stop) -> Ended {
    let Some(group) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw)
    else {
        return Ended::Exited; // already reaped
    };
    if !stop.now.is_cancelled() {
        let _ = killpg(group, Signal::SIGTERM);
        tokio::select! {
            _ = child.wait() => return Ended::Exited,
            () = tokio::time::sleep(spec.grace) => {}
            () = stop.now.cancelled() => {}
        }
    }
    let _ = killpg(group, Signal::SIGKILL);
    // SIGKILL cannot be ignored; the bound only guards against a stuck kernel.
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    Ended::Killed
}

/// The exit code, or 128 + the signal for a killed child, as a shell shows it.
fn code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}
