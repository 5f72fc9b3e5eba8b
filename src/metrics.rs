//! Ranking metrics, as pure functions of the classes of a ranking.
//!
//! The conventions are fixed (see the README's metric table): E = expected, Y = yellow flags (acceptable
//! look-alikes), R = red flags; every catalog item is ranked, k is the case's cut-off.
//! - `mrr` = 1 / rank of the first E item (no cut-off);
//! - `recall@k` = |E ∩ top k| / |E|;
//! - `precision@k` = |(E ∪ Y) ∩ top k| / k, and `precision_strict@k` = |E ∩ top k| / k (divided by k even
//!   when the catalog has fewer than k items, as trec_eval does);
//! - `accuracy` = share of E ranked above every R item; `accuracy_strict` = above every R and every Y item;
//! - `hit@k` = 1 when some E item is in the top k;
//! - `ndcg@k` with linear gains E = 2, Y = 1, others 0, discount 1 / log2(rank + 1), ideal over E ∪ Y;
//! - `red@k` = the number of R items in the top k.
//!
//! Values keep full precision; rounding is for display only.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The role an item plays in one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Expected,
    Yellow,
    Red,
    /// Neither expected nor flagged: only possible when the case lists its red flags explicitly.
    Neutral,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Expected => "expected",
            Class::Yellow => "yellow",
            Class::Red => "red",
            Class::Neutral => "neutral",
        }
    }
}

/// A metric's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Mrr,
    Recall,
    Precision,
    PrecisionStrict,
    Accuracy,
    AccuracyStrict,
    Hit,
    Ndcg,
    Red,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Metric::Mrr,
        Metric::Recall,
        Metric::Precision,
        Metric::PrecisionStrict,
        Metric::Accuracy,
        Metric::AccuracyStrict,
        Metric::Hit,
        Metric::Ndcg,
        Metric::Red,
    ];

    /// The key used in case and suite files.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Mrr => "mrr",
            Metric::Recall => "recall",
            Metric::Precision => "precision",
            Metric::PrecisionStrict => "precision_strict",
            Metric::Accuracy => "accuracy",
            Metric::AccuracyStrict => "accuracy_strict",
            Metric::Hit => "hit",
            Metric::Ndcg => "ndcg",
            Metric::Red => "red",
        }
    }

    pub fn from_key(key: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.key() == key)
    }

    /// Whether the metric depends on the cut-off k.
    pub fn at_k(self) -> bool {
        matches!(
            self,
            Metric::Recall | Metric::Precision | Metric::PrecisionStrict | Metric::Hit | Metric::Ndcg | Metric::Red
        )
    }

    /// The display label: `recall@5`, `mrr`.
    pub fn label(self, k: usize) -> String {
        if self.at_k() {
            format!("{}@{k}", self.key())
        } else {
            self.key().to_string()
        }
    }
}

/// Every metric of one ranking. Serialised as a map: `{"k": 5, "mrr": 1.0, "recall": 0.5, ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "BTreeMap<String, f64>", try_from = "BTreeMap<String, f64>")]
pub struct Metrics {
    pub k: usize,
    values: [f64; 9],
}

impl Metrics {
    pub fn get(&self, metric: Metric) -> f64 {
        self.values[metric as usize]
    }

    /// `(metric, value)` pairs in display order.
    pub fn iter(&self) -> impl Iterator<Item = (Metric, f64)> + '_ {
        Metric::ALL.into_iter().map(|m| (m, self.get(m)))
    }
}

impl From<Metrics> for BTreeMap<String, f64> {
    fn from(m: Metrics) -> Self {
        let mut map: BTreeMap<String, f64> = m.iter().map(|(k, v)| (k.key().to_string(), v)).collect();
        map.insert("k".into(), m.k as f64);
        map
    }
}

impl TryFrom<BTreeMap<String, f64>> for Metrics {
    type Error = String;

    fn try_from(map: BTreeMap<String, f64>) -> Result<Self, String> {
        let k = map.get("k").copied().ok_or("metrics without 'k'")?;
        let mut values = [0.0; 9];
        for m in Metric::ALL {
            values[m as usize] = *map.get(m.key()).ok_or_else(|| format!("metrics without '{}'", m.key()))?;
        }
        Ok(Metrics { k: k as usize, values })
    }
}

