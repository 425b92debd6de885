//! The service with its chunks and vectors on Qdrant (the stand-in Qdrant: Qdrant's gRPC API over
//! Qdrant's storage engine, in the process; no Qdrant server can be installed here): switching
//! `[vector_store]` is the only change, and an outage is waited out.

use std::time::Duration;

use lumbung_core::{KbName, VectorStoreConfig, VectorStoreKind};
use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use lumbung_qdrant::stand_in::StandInQdrant;
use tonic::Code;

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
    client: &mut KnowledgeServiceClient<tonic::transport::Channel>,
    query: &str,
) -> Result<Vec<v1::Passage>, tonic::Status> {
    let request = v1::SearchRequest {
        query: query.to_string(),
        top_k: 3,
        ..Default::default()
    };
    Ok(client.search(request).await?.into_inner().passages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_samples_on_qdrant_answer_as_on_the_embedded_store_and_ride_out_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let qdrant_dir = tempfile::tempdir().unwrap();
    let mut qdrant = StandInQdrant::start(qdrant_dir.path(), Some("cluster-key")).unwrap();
    let mut config = harness::test_config(dir.path());
    config.vector_store = VectorStoreConfig {
        kind: VectorStoreKind::Qdrant,
        url: qdrant.url(),
        api_key: "cluster-key".to_string(),
        search_retry_ms: 300,
        write_retry_seconds: 120,
        ..VectorStoreConfig::default()
    };
    for kb in SAMPLE_KBS {
        harness::copy_dir(
            &harness::repo_root().join("ingest").join(kb),
            &config.ingest_root.join(kb),
        );
    }
    let ingest_root = config.ingest_root.clone();
    let server = TestServer::start(config.clone()).await;
    let report = server.app.sync_all().await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    for local in ["data/vectors", "data/lexical"] {
        assert!(
            !dir.path().join(local).exists(),
            "{local}: nothing indexed on the node when Qdrant holds the data"
        );
    }
    let verify = |app: std::sync::Arc<lumbung_server::App>| async move {
        tokio::task::spawn_blocking(move || {
            SAMPLE_KBS
                .iter()
                .flat_map(|kb| app.ingestor.verify(&KbName::new(*kb).unwrap()).unwrap())
                .collect::<Vec<String>>()
        })
        .await
        .unwrap()
    };
    assert_eq!(verify(server.app.clone()).await, Vec::<String>::new());

    // The same passages as the embedded store gives for the same samples.
    let mut on_qdrant = KnowledgeServiceClient::new(harness::connect(server.addr).await);
    let mut embedded = harness::knowledge().await;
    for question in sample_questions(40) {
        let expected = search(&mut embedded, &question).await.unwrap();
        let got = search(&mut on_qdrant, &question).await.unwrap();
        let ids = |passages: &[v1::Passage]| {
            passages
                .iter()
                .map(|p| p.chunk_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&got), ids(&expected), "{question}");
    }

    // Qdrant down: searches answer UNAVAILABLE, not INTERNAL.
    qdrant.stop();
    let question = "What is the VPN portal address?";
    let status = search(&mut on_qdrant, question).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");

    // A document added meanwhile waits for Qdrant, then is indexed once.
    std::fs::write(
        ingest_root.join("it-helpdesk/printer-codes.md"),
        "# Printer error codes\n\nCode PRN-4417 on the shop-floor label printers means the \
         ribbon is out: load a new ribbon from cabinet B.\n",
    )
    .unwrap();
    let syncing = tokio::spawn({
        let app = server.app.clone();
        async move { app.sync_all().await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!syncing.is_finished(), "ingest waits while Qdrant is down");
    qdrant.resume().unwrap();
    let report = syncing.await.unwrap().unwrap();
    assert_eq!((report.indexed, report.failed), (1, 0), "{report:?}");
    assert_eq!(verify(server.app.clone()).await, Vec::<String>::new());
    let passages = search(
        &mut on_qdrant,
        "What does PRN-4417 mean on the label printer?",
    )
    .await
    .unwrap();
    assert_eq!(
        passages[0].citation.as_ref().unwrap().document_path,
        "printer-codes.md"
    );
    server.stop().await;
    drop(qdrant);
}
