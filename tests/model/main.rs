//! The SigLIP backend's integration tests, one binary: fixtures the loader must refuse
//! ([`broken`]), many images through both backends in one call ([`batches`]), `fitcheck embed` and the
//! text and image options ([`embed`]), fidelity against the Python references ([`fidelity`],
//! [`pipeline`]), decompression-bomb limits ([`images`]) and hub loading ([`hub`]). Shared helpers are
//! in [`common`].
//!
//! [`hub`] changes process-wide environment variables (`HF_HOME`, `HF_ENDPOINT`, …); no other test
//! here reads them (every other test opens local directories), so the tests can share a process.

mod batches;
mod broken;
mod clip;
mod common;
mod embed;
mod fidelity;
mod hub;
mod images;
mod pipeline;
