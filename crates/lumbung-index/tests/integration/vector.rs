use std::sync::Arc;

use lumbung_core::{ChunkId, Language, VectorIndexConfig};
use lumbung_index::{EdgeVectorStore, Error, VectorPoint, VectorStore};

use crate::{Doc, kb, path};

const DIM: usize = 8;

fn open(dir: &tempfile::TempDir) -> EdgeVectorStore {
    EdgeVectorStore::open(dir.path(), DIM, &VectorIndexConfig::default()).unwrap()
}

/// The unit vector along `axis`, tilted towards the next axis by `tilt`.
fn axis(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[axis % DIM] = 1.0;
    v[(axis + 1) % DIM] = tilt;
    v
}

fn point(id: ChunkId, vector: Vec<f32>) -> VectorPoint {
    VectorPoint {
        id,
        language: Language::Unknown,
        vector,
    }
}

fn points(doc: &Doc, vectors: Vec<Vec<f32>>) -> Vec<VectorPoint> {
    vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| point(doc.id(i as u32), v))
        .collect()
}

fn ids(hits: &[(ChunkId, f32)]) -> Vec<ChunkId> {
    hits.iter().map(|(id, _)| *id).collect()
}

fn sorted(mut ids: Vec<ChunkId>) -> Vec<ChunkId> {
    ids.sort();
    ids
}

#[test]
fn nearest_neighbour_comes_first_with_cosine_scores() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let doc = Doc::new("it", "a.md", "v1");
    let vectors = (0..DIM).map(|i| axis(i, 0.0)).collect();
    store
        .replace_document(&doc.kb, &doc.path, &doc.hash, &points(&doc, vectors))
        .unwrap();

    // Scaled by 5: cosine only looks at the direction.
    let query: Vec<f32> = axis(3, 0.5).iter().map(|x| x * 5.0).collect();
    let hits = store
        .search(&query, std::slice::from_ref(&doc.kb), 2)
        .unwrap();
    assert_eq!(ids(&hits), [doc.id(3), doc.id(4)]);
    let norm = (1.0f32 + 0.25).sqrt();
    assert!((hits[0].1 - 1.0 / norm).abs() < 1e-4, "{hits:?}");
    assert!((hits[1].1 - 0.5 / norm).abs() < 1e-4, "{hits:?}");
    assert_eq!(
        store
            .search(&query, std::slice::from_ref(&doc.kb), 100)
            .unwrap()
            .len(),
        DIM
    );
}

