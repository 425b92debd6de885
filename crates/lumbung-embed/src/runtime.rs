//! The process-wide ONNX Runtime, loaded once from a shared library.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;

use crate::{Error, Result};

/// A process can load one ONNX Runtime library and hold one ONNX Runtime environment, so every
/// [`crate::Embedder`] shares the first one, and asking for another library is an error rather
/// than a silent use of the wrong one.
static LOADED: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The environment of the ONNX Runtime at `library` (an absolute path), loading it on first use.
pub(crate) fn environment(library: &Path) -> Result<Environment> {
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((path, environment)) = loaded.as_ref() {
        if same_file(path, library) {
            return Ok(environment.clone());
        }
        return Err(Error::Runtime {
            path: library.to_path_buf(),
            reason: format!(
                "another onnx runtime is already loaded from {}",
                path.display()
            ),
        });
    }
    let runtime_error = |reason: String| Error::Runtime {
        path: library.to_path_buf(),
        reason,
    };
    let environment = ort::init_from(library)
        .map_err(|err| runtime_error(err.to_string()))?
        .with_name("lumbung")
        .build()
        .map_err(|err| runtime_error(err.to_string()))?;
    tracing::info!(library = %library.display(), "onnx runtime loaded");
    *loaded = Some((library.to_path_buf(), environment.clone()));
    Ok(environment)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
