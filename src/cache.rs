//! The on-disk cache of catalog image embeddings, so that re-running an unchanged suite costs only the
//! query texts.
//!
//! One file per model fingerprint (`<dir>/<fingerprint key>.emb`), holding vectors keyed by the SHA-256
//! of each image file's bytes: an edited image is re-embedded, a renamed one is not. The file is
//! replaced atomically (written beside, then renamed), so an interrupted run or parallel test processes
//! never leave a torn cache; a cache that cannot be read is ignored and rebuilt, never trusted.
//!
//! Format: `FITCHEK1`, dim (u32 LE), count (u64 LE), then per entry 32 hash bytes and dim f32 LE.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::rank::normalize;

const MAGIC: &[u8; 8] = b"FITCHEK1";

type Hash = [u8; 32];

/// Statistics of one [`embed_catalog`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub cached: usize,
    pub embedded: usize,
}

/// Normalised embeddings of every catalog item, in catalog order, reading and updating the cache in
/// `dir` when one is given.
pub fn embed_catalog(
    embedder: &dyn Embedder,
    catalog: &Catalog,
    dir: Option<&Path>,
) -> Result<(Vec<Vec<f32>>, CacheStats)> {
    let hashes: Vec<Hash> = catalog
        .items()
        .iter()
        .map(|it| {
            let bytes = std::fs::read(&it.path).map_err(|e| Error::Image { path: it.path.clone(), message: e.to_string() })?;
            Ok(Sha256::digest(&bytes).into())
        })
        .collect::<Result<_>>()?;
    let file = dir.map(|d| d.join(format!("{}.emb", embedder.fingerprint().cache_key())));
    let mut known = file.as_deref().map(read).unwrap_or_default();

    let missing: Vec<usize> = (0..hashes.len()).filter(|&i| !known.contains_key(&hashes[i])).collect();
    let stats = CacheStats { cached: hashes.len() - missing.len(), embedded: missing.len() };
    if !missing.is_empty() {
        let paths: Vec<&Path> = missing.iter().map(|&i| catalog.items()[i].path.as_path()).collect();
        let vectors = embedder.embed_images(&paths)?;
        for (&i, mut v) in missing.iter().zip(vectors) {
            normalize(&mut v);
            known.insert(hashes[i], v);
        }
        if let Some(file) = &file {
            // A cache that cannot be written costs time on the next run, nothing else.
            let _ = write(file, &known);
        }
    }
    let vectors = hashes.iter().map(|h| known[h].clone()).collect();
    Ok((vectors, stats))
}

fn read(path: &Path) -> HashMap<Hash, Vec<f32>> {
    let Ok(bytes) = std::fs::read(path) else { return HashMap::new() };
    parse(&bytes).unwrap_or_default()
}

fn parse(bytes: &[u8]) -> Option<HashMap<Hash, Vec<f32>>> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let dim = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let count = u64::from_le_bytes(rest.get(4..12)?.try_into().ok()?) as usize;
    let body = &rest[12..];
    let entry = 32 + 4 * dim;
    if body.len() != count.checked_mul(entry)? {
        return None;
    }
    Some(
        body.chunks_exact(entry)
            .map(|e| {
                let hash: Hash = e[..32].try_into().unwrap();
                let v = e[32..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
                (hash, v)
            })
            .collect(),
    )
}

fn write(path: &Path, entries: &HashMap<Hash, Vec<f32>>) -> std::io::Result<()> {
    let dim = entries.values().next().map_or(0, Vec::len);
    if entries.values().any(|v| v.len() != dim) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp: PathBuf = dir.join(format!(".{}.{}.tmp", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(MAGIC)?;
        f.write_all(&(dim as u32).to_le_bytes())?;
        f.write_all(&(entries.len() as u64).to_le_bytes())?;
        let mut sorted: Vec<_> = entries.iter().collect();
        sorted.sort_by_key(|(h, _)| **h);
        for (hash, v) in sorted {
            f.write_all(&hash[..])?;
            for x in v {
                f.write_all(&x.to_le_bytes())?;
            }
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_torn_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.emb");
        let entries = HashMap::from([([1u8; 32], vec![0.5f32, -0.25]), ([2u8; 32], vec![1.0, 0.0])]);
        write(&path, &entries).unwrap();
        assert_eq!(read(&path), entries);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(parse(&bytes[..bytes.len() - 1]), None);
        assert_eq!(parse(b"NOTACACHE"), None);
    }
}
