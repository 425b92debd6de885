//! The cluster directory: published knowledge bases and the ingest lease.

use std::time::Duration;

use lumbung_qdrant::{ClusterDirectory, Connection, LeaseHolder};

use crate::{config, stand_in};

#[test]
fn published_knowledge_bases_replace_the_previous_ones() {
    let (_dir, stand_in) = stand_in(None);
    let config = config(&stand_in);
    let connection = Connection::new(&config).unwrap();
    let directory = ClusterDirectory::open(&connection, &config, "directory").unwrap();
    assert!(directory.knowledge_bases().unwrap().is_empty());
    let entries: Vec<(String, String)> = (0..300)
        .map(|n| (format!("kb-{n:03}"), format!("{{\"n\":{n}}}")))
        .collect();
    directory.publish(&entries).unwrap();
    let mut read = directory.knowledge_bases().unwrap();
    read.sort();
    assert_eq!(read, entries, "more than one page of them");

    let fewer = vec![
        ("kb-001".to_string(), "{\"changed\":true}".to_string()),
        ("new".to_string(), "{}".to_string()),
    ];
    directory.publish(&fewer).unwrap();
    let mut read = directory.knowledge_bases().unwrap();
    read.sort();
    assert_eq!(read, fewer);
    directory.publish(&[]).unwrap();
    assert!(directory.knowledge_bases().unwrap().is_empty());
}

#[test]
fn one_node_holds_the_ingest_lease_until_it_expires_or_is_released() {
    let (_dir, stand_in) = stand_in(None);
    let config = config(&stand_in);
    let connection = Connection::new(&config).unwrap();
    let first = ClusterDirectory::open(&connection, &config, "directory").unwrap();
    let second = ClusterDirectory::open(&connection, &config, "directory").unwrap();
    let ttl = Duration::from_millis(600);

    first.claim_ingest_lease("node-a", ttl).unwrap().unwrap();
    let refused: LeaseHolder = second
        .claim_ingest_lease("node-b", ttl)
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.holder, "node-a");
    // Renewing keeps it; the refused claim did not overwrite it.
    std::thread::sleep(Duration::from_millis(300));
    first.claim_ingest_lease("node-a", ttl).unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        second.claim_ingest_lease("node-b", ttl).unwrap().is_err(),
        "renewed"
    );

    // Not renewed: it expires and the other node takes it.
    std::thread::sleep(Duration::from_millis(700));
    second.claim_ingest_lease("node-b", ttl).unwrap().unwrap();
    assert_eq!(
        first
            .claim_ingest_lease("node-a", ttl)
            .unwrap()
            .unwrap_err()
            .holder,
        "node-b"
    );
    // Released by its holder only.
    first.release_ingest_lease("node-a").unwrap();
    assert!(first.claim_ingest_lease("node-a", ttl).unwrap().is_err());
    second.release_ingest_lease("node-b").unwrap();
    first.claim_ingest_lease("node-a", ttl).unwrap().unwrap();
}
