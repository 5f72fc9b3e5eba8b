//! The harness as a user meets it: `fitcheck test` on a copy of the toy suite in a temporary directory
//! (the same code path as `cargo test`), and case files with every kind of mistake.
//!
//! The toy backend embeds tags, so every ranking below is worked out by hand from
//! `tests/fixtures/toy/catalog/manifest.toml`: cosine = shared tags / sqrt(|query tags| · |item tags|).

use std::path::Path;
use std::process::Command;

use crate::common::{toy_suite, write};

struct Run {
    code: i32,
    out: String,
}

/// Runs `fitcheck test --suite cases -- ARGS` in `dir`, as on a developer machine (not CI).
fn fitcheck_test(dir: &Path, insta_update: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_fitcheck"))
        .current_dir(dir)
        .args(["test", "--suite", "cases", "--"])
        .args(args)
        .args(["--test-threads", "1"])
        .env_remove("CI")
        .env_remove("FITCHECK_MODEL")
        .env_remove("INSTA_WORKSPACE_ROOT")
        .env("INSTA_UPDATE", insta_update)
        .env("FITCHECK_CACHE", "off")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Run { code: out.status.code().unwrap_or(-1), out: text }
}

/// The accepted snapshot of the toy case `prendas/jean-wide-leg`, by hand. Query tags: jean, wide-leg.
/// Scores: wide-* share both of their three tags → 2/√6 = 0.816; palazzo and skinny share one → 1/√6 =
/// 0.408; the rest share none → 0. Ties go to the larger id: wide-negro before wide-azul, skinny before
/// palazzo, vestido/rojo > remera/roja > remera/celeste > camisa/celeste.
const JEAN_WIDE_LEG: &str = "\
query: jean wide leg
k: 2

mrr                   1.000  > 0.3   ok
recall@2              1.000  >= 0.6  ok
precision@2           1.000  >= 0.7  ok
precision_strict@2    1.000
accuracy              1.000  >= 0.8  ok
accuracy_strict       1.000
hit@2                 1.000
ndcg@2                1.000
red@2                     0

ranking (top 8 of 8):
rank  mark class     item
   1  ✅  expected  jean/wide-negro
   2  ✅  expected  jean/wide-azul
   3  ·  red       jean/skinny-azul
   4  ·  yellow    jean/palazzo-azul
   5  ·  red       vestido/rojo
   6  ·  red       remera/roja
   7  ·  red       remera/celeste
   8  ·  red       camisa/celeste
";

/// How trial `name` ended ("ok", "FAILED", "ignored"), read from libtest's aligned output.
fn outcome<'a>(run: &'a Run, name: &str) -> &'a str {
    run.out
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("test ")?.strip_prefix(name)?;
            rest.trim_start().strip_prefix("... ")
        })
        .unwrap_or_else(|| panic!("no trial {name} in:\n{}", run.out))
}

fn snapshot_body(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    // insta's header ends at the second '---' line.
    text.splitn(3, "---\n").nth(2).unwrap().to_string()
}

