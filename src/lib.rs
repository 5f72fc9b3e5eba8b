//! fitcheck: a regression test harness for text-to-image retrieval models.

#![deny(unsafe_code)]

pub mod cache;
pub mod case;
pub mod catalog;
pub mod commands;
pub mod compare;
pub mod compare_report;
pub mod document;
pub mod embed;
pub mod error;
pub mod files;
pub mod harness;
pub mod html;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod outcome;
pub mod pairs;
pub mod rank;
pub mod report;
pub mod result;
pub mod snapshot;
pub mod stats;
pub mod suite;
pub mod threshold;
pub mod toy;
pub mod verdict;

pub use embed::{Embedder, Fingerprint};
pub use error::{Error, Result};