/// Computes every metric from the classes of the ranked items, best first, at cut-off `k` (k ≥ 1).
/// A ranking without any expected item gets zeros (cases are validated to have one).
pub fn compute(ranked: &[Class], k: usize) -> Metrics {
    assert!(k >= 1, "k is validated to be at least 1");
    let count = |slice: &[Class], c: Class| slice.iter().filter(|&&x| x == c).count();
    let n_expected = count(ranked, Class::Expected);
    let n_yellow = count(ranked, Class::Yellow);
    let top = &ranked[..k.min(ranked.len())];
    let e_top = count(top, Class::Expected);
    let y_top = count(top, Class::Yellow);

    let first = |pred: &dyn Fn(Class) -> bool| ranked.iter().position(|&c| pred(c)).unwrap_or(ranked.len());
    let first_expected = first(&|c| c == Class::Expected);
    let first_red = first(&|c| c == Class::Red);
    let first_red_or_yellow = first(&|c| c == Class::Red || c == Class::Yellow);
    let expected_before = |limit: usize| count(&ranked[..limit], Class::Expected);

    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let gain = |c: Class| match c {
        Class::Expected => 2.0,
        Class::Yellow => 1.0,
        _ => 0.0,
    };
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = top.iter().enumerate().map(|(i, &c)| gain(c) * discount(i)).sum();
    let ideal = std::iter::repeat_n(2.0, n_expected).chain(std::iter::repeat_n(1.0, n_yellow));
    let idcg: f64 = ideal.take(k).enumerate().map(|(i, g)| g * discount(i)).sum();

    let mut values = [0.0; 9];
    values[Metric::Mrr as usize] = if first_expected < ranked.len() { 1.0 / (first_expected + 1) as f64 } else { 0.0 };
    values[Metric::Recall as usize] = ratio(e_top, n_expected);
    values[Metric::Precision as usize] = ratio(e_top + y_top, k);
    values[Metric::PrecisionStrict as usize] = ratio(e_top, k);
    values[Metric::Accuracy as usize] = ratio(expected_before(first_red), n_expected);
    values[Metric::AccuracyStrict as usize] = ratio(expected_before(first_red_or_yellow), n_expected);
    values[Metric::Hit as usize] = if e_top > 0 { 1.0 } else { 0.0 };
    values[Metric::Ndcg as usize] = if idcg > 0.0 { dcg / idcg } else { 0.0 };
    values[Metric::Red as usize] = count(top, Class::Red) as f64;
    Metrics { k, values }
}

/// The mean of each metric over a group of cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub cases: usize,
    pub means: BTreeMap<Metric, f64>,
}

