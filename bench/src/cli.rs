//! The harness's command line: the knobs of a run, the A/B options, and the
//! defaults that differ between one run and an A/B run.

use std::path::PathBuf;

use clap::Parser;

use crate::bins::parse_env;
use crate::scenario::SCENARIOS;
use crate::scenario::floor::FloorSet;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "lymphd's calls and events against the floor and lymph 0.15; \
             with --bin-dir or --ab-env, two builds or settings A/B",
    // scripts/bench puts its own --bin-dir/--label-* first: a later one wins.
    args_override_self = true
)]
pub struct Args {
    /// CPUs every process of the run is pinned to (`taskset -c`), or `none`
    #[arg(long, default_value = "0")]
    pub cpus: String,
    /// Seconds of each measurement
    #[arg(long, default_value_t = 1.0)]
    pub secs: f64,
    /// Seconds of warm-up before each figure's measurements
    #[arg(long, default_value_t = 0.3)]
    pub warmup: f64,
    /// Measurements per figure (the table shows their median)
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Requests in flight, comma-separated [default: 1,16,64; A/B: 1,64]
    #[arg(long, value_delimiter = ',')]
    pub inflight: Option<Vec<usize>>,
    /// Floor sets to measure, comma-separated: own (this package's floor-*
    /// binaries), shared (the floor-bench prototype in --floor-dir). The
    /// first is what other rows are divided by; with both, the first's rows
    /// are also divided by the second's
    #[arg(long, value_delimiter = ',', default_value = "own", value_parser = FloorSet::parse)]
    pub floors: Vec<FloorSet>,
    /// Where the floor-bench prototype's release binaries are (--floors shared)
    #[arg(long, default_value = "/tmp/floor-bench-target/release")]
    pub floor_dir: PathBuf,
    /// Where scripts/lymph-peer installed real lymph 0.15
    #[arg(long, default_value = "/tmp/lymph-peer")]
    pub lymph_peer: PathBuf,
    /// Requests per `lymph request -N` run
    #[arg(long, default_value_t = 2000)]
    pub lymph_requests: u32,
    /// Scenarios to run, comma-separated: floor, local, fleet, fleet-rpc (the
    /// fleet's two-daemon echo rows only), lapin, lymph
    /// [default: floor,local,fleet,lapin,lymph; A/B: fleet-rpc]
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// Runs an OTLP/gRPC span receiver on ADDR for the whole run (it counts
    /// and drops spans, on the CPUs the run is not pinned to), for daemons
    /// given `--ab-env LYMPHD_TRACING_OTLP_ENDPOINT=http://ADDR`
    #[arg(long, value_name = "ADDR")]
    pub otlp_sink: Option<std::net::SocketAddr>,
    /// Where to write the figures as JSON
    /// [default: target/bench/lymphd-bench.json; A/B: target/bench/lymphd-ab.json]
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// A/B: side A's binaries (lymphd, bench-app, greeting) from DIR; side B's
    /// are this binary's own directory. `scripts/bench --ab REV` builds REV
    /// and passes its directory here
    #[arg(long, value_name = "DIR", help_heading = "A/B")]
    pub bin_dir: Option<PathBuf>,
    /// A/B: side B's daemons run with VAR=VALUE (repeatable); without
    /// --bin-dir both sides run this binary's directory
    #[arg(long, value_name = "VAR=VALUE", value_parser = parse_env, help_heading = "A/B")]
    pub ab_env: Vec<(String, String)>,
    /// A/B: rounds per side, alternated A, B, A, B, ... (3 or more for a verdict)
    #[arg(long, default_value_t = 3, help_heading = "A/B")]
    pub rounds: usize,
    /// A/B: what to call side A in the table
    #[arg(long, help_heading = "A/B")]
    pub label_a: Option<String>,
    /// A/B: what to call side B in the table
    #[arg(long, help_heading = "A/B")]
    pub label_b: Option<String>,
}

impl Args {
    /// Whether this is an A/B run.
    pub fn ab(&self) -> bool {
        self.bin_dir.is_some() || !self.ab_env.is_empty()
    }

    pub fn levels(&self) -> Vec<usize> {
        self.inflight.clone().unwrap_or_else(|| {
            if self.ab() {
                vec![1, 64]
            } else {
                vec![1, 16, 64]
            }
        })
    }

    /// The chosen scenarios; fails on a name no scenario has.
    pub fn scenarios(&self) -> anyhow::Result<Vec<String>> {
        let chosen = self.only.clone().unwrap_or_else(|| {
            let default: &[&str] = if self.ab() {
                &["fleet-rpc"]
            } else {
                &["floor", "local", "fleet", "lapin", "lymph"]
            };
            default.iter().map(|s| (*s).to_owned()).collect()
        });
        if let Some(unknown) = chosen.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
            anyhow::bail!(
                "--only: no scenario {unknown:?} (there are {})",
                SCENARIOS.join(", ")
            );
        }
        Ok(chosen)
    }

    pub fn json(&self) -> PathBuf {
        self.json.clone().unwrap_or_else(|| {
            PathBuf::from(if self.ab() {
                "target/bench/lymphd-ab.json"
            } else {
                "target/bench/lymphd-bench.json"
            })
        })
    }
}
