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

/// The longest header accepted (the safetensors format's own limit is 100 MB).
const MAX_HEADER: u64 = 100_000_000;

impl Header {
    /// Reads and checks the header of `path` (names, dtypes, shapes against byte ranges).
    pub fn read(path: &Path) -> Result<Header> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        Header::read_from(path, file, file_len)
    }

    /// Reads and checks a header from `reader`, the contents of `path` (`file_len` bytes long).
    ///
    /// Every size in the header is untrusted: offsets and lengths are added and multiplied with
    /// checked arithmetic, so a crafted file is refused with a message instead of overflowing.
    pub fn read_from(path: &Path, mut reader: impl Read, file_len: u64) -> Result<Header> {
        let bad = |m: String| Error::file(path, format!("{m}: the file is not a valid safetensors file"));
        let mut len = [0u8; 8];
        reader.read_exact(&mut len).map_err(|_| bad("shorter than 8 bytes".into()))?;
        let len = u64::from_le_bytes(len);
        let data_start = 8u64.checked_add(len).filter(|&end| len <= MAX_HEADER && end <= file_len);
        let Some(data_start) = data_start else {
            return Err(bad(format!("header length {len} exceeds the file")));
        };
        let mut json = vec![0u8; len as usize];
        reader.read_exact(&mut json).map_err(|e| Error::io(path, e))?;
        let value: serde_json::Value =
            serde_json::from_slice(&json).map_err(|e| bad(format!("header is not JSON ({e})")))?;
        let object = value.as_object().ok_or_else(|| bad("header is not a JSON object".into()))?;
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
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
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
            let range =
                || format!("tensor '{name}' has byte range {}..{} for shape {:?}", entry.begin, entry.end, entry.shape);
            let bytes = entry
                .shape
                .iter()
                .try_fold(size as u64, |n, &d| n.checked_mul(d as u64))
                .ok_or_else(|| bad(format!("tensor '{name}' has shape {:?}, larger than any file", entry.shape)))?;
            let in_file = data_start.checked_add(entry.end).is_some_and(|end| end <= file_len);
            if entry.end < entry.begin || entry.end - entry.begin != bytes || !in_file {
                return Err(bad(range()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> Result<Header> {
        Header::read_from(Path::new("x.safetensors"), bytes, bytes.len() as u64)
    }

    /// A file made of `header` (JSON) and `data` bytes, with the length prefix.
    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header.as_bytes());
        out.extend(std::iter::repeat_n(0u8, data));
        out
    }

    #[test]
    fn crafted_sizes_are_refused_not_overflowed() {
        let cases = [
            // 8 + len overflows u64.
            (u64::MAX.to_le_bytes().to_vec(), "header length 18446744073709551615 exceeds the file"),
            // The shape product times the dtype size overflows.
            (
                file(r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#, 0),
                "tensor 'a' has shape [4294967296, 4294967296], larger than any file",
            ),
            // data_start + end overflows.
            (
                file(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}}"#,
                    0,
                ),
                "tensor 'a' has byte range 18446744073709551612..18446744073709551615 for shape [1]",
            ),
            // A shape that does not fit usize on any platform is malformed.
            (
                file(r#"{"a":{"dtype":"F32","shape":[1e30],"data_offsets":[0,4]}}"#, 4),
                "tensor 'a' has a malformed header entry",
            ),
        ];
        for (bytes, want) in cases {
            let err = parse(&bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            assert!(err.ends_with("the file is not a valid safetensors file"), "{err}");
        }
        let ok = parse(&file(r#"{"a":{"dtype":"F16","shape":[2,1],"data_offsets":[0,4]}}"#, 4)).unwrap();
        assert_eq!(ok.shape("a"), Some(&[2, 1][..]));
    }

    fn huge() -> impl Strategy<Value = u64> {
        prop_oneof![0..64u64, Just(u64::MAX), Just(u64::MAX - 7), Just(1 << 32), Just(1 << 62), any::<u64>()]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn arbitrary_length_prefixes_never_panic(len in huge(), rest in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.extend(rest);
            let _ = parse(&bytes);
        }

        #[test]
        fn headers_with_huge_numbers_never_panic(
            shape in proptest::collection::vec(huge(), 0..4),
            begin in huge(),
            end in huge(),
            dtype in prop_oneof![Just("F32"), Just("F16"), Just("BF16"), Just("F64"), Just("I8")],
            data in 0..64usize,
        ) {
            let header = serde_json::json!({ "t": { "dtype": dtype, "shape": shape, "data_offsets": [begin, end] } });
            let _ = parse(&file(&header.to_string(), data));
        }
    }
}
