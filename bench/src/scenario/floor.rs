//! The floor, measured in the same run and placed the same way: the
//! floor-bench prototype of one sidecar hop (`e2e bench --a-mode stream`) and
//! bare ZeroMQ and gRPC-over-UDS echoes, each run `repeats` times; their
//! `RESULT` lines parsed into rows.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use super::Env;
use crate::measure::Figures;
use crate::report::{Outcome, Report, Row};
use integration_tests::proc::try_run_bounded;

/// One floor tool: its binary and arguments, the variant of its output we
/// keep, and the row it becomes.
struct Tool {
    binary: &'static str,
    args: &'static [&'static str],
    variant: &'static str,
    key: &'static str,
    label: &'static str,
}

const TOOLS: [Tool; 3] = [
    Tool {
        binary: "e2e",
        args: &["bench", "--a-mode", "stream"],
        variant: "appA-STREAM>sideA>zmq>sideB>stream>appB",
        key: "floor.e2e",
        label: "floor: prototype app → sidecar → ZeroMQ → sidecar → app",
    },
    Tool {
        binary: "zmq_rs",
        args: &["bench"],
        variant: "dealer-router",
        key: "floor.zmq",
        label: "floor: bare ZeroMQ DEALER → ROUTER echo",
    },
    Tool {
        binary: "grpc_uds",
        args: &["bench"],
        variant: "bidi-stream",
        key: "floor.grpc",
        label: "floor: bare gRPC bidi-stream echo over UDS",
    },
];

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

/// Why the floor cannot be measured, if it cannot.
pub fn missing(floor_dir: &Path) -> Option<String> {
    TOOLS
        .iter()
        .map(|t| floor_dir.join(t.binary))
        .find(|p| !p.exists())
        .map(|p| {
            format!(
                "floor not measured: {} is not built (scripts/bench builds it; it needs protoc)",
                p.display()
            )
        })
}

pub fn run(env: &Env, report: &mut Report) {
    if let Some(why) = missing(&env.floor_dir) {
        for tool in &TOOLS {
            report.not_measured(tool.key, tool.label, &env.plan.levels, &why);
        }
        return;
    }
    for tool in &TOOLS {
        match measure_tool(env, tool) {
            Ok(rows) => rows.into_iter().for_each(|r| report.push(r)),
            Err(e) => {
                let why = format!("floor not measured: {e:#}");
                report.not_measured(tool.key, tool.label, &env.plan.levels, &why);
            }
        }
    }
}

fn measure_tool(env: &Env, tool: &Tool) -> anyhow::Result<Vec<Row>> {
    // floor-bench puts its Unix sockets here.
    std::fs::create_dir_all("/tmp/floor-bench")?;
    let levels: Vec<String> = env.plan.levels.iter().map(usize::to_string).collect();
    let secs = format!("{}", env.plan.secs.as_secs_f64());
    let mut lines = Vec::new();
    for _ in 0..env.plan.repeats.max(1) {
        let mut cmd = env.placement.command(env.floor_dir.join(tool.binary));
        cmd.args(tool.args)
            .args(["--secs", &secs, "--inflight", &levels.join(",")]);
        if env.placement.single_cpu() {
            // As the floor's own one-core figure: a current-thread runtime.
            cmd.env("RT", "ct");
        }
        let budget = Duration::from_secs(60) + env.plan.secs * 10;
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
        lines.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(parse_result)
                .filter(|r| r.variant == tool.variant),
        );
    }
    let mut rows = Vec::new();
    for &inflight in &env.plan.levels {
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
        rows.push(Row {
            key: tool.key.to_owned(),
            label: tool.label.to_owned(),
            inflight,
            floor: None,
            lymph: None,
            outcome,
        });
    }
    Ok(rows)
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
}
