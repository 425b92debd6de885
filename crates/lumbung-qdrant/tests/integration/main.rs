//! The Qdrant backend against the stand-in Qdrant (`StandInQdrant`: Qdrant's gRPC API over
//! Qdrant's storage engine in the process; no Qdrant server can be installed where these run).

mod directory;
mod outage;
mod stand_in;

use std::sync::Arc;

use lumbung_core::{VectorIndexConfig, VectorStoreConfig, VectorStoreKind};
use lumbung_index::VectorStore;
use lumbung_index::contract::DIM;
use lumbung_qdrant::stand_in::StandInQdrant;
use lumbung_qdrant::{Connection, QdrantVectorStore};

/// A fresh folder and a stand-in serving from it; declared in this order, the folder outlives
/// the stand-in.
pub fn stand_in(api_key: Option<&str>) -> (tempfile::TempDir, StandInQdrant) {
    let dir = tempfile::tempdir().unwrap();
    let stand_in = StandInQdrant::start(dir.path(), api_key).unwrap();
    (dir, stand_in)
}

pub fn config(stand_in: &StandInQdrant) -> VectorStoreConfig {
    VectorStoreConfig {
        kind: VectorStoreKind::Qdrant,
        url: stand_in.url(),
        ..VectorStoreConfig::default()
    }
}

pub fn open(config: &VectorStoreConfig, collection: &str) -> QdrantVectorStore {
    let connection = Connection::new(config).unwrap();
    QdrantVectorStore::open(
        &connection,
        config,
        collection,
        DIM,
        &VectorIndexConfig::default(),
    )
    .unwrap()
}

mod lexical_contract {
    use lumbung_index::LexicalIndex;
    use lumbung_qdrant::QdrantLexicalIndex;

    use super::*;

    lumbung_index::lexical_index_contract!(|| {
        let (dir, stand_in) = stand_in(None);
        let config = config(&stand_in);
        let connection = Connection::new(&config).unwrap();
        let index: Arc<dyn LexicalIndex> =
            Arc::new(QdrantLexicalIndex::open(&connection, &config, "chunks").unwrap());
        ((stand_in, dir), index)
    });
}

mod vector_contract {
    use super::*;

    lumbung_index::vector_store_contract!(|| {
        let (dir, stand_in) = stand_in(None);
        let store: Arc<dyn VectorStore> = Arc::new(open(&config(&stand_in), "contract"));
        ((stand_in, dir), store)
    });
}
