//! The results file (`--json`): every run's results at full precision, the comparisons between them,
//! and a convention manifest, so that a file read years later still says how each number was computed.
//!
//! A [`Document`] is the only input the Markdown and HTML reports need: they can be rendered again from
//! a results file without a model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compare::Comparison;
use crate::pairs::PairReport;
use crate::result::RunResult;

/// How the numbers in a results file were computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The fitcheck version that wrote the file.
    pub fitcheck: String,
    /// Results file format version.
    pub format: u32,
    pub similarity: String,
    pub tie_rule: String,
    /// Scores closer than this are tied for ordering.
    pub near_tie: f32,
    /// The suite's default cut-off (each case states its own `k` in its results).
    pub default_k: usize,
    pub precision_denominator: String,
    /// nDCG gain per class.
    pub ndcg_gains: BTreeMap<String, u32>,
    pub red_when_unlisted: String,
    /// Each metric's definition.
    pub metrics: BTreeMap<String, String>,
    pub marks: BTreeMap<String, String>,
    /// How comparisons test significance.
    pub statistics: String,
}

impl Manifest {
    /// The conventions of this version of fitcheck, for a suite whose default k is `default_k`.
    pub fn current(default_k: usize) -> Manifest {
        let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Manifest {
            fitcheck: env!("CARGO_PKG_VERSION").to_string(),
            format: 1,
            similarity: "cosine of L2-normalised embeddings; every catalog item is ranked".into(),
            tie_rule: "score descending; equal scores by item id descending (as trec_eval); scores within near_tie keep the order of an accepted snapshot made by the same checkpoint".into(),
            near_tie: crate::rank::NEAR_TIE,
            default_k,
            precision_denominator: "k, even when the catalog has fewer than k items".into(),
            ndcg_gains: [("expected", 2), ("yellow", 1), ("red", 0), ("neutral", 0)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            red_when_unlisted: "when a case lists no red_flags, every item neither expected nor yellow is red".into(),
            metrics: map(&[
                ("mrr", "1 / rank of the first expected item (no cut-off)"),
                ("recall", "|expected in top k| / |expected|"),
                ("precision", "|(expected or yellow) in top k| / k"),
                ("precision_strict", "|expected in top k| / k"),
                ("accuracy", "share of expected items ranked above every red item"),
                ("accuracy_strict", "share of expected items ranked above every red and every yellow item"),
                ("hit", "1 if some expected item is in the top k"),
                ("ndcg", "nDCG at k with linear gains (expected 2, yellow 1), ideal ranking over expected and yellow"),
                ("red", "number of red items in the top k"),
            ]),
            marks: map(&[
                ("clear", "✅ above every red and every yellow item"),
                ("yellow", "🟨 above every red item, not above every yellow one"),
                ("red", "❌ some red item ranks above it"),
            ]),
            statistics: crate::compare::STATISTICS.into(),
        }
    }
}

/// One checkpoint's pair-mode table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedPairs {
    /// The run's name.
    pub name: String,
    pub report: PairReport,
}

/// A results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub manifest: Manifest,
    /// One run per checkpoint; in a comparison the first is the baseline.
    pub runs: Vec<RunResult>,
    /// Each candidate against the baseline (empty for `fitcheck run`).
    #[serde(default)]
    pub comparisons: Vec<Comparison>,
    /// Warnings about the comparison as a whole (catalog changed, accepted snapshots of another model).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The checkpoints' pair-mode tables, in run order, when the suite names a pairs file.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub pairs: Vec<NamedPairs>,
}

impl Document {
    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialise") + "\n"
    }
}
