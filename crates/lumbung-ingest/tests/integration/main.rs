//! Integration tests of the ingest pipeline on real files, with the real model, a real tantivy
//! index and a real embedded Qdrant shard in temporary folders.

mod backup;
mod generations;
mod sync;
mod watcher;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use lumbung_core::{EmbeddingConfig, IngestConfig, KbGeneration, KbName, ModelName};
use lumbung_embed::Embedder;
use lumbung_index::{EdgeVectorStore, LexicalIndex, TantivyLexicalIndex, VectorStore};
use lumbung_ingest::{Catalog, IngestModel, IngestModels, Ingestor};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One model for the whole binary: loading it takes seconds.
pub fn embedder() -> Arc<Embedder> {
    static EMBEDDER: OnceLock<Arc<Embedder>> = OnceLock::new();
    Arc::clone(EMBEDDER.get_or_init(|| load_embedder(EmbeddingConfig::default())))
}

/// `config` with its paths taken from the repository root, loaded.
fn load_embedder(config: EmbeddingConfig) -> Arc<Embedder> {
    let config = EmbeddingConfig {
        model_dir: repo_root().join(&config.model_dir),
        onnxruntime_library: repo_root().join(&config.onnxruntime_library),
        ..config
    };
    Arc::new(Embedder::load(&config, 0).expect("run scripts/setup-runtime.sh first"))
}

/// The name of [`Fixture::with_second_model`]'s second model.
pub const SECOND_MODEL: &str = "e5-small-int8-256";

/// The same model's int8 file with its vectors cut to 256 dimensions: another file, another
/// dimension, another store.
fn second_embedder() -> Arc<Embedder> {
    static EMBEDDER: OnceLock<Arc<Embedder>> = OnceLock::new();
    Arc::clone(EMBEDDER.get_or_init(|| {
        load_embedder(EmbeddingConfig {
            onnx_file: "model-int8.onnx".to_string(),
            dimension: 256,
            truncate_dimension: true,
            ..EmbeddingConfig::default()
        })
    }))
}

pub fn kb(name: &str) -> KbName {
    KbName::new(name).unwrap()
}

impl Fixture {
    /// The generation of knowledge base `name` that searches read.
    pub fn active(&self, name: &str) -> KbGeneration {
        self.ingestor.active_generation(&kb(name)).unwrap()
    }
}

/// The name the fixture's one embedding model is configured under.
pub fn model_name() -> ModelName {
    ModelName::new("multilingual-e5-small").unwrap()
}

/// A watched root and a data directory in a temporary folder, with the ingestor over them.
pub struct Fixture {
    pub ingestor: Arc<Ingestor>,
    pub lexical: Arc<dyn LexicalIndex>,
    pub vectors: Arc<dyn VectorStore>,
    /// The store of [`SECOND_MODEL`], with [`Fixture::with_second_model`].
    pub second_vectors: Option<Arc<dyn VectorStore>>,
    /// Last, so that the indexes are closed (and flushed) before their folder is removed.
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(config: IngestConfig) -> Fixture {
        Fixture::open(config, false)
    }

    /// With [`SECOND_MODEL`] configured beside the default one, which new generations still
    /// get unless their `kb.toml` names it.
    pub fn with_second_model(config: IngestConfig) -> Fixture {
        Fixture::open(config, true)
    }

    fn open(config: IngestConfig, second_model: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ingest");
        std::fs::create_dir_all(&root).unwrap();
        let data = dir.path().join("data");
        let lexical: Arc<dyn LexicalIndex> =
            Arc::new(TantivyLexicalIndex::open(&data.join("lexical")).unwrap());
        let embedder = embedder();
        let store = |folder: &str, dimension: usize| -> Arc<dyn VectorStore> {
            Arc::new(
                EdgeVectorStore::open(&data.join(folder), dimension, &Default::default()).unwrap(),
            )
        };
        let vectors = store("vectors", embedder.dimension());
        let catalog = Catalog::open(&data.join("catalog.redb")).unwrap();
        let mut models = IngestModels {
            models: vec![IngestModel {
                name: model_name(),
                embedder,
                vectors: Arc::clone(&vectors),
            }],
            for_new_generations: model_name(),
        };
        let second_vectors = second_model.then(|| {
            let embedder = second_embedder();
            let vectors = store("vectors-second", embedder.dimension());
            models.models.push(IngestModel {
                name: ModelName::new(SECOND_MODEL).unwrap(),
                embedder,
                vectors: Arc::clone(&vectors),
            });
            vectors
        });
        let ingestor = Ingestor::new(&root, catalog, Arc::clone(&lexical), models, config).unwrap();
        Fixture {
            ingestor: Arc::new(ingestor),
            lexical,
            vectors,
            second_vectors,
            dir,
        }
    }

    /// The folder of knowledge base `name`, created.
    pub fn kb_dir(&self, name: &str) -> PathBuf {
        let dir = self.ingestor.root().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
