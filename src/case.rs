//! Case files: one query, the items that answer it, and the bar it must clear.
//!
//! ```toml
//! description = "jean wide leg"          # the query text (or query_image, below)
//! variants = ["jeans wide leg"]          # other phrasings of the same query: each must pass (optional)
//! expected = ["tag:jean+wide-leg"]       # ids, globs over ids, or tag:a+b selectors
//! yellow_flags = ["tag:jean+palazzo"]    # acceptable look-alikes (optional)
//! red_flags = ["tag:jean+skinny"]        # must not outrank the expected (optional: default every other item)
//! k = 5                                  # cut-off (optional: the suite default)
//! tags = ["jean"]                        # labels for the suite's aggregates (optional)
//! known_failure = "why"                  # runs and reports, does not fail the suite (optional)
//! ignore = "why"                         # skipped unless run with --ignored (optional)
//! snapshot_top = 10                      # ranks kept in the snapshot (optional)
//! [thresholds]                           # per-case overrides (optional)
//! recall = ">= 0.5"
//! ```
//!
//! An image query names a photo instead of a text: `query_image = "jean/jean-recto-azul-roto-01"` (a
//! catalog item) or `query_image = "queries/foto.jpg"` (a file under the cases directory; paths may not
//! leave it). The query image itself, and every catalog image with the same content, is left out of the
//! ranking: an image is always its own nearest neighbour, which says nothing about the model.
//!
//! Loading validates everything against the catalog, so a [`Case`] always has a non-empty expected set,
//! each item in at most one class, k ≥ 1 and thresholds in [0, 1]. Errors name the file, line and column.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::metrics::Class;
use crate::suite::{parse_toml, positive, Suite};
use crate::threshold::{RawThresholds, Thresholds};

/// A validated case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The test name: the path relative to the cases directory, without `.toml`, with `/`.
    pub name: String,
    /// The case file, as shown in messages.
    pub path: PathBuf,
    /// The query text; for an image query, `image <label>` (what reports show as the query).
    pub description: String,
    /// The query photo, when the case queries with an image.
    pub query_image: Option<QueryImage>,
    /// Other phrasings of the text query; the harness runs each as a case of its own (see [`Case::variants`]).
    pub variants: Vec<String>,
    /// For a variant, the case it is a variant of.
    pub variant_of: Option<String>,
    /// The class of every catalog item, by catalog index.
    pub classes: Vec<Class>,
    pub k: usize,
    pub snapshot_top: usize,
    pub thresholds: Thresholds,
    pub tags: Vec<String>,
    pub known_failure: Option<String>,
    pub ignore: Option<String>,
}

/// A case's query photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryImage {
    pub path: PathBuf,
    /// The catalog id, or the path as the case file gives it.
    pub label: String,
}

impl Case {
    /// The area: the first folder of the name (`colores` for `colores/vestido-rojo`), if any.
    pub fn area(&self) -> Option<&str> {
        self.name.split_once('/').map(|(area, _)| area)
    }

    /// One case per variant phrasing, named `<name>~<phrasing in lower case, words joined by '-'>`, with
    /// everything else the same.
    pub fn variants(&self) -> Vec<Case> {
        self.variants
            .iter()
            .map(|v| Case {
                name: format!("{}~{}", self.name, slug(v)),
                description: v.clone(),
                variants: Vec::new(),
                variant_of: Some(self.name.clone()),
                ..self.clone()
            })
            .collect()
    }
}

/// `Jeans Rotos!` → `jeans-rotos`: letters and digits (accents kept), lower case, runs of anything else
/// as one `-`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    description: Option<Spanned<String>>,
    query_image: Option<Spanned<String>>,
    variants: Option<Vec<Spanned<String>>>,
    expected: Spanned<Vec<Spanned<String>>>,
    yellow_flags: Option<Vec<Spanned<String>>>,
    red_flags: Option<Vec<Spanned<String>>>,
    k: Option<Spanned<i64>>,
    snapshot_top: Option<Spanned<i64>>,
    #[serde(default)]
    tags: Vec<String>,
    known_failure: Option<String>,
    ignore: Option<String>,
    #[serde(default)]
    thresholds: RawThresholds,
}

/// The test name of the case file at `path` under the cases directory `dir`: the relative path without
/// `.toml`, with `/`, in Unicode NFC (macOS file systems hand out decomposed names; snapshots must match
/// on every OS).
pub fn name_of(dir: &Path, path: &Path) -> String {
    use unicode_normalization::UnicodeNormalization;
    let rel = path.strip_prefix(dir).unwrap_or(path).with_extension("");
    let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    name.nfc().collect()
}

/// Reads and validates the case file at `path` (named `name`) against the suite and catalog.
pub fn load(path: &Path, name: String, suite: &Suite, catalog: &Catalog) -> Result<Case> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let valid = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
            return Err(Error::at_offset(path, &valid, at, "not valid UTF-8: save the case file as UTF-8"));
        }
    };
    parse(path, &text, name, suite, catalog)
}

