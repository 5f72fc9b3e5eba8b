//! The SigLIP backend (candle). Only this module knows about tensors, tokenizers and the hub.
//!
//! [`open`] finds a checkpoint's files ([`source`]), reads the safetensors header ([`weights`]),
//! detects its layout and validates every tensor name and shape against the sizes the shapes and the
//! configuration imply ([`layout`], [`config`]), renames the tensors for candle ([`rename`]), sets up the text pipeline ([`text`], with the ftfy
//! subset in [`ftfy`]) and the image pipeline ([`pixels`]), then reads the weights once, as f32, and
//! builds candle-transformers' SigLIP model on them. The result, [`Siglip`], embeds texts and images
//! (image files decoded one batch ahead of the forward pass, `prefetch`) with the same cleaning,
//! tokenisation, pixel conversion and GELU as the Python reference of its layout (open_clip for Marqo
//! and open_clip files, transformers for HF files); the fidelity tests in `tests/model/fidelity.rs`
//! hold it to that. Embeddings come out L2-normalised (the harness normalises again in `embed::unit_vectors`, the one place it relies on). Nothing here prints.
//!
//! Invariants: a checkpoint either loads completely and exactly or is refused with an error that names
//! the file and says what is wrong; pickled weights are never read; the fingerprint changes whenever
//! the weights, configuration, tokenizer or preprocessing change.

#[macro_use]
mod wide;

pub mod cli;
pub mod clip;
pub mod config;
pub mod forward;
pub mod ftfy;
pub mod layout;
pub mod pixels;
mod prefetch;
pub mod rename;
pub mod source;
pub mod text;
pub mod weights;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Activation, VarBuilder};
use candle_transformers::models::siglip;

use crate::embed::{Embedder, Fingerprint, ModelSource, ModelSpec};
use crate::error::{Error, Result};
use config::Hints;
use layout::{Dims, Layout};
use pixels::PixelPipeline;
use source::{HubRepo, Source};
use text::{Cleaning, TextPipeline, TokenizerFiles};
use weights::{Header, PICKLE_FILES};

/// Texts and images per forward pass: large enough to keep the matrix kernels busy, small enough to
/// bound memory on a ViT-B/16 (activations of 16 images are a few hundred MB).
pub const TEXT_BATCH: usize = 32;
pub const IMAGE_BATCH: usize = 16;

/// The forward pass: fitcheck's own ([`forward`], the default) or candle-transformers' reference
/// model (`FITCHECK_FORWARD=reference`, for comparisons in the bench).
enum Forward {
    Own(Box<forward::Towers>),
    Reference(Box<siglip::Model>),
}

impl Forward {
    fn text_features(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Forward::Own(t) => t.text_features(ids),
            Forward::Reference(m) => m.get_text_features(ids),
        }
    }

    fn image_features(&self, px: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Forward::Own(t) => t.image_features(px),
            Forward::Reference(m) => m.get_image_features(px),
        }
    }
}

/// Keeps large freed blocks in glibc's heap instead of unmapping them (once per process).
///
/// candle's CPU backend allocates a fresh output buffer for every operation; on a ViT-B/16 batch of
/// 16 images many of them are tens of MB, above glibc's mmap threshold, so each forward pass mapped,
/// page-faulted, zeroed and unmapped gigabytes of memory: about a fifth of the CPU time (see
/// benches/README.md). With the thresholds raised, freed activations are reused by the next
/// operation. The price is that the process keeps its peak activation memory (a few hundred MB on
/// a ViT-B/16) after a forward pass instead of returning it to the OS. Nothing changes numerically.
/// Skipped when the user tunes the allocator through `GLIBC_TUNABLES`, and outside glibc.
#[allow(unsafe_code)] // the one exception: glibc's mallopt (see above)
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if std::env::var_os("GLIBC_TUNABLES").is_some() {
                return;
            }
            extern "C" {
                fn mallopt(param: std::os::raw::c_int, value: std::os::raw::c_int) -> std::os::raw::c_int;
            }
            const M_TRIM_THRESHOLD: std::os::raw::c_int = -1;
            const M_MMAP_THRESHOLD: std::os::raw::c_int = -3;
            const ONE_GIB: std::os::raw::c_int = 1 << 30;
            // SAFETY: mallopt only changes allocator parameters; it is thread-safe in glibc and
            // affects where future allocations come from, not existing ones.
            // The crate's one unsafe block: glibc has no safe binding for mallopt in std or in our
            // dependencies, and the call is worth a fifth of the CPU time (see above).
            #[allow(unsafe_code)]
            unsafe {
                mallopt(M_MMAP_THRESHOLD, ONE_GIB);
                mallopt(M_TRIM_THRESHOLD, ONE_GIB);
            };
        });
    }
}

