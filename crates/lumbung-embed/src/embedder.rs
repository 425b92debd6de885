use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use fastembed::TokenizerFiles;
use lumbung_core::EmbeddingConfig;
use ort::session::builder::PrepackedWeights;
use tokenizers::Tokenizer;
use tracing::{debug, info};

use crate::encoder::{self, EncoderSession, EncoderSettings};
use crate::{Error, Result, runtime};

/// The embedding model, loaded once and shared by every thread that embeds.
///
/// All methods take `&self`. Queries and passages run on two ONNX sessions of the same model,
/// each behind its own lock: a search never waits behind an ingest batch (up to a second and
/// a half of CPU on two cores), only behind other queries. Both sessions and chunk sizing share
/// one tokenizer (about 280 MiB), and the sessions share ONNX Runtime's prepacked weights.
pub struct Embedder {
    query_session: EncoderSession,
    passage_session: EncoderSession,
    /// Told the time of every batch through the model.
    batch_observer: OnceLock<BatchObserver>,
    /// Tokens read by the query and the passage session (padding not counted).
    tokens: [AtomicU64; 2],
    tokenizer: Arc<Tokenizer>,
    dimension: usize,
    /// Longer vectors are cut to `dimension` and normalised again.
    truncate_dimension: bool,
    query_prefix: String,
    passage_prefix: String,
    batch_size: usize,
}

/// Which session a batch ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedKind {
    Query = 0,
    Passage = 1,
}

impl EmbedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EmbedKind::Query => "query",
            EmbedKind::Passage => "passage",
        }
    }
}

/// Receives the kind, the number of texts and the model time of each batch.
pub type BatchObserver = Arc<dyn Fn(EmbedKind, usize, Duration) + Send + Sync>;

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dimension", &self.dimension)
            .field("query_prefix", &self.query_prefix)
            .field("passage_prefix", &self.passage_prefix)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads ONNX Runtime from `config.onnxruntime_library` (or `ORT_DYLIB_PATH` when that is
    /// empty) and the model from `config.model_dir`. Relative paths are resolved against the
    /// current directory. Fails with [`Error::MissingFile`] naming the first file that is absent,
    /// and with [`Error::Dimension`] when the model's vectors do not match `config.dimension`.
    ///
    /// The passage session's worker threads start with the nice value `passage_niceness`
    /// (see [`lumbung_core::lower_thread_priority`]), so that embedding a burst of
    /// documents yields the cores to queries; its callers should lower their own threads too.
    pub fn load(config: &EmbeddingConfig, passage_niceness: i32) -> Result<Embedder> {
        let started = Instant::now();
        let library = runtime_library(config)?;
        require_file("onnx runtime library", &library)?;
        let model_dir = absolute(&config.model_dir)?;
        let onnx_path = model_dir.join(&config.onnx_file);
        require_file("onnx model", &onnx_path)?;
        let query_onnx_path = match config.query_onnx_file.as_str() {
            "" => onnx_path.clone(),
            file => model_dir.join(file),
        };
        require_file("onnx model for queries", &query_onnx_path)?;
        let tokenizer = shared_tokenizer(&model_dir.join("tokenizer.json"))?;
        let pad_id = pad_id(&model_dir, &tokenizer)?;

        let environment = runtime::environment(&library)?;
        let prepacked = PrepackedWeights::new();
        let settings = EncoderSettings {
            environment: &environment,
            model: &onnx_path,
            prepacked: &prepacked,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            max_tokens: config.max_tokens,
            pad_id,
            pooling: config.pooling,
        };

        // ONNX Runtime starts a session's worker threads when it makes the session: the
        // threads that appear meanwhile are its. (Making it on a thread of lower priority,
        // whose nice value they would inherit, left that thread's malloc arena holding the
        // session's temporary copies: 280 MiB more resident memory.) Nothing else starts
        // threads while the model loads at start-up; one that did would only yield more.
        let threads_before = lumbung_core::process_threads();
        let passage_session = EncoderSession::new(&settings)?;
        if passage_niceness > 0 {
            for thread in lumbung_core::process_threads() {
                if !threads_before.contains(&thread) {
                    lumbung_core::lower_thread_priority(thread, passage_niceness);
                }
            }
        }
        let embedder = Embedder {
            query_session: EncoderSession::new(&EncoderSettings {
                model: &query_onnx_path,
                ..settings
            })?,
            passage_session,
            batch_observer: OnceLock::new(),
            tokens: [AtomicU64::new(0), AtomicU64::new(0)],
            tokenizer,
            dimension: config.dimension,
            truncate_dimension: config.truncate_dimension,
            query_prefix: config.query_prefix.clone(),
            passage_prefix: config.passage_prefix.clone(),
            batch_size: config.batch_size.max(1),
        };
        // A dimension mismatch found now stops start-up, instead of failing every index write.
        embedder.embed_query("dimension check")?;
        info!(
            model = %onnx_path.display(),
            query_model = %query_onnx_path.display(),
            dimension = embedder.dimension,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedding model loaded"
        );
        Ok(embedder)
    }

    /// The length of every vector this model produces.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// How many texts go through the model in one run.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The model's tokenizer, without padding or truncation, for sizing chunks: share it
    /// ([`Arc::clone`]) rather than copy it.
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    /// Tokens the model has read for `kind` since it was loaded, prefixes and special tokens
    /// included, padding not: what throughput in tokens per second counts.
    pub fn tokens_embedded(&self, kind: EmbedKind) -> u64 {
        self.tokens[kind as usize].load(Ordering::Relaxed)
    }

    /// Has `observer` told of every batch from now on (metrics); set once, later calls are
    /// ignored.
    pub fn observe_batches(&self, observer: BatchObserver) {
        let _ = self.batch_observer.set(observer);
    }

    /// Embeds passages (chunks to be indexed): one unit-length vector per text, in order.
    pub fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed(EmbedKind::Passage, texts)
    }

    /// Embeds a search query: a unit-length vector comparable with passage vectors.
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let mut vectors = self.embed(EmbedKind::Query, &[text])?;
        Ok(vectors.pop().unwrap_or_default())
    }

    fn embed(&self, kind: EmbedKind, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let (session, prefix) = match kind {
            EmbedKind::Query => (&self.query_session, &self.query_prefix),
            EmbedKind::Passage => (&self.passage_session, &self.passage_prefix),
        };
        let started = Instant::now();
        let prefixed: Vec<String> = texts.iter().map(|text| format!("{prefix}{text}")).collect();
        let encodings = encoder::tokenize(&self.tokenizer, prefixed)?;
        // A batch is padded to its longest text, so texts of similar token counts go together:
        // a chunk's short sentences are not padded to the length of a whole chunk. (By bytes,
        // a Chinese and an English text of one length differ by half in tokens.)
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&index| encodings[index].len());
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for batch in order.chunks(self.batch_size) {
            let token_ids: Vec<&[u32]> = batch
                .iter()
                .map(|&index| encodings[index].get_ids())
                .collect();
            let batch_started = Instant::now();
            let (embedded, tokens) = session.embed_tokens(&token_ids)?;
            self.tokens[kind as usize].fetch_add(tokens, Ordering::Relaxed);
            if let Some(observe) = self.batch_observer.get() {
                observe(kind, batch.len(), batch_started.elapsed());
            }
            for (&index, vector) in batch.iter().zip(embedded) {
                vectors[index] = vector;
            }
        }
        if self.truncate_dimension {
            for vector in vectors.iter_mut().filter(|v| v.len() > self.dimension) {
                vector.truncate(self.dimension);
                let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
                for x in vector.iter_mut() {
                    *x /= norm + 1e-12;
                }
            }
        }
        if let Some(vector) = vectors.iter().find(|v| v.len() != self.dimension) {
            return Err(Error::Dimension {
                expected: self.dimension,
                actual: vector.len(),
            });
        }
        debug!(
            texts = texts.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedded"
        );
        Ok(vectors)
    }
}

