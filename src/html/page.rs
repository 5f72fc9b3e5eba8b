//! The report page: summary first (models, verdicts, leaderboard, plot, the cases that need attention,
//! means per area and tag), then one section per case with its metrics and a contact sheet per run.
//!
//! Cases are listed in one order everywhere: regressions first, then cases that fail the suite, then
//! fixes and other verdict changes, then known failures, then the rest; within each, the results' own
//! order (by name). A case's anchor (`case-<n>`) is its position in the results, so links stay valid
//! whatever the order. Marks and wording follow the text report: ✅/🟨/❌ for expected items, `·` for
//! the others, `ok`/`FAIL` against thresholds.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use super::plot::{self, Point};
use super::thumbs::Thumb;
use super::{attr, text, Images};
use crate::compare::{CaseChange, Change};
use crate::compare_report::movement_lines;
use crate::document::Document;
use crate::error::Result;
use crate::metrics::{Class, Metric};
use crate::report::{counts_line, failed_checks, fmt_value, short_label, SUMMARY_METRICS};
use crate::result::{CaseResult, RankedItem, RunResult};
use crate::verdict::Verdict;

/// One case across the runs.
struct Row<'a> {
    name: &'a str,
    anchor: String,
    /// Its result in each run.
    results: Vec<Option<&'a CaseResult>>,
    /// Its change in each comparison.
    changes: Vec<Option<&'a CaseChange>>,
    /// Where it is listed: 0 regression, 1 fails the suite, 2 fixed or changed, 3 known failure, 4 rest.
    priority: u8,
}

impl Row<'_> {
    /// The results that decide whether the case needs attention: the candidates' when comparing.
    fn judged(&self) -> &[Option<&CaseResult>] {
        if self.results.len() > 1 {
            &self.results[1..]
        } else {
            &self.results
        }
    }

    fn first(&self) -> Option<&CaseResult> {
        self.results.iter().flatten().next().copied()
    }
}

fn rows(doc: &Document) -> Vec<Row<'_>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut rows: Vec<Row> = Vec::new();
    for (r, run) in doc.runs.iter().enumerate() {
        for case in &run.cases {
            let i = *index.entry(case.name.as_str()).or_insert_with(|| {
                rows.push(Row {
                    name: &case.name,
                    anchor: format!("case-{}", rows.len()),
                    results: vec![None; doc.runs.len()],
                    changes: vec![None; doc.comparisons.len()],
                    priority: 4,
                });
                rows.len() - 1
            });
            rows[i].results[r] = Some(case);
        }
    }
    for (c, cmp) in doc.comparisons.iter().enumerate() {
        for change in &cmp.cases {
            if let Some(&i) = index.get(change.name.as_str()) {
                rows[i].changes[c] = Some(change);
            }
        }
    }
    for row in &mut rows {
        let changed = |what: Change| row.changes.iter().flatten().any(|c| c.change == what);
        let verdict = |test: fn(Verdict) -> bool| row.judged().iter().flatten().any(|c| test(c.verdict));
        row.priority = if changed(Change::Regression) {
            0
        } else if verdict(Verdict::fails_suite) {
            1
        } else if changed(Change::Fix) || changed(Change::Changed) {
            2
        } else if verdict(|v| v == Verdict::KnownFailure) {
            3
        } else {
            4
        };
    }
    rows.sort_by_key(|r| r.priority);
    rows
}

/// Why a case failed, in the text report's words.
fn reason(case: &CaseResult) -> String {
    match (&case.error, case.verdict) {
        (Some(e), _) => e.clone(),
        (None, Verdict::Fixed) => "passes now: remove its 'known_failure' line".into(),
        (None, Verdict::KnownFailure) => format!("known failure: {}", case.known_failure.as_deref().unwrap_or("")),
        (None, Verdict::Failed) => failed_checks(&case.checks, case.k.unwrap_or(0)),
        (None, v) => v.label().into(),
    }
}

