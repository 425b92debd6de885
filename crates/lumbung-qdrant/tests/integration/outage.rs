//! Qdrant going away and coming back, as a client sees it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lumbung_core::{VectorIndexConfig, VectorStoreConfig};
use lumbung_index::contract::{DIM, Doc, axis, kb, point};
use lumbung_index::{Error, VectorStore};
use lumbung_qdrant::{Connection, QdrantVectorStore};

use crate::{config, open, stand_in};

fn write(store: &dyn VectorStore, n: usize) -> lumbung_index::Result<()> {
    let doc = Doc::new("it", &format!("doc{n}.md"), "v1");
    let points = vec![
        point(doc.id(0), axis(n, 0.1)),
        point(doc.id(1), axis(n + 1, 0.2)),
    ];
    store.replace_document(&doc.kb, &doc.path, &doc.hash, &points)
}

#[test]
fn writes_wait_out_an_outage_and_lose_or_double_nothing() {
    let (_dir, mut stand_in) = stand_in(None);
    let store = Arc::new(open(
        &VectorStoreConfig {
            write_retry_seconds: 60,
            ..config(&stand_in)
        },
        "outage",
    ));
    let documents = 60;
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for n in 0..documents {
                write(store.as_ref(), n).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    // Down while the writer is in the middle of its documents, for longer than one backoff.
    while store.count(&kb("it"), None).unwrap() < 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    stand_in.stop();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !writer.is_finished(),
        "the writer waits while Qdrant is down"
    );
    stand_in.resume().unwrap();
    writer.join().unwrap();
    assert_eq!(store.count(&kb("it"), None).unwrap(), documents as u64 * 2);
    for n in 0..documents {
        let doc = Doc::new("it", &format!("doc{n}.md"), "v1");
        assert_eq!(store.count(&doc.kb, Some(&doc.path)).unwrap(), 2, "doc{n}");
    }
}

#[test]
fn a_search_while_qdrant_is_down_fails_as_unavailable_within_its_budget() {
    let (_dir, mut stand_in) = stand_in(None);
    let store = open(
        &VectorStoreConfig {
            search_retry_ms: 300,
            write_retry_seconds: 1,
            ..config(&stand_in)
        },
        "outage",
    );
    write(&store, 0).unwrap();
    stand_in.stop();
    let started = Instant::now();
    let err = store.search(&axis(0, 0.0), &[kb("it")], 5).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // A write gives up after its own budget, with the same error.
    let err = write(&store, 1).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");

    stand_in.resume().unwrap();
    let hits = store.search(&axis(0, 0.0), &[kb("it")], 5).unwrap();
    assert_eq!(hits.len(), 2);
}

#[test]
fn a_store_opened_before_qdrant_is_up_waits_for_it() {
    let (_dir, mut stand_in) = stand_in(None);
    stand_in.stop();
    let config = VectorStoreConfig {
        write_retry_seconds: 60,
        ..config(&stand_in)
    };
    let opening = std::thread::spawn(move || {
        let connection = Connection::new(&config)?;
        QdrantVectorStore::open(
            &connection,
            &config,
            "late",
            DIM,
            &VectorIndexConfig::default(),
        )
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(!opening.is_finished());
    stand_in.resume().unwrap();
    let store = opening.join().unwrap().unwrap();
    write(&store, 0).unwrap();
    assert_eq!(store.count(&kb("it"), None).unwrap(), 2);
}
