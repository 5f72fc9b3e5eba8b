//! Ranking snapshots, one per case, in insta's file format under the suite's `snapshots/` directory.
//!
//! The snapshot of case `colores/vestido-rojo` is `snapshots/colores/vestido-rojo.snap`. Its header names
//! the model, revision and preprocessing that produced it and a digest of the catalog (as insta `info`),
//! so a reviewer sees which checkpoint and which catalog produced a change; the body (see
//! [`crate::report::snapshot_body`]) holds only what the model decided: metrics and ranks, no scores.
//! Only the body is compared.
//!
//! fitcheck reads and writes these files itself, in the format `cargo insta review` understands, rather
//! than through insta's assertion macro, because insta writes snapshot files in place (an interrupt
//! could leave an accepted `.snap` empty) and may rewrite an accepted file whose body did not change.
//! Here every write goes to a temporary file that is then renamed, an accepted snapshot is never opened
//! for writing, and a write error is an error value, never a panic. What is written follows insta's
//! `INSTA_UPDATE` rules: `no` (and any CI) writes nothing, `new` (the default elsewhere) writes a pending
//! `.snap.new` next to the accepted file, `always` replaces the accepted file, `unseen` writes new
//! snapshots as accepted and changed ones as pending.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files::atomic_write;

/// Where the snapshot of case `name` lives under `dir`.
pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    let mut p = dir.to_owned();
    p.extend(name.split('/'));
    p.set_extension("snap");
    p
}

/// The pending snapshot next to the accepted one.
pub fn pending_path_of(dir: &Path, name: &str) -> PathBuf {
    path_of(dir, name).with_extension("snap.new")
}

/// What a snapshot's header says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub model: String,
    pub revision: String,
    pub preprocessing: String,
    /// `sha256:<16 hex> (<n> items)`.
    pub catalog: String,
    /// The case file, relative, with `/`.
    pub input_file: String,
    /// For an image query, the query image (a catalog id or a path under the cases directory).
    pub query_image: Option<String>,
}

impl Header {
    fn render(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("strings serialise");
        let image = self.query_image.as_deref().map(|i| format!("  query_image: {}\n", q(i))).unwrap_or_default();
        format!(
            "---\nsource: src/snapshot.rs\ninfo:\n  model: {}\n  revision: {}\n  preprocessing: {}\n  catalog: {}\n{image}input_file: {}\n---\n",
            q(&self.model),
            q(&self.revision),
            q(&self.preprocessing),
            q(&self.catalog),
            q(&self.input_file)
        )
    }

    /// Reads the fields this module writes (and insta's older unquoted form of them).
    fn parse(yaml: &str) -> Header {
        let mut fields = BTreeMap::new();
        for line in yaml.lines() {
            let Some((key, value)) = line.trim_start().split_once(':') else { continue };
            let value = value.trim();
            let value = if value.starts_with('"') {
                serde_json::from_str::<String>(value).unwrap_or_else(|_| value.to_string())
            } else {
                value.to_string()
            };
            fields.insert(key.trim().to_string(), value);
        }
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        Header {
            model: get("model"),
            revision: get("revision"),
            preprocessing: get("preprocessing"),
            catalog: get("catalog"),
            input_file: get("input_file"),
            query_image: fields.get("query_image").cloned(),
        }
    }
}

/// An accepted snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub path: PathBuf,
    pub header: Header,
    pub body: String,
}

impl Accepted {
    /// The item ids of its ranking rows, in order (the top, then the expected items below it).
    pub fn order(&self) -> Vec<String> {
        ranking_ids(&self.body)
    }
}

/// The item ids of a body's ranking rows, in order. A row reads `rank [score] mark class item`.
pub fn ranking_ids(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            parts.next()?.parse::<usize>().ok()?;
            let mut next = parts.next()?;
            if next.parse::<f32>().is_ok() {
                next = parts.next()?;
            }
            let _mark = next;
            let _class = parts.next()?;
            let id = parts.collect::<Vec<_>>().join(" ");
            (!id.is_empty()).then_some(id)
        })
        .collect()
}

/// Splits a snapshot file into its header text and body.
fn split(text: &str) -> (&str, &str) {
    text.strip_prefix("---\n").and_then(|rest| rest.split_once("\n---\n")).unwrap_or(("", text))
}

