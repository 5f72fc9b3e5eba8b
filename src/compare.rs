//! Comparing checkpoints: a candidate's run against the baseline's, as plain data.
//!
//! [`compare`] is a pure function of two [`RunResult`]s. Per case it classifies the change of verdict by
//! one table ([`change`]) and describes what moved in the ranking; per metric it counts wins, ties and
//! losses and tests the mean difference ([`crate::stats`]). [`gate`] turns a comparison into the reasons a
//! CI job should fail. Rendering lives in [`crate::compare_report`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::metrics::{Class, Metric};
use crate::result::{CaseResult, RunResult};
use crate::stats::{self, Paired};
use crate::verdict::Verdict;

/// How the manifest describes the statistics.
pub const STATISTICS: &str = "per metric, over the cases both checkpoints judged: win/tie/loss counts \
(candidate higher/equal/lower), a two-sided paired sign-flip randomization test of the mean difference \
(exact enumeration up to 9999 sign vectors, else 9999 random ones, fixed seed) and a 95% percentile \
bootstrap interval of the mean difference (9999 resamples of the cases, fixed seed)";

/// The metrics compared (red@k counts items and takes no threshold: it is shown in movements instead).
pub const COMPARED: [Metric; 8] = [
    Metric::Mrr,
    Metric::Recall,
    Metric::Precision,
    Metric::PrecisionStrict,
    Metric::Accuracy,
    Metric::AccuracyStrict,
    Metric::Hit,
    Metric::Ndcg,
];

/// What happened to a case between the baseline and the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The candidate does worse: e.g. passed → failed.
    Regression,
    /// The candidate does better: e.g. failed → passed.
    Fix,
    /// The verdict changed in a way that is neither (e.g. error → failed: now judged).
    Changed,
    /// Same verdict, but the ranking or a metric moved.
    Moved,
    /// Same verdict, same ranking.
    Unchanged,
    /// Ignored in one of the runs.
    NotCompared,
}

impl Change {
    pub fn label(self) -> &'static str {
        match self {
            Change::Regression => "regression",
            Change::Fix => "fix",
            Change::Changed => "changed",
            Change::Moved => "moved",
            Change::Unchanged => "unchanged",
            Change::NotCompared => "not compared",
        }
    }
}

/// The verdict table: baseline verdict × candidate verdict. Written out in full in the README.
///
/// - an error is worse than any judged verdict; a judged case that errors is a regression;
/// - passed → failed, and a fixed known failure → known failure (it fails again), are regressions;
/// - failed → passed, known failure → fixed, and error → passed or fixed, are fixes;
/// - the same verdict on both sides is [`Change::Unchanged`] (or [`Change::Moved`], decided by the
///   movement, not here); ignored on either side is not compared; anything else is [`Change::Changed`].
pub fn change(base: Verdict, cand: Verdict) -> Change {
    use Verdict::*;
    match (base, cand) {
        (Ignored, _) | (_, Ignored) => Change::NotCompared,
        (b, c) if b == c => Change::Unchanged,
        (_, Error) => Change::Regression,
        (Passed, Failed) | (Fixed, KnownFailure) | (Passed, KnownFailure) => Change::Regression,
        (Failed, Passed) | (KnownFailure, Fixed) | (Error, Passed) | (Error, Fixed) | (Failed, Fixed) => Change::Fix,
        _ => Change::Changed,
    }
}

/// An item whose rank changed (`None`: not among the ranks a result keeps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankMove {
    pub id: String,
    pub class: Class,
    pub from: Option<usize>,
    pub to: Option<usize>,
}

/// A metric whose value changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDelta {
    pub metric: Metric,
    pub base: f64,
    pub cand: f64,
}

/// What moved in one case's ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Movement {
    pub k: usize,
    /// The rank of the first expected item, baseline and candidate.
    pub first_expected: (Option<usize>, Option<usize>),
    /// Expected items whose rank changed, in the candidate's order.
    pub expected: Vec<RankMove>,
    /// Red items in the candidate's top k that were not in the baseline's.
    pub red_entered: Vec<RankMove>,
    /// Items that entered the top k.
    pub entered: Vec<RankMove>,
    /// Items that left the top k.
    pub left: Vec<RankMove>,
    /// Metrics whose value changed.
    pub metrics: Vec<MetricDelta>,
}

impl Movement {
    pub fn is_empty(&self) -> bool {
        self.first_expected.0 == self.first_expected.1
            && self.expected.is_empty()
            && self.entered.is_empty()
            && self.left.is_empty()
            && self.metrics.is_empty()
    }
}

/// One case compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseChange {
    pub name: String,
    pub base: Verdict,
    pub cand: Verdict,
    pub change: Change,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub movement: Option<Movement>,
}

/// One metric compared over the cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    pub metric: Metric,
    #[serde(flatten)]
    pub paired: Paired,
}

