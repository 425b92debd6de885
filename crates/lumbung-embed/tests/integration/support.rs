use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lumbung_core::EmbeddingConfig;
use lumbung_embed::Embedder;

/// The repository's `runtime/` folder; a missing one fails the test instead of skipping it.
pub fn runtime_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime");
    assert!(
        dir.join("onnxruntime/libonnxruntime.so").is_file()
            && dir
                .join("models/multilingual-e5-small/model.onnx")
                .is_file(),
        "the ONNX Runtime or the model is missing under {}: run scripts/setup-runtime.sh first",
        dir.display()
    );
    dir
}

/// The default configuration, with its relative paths anchored at the repository root (tests run
/// in the crate's folder).
pub fn config() -> EmbeddingConfig {
    let runtime = runtime_dir();
    let root = runtime.parent().expect("runtime has a parent");
    let defaults = EmbeddingConfig::default();
    EmbeddingConfig {
        model_dir: root.join(&defaults.model_dir),
        onnxruntime_library: root.join(&defaults.onnxruntime_library),
        ..defaults
    }
}

/// The nice value the shared embedder's passage session runs at, as a service's would.
pub const PASSAGE_NICENESS: i32 = 5;

/// One embedder for the whole test binary: loading the model takes seconds.
pub fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| Embedder::load(&config(), PASSAGE_NICENESS).expect("the model loads"))
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}
