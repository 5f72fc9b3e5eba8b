//! Pair mode against its Python reference (`tests/fixtures/pairs/reference.json`, written by
//! `scripts/pairs/evaluate.py` with open_clip and transformers), and every bad input it must refuse.
//!
//! The reference covers the lookbook checkpoints on the lookbook pairs file (16-token context, no tags) and
//! the fidelity checkpoints on `tests/fixtures/pairs/tiny/` (tags, repeated texts, texts cut at the
//! context, interleaved splits). Ranks must agree exactly: recall values are compared for equality and MRR
//! within 1e-12 (one rank moved changes it by more than 1e-6). Losses must agree within 1e-4 relative:
//! embeddings agree within 1e-5 (the fidelity bound), and a cosine error of 1e-5 divided by τ = 0.05
//! moves an InfoNCE logit by 2e-4 at most, averaged down over a batch's rows.

use std::path::{Path, PathBuf};

use fitcheck::embed::{Alpha, Embedder, ModelSource, ModelSpec};
use fitcheck::model::Siglip;
use fitcheck::pairs::{self, ModeReport, PairReport, PairsSpec, Retrieval};
use fitcheck::suite::Suite;
use serde_json::Value;

fn open(dir: &str) -> Siglip {
    let spec = ModelSpec {
        source: ModelSource::Local(dir.into()),
        offline: true,
        alpha: Alpha::Drop,
        pipeline: Default::default(),
    };
    Siglip::open(&spec).unwrap_or_else(|e| panic!("{e}"))
}

