//! Ranking snapshots, one per case, kept with insta under the suite's `snapshots/` directory.
//!
//! The snapshot of case `colores/vestido-rojo` is `snapshots/colores/vestido-rojo.snap`. Its header names
//! the model, revision and preprocessing (insta `info`), so a reviewer sees which checkpoint produced a
//! change; the body (see [`crate::report::case_body`]) holds only what the model decided. insta's own
//! rules decide whether anything is written: with `INSTA_UPDATE=no`, as on CI, nothing is.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::embed::Fingerprint;
use crate::report::Accepted;

/// Where the snapshot of case `name` lives under `dir`.
pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    let mut p = dir.to_owned();
    p.extend(name.split('/'));
    p.set_extension("snap");
    p
}

/// The accepted snapshot file of a case, if there is one.
pub fn read_accepted(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(path_of(dir, name)).ok()
}

/// The score texts of an accepted snapshot, by item id.
pub fn accepted_scores(text: &str) -> Accepted {
    // Rows read "rank  score  mark  class  item"; the item id is the rest of the line.
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let rank = parts.next()?;
            let score = parts.next()?;
            let (_mark, _class) = (parts.next()?, parts.next()?);
            rank.parse::<usize>().ok()?;
            score.parse::<f32>().ok()?;
            let id = parts.collect::<Vec<_>>().join(" ");
            (!id.is_empty()).then(|| (id, score.to_string()))
        })
        .collect()
}

#[derive(Serialize)]
struct Info<'a> {
    model: &'a str,
    revision: &'a str,
    preprocessing: &'a str,
}

/// The body of a snapshot file: what follows insta's header.
fn body_of(text: &str) -> &str {
    text.strip_prefix("---\n").and_then(|rest| rest.split_once("\n---\n")).map_or(text, |(_, body)| body)
}

/// Why a snapshot assertion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// No snapshot has been accepted for this case yet.
    New,
    /// The accepted snapshot differs; a unified diff, accepted (`-`) to new (`+`).
    Changed(String),
}

/// Compares `body` with the accepted snapshot of case `name`, the insta way: insta decides what to write
/// (a pending `.snap.new` outside CI, nothing with `INSTA_UPDATE=no`) and the returned [`Mismatch`]
/// carries the diff for the failure message. `accepted` is the snapshot file as [`read_accepted`] found it.
pub fn assert(
    dir: &Path,
    name: &str,
    case_file: &str,
    fingerprint: &Fingerprint,
    body: &str,
    accepted: Option<&str>,
) -> Result<(), Mismatch> {
    let path = std::path::absolute(path_of(dir, name)).unwrap_or_else(|_| path_of(dir, name));
    let (folder, stem) = (path.parent().unwrap_or(dir).to_owned(), name.rsplit('/').next().unwrap_or(name));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(folder);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(case_file);
    settings.set_info(&Info {
        model: &fingerprint.model,
        revision: &fingerprint.revision,
        preprocessing: &fingerprint.preprocessing,
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(stem, body));
    }));
    result.map_err(|_| match accepted {
        None => Mismatch::New,
        Some(old) => Mismatch::Changed(diff(body_of(old), body)),
    })
}

/// A unified diff from `old` to `new` with three lines of context.
pub fn diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header("accepted", "new").to_string()
}
