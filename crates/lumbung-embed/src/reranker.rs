use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use fastembed::{RerankInitOptionsUserDefined, TextRerank, UserDefinedRerankingModel};
use lumbung_core::{EmbeddingConfig, RerankConfig};
use tracing::{debug, info};

use crate::embedder::{absolute, read, require_file, runtime_library, tokenizer_files};
use crate::{Result, runtime};

/// A cross-encoder that reads a query and a passage together and scores how well the passage
/// answers it: slower than comparing vectors, so it only reorders a few fused candidates.
pub struct Reranker {
    model: Mutex<TextRerank>,
}

impl std::fmt::Debug for Reranker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reranker").finish_non_exhaustive()
    }
}

impl Reranker {
    /// Loads `model.onnx` and its tokenizer files from `config.model_dir`, on the ONNX Runtime
    /// the embedding configuration names.
    pub fn load(config: &RerankConfig, embedding: &EmbeddingConfig) -> Result<Reranker> {
        let started = Instant::now();
        let library = runtime_library(embedding)?;
        require_file("onnx runtime library", &library)?;
        let model_dir = absolute(&config.model_dir)?;
        let onnx_path = model_dir.join("model.onnx");
        let model = UserDefinedRerankingModel::new(
            read("reranker model", &onnx_path)?,
            tokenizer_files(&model_dir)?,
        );
        let options = RerankInitOptionsUserDefined::new()
            .with_environment(runtime::environment(&library)?)
            .with_max_length(config.max_tokens);
        let model = TextRerank::try_new_from_user_defined(model, options)?;
        info!(
            model = %onnx_path.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "reranker loaded"
        );
        Ok(Reranker {
            model: Mutex::new(model),
        })
    }

    /// One relevance score per passage, in the passages' order; higher is more relevant. The
    /// scores are logits: comparable within one query, not across queries.
    pub fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let results = self
            .model
            .lock()
            // A run keeps no state in the session, so a panic elsewhere cannot corrupt it.
            .unwrap_or_else(PoisonError::into_inner)
            .rerank(query, passages, false, Some(passages.len()))?;
        let mut scores = vec![f32::NEG_INFINITY; passages.len()];
        for result in results {
            scores[result.index] = result.score;
        }
        debug!(
            passages = passages.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "reranked"
        );
        Ok(scores)
    }
}
