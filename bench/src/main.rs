//! `bench`: how fast lymphd carries calls and events, against the floor and
//! against real lymph 0.15, in one run on one placement of processes; or, in
//! A/B mode, two builds or two daemon settings alternated in one sitting.
//! Prints a table and writes the same figures as JSON. Run it with
//! `scripts/bench`, which builds what it needs first; `bench --help` lists
//! the knobs.

mod ab;
mod bins;
mod body;
mod checks;
mod cli;
mod daemon;
mod load;
mod measure;
mod otlp_sink;
mod procs;
mod report;
mod scenario;
mod stats;
mod table;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use ab::SideSpec;
use bins::Binaries;
use cli::Args;
use measure::Plan;
use procs::Placement;
use report::Report;
use scenario::Env;

/// What a run prints and what it writes as JSON.
struct Output {
    text: String,
    json: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let only = args.scenarios()?;
    let placement = Placement {
        cpus: (args.cpus != "none").then(|| args.cpus.clone()),
    };
    // Before pinning: afterwards the process sees only its own CPUs.
    let cpus_online = std::thread::available_parallelism().map_or(0, |n| n.get());
    let sink = match args.otlp_sink {
        Some(addr) => Some((
            addr,
            otlp_sink::Sink::start(addr, off(&placement, cpus_online)?)?,
        )),
        None => None,
    };
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
    let output = runtime.block_on(run(&args, &only, placement, cpus_online))?;
    print!("{}", output.text);
    if let Some((addr, sink)) = &sink {
        println!("\n{}", sink.summary(*addr));
    }
    let json = args.json();
    if let Some(parent) = json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&json, output.json).with_context(|| format!("write {}", json.display()))?;
    println!("\nJSON: {}", json.display());
    Ok(())
}

/// Pins this process (the load generator) like every child.
fn pin_self(placement: &Placement) -> anyhow::Result<()> {
    let Some(cpus) = &placement.cpus else {
        return Ok(());
    };
    let mut set = nix::sched::CpuSet::new();
    for cpu in cpu_list(cpus)? {
        set.set(cpu)?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("cannot pin to CPUs {cpus}"))?;
    Ok(())
}

/// The CPUs of a `--cpus` list such as `0` or `0-1,3`.
fn cpu_list(cpus: &str) -> anyhow::Result<Vec<usize>> {
    let mut list = Vec::new();
    for part in cpus.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (usize, usize) = (first.trim().parse()?, last.trim().parse()?);
        list.extend(first..=last);
    }
    Ok(list)
}

/// The online CPUs the run is not pinned to; `None` when it is not pinned
/// or uses them all.
fn off(placement: &Placement, cpus_online: usize) -> anyhow::Result<Option<nix::sched::CpuSet>> {
    let Some(cpus) = &placement.cpus else {
        return Ok(None);
    };
    let pinned = cpu_list(cpus)?;
    let mut set = nix::sched::CpuSet::new();
    let mut any = false;
    for cpu in (0..cpus_online).filter(|c| !pinned.contains(c)) {
        set.set(cpu)?;
        any = true;
    }
    Ok(any.then_some(set))
}

async fn run(
    args: &Args,
    only: &[String],
    placement: Placement,
    cpus_online: usize,
) -> anyhow::Result<Output> {
    let exe = std::env::current_exe()?;
    let here = Binaries::beside(&exe).context("the binary's directory")?;
    let plan = Plan {
        levels: args.levels(),
        secs: Duration::from_secs_f64(args.secs),
        warmup: Duration::from_secs_f64(args.warmup),
        repeats: args.repeats.max(1),
    };
    anyhow::ensure!(
        plan.levels
            .iter()
            .all(|&l| (1..=scenario::sink::MAX_WORKERS).contains(&l)),
        "--inflight must be between 1 and {}",
        scenario::sink::MAX_WORKERS
    );
    let blank = Report {
        placement: format!(
            "{}: load generator, every lymphd, every app, every floor process and Python lymph",
            placement.describe()
        ),
        cpus_online,
        secs_per_figure: args.secs,
        repeats: plan.repeats,
        body_bytes: body::BODY_BYTES,
        rows: Vec::new(),
        facts: Vec::new(),
        checks: Vec::new(),
    };
    // The own floors are built beside this harness, whichever side's daemons run.
    let own_floors = here.dir.clone();
    let env = |bins: Binaries| -> anyhow::Result<Env> {
        let programs = programs_for(only);
        let missing = bins.missing(&programs);
        anyhow::ensure!(
            missing.is_empty(),
            "{} has no {} (build them in release first)",
            bins.dir.display(),
            missing.join(", ")
        );
        Ok(Env {
            bins,
            dir: tempfile::Builder::new().prefix("lymphd-bench").tempdir()?,
            plan: plan.clone(),
            floors: args.floors.clone(),
            floor_dirs: scenario::floor::FloorDirs {
                own: own_floors.clone(),
                shared: args.floor_dir.clone(),
            },
            lymph_peer_dir: args.lymph_peer.clone(),
            lymph_requests: args.lymph_requests.max(80),
            placement: placement.clone(),
        })
    };
    if !args.ab() {
        let mut report = blank;
        scenario::run_all(&env(here)?, &mut report, only).await;
        report.checks = checks::check_all(&report);
        return Ok(Output {
            text: table::render(&report),
            json: serde_json::to_string_pretty(&report)?,
        });
    }
    // A: --bin-dir's binaries, or this build's when only the environment differs.
    let a = SideSpec {
        label: args.label_a.clone().unwrap_or_else(|| {
            if args.bin_dir.is_some() {
                "prebuilt binaries"
            } else {
                "this build"
            }
            .to_owned()
        }),
        env: env(Binaries {
            dir: args.bin_dir.clone().unwrap_or_else(|| here.dir.clone()),
            daemon_env: Vec::new(),
        })?,
    };
    let b = SideSpec {
        label: args
            .label_b
            .clone()
            .unwrap_or_else(|| "this build".to_owned()),
        env: env(Binaries {
            dir: here.dir.clone(),
            daemon_env: args.ab_env.clone(),
        })?,
    };
    let report = ab::run((&a, &b), args.rounds.max(1), only, &blank).await;
    Ok(Output {
        text: ab::render::render(&report),
        json: serde_json::to_string_pretty(&report)?,
    })
}

/// The programs a side needs for the chosen scenarios.
fn programs_for(only: &[String]) -> Vec<&'static str> {
    let chosen = |name: &str| only.iter().any(|o| o == name);
    let mut programs = Vec::new();
    if chosen("local") || chosen("fleet") || chosen("fleet-rpc") {
        programs.extend(["lymphd", "bench-app"]);
    }
    if chosen("fleet") {
        programs.push("greeting");
    }
    programs
}
