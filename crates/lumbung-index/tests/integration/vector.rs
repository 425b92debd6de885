use std::sync::Arc;

use lumbung_core::{ChunkId, VectorIndexConfig};
use lumbung_index::contract::{DIM, axis, ids, points};
use lumbung_index::{EdgeVectorStore, Error, VectorStore};

use crate::{Doc, kb};

fn open(dir: &tempfile::TempDir) -> EdgeVectorStore {
    EdgeVectorStore::open(dir.path(), DIM, &VectorIndexConfig::default()).unwrap()
}

lumbung_index::vector_store_contract!(|| {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn VectorStore> = Arc::new(open(&dir));
    (dir, store)
});

#[test]
fn flushed_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let doc = Doc::new("safety", "ppe.md", "v1");
    let gone = Doc::new("safety", "old.md", "v1");
    {
        let store = open(&dir);
        store
            .replace_document(
                &doc.kb,
                &doc.path,
                &doc.hash,
                &points(&doc, vec![axis(2, 0.0), axis(3, 0.0)]),
            )
            .unwrap();
        store
            .replace_document(
                &gone.kb,
                &gone.path,
                &gone.hash,
                &points(&gone, vec![axis(2, 0.1)]),
            )
            .unwrap();
        store.delete_document(&gone.kb, &gone.path).unwrap();
        store.flush().unwrap();
        assert!(
            EdgeVectorStore::open(dir.path(), DIM, &VectorIndexConfig::default()).is_err(),
            "the shard is locked while open"
        );
    }
    let store = open(&dir);
    assert_eq!(store.count(&doc.kb, None).unwrap(), 2);
    assert_eq!(
        ids(&store
            .search(&axis(3, 0.0), std::slice::from_ref(&doc.kb), 1)
            .unwrap()),
        [doc.id(1)]
    );
    // The vectors came back from disk; the deleted document stayed deleted.
    let stored = store.get_vectors(&[doc.id(1), gone.id(0)]).unwrap();
    assert_eq!(stored, [(doc.id(1), axis(3, 0.0))]);
    // The payload indexes are created again on open without disturbing the data.
    drop(store);
    let store = open(&dir);
    assert_eq!(store.count(&doc.kb, Some(&doc.path)).unwrap(), 2);
}

#[test]
fn a_store_opened_with_another_dimension_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(open(&dir).dimension(), DIM);
    let err = EdgeVectorStore::open(dir.path(), 16, &VectorIndexConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DimensionMismatch {
                expected: 16,
                actual: DIM
            }
        ),
        "{err}"
    );
    assert!(matches!(
        EdgeVectorStore::open(dir.path(), 0, &VectorIndexConfig::default()),
        Err(Error::InvalidArgument(_))
    ));
    // The failed opens left the shard usable.
    open(&dir);
}

#[test]
fn optimize_keeps_results_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let docs: Vec<Doc> = (0..40)
        .map(|n| {
            Doc::new(
                if n % 2 == 0 { "even" } else { "odd" },
                &format!("d{n}.md"),
                "v1",
            )
        })
        .collect();
    for (n, doc) in docs.iter().enumerate() {
        let vectors = (0..5).map(|i| axis(n + i, (n % 7) as f32 * 0.1)).collect();
        store
            .replace_document(&doc.kb, &doc.path, &doc.hash, &points(doc, vectors))
            .unwrap();
    }
    for doc in docs.iter().take(10) {
        store.delete_document(&doc.kb, &doc.path).unwrap();
    }
    let query = axis(3, 0.25);
    let before = store.search(&query, &[kb("even")], 20).unwrap();

    store.optimize().unwrap();
    store.flush().unwrap();

    assert_eq!(store.count(&kb("even"), None).unwrap(), 75);
    assert_eq!(store.count(&kb("odd"), None).unwrap(), 75);
    let after = store.search(&query, &[kb("even")], 20).unwrap();
    let scores = |hits: &[(ChunkId, f32)]| {
        hits.iter()
            .map(|(_, s)| (s * 1e4).round() as i64)
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&after), scores(&before));
    let even_ids: Vec<ChunkId> = docs
        .iter()
        .step_by(2)
        .flat_map(|d| (0..5).map(|i| d.id(i)))
        .collect();
    assert!(ids(&after).iter().all(|id| even_ids.contains(id)));
}