#[test]
fn kb_filter_is_applied_inside_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = Doc::new("a", "far.md", "v1");
    let b = Doc::new("b", "near.md", "v1");
    store
        .replace_document(
            &a.kb,
            &a.path,
            &a.hash,
            &points(&a, vec![axis(7, 1.0), axis(5, 0.0)]),
        )
        .unwrap();
    // kb "b" holds exact matches of the query: a top-k cut before filtering would drop "a".
    let near: Vec<_> = (0..10).map(|i| axis(0, i as f32 * 0.01)).collect();
    store
        .replace_document(&b.kb, &b.path, &b.hash, &points(&b, near))
        .unwrap();

    let query = axis(0, 0.0);
    let only_a = store
        .search(&query, std::slice::from_ref(&a.kb), 1)
        .unwrap();
    assert_eq!(ids(&only_a), [a.id(0)]);
    let only_a = store
        .search(&query, std::slice::from_ref(&a.kb), 100)
        .unwrap();
    assert_eq!(sorted(ids(&only_a)), sorted(vec![a.id(0), a.id(1)]));

    let both = store
        .search(&query, &[a.kb.clone(), b.kb.clone()], 100)
        .unwrap();
    assert_eq!(both.len(), 12);
    assert_eq!(both[0].0, b.id(0));
    assert!(
        both.windows(2).all(|w| w[0].1 >= w[1].1),
        "best first: {both:?}"
    );

    assert!(store.search(&query, &[], 10).unwrap().is_empty());
    assert!(
        store
            .search(&query, &[kb("nobody")], 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search(&query, std::slice::from_ref(&a.kb), 0)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_scope_of_every_knowledge_base_never_returns_one_written_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // More knowledge bases than are searched one by one, so the scope is searched at once.
    let docs: Vec<Doc> = (0..40)
        .map(|i| Doc::new(&format!("kb-{i:02}"), "a.md", "v1"))
        .collect();
    for (i, doc) in docs.iter().enumerate() {
        let vector = axis(i % DIM, 0.1 + i as f32 * 0.02);
        store
            .replace_document(&doc.kb, &doc.path, &doc.hash, &points(doc, vec![vector]))
            .unwrap();
    }
    let scope: Vec<_> = docs.iter().map(|doc| doc.kb.clone()).collect();
    let query = axis(0, 0.0);
    let exact: Vec<ChunkId> = {
        let mut scored: Vec<(ChunkId, f32)> = docs
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let v = axis(i % DIM, 0.1 + i as f32 * 0.02);
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                (doc.id(0), v[0] / norm)
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.into_iter().take(5).map(|(id, _)| id).collect()
    };
    assert_eq!(ids(&store.search(&query, &scope, 5).unwrap()), exact);

    // A knowledge base outside the scope gets the best match.
    let late = Doc::new("late", "a.md", "v1");
    store
        .replace_document(
            &late.kb,
            &late.path,
            &late.hash,
            &points(&late, vec![axis(0, 0.0)]),
        )
        .unwrap();
    assert_eq!(ids(&store.search(&query, &scope, 5).unwrap()), exact);
    let mut everything = scope.clone();
    everything.push(late.kb.clone());
    let hits = store.search(&query, &everything, 5).unwrap();
    assert_eq!(hits[0].0, late.id(0));
    assert_eq!(ids(&hits[1..]), exact[..4]);
    let by_language = store
        .search_language(&query, &scope, Language::Unknown, 5)
        .unwrap();
    assert_eq!(ids(&by_language), exact);
    assert!(
        store
            .search_language(&query, &everything, Language::En, 5)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn replace_leaves_only_the_new_version_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let v1 = Doc::new("it", "guide.md", "v1");
    let v2 = Doc::new("it", "guide.md", "v2");
    let other = Doc::new("it", "other.md", "v1");
    store
        .replace_document(
            &v1.kb,
            &v1.path,
            &v1.hash,
            &points(&v1, vec![axis(0, 0.0), axis(1, 0.0), axis(2, 0.0)]),
        )
        .unwrap();
    store
        .replace_document(
            &other.kb,
            &other.path,
            &other.hash,
            &points(&other, vec![axis(7, 0.0)]),
        )
        .unwrap();
    assert_eq!(store.count(&v1.kb, Some(&v1.path)).unwrap(), 3);

    let new_points = points(&v2, vec![axis(0, 0.3), axis(4, 0.0)]);
    store
        .replace_document(&v2.kb, &v2.path, &v2.hash, &new_points)
        .unwrap();
    assert_eq!(store.count(&v2.kb, Some(&v2.path)).unwrap(), 2);
    assert_eq!(store.count(&v2.kb, None).unwrap(), 3);
    let all = store
        .search(&axis(0, 0.0), std::slice::from_ref(&v2.kb), 100)
        .unwrap();
    assert_eq!(
        sorted(ids(&all)),
        sorted(vec![v2.id(0), v2.id(1), other.id(0)])
    );

    // A re-run after a crash writes the same ids again: nothing is duplicated or lost.
    store
        .replace_document(&v2.kb, &v2.path, &v2.hash, &new_points)
        .unwrap();
    assert_eq!(store.count(&v2.kb, Some(&v2.path)).unwrap(), 2);

    // An empty new version removes the document's old points.
    let v3 = Doc::new("it", "guide.md", "v3");
    store
        .replace_document(&v3.kb, &v3.path, &v3.hash, &[])
        .unwrap();
    assert_eq!(store.count(&v3.kb, Some(&v3.path)).unwrap(), 0);
    assert_eq!(store.count(&v3.kb, None).unwrap(), 1);
}

#[test]
fn delete_removes_only_that_document() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let gone = Doc::new("it", "x/gone.md", "v1");
    let kept = Doc::new("it", "kept.md", "v1");
    let same_path_other_kb = Doc::new("hr", "x/gone.md", "v1");
    for doc in [&gone, &kept, &same_path_other_kb] {
        store
            .replace_document(
                &doc.kb,
                &doc.path,
                &doc.hash,
                &points(doc, vec![axis(1, 0.0), axis(2, 0.0)]),
            )
            .unwrap();
    }
    store.delete_document(&gone.kb, &gone.path).unwrap();

    assert_eq!(store.count(&gone.kb, Some(&gone.path)).unwrap(), 0);
    assert_eq!(store.count(&gone.kb, None).unwrap(), 2);
    assert_eq!(
        store
            .count(&same_path_other_kb.kb, Some(&same_path_other_kb.path))
            .unwrap(),
        2
    );
    let hits = store
        .search(&axis(1, 0.0), std::slice::from_ref(&gone.kb), 10)
        .unwrap();
    assert_eq!(sorted(ids(&hits)), sorted(vec![kept.id(0), kept.id(1)]));
    // Deleting what is not there is not an error.
    store.delete_document(&gone.kb, &path("never.md")).unwrap();
}

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
    // Stored vectors come back in the order asked, normalised by cosine distance; unknown ids
    // (here the deleted document's) are skipped.
    let stored = store
        .get_vectors(&[doc.id(1), gone.id(0), doc.id(0)])
        .unwrap();
    assert_eq!(
        stored.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [doc.id(1), doc.id(0)]
    );
    assert_eq!(stored[0].1, axis(3, 0.0));
    assert_eq!(stored[1].1, axis(2, 0.0));
    // The payload indexes are created again on open without disturbing the data.
    drop(store);
    let store = open(&dir);
    assert_eq!(store.count(&doc.kb, Some(&doc.path)).unwrap(), 2);
}