/// Refuses embeddings with a NaN or an infinity, naming the checkpoint (`label`), the tower and the input
/// (`rows[0]` is input `first`; `name` names an input by index): broken weights must not rank silently.
/// Shared by every backend.
pub(crate) fn check_finite(
    label: &str,
    tower: &'static str,
    rows: &[Vec<f32>],
    first: usize,
    name: &dyn Fn(usize) -> String,
) -> Result<()> {
    match rows.iter().position(|r| r.iter().any(|x| !x.is_finite())) {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite { model: label.to_string(), tower, input: Some(name(first + i)) }),
    }
}

/// Opens the checkpoint `spec` names and loads its weights: a CLIP checkpoint (told by its tensor names,
/// [`clip::probe`]) with the CLIP backend, anything else with the SigLIP one.
pub fn open(spec: &ModelSpec) -> Result<Box<dyn Embedder>> {
    if clip::probe(spec)?.is_some() {
        return Ok(Box::new(clip::Clip::open(spec)?));
    }
    Ok(Box::new(Siglip::open(spec)?))
}

// ---- Describing and loading -------------------------------------------------------------------------
//
// Opening a checkpoint is two steps. Describing it finds the files, reads the configurations and the
// safetensors header, validates the layout and computes the fingerprint: milliseconds, since a local
// weights file's digest is remembered by size and modification time (see `crate::cache::file_digest`).
// Loading it reads every tensor and builds candle's model: seconds and the weights' size in memory.
// A described model loads itself on its first forward pass, so a run whose embeddings are all cached
// never reads the weights.

/// Describes the checkpoint `spec` names without reading its weights; they are loaded on the first
/// forward pass. `digests` is where local files' digests are remembered (`None`: hashed every time).
/// (A CLIP checkpoint is loaded at once: only the SigLIP backend defers its weights.)
pub fn describe(spec: &ModelSpec, digests: Option<&Path>) -> Result<Box<dyn Embedder>> {
    if clip::probe(spec)?.is_some() {
        return Ok(Box::new(clip::Clip::open(spec)?));
    }
    Ok(Box::new(Siglip::describe(spec, digests)?))
}

static LOADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

static TEXTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many times this process has read a checkpoint's weights (for tests of lazy loading).
pub fn loads() -> usize {
    LOADS.load(std::sync::atomic::Ordering::SeqCst)
}

/// How many token sequences this process has passed through a text tower (for tests of the caches).
pub fn texts_embedded() -> usize {
    TEXTS.load(std::sync::atomic::Ordering::SeqCst)
}

/// A SigLIP checkpoint with its text and image pipelines; the weights are read on first use.
pub struct Siglip {
    text: TextPipeline,
    pixels: PixelPipeline,
    dims: Dims,
    layout: Layout,
    label: String,
    fingerprint: Fingerprint,
    header: Header,
    cfg: siglip::Config,
    loaded: std::sync::OnceLock<Result<Loaded>>,
}

/// What loading the weights gives.
struct Loaded {
    model: Forward,
    /// The learned logit scale (exponentiated) and bias, read from the weights for the sigmoid loss.
    logit: (f32, f32),
}

