//! Where the run's child processes run (under `taskset` on the run's CPUs)
//! and what `/proc` says about a process (resident memory, CPU time). The
//! child-process guard itself is the integration tests' harness
//! (`integration_tests::proc::Proc`), shared.

use std::process::Command;

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