/// A candidate against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Run names (see [`RunResult::name`]).
    pub baseline: String,
    pub candidate: String,
    /// Every case, regressions first, then fixes, changes, movements, the unchanged.
    pub cases: Vec<CaseChange>,
    pub metrics: Vec<MetricComparison>,
    /// Suite means, baseline and candidate, for every metric.
    pub means: Vec<MetricDelta>,
}

impl Comparison {
    pub fn count(&self, change: Change) -> usize {
        self.cases.iter().filter(|c| c.change == change).count()
    }
}

fn ranks<'a>(case: &'a CaseResult) -> impl Fn(&str) -> Option<usize> + 'a {
    move |id| case.ranking.as_ref().and_then(|r| r.rank_of(id))
}

/// What moved between two judged results of the same case.
pub fn movement(base: &CaseResult, cand: &CaseResult) -> Option<Movement> {
    let (Some(b), Some(c)) = (&base.ranking, &cand.ranking) else { return None };
    let (Some(bm), Some(cm)) = (&base.metrics, &cand.metrics) else { return None };
    let k = cm.k;
    let (rank_b, rank_c) = (ranks(base), ranks(cand));
    let expected = c
        .classified
        .iter()
        .filter(|r| r.class == Class::Expected)
        .filter(|r| rank_b(&r.id) != Some(r.rank))
        .map(|r| RankMove { id: r.id.clone(), class: r.class, from: rank_b(&r.id), to: Some(r.rank) })
        .collect();
    let top_b: BTreeSet<&str> = b.top_ids(k).into_iter().collect();
    let top_c: BTreeSet<&str> = c.top_ids(k).into_iter().collect();
    let class_of = |id: &str| {
        c.classified.iter().chain(&c.top).chain(&b.top).find(|r| r.id == id).map_or(Class::Neutral, |r| r.class)
    };
    let entered: Vec<RankMove> = c
        .top_ids(k)
        .into_iter()
        .filter(|id| !top_b.contains(id))
        .map(|id| RankMove { id: id.into(), class: class_of(id), from: rank_b(id), to: rank_c(id) })
        .collect();
    let left = b
        .top_ids(k)
        .into_iter()
        .filter(|id| !top_c.contains(id))
        .map(|id| RankMove { id: id.into(), class: class_of(id), from: rank_b(id), to: rank_c(id) })
        .collect();
    let red_entered = entered.iter().filter(|m| m.class == Class::Red).cloned().collect();
    let metrics = Metric::ALL
        .into_iter()
        .filter(|&m| (bm.get(m) - cm.get(m)).abs() > 1e-12)
        .map(|m| MetricDelta { metric: m, base: bm.get(m), cand: cm.get(m) })
        .collect();
    Some(Movement {
        k,
        first_expected: (base.first_expected_rank(), cand.first_expected_rank()),
        expected,
        red_entered,
        entered,
        left,
        metrics,
    })
}

/// Compares `cand` with `base`, case by case (matched by name) and metric by metric.
pub fn compare(base: &RunResult, cand: &RunResult) -> Comparison {
    let mut cases: Vec<CaseChange> = Vec::new();
    let mut paired: Vec<(&CaseResult, &CaseResult)> = Vec::new();
    for c in &cand.cases {
        let Some(b) = base.case(&c.name) else { continue };
        let movement = movement(b, c);
        let mut change = change(b.verdict, c.verdict);
        if change == Change::Unchanged && movement.as_ref().is_some_and(|m| !m.is_empty()) {
            change = Change::Moved;
        }
        if b.metrics.is_some() && c.metrics.is_some() {
            paired.push((b, c));
        }
        cases.push(CaseChange { name: c.name.clone(), base: b.verdict, cand: c.verdict, change, movement });
    }
    cases.sort_by(|x, y| x.change.cmp(&y.change).then_with(|| x.name.cmp(&y.name)));
    let opts = stats::Options::default();
    let value = |r: &CaseResult, m: Metric| r.metrics.as_ref().map_or(0.0, |x| x.get(m));
    let metrics = COMPARED
        .into_iter()
        .map(|m| {
            let b: Vec<f64> = paired.iter().map(|(b, _)| value(b, m)).collect();
            let c: Vec<f64> = paired.iter().map(|(_, c)| value(c, m)).collect();
            // Both vectors come from the same judged cases and metrics are finite ratios: the only
            // errors compare_paired reports (unequal lengths, non-finite values) cannot happen here.
            let paired = stats::compare_paired(&b, &c, &opts).expect("paired metric vectors are equal and finite");
            MetricComparison { metric: m, paired }
        })
        .collect();
    let means = Metric::ALL
        .into_iter()
        .map(|m| MetricDelta { metric: m, base: base.means.means[&m], cand: cand.means.means[&m] })
        .collect();
    Comparison { baseline: base.name.clone(), candidate: cand.name.clone(), cases, metrics, means }
}

/// When `fitcheck compare` exits non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FailOn {
    /// Any case regresses (passed → failed or error, ...; see the verdict table).
    #[default]
    Regression,
    /// Any candidate case fails its thresholds (as `fitcheck run` would).
    Threshold,
    /// Never (only when nothing could be judged).
    Never,
}