/// The tokenizer files of `source`, or of the base repository its config names when it has none.
fn tokenizer_files(source: &Source, hints: &Hints, offline: bool) -> Result<(TokenizerFiles, Option<Source>)> {
    let fetch = |s: &Source| -> Result<Option<TokenizerFiles>> {
        let Some(tokenizer) = s.get("tokenizer.json")? else {
            return Ok(None);
        };
        Ok(Some(TokenizerFiles {
            tokenizer,
            special_tokens_map: s.get("special_tokens_map.json")?,
            tokenizer_config: s.get("tokenizer_config.json")?,
        }))
    };
    if let Some(files) = fetch(source)? {
        return Ok((files, None));
    }
    let mut base = hints.base_repo.clone();
    if base.is_none() {
        if let Some(cfg) = source.get("config.json")? {
            let mut h = Hints::default();
            config::hf(&mut h, &cfg)?;
            base = h.base_repo;
        }
    }
    let Some(base) = base else {
        return Err(source
            .missing("tokenizer.json", "the tokenizer; config.json names no 'open_clip_model_name' to take it from"));
    };
    let base = Source::Hub(HubRepo::new(&base, "main", offline));
    match fetch(&base)? {
        Some(files) => Ok((files, Some(base))),
        None => Err(base.missing(
            "tokenizer.json",
            &format!("the tokenizer, taken from the base model because {} has none", source.label()),
        )),
    }
}

fn candle_err<'a>(label: &'a str, what: &str) -> impl Fn(candle_core::Error) -> Error + 'a {
    let what = what.to_string();
    move |e| Error::model(label, format!("{what}: {e}"))
}

impl Siglip {
    /// Finds, validates and loads the checkpoint `spec` names.
    pub fn open(spec: &ModelSpec) -> Result<Siglip> {
        let model = Siglip::describe(spec, None)?;
        model.load()?;
        Ok(model)
    }

