//! lymphd in a fleet: daemon A on 127.0.0.2 and B on 127.0.0.3, registry in
//! ZooKeeper, calls over ZeroMQ, events through RabbitMQ when it is there.
//! The load client and the emitter attach to A; `bench-app` (Echo), the
//! seed's `greeting` and the event sink attach to B. `FleetRows::Rpc` keeps
//! only the echo rows (what an A/B verdict needs).

use std::time::Duration;

use anyhow::Context;

use super::calls::Caller;
use super::infra::{Vhost, zookeeper_hosts};
use super::sink::Ticks;
use super::{Baselines, Env, rows_for};
use crate::daemon::{Daemon, Setup};
use crate::report::Report;
use integration_tests::proc::Proc;

/// Lets the fleet settle (heartbeats, registrations) before idle memory is read.
const SETTLE: Duration = Duration::from_millis(500);

/// Which of the fleet's rows to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetRows {
    /// Echo, Greeting.greet and RabbitMQ events (scenario `fleet`).
    All,
    /// Echo only (scenario `fleet-rpc`): no `greeting`, no events.
    Rpc,
}

/// Runs the fleet rows; `vhost` carries events, else the events row says why not.
pub async fn run(
    env: &Env,
    report: &mut Report,
    vhost: Result<&Vhost, &str>,
    rows: FleetRows,
) -> anyhow::Result<()> {
    let zk_hosts = zookeeper_hosts("fleet");
    let amqp_url = vhost.ok().map(Vhost::url);
    let setup = |ip: &str| Setup::Fleet {
        zk_hosts: zk_hosts.clone(),
        ip: ip.to_owned(),
        amqp_url: amqp_url.clone(),
    };
    let dir = env.dir.path();
    let mut a = Daemon::start(
        "lymphd-127.0.0.2",
        &setup("127.0.0.2"),
        &env.bins,
        dir,
        &env.placement,
    )
    .await?;
    let mut b = Daemon::start(
        "lymphd-127.0.0.3",
        &setup("127.0.0.3"),
        &env.bins,
        dir,
        &env.placement,
    )
    .await?;
    let mut app_cmd = env.placement.command(env.bins.path("bench-app"));
    app_cmd
        .arg("--socket")
        .arg(&b.socket)
        .env("RUST_LOG", "warn");
    let _echo = Proc::try_spawn("bench-app-b", app_cmd, dir)?;
    a.wait_for_instances("Echo", 1).await?;
    let _greeting = if rows == FleetRows::All {
        let mut greeting_cmd = env.placement.command(env.bins.path("greeting"));
        greeting_cmd
            .arg("--socket")
            .arg(&b.socket)
            .env("RUST_LOG", "warn");
        let greeting = Proc::try_spawn("greeting-b", greeting_cmd, dir)?;
        a.wait_for_instances("Greeting", 1).await?;
        Some(greeting)
    } else {
        None
    };
    let client = lymph::Client::connect(&a.socket)
        .await
        .context("attach the load client to A")?;
    tokio::time::sleep(SETTLE).await;
    if amqp_url.is_some() {
        report.fact(
            "rss.idle.fleet",
            "lymphd resident memory, idle (fleet daemon on 127.0.0.2: ZooKeeper, ZeroMQ, RabbitMQ; 1 app attached)",
            a.rss_mb(),
        );
    } else {
        report.fact(
            "rss.idle.fleet.embedded-events",
            "lymphd resident memory, idle (fleet daemon on 127.0.0.2: ZooKeeper, ZeroMQ, embedded events; 1 app attached)",
            a.rss_mb(),
        );
    }

    let pids = [a.pid(), b.pid()];
    let floor = Some("floor.e2e");
    let echo = Caller::new(&client, "Echo", "echo", "text");
    rows_for(
        env,
        report,
        ("rpc.fleet", "RPC, two daemons over ZeroMQ (Echo.echo)"),
        &Baselines {
            floor,
            lymph: Some("lymph.echo"),
        },
        &pids,
        |_| echo.call(),
    )
    .await;
    if rows == FleetRows::All {
        greet_and_events(env, report, &client, vhost, (&mut a, &mut b)).await?;
    }
    report.fact(
        "rss.peak.fleet",
        "lymphd resident memory, peak under load (fleet daemon on 127.0.0.2)",
        a.peak_rss_mb(),
    );
    a.proc.stop(Duration::from_secs(5));
    b.proc.stop(Duration::from_secs(5));
    Ok(())
}

/// Greeting.greet from A to B, then events from A to B when RabbitMQ is there.
async fn greet_and_events(
    env: &Env,
    report: &mut Report,
    client: &lymph::Client,
    vhost: Result<&Vhost, &str>,
    (a, b): (&mut Daemon, &mut Daemon),
) -> anyhow::Result<()> {
    let pids = [a.pid(), b.pid()];
    let floor = Some("floor.e2e");
    let greet = Caller::new(client, "Greeting", "greet", "name");
    rows_for(
        env,
        report,
        ("greet.fleet", "Greeting.greet, two daemons (RPC + emit)"),
        &Baselines {
            floor,
            lymph: Some("lymph.greet"),
        },
        &pids,
        |_| greet.call(),
    )
    .await;

    let label = "events, RabbitMQ, A → B (emit → handler)";
    match vhost {
        Err(why) => report.not_measured("events.amqp", label, &env.plan.levels, why),
        Ok(_) => {
            let ticks = Ticks::start(&b.socket, &a.socket).await?;
            b.wait_for_instances("BenchSink", 1).await?;
            tokio::time::sleep(SETTLE).await;
            rows_for(
                env,
                report,
                ("events.amqp", label),
                &Baselines {
                    floor: Some("events.lapin"),
                    lymph: None,
                },
                &pids,
                |worker| ticks.emit_and_wait(worker),
            )
            .await;
        }
    }
    Ok(())
}
