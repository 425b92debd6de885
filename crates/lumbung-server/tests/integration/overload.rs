use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use tonic::Code;

use crate::harness;

/// With no room to wait for a core, a burst of searches is partly refused at once with
/// RESOURCE_EXHAUSTED and a retry pushback, never with another error, and the service answers
/// normally once the burst is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_capacity_is_shed_with_resource_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = harness::test_config(dir.path());
    config.search.max_waiting_tasks = 0;
    harness::write_document(
        &config,
        "it",
        "vpn.md",
        "# VPN\n\nThe VPN portal is vpn.example-manufacturing.com.\n",
    );
    let server = harness::TestServer::start(config).await;
    server.app.sync_all().await.unwrap();
    let client = KnowledgeServiceClient::new(harness::connect(server.addr).await);
    let search = |mut client: KnowledgeServiceClient<_>| async move {
        client
            .search(v1::SearchRequest {
                query: "Where is the VPN portal?".into(),
                top_k: 3,
                ..Default::default()
            })
            .await
    };

    let burst: Vec<_> = (0..32)
        .map(|_| tokio::spawn(search(client.clone())))
        .collect();
    let (mut served, mut shed) = (0, 0);
    for outcome in burst {
        match outcome.await.unwrap() {
            Ok(_) => served += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());
                shed += 1;
            }
        }
    }
    assert!(served > 0 && shed > 0, "served {served}, shed {shed}");
    let after = search(client.clone()).await.unwrap().into_inner();
    assert!(!after.passages.is_empty());
    server.stop().await;
}