    /// Finds and validates the checkpoint `spec` names, without reading its weights (see [`describe`]).
    pub fn describe(spec: &ModelSpec, digests: Option<&Path>) -> Result<Siglip> {
        let source = match &spec.source {
            ModelSource::Local(dir) => {
                if !dir.is_dir() {
                    return Err(Error::file(dir, "not a checkpoint directory: give an existing directory or a hub id such as 'Marqo/marqo-fashionSigLIP'"));
                }
                Source::Dir(dir.clone())
            }
            ModelSource::Hub { id, revision } => Source::Hub(HubRepo::new(id, revision, spec.offline)),
            ModelSource::Toy => return Err(Error::model("toy", "the toy backend is not a SigLIP checkpoint")),
        };
        let label = source.label();
        let weights = match source.get("model.safetensors")? {
            Some(p) => p,
            None => match source.get("open_clip_model.safetensors")? {
                Some(p) => p,
                None => return Err(no_weights(&source)),
            },
        };
        let header = Header::read(&weights)?;
        let layout = Layout::detect(&header)?;
        let mut hints = Hints::default();
        let mut digested = vec![weights.clone()];
        if layout == Layout::Hf {
            let cfg =
                source.require("config.json", "the transformers configuration of a 'vision_model.*' checkpoint")?;
            config::hf(&mut hints, &cfg)?;
            digested.push(cfg);
        } else {
            if let Some(cfg) = source.get("open_clip_config.json")? {
                config::open_clip(&mut hints, &cfg)?;
                digested.push(cfg);
            }
            // Without open_clip_config.json: Marqo's own settings (erf GELU, eps 1e-6, canonicalize).
            hints.vision.act.get_or_insert(Activation::Gelu);
            hints.text.act.get_or_insert(Activation::Gelu);
            hints.vision.eps.get_or_insert(1e-6);
            hints.text.eps.get_or_insert(1e-6);
        }
        if hints.mean.is_none() {
            if let Some(pre) = source.get("preprocessor_config.json")? {
                config::preprocessor(&mut hints, &pre)?;
                digested.push(pre);
            }
        }
        let dims = layout::dims(layout, &header, &hints)?;
        layout::validate(layout, &header, &dims)?;

        let (files, _base) = tokenizer_files(&source, &hints, spec.offline)?;
        let cleaning = match layout {
            Layout::Hf => Cleaning::Siglip { lower: config::siglip_lower(files.tokenizer_config.as_ref())? },
            _ => hints.cleaning.unwrap_or(Cleaning::Canonicalize),
        };
        let text = TextPipeline::load(&files, cleaning, dims.context)?;
        digested.extend(
            [Some(files.tokenizer.clone()), files.special_tokens_map.clone(), files.tokenizer_config.clone()]
                .into_iter()
                .flatten(),
        );

        let pixels = PixelPipeline {
            size: dims.image_size() as u32,
            mean: hints.mean.unwrap_or([0.5; 3]),
            std: hints.std.unwrap_or([0.5; 3]),
            alpha: spec.alpha,
            pipeline: spec.pipeline,
        };
        let cfg = candle_config(&dims, &hints, text.pad_id);

        let mut content = Vec::new();
        for path in &digested {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let digest = match &source {
                Source::Dir(_) => crate::cache::file_digest(path, digests)?,
                Source::Hub(_) => source.digest_of(path)?,
            };
            content.push(format!("{name}={digest}"));
        }
        let fingerprint = Fingerprint {
            model: match &spec.source {
                ModelSource::Hub { id, .. } => id.clone(),
                _ => label.clone(),
            },
            revision: source.revision(),
            preprocessing: format!(
                "{}; {}, context {} pad {}; {} layout, gelu {}/{}",
                pixels.describe(),
                cleaning.describe(),
                dims.context,
                text.pad_id,
                layout.key(),
                act_name(cfg.vision_config.hidden_act),
                act_name(cfg.text_config.hidden_act)
            ),
            content: content.join(" "),
        };
        Ok(Siglip { text, pixels, dims, layout, label, fingerprint, header, cfg, loaded: Default::default() })
    }

    /// Reads the weights and builds the model, once; later calls return the first outcome.
    pub fn load(&self) -> Result<()> {
        self.loaded().map(|_| ())
    }

    /// Whether the weights have been read.
    pub fn is_loaded(&self) -> bool {
        self.loaded.get().is_some_and(|r| r.is_ok())
    }

    fn loaded(&self) -> Result<&Loaded> {
        self.loaded.get_or_init(|| self.read_weights()).as_ref().map_err(Clone::clone)
    }

    fn read_weights(&self) -> Result<Loaded> {
        tune_allocator();
        LOADS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let label = &self.label;
        let tensors = self.header.load_all()?;
        let tensors =
            rename::to_hf(self.layout, tensors, &self.dims).map_err(candle_err(label, "cannot map the weights"))?;
        // candle's model keeps its logit tensors private: read them before handing the weights over.
        // Every layout stores the scale as a logarithm (the models multiply by `logit_scale.exp()`).
        let scalar = |name: &str| -> Result<f32> {
            let t = tensors.get(name).ok_or_else(|| Error::model(label, format!("no '{name}' tensor")))?;
            let v = t.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(candle_err(label, name))?;
            v.first().copied().ok_or_else(|| Error::model(label, format!("'{name}' is empty")))
        };
        let logit = (scalar("logit_scale")?.exp(), scalar("logit_bias")?);
        let model = if std::env::var_os("FITCHECK_FORWARD").is_some_and(|v| v == "reference") {
            let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
            let model = siglip::Model::new(&self.cfg, vb).map_err(candle_err(label, "cannot build the model"))?;
            Forward::Reference(Box::new(model))
        } else {
            let towers =
                forward::Towers::new(tensors, &self.cfg).map_err(candle_err(label, "cannot build the model"))?;
            Forward::Own(Box::new(towers))
        };

        Ok(Loaded { model, logit })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn dims(&self) -> &Dims {
        &self.dims
    }

    pub fn text_pipeline(&self) -> &TextPipeline {
        &self.text
    }

    pub fn pixel_pipeline(&self) -> &PixelPipeline {
        &self.pixels
    }

    /// Token ids of `texts`, as the Python tokenizer gives them (a text that cleans to nothing
    /// gives `</s>` and padding here; [`Embedder::embed_texts`] refuses it).
    pub fn token_ids(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        self.text.encode_raw(texts)
    }

    /// Normalised text embeddings of already tokenised, padded sequences.
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        self.text_features_of(ids, self.dims.context, &|i| format!("token sequence #{i}"))
    }

