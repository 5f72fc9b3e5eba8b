//! The suite file (`cases/fitcheck.toml`): which model, which catalog, and the defaults every case shares.
//!
//! ```toml
//! [model]
//! path = "../lookbook/checkpoints/checkpoint-b"   # a local directory, relative to this file
//! # hub = "Marqo/marqo-fashionSigLIP"             # or a hub id ...
//! # revision = "main"                             # ... at a branch, tag or commit sha
//! [catalog]
//! root = "../lookbook/catalog"
//! [defaults]
//! k = 5
//! snapshot_top = 10
//! [thresholds]
//! mrr = "> 0.3"
//! [pairs]                                        # optional: pair mode (see `pairs`)
//! file = "../lookbook/pairs/pairs.csv"
//! ```
//!
//! The suite file may also register checkpoints, for `fitcheck compare --all` and the leaderboard:
//!
//! ```toml
//! [[checkpoints]]
//! name = "sigLip6"
//! hub = "user/cherrypick-sigLip6"   # or path = "..."
//! revision = "main"
//! batch_size = 64                   # the training settings the team tunes, all optional:
//! epochs = 10                       # epochs, steps, learning_rate, loss, temperature,
//! learning_rate = 1e-5              # trained_layers, notes
//! ```
//!
//! It may also name what `fitcheck hub` watches for new models (see [`crate::hub`]): every repository of
//! an author whose name matches a glob, and single repositories at a branch. A repository or commit
//! that `[model]` and `[[checkpoints]]` do not pin is new.
//!
//! ```toml
//! [watch]
//! authors = [{ author = "melijauregui", name = "cherrypick-sigLip*" }]  # name: a glob, default "*"
//! repos = [{ hub = "Marqo/marqo-fashionSigLIP", revision = "main" }]   # revision: a branch, default "main"
//! ```
//!
//! Relative paths are resolved against the directory holding the suite file. `FITCHECK_MODEL` and
//! `FITCHECK_REVISION` override the model for one run (see [`ModelSource::from_override`]).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::Spanned;

use crate::embed::{Alpha, ModelSource, ModelSpec, Pipeline};
use crate::error::{Error, Result};
use crate::threshold::{RawThresholds, Thresholds};

/// The suite file's name inside the cases directory.
pub const SUITE_FILE: &str = "fitcheck.toml";

/// A parsed, validated suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The cases directory (holds the suite file).
    pub dir: PathBuf,
    /// The suite file itself.
    pub file: PathBuf,
    pub model: ModelSpec,
    pub catalog_root: PathBuf,
    pub manifest: Option<PathBuf>,
    pub k: usize,
    pub snapshot_top: usize,
    pub thresholds: Thresholds,
    pub snapshots_dir: PathBuf,
    /// Pair mode's pairs file and settings (`[pairs]`), when the suite has one.
    pub pairs: Option<crate::pairs::PairsSpec>,
    /// The checkpoints registry (`[[checkpoints]]`), in file order.
    pub checkpoints: Vec<Checkpoint>,
    /// What `fitcheck hub` watches (`[watch]`); empty when the suite has none.
    pub watch: Watch,
}

/// The `[watch]` table: where new models appear.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Watch {
    /// Every repository of an author whose name matches a glob, at a branch.
    pub authors: Vec<WatchAuthor>,
    /// Single repositories at a branch.
    pub repos: Vec<WatchRepo>,
}

/// `{ author = "...", name = "glob", revision = "main" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchAuthor {
    pub author: String,
    /// A glob over the repository name (the part after `author/`).
    pub name: String,
    pub revision: String,
}

/// `{ hub = "org/name", revision = "main" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRepo {
    pub hub: String,
    pub revision: String,
}

