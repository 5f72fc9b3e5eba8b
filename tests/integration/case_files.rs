//! Every kind of bad case file, and what a good one resolves to, against the toy catalog.

use std::path::Path;

use fitcheck::case;
use fitcheck::catalog::Catalog;
use fitcheck::metrics::{Class, Metric};
use fitcheck::suite::Suite;
use fitcheck::threshold::{Op, Threshold};

fn fixtures() -> (Suite, Catalog) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/toy");
    let suite = Suite::load(&root.join("cases")).unwrap();
    let catalog = Catalog::load(&suite.catalog_root, None).unwrap();
    (suite, catalog)
}

fn check_error(text: &str, want: &str) {
    let (suite, catalog) = fixtures();
    let got = case::parse(Path::new("cases/x.toml"), text, "x".into(), &suite, &catalog);
    match got {
        Ok(_) => panic!("accepted a bad case:\n{text}"),
        Err(e) => assert_eq!(e.to_string(), want, "for:\n{text}"),
    }
}

#[test]
fn bad_cases_name_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        // Does not parse.
        ("description = \"a\nexpected = []\n", "cases/x.toml:1:17: invalid basic string, expected '\"'"),
        // Unknown key.
        (
            "description = \"a\"\nexpected = [\"remera/roja\"]\nred_flag = [\"jean/*\"]\n",
            "cases/x.toml:3:1: unknown field 'red_flag', expected one of 'description', 'query_image', 'variants', 'expected', 'yellow_flags', 'red_flags', 'k', 'snapshot_top', 'tags', 'known_failure', 'ignore', 'thresholds'",
        ),
        // Missing key.
        ("expected = [\"remera/roja\"]\n", "cases/x.toml: no query: write 'description' (the query text) or 'query_image' (a catalog item or an image under the cases directory)"),
        // Unknown item.
        (
            "description = \"a\"\nexpected = [\"remera/roja\", \"vestido-07\"]\n",
            "cases/x.toml:2:28: unknown item 'vestido-07' (not in the catalog)",
        ),
        // A glob that matches nothing.
        ("description = \"a\"\nexpected = [\"pollera/*\"]\n", "cases/x.toml:2:13: glob 'pollera/*' matches no catalog item"),
        // A tag selector that matches nothing.
        ("description = \"a\"\nexpected = [\"tag:cuero\"]\n", "cases/x.toml:2:13: no catalog item has all the tags in 'tag:cuero'"),
        // An item in two classes.
        (
            "description = \"a\"\nexpected = [\"tag:celeste\"]\nyellow_flags = [\"camisa/*\"]\n",
            "cases/x.toml:3:17: item 'camisa/celeste' is both expected and in yellow_flags: an item belongs to one class",
        ),
        // An empty expected set.
        ("description = \"a\"\nexpected = []\n", "cases/x.toml:2:12: empty expected set: name at least one item"),
        // An empty description.
        ("description = \" \"\nexpected = [\"remera/roja\"]\n", "cases/x.toml:1:15: empty description: write the query text"),
        // A threshold outside [0, 1].
        (
            "description = \"a\"\nexpected = [\"remera/roja\"]\n[thresholds]\nrecall = \">= 1.5\"\n",
            "cases/x.toml:4:10: threshold 1.5 is outside [0, 1]",
        ),
        (
            "description = \"a\"\nexpected = [\"remera/roja\"]\n[thresholds]\nprecision = -0.1\n",
            "cases/x.toml:4:13: threshold -0.1 is outside [0, 1]",
        ),
        // An unknown metric.
        (
            "description = \"a\"\nexpected = [\"remera/roja\"]\n[thresholds]\nmap = 0.5\n",
            "cases/x.toml:4:1: unknown metric 'map' (known: mrr, recall, precision, precision_strict, accuracy, accuracy_strict, hit, ndcg)",
        ),
        // k = 0.
        ("description = \"a\"\nexpected = [\"remera/roja\"]\nk = 0\n", "cases/x.toml:3:5: k must be at least 1, got 0"),
    ];
    for (text, want) in cases {
        check_error(text, want);
    }
}

#[test]
fn a_good_case_resolves_selectors_classes_and_thresholds() {
    let (suite, catalog) = fixtures();
    let text = "description = \"jean wide leg\"\nexpected = [\"tag:jean+wide-leg\"]\nyellow_flags = [\"jean/palazzo-*\"]\nred_flags = [\"jean/skinny-azul\"]\nk = 3\n[thresholds]\nmrr = \"> 0.5\"\nrecall = \"off\"\n";
    let c = case::parse(Path::new("cases/prendas/j.toml"), text, "prendas/j".into(), &suite, &catalog).unwrap();
    let class_of = |id: &str| c.classes[catalog.position(id).unwrap()];
    assert_eq!(class_of("jean/wide-azul"), Class::Expected);
    assert_eq!(class_of("jean/wide-negro"), Class::Expected);
    assert_eq!(class_of("jean/palazzo-azul"), Class::Yellow);
    assert_eq!(class_of("jean/skinny-azul"), Class::Red);
    // With explicit red flags, everything else is neutral.
    assert_eq!(class_of("remera/roja"), Class::Neutral);
    assert_eq!(c.k, 3);
    assert_eq!(c.area(), Some("prendas"));
    assert_eq!(c.thresholds.0.get(&Metric::Mrr), Some(&Threshold { op: Op::Gt, bound: 0.5 }));
    assert_eq!(c.thresholds.0.get(&Metric::Recall), None);
    assert_eq!(c.thresholds.0.get(&Metric::Accuracy), Some(&Threshold { op: Op::Ge, bound: 0.8 }));

    // Without red_flags, every item neither expected nor yellow is red.
    let text = "description = \"x\"\nexpected = [\"remera/roja\"]\n";
    let c = case::parse(Path::new("cases/x.toml"), text, "x".into(), &suite, &catalog).unwrap();
    assert_eq!(c.classes.iter().filter(|&&k| k == Class::Red).count(), catalog.len() - 1);
    assert_eq!(c.k, 2, "the suite default");
}

#[test]
fn the_manifest_must_name_existing_images() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    image::RgbImage::new(2, 2).save(dir.path().join("a/x.png")).unwrap();
    std::fs::write(dir.path().join("manifest.toml"), "[items]\n\"a/x\" = [\"t\"]\n\"a/y\" = [\"t\"]\n").unwrap();
    let e = Catalog::load(dir.path(), None).unwrap_err().to_string();
    assert!(e.contains("manifest.toml:3:1: manifest names item 'a/y' but there is no image for it under"), "{e}");
    let c = Catalog::load(&dir.path().join("a"), None).unwrap();
    assert_eq!(c.items()[0].id, "x");

    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let e = Catalog::load(&dir.path().join("empty"), None).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "empty: no images in the catalog root (looked for png, jpg, jpeg, webp, gif, bmp, tif, tiff files)"
        ),
        "{e}"
    );
}
