//! Child processes of the run: started under `taskset` on the run's CPUs,
//! output to files in the run's temp dir, killed when dropped; and what
//! `/proc` says about a process (resident memory, CPU time).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Where processes run: the CPU list given to `taskset -c`, or none (unpinned).
#[derive(Debug, Clone)]
pub struct Placement {
    pub cpus: Option<String>,
}

impl Placement {
    /// A command for `program`, pinned when the placement says so.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.cpus {
            Some(cpus) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpus).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// Whether every process shares one CPU.
    pub fn single_cpu(&self) -> bool {
        self.cpus
            .as_deref()
            .is_some_and(|c| !c.contains([',', '-']))
    }

    /// In words, for the table's header.
    pub fn describe(&self) -> String {
        match &self.cpus {
            Some(cpus) => format!("taskset -c {cpus}"),
            None => "unpinned".to_owned(),
        }
    }
}

/// A child process, SIGKILLed when dropped; its output goes to `<dir>/<name>.out/.err`.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub stderr: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> anyhow::Result<Proc> {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout).context("stdout file")?)
            .stderr(File::create(&stderr).context("stderr file")?);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child: Some(child),
            stderr,
        })
    }

    /// The process id (of `taskset`'s exec: the same process).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Fails, with the tail of its stderr, if the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} was stopped", self.name);
        };
        if let Some(status) = child.try_wait()? {
            bail!("{} exited ({status}): {}", self.name, tail(&self.stderr, 5));
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
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
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last `lines` lines of a file, joined by " | ".
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

/// Runs a command to completion within `within`; kills it if it overstays.
pub fn run_bounded(mut cmd: Command, within: Duration) -> anyhow::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let deadline = Instant::now() + within;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `kB` field of `/proc/<pid>/status` (VmRSS: resident now; VmHWM: peak), in MB.
pub fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// utime + stime of a process, in seconds (clock ticks of 1/100 s on Linux).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces: it ends at the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds of several processes together.
pub fn cpu_secs_of(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|p| cpu_secs(*p)).sum()
}

/// Whether something accepts TCP connections at `addr` within a second.
pub fn tcp_answers(addr: &str) -> bool {
    addr.parse()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).ok())
        .is_some()
}
