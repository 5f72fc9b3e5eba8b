//! Warm runs cost nothing: a second session over an unchanged suite (text and image queries) reads no
//! weights and embeds nothing, and editing one query re-embeds that query alone.
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
    // Image queries: a catalog item by id, and a photo from outside the catalog.
    write(&suite, "b/jean.toml", "query_image = \"jean/jean-recto-azul-roto-01\"\nexpected = [\"tag:jean\"]\n");
    let photo = suite.join("b/fotos/campera.png");
    std::fs::create_dir_all(photo.parent().unwrap()).unwrap();
    std::fs::copy(root.join("cases/imagenes/fotos/campera-cuero-negro.png"), &photo).unwrap();
    write(&suite, "b/campera.toml", "query_image = \"b/fotos/campera.png\"\nexpected = [\"tag:campera\"]\n");

    let (loads0, texts0) = (loads(), texts_embedded());
    let cold = run(&suite, &cache);
    assert_eq!(loads() - loads0, 1, "a cold run reads the weights once");
    assert_eq!(texts_embedded() - texts0, 3, "three distinct queries");

    let warm = run(&suite, &cache);
    assert_eq!(cold.len(), 5);
    assert!(cold.iter().all(|c| c.1 != Verdict::Error), "{cold:?}");
    assert_eq!(warm, cold);
    assert_eq!(loads() - loads0, 1, "a warm run reads no weights, for text or image queries");
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
    assert_eq!(edited.len(), 5);
    let name = |runs: &[(String, Verdict, Option<Ranking>)], n: &str| runs.iter().find(|c| c.0 == n).cloned().unwrap();
    for unchanged in ["a/camisa", "a/vestido", "b/jean", "b/campera"] {
        assert_eq!(name(&edited, unchanged), name(&cold, unchanged));
    }
    assert_ne!(
        name(&edited, "a/pollera").2,
        name(&cold, "a/pollera").2,
        "the edited query ranks the catalog with its own embedding"
    );
}
