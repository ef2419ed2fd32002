//! Child processes of a test or a benchmark run: `Proc` starts one with its
//! output in files, kills it (SIGKILL) when dropped, waits for it with a
//! deadline; `run_bounded` runs a command to completion with a deadline.
//! The panicking forms are for tests, the `try_` forms for the benchmark.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A child process killed (SIGKILL) when dropped; its output goes to
/// `<dir>/<name>.out` and `<dir>/<name>.err`.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Proc {
    /// Starts `cmd`; panics naming `name` when it cannot.
    pub fn spawn(name: &str, cmd: Command, dir: &Path) -> Proc {
        Self::try_spawn(name, cmd, dir).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `cmd`, or says why it cannot (naming `name`).
    pub fn try_spawn(name: &str, mut cmd: Command, dir: &Path) -> io::Result<Proc> {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let file = |path: &Path| {
            File::create(path).map_err(|e| annotate(e, &format!("{}", path.display())))
        };
        cmd.stdin(Stdio::null())
            .stdout(file(&stdout)?)
            .stderr(file(&stderr)?);
        let child = cmd
            .spawn()
            .map_err(|e| annotate(e, &format!("cannot start {name}")))?;
        Ok(Proc {
            name: name.to_owned(),
            child: Some(child),
            stdout,
            stderr,
        })
    }

    /// Its process id; panics once it was waited for or stopped.
    pub fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("running");
        Pid::from_raw(i32::try_from(child.id()).expect("pid fits"))
    }

    /// Its process id, 0 once it was waited for or stopped.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("send signal");
    }

    /// Waits for the process to exit, up to `within`; panics (with its
    /// stderr) if it does not.
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}; stderr:\n{}",
                self.name,
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails, with the tail of its stderr, if the process has exited.
    pub fn check_running(&mut self) -> io::Result<()> {
        let Some(child) = self.child.as_mut() else {
            return Err(io::Error::other(format!("{} was stopped", self.name)));
        };
        match child.try_wait()? {
            Some(status) => Err(io::Error::other(format!(
                "{} exited ({status}): {}",
                self.name,
                tail(&self.stderr, 5)
            ))),
            None => Ok(()),
        }
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Its output lines: stdout, then stderr (the Rust examples log, the
    /// test app and Python peers print).
    pub fn output_lines(&self) -> Vec<String> {
        let (out, err) = (self.stdout_text(), self.stderr_text());
        out.lines().chain(err.lines()).map(str::to_owned).collect()
    }

    /// How many of its output lines contain `needle`.
    pub fn lines_with(&self, needle: &str) -> usize {
        self.output_lines()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The last `lines` lines of a file, joined by " | ".
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

/// Runs a command with a deadline, its output captured; kills it if it
/// overstays. Panics when it cannot start or overstays.
pub fn run_bounded(cmd: Command, within: Duration) -> Output {
    try_run_bounded(cmd, within).unwrap_or_else(|e| panic!("{e}"))
}

/// `run_bounded`, saying why instead of panicking. The output is read while
/// the command runs, so a chatty one cannot block on a full pipe.
pub fn try_run_bounded(mut cmd: Command, within: Duration) -> io::Result<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| annotate(e, &format!("cannot run {cmd:?}")))?;
    let pid = i32::try_from(child.id()).map(Pid::from_raw);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(output) => output,
        Err(_) => {
            if let Ok(pid) = pid {
                let _ = kill(pid, Signal::SIGKILL);
            }
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{cmd:?} did not finish within {within:?}"),
            ))
        }
    }
}

/// Runs a cleanup command for at most `within`, output discarded; never
/// panics (for `Drop`).
pub fn run_quietly(mut cmd: Command, within: Duration) {
    let Ok(mut child) = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return;
    };
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Bytes (a command's output) as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[test]
    fn a_proc_writes_its_output_to_files_and_is_killed_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut done = Proc::spawn("hello", sh("echo out; echo err >&2"), dir.path());
        assert!(done.wait(Duration::from_secs(10)).success());
        assert_eq!(done.output_lines(), ["out", "err"]);
        assert_eq!(done.lines_with("err"), 1);
        assert_eq!(done.id(), 0);
        assert!(done.check_running().is_err());

        let mut sleeper = Proc::spawn("sleeper", sh("exec sleep 60"), dir.path());
        sleeper.check_running().expect("running");
        let pid = sleeper.pid();
        drop(sleeper);
        // Reaped by the drop: no such process any more.
        assert!(kill(pid, None).is_err());
    }

    #[test]
    fn stop_terminates_and_a_dead_proc_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sleeper = Proc::spawn("sleeper", sh("exec sleep 60"), dir.path());
        let started = Instant::now();
        sleeper.stop(Duration::from_secs(10));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGTERM ended it"
        );
        let mut failing = Proc::spawn("failing", sh("echo gone for good >&2; exit 3"), dir.path());
        wait_exit(&mut failing);
        let why = failing.check_running().expect_err("exited").to_string();
        assert!(
            why.contains("gone for good") && why.contains("exit status: 3"),
            "{why}"
        );
        let missing = Proc::try_spawn("nothing", Command::new("/nonexistent/x"), dir.path());
        assert!(missing.is_err_and(|e| e.to_string().contains("cannot start nothing")));
    }

    fn wait_exit(proc: &mut Proc) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc.check_running().is_ok() {
            assert!(Instant::now() < deadline, "{} still runs", proc.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn run_bounded_captures_output_and_kills_what_overstays() {
        let out = run_bounded(sh("echo hi; echo ho >&2; exit 2"), Duration::from_secs(10));
        assert_eq!(
            (text(&out.stdout), text(&out.stderr)),
            ("hi\n".into(), "ho\n".into())
        );
        assert_eq!(out.status.code(), Some(2));
        // More than a pipe holds: read while it runs.
        let big = run_bounded(sh("head -c 1000000 /dev/zero"), Duration::from_secs(10));
        assert_eq!(big.stdout.len(), 1_000_000);
        let started = Instant::now();
        let late = try_run_bounded(sh("exec sleep 60"), Duration::from_millis(300));
        assert!(late.is_err_and(|e| e.kind() == io::ErrorKind::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
