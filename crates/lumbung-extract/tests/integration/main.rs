//! Integration tests, compiled into one binary: PDF fixtures and the sample knowledge bases.

mod pdf;
mod samples;

use std::path::PathBuf;

/// A path under this crate's folder, independent of the directory tests run from.
fn crate_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}
