//! The floors, measured in the same run and placed the same way: the
//! project's own (`floor-chain`, `floor-zmq`, `floor-grpc`, built beside this
//! harness) and, with `--floors shared`, the floor-bench prototype outside the
//! repository (`e2e bench --a-mode stream`, `zmq_rs bench`, `grpc_uds bench`).
//! Each set's `RESULT` lines are parsed into rows. The first set of
//! `--floors` takes the keys other rows are divided by (`floor.e2e`, ...);
//! when both run, its rows are divided by the other set's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;

use super::Env;
use crate::measure::Figures;
use crate::report::{Outcome, Report, Row};
use integration_tests::proc::try_run_bounded;

/// A set of floors `--floors` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorSet {
    /// The project's own, in `bench/src/bin/floor_*.rs`.
    Own,
    /// The floor-bench prototype (`../shared/floor-bench`).
    Shared,
}

impl FloorSet {
    pub fn parse(name: &str) -> Result<FloorSet, String> {
        match name {
            "own" => Ok(FloorSet::Own),
            "shared" => Ok(FloorSet::Shared),
            _ => Err(format!("no floor set {name:?} (there are own, shared)")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            FloorSet::Own => "own",
            FloorSet::Shared => "shared",
        }
    }

    fn tools(self) -> &'static [Tool; 3] {
        match self {
            FloorSet::Own => &OWN,
            FloorSet::Shared => &SHARED,
        }
    }
}

/// Where each set's binaries are.
#[derive(Debug, Clone)]
pub struct FloorDirs {
    pub own: PathBuf,
    pub shared: PathBuf,
}

impl FloorDirs {
    fn of(&self, set: FloorSet) -> &Path {
        match set {
            FloorSet::Own => &self.own,
            FloorSet::Shared => &self.shared,
        }
    }
}

/// One floor tool: its binary and arguments, the variant of its output we
/// keep, which floor it is (`e2e`, `zmq`, `grpc`) and the row it becomes.
struct Tool {
    binary: &'static str,
    args: &'static [&'static str],
    variant: &'static str,
    floor: &'static str,
    label: &'static str,
}

const OWN: [Tool; 3] = [
    Tool {
        binary: "floor-chain",
        args: &[],
        variant: "app-sidecar-zmq-sidecar-app",
        floor: "e2e",
        label: "floor: app → sidecar → ZeroMQ → sidecar → app",
    },
    Tool {
        binary: "floor-zmq",
        args: &[],
        variant: "zmq-dealer-router-echo",
        floor: "zmq",
        label: "floor: bare ZeroMQ DEALER → ROUTER echo",
    },
    Tool {
        binary: "floor-grpc",
        args: &[],
        variant: "grpc-uds-bidi-echo",
        floor: "grpc",
        label: "floor: bare gRPC bidi-stream echo over UDS",
    },
];

const SHARED: [Tool; 3] = [
    Tool {
        binary: "e2e",
        args: &["bench", "--a-mode", "stream"],
        variant: "appA-STREAM>sideA>zmq>sideB>stream>appB",
        floor: "e2e",
        label: "floor (prototype): app → sidecar → ZeroMQ → sidecar → app",
    },
    Tool {
        binary: "zmq_rs",
        args: &["bench"],
        variant: "dealer-router",
        floor: "zmq",
        label: "floor (prototype): bare ZeroMQ DEALER → ROUTER echo",
    },
    Tool {
        binary: "grpc_uds",
        args: &["bench"],
        variant: "bidi-stream",
        floor: "grpc",
        label: "floor (prototype): bare gRPC bidi-stream echo over UDS",
    },
];

/// The row key of `floor` in `set`: plain for the first set of the run
/// (what the other rows are divided by), qualified for the others.
fn row_key(sets: &[FloorSet], set: FloorSet, floor: &str) -> String {
    if sets.first() == Some(&set) {
        format!("floor.{floor}")
    } else {
        format!("floor.{}.{floor}", set.name())
    }
}

