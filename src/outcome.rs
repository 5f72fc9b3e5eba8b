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
    pub fn evaluate(case: &Case, catalog: &Catalog, items: &[Vec<f32>], query: &[f32], prior: &[String]) -> Outcome {
        let ids: Vec<&str> = catalog.items().iter().map(|it| it.id.as_str()).collect();
        let mut ranking = rank::rank(query, items, &ids);
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
