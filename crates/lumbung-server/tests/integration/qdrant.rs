//! The service on a Qdrant cluster (the stand-in Qdrant: Qdrant's gRPC API over Qdrant's
//! storage engine, in the process; no Qdrant server can be installed here): one ingest node
//! and two query nodes share it, switching `[vector_store]` (and the role) is the only change,
//! and an outage is waited out.

use std::time::Duration;

use lumbung_core::{Config, KbName, NodeRole, VectorStoreConfig, VectorStoreKind};
use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use lumbung_qdrant::stand_in::StandInQdrant;
use lumbung_server::App;
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::{self, SAMPLE_KBS, TestServer};

/// Questions of the sample evaluation set, the first `n`.
fn sample_questions(n: usize) -> Vec<String> {
    let text =
        std::fs::read_to_string(harness::repo_root().join("eval/samples/queries.jsonl")).unwrap();
    text.lines()
        .take(n)
        .map(|line| {
            let query: serde_json::Value = serde_json::from_str(line).unwrap();
            query["text"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn search(
    client: &mut KnowledgeServiceClient<Channel>,
    query: &str,
) -> Result<Vec<v1::Passage>, tonic::Status> {
    let request = v1::SearchRequest {
        query: query.to_string(),
        top_k: 3,
        ..Default::default()
    };
    Ok(client.search(request).await?.into_inner().passages)
}

fn ids(passages: &[v1::Passage]) -> Vec<String> {
    passages.iter().map(|p| p.chunk_id.clone()).collect()
}

/// A node of the cluster at `url`, on its own folders under `dir`.
fn node(dir: &std::path::Path, url: &str, role: NodeRole) -> Config {
    let mut config = harness::test_config(dir);
    config.server.role = role;
    config.vector_store = VectorStoreConfig {
        kind: VectorStoreKind::Qdrant,
        url: url.to_string(),
        api_key: "cluster-key".to_string(),
        search_retry_ms: 300,
        write_retry_seconds: 120,
        directory_refresh_ms: 200,
        ..VectorStoreConfig::default()
    };
    config
}

async fn verify(app: std::sync::Arc<App>) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        SAMPLE_KBS
            .iter()
            .flat_map(|kb| {
                let kb = KbName::new(*kb).unwrap();
                app.ingestor().unwrap().verify(&kb).unwrap()
            })
            .collect::<Vec<String>>()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_node_and_two_query_nodes_share_a_cluster_and_ride_out_an_outage() {
    let qdrant_dir = tempfile::tempdir().unwrap();
    let mut qdrant = StandInQdrant::start(qdrant_dir.path(), Some("cluster-key")).unwrap();
    let url = qdrant.url();

    // The ingest node: the folders, the catalog, the writes.
    let ingest_dir = tempfile::tempdir().unwrap();
    let config = node(ingest_dir.path(), &url, NodeRole::Ingest);
    for kb in SAMPLE_KBS {
        harness::copy_dir(
            &harness::repo_root().join("ingest").join(kb),
            &config.ingest_root.join(kb),
        );
    }
    let ingest_root = config.ingest_root.clone();
    let ingest = TestServer::start(config).await;
    let report = ingest.app.sync_all().await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    for local in ["data/vectors", "data/lexical"] {
        assert!(
            !ingest_dir.path().join(local).exists(),
            "{local}: nothing indexed on the node when Qdrant holds the data"
        );
    }
    assert_eq!(verify(ingest.app.clone()).await, Vec::<String>::new());

    // A second node that would write to the same cluster is refused.
    let second_dir = tempfile::tempdir().unwrap();
    let second = node(second_dir.path(), &url, NodeRole::All);
    let refused = tokio::task::spawn_blocking(move || App::open(second))
        .await
        .unwrap()
        .err()
        .expect("a second ingest node is refused");
    assert!(refused.to_string().contains("ingest lease"), "{refused}");

    // Two query nodes: no folders, no catalog, no local index.
    let mut query_nodes = Vec::new();
    let mut query_dirs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(node(dir.path(), &url, NodeRole::Query)).await;
        for local in [
            "ingest",
            "data/catalog.redb",
            "data/lexical",
            "data/vectors",
        ] {
            assert!(!dir.path().join(local).exists(), "{local} on a query node");
        }
        query_nodes.push(server);
        query_dirs.push(dir);
    }
    // They learn the knowledge bases, with the counts the ingest node published after its sync.
    let indexed_chunks: u64 = ingest
        .app
        .registry()
        .values()
        .map(|e| e.summary.chunks)
        .sum();
    for server in &query_nodes {
        let mut waited = 0;
        while server
            .app
            .registry()
            .values()
            .map(|e| e.summary.chunks)
            .sum::<u64>()
            != indexed_chunks
        {
            assert!(
                waited < 100,
                "the query node never saw the published knowledge bases"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
        }
    }

    // Both answer the sample questions with the passages the embedded engines give.
    let mut embedded = harness::knowledge().await;
    let mut clients = Vec::new();
    for server in &query_nodes {
        clients.push(KnowledgeServiceClient::new(
            harness::connect(server.addr).await,
        ));
    }
    for question in sample_questions(30) {
        let expected = ids(&search(&mut embedded, &question).await.unwrap());
        for client in &mut clients {
            let got = ids(&search(client, &question).await.unwrap());
            assert_eq!(got, expected, "{question}");
        }
    }
    let listed = clients[1]
        .list_knowledge_bases(v1::ListKnowledgeBasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut names: Vec<String> = listed
        .knowledge_bases
        .iter()
        .map(|kb| kb.name.clone())
        .collect();
    names.sort();
    let mut samples: Vec<String> = SAMPLE_KBS.iter().map(|kb| kb.to_string()).collect();
    samples.sort();
    assert_eq!(names, samples);

    // Each role serves its own API only.
    let status = AdminServiceClient::new(harness::connect(query_nodes[0].addr).await)
        .get_ingest_status(v1::GetIngestStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status}");
    let mut on_ingest = KnowledgeServiceClient::new(harness::connect(ingest.addr).await);
    let status = search(&mut on_ingest, "VPN").await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status}");

    // Qdrant down: searches answer UNAVAILABLE, not INTERNAL.
    qdrant.stop();
    let status = search(&mut clients[0], "What is the VPN portal address?")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");

    // A document added meanwhile waits for Qdrant, then is indexed once.
    std::fs::write(
        ingest_root.join("it-helpdesk/printer-codes.md"),
        "# Printer error codes\n\nCode PRN-4417 on the shop-floor label printers means the \
         ribbon is out: load a new ribbon from cabinet B.\n",
    )
    .unwrap();
    let syncing = tokio::spawn({
        let app = ingest.app.clone();
        async move { app.sync_all().await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!syncing.is_finished(), "ingest waits while Qdrant is down");
    qdrant.resume().unwrap();
    let report = syncing.await.unwrap().unwrap();
    assert_eq!((report.indexed, report.failed), (1, 0), "{report:?}");
    assert_eq!(verify(ingest.app.clone()).await, Vec::<String>::new());
    for client in &mut clients {
        let passages = search(client, "What does PRN-4417 mean on the label printer?")
            .await
            .unwrap();
        assert_eq!(
            passages[0].citation.as_ref().unwrap().document_path,
            "printer-codes.md"
        );
    }
    for server in query_nodes {
        server.stop().await;
    }
    ingest.stop().await;
    drop(qdrant);
}
