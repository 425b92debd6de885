//! Integration tests, compiled into one binary: real files of every format (committed fixtures
//! or built in the test), hostile files, and the sample knowledge bases.

mod encodings;
mod hostile;
mod office;
mod pdf;
mod samples;
mod web;
mod zipkit;

use std::path::PathBuf;

use lumbung_core::DocumentPath;

/// A path under this crate's folder, independent of the directory tests run from.
fn crate_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The bytes of a file in `tests/fixtures`.
fn fixture(name: &str) -> Vec<u8> {
    let path = crate_path("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn doc_path(path: &str) -> DocumentPath {
    DocumentPath::new(path).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift64), so a failure can be reproduced.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
