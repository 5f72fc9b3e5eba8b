//! `fitcheck compare` as a user meets it, on the bundled lookbook: checkpoint-b (the suite's model) against
//! the less-trained checkpoint-a, on a copy of the example suite in a temporary directory.
//!
//! The expected numbers come from elsewhere than the code under test: the suite means and pass counts
//! of both checkpoints were computed in Python by `scripts/lookbook/evaluate.py` (see
//! `lookbook/checkpoints/README.md`: checkpoint-a 9 passed, 13 failed, 8 known failures, mean mrr /
//! precision / accuracy / recall 0.87 / 0.67 / 0.50 / 0.57; checkpoint-b 22 / 0 / 8), and checkpoint-a's
//! ranking of `prendas/jean-wide-leg` is the one the README shows for it.

use std::path::{Path, PathBuf};
use std::process::Command;

use fitcheck::compare::Change;
use fitcheck::document::Document;
use fitcheck::verdict::Verdict;

struct Run {
    code: i32,
    out: String,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The example suite and its accepted snapshots, copied; the suite file points at the repository's
/// lookbook (or at `catalog`, when given).
fn suite(catalog: Option<&Path>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("cases"), &dir.path().join("cases"));
    copy_tree(&repo().join("snapshots"), &dir.path().join("snapshots"));
    let file = dir.path().join("cases/fitcheck.toml");
    let lookbook = repo().join("lookbook").to_string_lossy().replace('\\', "/");
    let mut text = std::fs::read_to_string(&file).unwrap().replace("../lookbook", &lookbook);
    if let Some(c) = catalog {
        text = text.replace(&format!("{lookbook}/catalog"), &c.to_string_lossy().replace('\\', "/"));
    }
    std::fs::write(&file, text).unwrap();
    dir
}