/// A pseudo-random unit vector of `dim` entries (xorshift), the same for the same seed.
fn random_unit(seed: u64, dim: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[test]
fn the_background_optimiser_builds_graphs_while_writes_and_searches_go_on() {
    const WIDE: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let config = VectorIndexConfig {
        optimize_after_changes: 500,
        // About 400 vectors of 64 dimensions: small segments get their graph in a test.
        indexing_threshold_kb: 100,
        ..VectorIndexConfig::default()
    };
    let store = Arc::new(EdgeVectorStore::open(dir.path(), WIDE, &config).unwrap());
    store
        .optimize_in_background(0, std::time::Duration::from_millis(20))
        .unwrap();
    let write = |kb_name: &str, n: u64| {
        let doc = Doc::new(kb_name, &format!("doc{n}.md"), "v1");
        let vectors = (0..4).map(|i| random_unit(n * 4 + i, WIDE)).collect();
        store
            .replace_document(&doc.kb, &doc.path, &doc.hash, &points(&doc, vectors))
            .unwrap();
    };
    let documents = 1200u64;
    let graphs_while_writing = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let (mut searches, mut graphs_seen) = (0, false);
            while store.count(&kb("big"), None).unwrap() < documents * 4 * 2 / 3 {
                let hits = store.search(&random_unit(searches, WIDE), &[kb("big")], 10);
                assert!(
                    hits.is_ok(),
                    "a search failed during optimisation: {hits:?}"
                );
                graphs_seen |= store.index_info().indexed_points > 0;
                searches += 1;
            }
            assert!(searches > 0);
            graphs_seen
        });
        for n in 0..documents {
            // Two thirds in one knowledge base, the rest in a small one.
            write(if n % 3 == 2 { "small" } else { "big" }, n);
            if n % 100 == 99 {
                store.flush().unwrap();
                // Time for the optimiser's thread to take its turn on a busy machine.
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        reader.join().unwrap()
    });
    assert!(
        graphs_while_writing,
        "no graph was built in the background while points were written"
    );
    store.flush().unwrap();
    // Whatever the background thread has not reached yet (it waits for this one if busy).
    store.optimize().unwrap();
    assert!(store.changes_since_optimize() < 500);
    // Nothing written during the optimisations is lost or doubled.
    assert_eq!(store.count(&kb("big"), None).unwrap(), 800 * 4);
    assert_eq!(store.count(&kb("small"), None).unwrap(), 400 * 4);
    // Every segment past the indexing threshold has its graph; what is left outside one is
    // the appendable segment's remainder, below the threshold (100 KiB: 400 vectors of 64
    // floats), and is searched exactly.
    let info = store.index_info();
    assert!(info.indexed_points > 0, "{info:?}");
    assert!(info.points - info.indexed_points < 400, "{info:?}");
    // Each stored vector finds itself through the graph, scoped to its knowledge base.
    for n in (0..documents).step_by(37) {
        let kb_name = if n % 3 == 2 { "small" } else { "big" };
        let doc = Doc::new(kb_name, &format!("doc{n}.md"), "v1");
        let hits = store
            .search(&random_unit(n * 4, WIDE), &[kb(kb_name)], 5)
            .unwrap();
        assert_eq!(hits.first().map(|(id, _)| *id), Some(doc.id(0)), "doc{n}");
        let exact = store
            .search_exact(&random_unit(n * 4, WIDE), &[kb(kb_name)], 5)
            .unwrap();
        assert_eq!(ids(&hits), ids(&exact), "doc{n}");
    }
}
