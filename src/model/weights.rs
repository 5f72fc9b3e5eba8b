//! Reading safetensors files without holding the file and the tensors in memory at once.
//!
//! The header is parsed first ([`Header::read`]), so the layout can be detected and the key set and
//! shapes validated before any weight is read. Tensors are then read one at a time with positioned
//! reads and converted to f32 (f16 and bf16 files load too), so peak memory is the f32 weights plus one
//! tensor in flight, not twice the file. Only safetensors are ever read: pickled PyTorch files can run
//! code when loaded and are refused by name (see [`refuse_pickle`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// One tensor's entry in a safetensors header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dtype: String,
    pub shape: Vec<usize>,
    /// Byte range relative to the start of the data section.
    pub begin: u64,
    pub end: u64,
}

/// A parsed safetensors header.
#[derive(Debug)]
pub struct Header {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, Entry>,
    data_start: u64,
}

fn dtype_of(name: &str) -> Option<(DType, usize)> {
    match name {
        "F32" => Some((DType::F32, 4)),
        "F16" => Some((DType::F16, 2)),
        "BF16" => Some((DType::BF16, 2)),
        "F64" => Some((DType::F64, 8)),
        _ => None,
    }
}

impl Header {
    /// Reads and checks the header of `path` (names, dtypes, shapes against byte ranges).
    pub fn read(path: &Path) -> Result<Header> {
        let bad = |m: String| Error::file(path, format!("{m}: the file is not a valid safetensors file"));
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(|_| bad("shorter than 8 bytes".into()))?;
        let len = u64::from_le_bytes(len);
        if len > 100_000_000 || 8 + len > file_len {
            return Err(bad(format!("header length {len} exceeds the file")));
        }
        let mut json = vec![0u8; len as usize];
        file.read_exact(&mut json).map_err(|e| Error::io(path, e))?;
        let value: serde_json::Value =
            serde_json::from_slice(&json).map_err(|e| bad(format!("header is not JSON ({e})")))?;
        let object = value.as_object().ok_or_else(|| bad("header is not a JSON object".into()))?;
        let data_start = 8 + len;
        let mut tensors = BTreeMap::new();
        for (name, v) in object {
            if name == "__metadata__" {
                continue;
            }
            let entry = (|| {
                let dtype = v.get("dtype")?.as_str()?.to_string();
                let shape = v
                    .get("shape")?
                    .as_array()?
                    .iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<Vec<_>>>()?;
                let offsets = v.get("data_offsets")?.as_array()?;
                let (begin, end) = (offsets.first()?.as_u64()?, offsets.get(1)?.as_u64()?);
                Some(Entry { dtype, shape, begin, end })
            })()
            .ok_or_else(|| bad(format!("tensor '{name}' has a malformed header entry")))?;
            let size = dtype_of(&entry.dtype).map(|(_, s)| s);
            let Some(size) = size else {
                return Err(Error::file(
                    path,
                    format!("tensor '{name}' has dtype '{}': only F32, F16, BF16 and F64 weights load", entry.dtype),
                ));
            };
            let bytes = entry.shape.iter().product::<usize>() as u64 * size as u64;
            if entry.end < entry.begin || entry.end - entry.begin != bytes || data_start + entry.end > file_len {
                return Err(bad(format!(
                    "tensor '{name}' has byte range {}..{} for shape {:?}",
                    entry.begin, entry.end, entry.shape
                )));
            }
            tensors.insert(name.clone(), entry);
        }
        Ok(Header { path: path.to_owned(), tensors, data_start })
    }

    /// The shape of `name`, if the file has it.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|e| e.shape.as_slice())
    }

    /// Reads every tensor as f32 on the CPU, one at a time, keyed by name.
    pub fn load_all(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let mut out = BTreeMap::new();
        // Reading in file order keeps the reads sequential.
        let mut order: Vec<(&String, &Entry)> = self.tensors.iter().collect();
        order.sort_by_key(|(_, e)| e.begin);
        for (name, entry) in order {
            let (dtype, _) = dtype_of(&entry.dtype).unwrap_or((DType::F32, 4));
            file.seek(SeekFrom::Start(self.data_start + entry.begin)).map_err(|e| Error::io(&self.path, e))?;
            let mut bytes = vec![0u8; (entry.end - entry.begin) as usize];
            file.read_exact(&mut bytes).map_err(|e| Error::io(&self.path, e))?;
            let tensor = Tensor::from_raw_buffer(&bytes, dtype, &entry.shape, &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(|e| Error::file(&self.path, format!("cannot read tensor '{name}': {e}")))?;
            out.insert(name.clone(), tensor);
        }
        Ok(out)
    }
}

/// Pickled weight files a checkpoint directory or repo may hold instead of safetensors.
pub const PICKLE_FILES: [&str; 3] = ["pytorch_model.bin", "open_clip_pytorch_model.bin", "model.bin"];

/// The error for a checkpoint that only has the pickled weights in `found`.
pub fn refuse_pickle(found: &Path) -> Error {
    Error::file(
        found,
        "pickled PyTorch weights are refused because loading a pickle can run arbitrary code: \
         convert the checkpoint to safetensors (e.g. `safetensors.torch.save_file(state_dict, \"model.safetensors\")`)",
    )
}
