//! Property tests: whatever a user writes, the parsers answer with a value or an error, never a panic.
//!
//! Covered: threshold strings (`Threshold::parse`), catalog selectors (`Catalog::select`, on a small
//! catalog written to a temporary directory), and case files (`case::parse`, on arbitrary text and on a
//! valid case with arbitrary values spliced into each field). Besides not panicking, every answer must
//! keep the invariants the rest of the crate relies on: a threshold's bound is in [0, 1], a selector's
//! hits are non-empty, sorted and really match, and a case error names the case file.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use fitcheck::case;
use fitcheck::catalog::Catalog;
use fitcheck::suite::Suite;
use fitcheck::threshold::{Op, Threshold};

fn config() -> ProptestConfig {
    // Deterministic across runs (no persisted failure files, fixed seed).
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(7),
        ..Default::default()
    }
}

/// Strings close to thresholds: operators, digits, signs, exponents, `inf`, `NaN`, `off`, spaces.
fn threshold_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t]{0,2}(>|>=|=>|<|=|)[ \t]{0,2}[-+]?[0-9.]{0,6}([eE][-+]?[0-9]{0,4})?[ \t]{0,2}",
        "[ ><=]{0,3}(off|OFF|of|inf|-inf|NaN|nan|infinity|0x1|1_0|)[ ]{0,2}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn threshold_parse_never_panics(text in threshold_like()) {
        match Threshold::parse(&text) {
            Ok(Some(t)) => prop_assert!((0.0..=1.0).contains(&t.bound), "{text:?} gave {t:?}"),
            Ok(None) => prop_assert_eq!(text.trim(), "off"),
            Err(msg) => {
                prop_assert!(!msg.is_empty());
                prop_assert!(!msg.ends_with('.'), "{msg}");
            }
        }
    }

    #[test]
    fn threshold_parse_reads_every_bound_in_range(bound in 0.0f64..=1.0, strict in any::<bool>()) {
        let (text, op) = if strict { (format!("> {bound}"), Op::Gt) } else { (format!(">= {bound}"), Op::Ge) };
        prop_assert_eq!(Threshold::parse(&text), Ok(Some(Threshold { op, bound })));
        prop_assert_eq!(Threshold::parse(&bound.to_string()), Ok(Some(Threshold { op: Op::Ge, bound })));
    }
}

/// A small catalog on disk: empty image files (selection never opens them) and a manifest of tags.
fn temp_catalog() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let items: &[(&str, &[&str])] = &[
        ("jean/jean-wide-leg-azul-03.png", &["jean", "wide-leg", "azul"]),
        ("jean/jean-recto-roto-negro-01.jpg", &["jean", "recto", "roto", "negro"]),
        ("remera/remera-roja-01.png", &["remera", "rojo"]),
        ("remera/sub/remera-celeste-02.webp", &["remera", "celeste"]),
        ("vestido-07.png", &["vestido"]),
        ("ñandú/áé [x].png", &["raro"]),
    ];
    let mut manifest = String::from("[items]\n");
    for (file, tags) in items {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
        let id = file.rsplit_once('.').unwrap().0;
        manifest.push_str(&format!("{} = {:?}\n", toml::Value::String(id.into()), tags));
    }
    std::fs::write(dir.path().join("manifest.toml"), manifest).unwrap();
    let catalog = Catalog::load(dir.path(), None).unwrap();
    assert_eq!(catalog.len(), items.len());
    (dir, catalog)
}

/// Strings close to selectors: ids, globs with every metacharacter, tag lists.
fn selector_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(tag:)?[a-z+ ]{0,12}",
        "[a-zñáé/*?\\[\\]{}!,.\\\\ -]{0,16}",
        "(jean|remera|ñandú|\\*\\*|\\*)/[a-z*?\\[\\]{},-]{0,12}",
    ]
}

