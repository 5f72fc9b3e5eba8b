//! Image files → embeddings with decoding overlapped with the forward pass, shared by every backend.
//!
//! Decoding a phone photo and resizing it exactly as Pillow does takes tens of milliseconds on one
//! core; a ViT-B/16 forward pass takes a few hundred per image. Done one after the other, decoding
//! costs a tenth or more of a catalog's embedding time. Here a second thread decodes and preprocesses
//! the next batch while the calling thread runs the forward pass of the current one (on rayon's pool,
//! whose size is left alone: the extra thread shares the same cores and fills the gaps the forward pass
//! leaves). The first batch has nothing to overlap with, so its images are decoded in parallel on
//! rayon's pool, idle at that moment.
//!
//! Batches go through a channel of capacity one: the batch being embedded, at most one ready batch and
//! the one being prepared are in memory (a few MB each at 224 px), whatever the number of paths.
//!
//! Errors come out as they would one step at a time: the batches are embedded in order, the first
//! image of a batch that cannot be read is the error (naming its path), and no batch after it is
//! embedded. A panic on the decoding thread is resumed on the calling thread once it has stopped.

use std::path::Path;
use std::sync::mpsc;

use rayon::prelude::*;

use crate::error::Result;

/// Embeds the images at `paths` `batch` at a time, in order, handing each batch's vectors to `sink`.
///
/// `prepare` turns one file into the model's input (decoded, resized, normalised: `3 × size × size`
/// values) and runs on a second thread, one batch ahead; `embed` runs the forward pass of a batch's
/// concatenated inputs on the calling thread and gets the batch's paths to name them in errors.
pub(crate) fn embed_files<P, E>(
    paths: &[&Path],
    batch: usize,
    prepare: P,
    mut embed: E,
    sink: &mut dyn FnMut(Vec<Vec<f32>>) -> Result<()>,
) -> Result<()>
where
    P: Fn(&Path) -> Result<Vec<f32>> + Sync,
    E: FnMut(&[f32], &[&Path]) -> Result<Vec<Vec<f32>>>,
{
    let batch = batch.max(1);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(1);
        let prepare = &prepare;
        let producer = scope.spawn(move || {
            for (n, chunk) in paths.chunks(batch).enumerate() {
                let inputs = if n == 0 { prepare_parallel(chunk, prepare) } else { prepare_serial(chunk, prepare) };
                let failed = inputs.is_err();
                // A closed channel means the caller stopped (an error of its own): nothing more to do.
                if tx.send(inputs).is_err() || failed {
                    return;
                }
            }
        });
        // The receiver is dropped when this returns (or unwinds), which stops the producer at its
        // next batch; only then is it joined.
        let result = consume(paths.chunks(batch), rx, &mut embed, sink);
        match producer.join() {
            Ok(()) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs the forward pass of each prepared batch in turn and hands its vectors on; stops at the first
/// error, whether the batch's preparation, the forward pass or the sink failed.
fn consume<'p, E>(
    chunks: impl Iterator<Item = &'p [&'p Path]>,
    rx: mpsc::Receiver<Result<Vec<f32>>>,
    embed: &mut E,
    sink: &mut dyn FnMut(Vec<Vec<f32>>) -> Result<()>,
) -> Result<()>
where
    E: FnMut(&[f32], &[&Path]) -> Result<Vec<Vec<f32>>>,
{
    // The channel only closes early when the producer panicked, which the caller resumes.
    for (chunk, inputs) in chunks.zip(rx) {
        sink(embed(&inputs?, chunk)?)?;
    }
    Ok(())
}

/// The inputs of `chunk`, one image after the other; stops at the first image that fails.
fn prepare_serial(chunk: &[&Path], prepare: &(impl Fn(&Path) -> Result<Vec<f32>> + Sync)) -> Result<Vec<f32>> {
    let mut inputs = Vec::new();
    for path in chunk {
        inputs.extend(prepare(path)?);
    }
    Ok(inputs)
}

