use std::sync::Arc;

use lumbung_server::App;

use crate::harness;

/// A restart must not re-embed what is already indexed, and a file deleted while the service
/// was down must be gone from both indexes after the next sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reembeds_nothing_and_removes_deleted_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = harness::test_config(dir.path());
    let kb_dir = config.ingest_root.join("it-helpdesk");
    harness::copy_dir(&harness::repo_root().join("ingest/it-helpdesk"), &kb_dir);
    let files = harness::documents_on_disk_in(&kb_dir);

    let open = |config| async move {
        Arc::new(
            tokio::task::spawn_blocking(move || App::open(config))
                .await
                .unwrap()
                .unwrap(),
        )
    };
    let first = open(config.clone()).await;
    let report = first.sync_all().await.unwrap();
    assert_eq!((report.indexed, report.unchanged), (files, 0), "{report:?}");
    drop(first);

    std::fs::remove_file(kb_dir.join("vpn-access.md")).unwrap();
    let second = open(config).await;
    let report = second.sync_all().await.unwrap();
    assert_eq!(
        (report.indexed, report.unchanged, report.removed),
        (0, files - 1, 1),
        "{report:?}"
    );

    let request = lumbung_search::SearchRequest {
        query: "GlobalProtect certificate expired ERR-VPN-809".to_string(),
        kbs: second.resolve_kbs(&[]).unwrap(),
        top_k: 50,
        retriever: lumbung_search::Retriever::Hybrid,
    };
    let passages = second.engine.search(&request).await.unwrap();
    assert!(!passages.is_empty());
    assert!(
        passages
            .iter()
            .all(|p| p.chunk.citation.document_path.as_str() != "vpn-access.md")
    );
}
