//! Human-readable renderings of one run: a case's metrics and marked ranking (the snapshot body, and the
//! failure message, which adds scores), the terminal summary and its Markdown twin.
//!
//! Every function here reads a [`RunResult`] or [`CaseResult`] and returns text: nothing ranks, computes a
//! metric or opens a model. Output is normalised for review: no absolute paths, no timings, metric values
//! to three decimals.
//!
//! The snapshot body carries no scores: across checkpoints every score moves, and a diff of every row
//! would hide what matters (which items moved, which metrics changed). Ranks are stable against float
//! noise because near ties keep the accepted order ([`crate::rank::stabilize`]). Scores are in failure
//! messages, in `--json` and in the HTML report.

use std::fmt::Write;

use crate::metrics::{Aggregate, Class, Metric, Metrics};
use crate::result::{CaseResult, CheckResult, RankedItem, RunResult};
use crate::verdict::Verdict;

/// The body of a case's snapshot: query, metrics against thresholds, the marked top of the ranking and
/// where the expected items below it ended up, without scores.
pub fn snapshot_body(case: &CaseResult) -> String {
    case_text(case, false)
}

/// The same with every item's score: what a failing case prints.
pub fn case_report(case: &CaseResult) -> String {
    case_text(case, true)
}

fn case_text(case: &CaseResult, scores: bool) -> String {
    let mut s = String::new();
    writeln!(s, "query: {}", case.query.as_deref().unwrap_or("")).unwrap();
    let (Some(metrics), Some(ranking)) = (&case.metrics, &case.ranking) else {
        if let Some(e) = &case.error {
            writeln!(s, "error: {e}").unwrap();
        }
        return s;
    };
    writeln!(s, "k: {}", metrics.k).unwrap();
    if !case.excluded.is_empty() {
        writeln!(s, "left out (the query image and copies of it): {}", case.excluded.join(", ")).unwrap();
    }
    writeln!(s).unwrap();
    s.push_str(&metrics_table(metrics, &case.checks));
    if ranking.tie_at_k {
        let k = metrics.k;
        writeln!(s, "note: ranks {k} and {} are tied (scores within 0.00001): the cut-off k = {k} splits a tie", k + 1)
            .unwrap();
    }
    writeln!(s).unwrap();
    let row = |s: &mut String, r: &RankedItem| {
        let mark = r.mark.map_or("·", |m| m.symbol());
        let class = r.class.name();
        if scores {
            writeln!(s, "{:>4}  {:>6.3}  {mark}  {class:<8}  {}", r.rank, r.score, r.id).unwrap();
        } else {
            writeln!(s, "{:>4}  {mark}  {class:<8}  {}", r.rank, r.id).unwrap();
        }
    };
    let top = case.snapshot_top.unwrap_or(ranking.top.len()).min(ranking.top.len());
    writeln!(s, "ranking (top {top} of {}):", ranking.total).unwrap();
    if scores {
        writeln!(s, "rank   score  mark class     item").unwrap();
    } else {
        writeln!(s, "rank  mark class     item").unwrap();
    }
    for r in &ranking.top[..top] {
        row(&mut s, r);
    }
    let below: Vec<&RankedItem> =
        ranking.classified.iter().filter(|r| r.rank > top && r.class == Class::Expected).collect();
    if !below.is_empty() {
        writeln!(s, "expected items below rank {top}:").unwrap();
        for r in below {
            row(&mut s, r);
        }
    }
    s
}

/// Every metric, with its threshold and verdict where it has one.
pub fn metrics_table(metrics: &Metrics, checks: &[CheckResult]) -> String {
    let mut s = String::new();
    for (metric, value) in metrics.iter() {
        let label = metric.label(metrics.k);
        let value = fmt_value(metric, value);
        match checks.iter().find(|c| c.metric == metric) {
            Some(c) => {
                let verdict = if c.passed { "ok" } else { "FAIL" };
                writeln!(s, "{label:<20} {value:>6}  {:<7} {verdict}", c.threshold).unwrap()
            }
            None => writeln!(s, "{label:<20} {value:>6}").unwrap(),
        }
    }
    s
}