/// The whole page.
pub(crate) fn render(doc: &Document, images: &mut Images) -> Result<String> {
    let rows = rows(doc);
    let runs = &doc.runs;
    let mut s = String::with_capacity(256 * 1024);
    let title = if runs.len() > 1 {
        let names: Vec<&str> = runs[1..].iter().map(|r| r.name.as_str()).collect();
        format!("fitcheck: {} against {}", names.join(", "), runs[0].name)
    } else {
        format!("fitcheck: {}", runs[0].name)
    };
    write!(
        s,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<header><h1>{}</h1></header>\n<main>\n",
        text(&title),
        text(&title)
    )
    .unwrap();
    summary(&mut s, doc, &rows);
    for row in &rows {
        case_section(&mut s, doc, row, images)?;
    }
    write!(
        s,
        "<footer>fitcheck {} · results format {} · {}</footer>\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        text(&doc.manifest.fitcheck),
        doc.manifest.format,
        text(&doc.manifest.similarity)
    )
    .unwrap();
    Ok(s)
}

fn summary(s: &mut String, doc: &Document, rows: &[Row]) {
    let runs = &doc.runs;
    s.push_str("<section id=\"summary\">\n<h2>Models</h2>\n<table class=\"models\">\n<tr><th></th><th>name</th><th>model</th><th>revision</th><th>preprocessing</th><th>catalog</th></tr>\n");
    for (i, run) in runs.iter().enumerate() {
        let role = match (runs.len(), i) {
            (1, _) => "model",
            (_, 0) => "baseline",
            _ => "candidate",
        };
        writeln!(
            s,
            "<tr><th>{role}</th><td>{}</td><td>{}</td><td>{}</td><td class=\"small\">{}</td><td>{} ({} items)</td></tr>",
            text(&run.name),
            text(&run.model.model),
            text(&run.model.revision),
            text(&run.model.preprocessing),
            text(&run.catalog.root),
            run.catalog.items
        )
        .unwrap();
    }
    s.push_str("</table>\n");
    for note in &doc.notes {
        writeln!(s, "<p class=\"note\">note: {}</p>", text(note)).unwrap();
    }

    if runs.len() == 1 {
        let run = &runs[0];
        let class = if run.passed() { "passed" } else { "failed" };
        writeln!(s, "<p class=\"counts {class}\">{}</p>", text(&counts_line(run))).unwrap();
    } else {
        leaderboard(s, runs);
        for cmp in &doc.comparisons {
            writeln!(
                s,
                "<p class=\"counts\">{} against {}: <b class=\"regression\">{} regressions</b>, {} fixes, {} changed, {} moved, {} unchanged</p>",
                text(&cmp.candidate),
                text(&cmp.baseline),
                cmp.count(Change::Regression),
                cmp.count(Change::Fix),
                cmp.count(Change::Changed),
                cmp.count(Change::Moved),
                cmp.count(Change::Unchanged)
            )
            .unwrap();
        }
    }

    plots(s, doc, rows);

    let attention: Vec<&Row> = rows.iter().filter(|r| r.priority <= 1).collect();
    if !attention.is_empty() {
        let title = if doc.comparisons.is_empty() { "Failing cases" } else { "Regressed and failing cases" };
        writeln!(s, "<h2>{title}</h2>\n<ol class=\"attention\">").unwrap();
        for row in attention {
            let mut why: Vec<String> = Vec::new();
            if row.priority == 0 {
                let verdicts: Vec<String> =
                    row.results.iter().map(|c| c.map_or("-".into(), |c| c.verdict.label().to_string())).collect();
                why.push(format!("regression: {}", verdicts.join(" → ")));
            }
            if let Some(case) = row.judged().iter().flatten().find(|c| c.verdict.fails_suite()) {
                why.push(reason(case));
            }
            writeln!(
                s,
                "<li><a href=\"#{}\">{}</a>: {}</li>",
                attr(&row.anchor),
                text(row.name),
                text(&why.join("; "))
            )
            .unwrap();
        }
        s.push_str("</ol>\n");
    }

    means(s, runs);
    let warnings: Vec<&String> = runs.iter().flat_map(|r| &r.warnings).collect();
    if !warnings.is_empty() {
        s.push_str("<h2>Warnings</h2>\n<ul>\n");
        for w in warnings {
            writeln!(s, "<li>{}</li>", text(w)).unwrap();
        }
        s.push_str("</ul>\n");
    }
    s.push_str("<h2>Cases</h2>\n<p class=\"legend\">Frames: <span class=\"key expected\">expected</span> <span class=\"key yellow\">yellow flag</span> <span class=\"key red\">red flag</span> <span class=\"key neutral\">neutral</span>. Marks as in the text report: ✅ above every red and yellow item, 🟨 above every red item, ❌ below some red item, · not expected. The bar is the cut-off k; click a thumbnail for the original image.</p>\n</section>\n");
}

