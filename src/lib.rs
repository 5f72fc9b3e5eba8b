//! fitcheck: a regression test harness for text-to-image retrieval models.

#![deny(unsafe_code)]

pub mod cache;
pub mod case;
pub mod catalog;
pub mod embed;
pub mod error;
pub mod harness;
pub mod metrics;
pub mod model;
pub mod outcome;
pub mod rank;
pub mod report;
pub mod snapshot;
pub mod suite;
pub mod threshold;
pub mod toy;

pub use embed::{Embedder, Fingerprint};
pub use error::{Error, Result};