/// Runs `fitcheck ARGS` in `dir` with `env`, off CI, writing no snapshot unless asked.
fn fitcheck(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fitcheck"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("CI")
        .env_remove("FITCHECK_MODEL")
        .env("INSTA_UPDATE", "no")
        .env("FITCHECK_CACHE", PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fitcheck-cache"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Run { code: out.status.code().unwrap_or(-1), out: text }
}

#[test]
fn compare_reports_the_leaderboard_regressions_and_movements_and_gates_on_them() {
    let dir = suite(None);
    let run = fitcheck(dir.path(), &["compare", "checkpoint-a", "--json", "out.json", "--markdown", "out.md"], &[]);
    assert_eq!(run.code, 1, "13 regressions fail the default gate:\n{}", run.out);
    for line in [
        "baseline: checkpoint-b (",
        "checkpoint-b        22*         0*         8 ",
        "checkpoint-a         9         13          8 ",
        "checkpoint-a against checkpoint-b: 13 regressions, 0 fixes",
        "  prendas/jean-wide-leg  passed → failed",
        "gate: checkpoint-a: 13 case(s) regressed against checkpoint-b",
        "training settings (from the checkpoints registry)",
        "padding: batch-longest",
    ] {
        assert!(run.out.contains(line), "missing {line:?} in:\n{}", run.out);
    }

    // The JSON reads back as the results it was written from.
    let doc: Document = serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap()).unwrap();
    let (b, a) = (&doc.runs[0], &doc.runs[1]);
    assert_eq!((b.name.as_str(), a.name.as_str()), ("checkpoint-b", "checkpoint-a"));
    assert_eq!([b.count(Verdict::Passed), b.count(Verdict::Failed), b.count(Verdict::KnownFailure)], [22, 0, 8]);
    assert_eq!([a.count(Verdict::Passed), a.count(Verdict::Failed), a.count(Verdict::KnownFailure)], [9, 13, 8]);
    let mean = |m: &str| a.means.means[&fitcheck::metrics::Metric::from_key(m).unwrap()];
    for (metric, python) in [("mrr", 0.868), ("precision", 0.674), ("accuracy", 0.502), ("recall", 0.566)] {
        assert!((mean(metric) - python).abs() < 5e-4, "{metric}: {} vs {python}", mean(metric));
    }
    assert_eq!(a.settings["steps"], "900");
    assert_eq!(doc.manifest.near_tie, 1e-4);
    assert_eq!(doc.pairs.len(), 2);

    let cmp = &doc.comparisons[0];
    assert_eq!((cmp.count(Change::Regression), cmp.count(Change::Fix)), (13, 0));
    assert_eq!(cmp.cases[0].change, Change::Regression, "regressions come first");
    let jean = cmp.cases.iter().find(|c| c.name == "prendas/jean-wide-leg").unwrap();
    let m = jean.movement.as_ref().unwrap();
    assert_eq!(m.first_expected, (Some(1), Some(2)));
    let moved = |id: &str| m.expected.iter().find(|e| e.id == id).map(|e| (e.from, e.to));
    assert_eq!(moved("jean/jean-wide-leg-negro-01"), Some((Some(2), Some(10))));
    assert_eq!(moved("jean/jean-wide-leg-blanco-roto-01"), Some((Some(8), Some(42))));
    assert_eq!(moved("jean/jean-wide-leg-celeste-01"), None, "rank 3 under both");
    let reds: Vec<&str> = m.red_entered.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(reds, ["vestido/vestido-negro-lunares-ml-01"]);
    let mrr = cmp.metrics.iter().find(|x| x.metric == fitcheck::metrics::Metric::Mrr).unwrap();
    assert_eq!(mrr.paired.wins + mrr.paired.ties + mrr.paired.losses, 30);

    let md = std::fs::read_to_string(dir.path().join("out.md")).unwrap();
    assert!(md.starts_with("## ❌ fitcheck compare: 13 regression(s)\n"), "{md}");
    for part in [
        "| checkpoint | revision | passed | failed | known |",
        "| checkpoint-b (baseline) | `local` | **22** | **0** | 8 |",
        "#### Regressions (13)",
        "- **prendas/jean-wide-leg**: passed → failed",
        "<details><summary>Ranking moved, verdict unchanged (",
        "| metric | baseline | candidate | diff | win | tie | loss | p | 95% interval |",
        "### Pair table",
    ] {
        assert!(md.contains(part), "missing {part:?} in:\n{md}");
    }

    // The gate's other rules. Recall's suite mean drops by 0.808 - 0.566 = 0.242.
    let gate = |args: &[&str]| {
        let mut all = vec!["compare", "checkpoint-a"];
        all.extend_from_slice(args);
        fitcheck(dir.path(), &all, &[]).code
    };
    assert_eq!(gate(&["--fail-on", "never"]), 0);
    assert_eq!(gate(&["--fail-on", "never", "--max-drop", "recall=0.25"]), 0);
    assert_eq!(gate(&["--fail-on", "never", "--max-drop", "recall=0.2"]), 1);
    assert_eq!(gate(&["--fail-on", "threshold"]), 1);
    assert_eq!(gate(&["--max-drop", "recal=0.2"]), 2, "a bad flag is a usage error");
}

#[test]
fn a_checkpoint_that_does_not_load_is_status_2_and_writes_nothing() {
    let dir = suite(None);
    let run = fitcheck(dir.path(), &["compare", "./nowhere", "--json", "out.json"], &[]);
    assert_eq!(run.code, 2, "{}", run.out);
    assert!(run.out.contains("error: ./nowhere: not a checkpoint directory"), "{}", run.out);
    assert!(!dir.path().join("out.json").exists());
}

#[test]
fn write_snapshots_adopts_the_candidate() {
    let dir = suite(None);
    let run = fitcheck(dir.path(), &["compare", "checkpoint-a", "--fail-on", "never", "--write-snapshots"], &[]);
    assert_eq!(run.code, 0, "{}", run.out);
    // All 30 rankings differ between the two checkpoints.
    assert!(run.out.contains("wrote 30 snapshot(s) of checkpoint-a"), "{}", run.out);
    let snap = std::fs::read_to_string(dir.path().join("snapshots/prendas/jean-wide-leg.snap")).unwrap();
    assert!(snap.contains("checkpoint-a\"\n"), "{snap}");
    assert!(snap.contains("  10  ❌  expected  jean/jean-wide-leg-negro-01\n"), "{snap}");
    // The candidate's own snapshots now match it.
    let a = repo().join("lookbook/checkpoints/checkpoint-a");
    let run = fitcheck(
        dir.path(),
        &["test", "--", "--exact", "prendas/jean-wide-leg"],
        &[("FITCHECK_MODEL", a.to_str().unwrap())],
    );
    assert!(!run.out.contains("differs from the accepted snapshot"), "{}", run.out);
    let run = fitcheck(dir.path(), &["compare", "checkpoint-a", "--fail-on", "never", "--write-snapshots"], &[]);
    assert!(run.out.contains("wrote 0 snapshot(s)"), "{}", run.out);
}

