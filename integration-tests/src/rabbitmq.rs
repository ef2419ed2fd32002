//! A RabbitMQ virtual host of one test's or run's own on the shared broker
//! (`rabbitmqctl add_vhost`, guest given every right), deleted on drop, so
//! nobody sees anybody else's exchanges and queues.

use std::process::Command;
use std::time::Duration;

use crate::proc::{run_quietly, text, try_run_bounded};
use crate::services::RABBITMQ;

/// `rabbitmqctl` starts an Erlang VM each time: slow, but bounded.
const CTL_TIMEOUT: Duration = Duration::from_secs(60);
/// Deleting on drop: bounded tighter, never waited for past it.
const DELETE_TIMEOUT: Duration = Duration::from_secs(30);

/// A virtual host on the broker at [`RABBITMQ`]; deleted when dropped.
#[derive(Debug)]
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    /// Creates `name` (see `names::unique`) and lets guest use it, or says
    /// which `rabbitmqctl` call failed and how.
    pub fn create(name: String) -> Result<Vhost, String> {
        ctl(&["add_vhost", &name])?;
        // From here on a failure deletes it again.
        let vhost = Vhost { name };
        ctl(&[
            "set_permissions",
            "-p",
            &vhost.name,
            "guest",
            ".*",
            ".*",
            ".*",
        ])?;
        Ok(vhost)
    }

    /// `amqp://guest:guest@127.0.0.1:5672/<name>`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{RABBITMQ}/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        // Never panics (it may run while a test panics): bounded, result ignored.
        let mut cmd = Command::new("rabbitmqctl");
        cmd.args(["-q", "delete_vhost", &self.name]);
        run_quietly(cmd, DELETE_TIMEOUT);
    }
}

/// Runs `rabbitmqctl -q args...`; its output when it fails.
fn ctl(args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("rabbitmqctl");
    cmd.arg("-q").args(args);
    let out = try_run_bounded(cmd, CTL_TIMEOUT).map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`rabbitmqctl {}` failed ({}): {}{}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr).trim_end()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::unique;
    use crate::proc::run_bounded;

    fn vhosts() -> String {
        let mut cmd = Command::new("rabbitmqctl");
        cmd.args(["-q", "list_vhosts"]);
        let out = run_bounded(cmd, CTL_TIMEOUT);
        assert!(
            out.status.success(),
            "rabbitmqctl list_vhosts (run scripts/services): {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    #[test]
    fn a_vhost_lives_until_dropped() {
        let vhost = Vhost::create(unique("lymphd-lib-it-")).expect("create a vhost");
        assert!(vhosts().lines().any(|l| l.trim() == vhost.name));
        assert_eq!(
            vhost.url(),
            format!("amqp://guest:guest@127.0.0.1:5672/{}", vhost.name)
        );
        let name = vhost.name.clone();
        drop(vhost);
        assert!(!vhosts().lines().any(|l| l.trim() == name));
    }
}
