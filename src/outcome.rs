//! The outcome of one case: its ranking, classes, metrics and threshold checks, computed purely from
//! embeddings. Everything that prints a case (failure messages, snapshots, summaries) reads an
//! [`Outcome`]; nothing here prints.

use crate::case::Case;
use crate::catalog::Catalog;
use crate::metrics::{self, Class, Metrics};
use crate::rank::{self, Ranked};
use crate::threshold::Check;

/// How an expected item fared, as the users' scripts marked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// ✅ above every red and every yellow item.
    Clear,
    /// 🟨 above every red item, not above every yellow one.
    Yellow,
    /// ❌ some red item ranks above it.
    Red,
}

impl Mark {
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Clear => "✅",
            Mark::Yellow => "🟨",
            Mark::Red => "❌",
        }
    }
}

/// One case, judged.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ranking: Vec<Ranked>,
    /// The class of each ranked item, in rank order.
    pub ranked_classes: Vec<Class>,
    pub metrics: Metrics,
    pub checks: Vec<Check>,
    /// The cut-off splits a run of equal scores.
    pub tie_at_k: bool,
}

impl Outcome {
    /// Ranks the catalog (`items[i]` = normalised embedding of catalog item `i`) against `query`.
    /// `prior` is the order of a previous ranking (item ids, best first; the accepted snapshot's): near
    /// ties keep that order (see [`rank::stabilize`]).
    /// Items marked in `excluded` (the query image and its duplicates) are left out of the ranking.
    pub fn evaluate(
        case: &Case,
        catalog: &Catalog,
        items: &[Vec<f32>],
        query: &[f32],
        prior: &[String],
        excluded: &[bool],
    ) -> Outcome {
        let ids: Vec<&str> = catalog.items().iter().map(|it| it.id.as_str()).collect();
        let mut ranking = rank::rank(query, items, &ids);
        ranking.retain(|r| !excluded.get(r.item).copied().unwrap_or(false));
        if !prior.is_empty() {
            let position: std::collections::HashMap<&str, usize> =
                prior.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
            rank::stabilize(&mut ranking, |item| position.get(ids[item]).copied());
        }
        let ranked_classes: Vec<Class> = ranking.iter().map(|r| case.classes[r.item]).collect();
        let metrics = metrics::compute(&ranked_classes, case.k);
        let checks = case.thresholds.check(&metrics);
        let tie_at_k = rank::tie_at_cutoff(&ranking, case.k);
        Outcome { ranking, ranked_classes, metrics, checks, tie_at_k }
    }

    /// Whether every threshold passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The mark of each expected item, by rank position (`None` for other classes).
    pub fn marks(&self) -> Vec<Option<Mark>> {
        let first = |pred: fn(Class) -> bool| self.ranked_classes.iter().position(|&c| pred(c));
        let first_red = first(|c| c == Class::Red).unwrap_or(usize::MAX);
        let first_yellow = first(|c| c == Class::Yellow).unwrap_or(usize::MAX);
        self.ranked_classes
            .iter()
            .enumerate()
            .map(|(pos, &c)| {
                let mark = if pos > first_red {
                    Mark::Red
                } else if pos > first_yellow {
                    Mark::Yellow
                } else {
                    Mark::Clear
                };
                (c == Class::Expected).then_some(mark)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::Ranked;

    fn marks_of(classes: &[Class]) -> Vec<Option<Mark>> {
        let outcome = Outcome {
            ranking: (0..classes.len()).map(|i| Ranked { item: i, score: 0.0 }).collect(),
            ranked_classes: classes.to_vec(),
            metrics: metrics::compute(classes, 1),
            checks: Vec::new(),
            tie_at_k: false,
        };
        outcome.marks()
    }

    #[test]
    fn marks_of_every_class_arrangement() {
        use Class::{Expected as E, Neutral as N, Red as R, Yellow as Y};
        use Mark::{Clear as C, Red as X, Yellow as W};
        let table: [(&[Class], &[Option<Mark>]); 8] = [
            // Above everything: clear.
            (&[E, E, R], &[Some(C), Some(C), None]),
            // Below a yellow item only: yellow; below a red item: red, whatever else is above.
            (&[Y, E], &[None, Some(W)]),
            (&[R, E], &[None, Some(X)]),
            (&[Y, R, E], &[None, None, Some(X)]),
            (&[R, Y, E], &[None, None, Some(X)]),
            // Neutral items never count.
            (&[N, E, N], &[None, Some(C), None]),
            // One ranking with all three marks.
            (&[E, Y, E, R, E], &[Some(C), None, Some(W), None, Some(X)]),
            // No red or yellow item at all: every expected item is clear.
            (&[N, E, N, E], &[None, Some(C), None, Some(C)]),
        ];
        for (classes, want) in table {
            assert_eq!(marks_of(classes), want, "{classes:?}");
        }
    }
}
