//! All human-readable output: a case's metrics and marked ranking (shared by failure messages and
//! snapshots), and the suite summary table.
//!
//! Output is normalised for review: no absolute paths, no timings, metric values rounded to three
//! decimals. Scores are rounded to three decimals too, and a score that moved by less than one display
//! unit from the accepted snapshot keeps the accepted text, so float noise across machines and backends
//! cannot turn into a snapshot diff while a real change (≥ 0.001) always does.

use std::collections::HashMap;
use std::fmt::Write;

use crate::case::Case;
use crate::catalog::Catalog;
use crate::metrics::{self, Class, Metric, Metrics};
use crate::outcome::Outcome;
use crate::threshold::Check;

/// Accepted score texts by item id, read from a previous snapshot.
pub type Accepted = HashMap<String, String>;

/// The text of `score`, keeping the accepted text when the score moved by less than 0.001.
fn score_text(score: f32, id: &str, accepted: &Accepted) -> String {
    let fresh = format!("{score:.3}");
    match accepted.get(id) {
        Some(old) if old.parse::<f32>().is_ok_and(|v| (v - score).abs() < 1e-3) => old.clone(),
        _ => fresh,
    }
}

/// The body of a case's snapshot: query, metrics against thresholds, the marked top of the ranking and
/// where the expected items below it ended up.
pub fn case_body(case: &Case, catalog: &Catalog, outcome: &Outcome, accepted: &Accepted) -> String {
    let mut s = String::new();
    writeln!(s, "query: {}", case.description).unwrap();
    writeln!(s, "k: {}", case.k).unwrap();
    writeln!(s).unwrap();
    s.push_str(&metrics_table(&outcome.metrics, &outcome.checks));
    if outcome.tie_at_k {
        let score = outcome.ranking[case.k - 1].score;
        writeln!(
            s,
            "note: ranks {} and {} share the score {score:.6}: the cut-off k = {} splits a tie (broken by id)",
            case.k,
            case.k + 1,
            case.k
        )
        .unwrap();
    }
    writeln!(s).unwrap();

    let marks = outcome.marks();
    let top = case.snapshot_top.min(outcome.ranking.len());
    let row = |s: &mut String, pos: usize| {
        let r = &outcome.ranking[pos];
        let id = &catalog.items()[r.item].id;
        let mark = marks[pos].map_or("·", |m| m.symbol());
        let class = outcome.ranked_classes[pos].name();
        writeln!(s, "{:>4}  {:>6}  {mark}  {class:<8}  {id}", pos + 1, score_text(r.score, id, accepted)).unwrap();
    };
    writeln!(s, "ranking (top {top} of {}):", outcome.ranking.len()).unwrap();
    writeln!(s, "rank   score  mark class     item").unwrap();
    for pos in 0..top {
        row(&mut s, pos);
    }
    let below: Vec<usize> =
        (top..outcome.ranking.len()).filter(|&p| outcome.ranked_classes[p] == Class::Expected).collect();
    if !below.is_empty() {
        writeln!(s, "expected items below rank {top}:").unwrap();
        for pos in below {
            row(&mut s, pos);
        }
    }
    s
}

/// Every metric, with its threshold and verdict where it has one.
pub fn metrics_table(metrics: &Metrics, checks: &[Check]) -> String {
    let mut s = String::new();
    for (metric, value) in metrics.iter() {
        let label = metric.label(metrics.k);
        let value = fmt_value(metric, value);
        match checks.iter().find(|c| c.metric == metric) {
            Some(c) => {
                let verdict = if c.passed { "ok" } else { "FAIL" };
                writeln!(s, "{label:<20} {value:>6}  {:<7} {verdict}", c.threshold.to_string()).unwrap()
            }
            None => writeln!(s, "{label:<20} {value:>6}").unwrap(),
        }
    }
    s
}

