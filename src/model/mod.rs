//! The SigLIP backend (candle). Only this module knows about tensors, tokenizers and the hub.

use crate::embed::{Embedder, ModelSpec};
use crate::error::{Error, Result};

/// Opens the checkpoint `spec` names.
pub fn open(spec: &ModelSpec) -> Result<Box<dyn Embedder>> {
    Err(Error::model(&spec.source, "the SigLIP backend is not available in this build yet"))
}
