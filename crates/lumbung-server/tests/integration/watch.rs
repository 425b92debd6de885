use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;

use crate::harness;

const KB: &str = "kiln-ops";

/// How long a change may take to reach Search before the test fails; the service aims at a
/// second or two (settle time plus one document's embedding).
const PATIENCE: Duration = Duration::from_secs(60);

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    harness::eventually(what, PATIENCE, check).await
}

/// Document paths of the passages Search returns for `query` in the test's knowledge base,
/// with their texts.
async fn hits(addr: SocketAddr, query: &str) -> Vec<(String, String)> {
    let mut client = KnowledgeServiceClient::new(harness::connect(addr).await);
    let response = client
        .search(v1::SearchRequest {
            query: query.to_string(),
            knowledge_bases: vec![KB.to_string()],
            top_k: 10,
            ..Default::default()
        })
        .await;
    match response {
        Ok(response) => response
            .into_inner()
            .passages
            .into_iter()
            .map(|p| (p.citation.unwrap().document_path, p.text))
            .collect(),
        // The knowledge base does not exist until its folder is seen.
        Err(status) if status.code() == tonic::Code::NotFound => Vec::new(),
        Err(status) => panic!("{status:?}"),
    }
}

async fn paths(addr: SocketAddr, query: &str) -> Vec<String> {
    let mut paths: Vec<String> = hits(addr, query).await.into_iter().map(|h| h.0).collect();
    paths.sort();
    paths.dedup();
    paths
}

async fn kb_status(addr: SocketAddr) -> v1::KnowledgeBaseStatus {
    let mut admin = AdminServiceClient::new(harness::connect(addr).await);
    let response = admin
        .get_ingest_status(v1::GetIngestStatusRequest {
            knowledge_base: KB.to_string(),
            include_documents: true,
        })
        .await
        .unwrap()
        .into_inner();
    response.knowledge_bases.into_iter().next().unwrap()
}

/// Writes through a temporary name and renames, as editors and copy tools do, so that no
/// half-written file is ever seen under the final name.
fn save(path: &Path, text: &str) {
    let partial = path.with_extension("part");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// Content owners create a knowledge base, then add, edit, rename, move, copy and delete files
/// while the service runs; Search follows each change without anyone running a command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_changes_reach_search_without_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let config = harness::test_config(dir.path());
    std::fs::create_dir_all(&config.ingest_root).unwrap();
    let kb_dir = config.ingest_root.join(KB);
    let server = harness::TestServer::start(config).await;
    let watcher = server.app.watch().unwrap();
    let addr = server.addr;
    let query = "kiln K-4 burner purge before ignition";

    // A new knowledge base folder with one document.
    std::fs::create_dir_all(&kb_dir).unwrap();
    save(
        &kb_dir.join("kiln.md"),
        "# Kiln K-4\n\nPurge the kiln K-4 burner for 90 seconds before ignition.\n",
    );
    eventually("a new file in a new folder", || async {
        paths(addr, query).await == ["kiln.md"]
    })
    .await;

    // An edit replaces the old text; the old version answers until then, never both.
    save(
        &kb_dir.join("kiln.md"),
        "# Kiln K-4\n\nPurge the kiln K-4 burner for 120 seconds before ignition.\n",
    );
    eventually("the edited text", || async {
        let hits = hits(addr, query).await;
        assert_eq!(hits.len(), 1, "one version at a time: {hits:?}");
        hits[0].1.contains("120 seconds")
    })
    .await;

    // A rename, then a move into a sub-folder.
    std::fs::rename(kb_dir.join("kiln.md"), kb_dir.join("kiln-k4.md")).unwrap();
    eventually("the renamed file", || async {
        paths(addr, query).await == ["kiln-k4.md"]
    })
    .await;
    std::fs::create_dir_all(kb_dir.join("archive")).unwrap();
    std::fs::rename(kb_dir.join("kiln-k4.md"), kb_dir.join("archive/kiln-k4.md")).unwrap();
    eventually("the moved file", || async {
        paths(addr, query).await == ["archive/kiln-k4.md"]
    })
    .await;

    // The same content in two files stays two documents; lock files are not documents.
    std::fs::copy(
        kb_dir.join("archive/kiln-k4.md"),
        kb_dir.join("kiln-copy.md"),
    )
    .unwrap();
    std::fs::write(kb_dir.join("~$kiln.docx"), b"lock").unwrap();
    eventually("the copy", || async {
        paths(addr, query).await == ["archive/kiln-k4.md", "kiln-copy.md"]
    })
    .await;

    // Deleting removes the document from both indexes.
    std::fs::remove_file(kb_dir.join("kiln-copy.md")).unwrap();
    std::fs::remove_file(kb_dir.join("archive/kiln-k4.md")).unwrap();
    eventually("the deletions", || async {
        paths(addr, query).await.is_empty()
    })
    .await;
    for retriever in [v1::Retriever::Bm25, v1::Retriever::Dense] {
        let mut client = KnowledgeServiceClient::new(harness::connect(addr).await);
        let passages = client
            .search(v1::SearchRequest {
                query: query.to_string(),
                knowledge_bases: vec![KB.to_string()],
                top_k: 10,
                retriever: retriever.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .passages;
        assert!(
            passages.is_empty(),
            "{retriever:?} still finds {passages:?}"
        );
    }
    // The catalog forgets a removed document after both indexes have (so that a crash between
    // them redoes the removal): the status may follow search by a moment.
    eventually("the status without the documents", || async {
        let status = kb_status(addr).await;
        status.documents.is_empty()
            && (status.documents_queued, status.documents_indexing) == (0, 0)
    })
    .await;
    drop(watcher);
    server.stop().await;
}

/// A new version that cannot be read (here a PDF cut short by a failed upload) is recorded as
/// failed, and the previous version keeps answering instead of vanishing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_new_version_keeps_the_old_one_answering() {
    let dir = tempfile::tempdir().unwrap();
    let config = harness::test_config(dir.path());
    let kb_dir = config.ingest_root.join(KB);
    std::fs::create_dir_all(&kb_dir).unwrap();
    let pdf = harness::repo_root().join("ingest/production-data/downtime-report-2026-10.pdf");
    std::fs::copy(&pdf, kb_dir.join("downtime.pdf")).unwrap();
    let server = harness::TestServer::start(config).await;
    let watcher = server.app.watch().unwrap();
    let addr = server.addr;
    let query = "downtime report October";
    eventually("the first version", || async {
        paths(addr, query).await == ["downtime.pdf"]
    })
    .await;

    std::fs::write(
        kb_dir.join("downtime.pdf"),
        b"%PDF-1.7\n1 0 obj << /Type /Catalog",
    )
    .unwrap();
    // Failed documents are read again by every sync of their folder: wait for a status taken
    // between two of them.
    eventually("the failed new version", || async {
        let status = kb_status(addr).await;
        status.documents_failed == 1
            && status
                .documents
                .iter()
                .all(|doc| doc.state() == v1::DocumentState::Failed)
    })
    .await;
    let status = kb_status(addr).await;
    let [doc] = status.documents.as_slice() else {
        panic!("{status:?}")
    };
    assert_eq!(doc.state(), v1::DocumentState::Failed);
    assert!(!doc.error.is_empty());
    assert!(
        doc.chunks > 0,
        "the previous version's chunks are still served"
    );
    assert_eq!(paths(addr, query).await, ["downtime.pdf"]);
    drop(watcher);
    server.stop().await;
}