fn reference() -> Value {
    let text = std::fs::read_to_string("tests/fixtures/pairs/reference.json").unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(ours: f64, theirs: &Value, rel: f64, what: &str) {
    let theirs = theirs.as_f64().unwrap_or_else(|| panic!("{what}: no reference value"));
    assert!((ours - theirs).abs() <= rel * theirs.abs().max(1e-12), "{what}: ours {ours}, reference {theirs}");
}

/// `ours` as the reference file would hold it: serde_json reads floats without correct rounding, so an
/// exact comparison goes through the same text (the shortest representation, unique per f64) and parser.
fn as_read(ours: f64) -> Value {
    serde_json::from_str(&serde_json::to_string(&ours).unwrap()).unwrap()
}

fn same_retrieval(ours: &Retrieval, theirs: &Value, what: &str) {
    assert_eq!(as_read(ours.recall_at_1), theirs["recall_at_1"], "{what} recall@1");
    assert_eq!(as_read(ours.recall_at_5), theirs["recall_at_5"], "{what} recall@5");
    assert_eq!(as_read(ours.recall_at_10), theirs["recall_at_10"], "{what} recall@10");
    assert!(
        (ours.mrr - theirs["mrr"].as_f64().unwrap()).abs() < 1e-12,
        "{what} mrr: {} vs {}",
        ours.mrr,
        theirs["mrr"]
    );
}

fn same_mode(ours: &ModeReport, theirs: &Value, what: &str) {
    assert_eq!(serde_json::to_value(ours.padding).unwrap(), theirs["padding"], "{what}");
    same_retrieval(&ours.image_to_text, &theirs["image_to_text"], &format!("{what} image→text"));
    same_retrieval(&ours.text_to_image, &theirs["text_to_image"], &format!("{what} text→image"));
    assert_eq!(ours.precision_at_5_seed, ours.image_to_text.recall_at_5);
    close(ours.info_nce, &theirs["info_nce"], 1e-4, &format!("{what} InfoNCE"));
    close(ours.sigmoid.expect("SigLIP has a bias"), &theirs["sigmoid"], 1e-4, &format!("{what} sigmoid"));
}

/// Runs pair mode for one reference entry and checks every number.
fn check_run(run: &Value) -> PairReport {
    let checkpoint = run["checkpoint"].as_str().unwrap();
    let model = open(checkpoint);
    let spec = PairsSpec::new(PathBuf::from(run["file"].as_str().unwrap()));
    let report = pairs::evaluate(&model, &spec, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.batch, 16);
    assert_eq!(report.temperature, 0.05);
    assert_eq!(report.context_length, Some(run["context_length"].as_u64().unwrap() as usize));
    close(report.logit_scale.unwrap(), &run["logit_scale"], 1e-6, "logit scale");
    close(report.logit_bias.unwrap(), &run["logit_bias"], 1e-6, "logit bias");
    let splits = run["splits"].as_array().unwrap();
    assert_eq!(report.splits.len(), splits.len(), "{checkpoint}: splits");
    for (ours, theirs) in report.splits.iter().zip(splits) {
        let what = format!("{checkpoint} {}", ours.split);
        assert_eq!(ours.split, theirs["split"].as_str().unwrap());
        assert_eq!(ours.n as u64, theirs["n"].as_u64().unwrap(), "{what} n");
        assert_eq!(ours.duplicate_texts as u64, theirs["duplicate_texts"].as_u64().unwrap(), "{what} duplicates");
        assert_eq!(ours.truncated_texts.map(|t| t as u64), theirs["truncated_texts"].as_u64(), "{what} truncated");
        same_mode(&ours.batch_longest, &theirs["batch_longest"], &format!("{what} batch-longest"));
        same_mode(&ours.full_context, &theirs["full_context"], &format!("{what} full-context"));
    }
    report
}

fn runs_for(prefix: &str) -> Vec<Value> {
    let r = reference();
    let runs: Vec<Value> = r["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| run["checkpoint"].as_str().unwrap().starts_with(prefix))
        .cloned()
        .collect();
    assert!(!runs.is_empty(), "no reference runs for {prefix}");
    runs
}

#[test]
fn lookbook_pair_table_matches_python() {
    let mut reports = Vec::new();
    for run in runs_for("lookbook/") {
        let name = run["checkpoint"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
        reports.push((name, check_run(&run)));
    }
    let named: Vec<(&str, &PairReport)> = reports.iter().map(|(n, r)| (n.as_str(), r)).collect();
    // The seed's table next to production's: printed for `cargo test --test pairs -- --nocapture`.
    println!("{}", pairs::render_text(&named));
    // Batch-longest padding costs the lookbook models most of their top-1 hits (short-padded texts become
    // hubs), so the report must say the paddings disagree.
    let notes = pairs::disagreements(&named);
    assert!(notes.iter().any(|n| n.starts_with("checkpoint-a, train: image→text recall@1 is 0.073")), "{notes:#?}");
    let md = pairs::render_markdown(&named);
    assert!(md.contains("| checkpoint-b | test | 96 | 3 |"), "{md}");
}

#[test]
fn fidelity_checkpoints_with_tags_match_python() {
    for run in runs_for("tests/fixtures/siglip/") {
        let report = check_run(&run);
        // The fixture's two texts longer than 24 tokens are cut at tiny-b's context; tiny-a (16 tokens)
        // cuts every text with tags, and each of its batches holds one, so there both paddings coincide.
        if run["checkpoint"].as_str().unwrap().contains("tiny-b") {
            let t: Vec<_> = report.splits.iter().map(|s| s.truncated_texts).collect();
            assert_eq!(t, [Some(1), Some(1)]);
            for s in &report.splits {
                assert_ne!(s.batch_longest.info_nce, s.full_context.info_nce, "{}: the paddings must differ", s.split);
            }
        }
    }
}

#[test]
fn padded_to_longest_matches_open_clip_and_transformers() {
    let r = reference();
    for case in r["padded_to_longest"].as_array().unwrap() {
        let dir = case["checkpoint"].as_str().unwrap();
        let model = open(dir);
        let texts: Vec<String> = serde_json::from_value(case["texts"].clone()).unwrap();
        let want_ids: Vec<Vec<u32>> = serde_json::from_value(case["ids"].clone()).unwrap();
        let ids = model.text_pipeline().encode_padded_to_longest(&texts).unwrap();
        assert_eq!(ids, want_ids, "{dir}: token ids");
        let ctx = case["context_length"].as_u64().unwrap() as usize;
        assert!(ids[0].len() < ctx, "{dir}: the batch must be shorter than the context to test anything");
        let want: Vec<Vec<f32>> = serde_json::from_value(case["embeddings"].clone()).unwrap();
        let got = model.embed_texts_padded_to_longest(&texts).unwrap();
        let diff =
            got.iter().zip(&want).flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs())).fold(0.0, f32::max);
        assert!(diff < 1e-5, "{dir}: embeddings differ by {diff}");
        // And the padding matters: full-context embeddings of the same texts are far from these.
        let full = model.embed_texts(&texts).unwrap();
        let gap =
            got.iter().zip(&full).flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs())).fold(0.0, f32::max);
        assert!(gap > 1e-2, "{dir}: padding changed embeddings by only {gap}");
        assert_eq!(model.context_length(), Some(ctx));
    }
}

