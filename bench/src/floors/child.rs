//! The other processes of a floor: started from this executable with a
//! role, each says `READY <address>` on stdout once it serves, and exits
//! when its parent closes its stdin (or dies), so none outlives a run.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a child may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// How long a child may take to exit once its stdin is closed.
const EXIT_WITHIN: Duration = Duration::from_secs(2);

/// A running part of the floor; stopped when dropped.
pub struct Child {
    name: String,
    proc: std::process::Child,
}

impl Child {
    /// Starts this executable with `args`; returns it and the address it
    /// printed after `READY`.
    pub fn start(name: &str, args: &[String]) -> anyhow::Result<(Child, String)> {
        let exe = std::env::current_exe().context("this executable")?;
        let mut proc = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {name}"))?;
        let child_stdout = proc.stdout.take();
        let mut child = Child {
            name: name.to_owned(),
            proc,
        };
        let Some(stdout) = child_stdout else {
            bail!("{name}: no stdout");
        };
        // Read the first line on a thread, so a child that never says READY
        // costs `READY_WITHIN`, not the run.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        let line = match rx.recv_timeout(READY_WITHIN) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => bail!("{name}: reading its stdout: {e}"),
            Err(_) => {
                child.stop();
                bail!("{name} did not say READY within {READY_WITHIN:?}");
            }
        };
        match line.trim().strip_prefix("READY") {
            Some(addr) => Ok((child, addr.trim().to_owned())),
            None => bail!("{name} exited or printed {line:?} instead of READY"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc.id()
    }

    fn stop(&mut self) {
        // Closing stdin asks it to exit; a kill if it does not in time.
        drop(self.proc.stdin.take());
        let until = Instant::now() + EXIT_WITHIN;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.proc.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("{}: did not exit on EOF; killed", self.name);
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}

/// In a child: says it serves at `addr`, and exits as soon as its stdin
/// reaches end of file (the parent stopped it, or died).
pub fn ready(addr: &str) -> anyhow::Result<()> {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let mut out = std::io::stdout();
    writeln!(out, "READY {addr}")?;
    out.flush()?;
    Ok(())
}