#[test]
fn dimension_mismatches_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let doc = Doc::new("it", "a.md", "v1");
    {
        let store = open(&dir);
        assert_eq!(store.dimension(), DIM);
        let err = store
            .replace_document(
                &doc.kb,
                &doc.path,
                &doc.hash,
                &[point(doc.id(0), vec![1.0; DIM + 1])],
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::DimensionMismatch { expected: DIM, actual } if actual == DIM + 1),
            "{err}"
        );
        let err = store
            .search(&[1.0; 3], std::slice::from_ref(&doc.kb), 1)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::DimensionMismatch {
                    expected: DIM,
                    actual: 3
                }
            ),
            "{err}"
        );
        let mut nan = axis(0, 0.0);
        nan[1] = f32::NAN;
        let err = store
            .replace_document(&doc.kb, &doc.path, &doc.hash, &[point(doc.id(0), nan)])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert_eq!(
            store.count(&doc.kb, None).unwrap(),
            0,
            "rejected points are not written"
        );
    }
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

#[test]
fn concurrent_writers_readers_and_flushes_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn VectorStore> = Arc::new(open(&dir));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for n in 0..10 {
                    let doc = Doc::new("it", &format!("t{t}/doc{n}.md"), "v1");
                    store
                        .replace_document(
                            &doc.kb,
                            &doc.path,
                            &doc.hash,
                            &points(&doc, vec![axis(t, 0.1), axis(n, 0.2)]),
                        )
                        .unwrap();
                    store
                        .search(&axis(n, 0.0), std::slice::from_ref(&doc.kb), 5)
                        .unwrap();
                    if n % 3 == 0 {
                        store.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(store.count(&kb("it"), None).unwrap(), 80);
}

#[test]
fn each_language_has_its_mean_and_can_be_searched_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let doc = Doc::new("safety", "mixed.md", "v1");
    let language_of = [Language::Zh, Language::Zh, Language::En];
    let vectors = [axis(0, 0.0), axis(2, 0.0), axis(4, 0.0)];
    let points: Vec<VectorPoint> = vectors
        .iter()
        .zip(language_of)
        .enumerate()
        .map(|(i, (vector, language))| VectorPoint {
            id: doc.id(i as u32),
            language,
            vector: vector.clone(),
        })
        .collect();
    store
        .replace_document(&doc.kb, &doc.path, &doc.hash, &points)
        .unwrap();

    let mut centroids = store.language_centroids(100).unwrap();
    centroids.sort_by_key(|(language, _)| language.code());
    let languages: Vec<Language> = centroids.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        languages,
        [Language::En, Language::Zh],
        "no Indonesian point, no mean"
    );
    let zh = &centroids[1].1;
    assert!(
        (zh[0] - 0.5).abs() < 1e-6 && (zh[2] - 0.5).abs() < 1e-6,
        "{zh:?}"
    );
    assert_eq!(centroids[0].1, axis(4, 0.0));
    assert!(store.language_centroids(0).unwrap().is_empty());

    // The English point is the nearest, but a search among Chinese points does not see it.
    let query = axis(4, 0.1);
    let hits = store
        .search_language(&query, std::slice::from_ref(&doc.kb), Language::Zh, 10)
        .unwrap();
    assert_eq!(sorted(ids(&hits)), sorted(vec![doc.id(0), doc.id(1)]));
    let all = store
        .search(&query, std::slice::from_ref(&doc.kb), 1)
        .unwrap();
    assert_eq!(ids(&all), [doc.id(2)]);
    assert!(
        store
            .search_language(&query, &[kb("other")], Language::Zh, 10)
            .unwrap()
            .is_empty()
    );
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