fn fmt_value(metric: Metric, value: f64) -> String {
    if metric == Metric::Red {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// The one-line reason a case failed: every failing threshold.
pub fn failed_checks(checks: &[Check], k: usize) -> String {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} = {:.3} (needs {})", c.metric.label(k), c.value, c.threshold))
        .collect();
    format!("{} of {} thresholds failed: {}", failed.len(), checks.len(), failed.join(", "))
}

/// How one case ended, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    /// A known failure that still fails: fine.
    KnownFailure,
    /// A known failure that now passes: remove the mark.
    Fixed,
    Ignored,
    /// The case could not be loaded or run.
    Error,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "ok",
            Status::Failed => "FAIL",
            Status::KnownFailure => "known failure",
            Status::Fixed => "FIXED (remove known_failure)",
            Status::Ignored => "ignored",
            Status::Error => "ERROR",
        }
    }

    /// Whether this status fails the suite.
    pub fn fails_suite(self) -> bool {
        matches!(self, Status::Failed | Status::Fixed | Status::Error)
    }
}

/// One row of the summary.
pub struct SummaryRow<'a> {
    pub name: &'a str,
    pub status: Status,
    pub metrics: Option<&'a Metrics>,
    pub groups: Vec<String>,
}

const SUMMARY_METRICS: [Metric; 6] =
    [Metric::Mrr, Metric::Recall, Metric::Precision, Metric::Accuracy, Metric::AccuracyStrict, Metric::Ndcg];

/// A column heading of at most ten characters.
fn short_label(m: Metric) -> &'static str {
    match m {
        Metric::Recall => "recall@k",
        Metric::Precision => "prec@k",
        Metric::PrecisionStrict => "prec_str@k",
        Metric::AccuracyStrict => "acc_strict",
        Metric::Hit => "hit@k",
        Metric::Ndcg => "ndcg@k",
        Metric::Red => "red@k",
        other => other.key(),
    }
}

/// The per-case table followed by the suite's means overall, per area and per tag.
pub fn summary(rows: &[SummaryRow]) -> String {
    let mut s = String::new();
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(24);
    let header = |s: &mut String, first: &str| {
        write!(s, "{first:<width$}").unwrap();
        for m in SUMMARY_METRICS {
            write!(s, " {:>10}", short_label(m)).unwrap();
        }
    };
    header(&mut s, "case");
    writeln!(s, "  status").unwrap();
    for row in rows {
        write!(s, "{:<width$}", row.name).unwrap();
        for m in SUMMARY_METRICS {
            match row.metrics {
                Some(metrics) => write!(s, " {:>10.3}", metrics.get(m)).unwrap(),
                None => write!(s, " {:>10}", "-").unwrap(),
            }
        }
        writeln!(s, "  {}", row.status.label()).unwrap();
    }
    let judged: Vec<(Vec<String>, &Metrics)> =
        rows.iter().filter_map(|r| r.metrics.map(|m| (r.groups.clone(), m))).collect();
    let (all, groups) = metrics::aggregate(judged);
    writeln!(s).unwrap();
    header(&mut s, "mean over");
    writeln!(s, "  cases").unwrap();
    let mean_row = |s: &mut String, name: &str, agg: &metrics::Aggregate| {
        write!(s, "{name:<width$}").unwrap();
        for m in SUMMARY_METRICS {
            write!(s, " {:>10.3}", agg.means[&m]).unwrap();
        }
        writeln!(s, "  {}", agg.cases).unwrap();
    };
    mean_row(&mut s, "suite", &all);
    for (name, agg) in &groups {
        mean_row(&mut s, name, agg);
    }
    let count = |st: Status| rows.iter().filter(|r| r.status == st).count();
    writeln!(
        s,
        "\n{} cases: {} passed, {} failed, {} known failures, {} fixed known failures, {} ignored, {} errors",
        rows.len(),
        count(Status::Passed),
        count(Status::Failed),
        count(Status::KnownFailure),
        count(Status::Fixed),
        count(Status::Ignored),
        count(Status::Error)
    )
    .unwrap();
    s
}

/// The groups a case's means are reported under: its area folder and `tag:` + each of its tags.
pub fn groups_of(case: &Case) -> Vec<String> {
    let mut g: Vec<String> = case.area().map(|a| format!("area:{a}")).into_iter().collect();
    g.extend(case.tags.iter().map(|t| format!("tag:{t}")));
    g
}
