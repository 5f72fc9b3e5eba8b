//! Results as plain data: what one run of a suite on one checkpoint found.
//!
//! A [`RunResult`] is computed once (by [`crate::harness::Session::run`]) and rendered many times: the
//! terminal summary, `--json`, Markdown, snapshots and comparisons all read it; none of them re-ranks,
//! recomputes a metric or opens a model. It serialises to JSON at full precision and reads back, so a
//! report can be rendered again later from a results file alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::case::Case;
use crate::catalog::Catalog;
use crate::metrics::{self, Aggregate, Class, Metric, Metrics};
use crate::outcome::{Mark, Outcome};
use crate::verdict::Verdict;

/// The model a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// How the checkpoint was named (a directory or `hub-id@revision`).
    pub source: String,
    /// Hub id or directory.
    pub model: String,
    /// The revision asked for (`local` for a directory).
    pub revision: String,
    /// The preprocessing in words.
    pub preprocessing: String,
    /// Digests of the weights, configuration and tokenizer files.
    pub digest: String,
}

/// The catalog a run ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogInfo {
    /// The catalog root, as the suite names it.
    pub root: String,
    pub items: usize,
    /// SHA-256 over every item's id and image content: changes when an image is added, removed,
    /// renamed or edited.
    pub digest: String,
}

/// One ranked item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedItem {
    /// 1-based rank.
    pub rank: usize,
    pub id: String,
    /// The image file, relative to the catalog root, with `/`.
    pub file: String,
    pub score: f32,
    pub class: Class,
    /// The ✅/🟨/❌ mark of an expected item.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mark: Option<Mark>,
}

/// A case's ranking: the top `snapshot_top` items and every expected, yellow and red item wherever it
/// landed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// Items in the catalog.
    pub total: usize,
    /// The cut-off k splits a tie (or a near tie).
    pub tie_at_k: bool,
    /// The top `max(snapshot_top, k)` items.
    pub top: Vec<RankedItem>,
    /// Every expected, yellow and red item, by rank (neutral items only in `top`).
    pub classified: Vec<RankedItem>,
}

impl Ranking {
    /// The rank of item `id`, if it is in `top` or `classified`.
    pub fn rank_of(&self, id: &str) -> Option<usize> {
        self.classified.iter().chain(&self.top).find(|r| r.id == id).map(|r| r.rank)
    }

    /// The ids of the top `k`.
    pub fn top_ids(&self, k: usize) -> Vec<&str> {
        self.top.iter().take(k).map(|r| r.id.as_str()).collect()
    }
}

/// A threshold check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub metric: Metric,
    pub value: f64,
    /// As written: `> 0.3`, `>= 0.7`.
    pub threshold: String,
    pub passed: bool,
}

/// One case, judged (or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The test name (`colores/vestido-rojo`).
    pub name: String,
    /// The case file.
    pub file: String,
    pub verdict: Verdict,
    /// Why the case could not be loaded or judged.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The query text (`image <label>` for an image query).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub query: Option<String>,
    /// The query image, for an image query: a catalog id or a path under the cases directory.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub query_image: Option<String>,
    /// For a variant phrasing, the case it varies.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant_of: Option<String>,
    /// Catalog items left out of the ranking: an image query's own image and its copies.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub excluded: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub k: Option<usize>,
    /// Ranks shown in the snapshot.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot_top: Option<usize>,
    /// The groups its means count in: `area:<folder>` and `tag:<tag>`.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub known_failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ignore: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metrics: Option<Metrics>,
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ranking: Option<Ranking>,
    /// How the case's snapshot body compares with the accepted snapshot, and what that one's header
    /// says (set for judged cases).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot: Option<SnapshotState>,
}

/// A judged case against its accepted snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotState {
    /// `matches`, `changed` or `new`.
    pub status: SnapshotStatus,
    /// The accepted snapshot's header: model, revision and catalog (`sha256:… (n items)`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accepted_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accepted_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accepted_catalog: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    Matches,
    Changed,
    New,
}

impl CaseResult {
    /// A case that did not run (load error, judge error, or ignored): what the case file says, without
    /// results. `case` is `None` when the file itself did not load.
    pub fn without_outcome(
        name: &str,
        file: &str,
        case: Option<&Case>,
        verdict: Verdict,
        error: Option<String>,
    ) -> Self {
        CaseResult {
            name: name.to_string(),
            file: file.to_string(),
            verdict,
            error,
            query: case.map(|c| c.description.clone()),
            query_image: case.and_then(|c| c.query_image.as_ref()).map(|q| q.label.clone()),
            variant_of: case.and_then(|c| c.variant_of.clone()),
            excluded: Vec::new(),
            k: case.map(|c| c.k),
            snapshot_top: case.map(|c| c.snapshot_top),
            groups: case.map(groups_of).unwrap_or_default(),
            known_failure: case.and_then(|c| c.known_failure.clone()),
            ignore: case.and_then(|c| c.ignore.clone()),
            metrics: None,
            checks: Vec::new(),
            ranking: None,
            snapshot: None,
        }
    }

