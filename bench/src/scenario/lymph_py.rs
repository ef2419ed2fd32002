//! Real lymph 0.15 beside lymphd, where `scripts/lymph-peer` installed it:
//! the peer's `echo` and seed `greeting` services as Python instances (own
//! ZooKeeper chroot, the run's RabbitMQ vhost), loaded with lymph's own
//! `lymph request -N -C`, whose summary is parsed into rows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::Env;
use super::infra::{RABBITMQ, Vhost, zookeeper_hosts};
use crate::body::text_for;
use crate::measure::Figures;
use crate::report::{Outcome, Report, Row};
use integration_tests::proc::{Proc, try_run_bounded};

/// The loopback address the Python instances listen on.
const PEER_IP: &str = "127.0.0.4";
/// Python lymph starts slowly (imports, ZooKeeper, RabbitMQ).
const STARTUP: Duration = Duration::from_secs(60);

/// One Python service of the peer and the request that loads it.
struct Target {
    key: &'static str,
    label: &'static str,
    module: &'static str,
    class: &'static str,
    subject: &'static str,
    field: &'static str,
}

const TARGETS: [Target; 2] = [
    Target {
        key: "lymph.echo",
        label: "real lymph 0.15: Echo.echo (lymph request -N -C)",
        module: "echo",
        class: "Echo",
        subject: "Echo.echo",
        field: "text",
    },
    Target {
        key: "lymph.greet",
        label: "real lymph 0.15: Greeting.greet (RPC + emit)",
        module: "greeting",
        class: "Greeting",
        subject: "Greeting.greet",
        field: "name",
    },
];

/// `lymph request -N`'s summary: rate, p50 and p99 (µs), and timeouts.
#[derive(Debug, PartialEq)]
pub struct Summary {
    pub rate: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub timeouts: u64,
}

