//! Integration tests of the library and the `fitcheck` binary, in one test binary (each binary links
//! candle, so fewer binaries build and link faster). Model fidelity tests are `tests/model/`; the
//! example suite is `tests/cases.rs`.

mod common;

mod cache;
mod case_files;
mod compare;
mod harness;
mod html;
mod hub;
mod pairs;
mod properties;