/// Reads the accepted snapshot of case `name`, if there is one.
pub fn read_accepted(dir: &Path, name: &str) -> Result<Option<Accepted>> {
    let path = path_of(dir, name);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let (yaml, body) = split(&text);
            Ok(Some(Accepted { header: Header::parse(yaml), body: body.to_string(), path }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// What to write when a body differs from the accepted one (insta's `INSTA_UPDATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Write nothing (`INSTA_UPDATE=no`, or on CI).
    No,
    /// Write a pending `.snap.new` for review.
    New,
    /// Replace the accepted snapshot.
    Always,
    /// Accept new snapshots, leave changed ones pending.
    Unseen,
}

impl Update {
    /// From `INSTA_UPDATE` and `CI`, as insta reads them.
    pub fn from_env() -> Update {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        match std::env::var("INSTA_UPDATE").as_deref() {
            Ok("no") => Update::No,
            Ok("always") | Ok("1") => Update::Always,
            Ok("new") => Update::New,
            Ok("unseen") => Update::Unseen,
            _ if ci => Update::No,
            _ => Update::New,
        }
    }
}

/// How a body compares with the accepted snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Same body (the header may differ: it is not compared).
    Matches,
    /// No snapshot accepted yet. `written`: where the new one went, if anywhere.
    New { written: Option<PathBuf> },
    /// The body differs; `diff` is unified, accepted (`-`) to new (`+`).
    Changed { diff: String, written: Option<PathBuf> },
}

/// Whether two bodies are the same snapshot (trailing blank lines aside, as insta compares).
pub fn same_body(a: &str, b: &str) -> bool {
    a.trim_end() == b.trim_end()
}

/// Compares `body` with `accepted` (the case's accepted snapshot as [`read_accepted`] found it) and
/// writes what `update` asks for, atomically. A pending snapshot left from an earlier run is removed
/// when the body matches again.
pub fn check(
    dir: &Path,
    name: &str,
    header: &Header,
    body: &str,
    accepted: Option<&Accepted>,
    update: Update,
) -> Result<Status> {
    let accepted_path = path_of(dir, name);
    let pending = pending_path_of(dir, name);
    let file = format!("{}{}\n", header.render(), body.trim_end());
    let write = |path: &Path| atomic_write(path, file.as_bytes()).map(|()| Some(path.to_owned()));
    match accepted {
        Some(old) if same_body(&old.body, body) => {
            if update != Update::No && pending.exists() {
                std::fs::remove_file(&pending).map_err(|e| Error::io(&pending, e))?;
            }
            Ok(Status::Matches)
        }
        Some(old) => {
            let written = match update {
                Update::No => None,
                Update::New | Update::Unseen => write(&pending)?,
                Update::Always => write(&accepted_path)?,
            };
            Ok(Status::Changed { diff: diff(&old.body, body), written })
        }
        None => {
            let written = match update {
                Update::No => None,
                Update::New => write(&pending)?,
                Update::Always | Update::Unseen => write(&accepted_path)?,
            };
            Ok(Status::New { written })
        }
    }
}

/// A unified diff from `old` to `new` with three lines of context.
pub fn diff(old: &str, new: &str) -> String {
    let (old, new) = (format!("{}\n", old.trim_end()), format!("{}\n", new.trim_end()));
    similar::TextDiff::from_lines(&old, &new).unified_diff().context_radius(3).header("accepted", "new").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            model: "lookbook/checkpoints/checkpoint-b".into(),
            revision: "local".into(),
            preprocessing: "squash 64x64 bicubic, mean [0.5, 0.5, 0.5]: \"x\"".into(),
            catalog: "sha256:0123456789abcdef (206 items)".into(),
            input_file: "cases/colores/vestido rojo.toml".into(),
            query_image: Some("jean/x".into()),
        }
    }

    const BODY: &str = "query: q\n\nranking (top 2 of 3):\nrank  mark class     item\n   1  ✅  expected  a/x y\n   2  ·   red       b/z\n";

    #[test]
    fn round_trips_header_and_body() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            check(dir.path(), "c/one", &header(), BODY, None, Update::Always).unwrap(),
            Status::New { written: Some(path_of(dir.path(), "c/one")) }
        );
        let accepted = read_accepted(dir.path(), "c/one").unwrap().unwrap();
        assert_eq!(accepted.header, header());
        assert!(same_body(&accepted.body, BODY));
        assert_eq!(accepted.order(), ["a/x y", "b/z"]);
        // The file is what cargo-insta reads: a YAML header between two `---` lines, then the body.
        let text = std::fs::read_to_string(path_of(dir.path(), "c/one")).unwrap();
        assert!(
            text.starts_with("---\nsource: src/snapshot.rs\ninfo:\n  model: \"lookbook/checkpoints/checkpoint-b\"\n")
        );
        assert!(text.ends_with("   2  ·   red       b/z\n"));
    }

    #[test]
    fn reads_rows_with_and_without_scores() {
        let old = "rank   score  mark class     item\n   1   0.137  ✅  expected  v/rojo-01\n  12  -0.004  ❌  expected  v/rojo-02\n";
        assert_eq!(ranking_ids(old), ["v/rojo-01", "v/rojo-02"]);
    }

    #[test]
    fn writes_follow_insta_update_and_never_touch_the_accepted_file_by_default() {
        let dir = tempfile::tempdir().unwrap();
        check(dir.path(), "c/one", &header(), BODY, None, Update::Always).unwrap();
        let accepted = read_accepted(dir.path(), "c/one").unwrap().unwrap();
        let before = std::fs::read(&accepted.path).unwrap();
        let changed = BODY.replace("b/z", "b/w");

        let v = check(dir.path(), "c/one", &header(), &changed, Some(&accepted), Update::No).unwrap();
        assert!(matches!(&v, Status::Changed { written: None, diff } if diff.contains("-   2  ·   red       b/z")));
        assert!(!pending_path_of(dir.path(), "c/one").exists());

        let v = check(dir.path(), "c/one", &header(), &changed, Some(&accepted), Update::New).unwrap();
        assert!(
            matches!(v, Status::Changed { written: Some(ref p), .. } if *p == pending_path_of(dir.path(), "c/one"))
        );
        assert_eq!(std::fs::read(&accepted.path).unwrap(), before, "the accepted file is untouched");

        // Back to the accepted body: the stale pending file goes, the accepted one stays.
        let mut other = header();
        other.model = "another".into();
        assert_eq!(check(dir.path(), "c/one", &other, BODY, Some(&accepted), Update::New).unwrap(), Status::Matches);
        assert!(!pending_path_of(dir.path(), "c/one").exists());
        assert_eq!(std::fs::read(&accepted.path).unwrap(), before, "a header change alone rewrites nothing");
    }

    #[test]
    fn a_write_error_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the snapshot folder should be: the write must fail.
        std::fs::write(dir.path().join("c"), "not a folder").unwrap();
        let err = check(dir.path(), "c/one", &header(), BODY, None, Update::New).unwrap_err();
        assert!(err.to_string().contains("one.snap.new"), "{err}");
    }
}
