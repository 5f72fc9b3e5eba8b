//! The embedding interface: the one boundary between the harness and a model.
//!
//! Everything above this module (cases, ranking, metrics, snapshots) sees plain `Vec<f32>` vectors and a
//! [`Fingerprint`]; only the backends behind [`Embedder`] know about tensors, tokenizers or the hub.
//! Backends may return unnormalised vectors: every vector a backend returns goes through
//! [`unit_vectors`], the one place that refuses non-finite values and L2-normalises, so a backend cannot
//! break the cosine convention by forgetting to, and broken weights cannot rank silently.

use std::path::Path;

use crate::error::{Error, Result};

/// What produced a set of embeddings, precise enough to key a cache and to head a snapshot.
///
/// Two embedders with equal fingerprints must produce the same vectors for the same inputs; anything that
/// changes the vectors (weights, revision, preprocessing option) must change the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Human name of the model: a hub id (`Marqo/marqo-fashionSigLIP`) or a path relative to the suite.
    pub model: String,
    /// The revision asked for (`main`, a tag or a commit sha); `local` for a directory.
    pub revision: String,
    /// The preprocessing in words (`squash 224 bicubic, alpha drop, canonicalize`).
    pub preprocessing: String,
    /// A digest of the weights and configuration files, so a cache never outlives a changed checkpoint.
    pub content: String,
}

impl Fingerprint {
    /// A stable key for caches: changes whenever any field changes.
    pub fn cache_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        // The crate version too: a new fitcheck may embed differently from the same files.
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        for part in [&self.model, &self.revision, &self.preprocessing, &self.content] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let digest = h.finalize();
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Images per call of [`Embedder::embed_images`] in the default [`Embedder::embed_images_by_batch`].
pub const IMAGE_STEP: usize = 16;

/// A text-to-image embedding model.
///
/// Implementations must be deterministic and usable from several test threads at once.
pub trait Embedder: Send + Sync {
    /// Names the model, its revision and its preprocessing.
    fn fingerprint(&self) -> &Fingerprint;

    /// Embeds query texts, one vector per text, in order.
    fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;

    /// Embeds images read from `paths`, one vector per path, in order. Implementations batch internally.
    /// An image that is missing or cannot be decoded is an error naming its path.
    fn embed_images(&self, paths: &[&Path]) -> Result<Vec<Vec<f32>>>;

    /// Embeds the images at `paths` in order, as [`Embedder::embed_images`] does, but hands each batch's
    /// vectors to `sink` as soon as they are computed (the first batch holds the first paths, and so on),
    /// so that a caller can show progress and keep what is done while the rest is embedded in the same
    /// call, which lets a backend prepare the next images while the current ones go through the model.
    /// Stops at the first error, the sink's included; vectors already handed over stay valid.
    ///
    /// The default hands [`IMAGE_STEP`] paths at a time to [`Embedder::embed_images`].
    fn embed_images_by_batch(&self, paths: &[&Path], sink: &mut dyn FnMut(Vec<Vec<f32>>) -> Result<()>) -> Result<()> {
        for step in paths.chunks(IMAGE_STEP) {
            sink(self.embed_images(step)?)?;
        }
        Ok(())
    }

    /// Embeds `texts` as one batch padded to its longest text (transformers' `padding=True`), the way
    /// the team's pair evaluation embedded captions; production queries are padded to the full context
    /// ([`Embedder::embed_texts`]). A backend whose text tower ignores padding returns the same vectors.
    fn embed_texts_padded_to_longest(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.embed_texts(texts)
    }

    /// The number of tokens each text has after cleaning and tokenisation, before truncation (special
    /// tokens included), so a caller can warn about texts the context cuts. `None` when the backend has
    /// no token limit.
    fn token_counts(&self, texts: &[String]) -> Result<Option<Vec<usize>>> {
        let _ = texts;
        Ok(None)
    }

    /// The text tower's context length in tokens, if it has one.
    fn context_length(&self) -> Option<usize> {
        None
    }

