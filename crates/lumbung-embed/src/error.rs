use std::path::PathBuf;

/// Errors raised while loading the embedding model, embedding text or configuring chunking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the runtime or the model needs is not where the configuration says.
    #[error("{what} not found at {path} (run scripts/setup-runtime.sh to install it)")]
    MissingFile { what: &'static str, path: PathBuf },
    /// Neither `embedding.onnxruntime_library` nor `ORT_DYLIB_PATH` names the ONNX Runtime.
    #[error(
        "no onnx runtime library configured: set embedding.onnxruntime_library or ORT_DYLIB_PATH"
    )]
    NoRuntimeLibrary,
    /// The ONNX Runtime library could not be loaded, or another one is already loaded.
    #[error("onnx runtime {path}: {reason}")]
    Runtime { path: PathBuf, reason: String },
    /// A model file exists but could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `tokenizer.json` could not be parsed or configured.
    #[error("tokenizer {path}: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    /// The reranker's session could not be built or run.
    #[error("reranker model: {0}")]
    Reranker(#[from] fastembed::Error),
    /// ONNX Runtime could not make a session of the model at `path`.
    #[error("embedding model {path}: {reason}")]
    Session { path: PathBuf, reason: String },
    /// Running the embedding model failed.
    #[error("embedding model: {0}")]
    Onnx(#[from] ort::Error),
    /// A text could not be tokenized.
    #[error("tokenizing: {0}")]
    Tokenization(String),
    /// The model's output is not token or text vectors of the batch.
    #[error("embedding model output: {0}")]
    Output(String),
    /// The model's vectors do not have the dimension the configuration promises the indexes.
    #[error(
        "the model produces {actual}-dimensional vectors but embedding.dimension is {expected}"
    )]
    Dimension { expected: usize, actual: usize },
    /// Chunk sizes that cannot work together.
    #[error("invalid chunking: {0}")]
    InvalidChunking(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
