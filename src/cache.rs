//! The on-disk cache of catalog image embeddings, so that re-running an unchanged suite costs only the
//! query texts.
//!
//! One file per model fingerprint (`<dir>/<fingerprint key>.emb`), holding vectors keyed by the SHA-256
//! of each image file's bytes: an edited image is re-embedded, a renamed one is not. The file is
//! replaced atomically (written beside, then renamed), so an interrupted run or parallel test processes
//! never leave a torn cache; a cache that cannot be read is ignored and rebuilt, never trusted.
//!
//! Hashing every image on every run would cost a full read of the catalog per test process, so a
//! second file (`<key>.stamps`) remembers each image's size, modification time and hash. A stamp is
//! trusted only when both match and the modification is at least two seconds older than the stamps
//! file itself (a file rewritten in the same instant as the stamp, with the same size, could otherwise
//! pass unseen, as with git's "racy" index entries); anything else is read and hashed again.
//!
//! Format: `FITCHEK1`, dim (u32 LE), count (u64 LE), then per entry 32 hash bytes and dim f32 LE.
//! Stamps: one line per image, `size<TAB>mtime-ns<TAB>hex hash<TAB>path`.

use std::collections::HashMap;
use std::path::Path;
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::embed::{unit_vectors, Embedder};
use crate::error::{Error, Result};
use crate::files::{atomic_write, hex};

const MAGIC: &[u8; 8] = b"FITCHEK1";

type Hash = [u8; 32];

/// Statistics of one [`embed_catalog`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Images whose embedding came from the cache.
    pub cached: usize,
    /// Images the model embedded.
    pub embedded: usize,
    /// Images read and hashed (the others were known by their stamp).
    pub hashed: usize,
}

/// An image file's size and modification time (ns since the epoch).
type Stamp = (u64, u128);

/// Trust a stamp only if the file was last modified this long before the stamps were written.
const RACY_NS: u128 = 2_000_000_000;

fn stamp_of(path: &Path) -> std::io::Result<Option<Stamp>> {
    let meta = std::fs::metadata(path)?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos());
    Ok(mtime.map(|m| (meta.len(), m)))
}

/// The stamps file's entries by path, and when it was written.
fn read_stamps(path: &Path) -> (HashMap<String, (Stamp, Hash)>, Option<u128>) {
    let written = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos());
    let Ok(text) = std::fs::read_to_string(path) else { return (HashMap::new(), None) };
    let entries = text
        .lines()
        .filter_map(|line| {
            let mut f = line.splitn(4, '\t');
            let size = f.next()?.parse().ok()?;
            let mtime = f.next()?.parse().ok()?;
            let hex = f.next()?;
            let path = f.next()?;
            let mut hash = [0u8; 32];
            if hex.len() != 64 {
                return None;
            }
            for (i, b) in hash.iter_mut().enumerate() {
                *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
            }
            Some((path.to_string(), ((size, mtime), hash)))
        })
        .collect();
    (entries, written)
}

fn write_stamps(path: &Path, stamps: &[(String, Stamp, Hash)]) -> Result<()> {
    let mut text = String::new();
    for (p, (size, mtime), hash) in stamps {
        text.push_str(&format!("{size}\t{mtime}\t{}\t{p}\n", hex(hash)));
    }
    atomic_write(path, text.as_bytes())
}

/// The catalog's embeddings and what was learnt while making them.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// Normalised embeddings, in catalog order.
    pub vectors: Vec<Vec<f32>>,
    /// `sha256:<16 hex>` over every item's id and content hash (see [`catalog_digest`]).
    pub digest: String,
    /// Each item's SHA-256 content hash, in catalog order.
    pub hashes: Vec<[u8; 32]>,
    pub stats: CacheStats,
}

/// The digest of a catalog: SHA-256 over `id NUL content-hash` of every item in id order, so adding,
/// removing, renaming or editing an image changes it. Shown as `sha256:` and 16 hex digits.
pub fn catalog_digest<'a>(items: impl IntoIterator<Item = (&'a str, &'a Hash)>) -> String {
    let mut h = Sha256::new();
    for (id, hash) in items {
        h.update(id.as_bytes());
        h.update([0u8]);
        h.update(hash);
    }
    format!("sha256:{}", &hex(&h.finalize())[..16])
}

