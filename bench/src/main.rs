//! `bench`: how fast lymphd carries calls and events, against the floor and
//! against real lymph 0.15, in one run on one placement of processes. Prints
//! a table and writes the same figures as JSON. Run it with `scripts/bench`,
//! which builds what it needs first; `bench --help` lists the knobs.

mod body;
mod checks;
mod daemon;
mod load;
mod measure;
mod procs;
mod report;
mod scenario;
mod stats;
mod table;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use measure::Plan;
use procs::Placement;
use report::Report;
use scenario::Env;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "lymphd's calls and events against the floor and lymph 0.15"
)]
struct Args {
    /// CPUs every process of the run is pinned to (`taskset -c`), or `none`
    #[arg(long, default_value = "0")]
    cpus: String,
    /// Seconds of each measurement
    #[arg(long, default_value_t = 1.0)]
    secs: f64,
    /// Seconds of warm-up before each figure's measurements
    #[arg(long, default_value_t = 0.3)]
    warmup: f64,
    /// Measurements per figure (the table shows their median)
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Requests in flight, comma-separated
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    inflight: Vec<usize>,
    /// Where floor-bench's release binaries are
    #[arg(long, default_value = "/tmp/floor-bench-target/release")]
    floor_dir: PathBuf,
    /// Where scripts/lymph-peer installed real lymph 0.15
    #[arg(long, default_value = "/tmp/lymph-peer")]
    lymph_peer: PathBuf,
    /// Requests per `lymph request -N` run
    #[arg(long, default_value_t = 2000)]
    lymph_requests: u32,
    /// Scenarios to run, comma-separated: floor, local, fleet, lapin, lymph
    #[arg(
        long,
        default_value = "floor,local,fleet,lapin,lymph",
        value_delimiter = ','
    )]
    only: Vec<String>,
    /// Where to write the figures as JSON
    #[arg(long, default_value = "target/bench/lymphd-bench.json")]
    json: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let placement = Placement {
        cpus: (args.cpus != "none").then(|| args.cpus.clone()),
    };
    // Before pinning: afterwards the process sees only its own CPUs.
    let cpus_online = std::thread::available_parallelism().map_or(0, |n| n.get());
    pin_self(&placement)?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let mut runtime = if placement.single_cpu() {
        // One CPU: the load generator runs on one thread, as the floor's app A does.
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = runtime.enable_all().build().context("tokio runtime")?;
    let report = runtime.block_on(run(&args, placement, cpus_online))?;
    print!("{}", table::render(&report));
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("write {}", args.json.display()))?;
    println!("\nJSON: {}", args.json.display());
    Ok(())
}

/// Pins this process (the load generator) like every child.
fn pin_self(placement: &Placement) -> anyhow::Result<()> {
    let Some(cpus) = &placement.cpus else {
        return Ok(());
    };
    let mut set = nix::sched::CpuSet::new();
    for part in cpus.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (usize, usize) = (first.trim().parse()?, last.trim().parse()?);
        for cpu in first..=last {
            set.set(cpu)?;
        }
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("cannot pin to CPUs {cpus}"))?;
    Ok(())
}

async fn run(args: &Args, placement: Placement, cpus_online: usize) -> anyhow::Result<Report> {
    let exe = std::env::current_exe()?;
    let bin_dir = exe
        .parent()
        .context("the binary's directory")?
        .to_path_buf();
    let env = Env {
        bin_dir,
        dir: tempfile::Builder::new().prefix("lymphd-bench").tempdir()?,
        plan: Plan {
            levels: args.inflight.clone(),
            secs: Duration::from_secs_f64(args.secs),
            warmup: Duration::from_secs_f64(args.warmup),
            repeats: args.repeats.max(1),
        },
        floor_dir: args.floor_dir.clone(),
        lymph_peer_dir: args.lymph_peer.clone(),
        lymph_requests: args.lymph_requests.max(80),
        placement,
    };
    anyhow::ensure!(
        env.plan
            .levels
            .iter()
            .all(|&l| (1..=scenario::sink::MAX_WORKERS).contains(&l)),
        "--inflight must be between 1 and {}",
        scenario::sink::MAX_WORKERS
    );
    let mut report = Report {
        placement: format!(
            "{}: load generator, every lymphd, every app, floor-bench and Python lymph",
            env.placement.describe()
        ),
        cpus_online,
        secs_per_figure: args.secs,
        repeats: env.plan.repeats,
        body_bytes: body::BODY_BYTES,
        rows: Vec::new(),
        facts: Vec::new(),
        checks: Vec::new(),
    };
    scenario::run_all(&env, &mut report, &args.only).await;
    report.checks = checks::check_all(&report);
    Ok(report)
}