    /// Normalised text embeddings of sequences that all have `len` ids, 1 ≤ `len` ≤ the context,
    /// naming input `i` as `name(i)` when the tower breaks down. candle's text tower takes positions
    /// 0..len and pools the last position, as open_clip and transformers do for a sequence shorter than
    /// the context.
    fn text_features_of(&self, ids: &[Vec<u32>], len: usize, name: &dyn Fn(usize) -> String) -> Result<Vec<Vec<f32>>> {
        let ctx = self.dims.context;
        if len == 0 || len > ctx {
            return Err(Error::model(&self.label, format!("token sequences of {len} ids; the model takes 1 to {ctx}")));
        }
        let model = &self.loaded()?.model;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(TEXT_BATCH) {
            if let Some(bad) = chunk.iter().find(|s| s.len() != len) {
                return Err(Error::model(
                    &self.label,
                    format!("a token sequence has {} ids; the model takes exactly {len} here", bad.len()),
                ));
            }
            let flat: Vec<u32> = chunk.iter().flatten().copied().collect();
            let run = || -> candle_core::Result<Vec<Vec<f32>>> {
                let ids = Tensor::from_vec(flat, (chunk.len(), len), &Device::Cpu)?;
                let features = model.text_features(&ids)?;
                candle_transformers::models::clip::div_l2_norm(&features)?.to_vec2()
            };
            TEXTS.fetch_add(chunk.len(), std::sync::atomic::Ordering::SeqCst);
            let rows = run().map_err(candle_err(&self.label, "text forward pass failed"))?;
            self.check_finite("text", &rows, out.len(), name)?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Refuses embeddings with a NaN or an infinity: broken weights must not rank silently.
    /// `first` is the index of `rows[0]` among the inputs, `name` names an input by index.
    fn check_finite(
        &self,
        tower: &'static str,
        rows: &[Vec<f32>],
        first: usize,
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        check_finite(&self.label, tower, rows, first, name)
    }

    /// Normalised image embeddings of pixel values (`n × 3 × size × size`, already normalised).
    pub fn image_features(&self, pixels: &[f32]) -> Result<Vec<Vec<f32>>> {
        self.image_features_of(pixels, &|i| format!("image #{i}"))
    }

    /// [`Siglip::image_features`], naming input `i` as `name(i)` when the tower breaks down.
    fn image_features_of(&self, pixels: &[f32], name: &dyn Fn(usize) -> String) -> Result<Vec<Vec<f32>>> {
        let s = self.dims.image_size();
        let per = 3 * s * s;
        if !pixels.len().is_multiple_of(per) {
            return Err(Error::model(
                &self.label,
                format!("{} pixel values are not a whole number of 3x{s}x{s} images", pixels.len()),
            ));
        }
        let model = &self.loaded()?.model;
        let mut out = Vec::with_capacity(pixels.len() / per);
        for chunk in pixels.chunks(per * IMAGE_BATCH) {
            let run = || -> candle_core::Result<Vec<Vec<f32>>> {
                let px = Tensor::from_slice(chunk, (chunk.len() / per, 3, s, s), &Device::Cpu)?;
                let features = model.image_features(&px)?;
                candle_transformers::models::clip::div_l2_norm(&features)?.to_vec2()
            };
            let rows = run().map_err(candle_err(&self.label, "image forward pass failed"))?;
            self.check_finite("image", &rows, out.len(), name)?;
            out.extend(rows);
        }
        Ok(out)
    }
}

fn act_name(a: Activation) -> &'static str {
    match a {
        Activation::Gelu => "erf",
        Activation::GeluPytorchTanh => "tanh",
        _ => "other",
    }
}

/// The error for a checkpoint without safetensors weights, naming pickled files when there are some.
fn no_weights(source: &Source) -> Error {
    for name in PICKLE_FILES {
        let found = match source {
            Source::Dir(d) => Some(d.join(name)).filter(|p| p.is_file()),
            // Never download a pickle just to refuse it: only a cached one is named.
            Source::Hub(_) => None,
        };
        if let Some(found) = found {
            return weights::refuse_pickle(&found);
        }
    }
    source.missing(
        "model.safetensors",
        "nor 'open_clip_model.safetensors'; only safetensors weights load, pickled '.bin' files are refused because they can run code",
    )
}

/// candle's SigLIP configuration for sizes `d`.
fn candle_config(d: &Dims, hints: &Hints, pad_id: u32) -> siglip::Config {
    siglip::Config {
        text_config: siglip::TextConfig {
            vocab_size: d.vocab,
            hidden_size: d.t_width,
            intermediate_size: d.t_mlp,
            num_hidden_layers: d.t_layers,
            num_attention_heads: d.t_heads,
            max_position_embeddings: d.context,
            hidden_act: hints.text.act.unwrap_or(Activation::GeluPytorchTanh),
            layer_norm_eps: hints.text.eps.unwrap_or(1e-6),
            pad_token_id: pad_id,
            bos_token_id: pad_id,
            eos_token_id: pad_id,
        },
        vision_config: siglip::VisionConfig {
            hidden_size: d.v_width,
            intermediate_size: d.v_mlp,
            num_hidden_layers: d.v_layers,
            num_attention_heads: d.v_heads,
            num_channels: d.channels,
            image_size: d.image_size(),
            patch_size: d.patch,
            hidden_act: hints.vision.act.unwrap_or(Activation::GeluPytorchTanh),
            layer_norm_eps: hints.vision.eps.unwrap_or(1e-6),
        },
    }
}

impl Embedder for Siglip {
    fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let ids = self.text.encode(texts)?;
        self.text_features_of(&ids, self.dims.context, &|i| format!("'{}'", texts[i]))
    }

