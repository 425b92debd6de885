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
        .maintain_in_background(0, std::time::Duration::from_millis(20))
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
                graphs_seen |= store.index_info().unwrap().indexed_points > 0;
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
    let info = store.index_info().unwrap();
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

/// The files in a shard's write-ahead log folder.
fn wal_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn an_emptied_log_keeps_later_updates_and_deletes_of_existing_points() {
    let dir = tempfile::tempdir().unwrap();
    let doc = Doc::new("safety", "ppe.md", "v1");
    let gone = Doc::new("safety", "old.md", "v1");
    let store = open(&dir);
    store
        .upsert_document(
            &doc.kb,
            &doc.path,
            &doc.hash,
            &points(&doc, vec![axis(2, 0.0), axis(3, 0.0)]),
        )
        .unwrap();
    store
        .upsert_document(
            &gone.kb,
            &gone.path,
            &gone.hash,
            &points(&gone, vec![axis(4, 0.0)]),
        )
        .unwrap();
    store.flush().unwrap();
    let before = store.disk_usage();
    store.empty_wal().unwrap();
    let files = wal_files(dir.path());
    assert!(
        files.iter().any(|name| name.starts_with("closed-")),
        "the log numbers on from a closed segment: {files:?}"
    );
    assert!(store.disk_usage().wal_bytes < before.wal_bytes.max(64 << 10));

    // Points written before the log was emptied are updated and deleted by later writes: a
    // log numbered from 0 again would have them ignored as older than the points.
    for round in 1..=3u8 {
        let tilt = f32::from(round) / 10.0;
        store
            .upsert_document(
                &doc.kb,
                &doc.path,
                &doc.hash,
                &points(&doc, vec![axis(5, tilt), axis(6, tilt)]),
            )
            .unwrap();
        store.empty_wal().unwrap();
    }
    store.delete_document(&gone.kb, &gone.path).unwrap();
    let expected = |store: &EdgeVectorStore| {
        let stored = store
            .get_vectors(&[doc.id(0), doc.id(1), gone.id(0)])
            .unwrap();
        let tilted = |axis_: usize| {
            let v = axis(axis_, 0.3);
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
        };
        assert_eq!(
            stored.len(),
            2,
            "the deleted document stays deleted: {stored:?}"
        );
        for ((id, vector), (want_id, want)) in stored
            .iter()
            .zip([(doc.id(0), tilted(5)), (doc.id(1), tilted(6))])
        {
            assert_eq!(*id, want_id);
            assert!(
                vector.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5),
                "{id}: {vector:?}, not the last round's {want:?}"
            );
        }
    };
    expected(&store);
    store.flush().unwrap();
    drop(store);
    let store = open(&dir);
    expected(&store);
    assert_eq!(store.count(&doc.kb, None).unwrap(), 2);
}

#[test]
fn the_log_is_emptied_once_large_and_the_points_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let docs: Vec<Doc> = (0..200)
        .map(|n| Doc::new("production", &format!("report-{n}.md"), "v1"))
        .collect();
    for doc in &docs {
        let vectors = (0..40).map(|i| axis(i, 0.01 * i as f32)).collect();
        store
            .upsert_document(&doc.kb, &doc.path, &doc.hash, &points(doc, vectors))
            .unwrap();
    }
    store.flush().unwrap();
    let before = store.disk_usage();
    assert!(before.wal_bytes > 1 << 20, "{before:?}");
    assert!(store.empty_wal_if_large().unwrap());
    let after = store.disk_usage();
    assert!(after.wal_bytes < 64 << 10, "{before:?} -> {after:?}");
    assert!(
        !store.empty_wal_if_large().unwrap(),
        "an emptied log is small"
    );
    assert_eq!(store.count(&docs[0].kb, None).unwrap(), 200 * 40);
}

/// Where the child of [`a_kill_while_the_log_is_emptied_loses_nothing_flushed`] writes.
const CRASH_DIR_ENV: &str = "LUMBUNG_TEST_VECTOR_CRASH_DIR";
/// Documents the crash test rewrites every round, of [`CRASH_POINTS`] points each.
const CRASH_DOCS: usize = 4;
const CRASH_POINTS: usize = 3;

fn crash_doc(n: usize) -> Doc {
    Doc::new("helpdesk", &format!("faq-{n}.md"), "v1")
}

/// A document written in round `round` only, deleted in the next.
fn crash_round_doc(round: u64) -> Doc {
    Doc::new("helpdesk", &format!("round-{round}.md"), "v1")
}

/// The round a crash-test point's vector was written in: the ratio of its two non-zero
/// entries (cosine vectors are stored normalised), rounded.
fn crash_round_of(vector: &[f32], point: usize) -> u64 {
    let tilt = vector[(point + 1) % DIM] / vector[point % DIM];
    (tilt * 1000.0).round() as u64
}