/// A `RESULT ... variant=V inflight=N rate=R p50_us=A p99_us=B ...` line.
#[derive(Debug, PartialEq)]
pub struct ResultLine {
    pub variant: String,
    pub inflight: usize,
    pub rate: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

pub fn parse_result(line: &str) -> Option<ResultLine> {
    let rest = line.strip_prefix("RESULT ")?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    Some(ResultLine {
        variant: field("variant")?.to_owned(),
        inflight: field("inflight")?.parse().ok()?,
        rate: field("rate")?.parse().ok()?,
        p50_us: field("p50_us")?.parse().ok()?,
        p99_us: field("p99_us")?.parse().ok()?,
    })
}

/// Why `set` cannot be measured, if it cannot.
fn missing(set: FloorSet, dir: &Path) -> Option<String> {
    let how = match set {
        FloorSet::Own => "cargo build --release -p lymphd-bench builds it",
        FloorSet::Shared => "scripts/bench --floors shared builds it; it needs protoc",
    };
    set.tools()
        .iter()
        .map(|t| dir.join(t.binary))
        .find(|p| !p.exists())
        .map(|p| format!("floor not measured: {} is not built ({how})", p.display()))
}

pub fn run(env: &Env, report: &mut Report) {
    let sets = &env.floors;
    for &set in sets {
        let dir = env.floor_dirs.of(set);
        let missing = missing(set, dir);
        for tool in set.tools() {
            let key = row_key(sets, set, tool.floor);
            let measured = match &missing {
                Some(why) => Err(why.clone()),
                None => measure_tool(env, set, dir, tool)
                    .map_err(|e| format!("floor not measured: {e:#}")),
            };
            // The first set's rows are divided by the second's, if any.
            let against = sets
                .get(1)
                .filter(|_| sets.first() == Some(&set))
                .map(|&other| row_key(sets, other, tool.floor));
            match measured {
                Ok(outcomes) => {
                    for (inflight, outcome) in outcomes {
                        report.push(Row {
                            key: key.clone(),
                            label: tool.label.to_owned(),
                            inflight,
                            floor: against.clone(),
                            lymph: None,
                            outcome,
                        });
                    }
                }
                Err(why) => report.not_measured(&key, tool.label, &env.plan.levels, &why),
            }
        }
    }
}

/// The figures of one tool at every level of the plan.
fn measure_tool(
    env: &Env,
    set: FloorSet,
    dir: &Path,
    tool: &Tool,
) -> anyhow::Result<Vec<(usize, Outcome)>> {
    let plan = &env.plan;
    let levels: Vec<String> = plan.levels.iter().map(usize::to_string).collect();
    let secs = format!("{}", plan.secs.as_secs_f64());
    let one_run = |extra: &[String]| -> anyhow::Result<Vec<ResultLine>> {
        let mut cmd = env.placement.command(dir.join(tool.binary));
        cmd.args(tool.args)
            .args(["--secs", &secs, "--inflight", &levels.join(",")])
            .args(extra);
        if set == FloorSet::Shared && env.placement.single_cpu() {
            // As the prototype's own one-core figure: a current-thread runtime.
            cmd.env("RT", "ct");
        }
        let per_level = plan.warmup + plan.secs * u32::try_from(plan.repeats).unwrap_or(1);
        let budget = Duration::from_secs(60) + per_level * 3 * levels.len().max(1) as u32;
        let out = try_run_bounded(cmd, budget)?;
        if !out.status.success() {
            bail!(
                "{} exited with {}: {}",
                tool.binary,
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(parse_result)
            .filter(|r| r.variant == tool.variant)
            .collect())
    };
    let mut lines = Vec::new();
    match set {
        // One run: a warm-up, then `repeats` measurements per level.
        FloorSet::Own => {
            let mut extra = vec![
                "--warmup".to_owned(),
                format!("{}", plan.warmup.as_secs_f64()),
                "--repeats".to_owned(),
                plan.repeats.max(1).to_string(),
            ];
            if env.placement.single_cpu() {
                extra.push("--current-thread".to_owned());
            }
            lines = one_run(&extra)?;
        }
        // The prototype measures each level once per run: `repeats` runs.
        FloorSet::Shared => {
            // It puts its Unix sockets here.
            std::fs::create_dir_all("/tmp/floor-bench")?;
            for _ in 0..plan.repeats.max(1) {
                lines.extend(one_run(&[])?);
            }
        }
    }
    let mut outcomes = Vec::new();
    for &inflight in &plan.levels {
        let triples: Vec<(f64, f64, f64)> = lines
            .iter()
            .filter(|r| r.inflight == inflight)
            .map(|r| (r.rate, r.p50_us, r.p99_us))
            .collect();
        let outcome = match Figures::from_triples(&triples) {
            Some(figures) => Outcome::Measured(figures),
            None => Outcome::NotMeasured {
                why: format!("{} printed no result at {inflight} in flight", tool.binary),
            },
        };
        eprintln!("bench: {} @{inflight}: {} runs", tool.label, triples.len());
        outcomes.push((inflight, outcome));
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_floor_result_line() {
        let line = "RESULT bench=e2e variant=appA-STREAM>sideA>zmq>sideB>stream>appB inflight=64 \
                    n=151232 secs=1.000 rate=151173 p50_us=415.7 p99_us=724.8 p999_us=888.0 \
                    cpu_s=0.13+0.33 cpu_total=1.00 msgs_per_cpu_s=151232";
        assert_eq!(
            parse_result(line),
            Some(ResultLine {
                variant: "appA-STREAM>sideA>zmq>sideB>stream>appB".to_owned(),
                inflight: 64,
                rate: 151_173.0,
                p50_us: 415.7,
                p99_us: 724.8,
            })
        );
        assert_eq!(parse_result("child: READY"), None);
    }

    #[test]
    fn the_first_floor_set_takes_the_plain_keys() {
        let both = [FloorSet::Own, FloorSet::Shared];
        assert_eq!(row_key(&both, FloorSet::Own, "e2e"), "floor.e2e");
        assert_eq!(row_key(&both, FloorSet::Shared, "e2e"), "floor.shared.e2e");
        let shared = [FloorSet::Shared];
        assert_eq!(row_key(&shared, FloorSet::Shared, "zmq"), "floor.zmq");
        assert_eq!(FloorSet::parse("own"), Ok(FloorSet::Own));
        assert!(FloorSet::parse("bogus").is_err());
    }

    #[test]
    fn the_own_floors_carry_the_harness_body_size() {
        assert_eq!(lymphd_bench::floors::BODY_BYTES, crate::body::BODY_BYTES);
    }
}