#[test]
fn token_counts_include_specials_and_ignore_truncation() {
    let model = open("tests/fixtures/siglip/tiny-b/marqo");
    // By hand from tokenizer.json: '▁vestido', '▁rojo', '</s>'; "etiquetas" is not in the vocabulary and is
    // spelled '▁', 'e', 't', 'i', 'q', 'u', 'e', 't', 'a', 's', then '</s>'.
    let texts = ["vestido rojo", "Etiquetas", &"vestido ".repeat(30)].map(String::from);
    assert_eq!(model.token_counts(&texts).unwrap(), Some(vec![3, 11, 31]));
    let ids = model.text_pipeline().encode_padded_to_longest(&texts).unwrap();
    // The long text is cut at the context (24) keeping its end-of-text token; the others are padded to it.
    assert_eq!(ids.iter().map(Vec::len).collect::<Vec<_>>(), [24, 24, 24]);
    assert_eq!(ids[2][23], 1);
    // "vestido rojo": two words, then its end-of-text token and the padding, both id 1.
    assert!(ids[0][2..].iter().all(|&id| id == 1), "{:?}", ids[0]);
}

// ---------------------------------------------------------------------------------------------------
// Bad input

/// A folder with `pairs.csv` (`csv`) and the images `a.png`, `b.png`, `c.png`.
fn pairs_dir(csv: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.png", "b.png", "c.png"] {
        std::fs::copy("tests/fixtures/pairs/tiny/images/train-00.png", dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("pairs.csv"), csv).unwrap();
    dir
}