/// Normalised embeddings of every catalog item, in catalog order, reading and updating the cache in
/// `dir` when one is given.
pub fn embed_catalog(embedder: &dyn Embedder, catalog: &Catalog, dir: Option<&Path>) -> Result<Embedded> {
    let paths: Vec<&Path> = catalog.items().iter().map(|it| it.path.as_path()).collect();
    let (vectors, hashes, stats) = embed_files(embedder, &paths, dir)?;
    let digest = catalog_digest(catalog.items().iter().map(|it| it.id.as_str()).zip(&hashes));
    Ok(Embedded { vectors, digest, hashes, stats })
}

/// Normalised embeddings of the images at `paths`, in order, through the same cache file as
/// [`embed_catalog`] (pair mode's images share it with the catalog's). The stamps file keeps the stamps of
/// the latest call's paths only, so callers that alternate re-hash each other's images: slower, never wrong.
pub fn embed_paths(
    embedder: &dyn Embedder,
    paths: &[&Path],
    dir: Option<&Path>,
) -> Result<(Vec<Vec<f32>>, CacheStats)> {
    embed_files(embedder, paths, dir).map(|(v, _, stats)| (v, stats))
}

/// The shared work: vectors, content hashes and statistics.
fn embed_files(
    embedder: &dyn Embedder,
    paths: &[&Path],
    dir: Option<&Path>,
) -> Result<(Vec<Vec<f32>>, Vec<Hash>, CacheStats)> {
    let file = dir.map(|d| d.join(format!("{}.emb", embedder.fingerprint().cache_key())));
    let stamps_file = file.as_ref().map(|f| f.with_extension("stamps"));
    let (old_stamps, written) = stamps_file.as_deref().map(read_stamps).unwrap_or_default();
    let mut stamps = Vec::with_capacity(paths.len());
    let mut hashed = 0;
    for &path in paths {
        let image_err = |e: std::io::Error| Error::Image { path: path.to_owned(), message: e.to_string() };
        let stamp = stamp_of(path).map_err(image_err)?;
        let key = path.to_string_lossy().into_owned();
        let trusted = match (stamp, old_stamps.get(&key), written) {
            (Some(now), Some((then, hash)), Some(w)) if now == *then && now.1 + RACY_NS < w => Some(*hash),
            _ => None,
        };
        let hash = match trusted {
            Some(h) => h,
            None => {
                hashed += 1;
                Sha256::digest(std::fs::read(path).map_err(image_err)?).into()
            }
        };
        stamps.push((key, stamp.unwrap_or_default(), hash));
    }
    let hashes: Vec<Hash> = stamps.iter().map(|s| s.2).collect();
    let mut known = file.as_deref().map(read).unwrap_or_default();

    let missing: Vec<usize> = (0..hashes.len()).filter(|&i| !known.contains_key(&hashes[i])).collect();
    let stats = CacheStats { cached: hashes.len() - missing.len(), embedded: missing.len(), hashed };
    if !missing.is_empty() {
        let todo: Vec<&Path> = missing.iter().map(|&i| paths[i]).collect();
        let names: Vec<String> = todo.iter().map(|p| p.display().to_string()).collect();
        let vectors = unit_vectors(embedder.fingerprint(), "image", &names, embedder.embed_images(&todo)?)?;
        for (&i, v) in missing.iter().zip(vectors) {
            known.insert(hashes[i], v);
        }
        if let Some(file) = &file {
            // A cache that cannot be written costs time on the next run, nothing else.
            let _ = write(file, &known);
        }
    }
    if let (Some(path), true) = (&stamps_file, hashed > 0) {
        // Losing the stamps costs a re-hash on the next run, nothing else.
        let _ = write_stamps(path, &stamps);
    }
    let vectors = hashes.iter().map(|h| known[h].clone()).collect();
    Ok((vectors, hashes, stats))
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

fn write(path: &Path, entries: &HashMap<Hash, Vec<f32>>) -> Result<()> {
    let dim = entries.values().next().map_or(0, Vec::len);
    if entries.values().any(|v| v.len() != dim) {
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(20 + entries.len() * (32 + 4 * dim));
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(dim as u32).to_le_bytes());
    bytes.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by_key(|(h, _)| **h);
    for (hash, v) in sorted {
        bytes.extend_from_slice(&hash[..]);
        for x in v {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    atomic_write(path, &bytes)
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
