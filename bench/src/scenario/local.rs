//! lymphd on one host (embedded registry and bus): a `bench-app` serving
//! Echo and an in-process client on the same daemon; then events from an
//! emitting client to the in-process sink. Also the daemon's idle memory.

use std::time::Duration;

use anyhow::Context;

use super::calls::Caller;
use super::sink::Ticks;
use super::{Baselines, Env, rows_for};
use crate::daemon::{Daemon, Setup};
use crate::report::Report;
use integration_tests::proc::Proc;

/// Lets a fresh daemon and its apps settle before its idle memory is read.
const SETTLE: Duration = Duration::from_millis(500);

pub async fn run(env: &Env, report: &mut Report) -> anyhow::Result<()> {
    let mut daemon = Daemon::start(
        "lymphd-local",
        &Setup::Embedded { log_publish: true },
        &env.bins,
        env.dir.path(),
        &env.placement,
    )
    .await?;
    let mut app_cmd = env.placement.command(env.bins.path("bench-app"));
    app_cmd
        .arg("--socket")
        .arg(&daemon.socket)
        .env("RUST_LOG", "warn");
    let _app = Proc::try_spawn("bench-app-local", app_cmd, env.dir.path())?;
    daemon.wait_for_instances("Echo", 1).await?;
    let client = lymph::Client::connect(&daemon.socket)
        .await
        .context("attach the load client")?;
    let ticks = Ticks::start(&daemon.socket, &daemon.socket).await?;
    daemon.wait_for_instances("BenchSink", 1).await?;
    tokio::time::sleep(SETTLE).await;
    let idle = daemon.rss_mb();
    report.fact(
        "rss.idle.local",
        "lymphd resident memory, idle (embedded; 3 apps attached)",
        idle,
    );

    let pids = [daemon.pid()];
    let echo = Caller::new(&client, "Echo", "echo", "text");
    rows_for(
        env,
        report,
        ("rpc.local", "RPC, one daemon (Echo.echo)"),
        &Baselines {
            floor: Some("floor.e2e"),
            lymph: None,
        },
        &pids,
        |_| echo.call(),
    )
    .await;
    rows_for(
        env,
        report,
        ("events.embedded", "events, embedded bus (emit → handler)"),
        &Baselines {
            floor: Some("floor.e2e"),
            lymph: None,
        },
        &pids,
        |worker| ticks.emit_and_wait(worker),
    )
    .await;
    report.fact(
        "rss.peak.local",
        "lymphd resident memory, peak under load (embedded, up to 64 in flight)",
        daemon.peak_rss_mb(),
    );
    drop(ticks);
    daemon.proc.stop(Duration::from_secs(5));
    idle_without_log_ports(env, report).await
}

/// The same daemon and apps with `log.publish: false`: each log port is a
/// zeromq PUB socket, which preallocates (and touches) a 4 MB send queue.
async fn idle_without_log_ports(env: &Env, report: &mut Report) -> anyhow::Result<()> {
    let setup = Setup::Embedded { log_publish: false };
    let dir = env.dir.path();
    let mut daemon = Daemon::start("lymphd-nolog", &setup, &env.bins, dir, &env.placement).await?;
    let mut app_cmd = env.placement.command(env.bins.path("bench-app"));
    app_cmd
        .arg("--socket")
        .arg(&daemon.socket)
        .env("RUST_LOG", "warn");
    let _app = Proc::try_spawn("bench-app-nolog", app_cmd, dir)?;
    daemon.wait_for_instances("Echo", 1).await?;
    let _client = lymph::Client::connect(&daemon.socket).await?;
    let ticks = Ticks::start(&daemon.socket, &daemon.socket).await?;
    daemon.wait_for_instances("BenchSink", 1).await?;
    tokio::time::sleep(SETTLE).await;
    report.fact(
        "rss.idle.local.nolog",
        "lymphd resident memory, idle, same apps, log.publish: false (no per-app log ports)",
        daemon.rss_mb(),
    );
    drop(ticks);
    daemon.proc.stop(Duration::from_secs(5));
    Ok(())
}