fn load_error(csv: &str) -> String {
    let dir = pairs_dir(csv);
    let path = dir.path().join("pairs.csv");
    let err = pairs::PairsFile::load(&path).unwrap_err().to_string();
    err.replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn a_missing_image_is_named_at_its_cell() {
    assert_eq!(
        load_error("image,description,split\na.png,jean azul,train\nnope.png,remera,test\n"),
        "DIR/pairs.csv:3:1: image 'nope.png' not found (no file at 'DIR/nope.png')"
    );
}

#[test]
fn an_empty_split_is_refused() {
    assert_eq!(
        load_error("image,description,tags,split\na.png,jean azul,denim,train\nb.png,remera,, \n"),
        "DIR/pairs.csv:3:15: empty split: name the split the pair belongs to (e.g. 'train' or 'test')"
    );
}

#[test]
fn an_image_may_be_paired_once() {
    assert_eq!(
        load_error("image,description,split\na.png,jean azul,train\nb.png,remera,train\n./a.png,jean,test\n"),
        "DIR/pairs.csv:4:1: image './a.png' is already paired on line 2: each image may appear once"
    );
}

#[test]
fn malformed_rows_are_refused_with_their_position() {
    assert_eq!(
        load_error("image,description,split\na.png,jean azul, roto,train\n"),
        "DIR/pairs.csv:2:1: row has 4 fields, the header has 3: quote a field that holds a comma"
    );
    assert_eq!(
        load_error("image,description,split\na.png,\"jean azul,train\n"),
        "DIR/pairs.csv:2:7: unterminated quoted field: the closing '\"' is missing"
    );
    assert_eq!(
        load_error("image,description,tag,split\na.png,jean,denim,train\n"),
        "DIR/pairs.csv:1:19: unknown column 'tag' (known: image, description, tags, split)"
    );
    assert_eq!(
        load_error("image,split\na.png,train\n"),
        "DIR/pairs.csv:1:1: the header has no 'description' column (needs image, description and split; tags is optional)"
    );
    assert_eq!(load_error("image,description,split\n"), "DIR/pairs.csv: no pairs: the file has a header but no rows");
    assert_eq!(load_error("image,description,split\na.png,  ,train\n"), "DIR/pairs.csv:2:7: empty description");
}

#[test]
fn quoted_fields_tags_and_splits_load() {
    let dir = pairs_dir(
        "split,image,description,tags\r\ntrain,a.png,\"jean azul, \"\"mom\"\"\",\" denim ,, roto\"\r\ntest,c.png,remera.,x\r\ntrain,b.png,vestido,\r\n",
    );
    let file = pairs::PairsFile::load(&dir.path().join("pairs.csv")).unwrap();
    let texts: Vec<(&str, &str, usize)> =
        file.pairs.iter().map(|p| (p.text.as_str(), p.split.as_str(), p.line)).collect();
    assert_eq!(
        texts,
        [
            ("jean azul, \"mom\". Etiquetas: denim, roto", "train", 2),
            ("remera. Etiquetas: x", "test", 3),
            ("vestido", "train", 4)
        ]
    );
    assert_eq!(file.splits(), ["train", "test"]);
    assert_eq!(file.pairs[0].image, dir.path().join("a.png"));
}

/// Loads a suite whose `[pairs]` table is `table`, returning the error with the temporary folder as DIR.
fn suite_error(table: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("[model]\nbackend = \"toy\"\n\n[catalog]\nroot = \"catalog\"\n\n[pairs]\n{table}");
    std::fs::write(dir.path().join("fitcheck.toml"), text).unwrap();
    let err = Suite::load(dir.path()).unwrap_err().to_string();
    err.replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn the_pairs_table_is_validated() {
    assert_eq!(
        suite_error("file = \"p.csv\"\ntemperature = 0\n"),
        "DIR/fitcheck.toml:9:15: temperature must be above 0, got 0: the team's is 0.05"
    );
    assert_eq!(
        suite_error("file = \"p.csv\"\ntemperature = -0.5\n"),
        "DIR/fitcheck.toml:9:15: temperature must be above 0, got -0.5: the team's is 0.05"
    );
    assert_eq!(suite_error("file = \"p.csv\"\nbatch = 0\n"), "DIR/fitcheck.toml:9:9: batch must be at least 1, got 0");
    let err = suite_error("file = \"p.csv\"\nbatch_size = 16\n");
    assert!(err.starts_with("DIR/fitcheck.toml:9:1: unknown field 'batch_size'"), "{err}");
    let err = suite_error("batch = 16\n");
    assert_eq!(err, "DIR/fitcheck.toml:7:1: missing field 'file'");
}

#[test]
fn the_pairs_table_has_the_teams_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        "[model]\nbackend = \"toy\"\n[catalog]\nroot = \"c\"\n[pairs]\nfile = \"../p/pairs.csv\"\ntemperature = 1\n";
    std::fs::write(dir.path().join("fitcheck.toml"), text).unwrap();
    let suite = Suite::load(dir.path()).unwrap();
    let spec = suite.pairs.unwrap();
    assert_eq!(spec.batch, 16);
    assert_eq!(spec.temperature, 1.0);
    assert_eq!(spec.file, dir.path().parent().unwrap().join("p/pairs.csv"));
    // The example suite ships one.
    let example = Suite::load(Path::new("cases")).unwrap().pairs.unwrap();
    assert_eq!(example, PairsSpec::new(PathBuf::from("lookbook/pairs/pairs.csv")));
}

#[test]
fn reports_round_trip_through_json() {
    let model = open("tests/fixtures/siglip/tiny-b/marqo");
    let report = pairs::evaluate(&model, &PairsSpec::new("tests/fixtures/pairs/tiny/pairs.csv".into()), None).unwrap();
    let json = serde_json::to_string(&report).unwrap();
    let back: PairReport = serde_json::from_str(&json).unwrap();
    // serde_json may read a float back one ulp off; both sides are read by the same parser here.
    assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::from_str::<Value>(&json).unwrap());
    assert_eq!(back.splits[0].n, report.splits[0].n);
    assert!(report.definitions.iter().any(|d| d.name == "precision@5 (seed)"));
}
