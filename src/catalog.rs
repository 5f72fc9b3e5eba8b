//! The catalog: the images a suite ranks, their ids and their tags, and the selectors that name them.
//!
//! An item's id is its image path relative to the catalog root, without extension, with `/` on every OS
//! (`jean/jean-wide-leg-azul-03`). Items are kept sorted by id, so everything built on the catalog is
//! deterministic. Tags come from an optional `manifest.toml` at the root:
//!
//! ```toml
//! [items]
//! "jean/jean-wide-leg-azul-03" = ["jean", "wide-leg", "azul"]
//! ```
//!
//! Selectors, used by case files to name items: an exact id, a glob over ids (`jean/*-roto-*`), or
//! `tag:a+b` for the items carrying every listed tag.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};

/// File extensions recognised as catalog images (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"];

/// The default manifest file name, looked up at the catalog root.
pub const MANIFEST: &str = "manifest.toml";

/// One image of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    /// The image path (catalog root joined with the relative path).
    pub path: PathBuf,
    pub tags: Vec<String>,
}

/// Every image under a root, sorted by id.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub root: PathBuf,
    items: Vec<Item>,
    index: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    #[serde(default)]
    items: BTreeMap<Spanned<String>, Spanned<Vec<String>>>,
}

impl Catalog {
    /// Scans `root` for images and reads tags from `manifest` (or `root/manifest.toml` when present).
    pub fn load(root: &Path, manifest: Option<&Path>) -> Result<Catalog> {
        if !root.is_dir() {
            return Err(Error::file(root, "catalog root is not a directory"));
        }
        let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
        for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(root).to_owned();
                Error::io(&path, e.into())
            })?;
            if !entry.file_type().is_file() || !is_image(entry.path()) {
                continue;
            }
            let rel = entry.path().strip_prefix(root).expect("walkdir yields paths under its root");
            let id = id_of(rel);
            if let Some(previous) = found.insert(id.clone(), entry.path().to_owned()) {
                return Err(Error::file(
                    entry.path(),
                    format!("item id '{id}' is also the id of '{}': rename one of the two images", previous.display()),
                ));
            }
        }
        if found.is_empty() {
            return Err(Error::file(
                root,
                format!("no images in the catalog root (looked for {} files)", IMAGE_EXTENSIONS.join(", ")),
            ));
        }
        let mut tags: HashMap<String, Vec<String>> = HashMap::new();
        let default_manifest = root.join(MANIFEST);
        let manifest = match manifest {
            Some(m) => Some(m.to_owned()),
            None => default_manifest.is_file().then_some(default_manifest),
        };
        if let Some(manifest) = manifest {
            let text = std::fs::read_to_string(&manifest).map_err(|e| Error::io(&manifest, e))?;
            let parsed: ManifestFile = crate::suite::parse_toml(&manifest, &text)?;
            for (id, item_tags) in parsed.items {
                if !found.contains_key(id.get_ref()) {
                    return Err(Error::at_offset(
                        &manifest,
                        &text,
                        id.span().start,
                        format!(
                            "manifest names item '{}' but there is no image for it under '{}'",
                            id.get_ref(),
                            root.display()
                        ),
                    ));
                }
                tags.insert(id.into_inner(), item_tags.into_inner());
            }
        }
        let items: Vec<Item> = found
            .into_iter()
            .map(|(id, path)| {
                let tags = tags.remove(&id).unwrap_or_default();
                Item { id, path, tags }
            })
            .collect();
        Ok(Catalog::from_items(root.to_owned(), items))
    }

    /// A catalog from items already known (sorted here by id).
    pub fn from_items(root: PathBuf, mut items: Vec<Item>) -> Catalog {
        items.sort_by(|a, b| a.id.cmp(&b.id));
        let index = items.iter().enumerate().map(|(i, it)| (it.id.clone(), i)).collect();
        Catalog { root, items, index }
    }

    /// The items, sorted by id.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The index of the item with this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The indices of the items a selector names, in id order. `Err` carries a message for the user.
    pub fn select(&self, selector: &str) -> std::result::Result<Vec<usize>, String> {
        if let Some(tags) = selector.strip_prefix("tag:") {
            let wanted: Vec<&str> = tags.split('+').map(str::trim).collect();
            if wanted.iter().any(|t| t.is_empty()) {
                return Err(format!("empty tag in selector '{selector}' (write 'tag:a+b')"));
            }
            let hits: Vec<usize> = (0..self.items.len())
                .filter(|&i| wanted.iter().all(|w| self.items[i].tags.iter().any(|t| t == w)))
                .collect();
            if hits.is_empty() {
                return Err(format!("no catalog item has all the tags in '{selector}'"));
            }
            return Ok(hits);
        }
        if selector.contains(['*', '?', '[']) {
            let glob = globset::GlobBuilder::new(selector)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("invalid glob '{selector}': {}", e.kind()))?
                .compile_matcher();
            let hits: Vec<usize> = (0..self.items.len()).filter(|&i| glob.is_match(&self.items[i].id)).collect();
            if hits.is_empty() {
                return Err(format!("glob '{selector}' matches no catalog item"));
            }
            return Ok(hits);
        }
        match self.position(selector) {
            Some(i) => Ok(vec![i]),
            None => Err(format!("unknown item '{selector}' (not in the catalog)")),
        }
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The id of an image at `rel` (relative to the root): components joined by `/`, extension dropped.
fn id_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.last_mut() {
        if let Some(dot) = last.rfind('.') {
            last.truncate(dot);
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let item = |id: &str, tags: &[&str]| Item {
            id: id.into(),
            path: PathBuf::from(format!("{id}.png")),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        Catalog::from_items(
            PathBuf::from("catalog"),
            vec![
                item("jean/wide-azul", &["jean", "wide-leg", "azul"]),
                item("jean/wide-negro", &["jean", "wide-leg", "negro"]),
                item("jean/palazzo-azul", &["jean", "palazzo", "azul"]),
                item("remera/celeste", &["remera", "celeste"]),
            ],
        )
    }

    #[test]
    fn selectors() {
        let c = catalog();
        // Sorted ids: jean/palazzo-azul, jean/wide-azul, jean/wide-negro, remera/celeste.
        let cases: &[(&str, Result<Vec<usize>, &str>)] = &[
            ("remera/celeste", Ok(vec![3])),
            ("jean/wide-*", Ok(vec![1, 2])),
            ("*", Err("glob '*' matches no catalog item")),
            ("*/*-azul", Ok(vec![0, 1])),
            ("tag:jean", Ok(vec![0, 1, 2])),
            ("tag:jean+azul", Ok(vec![0, 1])),
            ("tag:jean+celeste", Err("no catalog item has all the tags in 'tag:jean+celeste'")),
            ("tag:jean+", Err("empty tag in selector 'tag:jean+' (write 'tag:a+b')")),
            ("vestido-07", Err("unknown item 'vestido-07' (not in the catalog)")),
        ];
        for (selector, expected) in cases {
            let got = c.select(selector);
            let expected = expected.clone().map_err(str::to_string);
            assert_eq!(got, expected, "selector {selector}");
        }
    }

    #[test]
    fn ids_drop_the_extension_and_use_slashes() {
        assert_eq!(id_of(Path::new("jean/a.b.png")), "jean/a.b");
        assert_eq!(id_of(&Path::new("x").join("y").join("z.JPG")), "x/y/z");
    }
}
