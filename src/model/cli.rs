//! `fitcheck embed`: prints a checkpoint's normalised embeddings (and token ids) for texts and images,
//! so a user can debug a checkpoint against their Python numbers without writing a case.
//!
//! All the work is here; `main.rs` only parses the flags. The output is plain text by default and JSON
//! with `--json` (full f32 precision in both); nothing is printed from here, the caller prints the
//! returned string.

use std::path::PathBuf;

use serde_json::json;

use super::Siglip;
use crate::embed::{Alpha, Embedder, ModelSource, ModelSpec, Pipeline};
use crate::error::{Error, Result};

/// The `embed` subcommand's arguments.
#[derive(Debug, Clone, Default)]
pub struct EmbedRequest {
    /// A checkpoint directory or a hub id.
    pub model: String,
    pub revision: Option<String>,
    pub texts: Vec<String>,
    pub images: Vec<PathBuf>,
    pub json: bool,
    /// Also print the token ids (and the cleaned text) of each text.
    pub tokens: bool,
    pub offline: bool,
    /// `None` when not given (`drop` then; it may not be given with the `open_clip` pipeline).
    pub alpha: Option<Alpha>,
    pub pipeline: Pipeline,
}

/// Loads the model, embeds everything asked for and returns the report to print.
pub fn embed_command(req: &EmbedRequest) -> Result<String> {
    let source = ModelSource::from_override(&req.model, req.revision.as_deref());
    if req.texts.is_empty() && req.images.is_empty() {
        return Err(Error::model(&source, "nothing to embed: give at least one --text or --image"));
    }
    if let (Pipeline::OpenClip, Some(_)) = (req.pipeline, req.alpha) {
        return Err(Error::model(
            &source,
            "--alpha applies only to --pipeline rgb_first; --pipeline open_clip handles transparency as Pillow does: \
             leave out one of the two",
        ));
    }
    let spec = ModelSpec { source, offline: req.offline, alpha: req.alpha.unwrap_or_default(), pipeline: req.pipeline };
    let model = Siglip::open(&spec)?;
    let ids = model.text_pipeline().encode(&req.texts)?;
    let text_vecs = model.text_features(&ids)?;
    let paths: Vec<&std::path::Path> = req.images.iter().map(PathBuf::as_path).collect();
    let image_vecs = model.embed_images(&paths)?;
    let fp = model.fingerprint();
    let cleaning = model.text_pipeline().cleaning;

    if req.json {
        let texts: Vec<_> = req
            .texts
            .iter()
            .zip(&ids)
            .zip(&text_vecs)
            .map(|((t, ids), v)| {
                let mut o = json!({ "text": t, "embedding": v });
                if req.tokens {
                    o["cleaned"] = json!(cleaning.apply(t));
                    o["tokens"] = json!(ids);
                }
                o
            })
            .collect();
        let images: Vec<_> = req
            .images
            .iter()
            .zip(&image_vecs)
            .map(|(p, v)| json!({ "image": p.to_string_lossy(), "embedding": v }))
            .collect();
        let out = json!({
            "model": fp.model,
            "revision": fp.revision,
            "preprocessing": fp.preprocessing,
            "content": fp.content,
            "texts": texts,
            "images": images,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&out).unwrap_or_default()));
    }

    let vector = |v: &[f32]| v.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(" ");
    let mut out = format!("model: {} @ {}\npreprocessing: {}\n", fp.model, fp.revision, fp.preprocessing);
    for ((t, ids), v) in req.texts.iter().zip(&ids).zip(&text_vecs) {
        out.push_str(&format!("\ntext {t:?}\n"));
        if req.tokens {
            out.push_str(&format!("cleaned {:?}\n", cleaning.apply(t)));
            let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
            out.push_str(&format!("tokens {}\n", ids.join(" ")));
        }
        out.push_str(&format!("embedding[{}] {}\n", v.len(), vector(v)));
    }
    for (p, v) in req.images.iter().zip(&image_vecs) {
        out.push_str(&format!("\nimage {}\nembedding[{}] {}\n", p.display(), v.len(), vector(v)));
    }
    Ok(out)
}
