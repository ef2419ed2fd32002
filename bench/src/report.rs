//! What a run found: one row per path and depth (measured, or why not),
//! single facts (memory), and the targets checked against them; written as
//! JSON. Rendering as text lives in `table`.

use serde::Serialize;

use crate::measure::Figures;

/// A row's figures, or why there are none.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Measured(Figures),
    NotMeasured { why: String },
}

/// One path at one depth.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Stable id, e.g. `rpc.fleet`, used by baselines and targets.
    pub key: String,
    pub label: String,
    pub inflight: usize,
    /// The key of the floor row this one is divided by (same depth), e.g. `floor.e2e`.
    pub floor: Option<String>,
    /// The key of the real lymph 0.15 row it is compared with, e.g. `lymph.echo`.
    pub lymph: Option<String>,
    pub outcome: Outcome,
}

/// One measured fact that is not a rate: the daemon's resident memory, MB.
#[derive(Debug, Clone, Serialize)]
pub struct Fact {
    pub key: String,
    pub label: String,
    pub mb: Option<f64>,
}

/// One target of the issue, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub target: String,
    pub measured: String,
    /// `None` when a side of the comparison was not measured.
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub placement: String,
    pub cpus_online: usize,
    pub secs_per_figure: f64,
    pub repeats: usize,
    pub body_bytes: usize,
    pub rows: Vec<Row>,
    pub facts: Vec<Fact>,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Rows for `key` at every depth, all "not measured" for the same reason.
    pub fn not_measured(&mut self, key: &str, label: &str, levels: &[usize], why: &str) {
        for &inflight in levels {
            self.rows.push(Row {
                key: key.to_owned(),
                label: label.to_owned(),
                inflight,
                floor: None,
                lymph: None,
                outcome: Outcome::NotMeasured {
                    why: why.to_owned(),
                },
            });
        }
    }

    /// The figures of `key` at `inflight`, if measured.
    pub fn figures(&self, key: &str, inflight: usize) -> Option<&Figures> {
        self.rows
            .iter()
            .find(|r| r.key == key && r.inflight == inflight)
            .and_then(|r| match &r.outcome {
                Outcome::Measured(f) => Some(f),
                Outcome::NotMeasured { .. } => None,
            })
    }

    pub fn fact(&mut self, key: &str, label: &str, mb: Option<f64>) {
        self.facts.push(Fact {
            key: key.to_owned(),
            label: label.to_owned(),
            mb,
        });
    }

    /// A fact's value, if it was measured.
    pub fn fact_mb(&self, key: &str) -> Option<f64> {
        self.facts.iter().find(|f| f.key == key).and_then(|f| f.mb)
    }
}