/// The inputs of `chunk`, its images decoded in parallel on rayon's pool; the first image (in order)
/// that fails is the error, as in [`prepare_serial`].
fn prepare_parallel(chunk: &[&Path], prepare: &(impl Fn(&Path) -> Result<Vec<f32>> + Sync)) -> Result<Vec<f32>> {
    let each: Vec<Result<Vec<f32>>> = chunk.par_iter().map(|path| prepare(path)).collect();
    let mut inputs = Vec::new();
    for one in each {
        inputs.extend(one?);
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::Error;

    /// Paths `0`, `1`, … `n - 1`; a path's input is its number, so outputs show the order.
    fn numbered(n: usize) -> Vec<PathBuf> {
        (0..n).map(|i| PathBuf::from(i.to_string())).collect()
    }

    fn number(path: &Path) -> Result<Vec<f32>> {
        match path.to_str().and_then(|s| s.parse::<f32>().ok()) {
            Some(n) => Ok(vec![n]),
            None => Err(Error::Image { path: path.to_owned(), message: "not a number".into() }),
        }
    }

    /// Runs [`embed_files`] with batches of 4, an `embed` that returns each input as a row, and a sink
    /// that records the batches; returns the result, the batches and how many forward passes ran.
    fn run(
        paths: &[PathBuf],
        prepare: impl Fn(&Path) -> Result<Vec<f32>> + Sync,
    ) -> (Result<()>, Vec<Vec<f32>>, usize) {
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let passes = AtomicUsize::new(0);
        let mut batches = Vec::new();
        let result = embed_files(
            &refs,
            4,
            prepare,
            |inputs, chunk| {
                passes.fetch_add(1, Ordering::SeqCst);
                assert_eq!(inputs.len(), chunk.len());
                Ok(inputs.iter().map(|&x| vec![x]).collect())
            },
            &mut |rows| {
                batches.push(rows.into_iter().flatten().collect());
                Ok(())
            },
        );
        (result, batches, passes.into_inner())
    }

    #[test]
    fn batches_come_back_in_order() {
        let (result, batches, passes) = run(&numbered(10), number);
        assert!(result.is_ok());
        assert_eq!(batches, [vec![0.0, 1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0, 7.0], vec![8.0, 9.0]]);
        assert_eq!(passes, 3);
        let (result, batches, passes) = run(&[], number);
        assert!(result.is_ok() && batches.is_empty() && passes == 0);
    }

    #[test]
    fn the_first_bad_image_stops_everything_after_it() {
        // In the second batch: the first batch is embedded, nothing after.
        let mut paths = numbered(14);
        paths[6] = "six.jpg".into();
        paths[10] = "ten.jpg".into();
        let (result, batches, passes) = run(&paths, number);
        assert_eq!(result.unwrap_err().to_string(), "six.jpg: cannot read image: not a number");
        assert_eq!((batches.len(), passes), (1, 1));
        // In the first batch (decoded in parallel): the first in order is named, nothing is embedded.
        let mut paths = numbered(14);
        paths[1] = "one.jpg".into();
        paths[3] = "three.jpg".into();
        let (result, batches, passes) = run(&paths, number);
        assert_eq!(result.unwrap_err().to_string(), "one.jpg: cannot read image: not a number");
        assert_eq!((batches.len(), passes), (0, 0));
    }

    #[test]
    fn an_error_of_the_sink_stops_the_decoding() {
        let paths = numbered(40);
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let prepared = AtomicUsize::new(0);
        let mut calls = 0;
        let result = embed_files(
            &refs,
            4,
            |p| {
                prepared.fetch_add(1, Ordering::SeqCst);
                number(p)
            },
            |inputs, _| Ok(inputs.iter().map(|&x| vec![x]).collect()),
            &mut |_| {
                calls += 1;
                Err(Error::model("sink", "full"))
            },
        );
        assert_eq!(result.unwrap_err().to_string(), "sink: full");
        assert_eq!(calls, 1);
        // The batch embedded, one in the channel, one being prepared when the channel closed.
        assert!(prepared.into_inner() <= 12);
    }

    #[test]
    fn a_panic_reaches_the_caller_instead_of_hanging() {
        let paths = numbered(12);
        // While decoding a later batch, and while decoding the first (on rayon's pool).
        for at in ["9", "2"] {
            let outcome = std::panic::catch_unwind(|| {
                run(&paths, |p| if p == Path::new(at) { panic!("decoder bug") } else { number(p) })
            });
            assert_eq!(outcome.unwrap_err().downcast_ref::<&str>(), Some(&"decoder bug"), "at {at}");
        }
        // In the sink, while the producer waits to hand over the next batch.
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let outcome = std::panic::catch_unwind(|| {
            embed_files(&refs, 4, number, |inputs, _| Ok(vec![inputs.to_vec()]), &mut |_| panic!("sink bug"))
        });
        assert_eq!(outcome.unwrap_err().downcast_ref::<&str>(), Some(&"sink bug"));
    }
}