#[test]
fn lists_one_test_per_case_sorted_by_path() {
    let dir = toy_suite();
    let run = fitcheck_test(dir.path(), "no", &["--list"]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert!(run.out.contains("colores/remera-celeste: test\nprendas/jean-wide-leg: test\n"), "{}", run.out);
}

#[test]
fn new_snapshots_are_pending_until_accepted_then_pass() {
    let dir = toy_suite();
    let pending = dir.path().join("snapshots/prendas/jean-wide-leg.snap.new");
    let accepted = dir.path().join("snapshots/prendas/jean-wide-leg.snap");

    let run = fitcheck_test(dir.path(), "auto", &[]);
    assert_ne!(run.code, 0, "a new snapshot must fail until reviewed:\n{}", run.out);
    assert!(pending.is_file(), "{}", run.out);
    assert!(!accepted.exists());
    assert!(run.out.contains("no snapshot accepted yet for this case (snapshots/prendas/jean-wide-leg.snap): the new one is in snapshots/prendas/jean-wide-leg.snap.new; review it with 'cargo insta review'"), "{}", run.out);

    // Accepting (what `cargo insta accept` does) and re-running passes.
    let run = fitcheck_test(dir.path(), "always", &[]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert_eq!(snapshot_body(&accepted), JEAN_WIDE_LEG);
    let header = std::fs::read_to_string(&accepted).unwrap();
    assert!(header.contains("model: \"toy\""), "{header}");
    assert!(header.contains("input_file: \"cases/prendas/jean-wide-leg.toml\""), "{header}");
    // The catalog digest: 8 toy images.
    assert!(header.contains("catalog: \"sha256:") && header.contains(" (8 items)\""), "{header}");
    assert!(!header.contains(&*dir.path().to_string_lossy()), "no absolute paths:\n{header}");

    let run = fitcheck_test(dir.path(), "no", &[]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert_eq!(outcome(&run, "prendas/jean-wide-leg"), "ok");
}

#[test]
fn a_changed_ranking_fails_and_writes_nothing_on_ci() {
    let dir = toy_suite();
    assert_eq!(fitcheck_test(dir.path(), "always", &[]).code, 0);
    // "jean wide leg azul" adds the tag azul: wide-azul now leads alone (3/√9 = 1.000) and wide-negro
    // ties at 2/√9 = 0.667 with skinny-azul and palazzo-azul (id descending: wide-negro, skinny, palazzo).
    // Ranks 1 and 2 swap; the metrics at k = 2 do not change.
    write(dir.path(), "cases/prendas/jean-wide-leg.toml", "description = \"jean wide leg azul\"\nexpected = [\"tag:jean+wide-leg\"]\nyellow_flags = [\"jean/palazzo-*\"]\n");
    let run = fitcheck_test(dir.path(), "no", &["--exact", "prendas/jean-wide-leg"]);
    assert_ne!(run.code, 0, "{}", run.out);
    assert!(
        run.out.contains("the ranking differs from the accepted snapshot snapshots/prendas/jean-wide-leg.snap"),
        "{}",
        run.out
    );
    for line in [
        "-query: jean wide leg\n+query: jean wide leg azul\n",
        "-   1  ✅  expected  jean/wide-negro\n-   2  ✅  expected  jean/wide-azul\n+   1  ✅  expected  jean/wide-azul\n+   2  ✅  expected  jean/wide-negro\n",
    ] {
        assert!(run.out.contains(line), "the diff shows {line:?}:\n{}", run.out);
    }
    // wide-negro (rank 2) and skinny-azul (rank 3) tie at 0.667, so the cut-off k = 2 splits a tie.
    assert!(
        run.out.contains("+note: ranks 2 and 3 are tied (scores within 0.00001): the cut-off k = 2 splits a tie\n"),
        "{}",
        run.out
    );
    // Nothing else changes: seven changed lines.
    let changed = run
        .out
        .lines()
        .filter(|l| (l.starts_with('-') || l.starts_with('+')) && !l.starts_with("---") && !l.starts_with("+++"))
        .count();
    assert_eq!(changed, 7, "{}", run.out);
    assert!(!dir.path().join("snapshots/prendas/jean-wide-leg.snap.new").exists());
    assert!(run.out.contains("1 filtered out"), "--exact runs one case:\n{}", run.out);
}

#[test]
fn a_failing_case_reports_every_metric_and_the_marked_ranking() {
    let dir = toy_suite();
    // k = 5: the top 5 is wide-negro, wide-azul, skinny (red), palazzo (yellow), vestido (red):
    // precision@5 = 3/5 = 0.6 < 0.7; recall 1; mrr 1; accuracy 1 (both expected above the first red).
    write(dir.path(), "cases/prendas/jean-wide-leg.toml", "description = \"jean wide leg\"\nexpected = [\"tag:jean+wide-leg\"]\nyellow_flags = [\"jean/palazzo-*\"]\nk = 5\n");
    let run = fitcheck_test(dir.path(), "always", &[]);
    assert_ne!(run.code, 0, "{}", run.out);
    for line in [
        "1 of 4 thresholds failed: precision@5 = 0.600 (needs >= 0.7)",
        "mrr                   1.000  > 0.3   ok",
        "recall@5              1.000  >= 0.6  ok",
        "precision@5           0.600  >= 0.7  FAIL",
        "accuracy              1.000  >= 0.8  ok",
        "red@5                     2",
        "   1   0.816  ✅  expected  jean/wide-negro",
        "   4   0.408  ·  yellow    jean/palazzo-azul",
        "snapshot: snapshots/prendas/jean-wide-leg.snap\nif the model is right and the case is wrong, edit cases/prendas/jean-wide-leg.toml",
        "test colores/remera-celeste ... ok",
    ] {
        assert!(run.out.contains(line), "missing {line:?} in:\n{}", run.out);
    }
}

#[test]
fn a_broken_case_fails_alone_and_names_file_line_and_column() {
    let dir = toy_suite();
    write(
        dir.path(),
        "cases/colores/vestido-rojo.toml",
        "description = \"vestido rojo\"\nexpected = [\"vestido-07\"]\n",
    );
    let run = fitcheck_test(dir.path(), "always", &[]);
    assert_ne!(run.code, 0);
    assert_eq!(outcome(&run, "colores/vestido-rojo"), "FAILED");
    assert!(
        run.out.contains("cases/colores/vestido-rojo.toml:2:13: unknown item 'vestido-07' (not in the catalog)"),
        "{}",
        run.out
    );
    assert_eq!(outcome(&run, "colores/remera-celeste"), "ok");
    assert_eq!(outcome(&run, "prendas/jean-wide-leg"), "ok");
}

#[test]
fn known_failures_pass_while_failing_and_fail_once_fixed() {
    let dir = toy_suite();
    // Still failing (precision@5 = 0.6, see above): the trial passes and the run names it.
    write(dir.path(), "cases/prendas/jean-wide-leg.toml", "description = \"jean wide leg\"\nexpected = [\"tag:jean+wide-leg\"]\nyellow_flags = [\"jean/palazzo-*\"]\nk = 5\nknown_failure = \"skinny looks too much like wide leg\"\n");
    let run = fitcheck_test(dir.path(), "always", &[]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert!(run.out.contains("known failures (still failing, as marked): prendas/jean-wide-leg"), "{}", run.out);

    // Passing now (k = 2): the mark must go.
    write(dir.path(), "cases/prendas/jean-wide-leg.toml", "description = \"jean wide leg\"\nexpected = [\"tag:jean+wide-leg\"]\nyellow_flags = [\"jean/palazzo-*\"]\nknown_failure = \"skinny looks too much like wide leg\"\n");
    let run = fitcheck_test(dir.path(), "always", &[]);
    assert_ne!(run.code, 0, "{}", run.out);
    assert!(run.out.contains("this known failure passes now (skinny looks too much like wide leg): remove its 'known_failure' line from cases/prendas/jean-wide-leg.toml"), "{}", run.out);
}

#[test]
fn ignored_cases_run_only_with_ignored() {
    let dir = toy_suite();
    write(
        dir.path(),
        "cases/colores/remera-celeste.toml",
        "description = \"remera celeste\"\nexpected = [\"remera/celeste\"]\nk = 1\nignore = \"slow\"\n",
    );
    let run = fitcheck_test(dir.path(), "always", &[]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert_eq!(outcome(&run, "colores/remera-celeste"), "ignored");
    let run = fitcheck_test(dir.path(), "always", &["--ignored"]);
    assert_eq!(outcome(&run, "colores/remera-celeste"), "ok");
}

#[test]
fn finding_no_case_is_an_error() {
    let dir = toy_suite();
    std::fs::remove_dir_all(dir.path().join("cases/colores")).unwrap();
    std::fs::remove_dir_all(dir.path().join("cases/prendas")).unwrap();
    let run = fitcheck_test(dir.path(), "no", &[]);
    assert_ne!(run.code, 0);
    assert!(run.out.contains("error: no test cases found: scanned cases for '*.toml' files"), "{}", run.out);
}

#[test]
fn a_broken_image_fails_every_case_naming_the_image() {
    let dir = toy_suite();
    write(dir.path(), "catalog/remera/roja.png", "not a png");
    let run = fitcheck_test(dir.path(), "no", &[]);
    assert_ne!(run.code, 0);
    assert!(run.out.contains("catalog/remera/roja.png: cannot read image"), "{}", run.out);
}

#[test]
fn a_broken_suite_file_names_its_position() {
    let dir = toy_suite();
    write(
        dir.path(),
        "cases/fitcheck.toml",
        "[model]\nbackend = \"toy\"\n[catalog]\nroot = \"../catalog\"\n[defaults]\nk = 0\n",
    );
    let run = fitcheck_test(dir.path(), "no", &[]);
    assert_ne!(run.code, 0);
    assert!(run.out.contains("error: cases/fitcheck.toml:6:5: k must be at least 1, got 0"), "{}", run.out);
}

#[test]
fn filters_select_cases_by_substring() {
    let dir = toy_suite();
    let run = fitcheck_test(dir.path(), "always", &["colores/"]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert_eq!(outcome(&run, "colores/remera-celeste"), "ok");
    assert!(run.out.contains("1 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out"), "{}", run.out);
}

#[test]
fn run_prints_a_summary_and_writes_full_precision_results() {
    let dir = toy_suite();
    // k = 5 for jean wide leg: ranked E, E, R, Y, R → precision@5 = 0.6 fails the suite.
    write(dir.path(), "cases/prendas/jean-wide-leg.toml", "description = \"jean wide leg\"\nexpected = [\"tag:jean+wide-leg\"]\nyellow_flags = [\"jean/palazzo-*\"]\nk = 5\ntags = [\"jean\"]\n");
    let out = Command::new(env!("CARGO_BIN_EXE_fitcheck"))
        .current_dir(dir.path())
        .args(["run", "--json", "results.json"])
        .env("FITCHECK_CACHE", "off")
        .env_remove("FITCHECK_MODEL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("model: toy @ local (tags)\n"), "{text}");
    assert!(
        text.contains(
            "prendas/jean-wide-leg         1.000      1.000      0.600      1.000      1.000      0.982  FAIL"
        ),
        "{text}"
    );
    assert!(
        text.contains("colores/remera-celeste        1.000      1.000      1.000      1.000      1.000      1.000  ok"),
        "{text}"
    );
    // Means over the two cases: precision (1 + 0.6) / 2.
    assert!(text.contains("suite                         1.000      1.000      0.800"), "{text}");
    assert!(text.contains("2 cases: 1 passed, 1 failed"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap()).unwrap();
    let run = &json["runs"][0];
    let jean = &run["cases"][1];
    assert_eq!(jean["name"], "prendas/jean-wide-leg");
    assert_eq!(jean["metrics"]["precision"], 0.6);
    // ndcg@5 at full precision: (2 + 2/log2 3 + 1/log2 5) / (2 + 2/log2 3 + 1/log2 4).
    let want = (2.0 + 2.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (2.0 + 2.0 / 3f64.log2() + 0.5);
    assert!((jean["metrics"]["ndcg"].as_f64().unwrap() - want).abs() < 1e-12);
    assert_eq!(jean["verdict"], "failed");
    assert_eq!(run["group_means"]["tag:jean"]["cases"], 1);
    assert_eq!(run["means"]["means"]["precision"], 0.8);
    assert_eq!(run["counts"]["passed"], 1);
    assert_eq!(run["counts"]["failed"], 1);
    assert_eq!(json["manifest"]["ndcg_gains"]["yellow"], 1);
    assert_eq!(json["manifest"]["default_k"], 2);
}

#[test]
fn a_missing_model_is_one_clear_error() {
    let dir = toy_suite();
    let out = Command::new(env!("CARGO_BIN_EXE_fitcheck"))
        .current_dir(dir.path())
        .arg("run")
        .env("FITCHECK_MODEL", "./nope")
        .env("FITCHECK_CACHE", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "nothing could be judged");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: ./nope: not a checkpoint directory: give an existing directory or a hub id such as 'Marqo/marqo-fashionSigLIP'\n"
    );
}

/// `fitcheck ARGS` in `dir`, off CI, writing no snapshots, with `FITCHECK_CACHE=cache`.
fn fitcheck_command(dir: &Path, args: &[&str], cache: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fitcheck"));
    command
        .current_dir(dir)
        .args(args)
        .env_remove("CI")
        .env_remove("FITCHECK_MODEL")
        .env("INSTA_UPDATE", "no")
        .env("FITCHECK_CACHE", cache);
    command
}

/// Runs `fitcheck ARGS` in `dir` off CI, without the cache.
fn fitcheck(dir: &Path, args: &[&str]) -> Run {
    let out = fitcheck_command(dir, args, "off").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Run { code: out.status.code().unwrap_or(-1), out: text }
}

#[test]
fn run_exits_0_when_all_pass_1_when_cases_fail_2_when_nothing_can_be_judged() {
    let dir = toy_suite();
    assert_eq!(fitcheck(dir.path(), &["run"]).code, 0);

    // A case file that does not parse is a failed case, not a broken run; its message is in the summary.
    write(dir.path(), "cases/colores/roto.toml", "description = \"x\"\nexpected = \n");
    let run = fitcheck(dir.path(), &["run"]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(run.out.contains("colores/roto                      -          -"), "{}", run.out);
    assert!(run.out.contains("error: colores/roto: cases/colores/roto.toml:2:12: "), "{}", run.out);
    std::fs::remove_file(dir.path().join("cases/colores/roto.toml")).unwrap();

    // A suite file that does not parse, a missing catalog: nothing can be judged.
    let suite = dir.path().join("cases/fitcheck.toml");
    let good = std::fs::read_to_string(&suite).unwrap();
    std::fs::write(&suite, good.replace("root = \"../catalog\"", "root = \"../nowhere\"")).unwrap();
    let run = fitcheck(dir.path(), &["run"]);
    assert_eq!(run.code, 2, "{}", run.out);
    assert!(run.out.contains("error: nowhere: catalog root is not a directory"), "{}", run.out);
    std::fs::write(&suite, good.replace("[catalog]", "[catalogue]")).unwrap();
    let run = fitcheck(dir.path(), &["run"]);
    assert_eq!(run.code, 2, "{}", run.out);
    assert!(run.out.contains("error: cases/fitcheck.toml:"), "{}", run.out);
}

#[test]
fn discovery_reports_what_cannot_be_a_case_instead_of_skipping_it() {
    let dir = toy_suite();
    // A directory named like a case file.
    std::fs::create_dir_all(dir.path().join("cases/colores/raro.toml")).unwrap();
    // The same name in two Unicode forms: "camión" precomposed (NFC) and decomposed (NFD, as macOS
    // writes it) are two files here but one test name.
    write(
        dir.path(),
        "cases/colores/cami\u{f3}n.toml",
        "description = \"remera celeste\"\nexpected = [\"remera/celeste\"]\nk = 1\n",
    );
    write(
        dir.path(),
        "cases/colores/camio\u{301}n.toml",
        "description = \"remera celeste\"\nexpected = [\"remera/celeste\"]\nk = 1\n",
    );
    // A case file that is not UTF-8: byte 0xE9 (latin-1 é) on line 2, after 17 valid characters.
    std::fs::write(dir.path().join("cases/colores/latin1.toml"), b"expected = [\"x\"]\ndescription = \"caf\xe9\"\n")
        .unwrap();
    let run = fitcheck_test(dir.path(), "no", &[]);
    assert_ne!(run.code, 0);
    assert!(run.out.contains("cases/colores/raro.toml: a directory named like a case file"), "{}", run.out);
    assert!(
        run.out.contains("the test name 'colores/cami\u{f3}n' is already taken by cases/colores/cami"),
        "{}",
        run.out
    );
    assert!(
        run.out.contains("cases/colores/latin1.toml:2:19: not valid UTF-8: save the case file as UTF-8"),
        "{}",
        run.out
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_case_file_is_a_case() {
    let dir = toy_suite();
    let elsewhere = write(
        dir.path(),
        "shared/remera.toml",
        "description = \"remera celeste\"\nexpected = [\"remera/celeste\"]\nk = 1\n",
    );
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("cases/colores/enlace.toml")).unwrap();
    let run = fitcheck_test(dir.path(), "no", &["--list"]);
    assert!(run.out.contains("colores/enlace: test"), "{}", run.out);
}

#[test]
fn a_snapshot_that_cannot_be_written_is_a_message_not_a_panic() {
    let dir = toy_suite();
    // A file where the snapshot folder should be.
    write(dir.path(), "snapshots/prendas", "not a folder");
    let run = fitcheck_test(dir.path(), "auto", &["--exact", "prendas/jean-wide-leg"]);
    assert_ne!(run.code, 0);
    assert!(run.out.contains("snapshots/prendas/jean-wide-leg.snap: Not a directory"), "{}", run.out);
    assert!(!run.out.contains("panicked"), "{}", run.out);
}

#[test]
fn the_registry_rejects_unknown_keys_with_their_position() {
    let dir = toy_suite();
    let suite = dir.path().join("cases/fitcheck.toml");
    let text = std::fs::read_to_string(&suite).unwrap()
        + "\n[[checkpoints]]\nname = \"a\"\npath = \"../ckpt\"\nbatch_size = 64\nlearnig_rate = 1e-5\n";
    std::fs::write(&suite, text).unwrap();
    let run = fitcheck(dir.path(), &["run"]);
    assert_eq!(run.code, 2, "{}", run.out);
    assert!(run.out.contains("error: cases/fitcheck.toml:15:1: unknown field 'learnig_rate'"), "{}", run.out);
}

#[test]
fn items_previews_what_a_selector_matches() {
    let dir = toy_suite();
    let run = fitcheck(dir.path(), &["items", "tag:jean+wide-leg"]);
    assert_eq!(run.code, 0, "{}", run.out);
    assert!(run.out.starts_with("jean/wide-azul"), "{}", run.out);
    assert!(run.out.contains("jean/wide-negro"), "{}", run.out);
    assert!(run.out.ends_with("2 of 8 items match 'tag:jean+wide-leg'\n"), "{}", run.out);
    let run = fitcheck(dir.path(), &["items", "zapato/*"]);
    assert_eq!(run.code, 2, "{}", run.out);
}

#[test]
fn an_image_query_ranks_the_catalog_without_the_image_itself() {
    let dir = toy_suite();
    // The query is catalog item jean/wide-azul (tags jean, wide-leg, azul). Left out of the ranking, it
    // leaves wide-negro (jean, wide-leg: 2/√9 = 0.667) tied with skinny-azul and palazzo-azul (jean,
    // azul: 0.667), ordered by id descending; every other item shares no tag (0).
    write(dir.path(), "cases/prendas/jean-wide-leg.toml", "query_image = \"jean/wide-azul\"\nexpected = [\"tag:jean+wide-leg\"]\nyellow_flags = [\"jean/palazzo-*\"]\nk = 1\n");
    let run = fitcheck_test(dir.path(), "always", &["--exact", "prendas/jean-wide-leg"]);
    assert_eq!(run.code, 0, "{}", run.out);
    let snap = std::fs::read_to_string(dir.path().join("snapshots/prendas/jean-wide-leg.snap")).unwrap();
    assert!(snap.contains("  query_image: \"jean/wide-azul\"\n"), "the header says the query is an image:\n{snap}");
    for line in [
        "query: image jean/wide-azul\nk: 1\nleft out (the query image and copies of it): jean/wide-azul\n",
        "ranking (top 7 of 7):\nrank  mark class     item\n   1  ✅  expected  jean/wide-negro\n   2  ·  red       jean/skinny-azul\n   3  ·  yellow    jean/palazzo-azul\n",
    ] {
        assert!(snap.contains(line), "missing {line:?} in:\n{snap}");
    }
}

#[test]
fn an_image_outside_the_catalog_leaves_out_catalog_copies_by_content() {
    let dir = toy_suite();
    // A copy of jean/wide-azul under another name: matched by content, it is left out too.
    std::fs::create_dir_all(dir.path().join("cases/fotos")).unwrap();
    std::fs::copy(dir.path().join("catalog/jean/wide-azul.png"), dir.path().join("cases/fotos/mi foto.png")).unwrap();
    write(dir.path(), "cases/prendas/jean-wide-leg.toml", "query_image = \"fotos/mi foto.png\"\nexpected = [\"tag:jean+wide-leg\"]\nk = 7\nthresholds = { mrr = \"off\", recall = \"off\", precision = \"off\", accuracy = \"off\" }\n");
    let run = fitcheck_test(dir.path(), "always", &["--exact", "prendas/jean-wide-leg"]);
    assert_eq!(run.code, 0, "{}", run.out);
    let snap = std::fs::read_to_string(dir.path().join("snapshots/prendas/jean-wide-leg.snap")).unwrap();
    assert!(snap.contains("left out (the query image and copies of it): jean/wide-azul\n"), "{snap}");
    assert!(snap.contains("ranking (top 7 of 7):"), "{snap}");
}

#[test]
fn image_query_mistakes_name_the_file_and_the_fix() {
    let dir = toy_suite();
    let cases = [
        (
            "description = \"x\"\nquery_image = \"jean/wide-azul\"\nexpected = [\"jean/wide-negro\"]\n",
            "cases/colores/malo.toml:2:15: a case queries with a text ('description') or with an image ('query_image'), not both: keep one",
        ),
        ("expected = [\"jean/wide-negro\"]\n", "cases/colores/malo.toml: no query: write 'description' (the query text) or 'query_image'"),
        (
            "query_image = \"../catalog/jean/wide-azul.png\"\nexpected = [\"jean/wide-negro\"]\n",
            "cases/colores/malo.toml:1:15: query image '../catalog/jean/wide-azul.png' is outside the cases directory cases",
        ),
        (
            "query_image = \"fotos/nada.jpg\"\nexpected = [\"jean/wide-negro\"]\n",
            "cases/colores/malo.toml:1:15: query image 'fotos/nada.jpg' is neither a catalog item nor a file under cases",
        ),
        (
            "query_image = \"jean/wide-azul\"\nvariants = [\"otra\"]\nexpected = [\"jean/wide-negro\"]\n",
            "cases/colores/malo.toml:2:13: variants are other phrasings of a text query: an image query has none",
        ),
        (
            "query_image = \"jean/wide-azul\"\nexpected = [\"jean/wide-azul\"]\n",
            "cases/colores/malo.toml: every expected item is the query image itself (or a copy of it): expect other items",
        ),
    ];
    for (text, want) in cases {
        write(dir.path(), "cases/colores/malo.toml", text);
        let run = fitcheck_test(dir.path(), "no", &["--exact", "colores/malo"]);
        assert_ne!(run.code, 0, "{text}");
        assert!(run.out.contains(want), "missing {want:?} in:\n{}", run.out);
    }
    // An image that does not decode is the case's error, naming the file.
    write(dir.path(), "cases/fotos/rota.png", "not a png");
    write(
        dir.path(),
        "cases/colores/malo.toml",
        "query_image = \"fotos/rota.png\"\nexpected = [\"jean/wide-negro\"]\n",
    );
    let run = fitcheck_test(dir.path(), "no", &["--exact", "colores/malo"]);
    assert!(
        run.out.contains("cases/colores/malo.toml: cannot embed the query: cases/fotos/rota.png: cannot read image"),
        "{}",
        run.out
    );
}

#[test]
fn each_variant_phrasing_is_its_own_test_and_the_summary_names_the_one_that_fails() {
    let dir = toy_suite();
    // "jean wide leg" and "wide leg jean" hit the same tags (jean, wide-leg): both pass at k = 2.
    // "jeans anchos" hits no tag: every score is 0 and the ranking is by id descending (vestido/rojo,
    // remera/roja, remera/celeste, jean/wide-negro, ...), so the first expected item is 4th: mrr 0.25,
    // below the suite's "> 0.3".
    write(dir.path(), "cases/prendas/jean-wide-leg.toml", "description = \"jean wide leg\"\nvariants = [\"wide leg jean\", \"jeans anchos\"]\nexpected = [\"tag:jean+wide-leg\"]\nyellow_flags = [\"jean/palazzo-*\"]\n");
    let run = fitcheck_test(dir.path(), "always", &["--list"]);
    assert!(run.out.contains("prendas/jean-wide-leg: test\nprendas/jean-wide-leg~wide-leg-jean: test\nprendas/jean-wide-leg~jeans-anchos: test\n"), "{}", run.out);
    let run = fitcheck(dir.path(), &["run"]);
    assert_eq!(run.code, 1, "{}", run.out);
    assert!(run.out.contains("prendas/jean-wide-leg~wide-leg-jean      1.000"), "{}", run.out);
    assert!(run.out.contains("prendas/jean-wide-leg~jeans-anchos       0.250"), "{}", run.out);
    assert!(
        run.out.lines().any(|l| l.starts_with("prendas/jean-wide-leg~jeans-anchos") && l.ends_with("FAIL")),
        "{}",
        run.out
    );
    // Two phrasings that name the same test are refused.
    write(
        dir.path(),
        "cases/prendas/jean-wide-leg.toml",
        "description = \"jean wide leg\"\nvariants = [\"Jean, wide leg!\"]\nexpected = [\"tag:jean+wide-leg\"]\n",
    );
    let run = fitcheck(dir.path(), &["run"]);
    assert!(
        run.out.contains(
            "cases/prendas/jean-wide-leg.toml:2:13: variant 'Jean, wide leg!' repeats another phrasing of this case"
        ),
        "{}",
        run.out
    );
}

/// Runs `fitcheck ARGS` in `dir` off CI with the embedding cache in `dir/cache`; stdout and stderr apart.
fn fitcheck_cached(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = fitcheck_command(dir, args, "cache").output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn cache_build_writes_shards_that_the_tests_read_and_warns_about_foreign_ones() {
    let dir = toy_suite();
    let (code, out, err) = fitcheck_cached(dir.path(), &["cache", "build", "--suite", "cases", "--shard", "1/2"]);
    assert_eq!(code, 0, "{out}{err}");
    // The toy catalog's 8 ids, hashed (SHA-256, first 8 bytes little-endian, mod 2, worked out in
    // Python): camisa/celeste, jean/palazzo-azul, jean/skinny-azul, remera/celeste, vestido/rojo in 1.
    assert!(out.starts_with("shard 1/2: 5 of 8 items (5 embedded, 0 cached) written to cache/shards/"), "{out}");
    let (code, out, _) = fitcheck_cached(dir.path(), &["cache", "build", "--shard", "2/2", "--out", "elsewhere.shard"]);
    assert_eq!(code, 0);
    // The second shard's images are read through the same cache: the first shard's are not in it.
    assert_eq!(out, "shard 2/2: 3 of 8 items (3 embedded, 0 cached) written to elsewhere.shard\n");

    // A shard that is not a shard, in the folder the tests read: named, ignored, before any test line.
    std::fs::write(dir.path().join("cache/shards/broken.shard"), b"FITSHRD1").unwrap();
    let (_, out, err) = fitcheck_cached(dir.path(), &["test", "--", "--test-threads", "1"]);
    assert!(out.contains("running 2 tests"), "{out}");
    assert!(
        err.starts_with(
            "warning: cache/shards/broken.shard: not a complete fitcheck shard file (torn or another format): \
             build it again: ignored\n"
        ),
        "{err}"
    );

    let (code, _, err) = fitcheck_cached(dir.path(), &["cache", "build", "--shard", "3/2"]);
    assert_eq!(code, 2);
    assert!(err.contains("shard '3/2': write it as 'i/n' with 1 <= i <= n, e.g. '3/20'"), "{err}");
}