fn leaderboard(s: &mut String, runs: &[RunResult]) {
    type Column = (&'static str, Box<dyn Fn(&RunResult) -> f64>, Option<bool>);
    let mut cols: Vec<Column> = vec![
        ("passed", Box::new(|r: &RunResult| r.count(Verdict::Passed) as f64), Some(true)),
        ("failed", Box::new(|r: &RunResult| r.count(Verdict::Failed) as f64), Some(false)),
        ("known", Box::new(|r: &RunResult| r.count(Verdict::KnownFailure) as f64), None),
        ("fixed", Box::new(|r: &RunResult| r.count(Verdict::Fixed) as f64), Some(false)),
        ("errors", Box::new(|r: &RunResult| r.count(Verdict::Error) as f64), Some(false)),
    ];
    for m in SUMMARY_METRICS {
        cols.push((
            short_label(m),
            Box::new(move |r: &RunResult| r.means.means.get(&m).copied().unwrap_or(0.0)),
            Some(true),
        ));
    }
    s.push_str("<h2>Leaderboard</h2>\n<table class=\"board\">\n<tr><th>checkpoint</th>");
    for (name, _, _) in &cols {
        write!(s, "<th>{name}</th>").unwrap();
    }
    s.push_str("</tr>\n");
    let values: Vec<Vec<f64>> = cols.iter().map(|(_, f, _)| runs.iter().map(f).collect()).collect();
    for (i, run) in runs.iter().enumerate() {
        write!(s, "<tr><th>{}</th>", text(&run.name)).unwrap();
        for (c, ((_, _, higher), vals)) in cols.iter().zip(&values).enumerate() {
            let v = vals[i];
            let best = higher.is_some_and(|h| {
                let pick = if h {
                    vals.iter().copied().fold(f64::MIN, f64::max)
                } else {
                    vals.iter().copied().fold(f64::MAX, f64::min)
                };
                (v - pick).abs() < 1e-12
            });
            // Counts are whole numbers; the means get three decimals as in the text report.
            let shown = if c < 5 { format!("{v:.0}") } else { format!("{v:.3}") };
            let class = if best { " class=\"best\"" } else { "" };
            write!(s, "<td{class}>{shown}</td>").unwrap();
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n<p class=\"small\">bold: best in its column</p>\n");
}

fn plots(s: &mut String, doc: &Document, rows: &[Row]) {
    if doc.runs.len() > 1 {
        s.push_str("<h2>Per case, baseline against candidate</h2>\n<p class=\"small\">Each dot is a case; below the diagonal (red) the candidate does worse. Click a dot for its case.</p>\n<div class=\"plots\">\n");
        for (c, cmp) in doc.comparisons.iter().enumerate() {
            let base = doc.runs.iter().position(|r| r.name == cmp.baseline).unwrap_or(0);
            let cand = doc.runs.iter().position(|r| r.name == cmp.candidate).unwrap_or(c + 1);
            for m in [Metric::Mrr, Metric::Recall, Metric::Precision, Metric::Accuracy] {
                let points: Vec<Point> = rows
                    .iter()
                    .filter_map(|row| {
                        let b = row.results.get(base).copied().flatten()?.metrics.as_ref()?;
                        let c = row.results.get(cand).copied().flatten()?.metrics.as_ref()?;
                        Some(Point { anchor: &row.anchor, name: row.name, x: b.get(m), y: c.get(m), class: "" })
                    })
                    .collect();
                s.push_str(&plot::scatter(short_label(m), &cmp.baseline, &cmp.candidate, &points));
                s.push('\n');
            }
        }
        s.push_str("</div>\n");
    } else {
        s.push_str("<h2>Each metric over the cases</h2>\n<p class=\"small\">One dot per case: <span class=\"key passed\">passed</span> <span class=\"key failed\">failed</span> <span class=\"key known_failure\">known failure</span>. Click a dot for its case.</p>\n");
        let lines: Vec<(String, Vec<Point>)> = SUMMARY_METRICS
            .iter()
            .map(|&m| {
                let points = rows
                    .iter()
                    .filter_map(|row| {
                        let case = row.results[0]?;
                        let v = case.metrics.as_ref()?.get(m);
                        Some(Point { anchor: &row.anchor, name: row.name, x: v, y: 0.0, class: case.verdict.key() })
                    })
                    .collect();
                (short_label(m).to_string(), points)
            })
            .collect();
        s.push_str(&plot::strips(&lines));
        s.push('\n');
    }
}

fn means(s: &mut String, runs: &[RunResult]) {
    let mut groups: Vec<&String> = runs.iter().flat_map(|r| r.group_means.keys()).collect();
    groups.sort();
    groups.dedup();
    s.push_str("<h2>Means per area and tag</h2>\n<table class=\"means\">\n<tr><th>over</th>");
    for m in SUMMARY_METRICS {
        write!(s, "<th>{}</th>", short_label(m)).unwrap();
    }
    s.push_str("<th>cases</th></tr>\n");
    let row = |s: &mut String, label: &str, get: &dyn Fn(&RunResult) -> Option<&crate::metrics::Aggregate>| {
        write!(s, "<tr><th>{}</th>", text(label)).unwrap();
        for m in SUMMARY_METRICS {
            let vals: Vec<Option<f64>> = runs.iter().map(|r| get(r).and_then(|a| a.means.get(&m).copied())).collect();
            let shown: Vec<String> = vals.iter().map(|v| v.map_or("-".into(), |v| format!("{v:.3}"))).collect();
            let class = match (vals.first().copied().flatten(), vals.last().copied().flatten()) {
                (Some(a), Some(b)) if runs.len() > 1 && b < a - 1e-9 => " class=\"worse\"",
                (Some(a), Some(b)) if runs.len() > 1 && b > a + 1e-9 => " class=\"better\"",
                _ => "",
            };
            write!(s, "<td{class}>{}</td>", shown.join(" → ")).unwrap();
        }
        let cases = runs.iter().find_map(get).map_or(0, |a| a.cases);
        writeln!(s, "<td>{cases}</td></tr>").unwrap();
    };
    row(s, "suite", &|r| Some(&r.means));
    for g in groups {
        row(s, g, &|r| r.group_means.get(g));
    }
    s.push_str("</table>\n");
    if runs.len() > 1 {
        s.push_str("<p class=\"small\">baseline → candidate(s)</p>\n");
    }
}

fn case_section(s: &mut String, doc: &Document, row: &Row, images: &mut Images) -> Result<()> {
    let verdicts: Vec<&str> = row.results.iter().map(|c| c.map_or("absent", |c| c.verdict.key())).collect();
    let changes: Vec<&str> = row.changes.iter().map(|c| c.map_or("absent", |c| c.change.label())).collect();
    writeln!(
        s,
        "<section class=\"case p{}\" id=\"{}\" data-case=\"{}\" data-verdicts=\"{}\" data-changes=\"{}\">",
        row.priority,
        attr(&row.anchor),
        attr(row.name),
        verdicts.join(" "),
        attr(&changes.join(","))
    )
    .unwrap();
    write!(s, "<h3><a href=\"#{}\">{}</a>", attr(&row.anchor), text(row.name)).unwrap();
    for (run, case) in doc.runs.iter().zip(&row.results) {
        if let Some(c) = case {
            let who = if doc.runs.len() > 1 { format!("{}: ", run.name) } else { String::new() };
            write!(s, " <span class=\"badge {}\">{}{}</span>", c.verdict.key(), text(&who), c.verdict.label()).unwrap();
        }
    }
    for change in row.changes.iter().flatten() {
        if !matches!(change.change, Change::Unchanged | Change::NotCompared) {
            write!(
                s,
                " <span class=\"badge {}\">{}</span>",
                change.change.label().replace(' ', "-"),
                change.change.label()
            )
            .unwrap();
        }
    }
    s.push_str("</h3>\n");
    let Some(first) = row.first() else { return Ok(()) };
    write!(s, "<p class=\"query\">query: <q>{}</q>", text(first.query.as_deref().unwrap_or(""))).unwrap();
    if let Some(k) = first.k {
        write!(s, " · k = {k}").unwrap();
    }
    writeln!(s, " · <span class=\"small\">{}</span></p>", text(&first.file)).unwrap();
    if let Some(why) = &first.known_failure {
        writeln!(s, "<p class=\"known\">known failure: {}</p>", text(why)).unwrap();
    }
    if let Some(why) = &first.ignore {
        writeln!(s, "<p class=\"ignored\">ignored: {}</p>", text(why)).unwrap();
    }
    for (run, case) in doc.runs.iter().zip(&row.results) {
        if let Some(c) = case {
            if let Some(e) = &c.error {
                writeln!(s, "<p class=\"error\">error ({}): {}</p>", text(&run.name), text(e)).unwrap();
            } else if c.verdict == Verdict::Fixed {
                writeln!(s, "<p class=\"error\">{}: passes now: remove its 'known_failure' line</p>", text(&run.name))
                    .unwrap();
            }
        }
    }
    let lines: Vec<String> =
        row.changes.iter().flatten().filter_map(|c| c.movement.as_ref()).flat_map(movement_lines).collect();
    if !lines.is_empty() {
        s.push_str("<ul class=\"moves\">\n");
        for l in lines {
            writeln!(s, "<li>{}</li>", text(&l)).unwrap();
        }
        s.push_str("</ul>\n");
    }
    metrics_table(s, doc, row);
    writeln!(s, "<div class=\"sheets\" style=\"--runs: {}\">", doc.runs.len()).unwrap();
    for (r, run) in doc.runs.iter().enumerate() {
        let base = if r > 0 { row.results[0] } else { None };
        let red_entered: HashSet<&str> = doc
            .comparisons
            .iter()
            .zip(&row.changes)
            .filter(|(cmp, _)| cmp.candidate == run.name)
            .filter_map(|(_, c)| c.and_then(|c| c.movement.as_ref()))
            .flat_map(|m| m.red_entered.iter().map(|x| x.id.as_str()))
            .collect();
        sheet(s, images, r, run, row.results[r], base, &red_entered)?;
    }
    s.push_str("</div>\n</section>\n");
    Ok(())
}

/// Every metric in a column, one row per run, the thresholds last; a failed check is highlighted.
fn metrics_table(s: &mut String, doc: &Document, row: &Row) {
    let Some(reference) = row.results.iter().flatten().find_map(|c| c.metrics.as_ref()) else { return };
    s.push_str("<table class=\"metrics\">\n<tr><th></th>");
    for (metric, _) in reference.iter() {
        write!(s, "<th>{}</th>", metric.label(reference.k)).unwrap();
    }
    s.push_str("</tr>\n");
    for (run, case) in doc.runs.iter().zip(&row.results) {
        let Some(case) = case else { continue };
        let Some(metrics) = &case.metrics else { continue };
        write!(s, "<tr><th>{}</th>", text(&run.name)).unwrap();
        for (metric, value) in metrics.iter() {
            let class = match case.checks.iter().find(|c| c.metric == metric) {
                Some(c) if !c.passed => " class=\"fail\" title=\"FAIL\"",
                Some(_) => " class=\"ok\"",
                None => "",
            };
            write!(s, "<td{class}>{}</td>", fmt_value(metric, value)).unwrap();
        }
        s.push_str("</tr>\n");
    }
    s.push_str("<tr class=\"thresholds\"><th>threshold</th>");
    for (metric, _) in reference.iter() {
        let threshold = row.results.iter().flatten().flat_map(|c| &c.checks).find(|c| c.metric == metric);
        write!(s, "<td>{}</td>", text(threshold.map_or("", |c| c.threshold.as_str()))).unwrap();
    }
    s.push_str("</tr>\n</table>\n");
}

/// One run's contact sheet of a case: its top `snapshot_top` in rank order, a bar at the cut-off k,
/// then the expected items that fell below.
fn sheet(
    s: &mut String,
    images: &mut Images,
    r: usize,
    run: &RunResult,
    case: Option<&CaseResult>,
    base: Option<&CaseResult>,
    red_entered: &HashSet<&str>,
) -> Result<()> {
    writeln!(s, "<div class=\"sheet\" data-run=\"{}\">\n<h4>{}</h4>", attr(&run.name), text(&run.name)).unwrap();
    let Some(ranking) = case.and_then(|c| c.ranking.as_ref()) else {
        let why = match case {
            None => "not in this run",
            Some(c) if c.verdict == Verdict::Ignored => "ignored",
            Some(_) => "not judged",
        };
        writeln!(s, "<p class=\"small\">{why}</p>\n</div>").unwrap();
        return Ok(());
    };
    let case = case.expect("a ranking comes with its case");
    let k = case.metrics.as_ref().map_or(case.k.unwrap_or(0), |m| m.k);
    let top = case.snapshot_top.unwrap_or(ranking.top.len()).min(ranking.top.len());
    let base_rank = |id: &str| base.and_then(|b| b.ranking.as_ref()).map(|b| b.rank_of(id));
    writeln!(
        s,
        "<p class=\"small\">top {top} of {}{}</p>",
        ranking.total,
        if ranking.tie_at_k {
            format!(" · ranks {k} and {} are tied: the cut-off splits a tie", k + 1)
        } else {
            String::new()
        }
    )
    .unwrap();
    s.push_str("<div class=\"strip\">\n");
    for item in &ranking.top[..top] {
        if item.rank == k + 1 {
            writeln!(s, "<div class=\"cutoff\" title=\"cut-off k = {k}\"><span>k = {k}</span></div>").unwrap();
        }
        figure(s, images, r, item, base_rank(&item.id), red_entered.contains(item.id.as_str()))?;
    }
    s.push_str("</div>\n");
    let below: Vec<&RankedItem> =
        ranking.classified.iter().filter(|i| i.rank > top && i.class == Class::Expected).collect();
    if !below.is_empty() {
        writeln!(s, "<p class=\"small\">expected items below rank {top}:</p>\n<div class=\"strip below\">").unwrap();
        for item in below {
            figure(s, images, r, item, base_rank(&item.id), false)?;
        }
        s.push_str("</div>\n");
    }
    s.push_str("</div>\n");
    Ok(())
}

/// One item: its thumbnail framed by class and linked to the original, with mark, rank, score, the
/// move since the baseline and its id.
fn figure(
    s: &mut String,
    images: &mut Images,
    r: usize,
    item: &RankedItem,
    base_rank: Option<Option<usize>>,
    red_entered: bool,
) -> Result<()> {
    let (thumb, href) = images.item(r, &item.file)?;
    let mark = item.mark.map_or("·", |m| m.symbol());
    let class = item.class.name();
    let tip = format!("rank {} · score {:.3} · {class} · {}", item.rank, item.score, item.id);
    write!(
        s,
        "<figure class=\"item {class}{}\" title=\"{}\"><a href=\"{}\">",
        if red_entered { " entered" } else { "" },
        attr(&tip),
        attr(&href)
    )
    .unwrap();
    match thumb {
        Thumb::Ready { name, width, height } => write!(
            s,
            "<img class=\"thumb\" src=\"thumbs/{}\" width=\"{width}\" height=\"{height}\" alt=\"{}\" data-item=\"{}\">",
            attr(&name),
            attr(&item.id),
            attr(&item.id)
        )
        .unwrap(),
        Thumb::Missing { reason } => write!(
            s,
            "<span class=\"thumb missing\" data-item=\"{}\"><b>no image</b> {}</span>",
            attr(&item.id),
            text(&reason)
        )
        .unwrap(),
    }
    let moved = match base_rank {
        None => String::new(),
        Some(None) => "<span class=\"move up\" title=\"not among the baseline's kept ranks\">new</span>".into(),
        Some(Some(b)) if b > item.rank => {
            format!("<span class=\"move up\" title=\"rank {b} in the baseline\">↑{}</span>", b - item.rank)
        }
        Some(Some(b)) if b < item.rank => {
            format!("<span class=\"move down\" title=\"rank {b} in the baseline\">↓{}</span>", item.rank - b)
        }
        Some(Some(_)) => "<span class=\"move\" title=\"same rank in the baseline\">=</span>".into(),
    };
    let entered = if red_entered { "<span class=\"flag\">red, entered the top k</span>" } else { "" };
    writeln!(
        s,
        "</a><figcaption><span class=\"mark\">{mark}</span> <b>{}</b> <span class=\"score\">{:.3}</span> {moved}{entered}<br><span class=\"id\">{}</span></figcaption></figure>",
        item.rank,
        item.score,
        text(&item.id)
    )
    .unwrap();
    Ok(())
}

/// Records each image's decoded width in `data-natural-width` (0: it did not decode), so a check of
/// the page (or a reader with developer tools) can tell a broken image from a slow one.
const SCRIPT: &str = r#"
(function () {
  function note(img) { img.setAttribute('data-natural-width', String(img.naturalWidth)); }
  Array.prototype.forEach.call(document.images, function (img) {
    if (img.complete) { note(img); }
    img.addEventListener('load', function () { note(img); });
    img.addEventListener('error', function () { note(img); });
  });
})();
"#;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d1d1f; background: #fff; }
header { background: #263238; color: #fff; padding: 10px 24px; }
header h1 { font-size: 20px; margin: 0; }
main { padding: 0 24px 24px; }
h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 16px; margin: 0 0 6px; }
h4 { font-size: 14px; margin: 0 0 2px; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
td { font-variant-numeric: tabular-nums; }
.small, .legend { font-size: 12px; color: #555; }
.best { font-weight: bold; }
.worse, .fail, .regression { color: #b71c1c; }
td.fail { background: #ffebee; font-weight: bold; }
tr.thresholds td { color: #555; font-size: 12px; }
.better { color: #1b5e20; }
.note, .error { color: #b71c1c; }
.known { color: #8d6e00; }
.counts.failed { color: #b71c1c; font-weight: bold; }
.counts.passed { color: #1b5e20; font-weight: bold; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; }
svg.plot { background: #fafafa; border: 1px solid #e0e0e0; }
svg .title { font-size: 13px; font-weight: bold; text-anchor: middle; }
svg .tick { font-size: 10px; fill: #555; text-anchor: middle; }
svg .tick.end { text-anchor: end; }
svg .axis { font-size: 11px; fill: #333; text-anchor: middle; }
svg .frame { fill: none; stroke: #bbb; }
svg .diagonal { stroke: #999; stroke-dasharray: 4 3; }
svg circle { fill-opacity: 0.75; stroke: #fff; stroke-width: 0.5; }
svg circle.worse, svg circle.failed, svg circle.error, svg circle.fixed { fill: #d32f2f; }
svg circle.better, svg circle.passed { fill: #2e7d32; }
svg circle.same, svg circle.ignored { fill: #757575; }
svg circle.known_failure { fill: #f9a825; }
.key { display: inline-block; padding: 0 6px; border-left: 10px solid #999; margin-right: 6px; }
.key.expected, .key.passed { border-color: #2e7d32; }
.key.yellow, .key.known_failure { border-color: #f9a825; }
.key.red, .key.failed { border-color: #d32f2f; }
.key.neutral { border-color: #bdbdbd; }
ol.attention li { margin: 2px 0; }
section.case { border-top: 2px solid #cfd8dc; padding: 12px 0; }
section.case.p0 h3 a, section.case.p1 h3 a { color: #b71c1c; }
.badge { font-size: 12px; font-weight: normal; padding: 1px 6px; border-radius: 8px; background: #eceff1; }
.badge.passed { background: #e8f5e9; color: #1b5e20; }
.badge.failed, .badge.error, .badge.fixed, .badge.regression { background: #ffebee; color: #b71c1c; }
.badge.known_failure { background: #fff8e1; color: #8d6e00; }
.badge.fix { background: #e8f5e9; color: #1b5e20; }
.query q { font-weight: bold; }
ul.moves { margin: 4px 0; padding-left: 20px; font-size: 13px; }
.sheets { display: grid; grid-template-columns: repeat(var(--runs), minmax(0, 1fr)); gap: 16px; margin-top: 8px; }
.strip { display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-start; }
.strip.below { opacity: 0.9; }
figure.item { margin: 0; width: 112px; }
figure.item a { display: flex; width: 104px; height: 104px; align-items: center; justify-content: center; border: 4px solid #bdbdbd; background: #f5f5f5; overflow: hidden; }
figure.item.expected a { border-color: #2e7d32; }
figure.item.yellow a { border-color: #f9a825; }
figure.item.red a { border-color: #d32f2f; }
figure.item.entered a { outline: 3px dashed #d32f2f; outline-offset: 1px; }
img.thumb { max-width: 104px; max-height: 104px; width: auto; height: auto; display: block; }
.thumb.missing { font-size: 10px; color: #b71c1c; padding: 4px; overflow-wrap: anywhere; }
figcaption { font-size: 11px; line-height: 1.3; }
figcaption .id { color: #555; overflow-wrap: anywhere; }
figcaption .score { color: #555; }
.move { font-size: 11px; color: #555; }
.move.up { color: #1b5e20; }
.move.down { color: #b71c1c; }
.flag { display: inline-block; font-size: 10px; color: #fff; background: #d32f2f; padding: 0 3px; border-radius: 3px; }
.cutoff { width: 4px; align-self: stretch; background: #263238; position: relative; min-height: 104px; }
.cutoff span { position: absolute; top: -2px; left: 6px; font-size: 10px; white-space: nowrap; }
footer { margin-top: 24px; font-size: 12px; color: #777; }
"#;