fn crash_rounds_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("flushed-round")
}

fn crash_flushed_round(dir: &std::path::Path) -> u64 {
    std::fs::read_to_string(crash_rounds_file(dir))
        .map(|text| text.trim().parse().unwrap())
        .unwrap_or(0)
}

/// The child process of [`a_kill_while_the_log_is_emptied_loses_nothing_flushed`], run by it
/// alone (`--ignored --exact`): rewrites every point of the crash documents round after round
/// with vectors that name the round, deletes the previous round's own document, flushes and
/// records the round, and empties the log every other round, until it is killed.
#[test]
#[ignore = "the child process of a_kill_while_the_log_is_emptied_loses_nothing_flushed"]
fn vector_crash_writer() {
    let dir = std::path::PathBuf::from(std::env::var(CRASH_DIR_ENV).unwrap());
    let store =
        EdgeVectorStore::open(&dir.join("store"), DIM, &VectorIndexConfig::default()).unwrap();
    let first = crash_flushed_round(&dir) + 1;
    for round in first..first + 100_000 {
        for n in 0..CRASH_DOCS {
            let doc = crash_doc(n);
            let vectors = (0..CRASH_POINTS)
                .map(|point| axis(point, round as f32 / 1000.0))
                .collect();
            store
                .upsert_document(&doc.kb, &doc.path, &doc.hash, &points(&doc, vectors))
                .unwrap();
        }
        let previous = crash_round_doc(round - 1);
        store.delete_document(&previous.kb, &previous.path).unwrap();
        let own = crash_round_doc(round);
        store
            .upsert_document(
                &own.kb,
                &own.path,
                &own.hash,
                &points(&own, vec![axis(7, 0.0)]),
            )
            .unwrap();
        store.flush().unwrap();
        let staged = dir.join("flushed-round.tmp");
        std::fs::write(&staged, round.to_string()).unwrap();
        std::fs::File::open(&staged).unwrap().sync_all().unwrap();
        std::fs::rename(&staged, crash_rounds_file(&dir)).unwrap();
        if round % 2 == 0 {
            store.empty_wal().unwrap();
        }
    }
}

/// `kill -9` at random moments of a process that rewrites points and empties the log: after
/// every kill the store holds each point as of the last flushed round or the one after it
/// (nothing flushed lost), no document of an earlier round that was deleted (no delete
/// dropped, none applied twice), and the next process's rewrites of existing points take
/// effect (the log numbers on across the emptying).
#[test]
fn a_kill_while_the_log_is_emptied_loses_nothing_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut last_round = 0;
    for kill in 0..6 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "vector::vector_crash_writer",
                "--nocapture",
            ])
            .env(CRASH_DIR_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the child's first flushed round, then kill it a random while later.
        let started = std::time::Instant::now();
        while crash_flushed_round(dir.path()) <= last_round {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "the writer flushed no round"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the writer stopped: {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(std::time::Duration::from_millis(20 + (seed >> 33) % 400));
        child.kill().unwrap();
        child.wait().unwrap();

        let flushed = crash_flushed_round(dir.path());
        let store = EdgeVectorStore::open(
            &dir.path().join("store"),
            DIM,
            &VectorIndexConfig::default(),
        )
        .unwrap();
        for n in 0..CRASH_DOCS {
            let doc = crash_doc(n);
            let ids: Vec<ChunkId> = (0..CRASH_POINTS as u32).map(|i| doc.id(i)).collect();
            let stored = store.get_vectors(&ids).unwrap();
            assert_eq!(
                stored.len(),
                CRASH_POINTS,
                "kill {kill}: points of {}",
                doc.path
            );
            for (point, (_, vector)) in stored.iter().enumerate() {
                let round = crash_round_of(vector, point);
                assert!(
                    (flushed..=flushed + 1).contains(&round),
                    "kill {kill}: {} point {point} is from round {round}, the last flushed is {flushed}",
                    doc.path
                );
            }
        }
        for round in 1..flushed {
            let old = crash_round_doc(round);
            assert_eq!(
                store.count(&old.kb, Some(&old.path)).unwrap(),
                0,
                "kill {kill}: round {round}'s document was deleted in round {}",
                round + 1
            );
        }
        let own = crash_round_doc(flushed);
        let next = crash_round_doc(flushed + 1);
        let kept = store.count(&own.kb, Some(&own.path)).unwrap()
            + store.count(&next.kb, Some(&next.path)).unwrap();
        assert!(kept <= 2, "kill {kill}: {kept} round documents");
        println!("kill {kill}: round {flushed} flushed");
        last_round = flushed;
    }
    assert!(last_round >= 6, "{last_round} rounds in six runs");
}
