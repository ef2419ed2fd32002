//! The run's scenarios, each starting what it needs and adding its rows to
//! the report: the floor, lymphd on one host, lymphd in a fleet, the bare
//! AMQP loop, real lymph 0.15. Shared here: the run's environment and the
//! row-per-depth helper.

pub mod calls;
pub mod fleet;
pub mod floor;
pub mod infra;
pub mod lapin_loop;
pub mod local;
pub mod lymph_py;
pub mod sink;

use std::future::Future;
use std::path::PathBuf;

use floor::{FloorDirs, FloorSet};

use crate::bins::Binaries;
use crate::load::OpResult;
use crate::measure::{Plan, measure};
use crate::procs::Placement;
use crate::report::{Outcome, Report, Row};

/// What every scenario needs: the side's binaries and daemon environment, a
/// temp dir for configs, sockets and logs, how processes are placed and how
/// long to measure.
pub struct Env {
    pub bins: Binaries,
    pub dir: tempfile::TempDir,
    pub placement: Placement,
    pub plan: Plan,
    /// The floor sets to measure, the first the one other rows are divided by.
    pub floors: Vec<FloorSet>,
    pub floor_dirs: FloorDirs,
    pub lymph_peer_dir: PathBuf,
    pub lymph_requests: u32,
}

/// Which rows a path is compared with (their keys), at the same depth.
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    pub floor: Option<&'static str>,
    pub lymph: Option<&'static str>,
}

/// Measures `op` at every depth of the plan and adds one row per depth.
pub async fn rows_for<F, Fut>(
    env: &Env,
    report: &mut Report,
    (key, label): (&str, &str),
    baselines: &Baselines,
    pids: &[u32],
    op: F,
) where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = OpResult>,
{
    for &inflight in &env.plan.levels {
        let figures = measure(&env.plan, inflight, pids, &op).await;
        eprintln!(
            "bench: {label} @{inflight}: {:.0}/s p50 {:.0} µs p99 {:.0} µs, daemons {} ms CPU/1k{}",
            figures.rate,
            figures.p50_us,
            figures.p99_us,
            figures
                .daemon_cpu_ms_per_1k
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1}")),
            figures
                .first_error
                .as_ref()
                .map(|e| format!(" ({} errors, first: {e})", figures.errors))
                .unwrap_or_default()
        );
        report.push(Row {
            key: key.to_owned(),
            label: label.to_owned(),
            inflight,
            floor: baselines.floor.map(str::to_owned),
            lymph: baselines.lymph.map(str::to_owned),
            outcome: Outcome::Measured(figures),
        });
    }
}

/// Every scenario `--only` accepts, in the order they run.
pub const SCENARIOS: [&str; 6] = ["floor", "local", "fleet", "fleet-rpc", "lapin", "lymph"];

/// Runs the chosen scenarios in order; a scenario that cannot run leaves
/// rows saying why, never ends the run.
pub async fn run_all(env: &Env, report: &mut Report, only: &[String]) {
    let chosen = |name: &str| only.iter().any(|o| o == name);
    let levels = &env.plan.levels;
    if chosen("floor") {
        floor::run(env, report);
    }
    if chosen("local")
        && let Err(e) = local::run(env, report).await
    {
        let why = format!("not measured: {e:#}");
        report.not_measured("rpc.local", "RPC, one daemon", levels, &why);
        report.not_measured("events.embedded", "events, embedded bus", levels, &why);
    }
    let needs_amqp = chosen("fleet") || chosen("lapin") || chosen("lymph");
    let vhost = if needs_amqp {
        infra::vhost().map_err(|e| format!("not measured: {e:#}"))
    } else {
        Err("not chosen".to_owned())
    };
    let vhost_ref = vhost.as_ref().map_err(String::as_str);
    // `fleet` includes `fleet-rpc`'s rows: never both.
    let fleet_rows = if chosen("fleet") {
        Some(fleet::FleetRows::All)
    } else {
        chosen("fleet-rpc").then_some(fleet::FleetRows::Rpc)
    };
    if let Some(rows) = fleet_rows {
        let outcome = match infra::zookeeper_missing() {
            Some(why) => Err(anyhow::anyhow!(why)),
            None => fleet::run(env, report, vhost_ref, rows).await,
        };
        if let Err(e) = outcome {
            let why = format!("not measured: {e:#}");
            report.not_measured("rpc.fleet", "RPC, two daemons over ZeroMQ", levels, &why);
            if rows == fleet::FleetRows::All {
                report.not_measured("greet.fleet", "Greeting.greet, two daemons", levels, &why);
                report.not_measured("events.amqp", "events, RabbitMQ", levels, &why);
            }
        }
    }
    if chosen("lapin") {
        let label = "bare lapin publish → consume, confirms on";
        match vhost_ref {
            Err(why) => report.not_measured("events.lapin", label, levels, why),
            Ok(vhost) => {
                if let Err(e) = lapin_loop::run(env, report, vhost).await {
                    report.not_measured(
                        "events.lapin",
                        label,
                        levels,
                        &format!("not measured: {e:#}"),
                    );
                }
            }
        }
    }
    if chosen("lymph") {
        lymph_py::run(env, report, vhost_ref);
    }
}
