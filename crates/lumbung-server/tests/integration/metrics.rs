use std::sync::Arc;

use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness;

/// `GET /metrics` over a plain HTTP/1.1 connection, the body.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: lumbung\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The metrics port counts requests by method and code, Ask outcomes and passages, and shows
/// documents and chunks per knowledge base, the watcher and the index sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_show_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = harness::test_config(dir.path());
    harness::write_document(
        &config,
        "it",
        "vpn.md",
        "# VPN\n\nThe VPN portal is vpn.example-manufacturing.com.\n",
    );
    harness::write_document(&config, "it", "scan.pdf", "%PDF-1.7 not really");
    let server = harness::TestServer::start(config).await;
    server.app.sync_all().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = tokio::spawn(lumbung_server::serve_metrics(
        Arc::clone(&server.app),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));

    let mut client = KnowledgeServiceClient::new(harness::connect(server.addr).await);
    // A request carries its id into the server's logs and back; without one it gets its own.
    let mut request = tonic::Request::new(v1::SearchRequest {
        query: "VPN portal".into(),
        top_k: 3,
        ..Default::default()
    });
    request.metadata_mut().insert(
        lumbung_server::REQUEST_ID,
        "assistant-7/42".parse().unwrap(),
    );
    let response = client.search(request).await.unwrap();
    assert_eq!(
        response.metadata().get(lumbung_server::REQUEST_ID).unwrap(),
        "assistant-7/42"
    );
    let invalid = client
        .search(v1::SearchRequest {
            query: " ".into(),
            top_k: 3,
            ..Default::default()
        })
        .await;
    let invalid = invalid.unwrap_err();
    let made = invalid.metadata().get(lumbung_server::REQUEST_ID).unwrap();
    assert_eq!(made.len(), 16, "errors carry an id too: {made:?}");
    client
        .ask(v1::AskRequest {
            question: "Who won the football world cup in 1974?".into(),
            knowledge_bases: vec!["it".into()],
            max_sentences: 1,
        })
        .await
        .unwrap();

    let text = scrape(metrics_addr).await;
    for expected in [
        "lumbung_requests_total{code=\"Ok\",method=\"Search\"} 1",
        "lumbung_requests_total{code=\"InvalidArgument\",method=\"Search\"} 1",
        "lumbung_requests_total{code=\"Ok\",method=\"Ask\"} 1",
        "lumbung_request_seconds_count{method=\"Search\"} 2",
        "lumbung_search_passages_count 1",
        "lumbung_documents{kb=\"it\",state=\"indexed\"} 1",
        "lumbung_chunks{kb=\"it\"} 1",
        "lumbung_state{what=\"watcher_alive\"} 1",
        "lumbung_state{what=\"cpu_tasks_waiting\"} 0",
        "lumbung_state{what=\"requests_waiting\"} 0",
        "lumbung_documents{kb=\"it\",state=\"failed\"} 1",
        "lumbung_failed_documents{kb=\"it\",kind=\"corrupt\"} 1",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("lumbung_answers_total{outcome=")),
        "{text}"
    );
    for kind in ["query", "passage"] {
        let batches = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "lumbung_embedding_batch_seconds_count{{kind=\"{kind}\"}} "
                ))
            })
            .unwrap_or_else(|| panic!("no {kind} batches in\n{text}"));
        assert!(batches.parse::<u64>().unwrap() > 0, "{kind}: {batches}");
    }
    let lexical_bytes = text
        .lines()
        .find_map(|l| l.strip_prefix("lumbung_index_bytes{part=\"lexical\"} "))
        .unwrap();
    assert!(lexical_bytes.parse::<u64>().unwrap() > 0);
    let disk = |what: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("lumbung_disk_bytes{{what=\"{what}\"}} ")))
            .unwrap_or_else(|| panic!("no {what} disk bytes in\n{text}"))
            .parse::<u64>()
            .unwrap()
    };
    assert!(disk("free") > 0);
    assert_eq!(
        disk("reserve"),
        1024 << 20,
        "ingest.min_free_disk_mib's default"
    );

    let _ = stop.send(());
    metrics.await.unwrap().unwrap();
    server.stop().await;
}
