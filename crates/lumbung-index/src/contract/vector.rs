//! The cases of [`vector_store_contract!`](crate::vector_store_contract).

use std::sync::Arc;

use lumbung_core::{ChunkId, KbGeneration, Language};

use super::{DIM, Doc, axis, cosine, ids, kb, kb_generation, path, point, points, sorted};
use crate::{Error, VectorPoint, VectorStore};

pub fn nearest_neighbour_comes_first_with_cosine_scores(store: Arc<dyn VectorStore>) {
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

pub fn kb_filter_is_applied_inside_the_search(store: Arc<dyn VectorStore>) {
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

pub fn a_scope_of_every_knowledge_base_never_returns_one_written_later(
    store: Arc<dyn VectorStore>,
) {
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

pub fn replace_leaves_only_the_new_version_and_is_idempotent(store: Arc<dyn VectorStore>) {
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

pub fn delete_removes_only_that_document(store: Arc<dyn VectorStore>) {
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

pub fn concurrent_writers_readers_and_flushes_share_one_store(store: Arc<dyn VectorStore>) {
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

pub fn each_language_has_its_mean_and_can_be_searched_alone(store: Arc<dyn VectorStore>) {
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

pub fn a_scope_of_a_few_knowledge_bases_holds_the_best_of_each(store: Arc<dyn VectorStore>) {
    // Knowledge bases of very different sizes: the best of a small one must not be crowded
    // out by a large one, and the merged list is the exact top of the union.
    let mut everything: Vec<(ChunkId, KbGeneration, Vec<f32>)> = Vec::new();
    for (k, size) in [(0, 40), (1, 3), (2, 1), (3, 12), (4, 0)] {
        let doc = Doc::new(&format!("kb{k}"), "a.md", "v1");
        let vectors: Vec<Vec<f32>> = (0..size)
            .map(|i| axis((i * 3 + k) % DIM, 0.05 * ((i + k) % 9) as f32))
            .collect();
        for (i, v) in vectors.iter().enumerate() {
            everything.push((doc.id(i as u32), doc.kb.clone(), v.clone()));
        }
        store
            .replace_document(&doc.kb, &doc.path, &doc.hash, &points(&doc, vectors))
            .unwrap();
    }
    let query = axis(2, 0.3);
    for scope in [
        vec![kb("kb1"), kb("kb2")],
        vec![kb("kb0"), kb("kb2"), kb("kb4")],
        vec![kb("kb0"), kb("kb1"), kb("kb2"), kb("kb3"), kb("kb4")],
    ] {
        let mut exact: Vec<(ChunkId, f32)> = everything
            .iter()
            .filter(|(_, kb, _)| scope.contains(kb))
            .map(|(id, _, v)| (*id, cosine(&query, v)))
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let hits = store.search(&query, &scope, 6).unwrap();
        assert_eq!(hits.len(), exact.len().min(6), "{scope:?}");
        for ((_, got), (_, want)) in hits.iter().zip(&exact) {
            assert!(
                (got - want).abs() < 1e-4,
                "{scope:?}: {hits:?} vs {exact:?}"
            );
        }
        let in_scope: Vec<ChunkId> = exact.iter().map(|(id, _)| *id).collect();
        assert!(
            ids(&hits).iter().all(|id| in_scope.contains(id)),
            "{scope:?}"
        );
    }
}

pub fn stored_vectors_come_back_in_the_order_asked(store: Arc<dyn VectorStore>) {
    let doc = Doc::new("safety", "ppe.md", "v1");
    let gone = Doc::new("safety", "old.md", "v1");
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
    // Normalised by cosine distance; unknown ids (here the deleted document's) are skipped.
    let stored = store
        .get_vectors(&[doc.id(1), gone.id(0), doc.id(0)])
        .unwrap();
    assert_eq!(
        ids(&stored.iter().map(|(id, _)| (*id, 0.0)).collect::<Vec<_>>()),
        [doc.id(1), doc.id(0)]
    );
    assert_eq!(stored[0].1, axis(3, 0.0));
    assert_eq!(stored[1].1, axis(2, 0.0));
    assert!(store.get_vectors(&[]).unwrap().is_empty());
}

pub fn invalid_vectors_are_refused_and_nothing_is_written(store: Arc<dyn VectorStore>) {
    let doc = Doc::new("it", "a.md", "v1");
    let err = store
        .replace_document(
            &doc.kb,
            &doc.path,
            &doc.hash,
            &[
                point(doc.id(0), axis(0, 0.0)),
                point(doc.id(1), vec![1.0; DIM + 1]),
            ],
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

pub fn generations_of_one_knowledge_base_are_apart(store: Arc<dyn VectorStore>) {
    let live = Doc::new("hr", "leave.md", "v1");
    let next = Doc::in_generation(kb_generation("hr", 2), "leave.md", "v1");
    store
        .replace_document(
            &live.kb,
            &live.path,
            &live.hash,
            &points(&live, vec![axis(0, 0.1)]),
        )
        .unwrap();
    store
        .replace_document(
            &next.kb,
            &next.path,
            &next.hash,
            &points(&next, vec![axis(0, 0.0), axis(1, 0.0)]),
        )
        .unwrap();
    store.flush().unwrap();
    assert_eq!(store.count(&live.kb, None).unwrap(), 1);
    assert_eq!(store.count(&next.kb, Some(&next.path)).unwrap(), 2);
    let query = axis(0, 0.0);
    let hits = store
        .search(&query, std::slice::from_ref(&live.kb), 10)
        .unwrap();
    assert_eq!(ids(&hits), [live.id(0)]);
    let hits = store
        .search(&query, std::slice::from_ref(&next.kb), 10)
        .unwrap();
    assert_eq!(ids(&hits), [next.id(0), next.id(1)]);

    // Same content hash in both: dropping other versions in one generation, or the whole
    // document, leaves the other generation's points.
    store
        .delete_other_versions(&next.kb, &next.path, &next.hash)
        .unwrap();
    store.delete_document(&live.kb, &live.path).unwrap();
    store.flush().unwrap();
    assert_eq!(store.count(&live.kb, None).unwrap(), 0);
    assert_eq!(store.count(&next.kb, None).unwrap(), 2);

    let other = Doc::new("hrx", "leave.md", "v1");
    store
        .replace_document(
            &other.kb,
            &other.path,
            &other.hash,
            &points(&other, vec![axis(2, 0.0)]),
        )
        .unwrap();
    store.delete_generation(&next.kb).unwrap();
    store.flush().unwrap();
    assert_eq!(store.count(&next.kb, None).unwrap(), 0);
    assert!(store.get_vectors(&[next.id(0)]).unwrap().is_empty());
    assert_eq!(store.count(&other.kb, None).unwrap(), 1);
}