/// A registered checkpoint: where it is and how it was trained.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub name: String,
    pub source: ModelSource,
    /// Training settings as written (`batch_size`, `epochs`, `steps`, `learning_rate`, `loss`,
    /// `temperature`, `trained_layers`, `notes`), for the leaderboard's columns.
    pub settings: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    model: Spanned<ModelTable>,
    catalog: CatalogTable,
    #[serde(default)]
    defaults: DefaultsTable,
    #[serde(default)]
    thresholds: RawThresholds,
    #[serde(default)]
    snapshots: SnapshotsTable,
    pairs: Option<crate::pairs::PairsTable>,
    #[serde(default)]
    checkpoints: Vec<Spanned<CheckpointTable>>,
    watch: Option<WatchTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchTable {
    #[serde(default)]
    authors: Vec<Spanned<WatchAuthorTable>>,
    #[serde(default)]
    repos: Vec<Spanned<WatchRepoTable>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchAuthorTable {
    author: Spanned<String>,
    name: Option<Spanned<String>>,
    revision: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchRepoTable {
    hub: Spanned<String>,
    revision: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointTable {
    name: Spanned<String>,
    path: Option<String>,
    hub: Option<String>,
    revision: Option<String>,
    batch_size: Option<Spanned<i64>>,
    epochs: Option<Spanned<f64>>,
    steps: Option<Spanned<i64>>,
    learning_rate: Option<Spanned<f64>>,
    loss: Option<String>,
    temperature: Option<Spanned<f64>>,
    trained_layers: Option<toml::Value>,
    notes: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelTable {
    path: Option<String>,
    hub: Option<String>,
    revision: Option<String>,
    backend: Option<Spanned<String>>,
    #[serde(default)]
    offline: bool,
    alpha: Option<Spanned<String>>,
    pipeline: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogTable {
    root: String,
    manifest: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DefaultsTable {
    k: Option<Spanned<i64>>,
    snapshot_top: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SnapshotsTable {
    dir: Option<String>,
}

/// Joins `rel` onto `base` and removes `.` and `name/..` pairs lexically, so `cases/../snapshots` reads
/// `snapshots` in messages. (Symlinks are not resolved; suite paths are plain folders.)
pub fn join_clean(base: &Path, rel: &str) -> PathBuf {
    use std::path::Component;
    let joined = base.join(rel);
    let mut out: Vec<Component> = Vec::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Parses TOML text read from `path`, turning syntax and schema errors into `path:line:col: message`.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace('`', "'");
        match e.span() {
            Some(span) => Error::at_offset(path, text, span.start, message),
            None => Error::file(path, message),
        }
    })
}

/// Reads a positive integer setting, reporting a zero or negative value at its position.
pub(crate) fn positive(path: &Path, text: &str, value: &Spanned<i64>, what: &str) -> Result<usize> {
    match usize::try_from(*value.get_ref()) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(Error::at_offset(
            path,
            text,
            value.span().start,
            format!("{what} must be at least 1, got {}", value.get_ref()),
        )),
    }
}

impl Suite {
    /// Loads `dir/fitcheck.toml`.
    pub fn load(dir: &Path) -> Result<Suite> {
        let file = dir.join(SUITE_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let raw: SuiteFile = parse_toml(&file, &text)?;
        let at = |offset: usize, msg: String| Error::at_offset(&file, &text, offset, msg);

        let m = raw.model.get_ref();
        let model_at = raw.model.span().start;
        let backend = m.backend.as_ref().map(|b| (b.get_ref().as_str(), b.span().start));
        let source = match (backend, &m.path, &m.hub) {
            (Some(("toy", _)), None, None) => ModelSource::Toy,
            (Some(("toy", off)), _, _) => return Err(at(off, "the toy backend takes no 'path' or 'hub'".into())),
            (Some((other, off)), _, _) if other != "siglip" => {
                return Err(at(off, format!("unknown backend '{other}' (known: siglip, toy)")))
            }
            (_, Some(path), None) => ModelSource::Local(join_clean(dir, path)),
            (_, None, Some(hub)) => {
                ModelSource::Hub { id: hub.clone(), revision: m.revision.clone().unwrap_or_else(|| "main".into()) }
            }
            (_, Some(_), Some(_)) => return Err(at(model_at, "[model] has both 'path' and 'hub': keep one".into())),
            (_, None, None) => {
                return Err(at(
                    model_at,
                    "[model] needs 'path' (a local checkpoint directory) or 'hub' (a hub id)".into(),
                ))
            }
        };
        if m.revision.is_some() && !matches!(source, ModelSource::Hub { .. }) {
            return Err(at(model_at, "'revision' applies only to a 'hub' model".into()));
        }
        let alpha = match &m.alpha {
            None => Alpha::default(),
            Some(a) => Alpha::from_key(a.get_ref()).ok_or_else(|| {
                at(a.span().start, format!("unknown alpha mode '{}' (known: {})", a.get_ref(), Alpha::KEYS.join(", ")))
            })?,
        };
        let pipeline = match &m.pipeline {
            None => Pipeline::default(),
            Some(p) => Pipeline::from_key(p.get_ref()).ok_or_else(|| {
                at(p.span().start, format!("unknown pipeline '{}' (known: {})", p.get_ref(), Pipeline::KEYS.join(", ")))
            })?,
        };
        if let (Pipeline::OpenClip, Some(a)) = (pipeline, &m.alpha) {
            return Err(at(
                a.span().start,
                "'alpha' applies only to pipeline = \"rgb_first\"; pipeline = \"open_clip\" handles transparency \
                 as Pillow does (premultiplied resize, then alpha dropped): remove one of the two keys"
                    .into(),
            ));
        }
        let model = ModelSpec { source, offline: m.offline, alpha, pipeline };

        let k = match &raw.defaults.k {
            Some(k) => positive(&file, &text, k, "k")?,
            None => 5,
        };
        let snapshot_top = match &raw.defaults.snapshot_top {
            Some(n) => positive(&file, &text, n, "snapshot_top")?,
            None => 10,
        };
        let thresholds = Thresholds::seed_defaults().overridden(&raw.thresholds, &file, &text)?;
        let snapshots_dir = join_clean(dir, raw.snapshots.dir.as_deref().unwrap_or("../snapshots"));
        let pairs = raw.pairs.as_ref().map(|t| crate::pairs::spec_from_table(&file, &text, dir, t)).transpose()?;
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        for entry in &raw.checkpoints {
            let c = entry.get_ref();
            let name = c.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(at(c.name.span().start, "empty checkpoint name".into()));
            }
            if checkpoints.iter().any(|o| o.name == name) {
                return Err(at(
                    c.name.span().start,
                    format!("checkpoint '{name}' is registered twice: names must differ"),
                ));
            }
            let source = match (&c.path, &c.hub) {
                (Some(p), None) if c.revision.is_none() => ModelSource::Local(join_clean(dir, p)),
                (None, Some(h)) => {
                    ModelSource::Hub { id: h.clone(), revision: c.revision.clone().unwrap_or_else(|| "main".into()) }
                }
                (Some(_), None) => {
                    return Err(at(
                        entry.span().start,
                        format!("checkpoint '{name}': 'revision' applies only to a 'hub' checkpoint"),
                    ))
                }
                (Some(_), Some(_)) => {
                    return Err(at(
                        entry.span().start,
                        format!("checkpoint '{name}' has both 'path' and 'hub': keep one"),
                    ))
                }
                (None, None) => {
                    return Err(at(
                        entry.span().start,
                        format!("checkpoint '{name}' needs 'path' (a directory) or 'hub' (a hub id)"),
                    ))
                }
            };
            let mut settings = std::collections::BTreeMap::new();
            if let Some(b) = &c.batch_size {
                settings.insert("batch_size".into(), positive(&file, &text, b, "batch_size")?.to_string());
            }
            if let Some(st) = &c.steps {
                settings.insert("steps".into(), positive(&file, &text, st, "steps")?.to_string());
            }
            for (key, value) in
                [("epochs", &c.epochs), ("learning_rate", &c.learning_rate), ("temperature", &c.temperature)]
            {
                if let Some(v) = value {
                    if !(*v.get_ref() > 0.0 && v.get_ref().is_finite()) {
                        return Err(at(
                            v.span().start,
                            format!("{key} must be a positive number, got {}", v.get_ref()),
                        ));
                    }
                    settings.insert(key.into(), v.get_ref().to_string());
                }
            }
            if let Some(l) = &c.loss {
                settings.insert("loss".into(), l.clone());
            }
            if let Some(t) = &c.trained_layers {
                let shown = match t {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                settings.insert("trained_layers".into(), shown);
            }
            if let Some(n) = &c.notes {
                settings.insert("notes".into(), n.clone());
            }
            checkpoints.push(Checkpoint { name, source, settings });
        }
        let watch = match &raw.watch {
            Some(w) => watch_from_table(&file, &text, w)?,
            None => Watch::default(),
        };
        Ok(Suite {
            dir: dir.to_owned(),
            catalog_root: join_clean(dir, &raw.catalog.root),
            manifest: raw.catalog.manifest.as_deref().map(|m| join_clean(dir, m)),
            file,
            model,
            k,
            snapshot_top,
            thresholds,
            snapshots_dir,
            checkpoints,
            pairs,
            watch,
        })
    }
}

/// A hub id is `owner/name`: two non-empty parts without spaces.
pub fn is_hub_id(id: &str) -> bool {
    let ok = |part: &str| !part.is_empty() && !part.chars().any(|c| c.is_whitespace() || c == '/');
    matches!(id.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

fn watch_from_table(path: &Path, text: &str, w: &WatchTable) -> Result<Watch> {
    let at = |offset: usize, msg: String| Error::at_offset(path, text, offset, msg);
    let revision = |r: &Option<Spanned<String>>| -> Result<String> {
        match r {
            None => Ok("main".into()),
            Some(r) if r.get_ref().trim().is_empty() || r.get_ref().contains(char::is_whitespace) => {
                Err(at(r.span().start, format!("invalid revision '{}': name a branch such as \"main\"", r.get_ref())))
            }
            Some(r) => Ok(r.get_ref().clone()),
        }
    };
    let mut watch = Watch::default();
    for entry in &w.authors {
        let a = entry.get_ref();
        let author = a.author.get_ref();
        if author.is_empty() || author.contains('/') || author.contains(char::is_whitespace) {
            return Err(at(
                a.author.span().start,
                format!("invalid author '{author}': write the hub user or organisation alone, e.g. \"melijauregui\""),
            ));
        }
        let name = match &a.name {
            None => "*".to_string(),
            Some(n) => {
                if n.get_ref().is_empty() || n.get_ref().contains('/') {
                    return Err(at(
                        n.span().start,
                        format!(
                            "invalid name pattern '{}': a glob over the repository name, without the author",
                            n.get_ref()
                        ),
                    ));
                }
                if let Err(e) = globset::Glob::new(n.get_ref()) {
                    return Err(at(n.span().start, format!("invalid name pattern '{}': {}", n.get_ref(), e.kind())));
                }
                n.get_ref().clone()
            }
        };
        watch.authors.push(WatchAuthor { author: author.clone(), name, revision: revision(&a.revision)? });
    }
    for entry in &w.repos {
        let r = entry.get_ref();
        if !is_hub_id(r.hub.get_ref()) {
            return Err(at(
                r.hub.span().start,
                format!(
                    "invalid hub id '{}': write it as owner/name, e.g. \"Marqo/marqo-fashionSigLIP\"",
                    r.hub.get_ref()
                ),
            ));
        }
        watch.repos.push(WatchRepo { hub: r.hub.get_ref().clone(), revision: revision(&r.revision)? });
    }
    Ok(watch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads a suite file with `model` added to its `[model]` table; an error comes back as its message,
    /// with the temporary directory written `DIR`.
    fn load_model_table(model: &str) -> std::result::Result<Suite, String> {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("[model]\npath = \"ckpt\"\n{model}\n[catalog]\nroot = \"photos\"\n");
        std::fs::write(dir.path().join(SUITE_FILE), text).unwrap();
        Suite::load(dir.path()).map_err(|e| e.to_string().replace(&dir.path().display().to_string(), "DIR"))
    }

    #[test]
    fn pipeline_key_parses_and_is_checked() {
        assert_eq!(load_model_table("").unwrap().model.pipeline, Pipeline::RgbFirst);
        assert_eq!(load_model_table("pipeline = \"rgb_first\"").unwrap().model.pipeline, Pipeline::RgbFirst);
        assert_eq!(load_model_table("pipeline = \"open_clip\"").unwrap().model.pipeline, Pipeline::OpenClip);
        let err = load_model_table("pipeline = \"pil\"").unwrap_err();
        assert_eq!(err, "DIR/fitcheck.toml:3:12: unknown pipeline 'pil' (known: rgb_first, open_clip)");
        let err = load_model_table("pipeline = \"open_clip\"\nalpha = \"white\"").unwrap_err();
        assert!(err.starts_with("DIR/fitcheck.toml:4:9: 'alpha' applies only to pipeline = \"rgb_first\""), "{err}");
        let both = load_model_table("pipeline = \"rgb_first\"\nalpha = \"white\"").unwrap();
        assert_eq!(both.model.alpha, Alpha::White);
    }

    #[test]
    fn joins_clean_parent_steps() {
        let cases = [
            ("cases", "../snapshots", "snapshots"),
            ("cases", "../../x", "../x"),
            ("/a/b/cases", "./../c/./d", "/a/b/c/d"),
            ("cases", "..", "."),
            ("../cases", "../x", "../x"),
        ];
        for (base, rel, want) in cases {
            assert_eq!(join_clean(Path::new(base), rel), PathBuf::from(want), "{base} + {rel}");
        }
    }
}
