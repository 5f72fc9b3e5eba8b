//! Helpers shared by the model tests: opening fixture checkpoints, copying them to a temporary
//! directory.

use std::path::{Path, PathBuf};

use fitcheck::embed::{Alpha, ModelSource, ModelSpec, Pipeline};
use fitcheck::model::Siglip;

/// The fixture root (`tests/fixtures/siglip`).
pub const ROOT: &str = "tests/fixtures/siglip";

/// The tiny-a checkpoint in Marqo's layout.
pub const MODEL: &str = "tests/fixtures/siglip/tiny-a/marqo";

/// The spec of the local checkpoint `dir`, offline, with `alpha` and `pipeline`.
pub fn spec_with(dir: &Path, alpha: Alpha, pipeline: Pipeline) -> ModelSpec {
    ModelSpec { source: ModelSource::Local(dir.to_owned()), offline: true, alpha, pipeline }
}

/// The spec of the local checkpoint `dir` with the default preprocessing.
pub fn spec(dir: &Path) -> ModelSpec {
    spec_with(dir, Alpha::Drop, Pipeline::RgbFirst)
}

/// Opens the local checkpoint `dir` with the default preprocessing, panicking with the error.
pub fn open(dir: &Path) -> Siglip {
    Siglip::open(&spec(dir)).unwrap_or_else(|e| panic!("{e}"))
}

/// A copy of the files of `src` in a new temporary directory.
pub fn copy_of(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}
