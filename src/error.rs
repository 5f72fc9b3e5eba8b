//! The library's error type.
//!
//! Every variant carries the path it is about (and the line and column where there is one), so a message
//! printed once at the edge tells the user which file to open. Messages are lower case, without a trailing
//! period, with offending values quoted, and name the fix where there is one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A 1-based line and column in a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text`, counting columns in characters.
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Everything that can go wrong in fitcheck.
///
/// Errors are cheap to clone (I/O causes are shared), so one failure that concerns every case (a model
/// that does not load) keeps its type all the way to each case and to the exit code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Something wrong at a known place in a text file (a case, the suite file, a manifest).
    #[error("{}{}: {message}", path.display(), fmt_pos(.position))]
    At { path: PathBuf, position: Option<Position>, message: String },

    /// A file that could not be read.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: Arc<std::io::Error> },

    /// An image that is missing or cannot be decoded.
    #[error("{}: cannot read image: {message}", path.display())]
    Image { path: PathBuf, message: String },

    /// A checkpoint that cannot be found, loaded or run. `model` names the source (hub id or directory).
    #[error("{model}: {message}")]
    Model { model: String, message: String },

    /// A model whose embeddings are not finite numbers: its weights are broken, and ranking by NaN would
    /// pass or fail cases at random.
    #[error("{model}: the {tower} tower produced non-finite values (NaN or inf){}: the weights are broken", fmt_input(.input))]
    NonFinite { model: String, tower: &'static str, input: Option<String> },

    /// No case file was found where cases were looked for.
    #[error("no test cases found: scanned {} for '*.toml' files (other than the suite file)", dir.display())]
    NoCases { dir: PathBuf },
}

fn fmt_input(input: &Option<String>) -> String {
    input.as_ref().map(|i| format!(" for {i}")).unwrap_or_default()
}

fn fmt_pos(position: &Option<Position>) -> String {
    match position {
        Some(p) => format!(":{}:{}", p.line, p.column),
        None => String::new(),
    }
}

impl Error {
    /// An error at byte `offset` of `text`, the contents of `path`.
    pub fn at_offset(path: &Path, text: &str, offset: usize, message: impl Into<String>) -> Error {
        Error::At { path: path.to_owned(), position: Some(Position::of_offset(text, offset)), message: message.into() }
    }

    /// An error about a whole file.
    pub fn file(path: &Path, message: impl Into<String>) -> Error {
        Error::At { path: path.to_owned(), position: None, message: message.into() }
    }

    /// A read failure of `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_owned(), source: Arc::new(source) }
    }

    /// A model failure.
    pub fn model(model: impl fmt::Display, message: impl fmt::Display) -> Error {
        Error::Model { model: model.to_string(), message: message.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "a = 1\nñandú = \"x\"\n";
        assert_eq!(Position::of_offset(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of_offset(text, 6), Position { line: 2, column: 1 });
        // "ñandú = " is 8 characters but 10 bytes: the quote is at column 9.
        let quote = text.find('"').unwrap();
        assert_eq!(Position::of_offset(text, quote), Position { line: 2, column: 9 });
    }

    #[test]
    fn messages_name_file_line_and_column() {
        let e = Error::at_offset(Path::new("cases/a.toml"), "x\ny = 1", 2, "unknown key 'y'");
        assert_eq!(e.to_string(), "cases/a.toml:2:1: unknown key 'y'");
        let e = Error::file(Path::new("cases/b.toml"), "empty expected set");
        assert_eq!(e.to_string(), "cases/b.toml: empty expected set");
    }
}
