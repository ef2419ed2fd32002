//! The fleet's engines for one run: whether ZooKeeper and RabbitMQ answer, a
//! ZooKeeper chroot and a RabbitMQ virtual host of the run's own (deleted
//! when dropped), so runs never see each other's or the tests' services.

use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use crate::procs::{run_bounded, tcp_answers};

pub const ZOOKEEPER: &str = "127.0.0.1:2181";
pub const RABBITMQ: &str = "127.0.0.1:5672";
/// `rabbitmqctl` starts an Erlang VM each time: slow, but bounded.
const CTL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why ZooKeeper cannot be used, if it cannot.
pub fn zookeeper_missing() -> Option<String> {
    (!tcp_answers(ZOOKEEPER))
        .then(|| format!("ZooKeeper does not answer on {ZOOKEEPER} (run scripts/services)"))
}

/// A fresh chroot for this run, e.g. `127.0.0.1:2181/lymphd-bench-1a2b...`.
pub fn zookeeper_hosts(tag: &str) -> String {
    format!("{ZOOKEEPER}/lymphd-bench-{tag}-{}", unique())
}

/// A run-unique hex suffix.
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", std::process::id(), nanos & 0xff_ffff_ffff)
}

/// A RabbitMQ virtual host of this run's own, guest allowed; deleted on drop.
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    pub fn create() -> anyhow::Result<Vhost> {
        if !tcp_answers(RABBITMQ) {
            bail!("RabbitMQ does not answer on {RABBITMQ} (run scripts/services)");
        }
        let name = format!("lymphd-bench-{}", unique());
        ctl(&["add_vhost", &name])?;
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

    /// `amqp://guest:guest@127.0.0.1:5672/<vhost>`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{RABBITMQ}/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = ctl(&["delete_vhost", &self.name]);
    }
}

fn ctl(args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = Command::new("rabbitmqctl");
    cmd.arg("-q").args(args);
    let out = run_bounded(cmd, CTL_TIMEOUT)?;
    if !out.status.success() {
        bail!(
            "rabbitmqctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
