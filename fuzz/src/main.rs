//! `lymph-fuzz`: the longer fuzz run of lymphd's parsers (README, "Fuzzing").
//! For each parser, up to `--inputs` generated inputs within `--seconds`:
//! random bytes, mutations of valid encodings made by the daemon's encoders,
//! and mutations of inputs found valid along the way. Each input runs under
//! `catch_unwind`; a panic (of the parser, or of a check the entry makes:
//! round trips, bounds) is a failure, shown hex-dumped, and the exit code is 1.
//! First, `probes`: a worst-case input per parser, its peak memory bounded.

mod probes;
mod run;

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use lymphd::fuzz::{self, Rng, mutate, mutate_frames};

use self::run::{Report, Runner};

#[derive(Parser, Debug)]
#[command(about = "Fuzz lymphd's parsers with random and mutated inputs")]
struct Args {
    /// Inputs per parser, at most.
    #[arg(long, default_value_t = 1_000_000)]
    inputs: u64,
    /// Seconds per parser, at most (the run stops at whichever comes first).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the generator: the same seed replays the same inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Parsers to run (default: all): zmtp, frame, envelope, node, config.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

const PARSERS: [&str; 5] = ["zmtp", "frame", "envelope", "node", "config"];

fn main() -> ExitCode {
    let args = Args::parse();
    for name in &args.only {
        if !PARSERS.contains(&name.as_str()) {
            eprintln!("unknown parser {name:?}: expected one of {PARSERS:?}");
            return ExitCode::from(64);
        }
    }
    run::quiet_panics();
    println!(
        "lymph-fuzz: seed {}, at most {} inputs or {} s per parser",
        args.seed, args.inputs, args.seconds
    );
    let mut failed = !probes::run();
    for (index, name) in PARSERS.iter().enumerate() {
        if !args.only.is_empty() && !args.only.iter().any(|n| n == name) {
            continue;
        }
        let runner = Runner {
            inputs: args.inputs,
            time: Duration::from_secs(args.seconds),
            rng: Rng::new(args.seed.wrapping_add(index as u64)),
        };
        let report = match *name {
            "zmtp" => zmtp(runner),
            "frame" => frame(runner),
            "envelope" => bytes_parser(runner, fuzz::seeds::envelope(), fuzz::envelope),
            "node" => bytes_parser(runner, fuzz::seeds::node(), fuzz::node),
            _ => config(runner),
        };
        report.print(name);
        failed |= report.failure.is_some();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The most bytes of a generated input (or of one frame). Mutations insert
/// and append, and mutated inputs are mutated again: without a cap, inputs
/// would grow run after run and the parsers slow down with them.
const MAX_INPUT: usize = 8 * 1024;

fn capped(mut input: Vec<u8>) -> Vec<u8> {
    input.truncate(MAX_INPUT);
    input
}

/// Random bytes of up to `max` bytes.
fn random(rng: &mut Rng, max: usize) -> Vec<u8> {
    let n = rng.below(max + 1);
    rng.bytes(n)
}

/// A parser of plain bytes: one input in eight random, the rest mutated.
fn bytes_parser(
    runner: Runner,
    seeds: Vec<Vec<u8>>,
    check: fn(&[u8]) -> Result<(), String>,
) -> Report {
    runner.run(
        seeds,
        |rng, pool| {
            if rng.below(8) == 0 {
                random(rng, 256)
            } else {
                {
                    let from = &pool[rng.below(pool.len())];
                    capped(mutate(rng, from))
                }
            }
        },
        |input| check(input),
        |input| run::hex(input),
    )
}

/// The ZMTP reader, with reads of a random size (1 to 256 bytes).
fn zmtp(runner: Runner) -> Report {
    let seeds = fuzz::seeds::zmtp()
        .into_iter()
        .map(|bytes| (bytes, 64))
        .collect();
    runner.run(
        seeds,
        |rng, pool| {
            let chunk = 1 + rng.below(256);
            let input = if rng.below(8) == 0 {
                let mut input = pool[0].0[..64].to_vec();
                input.extend(random(rng, 256));
                input
            } else {
                {
                    let from = &pool[rng.below(pool.len())].0;
                    capped(mutate(rng, from))
                }
            };
            (input, chunk)
        },
        |(input, chunk)| fuzz::zmtp(input, *chunk).map(|_| ()),
        |(input, chunk)| format!("reads of {chunk} bytes:\n{}", run::hex(input)),
    )
}

/// The frame codec: multipart messages, a frame or more mutated.
fn frame(runner: Runner) -> Report {
    runner.run(
        fuzz::seeds::frame(),
        |rng, pool| {
            let from = &pool[rng.below(pool.len())];
            let mut frames = mutate_frames(rng, from);
            frames.iter_mut().for_each(|f| f.truncate(MAX_INPUT));
            frames.truncate(16);
            if rng.below(8) == 0 && !frames.is_empty() {
                let at = rng.below(frames.len());
                frames[at] = Bytes::from(random(rng, 64));
            }
            frames
        },
        |frames| fuzz::frame(frames),
        |frames| {
            let parts: Vec<String> = frames.iter().map(|f| run::hex(f)).collect();
            format!("{} frames:\n{}", frames.len(), parts.join("\n--\n"))
        },
    )
}

/// Values for `LYMPHD_*` variables, to mutate.
const ENV_VALUES: [&str; 8] = [
    "3s",
    "1024",
    "127.0.0.1",
    "10.0.0.0/8, ::1",
    "debug",
    "durable",
    "amqp://127.0.0.1:5672/%2f",
    "true",
];

/// The config loader: mutated YAML, one input in four with overrides.
fn config(runner: Runner) -> Report {
    let seeds = fuzz::seeds::config()
        .into_iter()
        .map(|yaml| (yaml, Vec::new()))
        .collect();
    runner.run(
        seeds,
        |rng, pool| {
            let (yaml, _) = &pool[rng.below(pool.len())];
            let yaml = String::from_utf8_lossy(&capped(mutate(rng, yaml.as_bytes()))).into_owned();
            let mut env = Vec::new();
            if rng.below(4) == 0 {
                for _ in 0..1 + rng.below(3) {
                    let name = fuzz::ENV_NAMES[rng.below(fuzz::ENV_NAMES.len())];
                    let value = ENV_VALUES[rng.below(ENV_VALUES.len())];
                    let value = mutate(rng, value.as_bytes());
                    env.push((
                        name.to_owned(),
                        String::from_utf8_lossy(&value).into_owned(),
                    ));
                }
            }
            (yaml, env)
        },
        |(yaml, env)| fuzz::config(yaml, env),
        |(yaml, env)| format!("yaml:\n{yaml:?}\nenvironment: {env:?}"),
    )
}
