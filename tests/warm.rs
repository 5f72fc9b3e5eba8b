//! Warm runs cost nothing: a second session over an unchanged suite reads no weights and embeds
//! nothing, and editing one query re-embeds that query alone.
//!
//! Its own test binary, because it counts model loads and text-tower inputs process-wide.

use std::path::Path;

use fitcheck::harness::{Overrides, Session};
use fitcheck::model::{loads, texts_embedded};
use fitcheck::result::Ranking;
use fitcheck::verdict::Verdict;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Runs the suite in `dir` in a fresh session; returns every case's verdict and ranking.
fn run(dir: &Path, cache: &Path) -> Vec<(String, Verdict, Option<Ranking>)> {
    let overrides = Overrides { cache: Some(cache.display().to_string()), ..Overrides::default() };
    let session = Session::open(dir, &overrides).unwrap_or_else(|e| panic!("{e}"));
    let result = session.run().unwrap_or_else(|e| panic!("{e}"));
    result.cases.iter().map(|c| (c.name.clone(), c.verdict, c.ranking.clone())).collect()
}

#[test]
fn a_warm_session_loads_no_weights_and_an_edited_query_alone_is_embedded() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("cases");
    let cache = tmp.path().join("cache");
    write(
        &suite,
        "fitcheck.toml",
        &format!(
            "[model]\npath = '{}'\n\n[catalog]\nroot = '{}'\n",
            root.join("lookbook/checkpoints/checkpoint-b").display(),
            root.join("lookbook/catalog").display()
        ),
    );
    write(&suite, "a/camisa.toml", "description = \"camisa celeste\"\nexpected = [\"tag:camisa+celeste\"]\n");
    write(&suite, "a/pollera.toml", "description = \"pollera amarilla\"\nexpected = [\"tag:pollera+amarillo\"]\n");
    write(&suite, "a/vestido.toml", "description = \"vestido rojo\"\nexpected = [\"tag:vestido+rojo\"]\n");

    let (loads0, texts0) = (loads(), texts_embedded());
    let cold = run(&suite, &cache);
    assert_eq!(loads() - loads0, 1, "a cold run reads the weights once");
    assert_eq!(texts_embedded() - texts0, 3, "three distinct queries");

    let warm = run(&suite, &cache);
    assert_eq!(warm, cold);
    assert_eq!(loads() - loads0, 1, "a warm run reads no weights");
    assert_eq!(texts_embedded() - texts0, 3, "a warm run embeds no query");

    // One description changes: the model is loaded for it, and only it goes through the text tower.
    write(
        &suite,
        "a/pollera.toml",
        "description = \"pollera amarilla larga\"\nexpected = [\"tag:pollera+amarillo\"]\n",
    );
    let edited = run(&suite, &cache);
    assert_eq!(loads() - loads0, 2);
    assert_eq!(texts_embedded() - texts0, 4, "only the edited query is embedded");
    assert_eq!(edited.len(), 3);
    assert_eq!(edited[0], cold[0]);
    assert_eq!(edited[2], cold[2]);
    assert_ne!(edited[1].2, cold[1].2, "the edited query ranks the catalog with its own embedding");
}
