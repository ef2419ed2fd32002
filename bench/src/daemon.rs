//! One `lymphd` of the run: a generated config in the run's temp dir, the
//! side's release binary started on the run's CPUs with the side's
//! environment, its socket, and waits for it to listen and for services to
//! appear in its registry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lymph_proto::v1;

use crate::bins::Binaries;
use integration_tests::proc::Proc;

use crate::procs::{Placement, status_mb};

/// Generous: a fleet daemon first opens its ZooKeeper session.
const STARTUP: Duration = Duration::from_secs(30);

/// How a daemon is set up: its registry and its event bus.
#[derive(Debug, Clone)]
pub enum Setup {
    /// Embedded registry and event bus: one host. `log_publish: false`
    /// turns off the per-app log ports (`log.publish`), to show their cost.
    Embedded { log_publish: bool },
    /// ZooKeeper at `zk_hosts` (with a chroot), ZeroMQ on `ip`; events on
    /// RabbitMQ at `amqp_url` when given, else embedded.
    Fleet {
        zk_hosts: String,
        ip: String,
        amqp_url: Option<String>,
    },
}

impl Setup {
    fn yaml(&self) -> String {
        match self {
            Setup::Embedded { log_publish } => {
                format!("registry:\n  backend: embedded\nlog:\n  publish: {log_publish}\n")
            }
            Setup::Fleet {
                zk_hosts,
                ip,
                amqp_url,
            } => {
                let mut yaml = format!(
                    "registry:\n  backend: zookeeper\n  hosts: {zk_hosts}\n  session_timeout: 4s\n\
                     rpc:\n  ip: {ip}\n  port: 0\n"
                );
                if let Some(url) = amqp_url {
                    yaml.push_str(&format!("events:\n  backend: amqp\n  url: {url}\n"));
                }
                yaml
            }
        }
    }
}

pub struct Daemon {
    pub name: String,
    pub socket: PathBuf,
    pub proc: Proc,
}

impl Daemon {
    /// Starts the side's `lymphd` (`bins`) and waits until it listens.
    pub async fn start(
        name: &str,
        setup: &Setup,
        bins: &Binaries,
        dir: &Path,
        placement: &Placement,
    ) -> anyhow::Result<Daemon> {
        let config = dir.join(format!("{name}.yml"));
        std::fs::write(&config, setup.yaml()).context("write the daemon's config")?;
        let socket = dir.join(format!("{name}.sock"));
        let mut cmd = placement.command(bins.path("lymphd"));
        cmd.arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(&socket)
            .env("LYMPHD_LOG", "warn")
            // Each daemon its own /metrics port (--ab-env may set another).
            .env("LYMPHD_METRICS_LISTEN", "127.0.0.1:0")
            .envs(bins.daemon_env.iter().map(|(k, v)| (k, v)));
        let proc = Proc::try_spawn(name, cmd, dir)?;
        let mut daemon = Daemon {
            name: name.to_owned(),
            socket,
            proc,
        };
        daemon.wait_listening().await?;
        Ok(daemon)
    }

    async fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        while tokio::net::UnixStream::connect(&self.socket).await.is_err() {
            self.proc.check_running()?;
            if Instant::now() > deadline {
                bail!("{} did not listen within {STARTUP:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.proc.id()
    }

    /// Resident memory now, in MB.
    pub fn rss_mb(&self) -> Option<f64> {
        status_mb(self.pid(), "VmRSS:")
    }

    /// Peak resident memory so far, in MB.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        status_mb(self.pid(), "VmHWM:")
    }

    /// Waits until this daemon's registry shows `n` instances of `service`.
    pub async fn wait_for_instances(&mut self, service: &str, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        let mut api = lymph_proto::connect(&self.socket)
            .await
            .with_context(|| format!("cannot connect to {}", self.name))?;
        loop {
            let reply = api
                .discover(v1::DiscoverRequest {
                    service: service.to_owned(),
                })
                .await
                .context("discover")?
                .into_inner();
            let seen = reply
                .services
                .iter()
                .find(|s| s.name == service)
                .map_or(0, |s| s.instances.len());
            if seen == n {
                return Ok(());
            }
            self.proc.check_running()?;
            if Instant::now() > deadline {
                bail!(
                    "{} sees {seen} instances of {service}, not {n}, after {STARTUP:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
