//! A deterministic backend that is not a model, for testing the harness itself.
//!
//! An image's vector has a 1 for each of its catalog tags; a query's vector has a 1 for each tag that
//! appears in the query as a word or as a run of words joined by `-` ("jean wide leg" hits the tags
//! `jean` and `wide-leg`). The cosine of two such vectors is `shared / sqrt(|query tags| · |item tags|)`,
//! so a test can work out a whole ranking by hand. Images are still decoded, so a missing or broken
//! image fails here exactly as it would with a real model.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::embed::{Embedder, Fingerprint};
use crate::error::{Error, Result};

/// The tag-based embedder.
pub struct ToyEmbedder {
    vocab: Vec<String>,
    tags_by_path: HashMap<PathBuf, Vec<String>>,
    fingerprint: Fingerprint,
}

impl ToyEmbedder {
    /// Builds the vocabulary from every tag in `catalog`.
    pub fn new(catalog: &Catalog) -> ToyEmbedder {
        let vocab: BTreeSet<String> = catalog.items().iter().flat_map(|it| it.tags.iter().cloned()).collect();
        let vocab: Vec<String> = vocab.into_iter().collect();
        let tags_by_path = catalog.items().iter().map(|it| (it.path.clone(), it.tags.clone())).collect();
        let fingerprint = Fingerprint {
            model: "toy".into(),
            revision: "local".into(),
            preprocessing: "tags".into(),
            content: vocab.join(","),
        };
        ToyEmbedder { vocab, tags_by_path, fingerprint }
    }

    fn vector(&self, terms: impl Fn(&str) -> bool) -> Vec<f32> {
        self.vocab.iter().map(|t| if terms(t) { 1.0 } else { 0.0 }).collect()
    }
}

/// The words of a query and every run of 2 or 3 consecutive words joined by `-`.
fn terms(text: &str) -> BTreeSet<String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut out = BTreeSet::new();
    for n in 1..=3 {
        for run in words.windows(n) {
            out.insert(run.join("-"));
        }
    }
    out
}

impl Embedder for ToyEmbedder {
    fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let terms = terms(t);
                self.vector(|tag| terms.contains(tag))
            })
            .collect())
    }

    /// Tag vectors do not depend on padding: the same vectors as [`Embedder::embed_texts`].
    fn embed_texts_padded_to_longest(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.embed_texts(texts)
    }

    /// The toy has no tokenizer and no token limit.
    fn token_counts(&self, _texts: &[String]) -> Result<Option<Vec<usize>>> {
        Ok(None)
    }

    fn context_length(&self) -> Option<usize> {
        None
    }

    /// No learned logits: there is no sigmoid loss to compute for the toy.
    fn logit_scale_bias(&self) -> Option<(f32, Option<f32>)> {
        None
    }

    fn embed_images(&self, paths: &[&Path]) -> Result<Vec<Vec<f32>>> {
        paths
            .iter()
            .map(|&path| {
                image::ImageReader::open(path)
                    .map_err(|e| Error::Image { path: path.to_owned(), message: e.to_string() })?
                    .with_guessed_format()
                    .map_err(|e| Error::Image { path: path.to_owned(), message: e.to_string() })?
                    .decode()
                    .map_err(|e| Error::Image { path: path.to_owned(), message: e.to_string() })?;
                let tags = self.tags_by_path.get(path).map(Vec::as_slice).unwrap_or_default();
                Ok(self.vector(|tag| tags.iter().any(|t| t == tag)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_terms_join_runs_of_words() {
        let t: Vec<String> = terms("Jean wide-leg, AZUL").into_iter().collect();
        assert_eq!(
            t,
            ["azul", "jean", "jean-wide", "jean-wide-leg", "leg", "leg-azul", "wide", "wide-leg", "wide-leg-azul"]
        );
    }
}