#[test]
fn a_changed_catalog_and_other_snapshots_are_named_first() {
    let catalog = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("lookbook/catalog"), catalog.path());
    // One image more: the digest in the accepted snapshots no longer matches.
    std::fs::create_dir_all(catalog.path().join("extra")).unwrap();
    std::fs::copy(
        repo().join("lookbook/catalog/jean/jean-acampanado-azul-01.png"),
        catalog.path().join("extra/copia.png"),
    )
    .unwrap();
    let dir = suite(Some(catalog.path()));
    let run = fitcheck(dir.path(), &["compare", "checkpoint-a", "--fail-on", "never"], &[]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert!(
        run.out.contains("note: the catalog changed since the snapshots were accepted (sha256:bd2890f14666c758 (206 items) then, sha256:"),
        "{}",
        run.out
    );
    assert!(run.out.contains(" (207 items) now)"), "{}", run.out);

    // Baseline checkpoint-a, while the snapshots were accepted with checkpoint-b.
    let dir = suite(None);
    let run =
        fitcheck(dir.path(), &["compare", "--baseline", "checkpoint-a", "checkpoint-b", "--fail-on", "never"], &[]);
    assert!(
        run.out
            .contains("note: the accepted snapshots name lookbook/checkpoints/checkpoint-b @ local, not the baseline"),
        "{}",
        run.out
    );
    assert!(run.out.contains("checkpoint-b against checkpoint-a: 0 regressions, 13 fixes"), "{}", run.out);
}

#[test]
fn snapshots_do_not_change_with_the_thread_count_and_a_new_checkpoint_shows_ranks() {
    let dir = suite(None);
    for threads in ["1", "2"] {
        let run = fitcheck(dir.path(), &["test"], &[("RAYON_NUM_THREADS", threads), ("FITCHECK_CACHE", "off")]);
        assert_eq!(run.code, 0, "{threads} thread(s):\n{}", run.out);
    }
    let a = repo().join("lookbook/checkpoints/checkpoint-a");
    let run = fitcheck(
        dir.path(),
        &["test", "--", "--exact", "prendas/jean-wide-leg"],
        &[("FITCHECK_MODEL", a.to_str().unwrap())],
    );
    let diff: Vec<&str> = run
        .out
        .lines()
        .skip_while(|l| *l != "+++ new")
        .skip(1)
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("---"))
        .collect();
    assert!(diff.contains(&"-   2  ✅  expected  jean/jean-wide-leg-negro-01"), "{}", run.out);
    assert!(diff.contains(&"+  10  ❌  expected  jean/jean-wide-leg-negro-01"), "{}", run.out);
    assert!(diff.contains(&"+recall@5              0.500  >= 0.6  FAIL"), "{}", run.out);
    // Ranks and metrics, no scores: every changed ranking row is "rank mark class item".
    for line in diff.iter().filter(|l| l[1..].trim_start().starts_with(|c: char| c.is_ascii_digit())) {
        let fields: Vec<&str> = line[1..].split_whitespace().collect();
        assert_eq!(fields.len(), 4, "{line}");
    }
    assert!(diff.len() <= 40, "{} changed lines:\n{}", diff.len(), run.out);
}

#[test]
fn queries_the_context_cuts_are_warned_about() {
    let dir = suite(None);
    std::fs::write(
        dir.path().join("cases/colores/largo.toml"),
        "description = \"vestido rojo largo de fiesta con mangas cortas y estampado de flores amarillas para el verano en la playa\"\nexpected = [\"tag:vestido+rojo\"]\nk = 3\n",
    )
    .unwrap();
    let run = fitcheck(dir.path(), &["run"], &[]);
    assert!(
        run.out.contains("warning: cases/colores/largo.toml: the query 'vestido rojo largo de fiesta"),
        "{}",
        run.out
    );
    assert!(run.out.contains("tokens and the model reads 16: the rest is cut off"), "{}", run.out);
}