/// Validates case text read from `path`.
pub fn parse(path: &Path, text: &str, name: String, suite: &Suite, catalog: &Catalog) -> Result<Case> {
    let raw: CaseFile = parse_toml(path, text)?;
    let at = |offset: usize, msg: String| Error::at_offset(path, text, offset, msg);

    let (description, query_image) = match (&raw.description, &raw.query_image) {
        (Some(d), None) => {
            if d.get_ref().trim().is_empty() {
                return Err(at(d.span().start, "empty description: write the query text".into()));
            }
            (d.get_ref().clone(), None)
        }
        (None, Some(q)) => {
            let image = query_image(path, text, q, suite, catalog)?;
            (format!("image {}", image.label), Some(image))
        }
        (Some(_), Some(q)) => {
            return Err(at(
                q.span().start,
                "a case queries with a text ('description') or with an image ('query_image'), not both: keep one".into(),
            ))
        }
        (None, None) => {
            return Err(Error::file(
                path,
                "no query: write 'description' (the query text) or 'query_image' (a catalog item or an image under the cases directory)",
            ))
        }
    };
    let mut variants: Vec<String> = Vec::new();
    for v in raw.variants.iter().flatten() {
        if query_image.is_some() {
            return Err(at(
                v.span().start,
                "variants are other phrasings of a text query: an image query has none".into(),
            ));
        }
        let s = slug(v.get_ref());
        if s.is_empty() {
            return Err(at(v.span().start, format!("variant '{}' has no letters or digits", v.get_ref())));
        }
        if s == slug(&description) || variants.iter().any(|o| slug(o) == s) {
            return Err(at(v.span().start, format!("variant '{}' repeats another phrasing of this case", v.get_ref())));
        }
        variants.push(v.get_ref().clone());
    }
    if raw.expected.get_ref().is_empty() {
        return Err(at(raw.expected.span().start, "empty expected set: name at least one item".into()));
    }

    let explicit_red = raw.red_flags.is_some();
    let mut classes: Vec<Option<Class>> = vec![None; catalog.len()];
    let lists = [
        (Class::Expected, Some(raw.expected.get_ref())),
        (Class::Yellow, raw.yellow_flags.as_ref()),
        (Class::Red, raw.red_flags.as_ref()),
    ];
    for (class, selectors) in lists {
        for selector in selectors.into_iter().flatten() {
            let offset = selector.span().start;
            let hits = catalog.select(selector.get_ref()).map_err(|msg| at(offset, msg))?;
            for i in hits {
                match classes[i] {
                    Some(other) if other != class => {
                        return Err(at(
                            offset,
                            format!(
                                "item '{}' is both {} and {}: an item belongs to one class",
                                catalog.items()[i].id,
                                class_list(other),
                                class_list(class)
                            ),
                        ))
                    }
                    _ => classes[i] = Some(class),
                }
            }
        }
    }
    let rest = if explicit_red { Class::Neutral } else { Class::Red };
    let classes = classes.into_iter().map(|c| c.unwrap_or(rest)).collect();

    let k = match &raw.k {
        Some(k) => positive(path, text, k, "k")?,
        None => suite.k,
    };
    let snapshot_top = match &raw.snapshot_top {
        Some(n) => positive(path, text, n, "snapshot_top")?,
        None => suite.snapshot_top,
    };
    let thresholds = suite.thresholds.overridden(&raw.thresholds, path, text)?;
    Ok(Case {
        name,
        path: path.to_owned(),
        description,
        query_image,
        variants,
        variant_of: None,
        classes,
        k,
        snapshot_top,
        thresholds,
        tags: raw.tags,
        known_failure: raw.known_failure,
        ignore: raw.ignore,
    })
}

/// Resolves `query_image`: a catalog id, or a file under the cases directory (never outside it).
fn query_image(
    path: &Path,
    text: &str,
    value: &Spanned<String>,
    suite: &Suite,
    catalog: &Catalog,
) -> Result<QueryImage> {
    let at = |msg: String| Error::at_offset(path, text, value.span().start, msg);
    let v = value.get_ref();
    if let Some(i) = catalog.position(v) {
        return Ok(QueryImage { path: catalog.items()[i].path.clone(), label: v.clone() });
    }
    let file = crate::suite::join_clean(&suite.dir, v);
    let inside = |p: &Path, dir: &Path| match (p.canonicalize(), dir.canonicalize()) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    };
    if Path::new(v).is_absolute() || !file.starts_with(&suite.dir) || (file.exists() && !inside(&file, &suite.dir)) {
        return Err(at(format!(
            "query image '{v}' is outside the cases directory {}: name a catalog item or put the image under it",
            suite.dir.display()
        )));
    }
    if !file.is_file() {
        return Err(at(format!(
            "query image '{v}' is neither a catalog item nor a file under {}",
            suite.dir.display()
        )));
    }
    let ext = file.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    if !crate::catalog::IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        return Err(at(format!(
            "query image '{v}' is not an image file (known: {})",
            crate::catalog::IMAGE_EXTENSIONS.join(", ")
        )));
    }
    Ok(QueryImage { path: file, label: v.clone() })
}

fn class_list(class: Class) -> &'static str {
    match class {
        Class::Expected => "expected",
        Class::Yellow => "in yellow_flags",
        Class::Red => "in red_flags",
        Class::Neutral => "neutral",
    }
}