    /// A case that ran.
    pub fn judged(file: &str, case: &Case, catalog: &Catalog, outcome: &Outcome, verdict: Verdict) -> Self {
        let marks = outcome.marks();
        let item = |pos: usize| {
            let r = &outcome.ranking[pos];
            let it = &catalog.items()[r.item];
            let rel = it.path.strip_prefix(&catalog.root).unwrap_or(&it.path);
            RankedItem {
                rank: pos + 1,
                id: it.id.clone(),
                file: rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
                score: r.score,
                class: outcome.ranked_classes[pos],
                mark: marks[pos],
            }
        };
        // The top k too, when k is larger than the snapshot's top: comparisons need it.
        let top = case.snapshot_top.max(case.k).min(outcome.ranking.len());
        let ranking = Ranking {
            total: outcome.ranking.len(),
            tie_at_k: outcome.tie_at_k,
            top: (0..top).map(item).collect(),
            classified: (0..outcome.ranking.len())
                .filter(|&p| outcome.ranked_classes[p] != Class::Neutral)
                .map(item)
                .collect(),
        };
        CaseResult {
            verdict,
            metrics: Some(outcome.metrics.clone()),
            checks: outcome
                .checks
                .iter()
                .map(|c| CheckResult {
                    metric: c.metric,
                    value: c.value,
                    threshold: c.threshold.to_string(),
                    passed: c.passed,
                })
                .collect(),
            ranking: Some(ranking),
            ..CaseResult::without_outcome(&case.name, file, Some(case), verdict, None)
        }
    }

    /// The first expected item's rank (1 / mrr).
    pub fn first_expected_rank(&self) -> Option<usize> {
        self.ranking.as_ref()?.classified.iter().find(|r| r.class == Class::Expected).map(|r| r.rank)
    }
}

/// The groups a case's means are reported under: its area folder and `tag:` + each of its tags.
pub fn groups_of(case: &Case) -> Vec<String> {
    let mut g: Vec<String> = case.area().map(|a| format!("area:{a}")).into_iter().collect();
    g.extend(case.tags.iter().map(|t| format!("tag:{t}")));
    g
}

/// One run of a suite on one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The checkpoint's name in the registry, or its source.
    pub name: String,
    pub model: ModelInfo,
    pub catalog: CatalogInfo,
    pub cases: Vec<CaseResult>,
    /// How many cases got each verdict.
    pub counts: BTreeMap<Verdict, usize>,
    /// Means of every metric over the judged cases.
    pub means: Aggregate,
    /// The same per group (`area:<folder>`, `tag:<tag>`).
    pub group_means: BTreeMap<String, Aggregate>,
    /// Texts the model's context length cuts short (they are embedded truncated).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The training settings the checkpoints registry records for this checkpoint.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

impl RunResult {
    /// Gathers case results into a run, computing the counts and means once.
    pub fn new(
        name: String,
        model: ModelInfo,
        catalog: CatalogInfo,
        cases: Vec<CaseResult>,
        warnings: Vec<String>,
    ) -> Self {
        let mut counts: BTreeMap<Verdict, usize> = Verdict::ALL.into_iter().map(|v| (v, 0)).collect();
        for c in &cases {
            *counts.entry(c.verdict).or_default() += 1;
        }
        let (means, group_means) =
            metrics::aggregate(cases.iter().filter_map(|c| c.metrics.as_ref().map(|m| (c.groups.clone(), m))));
        RunResult { name, model, catalog, cases, counts, means, group_means, warnings, settings: BTreeMap::new() }
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.counts.get(&verdict).copied().unwrap_or(0)
    }

    /// Whether the suite passed: no case failed, errored or is a fixed known failure.
    pub fn passed(&self) -> bool {
        !self.cases.iter().any(|c| c.verdict.fails_suite())
    }

    /// The case named `name`.
    pub fn case(&self, name: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.name == name)
    }
}

/// A metric's value in a case, if it was judged.
pub fn metric_of(case: &CaseResult, metric: Metric) -> Option<f64> {
    case.metrics.as_ref().map(|m| m.get(metric))
}
