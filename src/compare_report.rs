//! Renderings of a comparison ([`Document`] with several runs): the terminal report and its Markdown
//! twin (for `$GITHUB_STEP_SUMMARY` and pull-request bodies). Leaves: they read results, never compute
//! them.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::compare::{CaseChange, Change, Comparison, Movement, RankMove};
use crate::document::Document;
use crate::metrics::{Aggregate, Metric};
use crate::report::{fmt_value, md_cell, short_label, SUMMARY_METRICS};
use crate::result::RunResult;
use crate::verdict::Verdict;

fn fmt_rank(r: Option<usize>) -> String {
    r.map_or_else(|| "-".into(), |r| r.to_string())
}

fn moves(list: &[RankMove], k: usize, in_top: bool) -> String {
    list.iter()
        .map(|m| {
            let rank = if in_top { m.to } else { m.from };
            let other = if in_top { m.from } else { m.to };
            match other {
                Some(o) if o > k || !in_top => format!("{} ({} → {})", m.id, fmt_rank(m.from), fmt_rank(m.to)),
                Some(_) | None => format!("{} ({})", m.id, fmt_rank(rank)),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What moved in a case, as short lines a reviewer scans.
pub fn movement_lines(m: &Movement) -> Vec<String> {
    let mut lines = Vec::new();
    if m.first_expected.0 != m.first_expected.1 {
        lines.push(format!(
            "first expected item: rank {} → {}",
            fmt_rank(m.first_expected.0),
            fmt_rank(m.first_expected.1)
        ));
    }
    if !m.red_entered.is_empty() {
        lines.push(format!("red items now in the top {}: {}", m.k, moves(&m.red_entered, m.k, true)));
    }
    if !m.expected.is_empty() {
        let list: Vec<String> =
            m.expected.iter().map(|e| format!("{} {} → {}", e.id, fmt_rank(e.from), fmt_rank(e.to))).collect();
        lines.push(format!("expected items moved: {}", list.join(", ")));
    }
    let others: Vec<RankMove> = m.entered.iter().filter(|e| !m.red_entered.contains(e)).cloned().collect();
    if !others.is_empty() {
        let label = if m.red_entered.is_empty() { "entered the top" } else { "also entered the top" };
        lines.push(format!("{label} {}: {}", m.k, moves(&others, m.k, true)));
    }
    if !m.left.is_empty() {
        lines.push(format!("left the top {}: {}", m.k, moves(&m.left, m.k, false)));
    }
    if !m.metrics.is_empty() {
        let list: Vec<String> = m
            .metrics
            .iter()
            .map(|d| {
                format!("{} {} → {}", d.metric.label(m.k), fmt_value(d.metric, d.base), fmt_value(d.metric, d.cand))
            })
            .collect();
        lines.push(list.join(", "));
    }
    lines
}

/// A leaderboard column: its heading and how a run's value is read.
type Column = (&'static str, Box<dyn Fn(&RunResult) -> f64>);

/// The leaderboard's numeric columns: one per verdict count, then every summary metric.
fn board_columns() -> Vec<Column> {
    let mut cols: Vec<Column> = vec![
        ("passed", Box::new(|r: &RunResult| r.count(Verdict::Passed) as f64)),
        ("failed", Box::new(|r: &RunResult| r.count(Verdict::Failed) as f64)),
        ("known", Box::new(|r: &RunResult| r.count(Verdict::KnownFailure) as f64)),
        ("fixed", Box::new(|r: &RunResult| r.count(Verdict::Fixed) as f64)),
        ("errors", Box::new(|r: &RunResult| r.count(Verdict::Error) as f64)),
    ];
    for m in SUMMARY_METRICS {
        cols.push((short_label(m), Box::new(move |r: &RunResult| r.means.means[&m])));
    }
    cols
}

/// Whether a higher value is better in a leaderboard column.
fn higher_is_better(col: &str) -> Option<bool> {
    match col {
        "passed" => Some(true),
        "failed" | "fixed" | "errors" => Some(false),
        "known" => None,
        _ => Some(true),
    }
}

/// Indices of the best runs per column.
fn best(values: &[f64], col: &str) -> Vec<bool> {
    let Some(high) = higher_is_better(col) else { return vec![false; values.len()] };
    let pick =
        values
            .iter()
            .copied()
            .fold(if high { f64::MIN } else { f64::MAX }, |a, b| if high { a.max(b) } else { a.min(b) });
    values.iter().map(|&v| values.len() > 1 && (v - pick).abs() < 1e-12).collect()
}

fn fmt_col(col: &str, v: f64) -> String {
    if matches!(col, "passed" | "failed" | "known" | "fixed" | "errors") {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Registry settings shown as leaderboard columns (the union over the runs).
fn setting_keys(runs: &[RunResult]) -> Vec<String> {
    let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.settings.keys()).collect();
    keys.into_iter().cloned().collect()
}

fn group_names(runs: &[RunResult]) -> Vec<String> {
    let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.group_means.keys()).collect();
    keys.into_iter().cloned().collect()
}

/// The terminal report of a comparison.
pub fn text(doc: &Document) -> String {
    let mut s = String::new();
    let runs = &doc.runs;
    let name_w = runs.iter().map(|r| r.name.chars().count()).max().unwrap_or(10).max(10);
    writeln!(s, "baseline: {} ({} @ {})", runs[0].name, runs[0].model.model, runs[0].model.revision).unwrap();
    for r in &runs[1..] {
        writeln!(s, "candidate: {} ({} @ {})", r.name, r.model.model, r.model.revision).unwrap();
    }
    writeln!(s, "catalog: {} ({} items, {})\n", runs[0].catalog.root, runs[0].catalog.items, runs[0].catalog.digest)
        .unwrap();
    for n in &doc.notes {
        writeln!(s, "note: {n}").unwrap();
    }
    for r in runs {
        for w in &r.warnings {
            writeln!(s, "warning: {}: {w}", r.name).unwrap();
        }
    }
    if !doc.notes.is_empty() || runs.iter().any(|r| !r.warnings.is_empty()) {
        writeln!(s).unwrap();
    }

    writeln!(s, "leaderboard (* best in its column)").unwrap();
    let cols = board_columns();
    let settings = setting_keys(runs);
    write!(s, "{:<name_w$}", "checkpoint").unwrap();
    for (c, _) in &cols {
        write!(s, " {c:>10}").unwrap();
    }
    writeln!(s).unwrap();
    let table: Vec<Vec<f64>> = cols.iter().map(|(_, f)| runs.iter().map(f).collect()).collect();
    let marks: Vec<Vec<bool>> = cols.iter().zip(&table).map(|((c, _), v)| best(v, c)).collect();
    for (i, r) in runs.iter().enumerate() {
        write!(s, "{:<name_w$}", r.name).unwrap();
        for (j, (c, _)) in cols.iter().enumerate() {
            let star = if marks[j][i] { "*" } else { " " };
            write!(s, " {:>9}{star}", fmt_col(c, table[j][i])).unwrap();
        }
        writeln!(s).unwrap();
    }
    if !settings.is_empty() {
        writeln!(s, "\ntraining settings (from the checkpoints registry)").unwrap();
        let cell = |r: &RunResult, k: &str| r.settings.get(k).cloned().unwrap_or_else(|| "-".into());
        let widths: Vec<usize> = settings
            .iter()
            .map(|k| runs.iter().map(|r| cell(r, k).chars().count()).chain([k.chars().count()]).max().unwrap_or(1))
            .collect();
        write!(s, "{:<name_w$}", "checkpoint").unwrap();
        for (k, w) in settings.iter().zip(&widths) {
            write!(s, "  {k:<w$}").unwrap();
        }
        writeln!(s).unwrap();
        for r in runs {
            write!(s, "{:<name_w$}", r.name).unwrap();
            for (k, w) in settings.iter().zip(&widths) {
                write!(s, "  {:<w$}", cell(r, k)).unwrap();
            }
            writeln!(s).unwrap();
        }
    }

    writeln!(s, "\nmeans per area and tag (* best in its group)").unwrap();
    let gw = group_names(runs).iter().map(|g| g.chars().count()).max().unwrap_or(5).max(5);
    write!(s, "{:<gw$}  {:<name_w$}", "group", "checkpoint").unwrap();
    for m in SUMMARY_METRICS {
        write!(s, " {:>10}", short_label(m)).unwrap();
    }
    writeln!(s, "  cases").unwrap();
    for g in group_names(runs) {
        let aggs: Vec<Option<&Aggregate>> = runs.iter().map(|r| r.group_means.get(&g)).collect();
        let marks: Vec<Vec<bool>> = SUMMARY_METRICS
            .iter()
            .map(|m| best(&aggs.iter().map(|a| a.map_or(f64::NAN, |a| a.means[m])).collect::<Vec<_>>(), "metric"))
            .collect();
        for (i, r) in runs.iter().enumerate() {
            let Some(a) = aggs[i] else { continue };
            write!(s, "{:<gw$}  {:<name_w$}", g, r.name).unwrap();
            for (j, m) in SUMMARY_METRICS.iter().enumerate() {
                let star = if marks[j][i] { "*" } else { " " };
                write!(s, " {:>9.3}{star}", a.means[m]).unwrap();
            }
            writeln!(s, "  {}", a.cases).unwrap();
        }
    }

    if !doc.pairs.is_empty() {
        let named: Vec<(&str, &crate::pairs::PairReport)> =
            doc.pairs.iter().map(|p| (p.name.as_str(), &p.report)).collect();
        s.push('\n');
        s.push_str(&crate::pairs::render_text(&named));
    }
    for cmp in &doc.comparisons {
        s.push('\n');
        s.push_str(&comparison_text(cmp));
    }
    // Padded columns leave trailing blanks; a report is read and diffed without them.
    s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

fn summary_line(cmp: &Comparison) -> String {
    format!(
        "{} against {}: {} regressions, {} fixes, {} changed, {} moved, {} unchanged",
        cmp.candidate,
        cmp.baseline,
        cmp.count(Change::Regression),
        cmp.count(Change::Fix),
        cmp.count(Change::Changed),
        cmp.count(Change::Moved),
        cmp.count(Change::Unchanged)
    )
}

fn comparison_text(cmp: &Comparison) -> String {
    let mut s = String::new();
    writeln!(s, "{}", summary_line(cmp)).unwrap();
    let sections = [
        (Change::Regression, "regressions"),
        (Change::Fix, "fixes"),
        (Change::Changed, "verdict changed"),
        (Change::Moved, "ranking moved, verdict unchanged"),
    ];
    for (change, title) in sections {
        let cases: Vec<&CaseChange> = cmp.cases.iter().filter(|c| c.change == change).collect();
        if cases.is_empty() {
            continue;
        }
        writeln!(s, "\n{title}:").unwrap();
        for c in cases {
            writeln!(s, "  {}  {} → {}", c.name, c.base, c.cand).unwrap();
            for line in c.movement.as_ref().map(movement_lines).unwrap_or_default() {
                writeln!(s, "      {line}").unwrap();
            }
        }
    }
    writeln!(s, "\nper metric over the cases both judged (diff = candidate − baseline)").unwrap();
    writeln!(
        s,
        "{:<18} {:>7} {:>7} {:>7} {:>4} {:>4} {:>4} {:>7}  95% interval",
        "metric", "base", "cand", "diff", "win", "tie", "loss", "p"
    )
    .unwrap();
    let (rows, notes) = significance(cmp);
    for r in rows {
        writeln!(
            s,
            "{:<18} {:>7} {:>7} {:>7} {:>4} {:>4} {:>4} {:>7}  {}",
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]
        )
        .unwrap();
    }
    for n in notes {
        writeln!(s, "warning: {n}").unwrap();
    }
    s
}

/// The per-metric significance table's cells (metric, baseline, candidate, diff, win, tie, loss, p,
/// interval) and its warnings, for both renderings.
fn significance(cmp: &Comparison) -> (Vec<[String; 9]>, BTreeSet<String>) {
    let mut notes = BTreeSet::new();
    let rows = cmp
        .metrics
        .iter()
        .map(|m| {
            let p = &m.paired;
            if let Some(n) = &p.note {
                notes.insert(format!("{}: {n}", metric_name(m.metric)));
            }
            [
                metric_name(m.metric),
                format!("{:.3}", p.mean_base),
                format!("{:.3}", p.mean_cand),
                format!("{:+.3}", p.mean_diff),
                p.wins.to_string(),
                p.ties.to_string(),
                p.losses.to_string(),
                format!("{:.4}", p.p_value),
                format!("[{:+.3}, {:+.3}]", p.ci_low, p.ci_high),
            ]
        })
        .collect();
    (rows, notes)
}

fn metric_name(m: Metric) -> String {
    if m.at_k() {
        format!("{}@k", m.key())
    } else {
        m.key().to_string()
    }
}

/// The Markdown report of a comparison: regressions stated first, long parts folded.
pub fn markdown(doc: &Document) -> String {
    let mut s = String::new();
    let runs = &doc.runs;
    let regressions: usize = doc.comparisons.iter().map(|c| c.count(Change::Regression)).sum();
    let title = if regressions > 0 {
        format!("## ❌ fitcheck compare: {regressions} regression(s)")
    } else {
        "## ✅ fitcheck compare: no regressions".to_string()
    };
    writeln!(s, "{title}\n").unwrap();
    for cmp in &doc.comparisons {
        writeln!(s, "- {}", md_cell(&summary_line(cmp))).unwrap();
    }
    writeln!(s).unwrap();
    for n in &doc.notes {
        writeln!(s, "> **Note:** {}\n", md_cell(n)).unwrap();
    }
    for r in runs {
        for w in &r.warnings {
            writeln!(s, "> ⚠️ {}: {}\n", md_cell(&r.name), md_cell(w)).unwrap();
        }
    }
    writeln!(s, "### Leaderboard\n").unwrap();
    let cols = board_columns();
    let settings = setting_keys(runs);
    write!(s, "| checkpoint | revision |").unwrap();
    for (c, _) in &cols {
        write!(s, " {c} |").unwrap();
    }
    for k in &settings {
        write!(s, " {} |", md_cell(k)).unwrap();
    }
    writeln!(s).unwrap();
    write!(s, "| --- | --- |").unwrap();
    for _ in &cols {
        write!(s, " ---: |").unwrap();
    }
    for _ in &settings {
        write!(s, " --- |").unwrap();
    }
    writeln!(s).unwrap();
    let table: Vec<Vec<f64>> = cols.iter().map(|(_, f)| runs.iter().map(f).collect()).collect();
    let marks: Vec<Vec<bool>> = cols.iter().zip(&table).map(|((c, _), v)| best(v, c)).collect();
    for (i, r) in runs.iter().enumerate() {
        let role = if i == 0 { " (baseline)" } else { "" };
        write!(s, "| {}{role} | `{}` |", md_cell(&r.name), md_cell(&r.model.revision)).unwrap();
        for (j, (c, _)) in cols.iter().enumerate() {
            let v = fmt_col(c, table[j][i]);
            if marks[j][i] {
                write!(s, " **{v}** |").unwrap();
            } else {
                write!(s, " {v} |").unwrap();
            }
        }
        for k in &settings {
            write!(s, " {} |", md_cell(r.settings.get(k).map_or("-", String::as_str))).unwrap();
        }
        writeln!(s).unwrap();
    }
    writeln!(s, "\n<details><summary>Means per area and tag</summary>\n").unwrap();
    write!(s, "| group | checkpoint |").unwrap();
    for m in SUMMARY_METRICS {
        write!(s, " {} |", short_label(m)).unwrap();
    }
    writeln!(s, " cases |").unwrap();
    writeln!(s, "| --- | --- |{} --- |", " ---: |".repeat(SUMMARY_METRICS.len())).unwrap();
    for g in group_names(runs) {
        for r in runs {
            let Some(a) = r.group_means.get(&g) else { continue };
            write!(s, "| {} | {} |", md_cell(&g), md_cell(&r.name)).unwrap();
            for m in SUMMARY_METRICS {
                write!(s, " {:.3} |", a.means[&m]).unwrap();
            }
            writeln!(s, " {} |", a.cases).unwrap();
        }
    }
    writeln!(s, "\n</details>\n").unwrap();
    if !doc.pairs.is_empty() {
        let named: Vec<(&str, &crate::pairs::PairReport)> =
            doc.pairs.iter().map(|p| (p.name.as_str(), &p.report)).collect();
        writeln!(s, "### Pair table\n").unwrap();
        s.push_str(&crate::pairs::render_markdown(&named));
        writeln!(s).unwrap();
    }

    for cmp in &doc.comparisons {
        writeln!(s, "### {} against {}\n", md_cell(&cmp.candidate), md_cell(&cmp.baseline)).unwrap();
        for (change, title, folded) in [
            (Change::Regression, "Regressions", false),
            (Change::Fix, "Fixes", false),
            (Change::Changed, "Verdict changed", false),
            (Change::Moved, "Ranking moved, verdict unchanged", true),
        ] {
            let cases: Vec<&CaseChange> = cmp.cases.iter().filter(|c| c.change == change).collect();
            if cases.is_empty() {
                continue;
            }
            if folded {
                writeln!(s, "<details><summary>{title} ({})</summary>\n", cases.len()).unwrap();
            } else {
                writeln!(s, "#### {title} ({})\n", cases.len()).unwrap();
            }
            for c in cases {
                writeln!(s, "- **{}**: {} → {}", md_cell(&c.name), c.base, c.cand).unwrap();
                for line in c.movement.as_ref().map(movement_lines).unwrap_or_default() {
                    writeln!(s, "  - {}", md_cell(&line)).unwrap();
                }
            }
            if folded {
                writeln!(s, "\n</details>").unwrap();
            }
            writeln!(s).unwrap();
        }
        writeln!(s, "<details><summary>Per metric: wins, ties, losses and significance</summary>\n").unwrap();
        writeln!(s, "| metric | baseline | candidate | diff | win | tie | loss | p | 95% interval |").unwrap();
        writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |").unwrap();
        let (rows, notes) = significance(cmp);
        for r in rows {
            writeln!(s, "| {} |", r.join(" | ")).unwrap();
        }
        for n in notes {
            writeln!(s, "\n> ⚠️ {}", md_cell(&n)).unwrap();
        }
        writeln!(s, "\n</details>\n").unwrap();
    }
    s
}
