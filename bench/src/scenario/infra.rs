//! The fleet's engines for one run: whether ZooKeeper and RabbitMQ answer, a
//! ZooKeeper chroot and a RabbitMQ virtual host of the run's own (deleted
//! when dropped), so runs never see each other's or the tests' services.
//! The virtual host and the names are the integration tests' harness
//! (`integration_tests::rabbitmq`, `names`).

use anyhow::bail;
use integration_tests::names::unique;
use integration_tests::services::{ZOOKEEPER, tcp_answers};

pub use integration_tests::rabbitmq::Vhost;
pub use integration_tests::services::RABBITMQ;

/// Why ZooKeeper cannot be used, if it cannot.
pub fn zookeeper_missing() -> Option<String> {
    (!tcp_answers(ZOOKEEPER))
        .then(|| format!("ZooKeeper does not answer on {ZOOKEEPER} (run scripts/services)"))
}

/// A fresh chroot for this run, e.g. `127.0.0.1:2181/lymphd-bench-fleet-1a2b...`.
pub fn zookeeper_hosts(tag: &str) -> String {
    format!("{ZOOKEEPER}/{}", unique(&format!("lymphd-bench-{tag}-")))
}

/// A RabbitMQ virtual host of this run's own, guest allowed; deleted on drop.
pub fn vhost() -> anyhow::Result<Vhost> {
    if !tcp_answers(RABBITMQ) {
        bail!("RabbitMQ does not answer on {RABBITMQ} (run scripts/services)");
    }
    Vhost::create(unique("lymphd-bench-")).map_err(anyhow::Error::msg)
}