/// The CI gate: the `--fail-on` rule and the largest allowed drop of suite means.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    pub fail_on: FailOn,
    /// `(metric, d)`: fail when the candidate's suite mean is more than `d` below the baseline's.
    pub max_drop: Vec<(Metric, f64)>,
}

/// Parses `--max-drop recall=0.02`.
pub fn parse_max_drop(text: &str) -> Result<(Metric, f64), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("'{text}': write METRIC=DROP, e.g. recall=0.02"))?;
    let metric = Metric::from_key(key.trim()).ok_or_else(|| {
        let known: Vec<&str> = Metric::ALL.iter().map(|m| m.key()).collect();
        format!("unknown metric '{}' (known: {})", key.trim(), known.join(", "))
    })?;
    let drop: f64 = value.trim().parse().map_err(|_| format!("'{}' is not a number", value.trim()))?;
    if !(0.0..=1.0).contains(&drop) {
        return Err(format!("a drop must be between 0 and 1, got {drop}"));
    }
    Ok((metric, drop))
}

/// Why the candidates fail the gate (empty: they pass).
pub fn gate(runs: &[RunResult], comparisons: &[Comparison], gate: &Gate) -> Vec<String> {
    let mut reasons = Vec::new();
    for (cmp, run) in comparisons.iter().zip(runs.iter().skip(1)) {
        match gate.fail_on {
            FailOn::Regression => {
                let n = cmp.count(Change::Regression);
                if n > 0 {
                    reasons.push(format!("{}: {n} case(s) regressed against {}", cmp.candidate, cmp.baseline));
                }
            }
            FailOn::Threshold => {
                let n = run.cases.iter().filter(|c| c.verdict.fails_suite()).count();
                if n > 0 {
                    reasons.push(format!("{}: {n} case(s) fail their thresholds", cmp.candidate));
                }
            }
            FailOn::Never => {}
        }
        for &(metric, limit) in &gate.max_drop {
            if let Some(d) = cmp.means.iter().find(|d| d.metric == metric) {
                let drop = d.base - d.cand;
                if drop > limit + 1e-12 {
                    reasons.push(format!(
                        "{}: the suite mean of {} dropped by {drop:.3} ({:.3} → {:.3}), more than the allowed {limit}",
                        cmp.candidate, metric, d.base, d.cand
                    ));
                }
            }
        }
    }
    reasons
}

/// Notes about a comparison as a whole, from the baseline's accepted snapshots: snapshots made by
/// another checkpoint, and a catalog that changed since they were accepted.
pub fn notes(base: &RunResult) -> Vec<String> {
    let mut notes = Vec::new();
    let states: Vec<_> = base.cases.iter().filter_map(|c| c.snapshot.as_ref()).collect();
    let mut models: BTreeSet<(String, String)> = BTreeSet::new();
    let mut catalogs: BTreeSet<String> = BTreeSet::new();
    for s in &states {
        if let (Some(m), Some(r)) = (&s.accepted_model, &s.accepted_revision) {
            if *m != base.model.model || *r != base.model.revision {
                models.insert((m.clone(), r.clone()));
            }
        }
        if let Some(c) = &s.accepted_catalog {
            catalogs.insert(c.clone());
        }
    }
    for (m, r) in models {
        notes.push(format!(
            "the accepted snapshots name {m} @ {r}, not the baseline {} @ {}: the baseline is the suite's [model]; snapshot differences are against what was accepted",
            base.model.model, base.model.revision
        ));
    }
    let now = format!("{} ({} items)", base.catalog.digest, base.catalog.items);
    for old in catalogs.into_iter().filter(|c| *c != now) {
        notes.push(format!(
            "the catalog changed since the snapshots were accepted ({old} then, {now} now): images were added, removed or edited, so rank changes against the snapshots may come from the catalog, not the model"
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_table() {
        use Verdict::*;
        let rows = [
            (Passed, Passed, Change::Unchanged),
            (Passed, Failed, Change::Regression),
            (Passed, Error, Change::Regression),
            (Failed, Error, Change::Regression),
            (KnownFailure, Error, Change::Regression),
            (Fixed, KnownFailure, Change::Regression),
            (Failed, Passed, Change::Fix),
            (KnownFailure, Fixed, Change::Fix),
            (Error, Passed, Change::Fix),
            (Error, Failed, Change::Changed),
            (Error, Error, Change::Unchanged),
            (Ignored, Passed, Change::NotCompared),
            (Passed, Ignored, Change::NotCompared),
        ];
        for (b, c, want) in rows {
            assert_eq!(change(b, c), want, "{b} → {c}");
        }
    }

    #[test]
    fn max_drop_parses_and_refuses() {
        assert_eq!(parse_max_drop("recall=0.02"), Ok((Metric::Recall, 0.02)));
        assert!(parse_max_drop("recal=0.02").unwrap_err().contains("unknown metric 'recal'"));
        assert!(parse_max_drop("recall").is_err());
        assert!(parse_max_drop("mrr=2").is_err());
    }
}