/// Means over all cases, then per group (area folder or tag). `cases` yields (groups, metrics).
pub fn aggregate<'a>(
    cases: impl IntoIterator<Item = (Vec<String>, &'a Metrics)>,
) -> (Aggregate, BTreeMap<String, Aggregate>) {
    let mut all: Vec<&Metrics> = Vec::new();
    let mut groups: BTreeMap<String, Vec<&Metrics>> = BTreeMap::new();
    for (names, metrics) in cases {
        all.push(metrics);
        for name in names {
            groups.entry(name).or_default().push(metrics);
        }
    }
    let mean = |ms: &[&Metrics]| Aggregate {
        cases: ms.len(),
        means: Metric::ALL
            .into_iter()
            .map(|m| (m, ms.iter().map(|x| x.get(m)).sum::<f64>() / ms.len().max(1) as f64))
            .collect(),
    };
    let groups = groups.into_iter().map(|(k, v)| (k, mean(&v))).collect();
    (mean(&all), groups)
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::Class::{Expected as E, Neutral as N, Red as R, Yellow as Y};
    use super::*;

    /// Expected values, worked out by hand, in the order mrr, recall, precision, precision_strict,
    /// accuracy, accuracy_strict, hit, ndcg, red.
    struct Check {
        name: &'static str,
        ranked: &'static [Class],
        k: usize,
        want: [f64; 9],
    }

    const L2: f64 = std::f64::consts::LN_2;
    fn d(rank: usize) -> f64 {
        // 1 / log2(rank + 1)
        L2 / ((rank + 1) as f64).ln()
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        let checks = [
            Check {
                // The seed's example: 2 of 3 expected in the top 5.
                name: "two of three expected in the top five",
                ranked: &[E, R, E, R, R, E, R],
                k: 5,
                // ndcg: dcg = 2/1 + 2/log2(4) = 3; ideal = 2 + 2/log2(3) + 2/log2(4).
                want: [1.0, 2.0 / 3.0, 0.4, 0.4, 1.0 / 3.0, 1.0 / 3.0, 1.0, 3.0 / (2.0 + 2.0 * d(2) + 1.0), 3.0],
            },
            Check {
                name: "one expected item at rank 3",
                ranked: &[R, Y, E, R],
                k: 2,
                // Top 2: R, Y. The one E is below a red: accuracy 0. ndcg: dcg = 1/log2(3), ideal = 2 + 1/log2(3).
                want: [1.0 / 3.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, d(2) / (2.0 + d(2)), 1.0],
            },
            Check {
                name: "every expected item ranked last",
                ranked: &[R, R, R, E, E],
                k: 3,
                want: [0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0],
            },
            Check {
                name: "yellow items interleaved",
                ranked: &[E, Y, E, Y, R, E],
                k: 4,
                // accuracy: all three E... no: the third E (rank 6) is below the red at 5 → 2/3.
                // accuracy_strict: only the first E is above every Y and R → 1/3.
                // dcg = 2 + 1/log2(3) + 2/log2(4) + 1/log2(5); ideal = 2 + 2/log2(3) + 2/log2(4) + 1/log2(5).
                want: [
                    1.0,
                    2.0 / 3.0,
                    1.0,
                    0.5,
                    2.0 / 3.0,
                    1.0 / 3.0,
                    1.0,
                    (2.0 + d(2) + 2.0 * d(3) + d(4)) / (2.0 + 2.0 * d(2) + 2.0 * d(3) + d(4)),
                    0.0,
                ],
            },
            Check {
                name: "k larger than the catalog",
                ranked: &[Y, E, R],
                k: 5,
                // precision divides by k = 5, not by the 3 items ranked.
                want: [0.5, 1.0, 0.4, 0.2, 1.0, 0.0, 1.0, (1.0 + 2.0 * d(2)) / (2.0 + d(2)), 1.0],
            },
            Check {
                name: "neutral items are neither good nor red",
                ranked: &[N, E, N, E],
                k: 2,
                want: [0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 2.0 * d(2) / (2.0 + 2.0 * d(2)), 0.0],
            },
            Check {
                name: "a perfect ranking",
                ranked: &[E, E, Y, R],
                k: 3,
                want: [1.0, 1.0, 1.0, 2.0 / 3.0, 1.0, 1.0, 1.0, 1.0, 0.0],
            },
        ];
        for check in checks {
            let m = compute(check.ranked, check.k);
            for (metric, want) in Metric::ALL.into_iter().zip(check.want) {
                let got = m.get(metric);
                assert!((got - want).abs() < 1e-12, "{}: {metric} = {got}, want {want}", check.name);
            }
        }
    }

    #[test]
    fn aggregates_are_means_per_group() {
        let a = compute(&[E, R], 1); // mrr 1, recall 1
        let b = compute(&[R, E], 1); // mrr 0.5, recall 0
        let c = compute(&[R, R, R, E], 1); // mrr 0.25, recall 0
        let (all, groups) = aggregate([
            (vec!["colores".to_string()], &a),
            (vec!["colores".to_string(), "tag:jean".to_string()], &b),
            (vec!["prendas".to_string(), "tag:jean".to_string()], &c),
        ]);
        assert_eq!(all.cases, 3);
        assert_eq!(all.means[&Metric::Mrr], (1.0 + 0.5 + 0.25) / 3.0);
        assert_eq!(all.means[&Metric::Recall], 1.0 / 3.0);
        assert_eq!(groups["colores"].means[&Metric::Mrr], 0.75);
        assert_eq!(groups["tag:jean"].means[&Metric::Mrr], 0.375);
        assert_eq!(groups["prendas"].cases, 1);
    }
}
