//! One supervised child: start it in its own process group, pipe its output,
//! restart it with backoff when it exits, stop it (SIGTERM to its group, then
//! SIGKILL) when told. A program that cannot be started at all (missing, not
//! executable) is tried [`START_TRIES`] times, then given up, saying so.
//! Knows nothing of the other children.

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

/// Starts that fail in a row (the program cannot be executed) before giving up.
pub const START_TRIES: u32 = 3;

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
    /// It could not be started [`START_TRIES`] times in a row.
    GaveUp,
}

/// The task body: runs the child until told to stop. Returns how it ended.
pub async fn run(spec: Spec, out: Output, stop: Stop) -> Ended {
    let name = spec.process.name.clone();
    let mut backoff = RestartDelay::default();
    let mut failed_starts = 0;
    loop {
        let started = Instant::now();
        let problem = match start(&spec, &out) {
            Ok((mut child, pipes)) => {
                failed_starts = 0;
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
            Err(e) => {
                failed_starts += 1;
                format!("cannot start: {}", cannot_start(&spec.process, &e))
            }
        };
        if stop.graceful.is_cancelled() {
            return Ended::Exited;
        }
        if failed_starts >= START_TRIES {
            out.note(&format!(
                "{name} {problem}; gave up after {START_TRIES} tries"
            ))
            .await;
            return Ended::GaveUp;
        }
        let delay = backoff.after_exit(started.elapsed());
        let again = if failed_starts > 0 {
            "retrying"
        } else {
            "restarting"
        };
        out.note(&format!(
            "{name} {problem}; {again} in {}s",
            delay.as_secs()
        ))
        .await;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.graceful.cancelled() => return Ended::Exited,
        }
    }
}

/// Why `process` could not be executed, naming the program's path and
/// where its command is written.
fn cannot_start(process: &Process, error: &std::io::Error) -> String {
    let program = process.program.display();
    let why = match error.kind() {
        std::io::ErrorKind::NotFound if process.program.components().count() == 1 => {
            format!("{program} is not on PATH")
        }
        std::io::ErrorKind::NotFound if !process.program.exists() => {
            format!("{program} does not exist")
        }
        std::io::ErrorKind::PermissionDenied => format!("{program} is not executable ({error})"),
        _ => format!("{program}: {error}"),
    };
    if process.command_key.is_empty() {
        why
    } else {
        format!("{why} (see {})", process.command_key)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn process(program: &str) -> Process {
        Process {
            name: "greeting.1".to_owned(),
            program: PathBuf::from(program),
            args: Vec::new(),
            env: Vec::new(),
            command_key: "instances.greeting.command".to_owned(),
        }
    }

    fn spawn_error(process: &Process) -> std::io::Error {
        std::process::Command::new(&process.program)
            .spawn()
            .expect_err("cannot be started")
    }

    #[test]
    fn a_missing_program_is_named_with_its_key() {
        let missing = process("/nonexistent/dir/greting");
        assert_eq!(
            cannot_start(&missing, &spawn_error(&missing)),
            "/nonexistent/dir/greting does not exist (see instances.greeting.command)"
        );
        let bare = process("lymph-no-such-program-19");
        assert_eq!(
            cannot_start(&bare, &spawn_error(&bare)),
            "lymph-no-such-program-19 is not on PATH (see instances.greeting.command)"
        );
    }
}