    /// The checkpoint's learned logit scale (already exponentiated) and bias (SigLIP's sigmoid loss
    /// needs both; CLIP has only a scale), if it has them.
    fn logit_scale_bias(&self) -> Option<(f32, Option<f32>)> {
        None
    }
}

/// Checks that every value of `vectors` is finite and scales each to unit length. `tower` ("text" or
/// "image") and `inputs` (the texts or image paths, in order, as messages quote them) only name what
/// failed.
pub fn unit_vectors(
    fingerprint: &Fingerprint,
    tower: &'static str,
    inputs: &[String],
    mut vectors: Vec<Vec<f32>>,
) -> Result<Vec<Vec<f32>>> {
    for (i, v) in vectors.iter_mut().enumerate() {
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::NonFinite { model: fingerprint.model.clone(), tower, input: inputs.get(i).cloned() });
        }
        crate::rank::normalize(v);
    }
    Ok(vectors)
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A checkpoint directory on disk.
    Local(std::path::PathBuf),
    /// A hub repository at a revision (branch, tag or commit sha).
    Hub { id: String, revision: String },
    /// The deterministic tag-based backend used to test the harness itself (not a model).
    Toy,
}

impl ModelSource {
    /// Reads a command-line or environment override: an existing directory is a local checkpoint,
    /// anything else of the form `org/name` is a hub id.
    pub fn from_override(value: &str, revision: Option<&str>) -> ModelSource {
        let path = std::path::Path::new(value);
        if value == "toy" {
            ModelSource::Toy
        } else if path.is_dir() || revision.is_none() && (value.starts_with('.') || value.starts_with('/')) {
            ModelSource::Local(path.to_owned())
        } else {
            ModelSource::Hub { id: value.to_string(), revision: revision.unwrap_or("main").to_string() }
        }
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Local(p) => write!(f, "{}", p.display()),
            ModelSource::Hub { id, revision } => write!(f, "{id}@{revision}"),
            ModelSource::Toy => f.write_str("toy"),
        }
    }
}

/// How transparent pixels become RGB before a model sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alpha {
    /// Drop the alpha channel and keep the colour stored under it, as PIL's `convert('RGB')` does
    /// (what the users' own scripts did; background-removed PNGs are black there).
    #[default]
    Drop,
    /// Composite over white, as transformers' image processors do.
    White,
    /// Composite over black.
    Black,
}

impl Alpha {
    pub const KEYS: [&'static str; 3] = ["drop", "white", "black"];

    pub fn from_key(key: &str) -> Option<Alpha> {
        match key {
            "drop" => Some(Alpha::Drop),
            "white" => Some(Alpha::White),
            "black" => Some(Alpha::Black),
            _ => None,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Alpha::Drop => "drop",
            Alpha::White => "white",
            Alpha::Black => "black",
        }
    }
}

/// In which order an image is converted to RGB and resized (see `model::pixels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Pipeline {
    /// `convert('RGB')`, then resize: the team's scripts and Marqo's processor.
    #[default]
    #[value(name = "rgb_first")]
    RgbFirst,
    /// Resize in the image's own Pillow mode, then `convert('RGB')`: plain open_clip's `preprocess`.
    #[value(name = "open_clip")]
    OpenClip,
}

impl Pipeline {
    pub const KEYS: [&'static str; 2] = ["rgb_first", "open_clip"];

    pub fn from_key(key: &str) -> Option<Pipeline> {
        match key {
            "rgb_first" => Some(Pipeline::RgbFirst),
            "open_clip" => Some(Pipeline::OpenClip),
            _ => None,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Pipeline::RgbFirst => "rgb_first",
            Pipeline::OpenClip => "open_clip",
        }
    }
}

/// Everything needed to open a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub source: ModelSource,
    /// Use only files already in the hub cache; a missing file is an error naming it.
    pub offline: bool,
    /// Transparent pixels under the `rgb_first` pipeline (`open_clip` has Pillow's own rule).
    pub alpha: Alpha,
    pub pipeline: Pipeline,
}
