//! The HTML report (`--html DIR`): one self-contained page, `DIR/index.html`, with a summary, a plot and
//! every case's contact sheet of thumbnails, readable from disk with no server and no network.
//!
//! It is rendered from a [`Document`] alone (what `--json` writes): nothing here ranks, computes a
//! metric or opens a model. The only other input is the catalog's images under each run's
//! `catalog.root` (relative to the working directory, as the results name it), read to make thumbnails
//! ([`thumbs`]). Invariants: fitcheck writes only `DIR/index.html` and files in `DIR/thumbs/`, each
//! atomically, and never removes anything, so a report directory that holds other files keeps them;
//! every text from the results is HTML-escaped and every path URL-encoded, so no id, query or file
//! name can change the page's structure; no style, script or font is fetched from anywhere.

mod page;
mod plot;
pub mod thumbs;

use std::path::{Component, Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::document::Document;
use crate::embed::Alpha;
use crate::error::{Error, Result};
use crate::files::atomic_write;
use thumbs::{Thumb, ThumbCounts, Thumbnailer};

/// What a render wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `DIR/index.html`.
    pub index: PathBuf,
    pub thumbs: ThumbCounts,
}

impl Written {
    /// The line the commands print.
    pub fn line(&self) -> String {
        let t = &self.thumbs;
        let mut s = format!(
            "wrote {} with {} thumbnails ({} made, {} from the cache)",
            self.index.display(),
            t.used,
            t.made,
            t.used - t.made
        );
        match t.missing {
            0 => {}
            1 => s.push_str("; 1 image could not be shown (see the report)"),
            n => s.push_str(&format!("; {n} images could not be shown (see the report)")),
        }
        s
    }
}

/// Renders `doc` into `dir` (created if needed). `cache_dir` is the embedding cache folder, whose
/// `thumbs/` keeps thumbnails between renders (`None`: no cache).
pub fn write(doc: &Document, dir: &Path, cache_dir: Option<&Path>) -> Result<Written> {
    if doc.runs.is_empty() {
        return Err(Error::file(dir, "nothing to report: the results hold no run"));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(Error::file(dir, "not a directory: name a directory for the HTML report"));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let dir_abs = absolute(dir);
    let mut images = Images {
        thumbs: Thumbnailer::new(dir, cache_dir),
        report_dir: dir_abs,
        runs: doc
            .runs
            .iter()
            .map(|r| (PathBuf::from(&r.catalog.root), thumbs::alpha_of(&r.model.preprocessing)))
            .collect(),
    };
    let html = page::render(doc, &mut images)?;
    let index = dir.join("index.html");
    atomic_write(&index, html.as_bytes())?;
    Ok(Written { index, thumbs: images.thumbs.counts() })
}

/// Where a run's item images come from, and their thumbnails.
pub(crate) struct Images {
    thumbs: Thumbnailer,
    /// The report directory, absolute, for relative links to the originals.
    report_dir: PathBuf,
    /// Per run: the catalog root as the results name it (messages quote it so), and the pipeline's
    /// alpha mode.
    runs: Vec<(PathBuf, Alpha)>,
}

impl Images {
    /// The thumbnail of `file` (relative to run `run`'s catalog root, `/`-separated) and the URL of
    /// the original, relative to the report.
    pub(crate) fn item(&mut self, run: usize, file: &str) -> Result<(Thumb, String)> {
        let (root, alpha) = &self.runs[run];
        let path = file.split('/').filter(|s| !s.is_empty()).fold(root.clone(), |p, s| p.join(s));
        let thumb = self.thumbs.get(&path, *alpha)?;
        Ok((thumb, relative_url(&self.report_dir, &absolute(&path))))
    }
}

/// `path` made absolute (through symbolic links where it exists), so two paths can be related.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| normalize(&std::path::absolute(path).unwrap_or(path.to_owned())))
}

/// Removes `.` and resolves `..` lexically (for paths that do not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// What stays literal in a URL path segment: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// One path segment, percent-encoded (UTF-8 bytes for non-ASCII names).
pub(crate) fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// The URL of `target` relative to the directory `from` (both absolute): `../` for each level up,
/// then the encoded segments. Paths with nothing in common (another Windows drive) get a `file:` URL.
pub(crate) fn relative_url(from: &Path, target: &Path) -> String {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = target.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let names = |cs: &[Component]| -> Vec<String> {
        cs.iter()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(encode_segment(&n.to_string_lossy())),
                _ => None,
            })
            .collect()
    };
    if common == 0 {
        return format!("file:///{}", names(&b).join("/"));
    }
    let mut parts: Vec<String> = vec!["..".to_string(); a.len() - common];
    parts.extend(names(&b[common..]));
    parts.join("/")
}

/// Text for an HTML element's content.
pub(crate) fn text(s: &str) -> String {
    htmlize::escape_text(s).into_owned()
}

/// Text for a double-quoted attribute value.
pub(crate) fn attr(s: &str) -> String {
    htmlize::escape_attribute(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_spaces_non_ascii_and_reserved_characters() {
        assert_eq!(encode_segment("jean azul.png"), "jean%20azul.png");
        // ñ is U+00F1, two UTF-8 bytes C3 B1; é is C3 A9.
        assert_eq!(encode_segment("niño-café.jpg"), "ni%C3%B1o-caf%C3%A9.jpg");
        assert_eq!(encode_segment("a#b?c%d&e\"f<g"), "a%23b%3Fc%25d%26e%22f%3Cg");
        assert_eq!(encode_segment("ok_~-."), "ok_~-.");
    }

    #[test]
    fn links_are_relative_to_the_report() {
        let from = Path::new("/work/repo/report");
        assert_eq!(
            relative_url(from, Path::new("/work/repo/lookbook/catalog/jean/a b.png")),
            "../lookbook/catalog/jean/a%20b.png"
        );
        assert_eq!(relative_url(from, Path::new("/work/repo/report/thumbs/x.jpg")), "thumbs/x.jpg");
        assert_eq!(relative_url(Path::new("/a/b/c"), Path::new("/d/é.png")), "../../../d/%C3%A9.png");
    }

    #[test]
    fn escapes_markup_in_text_and_attributes() {
        assert_eq!(text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(attr("say \"hi\" <x> & 'y'"), "say &quot;hi&quot; &lt;x&gt; &amp; 'y'");
    }

    #[test]
    fn normalizes_paths_that_do_not_exist() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