#[test]
fn catalog_select_never_panics() {
    let (_dir, catalog) = temp_catalog();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&selector_like(), |selector| {
            match catalog.select(&selector) {
                Ok(hits) => {
                    prop_assert!(!hits.is_empty(), "{selector:?}");
                    prop_assert!(hits.windows(2).all(|w| w[0] < w[1]), "{selector:?}: {hits:?}");
                    prop_assert!(hits.iter().all(|&i| i < catalog.len()));
                    if !selector.starts_with("tag:") && !selector.contains(['*', '?', '[']) {
                        prop_assert_eq!(&catalog.items()[hits[0]].id, &selector);
                    }
                }
                Err(msg) => prop_assert!(!msg.is_empty() && !msg.ends_with('.'), "{msg}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn catalog_select_examples() {
    let (_dir, catalog) = temp_catalog();
    let ids = |sel: &str| -> Vec<String> {
        catalog.select(sel).unwrap().into_iter().map(|i| catalog.items()[i].id.clone()).collect()
    };
    assert_eq!(ids("tag:jean+azul"), ["jean/jean-wide-leg-azul-03"]);
    assert_eq!(ids("remera/*"), ["remera/remera-roja-01"]);
    assert_eq!(ids("remera/**/*"), ["remera/remera-roja-01", "remera/sub/remera-celeste-02"]);
    // An id with glob metacharacters reads as a glob: `[x]` is a class matching `x`, so the exact id is
    // not found, and the class `[[]` names a literal `[`.
    assert_eq!(catalog.select("ñandú/áé [x]"), Err("glob 'ñandú/áé [x]' matches no catalog item".to_string()));
    assert_eq!(ids("ñandú/áé [[]x]"), ["ñandú/áé [x]"]);
}

fn toy_suite() -> (Suite, Catalog) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/toy");
    let suite = Suite::load(&root.join("cases")).unwrap();
    let catalog = Catalog::load(&suite.catalog_root, None).unwrap();
    (suite, catalog)
}

fn case_path() -> PathBuf {
    PathBuf::from("cases/x.toml")
}

/// A valid case with `{}` where a value is spliced.
const TEMPLATES: &[&str] = &[
    "description = {}\nexpected = [\"remera/roja\"]\n",
    "description = \"a\"\nexpected = {}\n",
    "description = \"a\"\nexpected = [{}]\n",
    "description = \"a\"\nexpected = [\"remera/roja\"]\nyellow_flags = [{}]\n",
    "description = \"a\"\nexpected = [\"remera/roja\"]\nred_flags = [{}, \"jean/*\"]\n",
    "description = \"a\"\nexpected = [\"remera/roja\"]\nk = {}\n",
    "description = \"a\"\nexpected = [\"remera/roja\"]\nsnapshot_top = {}\n",
    "description = \"a\"\nexpected = [\"remera/roja\"]\ntags = [{}]\n",
    "description = \"a\"\nexpected = [\"remera/roja\"]\nknown_failure = {}\n",
    "description = \"a\"\nexpected = [\"remera/roja\"]\n[thresholds]\nrecall = {}\n",
    "description = \"a\"\nexpected = [\"remera/roja\"]\n[thresholds]\n{} = \">= 0.5\"\n",
    "description = \"a\"\nexpected = [\"remera/roja\"]\n{}\n",
];

/// Raw TOML values, valid or not: numbers of every size and sign, strings, arrays, tables, garbage.
fn toml_value_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        "[-+]?[0-9_]{1,25}(\\.[0-9]{0,5})?([eE][-+]?[0-9]{1,4})?",
        "(inf|nan|-inf|true|false|\\[\\]|\\{\\}|\"\"|''|\\[1, \"a\"\\]|\\{a = 1\\})",
        // Quoted arbitrary text: always a TOML string, so it reaches the validation behind the parser.
        any::<String>().prop_map(|s| toml::Value::String(s).to_string()),
        selector_like().prop_map(|s| toml::Value::String(s).to_string()),
        threshold_like().prop_map(|s| toml::Value::String(s).to_string()),
    ]
}

#[test]
fn case_parse_never_panics_on_arbitrary_text() {
    let (suite, catalog) = toy_suite();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&any::<String>(), |text| {
            if let Err(e) = case::parse(&case_path(), &text, "x".into(), &suite, &catalog) {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("cases/x.toml"), "{msg}");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn case_parse_never_panics_on_spliced_values() {
    let (suite, catalog) = toy_suite();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 2048, ..config() });
    runner
        .run(&(0..TEMPLATES.len(), toml_value_like()), |(t, value)| {
            let text = TEMPLATES[t].replace("{}", &value);
            match case::parse(&case_path(), &text, "x".into(), &suite, &catalog) {
                Ok(c) => {
                    prop_assert!(c.k >= 1 && c.snapshot_top >= 1, "{text}");
                    prop_assert!(c.thresholds.0.values().all(|t| (0.0..=1.0).contains(&t.bound)), "{text}");
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(msg.starts_with("cases/x.toml:"), "{text}\n{msg}");
                    prop_assert!(!msg.ends_with('.'), "{text}\n{msg}");
                }
            }
            Ok(())
        })
        .unwrap();
}