/// The tokenizer in `path`, shared by every model loaded from it while one holds it (an int8
/// and an fp32 file of one model, served side by side during a model change): one is about
/// 280 MiB.
fn shared_tokenizer(path: &Path) -> Result<Arc<Tokenizer>> {
    static LOADED: Mutex<Vec<(PathBuf, Weak<Tokenizer>)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    loaded.retain(|(_, tokenizer)| tokenizer.strong_count() > 0);
    if let Some(tokenizer) = loaded
        .iter()
        .find(|(loaded_from, _)| loaded_from == path)
        .and_then(|(_, tokenizer)| tokenizer.upgrade())
    {
        return Ok(tokenizer);
    }
    let tokenizer =
        Tokenizer::from_bytes(read("tokenizer", path)?).map_err(|err| Error::Tokenizer {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    let tokenizer = Arc::new(tokenizer);
    loaded.push((path.to_path_buf(), Arc::downgrade(&tokenizer)));
    Ok(tokenizer)
}

/// The id that pads a batch: the model configuration's `pad_token_id`, else the tokenizer's
/// `<pad>` token, as fastembed chose it.
fn pad_id(model_dir: &Path, tokenizer: &Tokenizer) -> Result<u32> {
    let config_path = model_dir.join("config.json");
    let config = read("model config", &config_path)?;
    let configured = serde_json::from_slice::<serde_json::Value>(&config)
        .map_err(|err| Error::Tokenizer {
            path: config_path.clone(),
            reason: err.to_string(),
        })?
        .get("pad_token_id")
        .and_then(serde_json::Value::as_u64)
        .and_then(|id| u32::try_from(id).ok());
    Ok(configured
        .or_else(|| tokenizer.token_to_id("<pad>"))
        .unwrap_or(0))
}

/// The four tokenizer files fastembed reads from a model folder (the reranker's).
pub(crate) fn tokenizer_files(model_dir: &Path) -> Result<TokenizerFiles> {
    Ok(TokenizerFiles {
        tokenizer_file: read("tokenizer", &model_dir.join("tokenizer.json"))?,
        config_file: read("model config", &model_dir.join("config.json"))?,
        special_tokens_map_file: read(
            "special tokens map",
            &model_dir.join("special_tokens_map.json"),
        )?,
        tokenizer_config_file: read("tokenizer config", &model_dir.join("tokenizer_config.json"))?,
    })
}

pub(crate) fn runtime_library(config: &EmbeddingConfig) -> Result<PathBuf> {
    if !config.onnxruntime_library.as_os_str().is_empty() {
        return absolute(&config.onnxruntime_library);
    }
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => absolute(Path::new(&path)),
        _ => Err(Error::NoRuntimeLibrary),
    }
}

/// Resolves a relative path against the current directory, as the configuration documents.
/// (ort itself would look next to the executable first.)
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn require_file(what: &'static str, path: &Path) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::MissingFile {
            what,
            path: path.to_path_buf(),
        })
    }
}