/// Reads `Requests per second:   1234.56 Hz`, ` 50.0 %   0.75 ms`, ` 99.0 %   2.1 ms`
/// and `Timeout rate: ... (#req=N)`.
pub fn parse_summary(text: &str) -> Option<Summary> {
    let number_after = |prefix: &str| {
        text.lines().find_map(|l| {
            let rest = l.trim_start().strip_prefix(prefix)?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
    };
    let timeouts = text
        .lines()
        .find(|l| l.starts_with("Timeout rate:"))
        .and_then(|l| l.rsplit("#req=").next())
        .and_then(|n| n.trim_end_matches(')').trim().parse().ok())
        .unwrap_or(0);
    Some(Summary {
        rate: number_after("Requests per second:")?,
        p50_us: number_after("50.0 %")? * 1e3,
        p99_us: number_after("99.0 %")? * 1e3,
        timeouts,
    })
}

/// The peer's venv: Python 2.7 (lymph's own) when built, else 3.7.
fn venv(peer: &Path) -> Option<(PathBuf, &'static str)> {
    [("py27", "Python 2.7"), ("py37", "Python 3.7")]
        .into_iter()
        .map(|(dir, name)| (peer.join(dir), name))
        .find(|(dir, _)| dir.join("bin/lymph").exists())
}

pub fn run(env: &Env, report: &mut Report, vhost: Result<&Vhost, &str>) {
    let peer = &env.lymph_peer_dir;
    let why = match (venv(peer), vhost) {
        (None, _) => Some(format!(
            "no lymph peer in {} (run scripts/lymph-peer)",
            peer.display()
        )),
        (_, Err(why)) => Some(why.to_owned()),
        (Some(_), Ok(_)) => super::infra::zookeeper_missing(),
    };
    let (Some((venv, python)), Ok(vhost), None) = (venv(peer), vhost, why.clone()) else {
        for t in &TARGETS {
            let why = why.clone().unwrap_or_default();
            report.not_measured(
                t.key,
                t.label,
                &env.plan.levels,
                &format!("not measured: {why}"),
            );
        }
        return;
    };
    let peer = Peer {
        env,
        venv,
        config_dir: env.dir.path().to_path_buf(),
    };
    for target in &TARGETS {
        let label = format!("{} on {python}", target.label);
        if let Err(e) = peer.measure(report, target, &label, vhost) {
            report.not_measured(
                target.key,
                &label,
                &env.plan.levels,
                &format!("not measured: {e:#}"),
            );
        }
    }
}

struct Peer<'a> {
    env: &'a Env,
    venv: PathBuf,
    config_dir: PathBuf,
}

impl Peer<'_> {
    fn measure(
        &self,
        report: &mut Report,
        target: &Target,
        label: &str,
        vhost: &Vhost,
    ) -> anyhow::Result<()> {
        let container = container_yaml(&zookeeper_hosts("lymph"), &vhost.name);
        let client_config = self
            .config_dir
            .join(format!("lymph-client-{}.yml", target.module));
        std::fs::write(&client_config, &container)?;
        let service_config = self.config_dir.join(format!("lymph-{}.yml", target.module));
        std::fs::write(
            &service_config,
            format!(
                "{container}\ninterfaces:\n    {}:\n        class: {}:{}\n",
                target.class, target.module, target.class
            ),
        )?;
        let mut instance = self.lymph(&client_config);
        instance
            .arg("instance")
            .arg(format!("--config={}", service_config.display()))
            .arg(format!("--ip={PEER_IP}"))
            .arg("--loglevel=WARNING");
        let mut proc = Proc::try_spawn(
            &format!("lymph-{}", target.module),
            instance,
            &self.config_dir,
        )?;
        let args = format!(r#"{{"{}": "{}"}}"#, target.field, text_for(target.field));
        self.wait_answering(&mut proc, &client_config, target.subject, &args)?;

        let n = self.env.lymph_requests.to_string();
        for &inflight in &self.env.plan.levels {
            let mut triples = Vec::new();
            let mut timeouts = 0;
            for _ in 0..self.env.plan.repeats.max(1) {
                let mut cmd = self.lymph(&client_config);
                cmd.args([
                    "request",
                    "-N",
                    &n,
                    "-C",
                    &inflight.to_string(),
                    "--timeout=5",
                ])
                .args([target.subject, &args]);
                let out = try_run_bounded(cmd, Duration::from_secs(300))?;
                let text = String::from_utf8_lossy(&out.stdout);
                let summary = parse_summary(&text).with_context(|| {
                    format!("lymph request printed no summary: {}", text.trim())
                })?;
                timeouts += summary.timeouts;
                triples.push((summary.rate, summary.p50_us, summary.p99_us));
            }
            let outcome = match Figures::from_triples(&triples) {
                Some(mut figures) => {
                    figures.errors = timeouts;
                    Outcome::Measured(figures)
                }
                None => bail!("no runs"),
            };
            eprintln!("bench: {label} @{inflight}: done");
            report.push(Row {
                key: target.key.to_owned(),
                label: label.to_owned(),
                inflight,
                floor: None,
                lymph: None,
                outcome,
            });
        }
        proc.stop(Duration::from_secs(10));
        Ok(())
    }

    /// `lymph` of the peer's venv, pinned like everything else, with the peer's environment.
    fn lymph(&self, client_config: &Path) -> Command {
        let bin = self.venv.join("bin");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let paths = std::iter::once(bin.clone()).chain(std::env::split_paths(&path));
        let mut cmd = self.env.placement.command(bin.join("lymph"));
        cmd.current_dir(&self.env.lymph_peer_dir)
            .env("PATH", std::env::join_paths(paths).unwrap_or(path))
            .env("PYTHONPATH", &self.env.lymph_peer_dir)
            .env("PYTHONIOENCODING", "utf-8")
            .env("LC_ALL", "C.UTF-8")
            .env("PYTHONWARNINGS", "ignore")
            .env("LYMPH_CONFIG", client_config)
            .env_remove("LYMPH_NODE_CONFIG")
            .env_remove("LYMPH_NODE");
        cmd
    }

    fn wait_answering(
        &self,
        proc: &mut Proc,
        client_config: &Path,
        subject: &str,
        args: &str,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            proc.check_running()?;
            let mut cmd = self.lymph(client_config);
            cmd.args(["request", "--timeout=2", subject, args]);
            if try_run_bounded(cmd, Duration::from_secs(30))?
                .status
                .success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{subject} did not answer within {STARTUP:?}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// lymph's `container:` section: ZooKeeper (with the peer's shim) and RabbitMQ.
fn container_yaml(zk_hosts: &str, vhost: &str) -> String {
    let (host, port) = RABBITMQ.split_once(':').unwrap_or((RABBITMQ, "5672"));
    format!(
        "container:\n    registry:\n        class: lymph.discovery.zookeeper:ZookeeperServiceRegistry\n\
         \x20       zkclient:\n            class: lymph_zk_compat:KazooClient\n\
         \x20           hosts: {zk_hosts}\n\
         \x20   events:\n        class: lymph.events.kombu:KombuEventSystem\n\
         \x20       transport: amqp\n        hostname: {host}\n        port: {port}\n\
         \x20       virtual_host: {vhost}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lymph_request_summary() {
        let text = "sending 2000 requests, concurrency 16\n..........\n\
                    Requests per second:    2980.12 Hz  (#req=2000)\n\
                    Mean time per request:     5.20 ms  (stddev=0.10)\n\
                    Timeout rate:              0.00 %   (#req=0)\n\
                    Total time:                0.67 s\n\nPercentiles:\n\
                    \x20 0.0 %       1.00 ms (min)\n\
                    \x2050.0 %       3.73 ms\n\
                    \x2090.0 %       6.00 ms\n\
                    \x2099.0 %      11.67 ms\n\
                    100.0 %      20.00 ms (max)\n";
        let summary = parse_summary(text).expect("parses");
        assert_eq!(summary.rate, 2980.12);
        assert!((summary.p50_us - 3730.0).abs() < 1e-6);
        assert!((summary.p99_us - 11670.0).abs() < 1e-6);
        assert_eq!(summary.timeouts, 0);
        assert_eq!(parse_summary("Traceback ..."), None);
    }
}