    fn embed_texts_padded_to_longest(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let ids = self.text.encode_padded_to_longest(texts)?;
        match ids.first() {
            None => Ok(Vec::new()),
            Some(first) => self.text_features_of(&ids, first.len(), &|i| format!("'{}'", texts[i])),
        }
    }

    fn token_counts(&self, texts: &[String]) -> Result<Option<Vec<usize>>> {
        self.text.token_counts(texts).map(Some)
    }

    fn context_length(&self) -> Option<usize> {
        Some(self.dims.context)
    }

    fn logit_scale_bias(&self) -> Option<(f32, Option<f32>)> {
        let (scale, bias) = self.loaded().ok()?.logit;
        Some((scale, Some(bias)))
    }

    fn embed_images(&self, paths: &[&Path]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(paths.len());
        self.embed_images_by_batch(paths, &mut |rows| {
            out.extend(rows);
            Ok(())
        })?;
        Ok(out)
    }

    /// Decodes the next batch on a second thread while this one goes through the model
    /// (`prefetch`).
    fn embed_images_by_batch(&self, paths: &[&Path], sink: &mut dyn FnMut(Vec<Vec<f32>>) -> Result<()>) -> Result<()> {
        prefetch::embed_files(
            paths,
            IMAGE_BATCH,
            |path| Ok(self.pixels.normalize(&self.pixels.resized(path)?)),
            |batch, chunk| self.image_features_of(batch, &|i| format!("'{}'", chunk[i].display())),
            sink,
        )
    }
}
