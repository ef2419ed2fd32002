//! An A/B report as text: a header naming both sides, one side-by-side
//! markdown table (A and B medians, B/A ratios), why rows were not measured,
//! memory facts per side, and the verdict lines.

use std::fmt::Write as _;

use super::AbReport;
use super::summary::{AbRow, SideFigures};
use crate::table::rate;

pub fn render(report: &AbReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lymphd A/B: {} B bodies; {} round(s) per side, alternated A, B, A, B, ...; each round's \
         figure the median of {} run(s) of {:.1} s, the table the median of the rounds; \
         placement: {} ({} CPUs online)\n",
        report.body_bytes,
        report.rounds,
        report.repeats,
        report.secs_per_figure,
        report.placement,
        report.cpus_online
    );
    for side in &report.sides {
        let env = if side.daemon_env.is_empty() {
            String::new()
        } else {
            format!("; its daemons run with {}", side.daemon_env.join(" "))
        };
        let _ = writeln!(
            out,
            "- {:?}: {} ({}){env}",
            side.side,
            side.label,
            side.bin_dir.display()
        );
    }
    out.push_str(
        "\n| path | in flight | req/s A | req/s B | B/A | p50 µs A | p50 µs B | B/A | p99 µs A | p99 µs B | B/A | daemon CPU ms/1k A | B | B/A |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut reasons: Vec<String> = Vec::new();
    for row in &report.rows {
        out.push_str(&line(row));
        for (side, result) in [("A", &row.a), ("B", &row.b)] {
            if let Err(why) = result {
                let reason = format!("{} (side {side}): {why}", row.label);
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
            }
        }
    }
    out.push('\n');
    for reason in &reasons {
        let _ = writeln!(out, "- {reason}");
    }
    for fact in &report.facts {
        let mb = |v: Option<f64>| {
            v.map_or_else(|| "not measured".to_owned(), |mb| format!("{mb:.1} MB"))
        };
        let _ = writeln!(out, "- {}: A {}, B {}", fact.label, mb(fact.a), mb(fact.b));
    }
    let _ = writeln!(
        out,
        "\nVerdict (medians of the rounds; \"costs nothing\": B's rate ≥ 0.95× A's and p50 ≤ 1.05× A's):"
    );
    for depth in &report.verdict.depths {
        let _ = writeln!(out, "- {}", depth.line);
    }
    let _ = writeln!(out, "{}", report.verdict.overall);
    out
}

/// Reads one figure of a side.
type Getter = fn(&SideFigures) -> Option<f64>;
/// A figure of the table and how it is shown.
type Column = (Getter, fn(f64) -> String);

/// One table line: each figure for A, for B, and B/A.
fn line(row: &AbRow) -> String {
    let mut cells = vec![row.label.clone(), row.inflight.to_string()];
    let columns: [Column; 4] = [
        (|s| Some(s.rate), rate),
        (|s| Some(s.p50_us), |v| format!("{v:.0}")),
        (|s| Some(s.p99_us), |v| format!("{v:.0}")),
        (|s| s.daemon_cpu_ms_per_1k, |v| format!("{v:.1}")),
    ];
    for (get, show) in columns {
        for side in [&row.a, &row.b] {
            cells.push(match side {
                Ok(s) => get(s).map_or_else(String::new, show),
                Err(_) => "not measured".to_owned(),
            });
        }
        cells.push(
            row.ratio(get)
                .map_or_else(String::new, |r| format!("{r:.2}")),
        );
    }
    let errors = |side: &Result<SideFigures, String>| side.as_ref().map_or(0, |s| s.errors);
    let (in_a, in_b) = (errors(&row.a), errors(&row.b));
    if in_a + in_b > 0 {
        cells[0].push_str(&format!(" (errors: A {in_a}, B {in_b})"));
    }
    format!("| {} |\n", cells.join(" | "))
}