/// A metric value as shown: three decimals, counts as integers.
pub fn fmt_value(metric: Metric, value: f64) -> String {
    if metric == Metric::Red {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// The one-line reason a case failed: every failing threshold.
pub fn failed_checks(checks: &[CheckResult], k: usize) -> String {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} = {:.3} (needs {})", c.metric.label(k), c.value, c.threshold))
        .collect();
    format!("{} of {} thresholds failed: {}", failed.len(), checks.len(), failed.join(", "))
}

/// The metrics the summaries show, in order.
pub const SUMMARY_METRICS: [Metric; 6] =
    [Metric::Mrr, Metric::Recall, Metric::Precision, Metric::Accuracy, Metric::AccuracyStrict, Metric::Ndcg];

/// A column heading of at most ten characters.
pub fn short_label(m: Metric) -> &'static str {
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

/// One line counting the verdicts.
pub fn counts_line(run: &RunResult) -> String {
    let c = |v: Verdict| run.count(v);
    format!(
        "{} cases: {} passed, {} failed, {} known failures, {} fixed known failures, {} ignored, {} errors",
        run.cases.len(),
        c(Verdict::Passed),
        c(Verdict::Failed),
        c(Verdict::KnownFailure),
        c(Verdict::Fixed),
        c(Verdict::Ignored),
        c(Verdict::Error)
    )
}

/// The model line: `model: <id> @ <revision> (<preprocessing>)`.
pub fn model_line(run: &RunResult) -> String {
    format!("model: {} @ {} ({})", run.model.model, run.model.revision, run.model.preprocessing)
}

/// `fitcheck run`'s report: the per-case table, the means overall, per area and per tag, the counts,
/// and every error and warning in full.
pub fn summary(run: &RunResult) -> String {
    let mut s = format!("{}\ncatalog: {} ({} items)\n\n", model_line(run), run.catalog.root, run.catalog.items);
    let width = run.cases.iter().map(|c| c.name.chars().count()).max().unwrap_or(4).max(24);
    let header = |s: &mut String, first: &str| {
        write!(s, "{first:<width$}").unwrap();
        for m in SUMMARY_METRICS {
            write!(s, " {:>10}", short_label(m)).unwrap();
        }
    };
    header(&mut s, "case");
    writeln!(s, "  status").unwrap();
    for case in &run.cases {
        write!(s, "{:<width$}", case.name).unwrap();
        for m in SUMMARY_METRICS {
            match &case.metrics {
                Some(metrics) => write!(s, " {:>10.3}", metrics.get(m)).unwrap(),
                None => write!(s, " {:>10}", "-").unwrap(),
            }
        }
        writeln!(s, "  {}", case.verdict.label()).unwrap();
    }
    let (all, groups) = (&run.means, &run.group_means);
    writeln!(s).unwrap();
    header(&mut s, "mean over");
    writeln!(s, "  cases").unwrap();
    let mean_row = |s: &mut String, name: &str, agg: &Aggregate| {
        write!(s, "{name:<width$}").unwrap();
        for m in SUMMARY_METRICS {
            write!(s, " {:>10.3}", agg.means[&m]).unwrap();
        }
        writeln!(s, "  {}", agg.cases).unwrap();
    };
    mean_row(&mut s, "suite", all);
    for (name, agg) in groups {
        mean_row(&mut s, name, agg);
    }
    writeln!(s, "\n{}", counts_line(run)).unwrap();
    for case in &run.cases {
        if let Some(e) = &case.error {
            writeln!(s, "error: {}: {e}", case.name).unwrap();
        }
    }
    for w in &run.warnings {
        writeln!(s, "warning: {w}").unwrap();
    }
    s
}

/// Escapes text for a Markdown table cell.
pub fn md_cell(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;").replace('\n', " ")
}

/// `fitcheck run --markdown`: the same report as GitHub-flavoured Markdown, failing cases first.
pub fn markdown(run: &RunResult) -> String {
    let mut s = String::new();
    let icon = if run.passed() { "✅" } else { "❌" };
    writeln!(s, "## {icon} fitcheck: `{}` @ `{}`\n", md_cell(&run.model.model), md_cell(&run.model.revision)).unwrap();
    writeln!(s, "{}\n", counts_line(run)).unwrap();
    writeln!(
        s,
        "Preprocessing: {}. Catalog: `{}` ({} items, `{}`).\n",
        md_cell(&run.model.preprocessing),
        md_cell(&run.catalog.root),
        run.catalog.items,
        run.catalog.digest
    )
    .unwrap();
    let mut order: Vec<&CaseResult> = run.cases.iter().collect();
    order.sort_by_key(|c| (!c.verdict.fails_suite(), c.verdict == Verdict::KnownFailure, c.name.clone()));
    let head = |s: &mut String, first: &str, last: &str| {
        write!(s, "| {first} |").unwrap();
        for m in SUMMARY_METRICS {
            write!(s, " {} |", short_label(m)).unwrap();
        }
        writeln!(s, " {last} |").unwrap();
        write!(s, "| --- |").unwrap();
        for _ in SUMMARY_METRICS {
            write!(s, " ---: |").unwrap();
        }
        writeln!(s, " --- |").unwrap();
    };
    let failing: Vec<&&CaseResult> = order.iter().filter(|c| c.verdict.fails_suite()).collect();
    if !failing.is_empty() {
        writeln!(s, "### Failing cases\n").unwrap();
        for c in failing {
            let why = match (&c.error, c.verdict) {
                (Some(e), _) => md_cell(e),
                (None, Verdict::Fixed) => "passes now: remove its `known_failure` line".into(),
                (None, _) => md_cell(&failed_checks(&c.checks, c.k.unwrap_or(0))),
            };
            writeln!(s, "- **{}** ({}): {why}", md_cell(&c.name), c.verdict.label()).unwrap();
        }
        writeln!(s).unwrap();
    }
    writeln!(s, "<details><summary>Every case</summary>\n").unwrap();
    head(&mut s, "case", "status");
    for c in &order {
        write!(s, "| {} |", md_cell(&c.name)).unwrap();
        for m in SUMMARY_METRICS {
            match &c.metrics {
                Some(metrics) => write!(s, " {:.3} |", metrics.get(m)).unwrap(),
                None => write!(s, " - |").unwrap(),
            }
        }
        writeln!(s, " {} |", c.verdict.label()).unwrap();
    }
    writeln!(s, "\n</details>\n").unwrap();
    writeln!(s, "### Means\n").unwrap();
    head(&mut s, "over", "cases");
    for (name, agg) in
        std::iter::once(("suite".to_string(), &run.means)).chain(run.group_means.iter().map(|(k, v)| (k.clone(), v)))
    {
        write!(s, "| {} |", md_cell(&name)).unwrap();
        for m in SUMMARY_METRICS {
            write!(s, " {:.3} |", agg.means[&m]).unwrap();
        }
        writeln!(s, " {} |", agg.cases).unwrap();
    }
    if !run.warnings.is_empty() {
        writeln!(s, "\n### Warnings\n").unwrap();
        for w in &run.warnings {
            writeln!(s, "- {}", md_cell(w)).unwrap();
        }
    }
    s
}