pub(crate) fn read(what: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::MissingFile {
            what,
            path: path.to_path_buf(),
        },
        _ => Error::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedder_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Embedder>();
    }

    #[test]
    fn relative_paths_resolve_against_the_current_directory() {
        let resolved = absolute(Path::new("runtime/onnxruntime/libonnxruntime.so")).unwrap();
        let expected = std::env::current_dir()
            .unwrap()
            .join("runtime/onnxruntime/libonnxruntime.so");
        assert_eq!(resolved, expected);
        assert_eq!(
            absolute(Path::new("/opt/ort.so")).unwrap(),
            PathBuf::from("/opt/ort.so")
        );
    }

    #[test]
    fn missing_files_are_named() {
        let path = Path::new("/nonexistent/lumbung/tokenizer.json");
        let err = read("tokenizer", path).unwrap_err();
        assert!(
            matches!(
                err,
                Error::MissingFile {
                    what: "tokenizer",
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("/nonexistent/lumbung/tokenizer.json"),
            "{message}"
        );
        assert!(message.contains("scripts/setup-runtime.sh"), "{message}");
    }

    #[test]
    fn an_explicit_library_path_wins_over_the_environment() {
        let config = EmbeddingConfig {
            onnxruntime_library: PathBuf::from("/opt/ort/libonnxruntime.so"),
            ..EmbeddingConfig::default()
        };
        assert_eq!(
            runtime_library(&config).unwrap(),
            PathBuf::from("/opt/ort/libonnxruntime.so")
        );
    }

    /// The embedder tokenizes, pads, truncates and pools for itself (to share one tokenizer between
    /// its sessions); fastembed's own pipeline on the same files is the reference it must match.
    #[test]
    fn vectors_match_fastembeds_pipeline_on_the_same_model() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let defaults = EmbeddingConfig::default();
        let config = EmbeddingConfig {
            model_dir: root.join(&defaults.model_dir),
            onnxruntime_library: root.join(&defaults.onnxruntime_library),
            ..defaults
        };
        let model_dir = &config.model_dir;
        let file = |name: &str| std::fs::read(model_dir.join(name)).expect("model file");
        let reference_model = fastembed::UserDefinedEmbeddingModel::new(
            file(&config.onnx_file),
            fastembed::TokenizerFiles {
                tokenizer_file: file("tokenizer.json"),
                config_file: file("config.json"),
                special_tokens_map_file: file("special_tokens_map.json"),
                tokenizer_config_file: file("tokenizer_config.json"),
            },
        )
        .with_pooling(fastembed::Pooling::Mean);
        let embedder = Embedder::load(&config, 0).expect("the model loads");
        let environment = runtime::environment(&runtime_library(&config).unwrap()).unwrap();
        let options = fastembed::InitOptionsUserDefined::new()
            .with_environment(environment)
            .with_max_length(config.max_tokens);
        let mut reference =
            fastembed::TextEmbedding::try_new_from_user_defined(reference_model, options)
                .expect("fastembed loads the model");
        let long = "Lockout and tagout before maintenance. ".repeat(120);
        let texts = [
            "Alat pelindung diri wajib dipakai di area pengelasan.",
            "焊接作业必须佩戴防护面罩和手套。",
            long.as_str(),
            "short",
        ];
        let ours = embedder.embed_passages(&texts).unwrap();
        let prefixed: Vec<String> = texts
            .iter()
            .map(|text| format!("{}{text}", config.passage_prefix))
            .collect();
        let theirs = reference.embed(&prefixed, Some(prefixed.len())).unwrap();
        for ((text, a), b) in texts.iter().zip(&ours).zip(&theirs) {
            let similarity: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            assert!(
                similarity > 0.9999,
                "{similarity} for {:?}",
                &text[..text.len().min(40)]
            );
        }
    }
}
